/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_conversion: conversion-only plans for vSphere (Forklift's
 * plan type "conversion"): the disks are PVCs someone else filled,
 * labelled vmID=<moref> or vmUUID=<uuid> and annotated
 * forklift.konveyor.io/disk-source=<the .vmdk they hold>.
 *
 * Matching those PVCs to the VM's disks (the order of libvirt's domain
 * XML, which is the VM's device order), with what stands in the way as
 * problems; and the libvirt XML for virt-v2v-in-place -i libvirtxml: the
 * ESX driver's own domain XML, its disks pointed at the PVC devices
 * (libxml2).  No I/O; no global state. */
#ifndef PALLET_V2V_CONVERSION_H
#define PALLET_V2V_CONVERSION_H

#include <stddef.h>
#include <jansson.h>

#define PALLET_V2V_ANN_DISK_SOURCE "forklift.konveyor.io/disk-source"

/* The disk of facts (pallet_v2v_domain_facts: "disks" with "file"
 * "[DS] dir/x.vmdk" and "vmdk" "dir/x.vmdk") a disk-source names: the
 * whole file, the path in the datastore, or the bare .vmdk name when one
 * disk alone has it.  Its index, or -1. */
int pallet_v2v_conversion_disk_of (const json_t *facts, const char *disk_source);

/* Matches pvcs (PersistentVolumeClaim objects, e.g. every PVC of the
 * namespace) to the disks of facts ("id" the moref, "uuid").  *claims: one
 * entry per disk, in disk order, {"pvcName", "disk" (the file),
 * "volumeMode", "storageClass"?} or null for a disk no PVC holds.
 * *problems: [{"type", "pvc"?, "message"}] with type one of
 *   ConversionPVCAnnotationMissing  labelled for the VM, no disk-source
 *   ConversionPVCUnknownDisk        its disk-source is no disk of the VM
 *   ConversionPVCDuplicate          a second PVC for one disk
 *   ConversionPVCLabelMissing       it names a disk nothing else holds,
 *                                   but has no vmID/vmUUID label
 *   ConversionPVCCountMismatch      disks no PVC holds
 * each message naming the PVC, the problem and the fix.  PVCs of other
 * namespaces than ns (when set) and of other VMs are left alone.
 * Returns the number of problems, or -1 when out of memory. */
int pallet_v2v_conversion_match (const json_t *facts, const json_t *pvcs, const char *ns,
                                 json_t **claims, json_t **problems);

/* One disk's new home: a block device (dev) or a file standing in for
 * one. */
struct pallet_v2v_conversion_disk {
  const char *path;
  int block;
};

/* domain_xml (libvirt's ESX driver) with its n disks (device="disk", in
 * document order) pointed at disks[i] as raw, and the datastore sources
 * of CD-ROMs and floppies dropped (virt-v2v-in-place cannot open them).
 * *out malloc'd.  Returns a pallet status; *err (malloc'd) says why. */
int pallet_v2v_conversion_xml (const char *domain_xml,
                               const struct pallet_v2v_conversion_disk *disks, size_t n, char **out,
                               char **err);

#endif
