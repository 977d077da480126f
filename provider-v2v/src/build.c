/* SPDX-License-Identifier: Apache-2.0 */
/* build_vm: the VirtualMachine from virt-v2v's own -o kubevirt YAML, and
 * a PVC per converted disk.  No source access. */
#include <stdlib.h>
#include <string.h>
#include "v2v.h"
#include "pallet-v2v-kubevirt.h"

int
v2v_build_from (struct v2v *s, const struct v2v_input *in, const json_t *vmi, const json_t *outputs,
                const json_t *claims)
{
  struct pallet_v2v_vm_in vin = { .plan = in->plan,
                                  .vm = in->vm,
                                  .source = json_object_get (in->state, "source"),
                                  .outputs = outputs,
                                  .migration_uid = in->migration_uid,
                                  .provider_type = s->type_name,
                                  .claims = claims };
  json_t *ms = NULL, *notes = NULL, *m;
  char *err = NULL;
  int st = pallet_v2v_kubevirt_manifests (vmi, &vin, &ms, &notes, &err);
  if (st != PALLET_OK)
    pallet_error (s->call, st, "%s: %s", in->key, err);
  size_t i;
  json_array_foreach (notes, i, m)
    pallet_log (s->call, PALLET_LOG_INFO, "%s: %s", in->key, json_string_value (m));
  json_array_foreach (ms, i, m)
    if (st == PALLET_OK && v2v_emit (s, PALLET_EMIT_ITEM, m) < 0)
      st = PALLET_E_ABI;
  if (st == PALLET_OK) {
    json_t *state = json_deep_copy (in->state);
    json_object_set_new (state, "manifests", json_integer ((json_int_t) json_array_size (ms)));
    v2v_emit (s, PALLET_EMIT_STATE, state);
    json_decref (state);
  }
  free (err);
  json_decref (ms);
  json_decref (notes);
  return st;
}

int
v2v_build_vm (void *handle, struct pallet_call *call, const char *input_json)
{
  struct v2v *s = handle;
  struct v2v_input in;
  s->call = call;
  if (v2v_input_parse (s, "build_vm", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (s->type == V2V_VSPHERE && v2v_is_conversion (in.plan)) {
    int r = v2v_conversion_build (s, &in);
    v2v_input_free (&in);
    return r;
  }
  json_t *outs = json_object_get (in.state, "outputs");
  const char *yaml = v2v_str (outs, "yaml");
  char *err = NULL;
  json_t *vmi = *yaml ? pallet_v2v_kubevirt_read (yaml, &err) : NULL;
  int st = PALLET_OK;
  if (!vmi) {
    st = PALLET_E_CONFLICT;
    pallet_error (call, st, "%s: virt-v2v's YAML is not there (%s); run transfer again", in.key,
                  err ? err : "state.outputs.yaml missing");
  }
  else
    st = v2v_build_from (s, &in, vmi, outs, NULL);
  free (err);
  json_decref (vmi);
  v2v_input_free (&in);
  return st;
}
