/* SPDX-License-Identifier: Apache-2.0 */
/* build_vm: the KubeVirt VirtualMachine, and a pre-bound PV and PVC per
 * volume (none for conversion-only plans: the PVCs exist), and the
 * conversion Pod when the guest is to be converted in the cluster, from
 * the state the earlier steps recorded.  Pure: no AWS calls. */
#include <stdlib.h>
#include <string.h>
#include "ec2.h"
#include "pallet-ec2-manifest.h"

int
ec2_build_vm (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "build_vm", input_json, &in) < 0)
    return PALLET_E_INVALID;
  struct Pallet_ec2_manifest_opts opts;
  char *err = NULL;
  json_t *manifests = NULL, *notes = NULL;
  int st;
  if (Pallet_ec2_manifest_opts_from_json (in.options, &opts, &err) < 0) {
    pallet_error (call, PALLET_E_INVALID, "build_vm: %s", err ? err : "bad options");
    st = PALLET_E_INVALID;
    goto out;
  }
  if (!strcmp (ec2_str (in.state, "transferMode"), "copy"))
    opts.copy_mode = 1; /* PVCs of the mapped class, no PVs */
  if (ec2_plan_is_conversion (in.plan))
    opts.existing_pvcs = 1; /* someone else made the PVCs */
  st = Pallet_ec2_build_manifests (in.plan, in.vm, in.state, &opts, &manifests, &notes, &err);
  if (st != PALLET_OK) {
    pallet_error (call, st, "build_vm %s: %s", in.vm_id ? in.vm_id : in.vm_name,
                  err ? err : "cannot build the manifests");
    goto out;
  }
  size_t i;
  json_t *m;
  if (opts.copy_mode) {
    /* The copy Pod that fills the PVCs in a cluster (local mode has the
     * raw files already). */
    json_t *pod = ec2_copy_pod (s, &in, manifests);
    if (pod)
      json_array_append_new (manifests, pod);
  }
  /* Guest conversion left to the cluster: the conversion Pod goes just
   * before the VirtualMachine, so `kubectl apply -f DIR` (file order)
   * creates it first. */
  char *perr = NULL;
  json_t *pod = ec2_conversion_pod (s, &in, manifests, &perr);
  if (perr) {
    pallet_error (call, PALLET_E_INVALID, "build_vm %s: conversion Pod: %s",
                  in.vm_id ? in.vm_id : in.vm_name, perr);
    free (perr);
    json_decref (pod);
    st = PALLET_E_INVALID;
    goto out;
  }
  if (pod) {
    size_t at = json_array_size (manifests);
    json_array_foreach (manifests, i, m)
      if (!strcmp (ec2_str (m, "kind"), "VirtualMachine"))
        at = i;
    /* The VM must not boot from a disk virt-v2v is still rewriting: it
     * stays Halted, and says what to run once the Pod has succeeded. */
    json_t *vm = json_array_get (manifests, at);
    json_t *spec = json_object_get (vm, "spec");
    const char *want = ec2_str (spec, "runStrategy");
    if (vm && *want && strcmp (want, "Halted")) {
      json_t *ann = json_object_get (json_object_get (vm, "metadata"), "annotations");
      if (json_is_object (ann))
        json_object_set_new (ann, "forklift.konveyor.io/run-strategy-after-conversion",
                             json_string (want));
      pallet_log (
          call, PALLET_LOG_INFO,
          "build_vm %s: the VM is Halted until its conversion Pod has succeeded; then set runStrategy %s (virtctl start)",
          in.vm_id ? in.vm_id : in.vm_name, want);
      /* Last: this frees the string want points into. */
      json_object_set_new (spec, "runStrategy", json_string ("Halted"));
    }
    json_array_insert_new (manifests, at, pod);
  }
  json_array_foreach (notes, i, m)
    pallet_log (call, PALLET_LOG_INFO, "%s", json_string_value (m));
  json_array_foreach (manifests, i, m) {
    json_incref (m);
    if (ec2_emit_item (s, m) < 0) {
      st = PALLET_E_ABI;
      goto out;
    }
  }
  json_t *state = json_deep_copy (in.state);
  json_object_set_new (state, "manifests", json_integer ((json_int_t) json_array_size (manifests)));
  ec2_emit_state (s, state);
  json_decref (state);
out:
  free (err);
  json_decref (manifests);
  json_decref (notes);
  ec2_input_free (&in);
  return st;
}
