/* SPDX-License-Identifier: Apache-2.0 */
/* resume: one session, as one `pallet migrate` run holds it, through the
 * whole pipeline.  After each step completes, the same step is called
 * again with the state it emitted: what a host does when it crashed after
 * persisting that state but before recording the step as done.  The
 * resumed call must return PALLET_OK and change nothing in the cloud (its
 * state may differ: a state may keep bookkeeping, such as a call count).  Every call's pallet_call is kept (never reused)
 * after it returns, so a provider that keeps a call pointer and uses it in
 * a later call is seen. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow.h"

static const char R_RESUME[] =
    "a step that completed, called again with the "
    "state it emitted (a resumed host), returns PALLET_OK and redoes nothing";
static const char R_STALE[] = "a struct pallet_call is valid for one call: "
                              "never keep it for a later call or use it after the call returned";

struct sess {
  void *h;
  const char *uid;
  json_t *problems; /* [{rule, detail}] */
};

static void problem (struct sess *s, const char *rule, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void
problem (struct sess *s, const char *rule, const char *fmt, ...)
{
  char *d = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&d, fmt, ap) < 0)
    d = NULL;
  va_end (ap);
  json_array_append_new (s->problems, json_pack ("{ss so}", "rule", rule, "detail", pc_text (d)));
  free (d);
}

static json_t *
sess_call (struct sess *s, enum pc_op op, const char *input)
{
  struct pc_call *c = malloc (sizeof *c);
  const char *ro = pc_ro_copy (input);
  json_t *r;
  int st;
  if (c == NULL)
    return json_pack ("{ss}", "crash", "out of memory");
  pc_call_init (c, pc_op_names[op]);
  c->dirs = true;
  st = pc_op_fn (op) (s->h, &c->call, ro);
  r = pc_call_report (c, st);
  pc_call_end (c);
  return r;
}

/* Calls op until it stops returning PALLET_PENDING; *state follows. */
static json_t *
sess_drive (struct sess *s, enum pc_op op, json_t **state, bool rollback, bool succeeded)
{
  for (unsigned n = 0;; n++) {
    char *in = pc_vm_input_ex (pc_vm (0), *state, s->uid, op, rollback, succeeded);
    json_t *r = sess_call (s, op, in), *st = pc_report_state (r);
    free (in);
    if (st) {
      json_incref (st);
      json_decref (*state);
      *state = st;
    }
    if (pc_status_of (r) != PALLET_PENDING || n + 1 >= pc.fx.max_pending)
      return r;
    json_t *ra = json_object_get (r, "retry_after");
    json_int_t ms = json_is_integer (ra) ? json_integer_value (ra) : 10;
    if (ms > (json_int_t) pc.fx.max_retry_ms)
      ms = pc.fx.max_retry_ms;
    usleep ((useconds_t) ms * 1000);
    json_decref (r);
  }
}

/* Step op, then op again from its own state.  False if the pipeline
 * cannot go on. */
static bool
step_and_resume (struct sess *s, enum pc_op op, json_t **state)
{
  const char *name = pc_op_names[op];
  json_t *r = sess_drive (s, op, state, false, false), *again, *c1, *c2, *r2;
  char *why = NULL, *d;
  bool ok = pc_status_of (r) == PALLET_OK;
  if (!ok) {
    d = pc_describe (r);
    problem (s, "the fixture's pipeline runs to the end",
             "%s in one "
             "session %s",
             name, d ? d : "?");
    free (d);
    json_decref (r);
    return false;
  }
  json_decref (r);
  c1 = pc_count (&why);
  free (why);
  again = json_deep_copy (*state);
  r2 = sess_drive (s, op, &again, false, false);
  c2 = pc_count (&why);
  free (why);
  d = pc_describe (r2);
  if (pc_status_of (r2) != PALLET_OK)
    problem (s, R_RESUME, "%s resumed with the state it had emitted %s", name, d ? d : "?");

  if (c1 && c2 && !json_equal (c1, c2)) {
    char *a = json_dumps (c1, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps (c2, JSON_COMPACT | JSON_ENCODE_ANY);
    problem (s, R_RESUME,
             "%s resumed after it had completed changed the "
             "cloud from %.200s to %.200s: it redid a side effect",
             name, a ? a : "?", b ? b : "?");
    free (a);
    free (b);
  }
  free (d);
  json_decref (r2);
  json_decref (again);
  json_decref (c1);
  json_decref (c2);
  return true;
}

static json_t *
resume_child (void *arg)
{
  struct pc_call oc;
  struct sess s = { .uid = arg, .problems = json_array () };
  json_t *state = json_object (), *r;
  bool done = true;
  pc_guard_inputs ();
  pc_call_init (&oc, "open");
  s.h = pc.vt.open (&oc.call, pc_ro_copy (pc.fx.config_text));
  pc_call_free (&oc);
  if (s.h == NULL) {
    json_decref (s.problems);
    json_decref (state);
    return json_pack ("{ss}", "open_failed", "open returned NULL");
  }
  for (size_t i = 0; i < pc_nsteps && done; i++)
    if (pc_op_present (pc_steps[i]))
      done = step_and_resume (&s, pc_steps[i], &state);
  if (pc_stale_uses)
    problem (&s, R_STALE,
             "%u host service call(s) were made with the "
             "pallet_call of a call that had returned",
             pc_stale_uses);
  if (pc_op_present (PC_OP_CLEANUP)) {
    if (done) {
      r = sess_drive (&s, PC_OP_CLEANUP, &state, false, true);
      json_decref (r);
    }
    r = sess_drive (&s, PC_OP_CLEANUP, &state, true, false);
    json_decref (r);
  }
  pc.vt.close (s.h);
  json_decref (state);
  return json_pack ("{so}", "problems", s.problems);
}

void
pc_check_resume (void)
{
  json_t *r, *p, *e;
  size_t i;
  char *uid;
  const char *first;
  if (!pc_session_ok ("resume"))
    return;
  uid = pc_new_uid ("resume", 0);
  r = pc_in_child (resume_child, uid, pc.fx.call_timeout_s * 20);
  p = json_object_get (r, "problems");
  if (p == NULL) {
    char *d = pc_describe (r);
    first = pc_root_cause_seen (json_object_get (r, "input_abuse") ? "input:" : "crash:");
    if (first)
      pc_blocked_by ("resume", first);
    else
      pc_root_cause ("resume", "crash:resume",
                     "an op returns (no crash, no "
                     "hang) on valid input",
                     "the pipeline in one session: "
                     "%s",
                     d ? d : "?");
    free (d);
  }
  json_array_foreach (p, i, e)
    PC_FAIL ("resume", json_string_value (json_object_get (e, "rule")), "%s",
             json_string_value (json_object_get (e, "detail")));
  json_decref (r);
  free (uid);
}
