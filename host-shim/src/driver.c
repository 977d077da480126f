/* SPDX-License-Identifier: Apache-2.0 */
/* The driver: runs a plan VM by VM through the ops, persisting progress. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"
#include "state.h"
#include "driver.h"

enum { VM_OK, VM_FAILED, VM_CANCELLED, VM_IOERR, VM_SKIPPED };
enum { MODE_MIGRATE, MODE_CLEANUP };

/* Keys of one phase of a VM's state file. */
struct keys {
  const char *attempts, *errors, *error;
};
static const struct keys migrate_keys = { "attempts", "errors", "error" };
static const struct keys rollback_keys = { "rollbackAttempts", "rollbackErrors", "rollbackError" };

static const int migrate_steps[] = {
  PALLET_OP_VALIDATE, PALLET_OP_PREPARE_SOURCE, PALLET_OP_TRANSFER,
  PALLET_OP_CONVERT,  PALLET_OP_BUILD_VM,       PALLET_OP_CLEANUP,
};

static const char *vm_key (json_t *vm);
struct driver;
static void summary (struct driver *d, int ret);
static const char *vm_label (json_t *vm);

/* --- events ------------------------------------------------------------- */

/* Reports a STEP event of v; j, when given, carries extra members. */
static void
event_json (struct vmrun *v, const char *what, const char *step, const char *status,
            const char *msg, json_t *extra)
{
  json_t *j = json_pack ("{s:s,s:s,s:s}", "event", what, "vm", v->id, "name", v->name);
  if (j == NULL)
    return;
  if (step)
    json_object_set_new (j, "step", json_string (step));
  if (status)
    json_object_set_new (j, "status", json_string (status));
  if (msg)
    json_object_set_new (j, "message", json_string (msg));
  if (extra)
    json_object_update (j, extra);
  struct pallet_event ev = { .type = PALLET_EVENT_STEP,
                             .what = what,
                             .vm = v->id,
                             .name = v->name,
                             .step = step,
                             .status = status,
                             .message = msg };
  Pallet_sink_emit (v->d->sink, &ev, j);
  json_decref (j);
}

static void
event (struct vmrun *v, const char *what, const char *step, const char *status, const char *msg)
{
  event_json (v, what, step, status, msg, NULL);
}

void
Pallet_drv_event (struct vmrun *v, const char *what, const char *step, const char *status,
                  const char *msg, json_t *extra)
{
  event_json (v, what, step, status, msg, extra);
}

/* --- helpers -------------------------------------------------------------- */

/* The run's cancel level: the process-wide flag, the caller's token and
 * the run's own (the marker's). */
static int
level (const struct driver *d)
{
  return Pallet_cancel_seen (&d->own, d->o.cancel);
}

static int
cancelled_for (const struct driver *d, int rollback)
{
  return level (d) >= (rollback ? 2 : 1);
}

/* Is the cutover of a warm migration due?  At the plan's cutover time,
 * or once `pallet cutover` wrote its marker (at its --at time, if any). */
static int
cutover_due (const struct driver *d)
{
  time_t now = time (NULL);
  if (d->plan_cutover >= 0 && (int64_t) now >= d->plan_cutover)
    return 1;
  if (d->cutover_marker == NULL || access (d->cutover_marker, F_OK) != 0)
    return 0;
  json_t *j = json_load_file (d->cutover_marker, 0, NULL);
  const char *at = json_string_value (json_object_get (j, "at"));
  int64_t t;
  /* An unreadable marker (mid-write) counts as "now": it was asked for. */
  int due = at == NULL || pallet_parse_time (at, &t) != 0 || (int64_t) now >= t;
  json_decref (j);
  return due;
}

/* Sleeps ms, waking early on cancel, and when the cutover becomes due (a
 * warm VM waiting out its precopy interval reacts at once). */
static void
nap (struct driver *d, unsigned ms, int rollback)
{
  int cut = rollback || cutover_due (d);
  unsigned n = 0;
  while (ms > 0 && !cancelled_for (d, rollback)) {
    unsigned chunk = ms < 20 ? ms : 20;
    struct timespec ts = { 0, (long) chunk * 1000000L };
    nanosleep (&ts, NULL);
    ms -= chunk;
    if (!cut && ++n % 4 == 0 && cutover_due (d))
      break;
  }
}

void
Pallet_drv_nap (struct vmrun *v, unsigned ms, int rollback)
{
  nap (v->d, ms, rollback);
}

int
Pallet_drv_cancelled (struct vmrun *v, int rollback)
{
  return cancelled_for (v->d, rollback);
}

static void
set_str (json_t *o, const char *k, const char *v)
{
  json_object_set_new (o, k, v ? json_string (v) : json_null ());
}

static void
stamp (json_t *doc, const char *key)
{
  json_t *ts = json_object_get (doc, "timestamps");
  if (!json_is_object (ts)) {
    ts = json_object ();
    json_object_set_new (doc, "timestamps", ts);
  }
  char *now = Pallet_now_iso ();
  set_str (ts, key, now);
  free (now);
}

static int
save (struct vmrun *v)
{
  stamp (v->doc, "updated");
  if (Pallet_write_json_file (v->path, v->doc) != 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
    return -1;
  }
  return 0;
}

int
Pallet_drv_save (struct vmrun *v)
{
  return save (v);
}

static int
in_list (json_t *doc, const char *key, const char *name)
{
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (doc, key), i, e)
    if (json_is_string (e) && strcmp (json_string_value (e), name) == 0)
      return 1;
  return 0;
}

static void
add_to_list (json_t *doc, const char *key, const char *name)
{
  json_t *a = json_object_get (doc, key);
  if (!json_is_array (a)) {
    a = json_array ();
    json_object_set_new (doc, key, a);
  }
  if (!in_list (doc, key, name))
    json_array_append_new (a, json_string (name));
}

static char *
build_input (struct vmrun *v, const char *step, int rollback, unsigned attempt)
{
  json_t *state = json_object_get (v->doc, "state");
  json_t *empty = json_object ();
  json_t *in = json_pack (
      "{s:O,s:O,s:O,s:{s:s,s:b,s:b,s:s,s:i,s:O,s:b,s:b}}", "plan", v->d->plan, "vm", v->vm, "state",
      json_is_object (state) ? state : empty, "options", "migrationUID", v->d->uid, "cancelled",
      level (v->d) > 0, "rollback", rollback, "step", step, "attempt", (int) attempt, "succeeded",
      json_object_get (v->doc, "succeeded") ? json_object_get (v->doc, "succeeded") : json_false (),
      "cutover", !rollback && cutover_due (v->d), "onDemand", v->d->mode == MODE_CLEANUP);
  /* Added in ABI 1.1: cleanup learns whether the cluster ran the Pods
   * and whether the VM booted. */
  json_t *rec = json_object_get (v->doc, "cluster");
  if (in && strcmp (step, "cleanup") == 0) {
    const char *boot =
        json_string_value (json_object_get (json_object_get (rec, "boot"), "result"));
    json_object_set_new (in, "cluster",
                         json_is_object (rec)
                             ? json_pack ("{s:s,s:b,s:b}", "mode", "apply", "podsSucceeded",
                                          json_is_true (json_object_get (rec, "podsSucceeded")),
                                          "vmBooted", boot && !strcmp (boot, "booted"))
                             : json_pack ("{s:s}", "mode", "manifests"));
  }
  char *s = in ? json_dumps (in, JSON_COMPACT) : NULL;
  json_decref (in);
  json_decref (empty);
  return s;
}

static unsigned
backoff_ms (const struct driver *d, unsigned errors)
{
  unsigned ms = d->o.backoff_ms;
  for (unsigned i = 1; i < errors && ms < d->o.backoff_max_ms; i++)
    ms *= 2;
  return ms > d->o.backoff_max_ms ? d->o.backoff_max_ms : ms;
}

static void
set_error (json_t *doc, const char *key, int status, const char *msg)
{
  json_t *e = json_pack ("{s:s,s:i,s:s}", "code", pallet_status_name (status), "status", status,
                         "message", msg ? msg : "");
  json_object_set_new (doc, key, e ? e : json_null ());
}

char *
Pallet_drv_manifest_dir (struct vmrun *v)
{
  char *dir = NULL;
  const char *key = v->id ? v->id : v->name;
  if (asprintf (&dir, "%s/%s", v->d->output_dir, key ? key : "vm") < 0)
    return NULL;
  return dir;
}

/* The file name of item i: <stage order>-<stage>-NN-<kind>-<name>.json,
 * so that `kubectl apply -f DIR` creates storage, copy Pods, the
 * conversion Pod and the VM in that order.  Names are DNS-1123 from the
 * provider, but never trust a path part. */
static int
manifest_name (const json_t *m, size_t i, char *out, size_t n, char **errmsg)
{
  const char *kind = json_string_value (json_object_get (m, "kind"));
  const char *name = json_string_value (json_object_get (json_object_get (m, "metadata"), "name"));
  const char *stage = NULL;
  int rank = Pallet_cluster_stage_rank (m, &stage, errmsg);
  if (!rank)
    return -1;
  char safe[128];
  snprintf (safe, sizeof safe, "%s-%s", kind ? kind : "object", name ? name : "unnamed");
  for (char *c = safe; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
          || *c == '-' || *c == '.'))
      *c = '_';
  snprintf (out, n, "%d-%s-%02zu-%s.json", rank, stage, i, safe);
  return 0;
}

/* Writes build_vm's items (Kubernetes manifests) as
 * <output dir>/<vm>/<stage order>-..., atomically.  JSON is YAML.  An
 * item with an unknown pallet.dev/stage is an error (in *errmsg). */
static int
write_manifests (struct vmrun *v, char **items, size_t n, char **errmsg)
{
  char *dir = Pallet_drv_manifest_dir (v);
  if (dir == NULL)
    return -1;
  int r = Pallet_mkdirs (dir);
  for (size_t i = 0; r == 0 && i < n; i++) {
    json_t *m = json_loads (items[i], 0, NULL);
    char *path = NULL, fname[200];
    if (m && manifest_name (m, i, fname, sizeof fname, errmsg) != 0) {
      json_decref (m);
      free (dir);
      return -1;
    }
    if (!m || asprintf (&path, "%s/%s", dir, fname) < 0)
      r = -1;
    else
      r = Pallet_write_json_file (path, m);
    free (path);
    json_decref (m);
  }
  if (r != 0)
    Pallet_log (PALLET_LOG_ERROR,
                "cannot write the manifests of %s into %s: %s; "
                "check that the directory is writable (--output-dir)",
                v->name ? v->name : "a VM", dir, strerror (errno));
  else
    event (v, "manifests", "build_vm", dir, NULL);
  free (dir);
  return r;
}

/* Warm migration: the rounds the provider reports in state.warm. */
static json_int_t
warm_rounds (json_t *doc)
{
  json_t *w = json_object_get (json_object_get (doc, "state"), "warm");
  return json_integer_value (json_object_get (w, "rounds"));
}

/* One line per finished precopy round. */
static void
warm_round_event (struct vmrun *v, json_int_t *seen)
{
  json_int_t n = warm_rounds (v->doc);
  if (n <= *seen)
    return;
  *seen = n;
  json_t *w = json_object_get (json_object_get (v->doc, "state"), "warm");
  json_t *bytes = json_array_get (json_object_get (w, "bytesPerRound"), (size_t) (n - 1));
  const char *next = json_string_value (json_object_get (w, "nextRoundAt"));
  int final = json_is_true (json_object_get (w, "done"));
  char msg[200];
  snprintf (msg, sizeof msg, "round %lld done (%s): %lld bytes copied%s%s%s", (long long) (n - 1),
            n == 1  ? "full copy"
            : final ? "final delta"
                    : "delta",
            (long long) json_integer_value (bytes), final || !next ? "" : "; next round at ",
            final || !next ? "" : next, final || !next ? "" : " unless cut over");
  event (v, "precopy", "transfer", "precopy", msg);
}

/* After a warm transfer: the downtime, from the stop of the source to the
 * end of the last delta. */
static void
warm_downtime_event (struct vmrun *v)
{
  json_t *w = json_object_get (json_object_get (v->doc, "state"), "warm");
  json_t *dt = json_object_get (w, "downtimeSeconds");
  if (!json_is_number (dt))
    return;
  double secs = json_number_value (dt);
  json_int_t rounds = json_integer_value (json_object_get (w, "rounds"));
  const char *stopped = json_string_value (json_object_get (w, "stoppedAt"));
  const char *last = json_string_value (json_object_get (w, "lastDeltaDoneAt"));
  char msg[300];
  snprintf (msg, sizeof msg,
            "downtime %.3f s (source stopped at %s, last "
            "delta done at %s; %lld rounds)",
            secs, stopped ? stopped : "-", last ? last : "-", (long long) rounds);
  json_t *x = json_pack ("{s:f,s:I,s:O?,s:O?}", "downtimeSeconds", secs, "rounds", rounds,
                         "stoppedAt", json_object_get (w, "stoppedAt"), "lastDeltaDoneAt",
                         json_object_get (w, "lastDeltaDoneAt"));
  event_json (v, "downtime", "transfer", NULL, msg, x);
  json_decref (x);
}

/* cleanup's items: each one kept for later ("until") is recorded in the
 * VM's state file (retained) and reported with the follow-up; under
 * `pallet cleanup` each deletion is reported too. */
static void
cleanup_items (struct vmrun *v, char **items, size_t n, int done)
{
  json_t *kept = json_array ();
  for (size_t i = 0; i < n; i++) {
    json_t *it = json_loads (items[i], 0, NULL);
    const char *kind = json_string_value (json_object_get (it, "kind"));
    const char *id = json_string_value (json_object_get (it, "id"));
    const char *action = json_string_value (json_object_get (it, "action"));
    const char *until = json_string_value (json_object_get (it, "until"));
    char msg[512];
    if (kind && id && action && !strcmp (action, "kept") && until) {
      json_array_append (kept, it);
      const char *why = json_string_value (json_object_get (it, "reason"));
      snprintf (msg, sizeof msg, "%s %s: %s", kind, id, why ? why : until);
      event_json (v, "retained", "cleanup", "kept", msg, it);
    }
    else if (kind && id && action && v->d->mode == MODE_CLEANUP) {
      snprintf (msg, sizeof msg, "%s %s", kind, id);
      event_json (v, "cleaned", "cleanup", action, msg, it);
    }
    json_decref (it);
  }
  if (!done) {
    json_decref (kept);
    return;
  }
  json_object_set_new (v->doc, "retained", kept);
  if (json_array_size (kept) == 0)
    return;
  /* Each condition once: "the copy Pod ... has succeeded and the VM ...". */
  char when[512] = "";
  size_t i;
  json_t *it;
  json_array_foreach (kept, i, it) {
    const char *u = json_string_value (json_object_get (it, "until"));
    if (!strstr (when, u) && strlen (when) + strlen (u) + 6 < sizeof when) {
      if (*when)
        strcat (when, " and ");
      strcat (when, u);
    }
  }
  char msg[1024];
  snprintf (msg, sizeof msg,
            "%zu resource(s) kept for later; once %s, run `pallet cleanup` with this plan "
            "(--state-dir %s) to delete them",
            json_array_size (kept), when, v->d->state_dir);
  event (v, "follow-up", "cleanup", "follow-up", msg);
}

/* The reconcile loop of one op of one VM. */
static int
run_step (struct vmrun *v, int op, int rollback, const struct keys *k)
{
  struct driver *d = v->d;
  const char *name = pallet_op_name (op);
  unsigned attempts = (unsigned) json_integer_value (json_object_get (v->doc, k->attempts));
  unsigned errors = (unsigned) json_integer_value (json_object_get (v->doc, k->errors));
  json_int_t rounds_seen = warm_rounds (v->doc);
  for (;;) {
    if (cancelled_for (d, rollback))
      return STEP_CANCELLED;
    char *input = build_input (v, name, rollback, attempts + 1);
    if (input == NULL) {
      set_error (v->doc, k->error, PALLET_E_NOMEM, "out of memory");
      return STEP_FAILED;
    }
    struct pallet_call_result r;
    struct Pallet_call_opts co = { .rollback = rollback,
                                   .cancel = &d->own,
                                   .cancel2 = d->o.cancel };
    Pallet_call_op (v->s, op, v->name, input, &co, &r);
    free (input);
    attempts++;
    json_object_set_new (v->doc, k->attempts, json_integer (attempts));
    json_object_set_new (v->doc, "lastStatus", json_string (pallet_status_name (r.status)));
    if (r.state) {
      json_t *st = json_loads (r.state, 0, NULL);
      if (st)
        json_object_set_new (v->doc, "state", st);
    }
    if (r.result) {
      json_t *res = json_loads (r.result, JSON_DECODE_ANY, NULL);
      json_t *all = json_object_get (v->doc, "results");
      if (!json_is_object (all)) {
        all = json_object ();
        json_object_set_new (v->doc, "results", all);
      }
      if (res)
        json_object_set_new (all, name, res);
    }
    if (r.skipped && !rollback)
      add_to_list (v->doc, "skipped", name);
    int status = r.status;
    if (op == PALLET_OP_CLEANUP && !rollback)
      cleanup_items (v, r.items, r.n_items, status == PALLET_OK);
    char *werr = NULL;
    if (op == PALLET_OP_BUILD_VM && status == PALLET_OK && r.n_items > 0
        && write_manifests (v, r.items, r.n_items, &werr) != 0) {
      pallet_call_result_free (&r);
      set_error (v->doc, k->error, werr ? PALLET_E_INVALID : PALLET_E_IO,
                 werr ? werr : "cannot write the VM's manifests");
      save (v);
      int bad = werr != NULL;
      free (werr);
      return bad ? STEP_FAILED : STEP_IOERR;
    }
    int outcome = -1;
    unsigned wait = 0;
    switch (status) {
    case PALLET_OK:
      json_object_set_new (v->doc, k->error, json_null ());
      outcome = STEP_OK;
      break;
    case PALLET_PENDING:
      wait = r.retry_after_ms > 600000 ? 600000 : r.retry_after_ms;
      json_object_set_new (v->doc, "retryAfterMs", json_integer (wait));
      break;
    case PALLET_E_TRANSIENT:
    case PALLET_E_TIMEOUT:
      errors++;
      json_object_set_new (v->doc, k->errors, json_integer (errors));
      if (errors >= d->o.max_attempts) {
        char *msg;
        if (asprintf (&msg, "gave up after %u retryable errors: %s", errors,
                      r.error ? r.error : pallet_strerror (status))
            < 0)
          msg = NULL;
        set_error (v->doc, k->error, status, msg ? msg : r.error);
        free (msg);
        outcome = STEP_FAILED;
      }
      else {
        set_error (v->doc, k->error, status, r.error);
        wait = backoff_ms (d, errors);
        event (v, "retry", name, pallet_status_name (status), r.error);
      }
      break;
    case PALLET_E_CANCELLED:
      set_error (v->doc, k->error, status, r.error);
      outcome = STEP_CANCELLED;
      break;
    default:
      set_error (v->doc, k->error, status, r.error);
      outcome = STEP_FAILED;
      break;
    }
    pallet_call_result_free (&r);
    if (save (v) != 0)
      return STEP_IOERR;
    if (outcome >= 0)
      return outcome;
    if (op == PALLET_OP_TRANSFER && status == PALLET_PENDING && !rollback)
      warm_round_event (v, &rounds_seen);
    nap (d, wait, rollback);
  }
}

/* Runs cleanup with rollback=true.  0 if it finished. */
static int
rollback_vm (struct vmrun *v)
{
  json_object_set_new (v->doc, "phase", json_string ("rollback"));
  json_object_set_new (v->doc, "rolledBack", json_false ());
  if (save (v) != 0)
    return -1;
  event (v, "rollback", "cleanup", "rolling back", NULL);
  /* Cluster mode: the Pods and the VM let go of the volumes before the
   * provider deletes them. */
  json_t *rec = json_object_get (v->doc, "cluster");
  if (json_is_object (rec) && !json_is_true (json_object_get (rec, "rolledBack"))
      && Pallet_cluster_rollback_vm (v) != 0) {
    json_t *e = json_object_get (json_object_get (v->doc, "rollbackError"), "message");
    event (v, "rollback", "cleanup", "rollback incomplete",
           json_is_string (e) ? json_string_value (e) : "cluster objects left");
    save (v);
    return -1;
  }
  int rc = run_step (v, PALLET_OP_CLEANUP, 1, &rollback_keys);
  if (rc == STEP_OK) {
    json_object_set_new (v->doc, "rolledBack", json_true ());
    stamp (v->doc, "rolledBack");
    event (v, "rollback", "cleanup", "rolled back", NULL);
  }
  else {
    json_t *e = json_object_get (json_object_get (v->doc, "rollbackError"), "message");
    event (v, "rollback", "cleanup", "rollback incomplete",
           json_is_string (e) ? json_string_value (e)
                              : "cancelled again; run `pallet cleanup` to finish it");
  }
  save (v);
  return rc == STEP_OK ? 0 : -1;
}

static json_t *
new_doc (struct vmrun *v, json_int_t runs)
{
  json_t *doc = json_pack ("{s:O,s:s,s:s,s:s,s:s,s:{},s:i,s:i,s:n,s:[],s:[],s:I}", "vm", v->vm,
                           "migrationUID", v->d->uid, "phase", "migrate", "step", "validate",
                           "status", "running", "state", "attempts", 0, "errors", 0, "error",
                           "completed", "skipped", "runs", runs);
  if (doc)
    stamp (doc, "created");
  return doc;
}

static const char *
error_message (json_t *doc)
{
  json_t *m = json_object_get (json_object_get (doc, "error"), "message");
  return json_is_string (m) ? json_string_value (m) : NULL;
}

static int
posthook_failed (json_t *doc)
{
  const char *f = json_string_value (json_object_get (doc, "failedStep"));
  return f && !strcmp (f, "posthook");
}

/* What the helpers of migrate_vm return to say "go on": every other value is
 * the VM's outcome. */
enum { VM_RUN = -1 };

/* Picks up a VM's state from an earlier run (in doc, now owned by v). */
static int
resume_vm_state (struct vmrun *v, json_t *doc)
{
  const char *status = json_string_value (json_object_get (doc, "status"));
  const char *phase = json_string_value (json_object_get (doc, "phase"));
  status = status ? status : "";
  phase = phase ? phase : "";
  v->doc = doc;
  if (strcmp (status, "succeeded") == 0) {
    event (v, "skip", NULL, "succeeded", "already migrated");
    return VM_SKIPPED;
  }
  int stopped = strcmp (status, "failed") == 0 || strcmp (status, "cancelled") == 0;
  if (stopped && posthook_failed (doc)) {
    /* Migrated, only its PostHook failed: run that again. */
    json_object_set_new (doc, "status", json_string ("running"));
    event (v, "resume", "posthook", "resuming", "the VM was migrated; running its PostHook again");
    return VM_RUN;
  }
  if (stopped && strcmp (phase, "rollback") != 0) {
    /* A crash between failing and starting the rollback. */
    rollback_vm (v);
    return strcmp (status, "cancelled") == 0 ? VM_CANCELLED : VM_FAILED;
  }
  if (strcmp (phase, "rollback") == 0) {
    if (!json_is_true (json_object_get (doc, "rolledBack"))) {
      /* A crash during rollback: finish it before anything else. */
      if (rollback_vm (v) != 0)
        return level (v->d) ? VM_CANCELLED : VM_FAILED;
      return strcmp (status, "cancelled") == 0 ? VM_CANCELLED : VM_FAILED;
    }
    /* Failed and rolled back earlier: start this VM again. */
    json_int_t runs = json_integer_value (json_object_get (doc, "runs"));
    json_decref (doc);
    v->doc = new_doc (v, runs + 1);
    event (v, "restart", NULL, "restarting", "it failed in an earlier run");
  }
  else if (strcmp (status, "running") == 0)
    event (v, "resume", json_string_value (json_object_get (doc, "step")), "resuming", NULL);
  return VM_RUN;
}

/* Loads the VM's state file, or starts a fresh one, and saves it. */
static int
open_vm_state (struct vmrun *v)
{
  json_t *doc = access (v->path, F_OK) == 0 ? Pallet_read_json_file (v->path) : NULL;
  if (doc == NULL && access (v->path, F_OK) == 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s; remove the file to restart the VM", pallet_last_error ());
    return VM_IOERR;
  }
  if (doc) {
    int rc = resume_vm_state (v, doc);
    if (rc != VM_RUN)
      return rc;
  }
  else
    v->doc = new_doc (v, 1);
  if (v->doc == NULL || save (v) != 0)
    return VM_IOERR;
  return VM_RUN;
}

static int
cancel_vm (struct vmrun *v)
{
  json_object_set_new (v->doc, "status", json_string ("cancelled"));
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "cancelled", json_string_value (json_object_get (v->doc, "step")), "cancelled", NULL);
  rollback_vm (v);
  return VM_CANCELLED;
}

static int
step_succeeded (struct vmrun *v, int op, const char *name)
{
  char key[64];
  add_to_list (v->doc, "completed", name);
  json_object_set_new (v->doc, "attempts", json_integer (0));
  json_object_set_new (v->doc, "errors", json_integer (0));
  snprintf (key, sizeof key, "%s.finished", name);
  stamp (v->doc, key);
  /* In cluster mode the VM is built once it is applied. */
  if (op == PALLET_OP_BUILD_VM && !v->d->o.apply)
    json_object_set_new (v->doc, "succeeded", json_true ());
  if (op == PALLET_OP_TRANSFER)
    warm_downtime_event (v);
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "step", name, in_list (v->doc, "skipped", name) ? "skipped" : "done", NULL);
  return VM_RUN;
}

static int
step_failed (struct vmrun *v, const char *name)
{
  json_object_set_new (v->doc, "status", json_string ("failed"));
  json_object_set_new (v->doc, "failedStep", json_string (name));
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "failed", name, "failed", error_message (v->doc));
  rollback_vm (v);
  return VM_FAILED;
}

/* Runs one migrate step, unless an earlier run completed it. */
static int
migrate_step (struct vmrun *v, int op)
{
  const char *name = pallet_op_name (op);
  if (in_list (v->doc, "completed", name))
    return VM_RUN;
  if (cancelled_for (v->d, 0))
    return cancel_vm (v);
  json_object_set_new (v->doc, "step", json_string (name));
  json_object_set_new (v->doc, "status", json_string ("running"));
  char key[64];
  snprintf (key, sizeof key, "%s.started", name);
  if (!json_object_get (json_object_get (v->doc, "timestamps"), key))
    stamp (v->doc, key);
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "step", name, "started", NULL);
  switch (run_step (v, op, 0, &migrate_keys)) {
  case STEP_OK: return step_succeeded (v, op, name);
  case STEP_IOERR: return VM_IOERR;
  case STEP_FAILED: return step_failed (v, name);
  case STEP_CANCELLED: return cancel_vm (v);
  }
  return VM_RUN;
}

/* Cluster mode, between build_vm and cleanup: the objects applied, the
 * Pods waited for, the VM started. */
static int
apply_step (struct vmrun *v)
{
  if (in_list (v->doc, "completed", "apply"))
    return VM_RUN;
  if (cancelled_for (v->d, 0))
    return cancel_vm (v);
  json_object_set_new (v->doc, "step", json_string ("apply"));
  json_object_set_new (v->doc, "status", json_string ("running"));
  if (!json_object_get (json_object_get (v->doc, "timestamps"), "apply.started"))
    stamp (v->doc, "apply.started");
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "step", "apply", "started", NULL);
  switch (Pallet_cluster_apply_vm (v)) {
  case STEP_OK:
    json_object_set_new (v->doc, "succeeded", json_true ());
    json_object_set_new (v->doc, "error", json_null ());
    add_to_list (v->doc, "completed", "apply");
    stamp (v->doc, "apply.finished");
    if (save (v) != 0)
      return VM_IOERR;
    event (v, "step", "apply", "done", NULL);
    return VM_RUN;
  case STEP_IOERR: return VM_IOERR;
  case STEP_CANCELLED: return cancel_vm (v);
  default: return step_failed (v, "apply");
  }
}

/* Whether the VM's hook WHICH is still to run as step STEP: HOOK_DUE
 * (the step is saved), VM_RUN when it is done or the VM has none, or the
 * VM's result when the plan was cancelled first. */
enum { HOOK_DUE = -2 };
static int
hook_due (struct vmrun *v, const char *step, const char *which)
{
  if (in_list (v->doc, "completed", step) || !Pallet_hook_find (v, which))
    return VM_RUN;
  if (cancelled_for (v->d, 0))
    return cancel_vm (v);
  json_object_set_new (v->doc, "step", json_string (step));
  return save (v) != 0 ? VM_IOERR : HOOK_DUE;
}

/* Records the hook step STEP as completed. */
static int
hook_done (struct vmrun *v, const char *step)
{
  add_to_list (v->doc, "completed", step);
  return save (v) != 0 ? VM_IOERR : VM_RUN;
}

/* The VM's PreHook, before anything of it is touched: a failure fails
 * the VM (rolled back, nothing of the source prepared). */
static int
prehook_step (struct vmrun *v)
{
  int rc = hook_due (v, "prehook", "PreHook");
  if (rc != HOOK_DUE)
    return rc;
  switch (Pallet_hook_run (v, "PreHook")) {
  case STEP_OK: return hook_done (v, "prehook");
  case STEP_IOERR: return VM_IOERR;
  case STEP_CANCELLED: return cancel_vm (v);
  default: return step_failed (v, "prehook");
  }
}

/* The VM's PostHook, once it was migrated.  A failure fails the VM after
 * the fact: the VM is kept (running as the plan asked), not rolled back;
 * a rerun runs the PostHook again. */
static int
posthook_step (struct vmrun *v)
{
  int rc = hook_due (v, "posthook", "PostHook");
  if (rc != HOOK_DUE)
    return rc;
  switch (Pallet_hook_run (v, "PostHook")) {
  case STEP_OK: return hook_done (v, "posthook");
  case STEP_IOERR: return VM_IOERR;
  case STEP_CANCELLED:
    /* Migrated already: nothing to roll back. */
    json_object_set_new (v->doc, "status", json_string ("cancelled"));
    return save (v) != 0 ? VM_IOERR : VM_CANCELLED;
  default: break;
  }
  json_t *e = json_object_get (v->doc, "error");
  const char *m = json_string_value (json_object_get (e, "message"));
  char *msg = NULL;
  if (asprintf (&msg, "%s; the VM was migrated and is kept as it is (not rolled back)",
                m ? m : "PostHook failed")
      >= 0)
    json_object_set_new (e, "message", json_string (msg));
  free (msg);
  json_object_set_new (v->doc, "status", json_string ("failed"));
  json_object_set_new (v->doc, "failedStep", json_string ("posthook"));
  json_object_set_new (v->doc, "migrated", json_true ());
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "failed", "posthook", "failed", error_message (v->doc));
  return VM_FAILED;
}

static int
migrate_vm (struct vmrun *v)
{
  int rc = open_vm_state (v);
  if (rc != VM_RUN)
    return rc;
  for (size_t i = 0; i < sizeof migrate_steps / sizeof migrate_steps[0]; i++) {
    if (migrate_steps[i] == PALLET_OP_PREPARE_SOURCE && (rc = prehook_step (v)) != VM_RUN)
      return rc;
    if (migrate_steps[i] == PALLET_OP_CLEANUP && v->d->o.apply) {
      rc = apply_step (v);
      if (rc != VM_RUN)
        return rc;
    }
    rc = migrate_step (v, migrate_steps[i]);
    if (rc != VM_RUN)
      return rc;
  }
  if ((rc = posthook_step (v)) != VM_RUN)
    return rc;
  json_object_set_new (v->doc, "phase", json_string ("done"));
  json_object_set_new (v->doc, "step", json_string ("done"));
  json_object_set_new (v->doc, "status", json_string ("succeeded"));
  stamp (v->doc, "succeeded");
  if (save (v) != 0)
    return VM_IOERR;
  event (v, "done", NULL, "succeeded", NULL);
  return VM_OK;
}

/* `pallet cleanup`: cleanup for a VM that has state. */
static int
cleanup_vm (struct vmrun *v)
{
  if (access (v->path, F_OK) != 0)
    return VM_SKIPPED;
  v->doc = Pallet_read_json_file (v->path);
  if (v->doc == NULL) {
    Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
    return VM_IOERR;
  }
  const char *status = json_string_value (json_object_get (v->doc, "status"));
  /* A VM whose PostHook failed was migrated: keep it too. */
  int succeeded = status && (strcmp (status, "succeeded") == 0 || posthook_failed (v->doc));
  if (succeeded) {
    /* Removes leftovers of a finished VM; never the VM itself. */
    json_object_set_new (v->doc, "cleanupAttempts", json_integer (0));
    int rc = run_step (v, PALLET_OP_CLEANUP, 0,
                       &(struct keys){ "cleanupAttempts", "cleanupErrors", "cleanupError" });
    event (v, "cleanup", "cleanup", rc == STEP_OK ? "done" : "failed", NULL);
    return rc == STEP_OK ? VM_OK : rc == STEP_CANCELLED ? VM_CANCELLED : VM_FAILED;
  }
  if (status == NULL || strcmp (status, "running") == 0)
    json_object_set_new (v->doc, "status", json_string ("cancelled"));
  json_object_set_new (v->doc, "rollbackAttempts", json_integer (0));
  json_object_set_new (v->doc, "rollbackErrors", json_integer (0));
  if (rollback_vm (v) != 0)
    return level (v->d) >= 2 ? VM_CANCELLED : VM_FAILED;
  return VM_OK;
}

/* --- threads -------------------------------------------------------------- */

static int wants_cluster (const struct pallet_migrate_options *o);

static void *
worker (void *arg)
{
  struct driver *d = arg;
  Pallet_sink_set_current (d->sink);
  struct pallet_session *s = d->shared;
  if (s == NULL) {
    struct pallet_session_params p = { sizeof p, d->state_dir, d->work_dir };
    s = pallet_session_open (d->m, d->config, &p);
    if (s && wants_cluster (&d->o)) {
      s->cluster = d->cluster;
      s->cluster_applies = d->o.apply;
    }
    if (s == NULL) {
      pthread_mutex_lock (&d->mu);
      d->n_open_failed++;
      Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
      pthread_mutex_unlock (&d->mu);
      return NULL;
    }
    s->sink = d->sink;
  }
  for (;;) {
    pthread_mutex_lock (&d->mu);
    size_t i = d->next;
    int stop = i >= d->n_vms || level (d) >= (d->mode == MODE_MIGRATE ? 1 : 2);
    if (!stop)
      d->next++;
    pthread_mutex_unlock (&d->mu);
    if (stop)
      break;
    struct vmrun v = { .d = d, .s = s };
    v.vm = json_array_get (json_object_get (d->plan, "vms"), i);
    v.id = vm_key (v.vm);
    v.name = vm_label (v.vm);
    v.path = Pallet_vm_state_path (d->state_dir, v.id);
    int rc = v.path == NULL            ? VM_IOERR
             : d->mode == MODE_MIGRATE ? migrate_vm (&v)
                                       : cleanup_vm (&v);
    json_decref (v.doc);
    free (v.path);
    pthread_mutex_lock (&d->mu);
    switch (rc) {
    case VM_OK:
    case VM_SKIPPED: d->n_ok++; break;
    case VM_FAILED: d->n_failed++; break;
    case VM_CANCELLED: d->n_cancelled++; break;
    case VM_IOERR: d->n_ioerr++; break;
    }
    pthread_mutex_unlock (&d->mu);
  }
  if (s != d->shared)
    pallet_session_close (s);
  return NULL;
}

/* Polls the cancel marker that `pallet cancel` writes. */
static void *
monitor (void *arg)
{
  struct driver *d = arg;
  Pallet_sink_set_current (d->sink);
  while (!d->done) {
    if (pallet_cancel_level (&d->own) == 0 && access (d->marker, F_OK) == 0) {
      Pallet_log (PALLET_LOG_WARNING,
                  "cancel requested by %s; rolling back "
                  "VMs in flight",
                  d->marker);
      /* This run's token only: other runs in the process go on. */
      pallet_cancel_trigger (&d->own);
      unlink (d->marker);
    }
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep (&ts, NULL);
  }
  return NULL;
}

/* A VM is known by its id, or by its name when the plan gives no id. */
static const char *
vm_key (json_t *vm)
{
  const char *id = json_string_value (json_object_get (vm, "id"));
  if (id && *id)
    return id;
  return json_string_value (json_object_get (vm, "name"));
}

static const char *
vm_label (json_t *vm)
{
  const char *n = json_string_value (json_object_get (vm, "name"));
  if (n == NULL || *n == '\0')
    n = json_string_value (json_object_get (vm, "targetName"));
  return n && *n ? n : vm_key (vm);
}

/* Plan names become a path component: keep them Kubernetes-shaped. */
static int
check_plan (json_t *plan)
{
  const char *name = json_string_value (json_object_get (plan, "name"));
  if (name == NULL || *name == '\0') {
    Pallet_seterr ("plan: no \"name\": a normalized plan needs a name "
                   "(the Plan's metadata.name)");
    return -1;
  }
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')
        || (p == name && *p == '.')) {
      Pallet_seterr ("plan name '%s' is not a Kubernetes name: use lower "
                     "case letters, digits, '-' and '.'",
                     name);
      return -1;
    }
  json_t *cut = json_object_get (plan, "cutover");
  int64_t t;
  if (cut && !json_is_null (cut)
      && (!json_is_string (cut) || pallet_parse_time (json_string_value (cut), &t) != 0)) {
    Pallet_seterr ("plan %s: \"cutover\" must be an RFC 3339 time such as "
                   "2026-11-25T02:00:00Z (or null), not %s%s%s",
                   name, json_is_string (cut) ? "'" : "a non-string",
                   json_is_string (cut) ? json_string_value (cut) : "",
                   json_is_string (cut) ? "'" : "");
    return -1;
  }
  json_t *vms = json_object_get (plan, "vms");
  if (!json_is_array (vms) || json_array_size (vms) == 0) {
    Pallet_seterr ("plan %s: \"vms\" must be a non-empty array of "
                   "{\"id\", \"name\"} objects",
                   name);
    return -1;
  }
  size_t i, j;
  json_t *vm, *other;
  json_array_foreach (vms, i, vm) {
    const char *id = json_is_object (vm) ? vm_key (vm) : NULL;
    if (id == NULL || *id == '\0') {
      Pallet_seterr ("plan %s: vms[%zu] has neither an \"id\" nor a "
                     "\"name\" string: give every VM its source id",
                     name, i);
      return -1;
    }
    json_array_foreach (vms, j, other)
      if (j < i && strcmp (vm_key (other), id) == 0) {
        Pallet_seterr ("plan %s: VM id '%s' is listed twice: list each VM "
                       "once",
                       name, id);
        return -1;
      }
  }
  return 0;
}

/* Runs the VMs on max_in_flight workers (and the cancel-marker monitor).
 * PALLET_EXIT_OK once they ran, PALLET_EXIT_INPUT if no session opened. */
static int
run_vms (struct driver *d)
{
  struct pallet_module *m = d->m;
  pthread_mutex_init (&d->mu, NULL);
  if (m->vt.thread_model != PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE || d->o.max_in_flight == 1) {
    struct pallet_session_params p = { sizeof p, d->state_dir, d->work_dir };
    d->shared = pallet_session_open (m, d->config, &p);
    if (d->shared && wants_cluster (&d->o)) {
      d->shared->cluster = d->cluster;
      d->shared->cluster_applies = d->o.apply;
    }
    if (d->shared == NULL) {
      Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
      pthread_mutex_destroy (&d->mu);
      return PALLET_EXIT_INPUT;
    }
    d->shared->sink = d->sink;
  }
  unsigned n = d->o.max_in_flight;
  if (n > d->n_vms)
    n = (unsigned) d->n_vms;
  pthread_t mon, *th = calloc (n, sizeof *th);
  int mon_ok = pthread_create (&mon, NULL, monitor, d) == 0;
  unsigned started = 0;
  for (unsigned i = 0; th && i < n; i++)
    if (pthread_create (&th[i], NULL, worker, d) == 0)
      started++;
  if (started == 0)
    worker (d);
  for (unsigned i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  d->done = 1;
  if (mon_ok)
    pthread_join (mon, NULL);
  free (th);
  pallet_session_close (d->shared);
  d->shared = NULL;
  pthread_mutex_destroy (&d->mu);
  return PALLET_EXIT_OK;
}

/* The run's exit code from the VMs' outcomes. */
static int
exit_code (const struct driver *d)
{
  if (d->n_ioerr)
    return PALLET_EXIT_INPUT;
  if (d->n_open_failed && d->n_ok + d->n_failed + d->n_cancelled == 0)
    return PALLET_EXIT_INPUT;
  if (level (d) || d->n_cancelled)
    return PALLET_EXIT_CANCELLED;
  if (d->n_failed || d->n_open_failed)
    return PALLET_EXIT_VM_FAILED;
  return PALLET_EXIT_OK;
}

static void
default_options (struct pallet_migrate_options *o)
{
  if (o->max_in_flight == 0)
    o->max_in_flight = 1;
  if (o->max_attempts == 0)
    o->max_attempts = 5;
  if (o->backoff_ms == 0)
    o->backoff_ms = 500;
  if (o->backoff_max_ms == 0)
    o->backoff_max_ms = 30000;
}

/* Parses and checks the plan into d->plan (NULL when it fails). */
static int
load_plan (struct driver *d, const char *plan_json)
{
  json_error_t err;
  d->plan = json_loads (plan_json ? plan_json : "", 0, &err);
  if (d->plan == NULL || !json_is_object (d->plan)) {
    Pallet_log (PALLET_LOG_ERROR,
                "plan: not a JSON object (line %d: %s): "
                "pass a normalized plan",
                err.line, err.text);
    json_decref (d->plan);
    d->plan = NULL;
    return -1;
  }
  if (check_plan (d->plan) != 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
    json_decref (d->plan);
    d->plan = NULL;
    return -1;
  }
  d->plan_name = json_string_value (json_object_get (d->plan, "name"));
  if (json_is_string (json_object_get (d->plan, "cutover")))
    pallet_parse_time (json_string_value (json_object_get (d->plan, "cutover")), &d->plan_cutover);
  d->n_vms = json_array_size (json_object_get (d->plan, "vms"));
  return 0;
}

/* The paths under the state dir; *pj_path is the plan record's. */
static int
state_paths (struct driver *d, char **pj_path)
{
  d->state_dir = d->o.state_dir ? strdup (d->o.state_dir) : pallet_default_state_dir (d->plan_name);
  if (d->state_dir == NULL || asprintf (&d->work_dir, "%s/work", d->state_dir) < 0
      || (d->o.output_dir ? (d->output_dir = strdup (d->o.output_dir)) == NULL
                          : asprintf (&d->output_dir, "%s/manifests", d->state_dir) < 0)
      || asprintf (pj_path, "%s/plan.json", d->state_dir) < 0
      || (d->marker = Pallet_cancel_marker (d->state_dir)) == NULL
      || asprintf (&d->cutover_marker, "%s/cutover", d->state_dir) < 0)
    return -1;
  return 0;
}

/* Creates and locks the state dir (the lock's fd in *lockfd): an exit code. */
static int
open_state_dir (struct driver *d, const char *pj_path, int *lockfd)
{
  if (d->mode == MODE_CLEANUP && access (pj_path, F_OK) != 0) {
    Pallet_log (PALLET_LOG_ERROR,
                "state dir %s has no plan.json: nothing "
                "to clean up (pass --state-dir if the migration used "
                "another one)",
                d->state_dir);
    return PALLET_EXIT_INPUT;
  }
  if (Pallet_mkdirs (d->state_dir) != 0 || Pallet_mkdirs (d->work_dir) != 0) {
    Pallet_log (PALLET_LOG_ERROR,
                "state dir %s: cannot create: %s; pass a "
                "writable --state-dir",
                d->state_dir, strerror (errno));
    return PALLET_EXIT_INPUT;
  }
  *lockfd = Pallet_lock_dir (d->state_dir);
  if (*lockfd < 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
    return *lockfd == -2 ? PALLET_EXIT_LOCKED : PALLET_EXIT_INPUT;
  }
  /* A marker left from an earlier run must not cancel this one, but one
   * sent just as this run started must (see pallet_request_cancel).  A
   * cutover marker stays: `pallet cutover` may come while no migrate runs
   * (after a crash), and the resumed run must honour it. */
  struct stat mst;
  if (stat (d->marker, &mst) == 0 && mst.st_mtime + PALLET_CANCEL_MARKER_FRESH_S < time (NULL))
    unlink (d->marker);
  return PALLET_EXIT_OK;
}

/* Reads or creates the plan record, sets d->uid from it and writes it back
 * counting this run. */
static int
record_plan_run (struct driver *d, const char *pj_path)
{
  /* One migrationUID per plan run, kept across resumes. */
  json_t *pj = access (pj_path, F_OK) == 0 ? Pallet_read_json_file (pj_path) : NULL;
  if (pj == NULL && access (pj_path, F_OK) == 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s; remove it to start afresh", pallet_last_error ());
    return -1;
  }
  const char *uid = json_string_value (json_object_get (pj, "migrationUID"));
  d->uid = uid ? strdup (uid) : Pallet_uuid4 ();
  if (pj == NULL) {
    char *now = Pallet_now_iso ();
    pj = json_pack ("{s:s,s:s,s:O?,s:s,s:s?}", "name", d->plan_name, "migrationUID",
                    d->uid ? d->uid : "", "planUID", json_object_get (d->plan, "uid"), "provider",
                    d->m->vt.name, "created", now);
    free (now);
  }
  if (pj && d->mode == MODE_MIGRATE) {
    json_object_set_new (pj, "runs",
                         json_integer (json_integer_value (json_object_get (pj, "runs")) + 1));
    json_object_set_new (pj, "vms", json_integer ((json_int_t) d->n_vms));
    stamp (pj, "lastRun");
  }
  int rc = 0;
  if (d->uid == NULL || pj == NULL || Pallet_write_json_file (pj_path, pj) != 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
    rc = -1;
  }
  json_decref (pj);
  return rc;
}

/* Reports a host finding (cluster preflight) as FINDING event. */
static void
host_finding (struct Pallet_sink *k, const char *id, const char *name, json_t *f)
{
  struct pallet_event ev = {
    .type = PALLET_EVENT_FINDING, .what = "finding", .vm = id, .name = name
  };
  if (id)
    json_object_set_new (f, "vm", json_string (id));
  Pallet_sink_emit (k, &ev, f);
}

static int
wants_cluster (const struct pallet_migrate_options *o)
{
  return o->apply || o->kubeconfig || o->kube_context || o->namespace_
         || Pallet_cluster_remote (o->destination_json);
}

/* Cluster mode: where to apply, checked before any VM moves.  `pallet
 * cleanup` opens it too when it can: a VM rolled back there may have
 * objects in the cluster. */
static int
open_cluster (struct driver *d)
{
  char *err = NULL;
  if (d->mode == MODE_CLEANUP || !d->o.apply) {
    d->cluster = Pallet_cluster_open (&d->o, d->plan, &err);
    if (!d->cluster && d->mode == MODE_CLEANUP && wants_cluster (&d->o)) {
      Pallet_log (PALLET_LOG_ERROR, "cluster: %s", err ? err : "cannot open");
      free (err);
      return -1;
    }
    free (err);
    return 0;
  }
  d->cluster = Pallet_cluster_open (&d->o, d->plan, &err);
  json_t *f = d->cluster ? Pallet_cluster_preflight (d->cluster)
                         : json_pack ("{s:s,s:s,s:s,s:s}", "category", "Critical", "type",
                                      "ClusterConfigInvalid", "field", "destination", "message",
                                      err ? err : "cannot open the cluster");
  free (err);
  if (f == NULL)
    return 0;
  host_finding (d->sink, NULL, NULL, f);
  Pallet_log (PALLET_LOG_ERROR, "cluster preflight: %s: %s; no VM was touched",
              json_string_value (json_object_get (f, "type")),
              json_string_value (json_object_get (f, "message")));
  json_decref (f);
  return -1;
}

static int
run_plan (struct pallet_module *m, const char *config, const char *plan_json,
          const struct pallet_migrate_options *opts, struct Pallet_sink *sink, int mode)
{
  struct driver d = {
    .m = m, .config = config, .mode = mode, .plan_cutover = -1, .sink = sink, .o = *opts
  };
  atomic_init (&d.own.level, 0);
  default_options (&d.o);
  if (load_plan (&d, plan_json) != 0)
    return PALLET_EXIT_INPUT;
  int ret = PALLET_EXIT_INPUT, lockfd = -1;
  char *pj_path = NULL;
  if (state_paths (&d, &pj_path) != 0)
    goto out;
  ret = open_state_dir (&d, pj_path, &lockfd);
  if (ret != PALLET_EXIT_OK)
    goto out;
  ret = PALLET_EXIT_INPUT;
  if (record_plan_run (&d, pj_path) != 0)
    goto out;
  if (open_cluster (&d) != 0) {
    ret = mode == MODE_MIGRATE ? PALLET_EXIT_VM_FAILED : PALLET_EXIT_INPUT;
    goto out;
  }

  if (run_vms (&d) != PALLET_EXIT_OK)
    goto out;
  unlink (d.marker);
  /* The cutover was for this run's warm VMs: they are done or rolled back
   * (a rolled-back VM starts its precopy afresh next time). */
  if (mode == MODE_MIGRATE)
    unlink (d.cutover_marker);
  ret = exit_code (&d);
  summary (&d, ret);

out:
  Pallet_cluster_close (d.cluster);
  if (lockfd >= 0)
    close (lockfd);
  free (pj_path);
  free (d.marker);
  free (d.cutover_marker);
  free (d.uid);
  free (d.work_dir);
  free (d.output_dir);
  free (d.state_dir);
  json_decref (d.plan);
  return ret;
}

/* The RESULT event that ends a migrate or cleanup run. */
static void
summary (struct driver *d, int ret)
{
  char msg[512];
  snprintf (msg, sizeof msg,
            "plan %s: %d succeeded, %d failed, %d cancelled "
            "of %zu VMs (state in %s)",
            d->plan_name, d->n_ok, d->n_failed, d->n_cancelled, d->n_vms, d->state_dir);
  json_t *j =
      json_pack ("{s:s,s:s,s:i,s:i,s:i,s:I,s:i,s:s}", "event", "summary", "plan", d->plan_name,
                 "succeeded", d->n_ok, "failed", d->n_failed, "cancelled", d->n_cancelled, "vms",
                 (json_int_t) d->n_vms, "exit", ret, "stateDir", d->state_dir);
  struct pallet_event ev = {
    .type = PALLET_EVENT_RESULT, .what = "summary", .code = ret, .message = msg
  };
  if (j)
    Pallet_sink_emit (d->sink, &ev, j);
  json_decref (j);
}

/* Copies the caller's options and routes this thread's log lines to its
 * callback for the run. */
static int
run (struct pallet_module *m, const char *config, const char *plan_json,
     const struct pallet_migrate_options *opts, int mode)
{
  Pallet_clearerr ();
  struct pallet_migrate_options o;
  struct Pallet_sink sink;
  if (Pallet_options_copy (&o, sizeof o, opts, "pallet_migrate_options") != 0)
    return PALLET_EXIT_USAGE;
  Pallet_sink_init (&sink, o.on_event, o.opaque);
  struct Pallet_sink *outer = Pallet_sink_current ();
  Pallet_sink_set_current (&sink);
  int rc = run_plan (m, config, plan_json, &o, &sink, mode);
  Pallet_sink_set_current (outer);
  Pallet_sink_destroy (&sink);
  return rc;
}

int
pallet_migrate (struct pallet_module *m, const char *config_json, const char *plan_json,
                const struct pallet_migrate_options *opts)
{
  return run (m, config_json, plan_json, opts, MODE_MIGRATE);
}

int
pallet_cleanup_plan (struct pallet_module *m, const char *config_json, const char *plan_json,
                     const struct pallet_migrate_options *opts)
{
  return run (m, config_json, plan_json, opts, MODE_CLEANUP);
}

/* Reports the findings of one VM, then its verdict. */
static void
validate_events (struct Pallet_sink *k, const char *id, const char *name,
                 const struct pallet_call_result *r, json_t *host)
{
  json_t *res = json_pack ("{s:s,s:s,s:s,s:s,s:s,s:[]}", "event", "validated", "vm", id, "name",
                           name, "status", pallet_status_name (r->status), "message",
                           r->error ? r->error : "", "findings");
  for (size_t k2 = 0; res && k2 < r->n_items; k2++) {
    json_t *f = json_loads (r->items[k2], JSON_DECODE_ANY, NULL);
    struct pallet_event ev = {
      .type = PALLET_EVENT_FINDING, .what = "finding", .vm = id, .name = name
    };
    /* The event's json is the finding itself, like an ITEM's. */
    if (f)
      Pallet_sink_emit (k, &ev, f);
    json_array_append (json_object_get (res, "findings"), f);
    json_decref (f);
  }
  /* The host's own (cluster preflight) finding. */
  if (res && host) {
    host_finding (k, id, name, host);
    json_array_append (json_object_get (res, "findings"), host);
  }
  struct pallet_event ev = { .type = PALLET_EVENT_RESULT,
                             .what = "validated",
                             .vm = id,
                             .name = name,
                             .status = pallet_status_name (r->status),
                             .message = r->error,
                             .code = r->status };
  if (res)
    Pallet_sink_emit (k, &ev, res);
  json_decref (res);
}

static int
validate_plan (struct pallet_module *m, const char *config_json, const char *plan_json,
               struct Pallet_sink *k, const struct pallet_migrate_options *o)
{
  json_error_t err;
  json_t *plan = json_loads (plan_json ? plan_json : "", 0, &err);
  if (plan == NULL || !json_is_object (plan) || check_plan (plan) != 0) {
    Pallet_log (PALLET_LOG_ERROR, "%s",
                plan && json_is_object (plan) ? pallet_last_error ()
                                              : "plan: not a JSON object: pass a normalized plan");
    json_decref (plan);
    return PALLET_EXIT_INPUT;
  }
  struct pallet_session *s = pallet_session_open (m, config_json, NULL);
  if (s == NULL) {
    Pallet_log (PALLET_LOG_ERROR, "%s", pallet_last_error ());
    json_decref (plan);
    return PALLET_EXIT_INPUT;
  }
  s->sink = k;
  int failed = 0;
  size_t i;
  json_t *vm;
  /* The cluster's preflight, once: a finding of every VM. */
  json_t *cf = NULL;
  struct Pallet_cluster *c = NULL;
  if (wants_cluster (o)) {
    char *err = NULL;
    c = Pallet_cluster_open (o, plan, &err);
    cf = c ? Pallet_cluster_preflight (c)
           : json_pack ("{s:s,s:s,s:s,s:s}", "category", "Critical", "type", "ClusterConfigInvalid",
                        "field", "destination", "message", err ? err : "cannot open the cluster");
    free (err);
    /* The provider may read the cluster too (get_param cluster.*), once
     * the host knows it answers. */
    if (cf == NULL) {
      s->cluster = c;
      s->cluster_applies = o->apply;
    }
  }
  json_array_foreach (json_object_get (plan, "vms"), i, vm) {
    json_t *in = json_pack ("{s:O,s:O,s:{},s:{s:b,s:b,s:s}}", "plan", plan, "vm", vm, "state",
                            "options", "cancelled", 0, "rollback", 0, "step", "validate");
    char *input = in ? json_dumps (in, JSON_COMPACT) : NULL;
    json_decref (in);
    struct pallet_call_result r;
    struct Pallet_call_opts co = { .cancel = o->cancel };
    Pallet_call_op (s, PALLET_OP_VALIDATE, vm_label (vm), input, &co, &r);
    free (input);
    json_t *hf = cf ? json_deep_copy (cf) : NULL;
    if (cf) {
      if (r.status == PALLET_OK) {
        r.status = PALLET_E_INVALID;
        free (r.error);
        r.error = strdup (json_string_value (json_object_get (cf, "message")));
      }
    }
    if (r.status != PALLET_OK)
      failed++;
    validate_events (k, vm_key (vm), vm_label (vm), &r, hf);
    json_decref (hf);
    pallet_call_result_free (&r);
  }
  pallet_session_close (s);
  Pallet_cluster_close (c);
  json_decref (cf);
  json_decref (plan);
  return failed ? PALLET_EXIT_VM_FAILED : PALLET_EXIT_OK;
}

int
pallet_validate_plan (struct pallet_module *m, const char *config_json, const char *plan_json,
                      const struct pallet_migrate_options *opts)
{
  Pallet_clearerr ();
  struct pallet_migrate_options o;
  struct Pallet_sink sink;
  if (Pallet_options_copy (&o, sizeof o, opts, "pallet_migrate_options") != 0)
    return PALLET_EXIT_USAGE;
  Pallet_sink_init (&sink, o.on_event, o.opaque);
  struct Pallet_sink *outer = Pallet_sink_current ();
  Pallet_sink_set_current (&sink);
  int rc = validate_plan (m, config_json, plan_json, &sink, &o);
  Pallet_sink_set_current (outer);
  Pallet_sink_destroy (&sink);
  return rc;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't' and ' ' also
 * separate date and time, 'z' is 'Z'. */
int
pallet_parse_time (const char *text, int64_t *out)
{
  Pallet_clearerr ();
  int Y, M, D, h, m, sec, n = 0;
  if (text == NULL
      || sscanf (text, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6
      || n != 19)
    return -1;
  const char *p = text + n;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return -1;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  long off = 0;
  if (*p == 'Z' || *p == 'z')
    p++;
  else if (*p == '+' || *p == '-') {
    int oh, om, k = 0;
    if (sscanf (p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
      return -1;
    off = (oh * 60L + om) * 60L * (*p == '-' ? -1 : 1);
    p += 6;
  }
  else
    return -1;
  if (*p != '\0' || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 1970)
    return -1;
  static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
  if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
    return -1;
  struct tm tm = { .tm_year = Y - 1900,
                   .tm_mon = M - 1,
                   .tm_mday = D,
                   .tm_hour = h,
                   .tm_min = m,
                   .tm_sec = sec > 59 ? 59 : sec };
  time_t t = timegm (&tm);
  if (t == (time_t) -1)
    return -1;
  *out = (int64_t) t - off;
  return 0;
}

int
pallet_request_cutover (const char *state_dir, const char *at)
{
  Pallet_clearerr ();
  struct stat st;
  int64_t t;
  if (at && pallet_parse_time (at, &t) != 0) {
    Pallet_seterr ("cutover time '%s' is not an RFC 3339 time: write it as "
                   "2026-11-25T02:00:00Z or 2026-11-25T03:00:00+01:00",
                   at);
    return PALLET_E_INVALID;
  }
  if (stat (state_dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
    Pallet_seterr ("state dir %s does not exist: nothing to cut over (start "
                   "the warm migration with `pallet migrate` first, or pass "
                   "--state-dir if it used another one)",
                   state_dir);
    return PALLET_E_NOT_FOUND;
  }
  char *p = NULL, *now = Pallet_now_iso ();
  json_t *j = json_object ();
  if (j && now)
    json_object_set_new (j, "requested", json_string (now));
  if (j && at)
    json_object_set_new (j, "at", json_string (at));
  int r =
      j && now && asprintf (&p, "%s/cutover", state_dir) >= 0 ? Pallet_write_json_file (p, j) : -1;
  free (p);
  free (now);
  json_decref (j);
  return r == 0 ? PALLET_OK : PALLET_E_IO;
}
