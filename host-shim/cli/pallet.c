/* pallet: load a provider and drive it (verbs modelled on kubectl-mtv). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <yaml.h>

#include "pallet/host.h"
#include "cli-verbs.h"
#ifdef HAVE_PALLET_PLAN
#include "pallet-plan.h"
#endif
#ifdef HAVE_PALLET_QUERY
#include "pallet-query.h"
#endif

static const char usage_text[] =
  "Usage: pallet [-v|--debug] VERB [OPTIONS] [ARGS]\n"
  "\n"
  "Verbs:\n"
  "  providers [--dump NAME|PATH]     list providers, or dump one's vtable\n"
  "  validate PLAN...                 run the validate op for every VM\n"
  "  inventory KIND [-q QUERY] [-o table|json|yaml] --provider P --config FILE\n"
  "                                   list source objects (instances, volumes...)\n"
  "  migrate PLAN...                  migrate every VM of the plan (resumes)\n"
  "  status PLAN|NAME                 show the state dir of a plan\n"
  "  cancel PLAN|NAME                 ask a running migrate to stop and roll back\n"
  "  cutover PLAN|NAME [--at TIME]    cut a warm migration over (now, or at TIME)\n"
  "  cleanup PLAN...                  run cleanup for every VM that has state\n"
  "  version                          print versions\n"
  "  lint-manifests [--strict] DIR|FILE...\n"
  "                                   check manifests against the bundled schemas\n"
  "\n"
  "PLAN... are Forklift Plan/NetworkMap/StorageMap/Provider/Secret YAML or\n"
  "JSON files (see --plan to pick one Plan), or use --normalized FILE to pass\n"
  "a normalized plan JSON.\n"
  "\n"
  "Options:\n"
  "  --provider NAME|PATH   provider (default: the plan's source type); a NAME\n"
  "                         is pallet-provider-NAME.so in $PALLET_PROVIDER_PATH\n"
  "                         (colon list), then " PALLET_PROVIDER_DIR "\n"
  "  --config FILE          provider config JSON for open() (default: built\n"
  "                         from the plan's source Provider and Secret)\n"
  "  --normalized FILE      the plan as normalized plan JSON\n"
  "  --plan NAME            which Plan of the files (when several)\n"
  "  --state-dir DIR        default ./.pallet-state/<plan name>\n"
  "  --output-dir DIR       build_vm's manifests, one dir per VM\n"
  "                         (default <state dir>/manifests)\n"
  "  --max-in-flight N      VMs migrated at once (default 1)\n"
  "  --max-attempts N       retryable errors per step before failing (default 5)\n"
  "  --backoff-ms N         first retry backoff, doubled up to --backoff-max-ms\n"
  "                         (defaults 500 and 30000)\n"
  "  --at TIME              cutover: when, as RFC 3339 (2026-11-25T02:00:00Z)\n"
  "  -o, --output FORMAT    text (default), json (JSON lines), table, yaml\n"
  "  -q, --query QUERY      inventory filter: [where EXPR] [order by F] [limit N]\n"
  "  -v, --verbose          info messages;  --debug  debug messages\n"
  "  -h, --help             this help (also `pallet VERB --help`)\n"
  "\n"
  "Exit status:\n"
  "  0  success\n"
  "  1  at least one VM (or validation) failed; its state file says why\n"
  "  2  usage error\n"
  "  3  provider not found, not loadable, or ABI/contract error\n"
  "  4  cancelled (SIGINT/SIGTERM or `pallet cancel`); VMs in flight rolled back\n"
  "  5  plan, config or state unreadable or invalid; state not writable\n"
  "  6  the state dir is locked by another pallet process\n"
  "\n"
  "SIGINT/SIGTERM once: stop and roll back VMs in flight; twice: stop the\n"
  "rollback too (finish it later with `pallet cleanup`).\n";

static const char *verb_help[][2] = {
  { "providers", "Usage: pallet providers [--dump NAME|PATH]\n"
    "Lists providers found on $PALLET_PROVIDER_PATH and " PALLET_PROVIDER_DIR
    ".\n--dump prints key=value lines: abi_major, abi_minor, struct_size, "
    "name,\nversion, thread_model, cancel_bound_ms, capabilities, has_<op>.\n" },
  { "validate", "Usage: pallet validate PLAN... | --normalized FILE "
    "[--provider P] [--config FILE] [-o json]\nCalls validate for every VM "
    "and prints findings.  Exit 1 if any VM is invalid.\n" },
  { "inventory", "Usage: pallet inventory KIND [-q QUERY] [-o table|json|yaml] "
    "--provider P --config FILE\nCalls inventory {\"kind\": KIND, \"query\": "
    "QUERY}.  The host applies QUERY itself\nunless the provider has the "
    "inventory_query capability.\n" },
  { "migrate", "Usage: pallet migrate PLAN... | --normalized FILE [--provider P] "
    "[--config FILE]\n       [--state-dir DIR] [--output-dir DIR] [--max-in-flight N] "
    "[--max-attempts N] [--backoff-ms N]\n       [--backoff-max-ms N] "
    "[-o json]\nRuns validate, prepare_source, transfer, convert, build_vm, "
    "cleanup per VM.\nProgress is kept in the state dir after every call; "
    "run it again to resume.\nA warm plan's transfer copies in rounds while "
    "the source runs, until `pallet cutover`\n(or the plan's cutover time); "
    "the downtime is printed.\n" },
  { "status", "Usage: pallet status PLAN|NAME [--state-dir DIR] [-o table|json]\n"
    "Shows each VM's step, status, attempts and error.  Exit 1 if a VM "
    "failed.\n" },
  { "cancel", "Usage: pallet cancel PLAN|NAME [--state-dir DIR]\n"
    "Writes the cancel marker that a running `pallet migrate` polls.\n" },
  { "cutover", "Usage: pallet cutover PLAN|NAME [--state-dir DIR] [--at TIME]\n"
    "Writes the cutover marker that `pallet migrate` polls.  VMs of a warm plan\n"
    "then stop their precopy rounds: the source is stopped, the last delta is\n"
    "copied, and the migration goes on to convert and build_vm.  With --at,\n"
    "the cutover comes at TIME (RFC 3339, e.g. 2026-11-25T02:00:00Z).  A run\n"
    "started later (a resume) honours the marker too; migrate removes it when\n"
    "it ends.\n" },
  { "cleanup", "Usage: pallet cleanup PLAN... | --normalized FILE "
    "[--provider P] [--config FILE] [--state-dir DIR]\nRuns cleanup for every "
    "VM with a state file: a rollback unless the VM succeeded.\n" },
  { "version", "Usage: pallet version\n" },
};

struct opts {
  const char *provider, *config, *normalized, *plan, *state_dir, *output_dir;
  const char *output, *query, *dump, *at;
  unsigned max_in_flight, max_attempts, backoff_ms, backoff_max_ms;
  int help;
};

static int
usage_error (const char *fmt, const char *arg)
{
  fprintf (stderr, "pallet: ");
  fprintf (stderr, fmt, arg);
  fprintf (stderr, "\nTry `pallet --help`.\n");
  return PALLET_EXIT_USAGE;
}

static int
parse_uint (const char *s, const char *opt, unsigned *out)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul (s, &end, 10);
  if (errno || end == s || *end || v > 1000000 || s[0] == '-') {
    fprintf (stderr, "pallet: %s '%s': expected a whole number (0..1000000)\n",
             opt, s);
    return -1;
  }
  *out = (unsigned) v;
  return 0;
}

static char *
slurp (const char *path)
{
  FILE *fp = strcmp (path, "-") == 0 ? stdin : fopen (path, "r");
  if (fp == NULL) {
    fprintf (stderr, "pallet: %s: cannot open: %s\n", path, strerror (errno));
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc (cap);
  size_t r;
  while (buf && (r = fread (buf + len, 1, cap - len - 1, fp)) > 0) {
    len += r;
    if (cap - len < 2) {
      char *nb = realloc (buf, cap *= 2);
      if (nb == NULL) {
        free (buf);
        buf = NULL;
      }
      else
        buf = nb;
    }
  }
  if (fp != stdin)
    fclose (fp);
  if (buf)
    buf[len] = '\0';
  return buf;
}

/* The config file must be JSON; its content is secret: never echoed. */
static char *
load_config (const char *path)
{
  char *text = slurp (path);
  if (text == NULL)
    return NULL;
  json_error_t err;
  json_t *j = json_loads (text, 0, &err);
  if (j == NULL || !json_is_object (j)) {
    fprintf (stderr, "pallet: config %s: not a JSON object (line %d: %s); "
             "pass the provider config as JSON\n", path, err.line, err.text);
    json_decref (j);
    free (text);
    return NULL;
  }
  json_decref (j);
  return text;
}

/* The plan and the provider config (possibly derived from the plan). */
struct loaded {
  char *plan;                   /* normalized plan JSON text */
  char *config;                 /* provider config JSON text (secret) */
  char *provider;               /* NAME|PATH */
};

static void
loaded_free (struct loaded *l)
{
  free (l->plan);
  if (l->config) {
    /* Holds secrets: clear before free. */
    memset (l->config, 0, strlen (l->config));
    free (l->config);
  }
  free (l->provider);
}

/* A JSON object with "vms" and no "kind" is a normalized plan already. */
static json_t *
normalized_file (const char *path)
{
  json_t *j = json_load_file (path, 0, NULL);
  if (json_is_object (j) && json_is_array (json_object_get (j, "vms"))
      && json_object_get (j, "kind") == NULL)
    return j;
  json_decref (j);
  return NULL;
}

static int
load_plan (const struct opts *o, char **files, int nfiles, struct loaded *l)
{
  json_t *plan = NULL, *config = NULL;
  if (o->normalized) {
    if (nfiles > 0)
      return usage_error ("give either PLAN files or --normalized FILE, not "
                          "both (got '%s')", files[0]);
    json_error_t err;
    plan = json_load_file (o->normalized, 0, &err);
    if (plan == NULL) {
      fprintf (stderr, "pallet: %s: not a normalized plan JSON (line %d: %s)\n",
               o->normalized, err.line, err.text);
      return PALLET_EXIT_INPUT;
    }
  }
  else if (nfiles == 0)
    return usage_error ("%s", "no PLAN given: pass plan files or "
                        "--normalized FILE");
  else if (nfiles == 1 && (plan = normalized_file (files[0])) != NULL)
    ;                           /* a normalized plan given as PLAN */
  else {
#ifdef HAVE_PALLET_PLAN
    char *err = NULL;
    json_t *res = pallet_plan_read ((const char *const *) files,
                                    (size_t) nfiles, &err);
    if (res)
      plan = pallet_plan_normalize (res, o->plan, &err);
    if (plan && !o->config)
      config = pallet_plan_provider_config (res, plan, "source", &err);
    json_decref (res);
    if (plan == NULL || (!o->config && config == NULL)) {
      fprintf (stderr, "pallet: %s\n", err ? err : "cannot load the plan");
      free (err);
      json_decref (plan);
      return PALLET_EXIT_INPUT;
    }
    free (err);
#else
    /* Without the plan library only normalized JSON files are read. */
    if (nfiles > 1)
      return usage_error ("this build reads one normalized plan file (got "
                          "extra '%s')", files[1]);
    json_error_t err;
    plan = json_load_file (files[0], 0, &err);
    if (plan == NULL) {
      fprintf (stderr, "pallet: %s: not a normalized plan JSON (line %d: %s)\n",
               files[0], err.line, err.text);
      return PALLET_EXIT_INPUT;
    }
#endif
  }
  if (!json_is_object (plan)) {
    fprintf (stderr, "pallet: the plan is not a JSON object\n");
    json_decref (plan);
    json_decref (config);
    return PALLET_EXIT_INPUT;
  }
  l->plan = json_dumps (plan, JSON_COMPACT);
  if (o->config)
    l->config = load_config (o->config);
  else if (config)
    l->config = json_dumps (config, JSON_COMPACT);
  else {
    /* A normalized plan alone: the source block stands in for a Provider. */
    json_t *src = json_object_get (plan, "source");
    json_t *c = json_pack ("{s:O,s:{},s:O}", "provider",
                           src ? src : json_null (), "secret", "settings",
                           json_object_get (src, "settings")
                           ? json_object_get (src, "settings") : json_null ());
    l->config = c ? json_dumps (c, JSON_COMPACT) : NULL;
    json_decref (c);
  }
  const char *type = json_string_value (json_object_get
                                        (json_object_get (plan, "source"),
                                         "type"));
  l->provider = o->provider ? strdup (o->provider)
    : type ? strdup (type) : NULL;
  json_decref (plan);
  json_decref (config);
  if (l->plan == NULL || l->config == NULL)
    return PALLET_EXIT_INPUT;
  if (l->provider == NULL)
    return usage_error ("%s", "no provider: pass --provider NAME|PATH (the "
                        "plan has no source type)");
  return 0;
}

static struct pallet_module *
load_provider (const char *name)
{
  struct pallet_module *m;
  if (pallet_module_load (name, 0, &m) != PALLET_OK) {
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
    return NULL;
  }
  return m;
}

static void
print_provider (const char *name, const char *path, void *opaque)
{
  int *rc = opaque;
  struct pallet_module *m;
  if (pallet_module_load (path, 0, &m) == PALLET_OK) {
    const struct pallet_provider *v = pallet_module_vtable (m);
    printf ("%-16s %-10s %s\n", name, v->version ? v->version : "", path);
    pallet_module_free (m);
  }
  else {
    printf ("%-16s %-10s %s (not loadable: %s)\n", name, "-", path,
            pallet_last_error ());
    *rc = PALLET_EXIT_LOAD;
  }
}

static int
cmd_providers (const struct opts *o, int argc, char **argv)
{
  if (argc > 0)
    return usage_error ("providers: unexpected argument '%s'", argv[0]);
  if (o->dump) {
    struct pallet_module *m;
    if (pallet_module_load (o->dump, PALLET_LOAD_LENIENT, &m) != PALLET_OK) {
      fprintf (stderr, "pallet: %s\n", pallet_last_error ());
      return PALLET_EXIT_LOAD;
    }
    pallet_module_dump (m, stdout);
    pallet_module_free (m);
    /* Strict load: the dump shows a broken provider, the exit says so. */
    if (pallet_module_load (o->dump, 0, &m) != PALLET_OK) {
      fprintf (stderr, "pallet: %s\n", pallet_last_error ());
      return PALLET_EXIT_LOAD;
    }
    pallet_module_free (m);
    return 0;
  }
  int rc = 0;
  if (pallet_provider_list (print_provider, &rc) == 0)
    fprintf (stderr, "pallet: no providers found in $PALLET_PROVIDER_PATH or "
             PALLET_PROVIDER_DIR "\n");
  return rc;
}

static void
fill_mopts (const struct opts *o, struct pallet_migrate_options *mo,
            int *bad)
{
  memset (mo, 0, sizeof *mo);
  mo->state_dir = o->state_dir;
  mo->output_dir = o->output_dir;
  mo->max_in_flight = o->max_in_flight;
  mo->max_attempts = o->max_attempts;
  mo->backoff_ms = o->backoff_ms;
  mo->backoff_max_ms = o->backoff_max_ms;
  mo->output = PALLET_OUTPUT_TEXT;
  *bad = 0;
  if (o->output && strcmp (o->output, "json") == 0)
    mo->output = PALLET_OUTPUT_JSON;
  else if (o->output && strcmp (o->output, "text") != 0
           && strcmp (o->output, "table") != 0)
    *bad = 1;
  mo->progress = mo->output == PALLET_OUTPUT_TEXT && isatty (STDERR_FILENO);
}

enum { RUN_MIGRATE, RUN_CLEANUP, RUN_VALIDATE };

static int
cmd_run (const struct opts *o, int argc, char **argv, int what)
{
  struct pallet_migrate_options mo;
  int bad;
  fill_mopts (o, &mo, &bad);
  if (bad)
    return usage_error ("-o '%s': expected text or json", o->output);
  struct loaded l = { 0 };
  int rc = load_plan (o, argv, argc, &l);
  if (rc) {
    loaded_free (&l);
    return rc;
  }
  struct pallet_module *m = load_provider (l.provider);
  if (m == NULL) {
    loaded_free (&l);
    return PALLET_EXIT_LOAD;
  }
  if (what == RUN_MIGRATE || what == RUN_CLEANUP)
    pallet_install_signal_handlers ();
  rc = what == RUN_MIGRATE ? pallet_migrate (m, l.config, l.plan, &mo)
    : what == RUN_CLEANUP ? pallet_cleanup_plan (m, l.config, l.plan, &mo)
    : pallet_validate_plan (m, l.config, l.plan, &mo);
  pallet_module_free (m);
  loaded_free (&l);
  return rc;
}

/* status/cancel take a plan file, a plan name, or --state-dir. */
static char *
state_dir_for (const struct opts *o, int argc, char **argv)
{
  if (o->state_dir)
    return strdup (o->state_dir);
  if (o->normalized || (argc > 0 && access (argv[0], F_OK) == 0)) {
    struct loaded l = { 0 };
    struct opts o2 = *o;
    o2.provider = "unused";
    if (load_plan (&o2, argv, o->normalized ? 0 : argc, &l) != 0) {
      loaded_free (&l);
      return NULL;
    }
    json_t *p = json_loads (l.plan, 0, NULL);
    char *d = pallet_default_state_dir
      (json_string_value (json_object_get (p, "name")));
    json_decref (p);
    loaded_free (&l);
    return d;
  }
  if (argc == 1 && strchr (argv[0], '/') == NULL)
    return pallet_default_state_dir (argv[0]);
  usage_error ("%s", "give a PLAN file, a plan NAME, or --state-dir DIR");
  return NULL;
}

static const char *
jstr (json_t *o, const char *k)
{
  const char *s = json_string_value (json_object_get (o, k));
  return s ? s : "-";
}

static int
cmd_status (const struct opts *o, int argc, char **argv)
{
  char *dir = state_dir_for (o, argc, argv);
  if (dir == NULL)
    return PALLET_EXIT_USAGE;
  char *text = pallet_state_read (dir);
  free (dir);
  if (text == NULL) {
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
    return PALLET_EXIT_INPUT;
  }
  if (o->output && strcmp (o->output, "json") == 0) {
    printf ("%s\n", text);
    free (text);
    return 0;
  }
  json_t *j = json_loads (text, 0, NULL);
  free (text);
  json_t *plan = json_object_get (j, "plan");
  printf ("plan %s  migrationUID %s\n", jstr (plan, "name"),
          jstr (plan, "migrationUID"));
  printf ("%-24s %-16s %-10s %8s  %s\n", "VM", "STEP", "STATUS", "ATTEMPTS",
          "ERROR");
  size_t i;
  json_t *v;
  int failed = 0;
  json_array_foreach (json_object_get (j, "vms"), i, v) {
    json_t *vm = json_object_get (v, "vm");
    const char *name = json_string_value (json_object_get (vm, "name"));
    if (name == NULL)
      name = json_string_value (json_object_get (vm, "targetName"));
    json_t *err = json_object_get (json_object_get (v, "error"), "message");
    const char *status = jstr (v, "status");
    if (strcmp (status, "failed") == 0)
      failed = 1;
    printf ("%-24s %-16s %-10s %8lld  %s\n",
            name ? name : jstr (vm, "id"), jstr (v, "step"), status,
            (long long) json_integer_value (json_object_get (v, "attempts")),
            json_is_string (err) ? json_string_value (err) : "");
    /* A warm migration: its rounds, and the downtime once cut over. */
    json_t *w = json_object_get (json_object_get (v, "state"), "warm");
    if (json_is_object (w)) {
      json_t *dt = json_object_get (w, "downtimeSeconds");
      json_t *next = json_object_get (w, "nextRoundAt");
      printf ("  warm: %lld round(s) done", (long long) json_integer_value
              (json_object_get (w, "rounds")));
      if (json_is_number (dt))
        printf (", downtime %.3f s", json_number_value (dt));
      else if (json_is_true (json_object_get (w, "cutover")))
        printf (", cutting over");
      else if (json_is_string (next))
        printf (", next round at %s", json_string_value (next));
      printf ("\n");
    }
  }
  json_decref (j);
  return failed ? PALLET_EXIT_VM_FAILED : 0;
}

static int
cmd_cancel (const struct opts *o, int argc, char **argv)
{
  char *dir = state_dir_for (o, argc, argv);
  if (dir == NULL)
    return PALLET_EXIT_USAGE;
  int r = pallet_request_cancel (dir);
  if (r != PALLET_OK)
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
  else
    printf ("cancel requested in %s\n", dir);
  free (dir);
  return r == PALLET_OK ? 0 : PALLET_EXIT_INPUT;
}

static int
cmd_cutover (const struct opts *o, int argc, char **argv)
{
  int64_t t;
  if (o->at && pallet_parse_time (o->at, &t) != 0) {
    fprintf (stderr, "pallet: --at '%s': not an RFC 3339 time; write it as "
             "2026-11-25T02:00:00Z or 2026-11-25T03:00:00+01:00\n", o->at);
    return PALLET_EXIT_USAGE;
  }
  char *dir = state_dir_for (o, argc, argv);
  if (dir == NULL)
    return PALLET_EXIT_USAGE;
  int r = pallet_request_cutover (dir, o->at);
  if (r != PALLET_OK)
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
  else if (o->at)
    printf ("cutover requested in %s at %s\n", dir, o->at);
  else
    printf ("cutover requested in %s\n", dir);
  free (dir);
  return r == PALLET_OK ? 0 : PALLET_EXIT_INPUT;
}

/* --- inventory output ----------------------------------------------------- */

static int
yaml_emit_json (yaml_emitter_t *e, json_t *j)
{
  yaml_event_t ev;
  char buf[64];
  const char *s = NULL;
  yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
  switch (json_typeof (j)) {
  case JSON_OBJECT: {
    yaml_mapping_start_event_initialize (&ev, NULL, NULL, 1,
                                         YAML_BLOCK_MAPPING_STYLE);
    if (!yaml_emitter_emit (e, &ev))
      return -1;
    const char *k;
    json_t *val;
    json_object_foreach (j, k, val) {
      yaml_scalar_event_initialize (&ev, NULL, NULL, (yaml_char_t *) k, -1,
                                    1, 1, YAML_ANY_SCALAR_STYLE);
      if (!yaml_emitter_emit (e, &ev) || yaml_emit_json (e, val) != 0)
        return -1;
    }
    yaml_mapping_end_event_initialize (&ev);
    return yaml_emitter_emit (e, &ev) ? 0 : -1;
  }
  case JSON_ARRAY: {
    yaml_sequence_start_event_initialize (&ev, NULL, NULL, 1,
                                          YAML_BLOCK_SEQUENCE_STYLE);
    if (!yaml_emitter_emit (e, &ev))
      return -1;
    size_t i;
    json_t *val;
    json_array_foreach (j, i, val)
      if (yaml_emit_json (e, val) != 0)
        return -1;
    yaml_sequence_end_event_initialize (&ev);
    return yaml_emitter_emit (e, &ev) ? 0 : -1;
  }
  case JSON_STRING:
    s = json_string_value (j);
    /* Quote strings so "true" or "12" stay strings. */
    style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    break;
  case JSON_INTEGER:
    snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value (j));
    s = buf;
    break;
  case JSON_REAL:
    snprintf (buf, sizeof buf, "%.17g", json_real_value (j));
    s = buf;
    break;
  case JSON_TRUE: s = "true"; break;
  case JSON_FALSE: s = "false"; break;
  case JSON_NULL: s = "null"; break;
  }
  yaml_scalar_event_initialize (&ev, NULL, NULL, (yaml_char_t *) s, -1,
                                style == YAML_PLAIN_SCALAR_STYLE, 1, style);
  return yaml_emitter_emit (e, &ev) ? 0 : -1;
}

static int
yaml_write_cb (void *data, unsigned char *buf, size_t size)
{
  return fwrite (buf, 1, size, data) == size;
}

static int
print_yaml (json_t *arr)
{
  yaml_emitter_t e;
  yaml_event_t ev;
  if (!yaml_emitter_initialize (&e))
    return -1;
  yaml_emitter_set_output (&e, yaml_write_cb, stdout);
  yaml_emitter_set_unicode (&e, 1);
  int ok = 1;
  yaml_stream_start_event_initialize (&ev, YAML_UTF8_ENCODING);
  ok = ok && yaml_emitter_emit (&e, &ev);
  yaml_document_start_event_initialize (&ev, NULL, NULL, NULL, 1);
  ok = ok && yaml_emitter_emit (&e, &ev);
  ok = ok && yaml_emit_json (&e, arr) == 0;
  yaml_document_end_event_initialize (&ev, 1);
  ok = ok && yaml_emitter_emit (&e, &ev);
  yaml_stream_end_event_initialize (&ev);
  ok = ok && yaml_emitter_emit (&e, &ev);
  yaml_emitter_delete (&e);
  return ok ? 0 : -1;
}

static void
print_table (json_t *arr)
{
  /* Columns: the scalar fields of the first item, in its order. */
  json_t *first = json_array_get (arr, 0);
  const char *cols[8];
  int ncols = 0;
  const char *k;
  json_t *val;
  json_object_foreach (first, k, val)
    if (ncols < 8 && !json_is_object (val) && !json_is_array (val))
      cols[ncols++] = k;
  if (ncols == 0) {
    size_t i;
    json_array_foreach (arr, i, val) {
      char *s = json_dumps (val, JSON_COMPACT | JSON_ENCODE_ANY);
      printf ("%s\n", s ? s : "");
      free (s);
    }
    return;
  }
  for (int c = 0; c < ncols; c++) {
    char up[64];
    size_t n = 0;
    for (const char *p = cols[c]; *p && n < sizeof up - 1; p++)
      up[n++] = (*p >= 'a' && *p <= 'z') ? (char) (*p - 32) : *p;
    up[n] = '\0';
    printf ("%-22s", up);
  }
  printf ("\n");
  size_t i;
  json_t *item;
  json_array_foreach (arr, i, item) {
    for (int c = 0; c < ncols; c++) {
      json_t *f = json_object_get (item, cols[c]);
      char *s = json_is_string (f) ? strdup (json_string_value (f))
        : f ? json_dumps (f, JSON_ENCODE_ANY) : strdup ("");
      printf ("%-22s", s ? s : "");
      free (s);
    }
    printf ("\n");
  }
}

static int
cmd_inventory (const struct opts *o, int argc, char **argv)
{
  if (argc != 1)
    return usage_error ("%s", "inventory: give exactly one KIND (e.g. "
                        "instances)");
  if (o->provider == NULL || o->config == NULL)
    return usage_error ("%s", "inventory: --provider and --config are "
                        "required");
  const char *fmt = o->output ? o->output : "table";
  if (strcmp (fmt, "table") && strcmp (fmt, "json") && strcmp (fmt, "yaml"))
    return usage_error ("-o '%s': expected table, json or yaml", fmt);
  int rc = 0;
#ifdef HAVE_PALLET_QUERY
  char *qerr = NULL;
  struct pallet_query *q = pallet_query_compile (o->query, &qerr);
  if (q == NULL) {
    fprintf (stderr, "pallet: %s\n", qerr ? qerr : "bad query");
    free (qerr);
    return PALLET_EXIT_USAGE;
  }
#else
  if (o->query && *o->query)
    return usage_error ("-q '%s': this build has no query support",
                        o->query);
#endif
  char *config = load_config (o->config);
  struct pallet_module *m = config ? load_provider (o->provider) : NULL;
  struct pallet_session *s = m ? pallet_session_open (m, config, NULL) : NULL;
  if (config && m && s == NULL)
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
  if (s == NULL) {
    rc = config == NULL ? PALLET_EXIT_INPUT
      : m == NULL ? PALLET_EXIT_LOAD : PALLET_EXIT_INPUT;
    goto out;
  }
  json_t *in = json_pack ("{s:s,s:s?}", "kind", argv[0], "query", o->query);
  char *input = in ? json_dumps (in, JSON_COMPACT) : NULL;
  json_decref (in);
  struct pallet_call_result r;
  pallet_session_call (s, PALLET_OP_INVENTORY, NULL, input, &r);
  free (input);
  if (r.status != PALLET_OK) {
    fprintf (stderr, "pallet: inventory %s: %s\n", argv[0],
             r.error ? r.error : pallet_strerror (r.status));
    rc = r.status == PALLET_E_ABI ? PALLET_EXIT_LOAD : PALLET_EXIT_VM_FAILED;
    pallet_call_result_free (&r);
    goto out;
  }
  json_t *items = json_array ();
  for (size_t i = 0; i < r.n_items; i++)
    json_array_append_new (items, json_loads (r.items[i], JSON_DECODE_ANY,
                                              NULL));
  pallet_call_result_free (&r);
#ifdef HAVE_PALLET_QUERY
  /* A provider that pushes queries down has already filtered. */
  if (!(pallet_module_vtable (m)->capabilities & PALLET_CAP_INVENTORY_QUERY)) {
    json_t *f = pallet_query_apply (q, items, &qerr);
    json_decref (items);
    items = f;
    if (items == NULL) {
      fprintf (stderr, "pallet: %s\n", qerr ? qerr : "query failed");
      free (qerr);
      rc = PALLET_EXIT_USAGE;
      goto out;
    }
  }
#endif
  if (strcmp (fmt, "json") == 0) {
    char *t = json_dumps (items, JSON_INDENT (2));
    printf ("%s\n", t ? t : "[]");
    free (t);
  }
  else if (strcmp (fmt, "yaml") == 0) {
    if (print_yaml (items) != 0) {
      fprintf (stderr, "pallet: cannot write the inventory as YAML\n");
      rc = PALLET_EXIT_INPUT;
    }
  }
  else
    print_table (items);
  json_decref (items);
 out:
  pallet_session_close (s);
  pallet_module_free (m);
  free (config);
#ifdef HAVE_PALLET_QUERY
  pallet_query_free (q);
#endif
  return rc;
}

static int
cmd_version (void)
{
  printf ("pallet %s\nabi %d.%d\nprovider dir %s\n", pallet_host_version (),
          PALLET_ABI_MAJOR, PALLET_ABI_MINOR, PALLET_PROVIDER_DIR);
  return 0;
}

enum {
  OPT_PROVIDER = 256, OPT_CONFIG, OPT_NORMALIZED, OPT_PLAN, OPT_STATE_DIR,
  OPT_MAX_IN_FLIGHT, OPT_MAX_ATTEMPTS, OPT_BACKOFF, OPT_BACKOFF_MAX, OPT_DUMP,
  OPT_DEBUG, OPT_VERSION, OPT_OUTPUT_DIR, OPT_AT,
};

static const struct option long_opts[] = {
  { "provider", required_argument, NULL, OPT_PROVIDER },
  { "config", required_argument, NULL, OPT_CONFIG },
  { "normalized", required_argument, NULL, OPT_NORMALIZED },
  { "plan", required_argument, NULL, OPT_PLAN },
  { "state-dir", required_argument, NULL, OPT_STATE_DIR },
  { "output-dir", required_argument, NULL, OPT_OUTPUT_DIR },
  { "max-in-flight", required_argument, NULL, OPT_MAX_IN_FLIGHT },
  { "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
  { "backoff-ms", required_argument, NULL, OPT_BACKOFF },
  { "backoff-max-ms", required_argument, NULL, OPT_BACKOFF_MAX },
  { "dump", required_argument, NULL, OPT_DUMP },
  { "at", required_argument, NULL, OPT_AT },
  { "output", required_argument, NULL, 'o' },
  { "query", required_argument, NULL, 'q' },
  { "verbose", no_argument, NULL, 'v' },
  { "debug", no_argument, NULL, OPT_DEBUG },
  { "help", no_argument, NULL, 'h' },
  { "version", no_argument, NULL, OPT_VERSION },
  { NULL, 0, NULL, 0 },
};

int
main (int argc, char **argv)
{
  struct opts o = { 0 };
  int want_version = 0;
  /* Verbs with options of their own (cli-verbs.h). */
  if (argc > 1 && strcmp (argv[1], "lint-manifests") == 0)
    return cli_lint_manifests (argc - 1, argv + 1);
  /* Options may come before or after the verb (getopt permutes). */
  int c;
  while ((c = getopt_long (argc, argv, "o:q:vh", long_opts, NULL)) != -1) {
    switch (c) {
    case OPT_PROVIDER: o.provider = optarg; break;
    case OPT_CONFIG: o.config = optarg; break;
    case OPT_NORMALIZED: o.normalized = optarg; break;
    case OPT_PLAN: o.plan = optarg; break;
    case OPT_STATE_DIR: o.state_dir = optarg; break;
    case OPT_OUTPUT_DIR: o.output_dir = optarg; break;
    case OPT_DUMP: o.dump = optarg; break;
    case OPT_AT: o.at = optarg; break;
    case 'o': o.output = optarg; break;
    case 'q': o.query = optarg; break;
    case 'v':
      if (pallet_get_log_level () < PALLET_LOG_INFO)
        pallet_set_log_level (PALLET_LOG_INFO);
      break;
    case OPT_DEBUG: pallet_set_log_level (PALLET_LOG_DEBUG); break;
    case 'h': o.help = 1; break;
    case OPT_VERSION: want_version = 1; break;
    case OPT_MAX_IN_FLIGHT:
      if (parse_uint (optarg, "--max-in-flight", &o.max_in_flight)) return 2;
      break;
    case OPT_MAX_ATTEMPTS:
      if (parse_uint (optarg, "--max-attempts", &o.max_attempts)) return 2;
      break;
    case OPT_BACKOFF:
      if (parse_uint (optarg, "--backoff-ms", &o.backoff_ms)) return 2;
      break;
    case OPT_BACKOFF_MAX:
      if (parse_uint (optarg, "--backoff-max-ms", &o.backoff_max_ms)) return 2;
      break;
    default:
      fprintf (stderr, "Try `pallet --help`.\n");
      return PALLET_EXIT_USAGE;
    }
  }
  if (want_version)
    return cmd_version ();
  if (optind >= argc) {
    if (o.help) {
      fputs (usage_text, stdout);
      return 0;
    }
    fputs (usage_text, stderr);
    return PALLET_EXIT_USAGE;
  }
  const char *verb = argv[optind];
  int nargs = argc - optind - 1;
  char **args = argv + optind + 1;
  if (o.help) {
    for (size_t i = 0; i < sizeof verb_help / sizeof verb_help[0]; i++)
      if (strcmp (verb, verb_help[i][0]) == 0) {
        fputs (verb_help[i][1], stdout);
        return 0;
      }
    fputs (usage_text, stdout);
    return 0;
  }
  if (o.max_in_flight > 256)
    return usage_error ("--max-in-flight: at most %s", "256");
  if (strcmp (verb, "providers") == 0)
    return cmd_providers (&o, nargs, args);
  if (strcmp (verb, "validate") == 0)
    return cmd_run (&o, nargs, args, RUN_VALIDATE);
  if (strcmp (verb, "migrate") == 0)
    return cmd_run (&o, nargs, args, RUN_MIGRATE);
  if (strcmp (verb, "cleanup") == 0)
    return cmd_run (&o, nargs, args, RUN_CLEANUP);
  if (strcmp (verb, "inventory") == 0)
    return cmd_inventory (&o, nargs, args);
  if (strcmp (verb, "status") == 0)
    return cmd_status (&o, nargs, args);
  if (strcmp (verb, "cancel") == 0)
    return cmd_cancel (&o, nargs, args);
  if (strcmp (verb, "cutover") == 0)
    return cmd_cutover (&o, nargs, args);
  if (strcmp (verb, "version") == 0)
    return cmd_version ();
  return usage_error ("unknown verb '%s'", verb);
}
