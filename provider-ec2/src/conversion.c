/* SPDX-License-Identifier: Apache-2.0 */
/* Conversion-only plans (plan type "conversion"): the disks are PVCs
 * someone else made.  validate finds them (Kubernetes API or a saved
 * `kubectl get pvc -o json`), prepare_source and transfer touch nothing,
 * convert records that the conversion runs in the cluster, build_vm
 * references the existing PVCs.  Also the cluster-mode conversion Pod. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ec2.h"
#include "pallet-kube.h"
#include "pallet-convert.h"
#include "pallet-ec2-manifest.h"

int
ec2_plan_is_conversion (const json_t *plan)
{
  return !strcmp (ec2_str (plan, "type"), "conversion");
}

int
ec2_list_pvcs (struct ec2 *s, const char *ns, const char *vm_id, json_t *items, char **msg)
{
  *msg = NULL;
  if (s->pvc_list_file)
    return Pallet_kube_list_pvcs (NULL, s->pvc_list_file, ns, NULL, items, msg);
  if (!s->kube_api_url) {
    if (asprintf (msg, "a conversion-only plan converts existing PVCs, and the provider "
                       "has no way to list them: set kube-api-url (with the Secret's kubeToken "
                       "and kube-ca.crt), or pvc-list-file")
        < 0)
      *msg = NULL;
    return PALLET_E_INVALID;
  }
  struct Pallet_kube_config kc;
  ec2_kube_config (s, &kc);
  if (s->kube_insecure)
    pallet_log (
        s->call, PALLET_LOG_WARNING,
        "kube-insecure-skip-verify is true: the Kubernetes API's certificate is not checked");
  if (!Pallet_ec2_is_dns1123_label (ns)) {
    if (asprintf (msg,
                  "plan targetNamespace \"%.80s\" is not a namespace name; set the "
                  "Plan's spec.targetNamespace to the namespace of the PVCs",
                  ns)
        < 0)
      *msg = NULL;
    return PALLET_E_INVALID;
  }
  char sel[2][256];
  snprintf (sel[0], sizeof sel[0], "vmID=%s", vm_id);
  snprintf (sel[1], sizeof sel[1], "vmUUID=%s", vm_id);
  const char *const sels[] = { sel[0], sel[1], NULL };
  int st = Pallet_kube_list_pvcs_api (&kc, ns, sels, items, msg);
  return st;
}

/* ---- the ops that skip ---- */

static int
skip_op (struct ec2 *s, struct pallet_call *call, struct ec2_input *in, const char *op,
         const char *key, const char *why)
{
  json_t *state = json_deep_copy (in->state);
  json_object_set_new (state, key, json_string (why));
  /* runStrategy "auto" follows the power state validate saw. */
  const char *seen = ec2_str (json_object_get (state, "instance"), "powerState");
  if (!strcmp (key, "prepareSource") && !json_object_get (state, "powerState") && *seen)
    json_object_set_new (state, "powerState", json_string (seen));
  int r = ec2_emit_state (s, state);
  json_decref (state);
  json_t *res = json_pack ("{s:b,s:s}", "skipped", 1, "reason", why);
  char *t = res ? json_dumps (res, JSON_COMPACT) : NULL;
  json_decref (res);
  if (t)
    pallet_emit (call, PALLET_EMIT_RESULT, t);
  free (t);
  pallet_log (call, PALLET_LOG_INFO, "%s %s: skipped: %s", op, in->vm_id ? in->vm_id : in->vm_name,
              why);
  ec2_input_free (in);
  return r < 0 ? PALLET_E_ABI : PALLET_OK;
}

int
ec2_prepare_source_entry (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "prepare_source", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (!ec2_plan_is_conversion (in.plan)) {
    ec2_input_free (&in);
    return ec2_prepare_source (handle, call, input_json);
  }
  return skip_op (s, call, &in, "prepare_source", "prepareSource",
                  "skipped: conversion-only plan; the source instance is left as it is");
}

int
ec2_transfer_entry (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "transfer", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (!ec2_plan_is_conversion (in.plan)) {
    ec2_input_free (&in);
    return ec2_transfer (handle, call, input_json);
  }
  return skip_op (s, call, &in, "transfer", "transfer",
                  "skipped: conversion-only plan; the disks are the existing PVCs");
}

int
ec2_convert_entry (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "convert", input_json, &in) < 0)
    return PALLET_E_INVALID;
  if (!ec2_plan_is_conversion (in.plan)) {
    ec2_input_free (&in);
    return ec2_convert (handle, call, input_json);
  }
  if (json_is_true (json_object_get (in.plan, "skipGuestConversion")))
    return skip_op (s, call, &in, "convert", "conversion",
                    "skipped: the plan sets skipGuestConversion");
  return skip_op (s, call, &in, "convert", "conversion",
                  "not run here: conversion-only plan; the conversion Pod converts the "
                  "existing PVCs in the cluster");
}

/* ---- the conversion Pod ---- */

/* Pod name: <vm>-v2v, the VM part cut so it stays a DNS-1123 label. */
static void
pod_name (const char *vm, char out[64])
{
  size_t n = strlen (vm);
  if (n > 63 - 4)
    n = 63 - 4;
  while (n > 0 && vm[n - 1] == '-')
    n--;
  snprintf (out, 64, "%.*s-v2v", (int) n, vm);
}

json_t *
ec2_conversion_pod (struct ec2 *s, const struct ec2_input *in, const json_t *manifests, char **err)
{
  *err = NULL;
  const char *conv = ec2_str (in->state, "conversion");
  /* Where convert said the disks were not local, and in copy mode: the
   * copy Pod fills the PVCs from the snapshots, not from the local files
   * convert converted. */
  if (json_is_true (json_object_get (in->plan, "skipGuestConversion"))
      || (strncmp (conv, "not run here", 12) != 0
          && strcmp (ec2_str (in->state, "transferMode"), "copy") != 0))
    return NULL;
  const json_t *vm = NULL, *m;
  size_t i;
  json_array_foreach (manifests, i, m)
    if (!strcmp (ec2_str (m, "kind"), "VirtualMachine"))
      vm = m;
  if (!vm) {
    *err = strdup ("no VirtualMachine manifest to take the disks from");
    return NULL;
  }
  /* The VM's volumes are in disk order already (disk-0 first). */
  const json_t *vols = json_object_get (
      json_object_get (json_object_get (json_object_get (vm, "spec"), "template"), "spec"),
      "volumes");
  const char **claims = calloc (json_array_size (vols) + 1, sizeof *claims);
  size_t n = 0;
  const json_t *v;
  if (!claims) {
    *err = strdup ("out of memory");
    return NULL;
  }
  json_array_foreach (vols, i, v) {
    const char *c = ec2_str (json_object_get (v, "persistentVolumeClaim"), "claimName");
    if (*c)
      claims[n++] = c;
  }
  const json_t *md = json_object_get (vm, "metadata");
  char name[64];
  pod_name (ec2_str (md, "name"), name);
  const json_t *spec = json_object_get (in->plan, "spec");
  const char *zone = *s->target_az && !json_is_true (json_object_get (spec, "skipZoneNodeSelector"))
                         ? s->target_az
                         : NULL;
  struct Pallet_convert_pod_options o = {
    .name = name,
    .namespace_ = ec2_str (md, "namespace"),
    .image = s->conversion_image,
    .claims = claims,
    .nclaims = n,
    .zone = zone,
    .vm_id = in->vm_id,
    .plan_uid = *in->plan_uid ? in->plan_uid : NULL,
    .migration_uid = *in->migration_uid ? in->migration_uid : NULL,
    .cpu_request = s->conversion_cpu,
    .memory_request = s->conversion_memory,
    .force_tcg = s->force_tcg,
    /* The fix-up as the local conversion runs it (convert.c). */
    .fix_device_names = ec2_wants_fixup (s),
  };
  struct Pallet_convert_device *map = ec2_device_map (json_object_get (in->state, "volumes"), n);
  if (!map) {
    free (claims);
    *err = strdup ("out of memory");
    return NULL;
  }
  o.devices = map;
  o.ndevices = n;
  json_t *pod = Pallet_convert_pod_manifest (&o, err);
  free (map);
  free (claims);
  /* The plan's convertor*, transferNetwork and serviceAccount. */
  if (pod && Pallet_ec2_pod_fields_apply (in->plan, zone, 1, pod, err) != PALLET_OK) {
    json_decref (pod);
    return NULL;
  }
  return pod;
}
