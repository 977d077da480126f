/* SPDX-License-Identifier: Apache-2.0 */
/* Checks that drive the pipeline: idempotency, pending, cancel, cleanup,
 * outputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static char *
short_json (const json_t *j)
{
  char *s;
  if (j == NULL)
    return strdup ("(none)");
  s = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
  if (s && strlen (s) > 300)
    strcpy (s + 290, "...");
  return s;
}

#define returned pc_returned

/* ---- idempotency ---- */

static const char R_IDEM[] =
    "a per-VM op called again with the same input "
    "gives the same outcome (or later progress: PENDING, then OK), emits the "
    "same state and creates nothing new";

/* With a live backend ("live_backend": true in the fixture) the world
 * moves on between two calls: a snapshot the first call waited for may be
 * complete by the second, which then rightly goes on (creates the volume).
 * Such a pair is progress, not a second outcome, and its resource count
 * cannot be judged on the spot.  Progress is only accepted from a first
 * call that returned PALLET_PENDING (it was waiting on the backend); the
 * pipeline goes on from the FIRST call's state, so the provider must adopt
 * what the second call made; and "creates nothing new" is judged over the
 * whole pipeline: with every call made twice it must leave the same
 * resource count as a run with every call made once (run first, as the
 * reference).  Without a counter there is nothing to compare, and a pair
 * that differs fails as on a quiet backend. */
struct twice {
  unsigned progress; /* pairs accepted as progress (live backend) */
};

static bool
twice_hook (enum pc_op op, json_t *r1, const char *input, void *arg)
{
  struct pc_req rq = { .op = op, .input = input };
  struct twice *tw = arg;
  json_t *c1, *r2;
  int s1, s2;
  if (!returned ("idempotency", op, r1, NULL))
    return false;
  if (json_object_get (r1, "absent"))
    return true;
  c1 = pc_baseline ("idempotency");
  r2 = pc_invoke (&rq);
  if (returned ("idempotency", op, r2, "(second call)")) {
    json_t *st1 = pc_report_state (r1), *st2 = pc_report_state (r2);
    bool same_state = (st1 == NULL) == (st2 == NULL) && (st1 == NULL || json_equal (st1, st2));
    bool live = pc.fx.live_backend && pc.fx.count_argv != NULL;
    s1 = pc_status_of (r1);
    s2 = pc_status_of (r2);
    if (live && s1 == PALLET_PENDING && (s2 == PALLET_PENDING || s2 == PALLET_OK)
        && (!same_state || s2 != s1)) {
      /* Progress on a live backend: judged at the end of the pipeline. */
      tw->progress++;
      if (pc.verbose)
        pc_note ("idempotency",
                 "%s: the second call made progress (%s, "
                 "then %s%s)",
                 pc_op_names[op], pc_status_name (s1), pc_status_name (s2),
                 same_state ? "" : ", a later state");
      json_decref (c1);
      json_decref (r2);
      return true;
    }
    /* A cloud moves on between two calls: a wait that was PENDING may be
     * over by the second call.  That is progress, not a second outcome;
     * duplicates are still caught by the resource count below. */
    if (s1 == PALLET_PENDING && s2 == PALLET_OK)
      ;
    else if (s1 != s2)
      PC_FAIL ("idempotency", R_IDEM,
               "%s called twice with the same input: "
               "first returned %s, then %s",
               pc_op_names[op], pc_status_name (s1), pc_status_name (s2));
    else if (!same_state) {
      char *a = short_json (st1), *b = short_json (st2);
      PC_FAIL ("idempotency", R_IDEM,
               "%s called twice with the same input "
               "emitted different states: %s, then %s",
               pc_op_names[op], a ? a : "?", b ? b : "?");
      free (a);
      free (b);
    }
    char *when = NULL;
    if (asprintf (&when,
                  "after %s was called again with the same input "
                  "(a duplicate resource)",
                  pc_op_names[op])
        < 0)
      when = NULL;
    pc_counts_equal ("idempotency", R_IDEM, c1, when ? when : "");
    free (when);
  }
  json_decref (c1);
  json_decref (r2);
  return true;
}

/* The same number of resources: numbers equal, arrays of the same length,
 * objects with the same keys and same-sized values.  Two runs of the
 * pipeline name their resources after their own migrationUID, so a
 * counter that lists names differs between runs in names only. */
static bool
same_size (const json_t *a, const json_t *b)
{
  const char *k;
  json_t *v;
  if (json_is_number (a) && json_is_number (b))
    return json_number_value (a) == json_number_value (b);
  if (json_is_array (a) && json_is_array (b))
    return json_array_size (a) == json_array_size (b);
  if (json_is_object (a) && json_is_object (b)) {
    if (json_object_size (a) != json_object_size (b))
      return false;
    json_object_foreach ((json_t *) a, k, v)
      if (!same_size (v, json_object_get (b, k)))
        return false;
    return true;
  }
  return json_typeof (a) == json_typeof (b);
}

/* Live backend: the pipeline with every call made once, then cleaned up;
 * returns the resource count it left before its cleanup (NULL if it did
 * not run; a failure is recorded). */
static json_t *
reference_count (void)
{
  char *uid = pc_new_uid ("idem-reference", 0);
  json_t *state = json_object (), *count = NULL, *r;
  if (pc_run_pipeline ("idempotency", pc_vm (0), &state, uid, pc_nsteps, NULL, NULL))
    count = pc_baseline ("idempotency");
  if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_finish (&state, uid, count != NULL, NULL, NULL);
    json_decref (r);
  }
  json_decref (state);
  free (uid);
  return count;
}

void
pc_check_idempotency (void)
{
  if (!pc_session_ok ("idempotency"))
    return;
  bool live = pc.fx.live_backend && pc.fx.count_argv != NULL;
  json_t *base = NULL, *ref = NULL;
  if (pc.fx.live_backend && pc.fx.count_argv == NULL)
    pc_note ("idempotency", "live_backend needs a count_command to compare "
                            "a run with a reference run; checked as a quiet backend");
  if (live) {
    base = pc_baseline ("idempotency");
    ref = reference_count ();
    if (ref == NULL
        || !pc_counts_equal ("idempotency",
                             "cleanup removes "
                             "every resource the steps created "
                             "(the count returns to where it was)",
                             base,
                             "after the reference run's "
                             "cleanup")) {
      json_decref (base);
      json_decref (ref);
      return;
    }
  }
  char *uid = pc_new_uid ("idem", 0);
  json_t *state = json_object (), *r;
  struct twice tw = { 0 };
  if (pc_run_pipeline ("idempotency", pc_vm (0), &state, uid, pc_nsteps, twice_hook, &tw)) {
    char *why = NULL;
    json_t *now = live ? pc_count (&why) : NULL;
    if (live && now == NULL)
      PC_FAIL ("idempotency", "the fixture's count_command works", "%s", why ? why : "?");
    else if (live && !same_size (ref, now)) {
      char *a = short_json (ref), *b = short_json (now);
      PC_FAIL ("idempotency", R_IDEM,
               "with every call made twice the "
               "pipeline left %s; with every call made once it left %s: a "
               "duplicate resource",
               b ? b : "?", a ? a : "?");
      free (a);
      free (b);
    }
    free (why);
    json_decref (now);
    if (pc_op_present (PC_OP_CLEANUP)) {
      r = pc_finish (&state, uid, true, twice_hook, &tw);
      json_decref (r);
    }
  }
  else if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_finish (&state, uid, false, NULL, NULL);
    json_decref (r);
  }
  if (live)
    pc_note ("idempotency",
             "live backend: %u call pair(s) made progress "
             "between the two calls; the run with every call made twice "
             "was compared with a reference run",
             tw.progress);
  json_decref (state);
  json_decref (base);
  json_decref (ref);
  free (uid);
}

/* ---- pending ---- */

static bool
pending_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  unsigned *seen = arg;
  (void) input;
  if (pc_status_of (r) != PALLET_PENDING)
    return returned ("pending", op, r, NULL);
  ++*seen;
  if (json_is_null (json_object_get (r, "retry_after")))
    PC_FAIL ("pending",
             "every PALLET_PENDING result carries a retry-after "
             "(call host->retry_after before returning it)",
             "%s returned PALLET_PENDING without a retry-after", pc_op_names[op]);
  return true;
}

void
pc_check_pending (void)
{
  if (!pc_session_ok ("pending"))
    return;
  char *uid = pc_new_uid ("pending", 0);
  json_t *state = json_object (), *r;
  unsigned seen = 0;
  for (size_t k = 0; k < json_array_size (pc.fx.inventory_kinds) && pc_op_present (PC_OP_INVENTORY);
       k++) {
    char *in = pc_inventory_input (k);
    r = pc_drive (PC_OP_INVENTORY, NULL, NULL, NULL, in, pending_hook, &seen);
    json_decref (r);
    free (in);
  }
  bool done = pc_run_pipeline ("pending", pc_vm (0), &state, uid, pc_nsteps, pending_hook, &seen);
  if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_finish (&state, uid, done, pending_hook, &seen);
    json_decref (r);
  }
  if (seen == 0)
    pc_note ("pending", "no call returned PALLET_PENDING");
  json_decref (state);
  free (uid);
}

/* ---- cancel ---- */

static const char R_CANCEL[] =
    "a cancelled call returns promptly, within "
    "the provider's cancel_bound_ms: PALLET_E_CANCELLED, or what it was about "
    "to return anyway (PALLET_OK, PALLET_PENDING)";

/* The bound a cancelled call is held to.  memcheck runs code 20-50 times
 * slower, so a provider that polls throughout still overruns its declared
 * bound there: under valgrind the bound is scaled (the polling count in the
 * failure message still tells "once" from "throughout"). */
#define PC_VALGRIND_TIME_SCALE 20u

static unsigned
cancel_bound (void)
{
  unsigned bound = pc.vt.cancel_bound_ms;
  return RUNNING_ON_VALGRIND ? bound * PC_VALGRIND_TIME_SCALE : bound;
}

/* The same input again, with cancelled() turning true at_ms into it. */
static void
cancel_at (enum pc_op op, const char *input, long at_ms, bool dirs)
{
  unsigned bound = cancel_bound ();
  struct pc_req rq = {
    .op = op,
    .input = input,
    .cancel = true,
    .cancel_after_ms = at_ms,
    .timeout_s = (unsigned) ((bound + at_ms) / 1000 + 10),
    .dirs = dirs,
  };
  json_t *r = pc_invoke (&rq);
  if (json_object_get (r, "hang"))
    PC_FAIL ("cancel", R_CANCEL,
             "%s with cancelled() true from %ld ms did "
             "not return in %u s",
             pc_op_names[op], at_ms, rq.timeout_s);
  else if (returned ("cancel", op, r, "(cancelled)")) {
    double ms = json_number_value (json_object_get (r, "elapsed_ms")) - (double) at_ms;
    int st = pc_status_of (r);
    if (ms > (double) bound)
      PC_FAIL ("cancel", R_CANCEL,
               "%s returned %s %.0f ms after cancelled() "
               "turned true (%ld ms into the call); cancel_bound_ms is %u%s (it "
               "polled cancelled() %lld times: poll it throughout, not once)",
               pc_op_names[op], pc_status_name (st), ms, at_ms, bound,
               RUNNING_ON_VALGRIND ? " (scaled for valgrind)" : "",
               (long long) json_integer_value (json_object_get (r, "cancel_polls")));
    else if (st != PALLET_E_CANCELLED && st != PALLET_OK && st != PALLET_PENDING) {
      char *d = pc_describe (r);
      PC_FAIL ("cancel", R_CANCEL,
               "%s with cancelled() true from %ld ms %s; "
               "expected PALLET_E_CANCELLED",
               pc_op_names[op], at_ms, d ? d : "?");
      free (d);
    }
  }
  json_decref (r);
}

/* Cancels at the fixture's cancel_at, and, for a call that takes longer
 * than the bound (only those can overrun it), a third and two thirds of
 * the way through: a provider that polls once, at the start, is caught. */
static bool
cancel_hook (enum pc_op op, json_t *real, const char *input, void *arg)
{
  double took;
  (void) arg;
  if (!returned ("cancel", op, real, NULL))
    return false;
  if (json_object_get (real, "absent"))
    return true;
  bool dirs = op != PC_OP_INVENTORY;
  cancel_at (op, input, pc.fx.cancel_at_ms, dirs);
  took = json_number_value (json_object_get (real, "elapsed_ms"));
  if (took > (double) pc.vt.cancel_bound_ms) {
    cancel_at (op, input, (long) (took / 3), dirs);
    cancel_at (op, input, (long) (took * 2 / 3), dirs);
  }
  return true;
}

void
pc_check_cancel (void)
{
  if (!pc_session_ok ("cancel"))
    return;
  char *uid = pc_new_uid ("cancel", 0);
  json_t *state = json_object (), *r;
  if (pc.vt.cancel_bound_ms == 0) {
    PC_FAIL ("cancel", "the provider declares cancel_bound_ms (> 0)",
             "cancel_bound_ms is 0: no call can return within it; declare "
             "how long a cancelled call may take");
    json_decref (state);
    free (uid);
    return;
  }
  if (pc_op_present (PC_OP_INVENTORY)) {
    char *in = pc_inventory_input (0);
    r = pc_drive (PC_OP_INVENTORY, NULL, NULL, NULL, in, cancel_hook, NULL);
    json_decref (r);
    free (in);
  }
  pc_run_pipeline ("cancel", pc_vm (0), &state, uid, pc_nsteps, cancel_hook, NULL);
  if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_drive_cleanup (pc_vm (0), &state, uid, true, false, cancel_hook, NULL);
    json_decref (r);
  }
  json_decref (state);
  free (uid);
}

/* ---- cleanup ----
 *
 * As docs/ops/cleanup.md: a rollback (options.rollback true, after a
 * failure or a cancel) removes everything the migration created; a tidy-up
 * (rollback false, after success) removes the temporary resources and may
 * keep the target volumes, saying so with "kept" items.  What a tidy-up
 * kept, a later rollback must still find: the suite rolls back after the
 * tidy-up (as after a failure of the whole migration) and expects the
 * count back at the baseline. */

static const char R_ANY[] = "cleanup succeeds with any state: after success, "
                            "after a stop at any step, again after itself, and with {}";
static const char R_GONE[] = "a rollback removes every resource the "
                             "migration created (the count returns to where it was)";

static bool
kept_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  json_t *items = pc_items (r), *e;
  size_t i;
  (void) op;
  (void) input;
  json_array_foreach (items, i, e)
    if (json_is_string (json_object_get (e, "action"))
        && strcmp (json_string_value (json_object_get (e, "action")), "kept") == 0)
      *(bool *) arg = true;
  json_decref (items);
  return true;
}

/* Cleanup to the end from *state (which follows its emitted state); the
 * report of its last call, or NULL when it failed (recorded).  *kept: a
 * call of it emitted a "kept" item. */
static json_t *
cleanup_to_end_kept (json_t **state, const char *uid, bool rollback, bool succeeded,
                     const char *when, bool *kept)
{
  json_t *r = pc_drive_cleanup (pc_vm (0), state, uid, rollback, succeeded, kept_hook, kept);
  if (pc_status_of (r) == PALLET_OK)
    return r;
  char *d = pc_describe (r);
  PC_FAIL ("cleanup", R_ANY, "cleanup (%s) %s %s", rollback ? "rollback" : "tidy-up", when,
           d ? d : "?");
  free (d);
  json_decref (r);
  return NULL;
}

static json_t *
cleanup_to_end (json_t **state, const char *uid, bool rollback, bool succeeded, const char *when)
{
  bool kept = false;
  return cleanup_to_end_kept (state, uid, rollback, succeeded, when, &kept);
}

static bool
rolled_back (json_t **state, const char *uid, const json_t *base, const char *when)
{
  json_t *r = cleanup_to_end (state, uid, true, false, when);
  char w[200];
  if (r == NULL)
    return false;
  json_decref (r);
  snprintf (w, sizeof w, "after a rollback %s", when);
  if (!pc_counts_equal ("cleanup", R_GONE, base, w))
    return false;
  r = cleanup_to_end (state, uid, true, false, "called again after itself");
  json_decref (r);
  return r != NULL;
}

/* After the whole pipeline: tidy-up, tidy-up again, then a rollback. */
static void
tidy_up_then_roll_back (json_t **state, const char *uid, const json_t *base)
{
  char *why = NULL;
  bool kept = false;
  json_t *r = cleanup_to_end_kept (state, uid, false, true,
                                   "after every "
                                   "step completed",
                                   &kept),
         *after;
  if (r == NULL)
    return;
  after = pc_count (&why);
  free (why);
  /* docs/ops/cleanup.md shows "kept" items; it does not require them, so
   * keeping silently is only noted.  What a tidy-up keeps is judged by the
   * rollback after it. */
  if (after && base && !json_equal (after, base) && !kept) {
    char *a = short_json (base), *b = short_json (after);
    pc_note ("cleanup",
             "the tidy-up after success kept resources (the count "
             "was %s and is %s) without an \"action\": \"kept\" item "
             "saying which",
             a ? a : "?", b ? b : "?");
    free (a);
    free (b);
  }
  json_decref (r);
  r = cleanup_to_end (state, uid, false, true, "called again after itself");
  if (r && after)
    pc_counts_equal ("cleanup", "a tidy-up called again changes nothing", after,
                     "after a second tidy-up");
  json_decref (r);
  json_decref (after);
  rolled_back (state, uid, base,
               "after the tidy-up (what a tidy-up keeps "
               "stays recorded, so a rollback still finds it)");
}

void
pc_check_cleanup (void)
{
  json_t *base, *st;
  char *uid, when[160];

  if (!pc_op_present (PC_OP_CLEANUP)) {
    PC_FAIL ("cleanup", "the required ops are present", "cleanup is NULL: nothing to check");
    return;
  }
  if (!pc_session_ok ("cleanup"))
    return;
  base = pc_baseline ("cleanup");
  uid = pc_new_uid ("cleanup", 99);
  st = json_object ();
  rolled_back (&st, uid, base, "with state {} (no step ran)");
  json_decref (st);
  free (uid);

  for (size_t k = 0; k <= pc_nsteps; k++) {
    if (k < pc_nsteps && !pc_op_present (pc_steps[k]))
      continue;
    uid = pc_new_uid ("cleanup", (unsigned) k);
    st = json_object ();
    if (!pc_run_pipeline ("cleanup", pc_vm (0), &st, uid, k, NULL, NULL))
      rolled_back (&st, uid, base, "after a failed pipeline");
    else if (k == pc_nsteps)
      tidy_up_then_roll_back (&st, uid, base);
    else {
      /* Stop in the middle of step k: one call, then give up on it. */
      char *in = pc_vm_input_ex (pc_vm (0), st, uid, pc_steps[k], false, false);
      struct pc_req rq = { .op = pc_steps[k], .input = in, .dirs = true };
      json_t *r = pc_invoke (&rq), *s2 = pc_report_state (r);
      if (s2) {
        json_decref (st);
        st = json_incref (s2);
      }
      json_decref (r);
      free (in);
      snprintf (when, sizeof when, "after a stop during %s", pc_op_names[pc_steps[k]]);
      rolled_back (&st, uid, base, when);
    }
    json_decref (st);
    free (uid);
  }
  json_decref (base);
}

/* ---- outputs ---- */

static const char *
item_schema (enum pc_op op)
{
  switch (op) {
  case PC_OP_VALIDATE: return "validate-finding";
  case PC_OP_INVENTORY: return "inventory-item";
  case PC_OP_BUILD_VM: return "build-vm-item";
  case PC_OP_CLEANUP: return "cleanup-item";
  default: return NULL;
  }
}

static bool
outputs_hook (enum pc_op op, json_t *r, const char *input, void *arg)
{
  json_t *emits = json_object_get (r, "emits"), *e;
  unsigned *n = arg;
  size_t i;
  int st = pc_status_of (r);
  (void) input;
  if (!returned ("outputs", op, r, NULL))
    return false;
  if (json_object_get (r, "absent"))
    return true;
  if (st < 0 || st >= PALLET_E_LAST)
    PC_FAIL ("outputs", "an op returns a pallet_status", "%s returned %d", pc_op_names[op], st);
  else if (st != PALLET_OK && st != PALLET_PENDING
           && !json_is_object (json_object_get (r, "error")))
    PC_FAIL ("outputs",
             "an error status carries a message through "
             "host->error",
             "%s returned %s without a message", pc_op_names[op], pc_status_name (st));
  json_array_foreach (emits, i, e) {
    json_int_t kind = json_integer_value (json_object_get (e, "kind"));
    const char *invalid = json_string_value (json_object_get (e, "invalid"));
    json_t *v = json_object_get (e, "value");
    const char *sname = NULL;
    char *why = NULL;
    ++*n;
    if (kind != PALLET_EMIT_STATE && kind != PALLET_EMIT_ITEM && kind != PALLET_EMIT_RESULT)
      PC_FAIL ("outputs", "emit's kind is a pallet_emit_kind (1, 2, 3)", "%s emitted kind %lld",
               pc_op_names[op], (long long) kind);
    if (invalid) {
      PC_FAIL ("outputs", "every emitted text is valid JSON (UTF-8)",
               "%s emit #%zu (kind %lld): %s", pc_op_names[op], i + 1, (long long) kind, invalid);
      continue;
    }
    if (kind == PALLET_EMIT_STATE)
      sname = "state";
    else if (kind == PALLET_EMIT_RESULT)
      sname = "result";
    else if (kind == PALLET_EMIT_ITEM)
      sname = item_schema (op);
    if (sname && !pc_schema_validate (pc_schema_get (sname), v, &why)) {
      char *t = short_json (v);
      PC_FAIL ("outputs",
               "every emitted object matches its documented "
               "schema (docs/schemas/)",
               "%s emit #%zu does not match "
               "%s.schema.json: %s; it was %s",
               pc_op_names[op], i + 1, sname, why ? why : "?", t ? t : "?");
      free (t);
    }
    free (why);
  }
  return true;
}

void
pc_check_outputs (void)
{
  if (!pc_session_ok ("outputs"))
    return;
  char *uid = pc_new_uid ("outputs", 0);
  json_t *state = json_object (), *r;
  unsigned n = 0;
  for (size_t k = 0; k < json_array_size (pc.fx.inventory_kinds) && pc_op_present (PC_OP_INVENTORY);
       k++) {
    char *in = pc_inventory_input (k);
    r = pc_drive (PC_OP_INVENTORY, NULL, NULL, NULL, in, outputs_hook, &n);
    json_decref (r);
    free (in);
  }
  bool done = pc_run_pipeline ("outputs", pc_vm (0), &state, uid, pc_nsteps, outputs_hook, &n);
  if (pc_op_present (PC_OP_CLEANUP)) {
    r = pc_finish (&state, uid, done, outputs_hook, &n);
    json_decref (r);
  }
  if (n == 0)
    pc_note ("outputs", "nothing was emitted");
  json_decref (state);
  free (uid);
}
