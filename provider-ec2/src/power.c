/* SPDX-License-Identifier: Apache-2.0 */
/* prepare_source: record the power state, stop the instance, wait until it
 * is stopped.  One StopInstances per migration: the state says whether it
 * was sent.  A warm migration only records the power state: the source runs
 * on until the cutover (warm.c stops it). */
#include <string.h>
#include "ec2.h"
#include "warm.h"

int
ec2_prepare_source (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "prepare_source", input_json, &in) < 0)
    return PALLET_E_INVALID;
  json_t *state = json_deep_copy (in.state);
  json_t *inst = NULL;
  int st = PALLET_OK;
  if (!in.vm_id) {
    pallet_error (call, PALLET_E_INVALID,
                  "prepare_source: the VM has no instance id yet; run validate first");
    st = PALLET_E_INVALID;
    goto out;
  }
  if (pallet_cancelled (call)) {
    pallet_error (call, PALLET_E_CANCELLED, "prepare_source %s: cancelled", in.vm_id);
    st = PALLET_E_CANCELLED;
    goto out;
  }
  if ((st = ec2_describe_instance (s, in.vm_id, NULL, &inst)) != PALLET_OK)
    goto out;
  const char *name = ec2_str (json_object_get (inst, "instanceState"), "name");
  /* What cleanup restores and what runStrategy the VM gets: the power state
   * validate saw, before anything was stopped.  A crash after StopInstances
   * but before this state was saved must not turn "On" into "Off". */
  if (!json_object_get (state, "powerState")) {
    const char *seen = ec2_str (json_object_get (state, "instance"), "powerState");
    json_object_set_new (state, "powerState", json_string (*seen ? seen : ec2_power_state (name)));
  }
  if (ec2_plan_is_warm (in.plan)) {
    if (!strcmp (name, "terminated") || !strcmp (name, "shutting-down")) {
      pallet_error (call, PALLET_E_CONFLICT,
                    "prepare_source %s: the instance is %s; it cannot be migrated", in.vm_id, name);
      st = PALLET_E_CONFLICT;
    }
    else {
      pallet_log (call, PALLET_LOG_INFO, "warm migration: the instance stays %s until the cutover",
                  name);
      pallet_progress (call, in.vm_id, "prepare_source", 1, 1, "steps");
    }
    ec2_emit_state (s, state);
    goto out;
  }
  /* Stopping or stopped after being On: that was our StopInstances. */
  if (!strcmp (ec2_str (state, "powerState"), "On")
      && (!strcmp (name, "stopping") || !strcmp (name, "stopped")))
    json_object_set_new (state, "stopRequested", json_true ());
  if (!strcmp (name, "stopped")) {
    json_object_set_new (state, "stopped", json_true ());
    pallet_progress (call, in.vm_id, "prepare_source", 1, 1, "steps");
    ec2_emit_state (s, state);
    goto out;
  }
  if (!strcmp (name, "terminated") || !strcmp (name, "shutting-down")) {
    pallet_error (call, PALLET_E_CONFLICT,
                  "prepare_source %s: the instance is %s; it cannot be migrated", in.vm_id, name);
    st = PALLET_E_CONFLICT;
    ec2_emit_state (s, state);
    goto out;
  }
  if ((!strcmp (name, "running") || !strcmp (name, "pending"))
      && !ec2_bool (state, "stopRequested")) {
    const char *ids[] = { in.vm_id };
    if (Pallet_aws_ec2_stop_instances (s->src, ids, 1, 0, NULL) < 0) {
      st = ec2_aws_fail (s, s->src, "stopping the instance");
      ec2_emit_state (s, state);
      goto out;
    }
    json_object_set_new (state, "stopRequested", json_true ());
    pallet_log (call, PALLET_LOG_INFO, "StopInstances sent");
  }
  pallet_progress (call, in.vm_id, "prepare_source", 0, 1, "steps");
  pallet_retry_after (call, ec2_poll_ms (state, "stopPolls"));
  ec2_emit_state (s, state);
  st = PALLET_PENDING;
out:
  json_decref (inst);
  json_decref (state);
  ec2_input_free (&in);
  return st;
}
