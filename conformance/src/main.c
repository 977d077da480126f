/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-conformance PROVIDER.so [--fixture FILE] [--only CHECK]...
 *
 * Loads any provider with dlopen and a mock host (never libpallet-host)
 * and checks that it keeps the Pallet provider contract.  One line per
 * check; each failure names the rule it breaks. */
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conformance.h"

struct pc_ctx pc;

#ifndef PALLET_LINT_MANIFESTS
#define PALLET_LINT_MANIFESTS ""
#endif
const char *pc_lint_manifests = PALLET_LINT_MANIFESTS;

struct check {
  const char *name;
  void (*fn) (void);
  const char *proves;
  bool selected;
};

static struct check checks[] = {
  { "abi-exports", pc_check_abi_exports,
    "the .so exports exactly one dynamic symbol, pallet_provider_entry", 0 },
  { "abi-major", pc_check_abi_major, "the entry point refuses a host ABI major other than its own",
    0 },
  { "abi-vtable", pc_check_abi_vtable,
    "the vtable's ABI fields, name, version, thread model and required ops", 0 },
  { "host-inputs", pc_check_host_inputs,
    "every op takes what the real host sends (query absent or \"\", and "
    "null without a crash; "
    "no state.dir/work.dir outside a migration; options without their "
    "optional fields) and never writes to or frees it (read-only pages)",
    0 },
  { "bad-input", pc_check_bad_input,
    "bad input to every op fails cleanly: error status, message, no crash, "
    "no cloud change",
    0 },
  { "leaks", pc_check_leaks,
    "repeated calls (failed ones too) and open/close cycles free what they "
    "allocate",
    0 },
  { "idempotency", pc_check_idempotency,
    "every per-VM op called twice with the same input gives the same outcome "
    "and state and creates nothing new",
    0 },
  { "resume", pc_check_resume,
    "one session through the pipeline: a finished step called again with "
    "its own state (a resumed host) redoes nothing; no call pointer is used "
    "after its call",
    0 },
  { "pending", pc_check_pending, "every PALLET_PENDING comes with a retry-after", 0 },
  { "cancel", pc_check_cancel,
    "a cancelled call returns PALLET_E_CANCELLED or completes within "
    "cancel_bound_ms",
    0 },
  { "cleanup", pc_check_cleanup,
    "cleanup is idempotent and removes everything after a stop at any step", 0 },
  { "outputs", pc_check_outputs, "every emitted text is valid JSON of the documented schema", 0 },
  { "findings", pc_check_findings,
    "validate never returns PALLET_OK with a Critical or Error finding", 0 },
  { "progress", pc_check_progress, "progress never goes backwards", 0 },
  { "stdout", pc_check_stdout, "the provider never writes to stdout", 0 },
  { "secrets", pc_check_secrets,
    "no secret of the config appears in a state, item, result, error or "
    "log",
    0 },
  { "manifests", pc_check_manifests,
    "build_vm's items are valid KubeVirt/Kubernetes objects (the bundled "
    "schemas, pallet-lint-manifests --strict)",
    0 },
  { "capabilities", pc_check_capabilities,
    "declared capabilities work: INVENTORY_QUERY results equal the host's "
    "own filtering",
    0 },
  { "threads", pc_check_threads,
    "calls from several threads, as the thread model allows, behave as "
    "serial calls do",
    0 },
};
#define NCHECKS (sizeof checks / sizeof checks[0])

bool
pc_selected (const char *check)
{
  for (size_t i = 0; i < NCHECKS; i++)
    if (strcmp (checks[i].name, check) == 0)
      return checks[i].selected;
  return false;
}

/* ---- fixture ---- */

static const char default_plan[] =
    "{\"name\":\"conformance\",\"namespace\":\"default\","
    "\"uid\":\"00000000-0000-4000-8000-00000000c0f0\",\"type\":\"cold\","
    "\"targetNamespace\":\"default\",\"targetPowerState\":null,"
    "\"skipGuestConversion\":true,\"spec\":{},"
    "\"vms\":[{\"id\":\"vm-conformance-1\",\"name\":\"conformance-1\",\"index\":0}],"
    "\"networkMap\":[],\"storageMap\":[],"
    "\"source\":{\"name\":\"source\",\"type\":\"source\",\"url\":\"\","
    "\"settings\":{},\"secretRef\":{}},"
    "\"destination\":{\"name\":\"host\",\"type\":\"openshift\",\"url\":\"\","
    "\"settings\":{},\"secretRef\":{}}}";

static const char *const fixture_keys[] = {
  "config",         "plan",        "vms",          "count_command", "inventory_kinds", "cancel_at",
  "call_timeout_s", "max_pending", "max_retry_ms", "live_backend",  "comment",         NULL
};

static int
fixture_error (const char *file, const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "pallet-conformance: fixture %s: ", file);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\n");
  return -1;
}

static int
get_uint (json_t *fx, const char *file, const char *key, unsigned *out, unsigned min, unsigned max)
{
  json_t *v = json_object_get (fx, key);
  if (v == NULL)
    return 0;
  if (!json_is_integer (v) || json_integer_value (v) < min || json_integer_value (v) > max)
    return fixture_error (file, "\"%s\" must be an integer from %u to %u", key, min, max);
  *out = (unsigned) json_integer_value (v);
  return 0;
}

/* Accept nothing silently: every key of the fixture must be known. */
static int
fixture_check_keys (json_t *fx, const char *file)
{
  json_t *v;
  const char *key;

  json_object_foreach (fx, key, v) {
    size_t i;
    for (i = 0; fixture_keys[i] && strcmp (fixture_keys[i], key); i++)
      ;
    if (fixture_keys[i] == NULL) {
      fixture_error (file,
                     "unknown key \"%s\"; the keys are config, plan, "
                     "vms, count_command, inventory_kinds, cancel_at, "
                     "call_timeout_s, max_pending, max_retry_ms, "
                     "live_backend",
                     key);
      return -1;
    }
  }
  return 0;
}

static int
fixture_config (json_t *fx, const char *file)
{
  json_t *v;

  v = json_object_get (fx, "config");
  if (v && !json_is_object (v))
    return fixture_error (file, "\"config\" must be open()'s config object "
                                "{\"provider\", \"secret\", \"settings\"}");
  pc.fx.config = v ? json_incref (v) : json_object ();
  pc.fx.config_text = json_dumps (pc.fx.config, JSON_COMPACT);
  return 0;
}

/* The plan (or the built-in one) and the VMs to run against. */
static int
fixture_vms (json_t *fx, const char *file)
{
  json_t *v = json_object_get (fx, "plan");
  if (v && !json_is_object (v)) {
    fixture_error (file, "\"plan\" must be a normalized plan object");
    return -1;
  }
  pc.fx.plan = v ? json_incref (v) : json_loads (default_plan, 0, NULL);
  v = json_object_get (fx, "vms");
  if (v == NULL)
    v = json_object_get (pc.fx.plan, "vms");
  if (!json_is_array (v) || json_array_size (v) == 0) {
    fixture_error (file, "no VMs: give \"vms\" or a plan with a non-empty "
                         "\"vms\" array");
    return -1;
  }
  for (size_t i = 0; i < json_array_size (v); i++)
    if (!json_is_object (json_array_get (v, i))) {
      fixture_error (file,
                     "vms[%zu] must be an object {\"id\", \"name\", "
                     "\"index\"}",
                     i);
      return -1;
    }
  pc.fx.vms = json_incref (v);
  return 0;
}

static int
fixture_count_command (json_t *fx, const char *file)
{
  json_t *v = json_object_get (fx, "count_command");
  if (v) {
    size_t n = json_array_size (v);
    if (!json_is_array (v) || n == 0) {
      fixture_error (file, "\"count_command\" must be a non-empty argv array "
                           "of strings (it is run without a shell)");
      return -1;
    }
    pc.fx.count_argv = calloc (n + 1, sizeof (char *));
    for (size_t i = 0; i < n; i++) {
      const char *a = json_string_value (json_array_get (v, i));
      if (a == NULL) {
        fixture_error (file, "count_command[%zu] must be a string", i);
        return -1;
      }
      pc.fx.count_argv[i] = strdup (a);
    }
  }
  return 0;
}

static int
fixture_inventory_kinds (json_t *fx, const char *file)
{
  json_t *v = json_object_get (fx, "inventory_kinds");
  if (v) {
    if (!json_is_array (v))
      return fixture_error (file, "\"inventory_kinds\" must be an array of kind names");
    for (size_t i = 0; i < json_array_size (v); i++)
      if (!json_is_string (json_array_get (v, i)))
        return fixture_error (file, "\"inventory_kinds\" must be an array of kind names");
    pc.fx.inventory_kinds = json_incref (v);
  }
  else
    pc.fx.inventory_kinds = json_pack ("[s]", "instances");
  return 0;
}

/* cancel_at, live_backend and the numeric limits. */
static int
fixture_knobs (json_t *fx, const char *file)
{
  json_t *v = json_object_get (fx, "cancel_at");
  if (v) {
    if (!json_is_integer (v) || json_integer_value (v) < 0) {
      fixture_error (file, "\"cancel_at\" must be the number of milliseconds "
                           "into a call at which cancelled() turns true (>= 0)");
      return -1;
    }
    pc.fx.cancel_at_ms = (long) json_integer_value (v);
  }
  v = json_object_get (fx, "live_backend");
  if (v && !json_is_boolean (v)) {
    fixture_error (file, "\"live_backend\" must be true or false");
    return -1;
  }
  pc.fx.live_backend = json_is_true (v);
  if (get_uint (fx, file, "call_timeout_s", &pc.fx.call_timeout_s, 1, 86400)
      || get_uint (fx, file, "max_pending", &pc.fx.max_pending, 1, 100000)
      || get_uint (fx, file, "max_retry_ms", &pc.fx.max_retry_ms, 0, 3600000))
    return -1;
  return 0;
}

static int
load_fixture (const char *file)
{
  json_t *fx;
  json_error_t err;

  pc.fx.call_timeout_s = 120;
  pc.fx.max_pending = 200;
  pc.fx.max_retry_ms = 60000;
  if (file) {
    fx = json_load_file (file, JSON_REJECT_DUPLICATES, &err);
    if (fx == NULL)
      return fixture_error (file, "not valid JSON: %s (line %d); fix the file", err.text, err.line);
    if (!json_is_object (fx)) {
      json_decref (fx);
      return fixture_error (file, "must be a JSON object");
    }
  }
  else {
    file = "(built-in)";
    fx = json_object ();
  }
  int rc = fixture_check_keys (fx, file) != 0 || fixture_config (fx, file) != 0
                   || fixture_vms (fx, file) != 0 || fixture_count_command (fx, file) != 0
                   || fixture_inventory_kinds (fx, file) != 0 || fixture_knobs (fx, file) != 0
               ? -1
               : 0;
  json_decref (fx);
  return rc;
}

static void
free_fixture (void)
{
  json_decref (pc.fx.config);
  free (pc.fx.config_text);
  json_decref (pc.fx.plan);
  json_decref (pc.fx.vms);
  json_decref (pc.fx.inventory_kinds);
  if (pc.fx.count_argv)
    for (size_t i = 0; pc.fx.count_argv[i]; i++)
      free (pc.fx.count_argv[i]);
  free (pc.fx.count_argv);
}

/* ---- the directories pipeline calls get (state.dir, work.dir) ---- */

static char run_dir[PC_DIR_MAX - 16];

static int
make_dirs (void)
{
  const char *t = getenv ("TMPDIR");
  snprintf (run_dir, sizeof run_dir, "%s/pallet-conformance-XXXXXX", t && *t ? t : "/tmp");
  if (mkdtemp (run_dir) == NULL) {
    fprintf (stderr,
             "pallet-conformance: cannot make a directory in %s: "
             "%s; set TMPDIR to a writable directory\n",
             t && *t ? t : "/tmp", strerror (errno));
    run_dir[0] = '\0';
    return -1;
  }
  snprintf (pc_state_dir, sizeof pc_state_dir, "%s/state", run_dir);
  snprintf (pc_work_dir, sizeof pc_work_dir, "%s/work", run_dir);
  if (mkdir (pc_state_dir, 0700) != 0 || mkdir (pc_work_dir, 0700) != 0)
    return -1;
  return 0;
}

static int
rm_one (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb;
  (void) flag;
  (void) ftw;
  remove (p);
  return 0;
}

static void
remove_dirs (void)
{
  if (run_dir[0])
    nftw (run_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- loading ---- */

/* PATH (anything with a '/' or an existing file) or NAME, looked up as
 * pallet-provider-NAME.so in $PALLET_PROVIDER_PATH then the install dir. */
static char *
find_provider (const char *arg)
{
  char *path = NULL, *list = NULL, *save = NULL;
  const char *env = getenv ("PALLET_PROVIDER_PATH");
  if (strchr (arg, '/') || access (arg, F_OK) == 0)
    return strdup (arg);
  if (asprintf (&list, "%s%s%s", env ? env : "", env && *env ? ":" : "", PALLET_PROVIDER_DIR) < 0)
    return NULL;
  for (char *dir = strtok_r (list, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
    if (asprintf (&path, "%s/pallet-provider-%s.so", dir, arg) < 0)
      break;
    if (access (path, F_OK) == 0)
      break;
    free (path);
    path = NULL;
  }
  free (list);
  return path;
}

static json_t *
probe_child (void *arg)
{
  void *dl = dlopen ((const char *) arg, RTLD_NOW | RTLD_LOCAL);
  pallet_provider_entry_fn *entry;
  const struct pallet_provider *p;
  if (dl == NULL)
    return json_pack ("{so}", "error", pc_text (dlerror ()));
  *(void **) (&entry) = dlsym (dl, PALLET_PROVIDER_ENTRY_SYMBOL);
  if (entry == NULL)
    return json_pack ("{ss}", "error", "it has no pallet_provider_entry symbol");
  p = entry (PALLET_ABI_MAJOR, &pc_host);
  if (p == NULL)
    return json_pack ("{ss}", "error",
                      "pallet_provider_entry returned NULL "
                      "for this host's own ABI major");
  return json_pack ("{sI sI}", "major", (json_int_t) p->abi_major, "size",
                    (json_int_t) p->struct_size);
}

/* Loads in a child first, so a provider that crashes in its constructor
 * or entry point is reported rather than taking the suite down. */
static int
load_provider (const char *path)
{
  json_t *r = pc_in_child (probe_child, (void *) path, 60);
  pallet_provider_entry_fn *entry;
  const char *why = json_string_value (json_object_get (r, "error"));
  char *d = NULL;
  if (why == NULL && json_object_get (r, "major") == NULL)
    why = d = pc_describe (r);
  if (why) {
    printf ("FAIL load: rule \"the provider loads with dlopen(RTLD_NOW) and "
            "pallet_provider_entry(PALLET_ABI_MAJOR, host) returns its "
            "vtable\": %s: %s\n",
            strrchr (path, '/') ? strrchr (path, '/') + 1 : path, why);
    free (d);
    json_decref (r);
    return -1;
  }
  json_decref (r);
  pc.dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (pc.dl == NULL)
    return -1;
  *(void **) (&entry) = dlsym (pc.dl, PALLET_PROVIDER_ENTRY_SYMBOL);
  pc.raw = entry (PALLET_ABI_MAJOR, &pc_host);
  /* As the host does: copy what the provider declares, zero the rest. */
  memset (&pc.vt, 0, sizeof pc.vt);
  memcpy (&pc.vt, pc.raw,
          pc.raw->struct_size < sizeof pc.vt ? (size_t) pc.raw->struct_size : sizeof pc.vt);
  /* ABI 1.1: the process-wide setup the host runs once per load. */
  int lr = pc.vt.load ? pc.vt.load () : PALLET_OK;
  if (lr != PALLET_OK) {
    printf ("FAIL load: rule \"load() returns PALLET_OK\": %s: load() "
            "returned %s\n",
            path, pc_status_name (lr));
    return -1;
  }
  return 0;
}

static void
usage (FILE *f)
{
  fprintf (f,
           "usage: pallet-conformance PROVIDER [--fixture FILE] [--only CHECK]...\n"
           "                          [--schemas DIR] [--lint-manifests PROGRAM]\n"
           "                          [--verbose] [--list]\n"
           "\n"
           "Checks that a Pallet provider keeps the provider contract.  PROVIDER is a\n"
           "path to pallet-provider-NAME.so, or a NAME looked up in $PALLET_PROVIDER_PATH\n"
           "and %s.  Exit status: 0 all checks passed, 1 a check failed,\n"
           "2 usage or setup error.  Without --fixture, open() gets {} and a one-VM\n"
           "plan.  See the README (share/doc/pallet) for the fixture format.\n",
           PALLET_PROVIDER_DIR);
}

/* --only CHECK[,CHECK...]: a name, or a prefix such as "abi". */
static int
select_checks (const char *arg)
{
  char *list = strdup (arg), *save = NULL;
  for (char *t = strtok_r (list, ",", &save); t; t = strtok_r (NULL, ",", &save)) {
    bool any = false;
    for (size_t i = 0; i < NCHECKS; i++)
      if (strcmp (checks[i].name, t) == 0
          || (strncmp (checks[i].name, t, strlen (t)) == 0 && checks[i].name[strlen (t)] == '-'))
        checks[i].selected = any = true;
    if (!any) {
      fprintf (stderr,
               "pallet-conformance: --only %s: no such check; "
               "--list shows them\n",
               t);
      free (list);
      return 2;
    }
  }
  free (list);
  return 0;
}

struct cli {
  const char *fixture, *schemas;
  bool only;
};

/* -1 to go on, or the exit code (--list, --help, a usage error). */
static int
parse_args (int argc, char **argv, struct cli *cli)
{
  static const struct option opts[] = {
    { "fixture", required_argument, NULL, 'f' }, { "only", required_argument, NULL, 'o' },
    { "schemas", required_argument, NULL, 's' }, { "lint-manifests", required_argument, NULL, 'm' },
    { "verbose", no_argument, NULL, 'v' },       { "list", no_argument, NULL, 'l' },
    { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
  };
  int c;

  while ((c = getopt_long (argc, argv, "f:o:s:m:vlh", opts, NULL)) != -1) {
    switch (c) {
    case 'f': cli->fixture = optarg; break;
    case 's': cli->schemas = optarg; break;
    case 'm': pc_lint_manifests = optarg; break;
    case 'v': pc.verbose = true; break;
    case 'o':
      cli->only = true;
      if (select_checks (optarg) != 0)
        return 2;
      break;
    case 'l':
      for (size_t i = 0; i < NCHECKS; i++)
        printf ("%-12s %s\n", checks[i].name, checks[i].proves);
      return 0;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage (stderr);
    return 2;
  }
  if (!cli->only)
    for (size_t i = 0; i < NCHECKS; i++)
      checks[i].selected = true;
  return -1;
}

/* Runs the selected checks and prints the tally: how many failed. */
static unsigned
run_checks (void)
{
  unsigned failed = 0, run = 0, skipped = 0;

  for (size_t i = 0; i < NCHECKS; i++) {
    if (!checks[i].selected)
      continue;
    pc_begin_check (checks[i].name);
    checks[i].fn ();
    run++;
    switch (pc_end_check (checks[i].name, checks[i].proves)) {
    case 1: failed++; break;
    case 2: skipped++; break;
    }
  }
  printf ("pallet-conformance: %u passed, %u failed, %u skipped of %u "
          "checks%s\n",
          run - failed - skipped, failed, skipped, run,
          failed ? "; the provider breaks the contract (or the fixture does "
                   "not fit it)"
                 : "");
  return failed;
}

int
main (int argc, char **argv)
{
  struct cli cli = { NULL, NULL, false };
  char *why = NULL, *path;
  int rc;

  if (getenv ("PALLET_LINT_MANIFESTS"))
    pc_lint_manifests = getenv ("PALLET_LINT_MANIFESTS");
  rc = parse_args (argc, argv, &cli);
  if (rc != -1)
    return rc;

  path = find_provider (argv[optind]);
  if (path == NULL) {
    fprintf (stderr,
             "pallet-conformance: provider %s: not found; give a "
             "path to the .so, or a NAME in $PALLET_PROVIDER_PATH\n",
             argv[optind]);
    return 2;
  }
  pc.path = path;
  pc.have_fixture = cli.fixture != NULL;
  if (load_fixture (cli.fixture) == -1) {
    free (path);
    free_fixture ();
    return 2;
  }
  if (!pc_schemas_load (cli.schemas, &why)) {
    fprintf (stderr, "pallet-conformance: %s\n", why ? why : "schemas");
    free (why);
    free (path);
    free_fixture ();
    return 2;
  }
  /* The file's name, not where it sits on this machine. */
  printf ("pallet-conformance %s: %s\n", PALLET_CONFORMANCE_VERSION,
          strrchr (path, '/') ? strrchr (path, '/') + 1 : path);
  if (!cli.fixture)
    pc_note ("fixture", "no --fixture: open() gets {} and a one-VM plan; "
                        "cloud-resource counts are not checked");
  else if (!pc.fx.count_argv)
    pc_note ("fixture", "no count_command: cloud-resource counts are not "
                        "checked");
  if (make_dirs () == -1) {
    remove_dirs ();
    free (path);
    free_fixture ();
    pc_schemas_free ();
    return 2;
  }
  if (load_provider (path) == -1) {
    remove_dirs ();
    free (path);
    free_fixture ();
    pc_schemas_free ();
    return 1;
  }
  printf ("provider: name=%s version=%s abi=%u.%u struct_size=%llu "
          "thread_model=%d cancel_bound_ms=%u\n",
          pc.vt.name ? pc.vt.name : "(null)", pc.vt.version ? pc.vt.version : "(null)",
          pc.raw->abi_major, pc.raw->abi_minor, (unsigned long long) pc.raw->struct_size,
          pc.vt.thread_model, pc.vt.cancel_bound_ms);
  fflush (stdout);

  rc = run_checks () ? 1 : 0;
  pc_report_free ();
  remove_dirs ();
  pc_schemas_free ();
  free_fixture ();
  /* Leave the provider loaded: its threads or atexit handlers may still
   * refer to it. */
  free (path);
  return rc;
}
