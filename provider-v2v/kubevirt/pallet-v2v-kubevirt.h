/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_kubevirt: virt-v2v's `-o kubevirt` YAML -> Kubernetes
 * manifests (a PVC per converted disk and a KubeVirt VirtualMachine).
 *
 * virt-v2v 2.2.0 writes a VirtualMachineInstance that is not valid
 * KubeVirt as written: `cpu` and `features` nested under `resources`
 * (features empty), disks as `hostDisk` paths, no firmware for BIOS
 * guests, no NICs.  This library reads it (libyaml, through the plan
 * reader), refuses anything it does not know, and builds the VM from it
 * plus the source's metadata and the plan's maps.  No I/O but reading the
 * YAML; no global state. */
#ifndef PALLET_V2V_KUBEVIRT_H
#define PALLET_V2V_KUBEVIRT_H

#include <jansson.h>

/* Reads the YAML virt-v2v wrote: one VirtualMachineInstance of
 * kubevirt.io/v1.  New reference, or NULL with *err (malloc'd). */
json_t *pallet_v2v_kubevirt_read (const char *path, char **err);

/* What build needs besides the YAML.
 *   source: the source VM's facts (docs/v2v-user-guide.md, "VM facts"):
 *     {"name", "uuid", "firmware": "bios"|"efi", "cpus", "memoryMiB",
 *      "disks": [{"file", "datastore"}], "nics": [{"mac", "network"}]}
 *   outputs: {"yaml": PATH, "disks": [{"path", "sizeBytes"}]} in disk order */
struct pallet_v2v_vm_in {
  const json_t *plan; /* the normalized plan */
  const json_t *vm;   /* its vms[] entry */
  const json_t *source;
  const json_t *outputs;
  const char *migration_uid;
  const char *provider_type; /* "vsphere", "ova", "xen", "disk" */
  /* Conversion-only plans: the names of the existing PVCs (strings), in
   * the order of outputs.disks; the VM uses them and no PVC is made. */
  const json_t *claims;
};

/* The manifests in creation order (PVCs, then the VirtualMachine) and
 * notes (strings worth logging).  Returns a pallet_status; on error *err
 * names the field, the problem and the fix. */
int pallet_v2v_kubevirt_manifests (const json_t *vmi, const struct pallet_v2v_vm_in *in,
                                   json_t **manifests, json_t **notes, char **err);

/* The target VM name (a DNS-1123 label): vm.targetName, else the source
 * name.  malloc'd, or NULL. */
char *pallet_v2v_vm_name (const json_t *plan, const json_t *vm, const char *source_name);

#endif
