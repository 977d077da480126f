/* SPDX-License-Identifier: Apache-2.0 */
/* Driving the pipeline: the per-VM steps in order, each called again while
 * it returns PALLET_PENDING, as the host does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow.h"

const enum pc_op pc_steps[] = {
  PC_OP_VALIDATE, PC_OP_PREPARE_SOURCE, PC_OP_TRANSFER, PC_OP_CONVERT, PC_OP_BUILD_VM,
};
const size_t pc_nsteps = sizeof pc_steps / sizeof pc_steps[0];

char *
pc_new_uid (const char *check, unsigned k)
{
  static unsigned seq;
  char *s = NULL;
  if (asprintf (&s, "conformance-%s-%ld-%u-%u", check, (long) getpid (), k, seq++) < 0)
    return NULL;
  return s;
}

const json_t *
pc_vm (size_t i)
{
  return json_array_get (pc.fx.vms, i % json_array_size (pc.fx.vms));
}

char *
pc_inventory_input (size_t k)
{
  /* As pallet inventory KIND without -q sends it: no query. */
  json_t *in = json_pack ("{sO}", "kind", json_array_get (pc.fx.inventory_kinds, k));
  char *s = json_dumps (in, JSON_COMPACT);
  json_decref (in);
  return s;
}

static void
wait_retry (const json_t *r)
{
  json_t *ra = json_object_get (r, "retry_after");
  json_int_t ms = json_is_integer (ra) ? json_integer_value (ra) : 10;
  if (ms > (json_int_t) pc.fx.max_retry_ms)
    ms = pc.fx.max_retry_ms;
  if (ms > 0)
    usleep ((useconds_t) ms * 1000);
}

static json_t *
drive (enum pc_op op, const json_t *vm, json_t **state, const char *uid, const char *fixed_input,
       bool rollback, bool succeeded, pc_hook hook, void *arg)
{
  for (unsigned n = 0;; n++) {
    char *in = fixed_input ? strdup (fixed_input)
                           : pc_vm_input_ex (vm, *state, uid, op, rollback, succeeded);
    /* Per-VM steps run as in pallet migrate: with the directories. */
    struct pc_req rq = { .op = op, .input = in, .dirs = fixed_input == NULL };
    json_t *r = pc_invoke (&rq), *st;
    bool go = hook ? hook (op, r, in, arg) : true;
    free (in);
    if (state && (st = pc_report_state (r)) != NULL) {
      json_incref (st);
      json_decref (*state);
      *state = st;
    }
    if (!go || pc_status_of (r) != PALLET_PENDING || n + 1 >= pc.fx.max_pending)
      return r;
    wait_retry (r);
    json_decref (r);
  }
}

json_t *
pc_drive (enum pc_op op, const json_t *vm, json_t **state, const char *uid, const char *fixed_input,
          pc_hook hook, void *arg)
{
  /* Cleanup after the whole pipeline is the host's tidy-up; drivers that
   * mean a rollback call pc_drive_cleanup. */
  return drive (op, vm, state, uid, fixed_input, false, false, hook, arg);
}

json_t *
pc_drive_cleanup (const json_t *vm, json_t **state, const char *uid, bool rollback, bool succeeded,
                  pc_hook hook, void *arg)
{
  return drive (PC_OP_CLEANUP, vm, state, uid, NULL, rollback, succeeded, hook, arg);
}

bool
pc_step_done (const char *check, const char *rule, enum pc_op op, const json_t *r)
{
  int st = pc_status_of (r);
  char *d;
  if (st == PALLET_OK || json_is_true (json_object_get (r, "absent")))
    return true;
  if (!pc_returned (check, op, r, "(in the pipeline)"))
    return false;
  d = pc_describe (r);
  if (st == PALLET_PENDING)
    PC_FAIL (check, rule,
             "%s still returned PALLET_PENDING after %u calls "
             "(raise the fixture's max_pending if that is expected)",
             pc_op_names[op], pc.fx.max_pending);
  else
    PC_FAIL (check, rule,
             "%s with the fixture's plan and VM %s; the check "
             "needs the pipeline to complete (fix the fixture or the provider)",
             pc_op_names[op], d ? d : "?");
  free (d);
  return false;
}

bool
pc_run_pipeline (const char *check, const json_t *vm, json_t **state, const char *uid, size_t upto,
                 pc_hook hook, void *arg)
{
  for (size_t i = 0; i < upto && i < pc_nsteps; i++) {
    json_t *r;
    bool ok;
    if (!pc_op_present (pc_steps[i]))
      continue;
    r = pc_drive (pc_steps[i], vm, state, uid, NULL, hook, arg);
    ok = pc_step_done (check, "the fixture's pipeline runs to the end", pc_steps[i], r);
    json_decref (r);
    if (!ok)
      return false;
  }
  return true;
}

bool
pc_counts_equal (const char *check, const char *rule, const json_t *before, const char *when)
{
  char *why = NULL;
  json_t *now;
  bool ok = true;
  if (pc.fx.count_argv == NULL)
    return true;
  now = pc_count (&why);
  if (now == NULL) {
    PC_FAIL (check, "the fixture's count_command works", "%s", why ? why : "?");
    free (why);
    return false;
  }
  if (before && !json_equal ((json_t *) before, now)) {
    char *a = json_dumps (before, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps (now, JSON_COMPACT | JSON_ENCODE_ANY);
    PC_FAIL (check, rule,
             "the cloud-resource count was %s before and is %s "
             "%s",
             a ? a : "?", b ? b : "?", when);
    free (a);
    free (b);
    ok = false;
  }
  json_decref (now);
  return ok;
}

json_t *
pc_baseline (const char *check)
{
  char *why = NULL;
  json_t *c;
  if (pc.fx.count_argv == NULL)
    return NULL;
  c = pc_count (&why);
  if (c == NULL) {
    PC_FAIL (check, "the fixture's count_command works", "%s", why ? why : "?");
    free (why);
  }
  return c;
}

bool
pc_session_ok (const char *check)
{
  static int cached = -1;
  static char why[1024];
  if (cached < 0) {
    struct pc_req rq = { .op = PC_OP_OPEN, .input = pc.fx.config_text };
    json_t *r = pc_invoke (&rq);
    char *d;
    cached = json_is_true (json_object_get (r, "opened"));
    d = pc_describe (r);
    snprintf (why, sizeof why, "%s", d ? d : "?");
    free (d);
    json_decref (r);
  }
  if (!cached)
    PC_FAIL (check, "open accepts the fixture's config",
             "with the fixture's "
             "config %s; this check's op calls need a session: pass --fixture "
             "with a config the provider accepts",
             why);
  return cached;
}

bool
pc_returned (const char *check, enum pc_op op, const json_t *r, const char *ctx)
{
  char key[64], *d;
  const char *sp = ctx ? " " : "", *cx = ctx ? ctx : "";
  if (json_object_get (r, "status") || json_object_get (r, "absent"))
    return true;
  d = pc_describe (r);
  if (json_object_get (r, "input_abuse")) {
    snprintf (key, sizeof key, "input:%s", pc_op_names[op]);
    pc_root_cause (check, key, R_OWNED, "%s%s%s: %s", pc_op_names[op], sp, cx, d ? d : "?");
  }
  else if (json_object_get (r, "open_failed"))
    PC_FAIL (check, "open accepts the fixture's config", "%s%s%s: %s", pc_op_names[op], sp, cx,
             d ? d : "?");
  else {
    snprintf (key, sizeof key, "crash:%s", pc_op_names[op]);
    pc_root_cause (check, key,
                   "an op returns (no crash, no hang) on valid "
                   "input",
                   "%s%s%s: %s; to see the call: pallet-conformance "
                   "PROVIDER --only %s --verbose (or under gdb or valgrind)",
                   pc_op_names[op], sp, cx, d ? d : "?", check);
  }
  free (d);
  return false;
}

json_t *
pc_items (const json_t *report)
{
  json_t *items = json_array (), *e;
  size_t i;
  json_array_foreach (json_object_get (report, "emits"), i, e)
    if (json_integer_value (json_object_get (e, "kind")) == PALLET_EMIT_ITEM
        && json_object_get (e, "value"))
      json_array_append (items, json_object_get (e, "value"));
  return items;
}

/* Inventory for every kind, the pipeline and the tidy-up, then the
 * rollback: every op path a host takes, each report to hook. */
void
pc_walk (const char *check, pc_hook hook, void *arg)
{
  char *uid = pc_new_uid (check, 0);
  json_t *state = json_object (), *r;
  for (size_t k = 0; k < json_array_size (pc.fx.inventory_kinds) && pc_op_present (PC_OP_INVENTORY);
       k++) {
    char *in = pc_inventory_input (k);
    r = pc_drive (PC_OP_INVENTORY, NULL, NULL, NULL, in, hook, arg);
    json_decref (r);
    free (in);
  }
  bool done = pc_run_pipeline (check, pc_vm (0), &state, uid, pc_nsteps, hook, arg);
  if (pc_op_present (PC_OP_CLEANUP)) {
    if (done) {
      r = pc_drive_cleanup (pc_vm (0), &state, uid, false, true, hook, arg);
      json_decref (r);
    }
    r = pc_drive_cleanup (pc_vm (0), &state, uid, true, false, hook, arg);
    json_decref (r);
  }
  json_decref (state);
  free (uid);
}

json_t *
pc_finish (json_t **state, const char *uid, bool succeeded, pc_hook hook, void *arg)
{
  if (succeeded) {
    json_t *r = pc_drive_cleanup (pc_vm (0), state, uid, false, true, hook, arg);
    json_decref (r);
  }
  return pc_drive_cleanup (pc_vm (0), state, uid, true, false, hook, arg);
}
