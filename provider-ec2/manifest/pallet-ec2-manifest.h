/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-ec2-manifest: the pure (no network) part of the EC2 provider's
 * build_vm.  Turns the normalized plan, one VM entry and that VM's state
 * into Kubernetes manifests: one KubeVirt VirtualMachine, plus one
 * PersistentVolume (zero-copy mode only) and one PersistentVolumeClaim per
 * EBS volume.
 *
 * All objects are jansson objects; the caller keeps ownership of its
 * inputs and receives new references for the outputs.  Nothing here does
 * I/O, logs or keeps global state, so it is safe to call from any thread.
 *
 * The state shape this library reads is documented in README.md next to
 * this header.
 */
#ifndef PALLET_EC2_MANIFEST_H
#define PALLET_EC2_MANIFEST_H

#include <stddef.h>
#include <jansson.h>

#include "pallet-k8sname.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DNS-1123 names and label values are host-shim/k8sname's (shared with
 * provider-v2v); the EC2 names stay for this library's callers. */
#define PALLET_EC2_DNS1123_LABEL_MAX    PALLET_K8S_DNS1123_LABEL_MAX
#define Pallet_ec2_dns1123_label        Pallet_k8s_dns1123_label
#define Pallet_ec2_is_dns1123_label     Pallet_k8s_is_dns1123_label
#define Pallet_ec2_is_dns1123_subdomain Pallet_k8s_is_dns1123_subdomain
#define Pallet_ec2_is_label_key         Pallet_k8s_is_label_key
#define Pallet_ec2_is_label_value       Pallet_k8s_is_label_value

/* Options not carried by the plan. */
struct Pallet_ec2_manifest_opts {
  /* Copy mode: the disks are copied into new PVCs from the StorageMap's
   * storage class, so no PersistentVolume is made and the PVCs are not
   * pre-bound (no volumeName).  Volumes need no targetVolumeId/targetAZ. */
  int copy_mode;
  /* Pod network: bind with the "l2bridge" network binding plugin instead
   * of masquerade. */
  int pod_l2bridge;
  /* Ask for UEFI Secure Boot (only valid with UEFI firmware). */
  int secure_boot;
  /* The current migration's uid (options.migrationUID), or NULL.  Used
   * when the state has no migrationUID; if both are set they must match.
   * Borrowed: must outlive the build call. */
  const char *migration_uid;
  /* Conversion-only plans: the PVCs exist already (someone else made
   * them).  Each volume names its claim in "pvcName"; no PV or PVC is
   * emitted, and no storage class, targetVolumeId or targetAZ is needed. */
  int existing_pvcs;
};

/* Fills *opts from the per-VM op's "options" object (may be NULL):
 *   "copyMode": bool, "podBinding": "masquerade"|"l2bridge",
 *   "secureBoot": bool, "migrationUID": string (borrowed from options).
 * Returns 0, or -1 with *errmsg (malloc'd) naming the bad key. */
int Pallet_ec2_manifest_opts_from_json (const json_t *options,
                                        struct Pallet_ec2_manifest_opts *opts, char **errmsg);

/* The target VM name: vm.targetName, else the instance's Name (state
 * instance.name or tags.Name), else the instance id, each made a DNS-1123
 * label; collisions with the other VMs of plan.vms get a hash suffix.
 * Appends a note (string) to notes (an array, may be NULL) when the name
 * was changed.  Returns a pallet_status code (0 = PALLET_OK) and sets
 * *name (malloc'd), or an error with *errmsg (malloc'd). */
int Pallet_ec2_vm_name (const json_t *plan, const json_t *vm, const json_t *state, json_t *notes,
                        char **name, char **errmsg);

/* Expands a Forklift name template (the Go text/template subset
 * {{.Var}}, {{trunc N .Var}}, {{lower .Var}}, {{upper .Var}},
 * {{if eq A B}}...{{else}}...{{end}}) over vars, an object of strings,
 * integers and booleans.  Returns 0 with *out (malloc'd), or -1 with
 * *errmsg (malloc'd) naming the bad action or unknown variable. */
int Pallet_ec2_template (const char *tmpl, const json_t *vars, char **out, char **errmsg);

/* Builds the manifests.  On PALLET_OK (0), *manifests is a new array in
 * creation order: the PersistentVolumes (zero-copy mode), then the
 * PersistentVolumeClaims, then the VirtualMachine; and *notes (may be
 * NULL) a new array of strings worth logging (renames, assumptions).
 * Otherwise returns a pallet_status error code (PALLET_E_INVALID for bad
 * or incomplete input, PALLET_E_NOMEM) and *errmsg (malloc'd) names the
 * thing, the problem and the fix. */
int Pallet_ec2_build_manifests (const json_t *plan, const json_t *vm, const json_t *state,
                                const struct Pallet_ec2_manifest_opts *opts, json_t **manifests,
                                json_t **notes, char **errmsg);

/* Conversion-only plans: picks, from pvcs (an array of
 * PersistentVolumeClaim objects, e.g. a List's items), the claims of
 * instance vm_id: labelled vmID=<vm_id> or vmUUID=<vm_id> and annotated
 * forklift.konveyor.io/disk-source (duplicates by name count once).  Each
 * is matched to one of volumes (the validate state's records, each with
 * sourceVolumeId and diskIndex): the volume whose id is the disk-source
 * value, else the one whose diskIndex is the PVC's
 * forklift.konveyor.io/disk-index annotation.  On PALLET_OK every volume
 * got "pvcName", "pvcVolumeMode" and "pvcStorageClass" (when known), so
 * the disk order is the volumes' diskIndex order.  Otherwise returns
 * PALLET_E_INVALID (or PALLET_E_NOMEM), *code a stable finding code
 * (static string: "ConversionPVCCountMismatch",
 * "ConversionPVCUnmatched", "ConversionPVCDuplicate") and *errmsg
 * (malloc'd) names the PVCs found, the ones expected and the fix. */
int Pallet_ec2_conversion_pvcs (const json_t *pvcs, const char *vm_id, const char *ns,
                                json_t *volumes, const char **code, char **errmsg);

/* The stage contract with the host (Added-in: ABI 1.1, docs/ops/build_vm.md). */
#define PALLET_EC2_STAGE_LABEL         "pallet.dev/stage"
#define PALLET_EC2_TARGET_RUN_STRATEGY "pallet.dev/target-run-strategy"

/* Labels every item of manifests (build_vm's, in build order) with its
 * stage: "storage" (Secret, ConfigMap, PersistentVolume,
 * PersistentVolumeClaim), "copy" or "convert" (a Pod, which must carry
 * the label already), "vm" (VirtualMachine); reorders them by stage,
 * keeping the order within one; and when a Pod is among them, makes the
 * VirtualMachine spec.runStrategy Halted with its wanted strategy in the
 * annotation pallet.dev/target-run-strategy.  Returns 0, or -1 with
 * *errmsg (malloc'd) naming the item without a stage. */
int Pallet_ec2_stage_items (json_t *manifests, char **errmsg);

/* The Plan's Pod fields, as Forklift applies them: convertorLabels,
 * convertorNodeSelector and convertorAffinity on the conversion Pod,
 * transferNetwork (annotation k8s.v1.cni.cncf.io/networks) and
 * serviceAccount (spec.serviceAccountName) on the copy and conversion
 * Pods.  zone: the volumes' zone the Pods must run in, or NULL.
 * _check returns PALLET_OK, or PALLET_E_INVALID with *errmsg (malloc'd)
 * naming the field path, the problem and the fix.  _apply checks, then
 * sets them on pod (conversion: non-zero for the conversion Pod); a
 * serviceAccountName the Pod has already must be the plan's. */
int Pallet_ec2_pod_fields_check (const json_t *plan, const char *zone, char **errmsg);
int Pallet_ec2_pod_fields_apply (const json_t *plan, const char *zone, int conversion, json_t *pod,
                                 char **errmsg);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_EC2_MANIFEST_H */
