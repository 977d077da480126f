/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-provider-null: a provider that simulates a source: the host's
 * and the CLI's test double (and the demo's source).  The example to learn
 * from is examples/provider-hello.
 *
 * Its config ({"settings": {...}}, or the settings object alone) says:
 *   "vms":            [{"id", "name", ...}]   the source's VMs (inventory,
 *                                             validate); absent: any VM
 *   "pending":        N or {"transfer": N}    PENDING N times per op
 *   "retry_after_ms": ms for PENDING (default 10)
 *   "delay_ms":       N or {"op": N}          work per call; polls cancel
 *   "transient":      {"op": N}               E_TRANSIENT N times per op
 *   "fail_at":        "op", "fail_vm": "id", "fail_code": "FAILED"
 *   "count_file":     path; one line "VMID OP STATUS [rollback]" per call
 *   "manifests":      [{object}]              build_vm's items (labelled)
 *   "cleanup_input_file": path; one JSON line per cleanup call
 *   "misbehave":      {"op": "silent-error" | "pending-no-retry" |
 *                     "bad-json"}             to test the host's checks
 * All progress lives in the VM state it emits, so calls are idempotent and
 * a host that crashes can resume.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <pallet/provider.h>

struct null_handle {
  json_t *settings;
  atomic_int busy; /* calls in this handle now */
};

/* Calls in the whole provider now: lets tests see the thread model. */
static atomic_int busy_all;

#ifndef NULL_NAME
#define NULL_NAME         "null"
#define NULL_THREAD_MODEL PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE
#endif

static pallet_open_fn null_open;
static pallet_close_fn null_close;
static pallet_validate_fn null_validate;
static pallet_inventory_fn null_inventory;
static pallet_prepare_source_fn null_prepare_source;
static pallet_transfer_fn null_transfer;
static pallet_convert_fn null_convert;
static pallet_build_vm_fn null_build_vm;
static pallet_cleanup_fn null_cleanup;

static void count_call (struct null_handle *h, const char *vm, const char *op, const char *status,
                        int rollback);

static void *
null_open (struct pallet_call *call, const char *config_json)
{
  json_error_t err;
  json_t *config = json_loads (config_json, 0, &err);
  if (!json_is_object (config)) {
    pallet_error (call, PALLET_E_INVALID,
                  "config is not a JSON object "
                  "(line %d: %s): pass {\"settings\": {...}}",
                  err.line, err.text);
    json_decref (config);
    return NULL;
  }
  json_t *settings = json_object_get (config, "settings");
  if (settings && !json_is_object (settings)) {
    pallet_error (call, PALLET_E_INVALID,
                  "config.settings must be an "
                  "object, not a %s: pass {\"settings\": {...}}",
                  json_is_string (settings) ? "string" : "non-object");
    json_decref (config);
    return NULL;
  }
  struct null_handle *h = calloc (1, sizeof *h);
  if (h == NULL) {
    json_decref (config);
    pallet_error (call, PALLET_E_NOMEM, "out of memory");
    return NULL;
  }
  json_t *s = json_object_get (config, "settings");
  h->settings = json_incref (json_is_object (s) ? s : config);
  json_decref (config);
  count_call (h, "-", "open", "OK", 0);
  return h;
}

static void
null_close (void *handle)
{
  struct null_handle *h = handle;
  count_call (h, "-", "close", "OK", 0);
  json_decref (h->settings);
  free (h);
}

/* A per-op number: N for all ops, or {"op": N}. */
static long
per_op (struct null_handle *h, const char *key, const char *op)
{
  json_t *v = json_object_get (h->settings, key);
  if (json_is_object (v))
    v = json_object_get (v, op);
  return json_is_integer (v) ? (long) json_integer_value (v) : 0;
}

static void
count_call (struct null_handle *h, const char *vm, const char *op, const char *status, int rollback)
{
  const char *path = json_string_value (json_object_get (h->settings, "count_file"));
  if (path == NULL)
    return;
  int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  char line[512];
  int n = snprintf (line, sizeof line, "%s %s %s%s\n", vm, op, status, rollback ? " rollback" : "");
  /* One write with O_APPEND: lines never interleave. */
  if (n > 0 && write (fd, line, (size_t) n) < 0)
    n = -1;
  close (fd);
}

/* A source VM by id, or by name for plans that give only a name. */
static json_t *
find_vm (struct null_handle *h, const char *key)
{
  size_t i;
  json_t *vm;
  json_array_foreach (json_object_get (h->settings, "vms"), i, vm) {
    const char *id = json_string_value (json_object_get (vm, "id"));
    const char *name = json_string_value (json_object_get (vm, "name"));
    if (key && ((id && strcmp (id, key) == 0) || (name && strcmp (name, key) == 0)))
      return vm;
  }
  return NULL;
}

static int
emit_state (struct pallet_call *call, json_t *state)
{
  char *s = json_dumps (state, JSON_COMPACT);
  int r = s ? pallet_emit (call, PALLET_EMIT_STATE, s) : -1;
  free (s);
  return r;
}

static int
status_code (const char *name)
{
  /* "INVALID" or "E_INVALID" for PALLET_E_INVALID. */
#define STATUS_NAME(sym, num, text) [num] = #sym,
  static const char *const names[] = { PALLET_STATUS_LIST (STATUS_NAME) };
#undef STATUS_NAME
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
    if (strcmp (name, names[i]) == 0
        || (strncmp (names[i], "E_", 2) == 0 && strcmp (name, names[i] + 2) == 0))
      return (int) i;
  return PALLET_E_FAILED;
}

/* The host's per-VM input: {plan: {}, vm: {}, state: {}?, options: {}?}.
 * Returns the parsed input, or NULL after reporting what is wrong. */
static json_t *
parse_input (struct pallet_call *call, const char *input_json, const char *op)
{
  json_error_t err;
  json_t *in = json_loads (input_json, 0, &err);
  const char *bad = NULL;
  if (!json_is_object (in))
    bad = "the input is not a JSON object";
  else if (!json_is_object (json_object_get (in, "plan")))
    bad = "input.plan must be an object";
  else if (!json_is_object (json_object_get (in, "vm")))
    bad = "input.vm must be an object";
  else if (json_object_get (in, "state") && !json_is_object (json_object_get (in, "state"))
           && !json_is_null (json_object_get (in, "state")))
    bad = "input.state must be an object";
  else if (json_object_get (in, "options") && !json_is_object (json_object_get (in, "options")))
    bad = "input.options must be an object";
  if (bad) {
    pallet_error (call, PALLET_E_INVALID,
                  "%s: %s: pass {\"plan\": {...}, "
                  "\"vm\": {\"id\": ...}, \"state\": {...}}",
                  op, bad);
    json_decref (in);
    return NULL;
  }
  return in;
}

/* Every per-VM op: the same simulated reconcile step. */
static int
step (void *handle, struct pallet_call *call, const char *input_json, const char *op)
{
  struct null_handle *h = handle;
  json_t *in = parse_input (call, input_json, op);
  if (in == NULL)
    return PALLET_E_INVALID;
  json_t *opts = json_object_get (in, "options");
  json_t *jvm = json_object_get (in, "vm");
  const char *vm = json_string_value (json_object_get (jvm, "id"));
  if (vm == NULL) /* a plan may name a VM without an id */
    vm = json_string_value (json_object_get (jvm, "name"));
  int rollback = json_is_true (json_object_get (opts, "rollback"));
  int rc = PALLET_OK;
  const char *mis =
      json_string_value (json_object_get (json_object_get (h->settings, "misbehave"), op));
  if (vm == NULL) {
    pallet_error (call, PALLET_E_INVALID,
                  "input has no vm.id or vm.name: "
                  "the host must pass {\"vm\": {\"id\": ...}}");
    json_decref (in);
    return PALLET_E_INVALID;
  }
  /* Record overlapping calls: "- overlap-handle" must never appear;
   * "- overlap-all" only for a provider that is not SERIALIZE_ALL. */
  if (atomic_fetch_add (&h->busy, 1) > 0)
    count_call (h, "-", "overlap-handle", "SEEN", 0);
  if (atomic_fetch_add (&busy_all, 1) > 0)
    count_call (h, "-", "overlap-all", "SEEN", 0);
  json_t *state = json_deep_copy (json_object_get (in, "state"));
  if (!json_is_object (state)) {
    json_decref (state);
    state = json_object ();
  }
  char key[128];

  /* Work that takes time, polling cancel like a real copy would. */
  for (long ms = per_op (h, "delay_ms", op); ms > 0; ms -= 10) {
    if (pallet_cancelled (call)) {
      pallet_error (call, PALLET_E_CANCELLED, "%s of %s cancelled", op, vm);
      rc = PALLET_E_CANCELLED;
      goto out;
    }
    struct timespec ts = { 0, 10 * 1000000L };
    nanosleep (&ts, NULL);
  }
  const char *fail_at = json_string_value (json_object_get (h->settings, "fail_at"));
  const char *fail_vm = json_string_value (json_object_get (h->settings, "fail_vm"));
  if (!rollback && fail_at && strcmp (fail_at, op) == 0
      && (fail_vm == NULL || strcmp (fail_vm, vm) == 0)) {
    rc = status_code (json_string_value (json_object_get (h->settings, "fail_code")));
    pallet_error (call, rc, "%s of %s failed as configured (fail_at)", op, vm);
    goto out;
  }
  if (mis && strcmp (mis, "silent-error") == 0) {
    rc = PALLET_E_FAILED; /* no pallet_error: the host supplies one */
    goto out;
  }
  if (mis && strcmp (mis, "pending-no-retry") == 0) {
    rc = PALLET_PENDING;
    goto out;
  }
  if (mis && strcmp (mis, "bad-json") == 0) {
    pallet_emit (call, PALLET_EMIT_STATE, "{not json");
    goto out;
  }
  snprintf (key, sizeof key, "%s.transient", op);
  json_int_t t = json_integer_value (json_object_get (state, key));
  if (!rollback && t < per_op (h, "transient", op)) {
    json_object_set_new (state, key, json_integer (t + 1));
    emit_state (call, state);
    pallet_error (call, PALLET_E_TRANSIENT, "%s of %s: simulated throttling", op, vm);
    rc = PALLET_E_TRANSIENT;
    goto out;
  }
  snprintf (key, sizeof key, "%s.polls", op);
  json_int_t polls = json_integer_value (json_object_get (state, key)) + 1;
  long pending = rollback ? 0 : per_op (h, "pending", op);
  json_object_set_new (state, key, json_integer (polls));
  pallet_progress (call, vm, op, (uint64_t) polls, (uint64_t) pending + 1, "polls");
  if (polls <= pending) {
    json_t *ra = json_object_get (h->settings, "retry_after_ms");
    pallet_retry_after (call, json_is_integer (ra) ? (uint32_t) json_integer_value (ra) : 10);
    rc = PALLET_PENDING;
  }
  else
    json_object_set_new (state, op, json_string (rollback ? "rolled-back" : "done"));
  emit_state (call, state);

out:
  count_call (h, vm, op,
              rc == PALLET_OK        ? "OK"
              : rc == PALLET_PENDING ? "PENDING"
                                     : "ERROR",
              rollback);
  atomic_fetch_sub (&h->busy, 1);
  atomic_fetch_sub (&busy_all, 1);
  json_decref (state);
  json_decref (in);
  return rc;
}

static int
null_validate (void *h, struct pallet_call *call, const char *input_json)
{
  struct null_handle *nh = h;
  json_t *in = parse_input (call, input_json, "validate");
  if (in == NULL)
    return PALLET_E_INVALID;
  json_t *jvm = json_object_get (in, "vm");
  const char *id = json_string_value (json_object_get (jvm, "id"));
  if (id == NULL)
    id = json_string_value (json_object_get (jvm, "name"));
  int missing = json_is_array (json_object_get (nh->settings, "vms")) && find_vm (nh, id) == NULL;
  if (missing) {
    pallet_emit (call, PALLET_EMIT_ITEM,
                 "{\"category\":\"Critical\",\"type\":\"VMNotFound\","
                 "\"field\":\"vm.id\",\"message\":\"no such VM in the source\"}");
    pallet_error (call, PALLET_E_NOT_FOUND,
                  "VM %s is not in the source: "
                  "list it in settings.vms",
                  id ? id : "(no id)");
    json_decref (in);
    return PALLET_E_NOT_FOUND;
  }
  json_decref (in);
  return step (h, call, input_json, "validate");
}

static int
null_inventory (void *handle, struct pallet_call *call, const char *input_json)
{
  struct null_handle *h = handle;
  json_t *in = json_loads (input_json, 0, NULL);
  const char *kind = json_string_value (json_object_get (in, "kind"));
  json_t *query = json_object_get (in, "query");
  if (query && !json_is_string (query) && !json_is_null (query)) {
    pallet_error (call, PALLET_E_INVALID,
                  "inventory: input.query must be a "
                  "string such as \"where powerState = 'On'\"");
    json_decref (in);
    return PALLET_E_INVALID;
  }
  int ok = kind && (strcmp (kind, "instances") == 0 || strcmp (kind, "vms") == 0);
  if (!ok) {
    pallet_error (call, PALLET_E_UNSUPPORTED,
                  "inventory kind '%s' is not "
                  "known: use \"instances\"",
                  kind ? kind : "(none)");
    json_decref (in);
    return PALLET_E_UNSUPPORTED;
  }
  json_decref (in);
  size_t i;
  json_t *vm;
  json_array_foreach (json_object_get (h->settings, "vms"), i, vm) {
    char *s = json_dumps (vm, JSON_COMPACT);
    if (s == NULL || pallet_emit (call, PALLET_EMIT_ITEM, s) != 0) {
      free (s);
      pallet_error (call, PALLET_E_NOMEM, "cannot emit VM %zu", i);
      return PALLET_E_NOMEM;
    }
    free (s);
  }
  return PALLET_OK;
}

static int
null_prepare_source (void *h, struct pallet_call *c, const char *in)
{
  return step (h, c, in, "prepare_source");
}

static int
null_transfer (void *h, struct pallet_call *c, const char *in)
{
  return step (h, c, in, "transfer");
}

static int
null_convert (void *h, struct pallet_call *c, const char *in)
{
  return step (h, c, in, "convert");
}

/* settings.manifests: the build_vm items, labelled like a real
 * provider's (migration, vmID, plan). */
static int
emit_manifests (struct null_handle *h, struct pallet_call *c, const char *in_json)
{
  json_t *in = json_loads (in_json, 0, NULL);
  const char *mig =
      json_string_value (json_object_get (json_object_get (in, "options"), "migrationUID"));
  const char *vm = json_string_value (json_object_get (json_object_get (in, "vm"), "id"));
  const char *plan = json_string_value (json_object_get (json_object_get (in, "plan"), "uid"));
  size_t i;
  json_t *m;
  int rc = PALLET_OK;
  json_array_foreach (json_object_get (h->settings, "manifests"), i, m) {
    json_t *o = json_deep_copy (m), *md = json_object_get (o, "metadata");
    json_t *labels = json_object_get (md, "labels");
    if (!json_is_object (labels)) {
      labels = json_object ();
      json_object_set_new (md, "labels", labels);
    }
    json_object_set_new (labels, "migration", json_string (mig ? mig : ""));
    json_object_set_new (labels, "vmID", json_string (vm ? vm : ""));
    json_object_set_new (labels, "plan", json_string (plan ? plan : "none"));
    char *text = json_dumps (o, JSON_COMPACT);
    if (!text || pallet_emit (c, PALLET_EMIT_ITEM, text) != 0) {
      pallet_error (c, PALLET_E_NOMEM, "cannot emit manifest %zu", i);
      rc = PALLET_E_NOMEM;
    }
    free (text);
    json_decref (o);
  }
  json_decref (in);
  return rc;
}

static int
null_build_vm (void *h, struct pallet_call *c, const char *in)
{
  int rc = step (h, c, in, "build_vm");
  return rc == PALLET_OK ? emit_manifests (h, c, in) : rc;
}

/* settings.cleanup_input_file: one line per cleanup call, its input's
 * "cluster" (or null) and rollback flag. */
static void
record_cleanup (struct null_handle *h, const char *in_json)
{
  const char *path = json_string_value (json_object_get (h->settings, "cleanup_input_file"));
  if (path == NULL)
    return;
  json_t *in = json_loads (in_json, 0, NULL);
  json_t *line = json_pack ("{s:O?,s:O?}", "cluster", json_object_get (in, "cluster"), "rollback",
                            json_object_get (json_object_get (in, "options"), "rollback"));
  char *text = line ? json_dumps (line, JSON_COMPACT) : NULL;
  FILE *f = text ? fopen (path, "a") : NULL;
  if (f) {
    fprintf (f, "%s\n", text);
    fclose (f);
  }
  free (text);
  json_decref (line);
  json_decref (in);
}

static int
null_cleanup (void *h, struct pallet_call *c, const char *in)
{
  record_cleanup (h, in);
  return step (h, c, in, "cleanup");
}

/* What the host checks config.settings and spec.settings against. */
static const struct pallet_setting null_settings[] = {
  { "vms", PALLET_SETTING_JSON, NULL,
    "[{\"id\", \"name\", ...}]: the source's VMs; absent: any VM" },
  { "pending", PALLET_SETTING_JSON, "0", "N or {\"op\": N}: return PENDING N times per op" },
  { "retry_after_ms", PALLET_SETTING_INT, "10", "the retry-after of PENDING" },
  { "delay_ms", PALLET_SETTING_JSON, "0",
    "N or {\"op\": N}: milliseconds of work per call, polling cancel" },
  { "transient", PALLET_SETTING_JSON, NULL,
    "{\"op\": N}: return E_TRANSIENT N times per op first" },
  { "fail_at", PALLET_SETTING_STRING, NULL, "the op that fails" },
  { "fail_vm", PALLET_SETTING_STRING, NULL, "the VM id whose fail_at op fails; absent: every VM" },
  { "fail_code", PALLET_SETTING_STRING, "FAILED",
    "the status of fail_at: FAILED, AUTH, NOT_FOUND ..." },
  { "count_file", PALLET_SETTING_STRING, NULL,
    "append one line \"VMID OP STATUS [rollback]\" per call" },
  { "manifests", PALLET_SETTING_JSON, NULL,
    "[{Kubernetes object}]: build_vm's items, labelled migration, vmID and plan" },
  { "cleanup_input_file", PALLET_SETTING_STRING, NULL,
    "append one line {\"cluster\", \"rollback\"} per cleanup call" },
  { "misbehave", PALLET_SETTING_JSON, NULL,
    "{\"op\": \"silent-error\" | \"pending-no-retry\" | \"bad-json\"}: "
    "break the contract on purpose" },
  { NULL, 0, NULL, NULL }
};

PALLET_PROVIDER_DEFINE (null_provider, .name = NULL_NAME, .version = "1.0.0",
                        .description = "simulated source for tests and the author's guide",
                        .thread_model = NULL_THREAD_MODEL, .cancel_bound_ms = 100,
                        .capabilities = PALLET_CAP_COLD_MIGRATION | PALLET_CAP_COPY,
                        .open = null_open, .close = null_close, .validate = null_validate,
                        .inventory = null_inventory, .prepare_source = null_prepare_source,
                        .transfer = null_transfer, .convert = null_convert,
                        .build_vm = null_build_vm, .cleanup = null_cleanup,
                        .settings = null_settings);
