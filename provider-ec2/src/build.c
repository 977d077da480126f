/* SPDX-License-Identifier: Apache-2.0 */
/* build_vm: the KubeVirt VirtualMachine, and a pre-bound PV and PVC per
 * volume (none for conversion-only plans: the PVCs exist), and the
 * copy Pod (copy mode) and conversion Pod when the disks are filled or
 * the guest converted in the cluster, from the state the earlier steps
 * recorded, each labelled with its stage (Pallet_ec2_stage_items).  Pure:
 * no AWS calls. */
#include <stdlib.h>
#include <string.h>
#include "ec2.h"
#include "verify_boot.h"
#include "pallet-ec2-manifest.h"

/* The objects cleanup names when it keeps the snapshots for them:
 * state.copyPod, state.conversionPod and state.vmObject, as NS/NAME. */
static void
record_objects (json_t *state, const json_t *manifests)
{
  size_t i;
  json_t *m;
  json_array_foreach (manifests, i, m) {
    const json_t *md = json_object_get (m, "metadata");
    const char *stage = ec2_str (json_object_get (md, "labels"), PALLET_EC2_STAGE_LABEL);
    const char *kind = ec2_str (m, "kind"), *key = NULL;
    if (!strcmp (kind, "VirtualMachine"))
      key = "vmObject";
    else if (!strcmp (kind, "Pod"))
      key = !strcmp (stage, "copy")      ? "copyPod"
            : !strcmp (stage, "convert") ? "conversionPod"
                                         : NULL;
    if (key)
      json_object_set_new (state, key,
                           json_sprintf ("%s/%s", ec2_str (md, "namespace"), ec2_str (md, "name")));
  }
}

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
     * raw files already), and the Secret it reads the AWS keys from. */
    if ((st = ec2_copy_pod_items (s, &in, manifests)) != PALLET_OK)
      goto out;
  }
  /* Guest conversion left to the cluster. */
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
  if (pod)
    json_array_append_new (manifests, pod);
  /* Stage labels and order (storage, copy, convert, vm): the host, or
   * `kubectl apply -f DIR` in file order, creates them so; the VM stays
   * Halted while a Pod still has to run on its disks. */
  if (Pallet_ec2_stage_items (manifests, &perr) < 0) {
    pallet_error (call, PALLET_E_FAILED, "build_vm %s: %s", in.vm_id ? in.vm_id : in.vm_name,
                  perr ? perr : "out of memory");
    free (perr);
    st = PALLET_E_FAILED;
    goto out;
  }
  json_array_foreach (manifests, i, m) {
    const char *want = ec2_str (json_object_get (json_object_get (m, "metadata"), "annotations"),
                                PALLET_EC2_TARGET_RUN_STRATEGY);
    if (*want)
      pallet_log (call, PALLET_LOG_INFO,
                  "build_vm %s: the VM is Halted until its copy and conversion Pods have "
                  "succeeded; then runStrategy %s",
                  in.vm_id ? in.vm_id : in.vm_name, want);
  }
  json_array_foreach (manifests, i, m)
    if (!strcmp (ec2_str (m, "kind"), "VirtualMachine")) {
      ec2_annotate_guest (m, in.state);
      ec2_annotate_boot (s, m, in.plan);
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
  record_objects (state, manifests);
  ec2_emit_state (s, state);
  json_decref (state);
out:
  free (err);
  json_decref (manifests);
  json_decref (notes);
  ec2_input_free (&in);
  return st;
}
