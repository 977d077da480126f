/* SPDX-License-Identifier: Apache-2.0 */
/* pallet: load a provider and drive it (verbs modelled on kubectl-mtv). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pallet/host.h"
#include "cli-verbs.h"
#include "render.h"
#include "verbs-common.h"
#ifdef HAVE_PALLET_PLAN
#include "pallet-plan.h"
#endif

static const char usage_text[] =
    "Usage: pallet [-v|--debug] VERB [OPTIONS] [ARGS]\n"
    "\n"
    "Verbs:\n"
    "  providers [--dump NAME|PATH]     list providers, or dump one's vtable\n"
    "  validate PLAN...                 run the validate op for every VM\n"
    "  inventory KIND -f provider.yaml [-q QUERY] [-o table|json|yaml]\n"
    "                                   list source objects (ec2-instance, ec2-volume...)\n"
    "  get plan|provider|mapping|inventory [NAME] [-f FILE]... [-n NS] [-o ...]\n"
    "  describe plan|provider|mapping|vm NAME -f FILE... [-o text|json|yaml]\n"
    "  create provider|mapping|plan ... --dry-run [-o yaml|json]\n"
    "                                   write the Forklift YAML for kubectl apply\n"
    "  archive plan NAME [--kubeconfig FILE] [-n NS]   archive a plan in the cluster\n"
    "  delete plan|provider|mapping NAME [--kubeconfig FILE] [-n NS]\n"
    "  migrate PLAN...                  migrate every VM of the plan (resumes)\n"
    "  status PLAN|NAME                 show the state dir of a plan\n"
    "  cancel PLAN|NAME                 ask a running migrate to stop and roll back\n"
    "  cutover PLAN|NAME [--at TIME]    cut a warm migration over (now, or at TIME)\n"
    "  cleanup PLAN...                  run cleanup for every VM that has state\n"
    "  version                          print versions\n"
    "  lint-manifests [--strict] [--allow-null] [--list-kinds] [--schema-dir DIR]\n"
    "                 DIR|FILE...       check manifests against the bundled schemas\n"
    "  doctor [--deep] [-o json] [--dir DIR] [--min-free SIZE] [--boot-dir DIR]\n"
    "         [--modules-dir DIR]       can conversions run on this host?\n"
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
    "  --lenient              unknown and not-yet-supported Forklift fields are\n"
    "                         warnings (ignored), not errors\n"
    "  --state-dir DIR        default ./.pallet-state/<plan name>\n"
    "  --output-dir DIR       build_vm's manifests, one dir per VM\n"
    "                         (default <state dir>/manifests)\n"
    "  --max-in-flight N      VMs migrated at once (default 1)\n"
    "  --max-attempts N       retryable errors per step before failing (default 5)\n"
    "  --backoff-ms N         first retry backoff, doubled up to --backoff-max-ms\n"
    "                         (defaults 500 and 30000)\n"
    "  --at TIME              cutover: when, as RFC 3339 (2026-11-25T02:00:00Z)\n"
    "  --apply                migrate: apply to the cluster stage by stage, wait for\n"
    "                         the copy and conversion Pods, start the VM (cluster mode)\n"
    "  --kubeconfig FILE      cluster mode (also validate, cleanup): the cluster;\n"
    "                         default $KUBECONFIG, the Pod's service account, ~/.kube/config\n"
    "  --context NAME         the kubeconfig context (default its current-context)\n"
    "  -n, --namespace NS     the target namespace (must match the plan's)\n"
    "  --wait-timeout S       cluster mode: seconds each Pod wait may take (default 3600)\n"
    "  --run-hooks-locally    migrate without --apply: run each VM's PreHook/PostHook\n"
    "                         command as a local process (default: only written)\n"
    "  -o, --output FORMAT    text (default; progress bars with rate and ETA on\n"
    "                         a TTY), json (JSON lines; inventory: one array),\n"
    "                         yaml (one document per event), table (inventory)\n"
    "  -q, --query QUERY      inventory query (kubectl-mtv's TSL): [select F, ...]\n"
    "                         [where] EXPR [order|sort by F [desc]] [limit N]\n"
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
                "[--provider P] [--config FILE] [-o text|json|yaml]\nCalls validate for every VM "
                "and prints findings.  Exit 1 if any VM is invalid.\n" },
  { "migrate",
    "Usage: pallet migrate PLAN... | --normalized FILE [--provider P] "
    "[--config FILE]\n       [--state-dir DIR] [--output-dir DIR] [--max-in-flight N] "
    "[--max-attempts N] [--backoff-ms N]\n       [--backoff-max-ms N] "
    "[--apply [--kubeconfig F] [--context C] [-n NS] [--wait-timeout S]]\n"
    "       [--run-hooks-locally] [-o text|json|yaml]\nRuns validate, prepare_source, transfer, convert, build_vm, "
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
  const char *kubeconfig, *context, *namespace_;
  unsigned max_in_flight, max_attempts, backoff_ms, backoff_max_ms, wait_timeout;
  int run_hooks_locally;
  int help, lenient, apply;
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
    fprintf (stderr, "pallet: %s '%s': expected a whole number (0..1000000)\n", opt, s);
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
    fprintf (stderr,
             "pallet: config %s: not a JSON object (line %d: %s); "
             "pass the provider config as JSON\n",
             path, err.line, err.text);
    json_decref (j);
    free (text);
    return NULL;
  }
  json_decref (j);
  return text;
}

/* The plan and the provider config (possibly derived from the plan). */
struct loaded {
  char *plan;        /* normalized plan JSON text */
  char *config;      /* provider config JSON text (secret) */
  char *provider;    /* NAME|PATH */
  char *destination; /* destination Provider config JSON (secret), or NULL */
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
  if (l->destination) {
    memset (l->destination, 0, strlen (l->destination));
    free (l->destination);
  }
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
                          "both (got '%s')",
                          files[0]);
    json_error_t err;
    plan = json_load_file (o->normalized, 0, &err);
    if (plan == NULL) {
      fprintf (stderr, "pallet: %s: not a normalized plan JSON (line %d: %s)\n", o->normalized,
               err.line, err.text);
      return PALLET_EXIT_INPUT;
    }
  }
  else if (nfiles == 0)
    return usage_error ("%s", "no PLAN given: pass plan files or "
                              "--normalized FILE");
  else if (nfiles == 1 && (plan = normalized_file (files[0])) != NULL)
    ; /* a normalized plan given as PLAN */
  else {
#ifdef HAVE_PALLET_PLAN
    char *err = NULL;
    json_t *res = pallet_plan_read ((const char *const *) files, (size_t) nfiles, &err);
    json_t *warnings = json_array ();
    if (res)
      plan = pallet_plan_normalize_ext (res, o->plan, o->lenient ? PALLET_PLAN_LENIENT : 0,
                                        warnings, &err);
    size_t wi;
    json_t *w;
    json_array_foreach (warnings, wi, w)
      fprintf (stderr, "pallet: warning: %s\n", json_string_value (w));
    json_decref (warnings);
    if (plan && !o->config)
      config = pallet_plan_provider_config (res, plan, "source", &err);
    /* Cluster mode reaches a remote destination with its Provider's URL
     * and token Secret. */
    json_t *dest = plan ? pallet_plan_provider_config (res, plan, "destination", NULL) : NULL;
    l->destination = dest ? json_dumps (dest, JSON_COMPACT) : NULL;
    json_decref (dest);
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
                          "extra '%s')",
                          files[1]);
    json_error_t err;
    plan = json_load_file (files[0], 0, &err);
    if (plan == NULL) {
      fprintf (stderr, "pallet: %s: not a normalized plan JSON (line %d: %s)\n", files[0], err.line,
               err.text);
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
    json_t *c = json_pack (
        "{s:O,s:{},s:O}", "provider", src ? src : json_null (), "secret", "settings",
        json_object_get (src, "settings") ? json_object_get (src, "settings") : json_null ());
    l->config = c ? json_dumps (c, JSON_COMPACT) : NULL;
    json_decref (c);
  }
  const char *type = json_string_value (json_object_get (json_object_get (plan, "source"), "type"));
  l->provider = o->provider ? strdup (o->provider) : type ? strdup (type) : NULL;
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
    Pallet_render_load_error (name);
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
    printf ("%-16s %-10s %s (not loadable: %s)\n", name, "-", path, pallet_last_error ());
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
    char *text = pallet_module_dump_text (m);
    pallet_module_free (m);
    if (text == NULL) {
      fprintf (stderr, "pallet: %s\n", pallet_last_error ());
      return PALLET_EXIT_LOAD;
    }
    fputs (text, stdout);
    free (text);
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
    fprintf (stderr,
             "pallet: no providers found in $PALLET_PROVIDER_PATH or " PALLET_PROVIDER_DIR "\n");
  return rc;
}

enum { RUN_MIGRATE, RUN_CLEANUP, RUN_VALIDATE };

static int
cmd_run (const struct opts *o, int argc, char **argv, int what)
{
  int fmt = CLI_TEXT;
  if (o->output
      && Pallet_format_parse (o->output,
                              1 << CLI_TEXT | 1 << CLI_TABLE | 1 << CLI_JSON | 1 << CLI_YAML, &fmt))
    return usage_error ("-o '%s': expected text, json or yaml", o->output);
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
  struct cli_render r;
  Pallet_render_init (&r, fmt == CLI_TABLE ? CLI_TEXT : fmt,
                      fmt != CLI_JSON && fmt != CLI_YAML && isatty (STDERR_FILENO));
  struct pallet_migrate_options mo = PALLET_MIGRATE_OPTIONS_INIT;
  mo.state_dir = o->state_dir;
  mo.output_dir = o->output_dir;
  mo.max_in_flight = o->max_in_flight;
  mo.max_attempts = o->max_attempts;
  mo.backoff_ms = o->backoff_ms;
  mo.backoff_max_ms = o->backoff_max_ms;
  mo.on_event = Pallet_render_event;
  mo.opaque = &r;
  mo.apply = o->apply;
  mo.kubeconfig = o->kubeconfig;
  mo.kube_context = o->context;
  mo.namespace_ = o->namespace_;
  mo.destination_json = l.destination;
  mo.wait_timeout_s = o->wait_timeout;
  mo.run_hooks_locally = o->run_hooks_locally;
  if (what == RUN_MIGRATE || what == RUN_CLEANUP)
    pallet_install_signal_handlers ();
  rc = what == RUN_MIGRATE   ? pallet_migrate (m, l.config, l.plan, &mo)
       : what == RUN_CLEANUP ? pallet_cleanup_plan (m, l.config, l.plan, &mo)
                             : pallet_validate_plan (m, l.config, l.plan, &mo);
  if (Pallet_render_finish (&r) != 0 && rc == 0) {
    fprintf (stderr, "pallet: cannot write the output: %s\n", strerror (errno));
    rc = PALLET_EXIT_INPUT;
  }
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
    char *d = pallet_default_state_dir (json_string_value (json_object_get (p, "name")));
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
  printf ("plan %s  migrationUID %s\n", jstr (plan, "name"), jstr (plan, "migrationUID"));
  printf ("%-24s %-16s %-10s %8s  %s\n", "VM", "STEP", "STATUS", "ATTEMPTS", "ERROR");
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
    printf ("%-24s %-16s %-10s %8lld  %s\n", name ? name : jstr (vm, "id"), jstr (v, "step"),
            status, (long long) json_integer_value (json_object_get (v, "attempts")),
            json_is_string (err) ? json_string_value (err) : "");
    /* Cluster mode: did the VM boot? */
    json_t *boot = json_object_get (json_object_get (v, "cluster"), "boot");
    if (json_is_object (boot)) {
      const char *ev = json_string_value (json_object_get (boot, "evidence"));
      printf ("  boot: %s%s%s, %lld s\n", jstr (boot, "result"), ev ? " by " : "", ev ? ev : "",
              (long long) json_integer_value (json_object_get (boot, "waitedSeconds")));
    }
    /* A warm migration: its rounds, and the downtime once cut over. */
    json_t *w = json_object_get (json_object_get (v, "state"), "warm");
    if (json_is_object (w)) {
      json_t *dt = json_object_get (w, "downtimeSeconds");
      json_t *next = json_object_get (w, "nextRoundAt");
      printf ("  warm: %lld round(s) done",
              (long long) json_integer_value (json_object_get (w, "rounds")));
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
    fprintf (stderr,
             "pallet: --at '%s': not an RFC 3339 time; write it as "
             "2026-11-25T02:00:00Z or 2026-11-25T03:00:00+01:00\n",
             o->at);
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

static int
cmd_version (void)
{
  printf ("pallet %s\nabi %d.%d\nprovider dir %s\n", pallet_host_version (), PALLET_ABI_MAJOR,
          PALLET_ABI_MINOR, PALLET_PROVIDER_DIR);
  return 0;
}

enum {
  OPT_PROVIDER = 256,
  OPT_CONFIG,
  OPT_NORMALIZED,
  OPT_PLAN,
  OPT_STATE_DIR,
  OPT_MAX_IN_FLIGHT,
  OPT_MAX_ATTEMPTS,
  OPT_BACKOFF,
  OPT_BACKOFF_MAX,
  OPT_DUMP,
  OPT_DEBUG,
  OPT_VERSION,
  OPT_OUTPUT_DIR,
  OPT_AT,
  OPT_APPLY,
  OPT_KUBECONFIG,
  OPT_CONTEXT,
  OPT_WAIT_TIMEOUT,
  OPT_RUN_HOOKS_LOCALLY,
  OPT_LENIENT,
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
  { "apply", no_argument, NULL, OPT_APPLY },
  { "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
  { "context", required_argument, NULL, OPT_CONTEXT },
  { "namespace", required_argument, NULL, 'n' },
  { "wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT },
  { "run-hooks-locally", no_argument, NULL, OPT_RUN_HOOKS_LOCALLY },
  { "lenient", no_argument, NULL, OPT_LENIENT },
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
  /* Log lines outside a run (the loader's, say) go to stderr. */
  static struct cli_render log_r;
  Pallet_render_init (&log_r, CLI_TEXT, 0);
  pallet_set_event_handler (Pallet_render_log, &log_r);
  /* Verbs with options of their own (cli-verbs.h). */
  int at;
  const struct Pallet_cli_verb *cv = Pallet_cli_find_verb (argc, argv, &at);
  if (cv)
    return cv->run (argc - at, argv + at);
  /* Options may come before or after the verb (getopt permutes). */
  int c;
  while ((c = getopt_long (argc, argv, "o:q:n:vh", long_opts, NULL)) != -1) {
    switch (c) {
    case OPT_PROVIDER: o.provider = optarg; break;
    case OPT_CONFIG: o.config = optarg; break;
    case OPT_NORMALIZED: o.normalized = optarg; break;
    case OPT_PLAN: o.plan = optarg; break;
    case OPT_STATE_DIR: o.state_dir = optarg; break;
    case OPT_OUTPUT_DIR: o.output_dir = optarg; break;
    case OPT_DUMP: o.dump = optarg; break;
    case OPT_AT: o.at = optarg; break;
    case OPT_APPLY: o.apply = 1; break;
    case OPT_RUN_HOOKS_LOCALLY: o.run_hooks_locally = 1; break;
    case OPT_KUBECONFIG: o.kubeconfig = optarg; break;
    case OPT_CONTEXT: o.context = optarg; break;
    case 'n': o.namespace_ = optarg; break;
    case OPT_WAIT_TIMEOUT:
      if (parse_uint (optarg, "--wait-timeout", &o.wait_timeout))
        return 2;
      break;
    case OPT_LENIENT: o.lenient = 1; break;
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
      if (parse_uint (optarg, "--max-in-flight", &o.max_in_flight))
        return 2;
      break;
    case OPT_MAX_ATTEMPTS:
      if (parse_uint (optarg, "--max-attempts", &o.max_attempts))
        return 2;
      break;
    case OPT_BACKOFF:
      if (parse_uint (optarg, "--backoff-ms", &o.backoff_ms))
        return 2;
      break;
    case OPT_BACKOFF_MAX:
      if (parse_uint (optarg, "--backoff-max-ms", &o.backoff_max_ms))
        return 2;
      break;
    default: fprintf (stderr, "Try `pallet --help`.\n"); return PALLET_EXIT_USAGE;
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
  if (o.run_hooks_locally && (o.apply || strcmp (verb, "migrate") != 0))
    return usage_error ("--run-hooks-locally is an option of migrate without --apply (with --apply "
                        "the hooks run as Pods in the cluster)%s",
                        "");
  if (o.apply && strcmp (verb, "migrate") != 0)
    return usage_error ("--apply is an option of migrate, not of %s (validate and cleanup take "
                        "--kubeconfig, --context and -n)",
                        verb);
  if (strcmp (verb, "migrate") == 0)
    return cmd_run (&o, nargs, args, RUN_MIGRATE);
  if (strcmp (verb, "cleanup") == 0)
    return cmd_run (&o, nargs, args, RUN_CLEANUP);
  if (strcmp (verb, "status") == 0)
    return cmd_status (&o, nargs, args);
  if (strcmp (verb, "cancel") == 0)
    return cmd_cancel (&o, nargs, args);
  if (strcmp (verb, "cutover") == 0)
    return cmd_cutover (&o, nargs, args);
  if (strcmp (verb, "version") == 0)
    return cmd_version ();
  const char *near = Pallet_vc_nearest (verb, Pallet_cli_verb_names);
  if (near) {
    fprintf (stderr, "pallet: unknown verb '%s'; did you mean '%s'?\nTry `pallet --help`.\n", verb,
             near);
    return PALLET_EXIT_USAGE;
  }
  return usage_error ("unknown verb '%s'", verb);
}
