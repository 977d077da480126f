/* SPDX-License-Identifier: Apache-2.0 */
/* Every spec field of the Forklift CRDs pallet reads, and what pallet
 * does with it.  docs/ec2-user-guide.md shows this table; a test keeps
 * the two and the vendored CRDs in step.
 *
 * A "refused" field set to anything but its neutral value (the CRD
 * default, else false, "", {} or []) fails the load with "not supported
 * yet", or warns under PALLET_PLAN_LENIENT: it is never dropped silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet-plan.h"
#include "plan-internal.h"

#define H "honoured"
#define R "refused"
#define P "partial" /* its neutral value is honoured, any other refused */

/* kind, path ([] = every item), status, neutral value (JSON text, or
 * NULL: the CRD default, else the empty value of the type), what it does. */
const struct Pallet_plan_field Pallet_plan_fields[] = {
  { "Plan", "spec.archived", R, NULL, "archives the plan: its pods and state are cleaned up" },
  { "Plan", "spec.conversionTempStorageClass", R, NULL,
    "storage class of a scratch PVC for virt-v2v's temporary files" },
  { "Plan", "spec.conversionTempStorageSize", R, NULL,
    "size of the scratch PVC for virt-v2v's temporary files" },
  { "Plan", "spec.convertorAffinity", H, NULL, "affinity of the conversion Pod" },
  { "Plan", "spec.convertorLabels", H, NULL, "labels on the conversion Pod" },
  { "Plan", "spec.convertorNodeSelector", H, NULL,
    "node selector of the conversion Pod (not outside the volumes' zone)" },
  { "Plan", "spec.customizationScripts", H, NULL,
    "a ConfigMap's N_linux_firstboot_*.sh (run once at first boot) and N_linux_run_*.sh "
    "(run at conversion) scripts, in key order; copy mode (validate warns otherwise)" },
  { "Plan", "spec.deleteGuestConversionPod", R, NULL,
    "deletes the conversion Pod once it has succeeded" },
  { "Plan", "spec.deleteVmOnFailMigration", P, NULL,
    "false keeps the target VM of a failed migration (pallet always rolls it back)" },
  { "Plan", "spec.description", H, NULL, "free text; no effect" },
  { "Plan", "spec.diskBus", R, NULL, "forces the disk bus (deprecated upstream)" },
  { "Plan", "spec.enableNestedVirtualization", R, NULL, "exposes vmx/svm to the guest" },
  { "Plan", "spec.installLegacyDrivers", R, NULL, "installs legacy Windows drivers" },
  { "Plan", "spec.map", H, NULL, "the NetworkMap and StorageMap" },
  { "Plan", "spec.migrateSharedDisks", P, NULL,
    "false leaves shared (multi-attach) disks out of the migration" },
  { "Plan", "spec.networkNameTemplate", H, NULL,
    "template for the VM's interface names ({{.NetworkName}}, {{.NetworkNamespace}}, {{.NetworkType}}, {{.NetworkIndex}})" },
  { "Plan", "spec.preserveClusterCpuModel", R, NULL, "keeps the oVirt cluster CPU model" },
  { "Plan", "spec.preserveStaticIPs", R, NULL,
    "keeps the guest's IP addresses on the target network" },
  { "Plan", "spec.provider", H, NULL, "the source and destination Providers" },
  { "Plan", "spec.pvcNameTemplate", H, NULL,
    "template for the PVC names ({{.VmName}}, {{.TargetVmName}}, {{.PlanName}}, {{.DiskIndex}}, {{.RootDiskIndex}}, {{.VmId}}, {{.VolumeID}}...)" },
  { "Plan", "spec.pvcNameTemplateUseGenerateName", P, "false",
    "true: the template as metadata.generateName; the PV, VM and Pods need exact names" },
  { "Plan", "spec.rdmAsLun", R, NULL, "maps VMware RDM disks as LUNs" },
  { "Plan", "spec.runPreflightInspection", R, NULL,
    "false skips the preflight inspection of the base disks" },
  { "Plan", "spec.scsiReservation", R, NULL, "SCSI persistent reservation on shared disks" },
  { "Plan", "spec.serviceAccount", H, NULL, "serviceAccountName of the copy and conversion Pods" },
  { "Plan", "spec.skipGuestConversion", H, NULL, "no virt-v2v conversion of the guest" },
  { "Plan", "spec.skipZoneNodeSelector", H, NULL, "no zone node selector on the VM" },
  { "Plan", "spec.tagMapping", R, NULL, "turns vSphere tags into labels" },
  { "Plan", "spec.targetAffinity", H, NULL, "the VM's affinity" },
  { "Plan", "spec.targetLabels", H, NULL, "labels on the VM" },
  { "Plan", "spec.targetNamespace", H, NULL, "namespace of the VM and its PVCs" },
  { "Plan", "spec.targetNodeSelector", H, NULL, "the VM's node selector" },
  { "Plan", "spec.targetPowerState", H, NULL, "runStrategy of the VM (on, off, auto)" },
  { "Plan", "spec.transferNetwork", H, NULL,
    "Multus network (NetworkAttachmentDefinition) of the copy and conversion Pods" },
  { "Plan", "spec.type", H, NULL, "cold, warm or conversion (live is refused)" },
  { "Plan", "spec.useCompatibilityMode", H, NULL,
    "with skipGuestConversion: SATA and e1000e instead of virtio (default true)" },
  { "Plan", "spec.virtV2vImage", R, NULL, "image of the conversion Pod" },
  { "Plan", "spec.vms", H, NULL, "the VMs to migrate" },
  { "Plan", "spec.vms[].deleteVmOnFailMigration", P, "true",
    "false keeps this VM when its migration fails" },
  { "Plan", "spec.vms[].enableNestedVirtualization", R, NULL, "exposes vmx/svm to this guest" },
  { "Plan", "spec.vms[].hooks", H, NULL,
    "PreHook/PostHook: the Hook's Pod, run in cluster mode (--apply) or with --run-hooks-locally" },
  { "Plan", "spec.vms[].id", H, NULL, "the instance id" },
  { "Plan", "spec.vms[].instanceType", R, NULL, "a KubeVirt instance type for this VM" },
  { "Plan", "spec.vms[].luks", R, NULL, "LUKS keys to open encrypted disks" },
  { "Plan", "spec.vms[].migrateSharedDisks", P, "true", "false leaves this VM's shared disks out" },
  { "Plan", "spec.vms[].name", H, NULL, "the instance's Name tag" },
  { "Plan", "spec.vms[].namespace", R, NULL, "namespace of a source VM (KubeVirt sources)" },
  { "Plan", "spec.vms[].nbdeClevis", R, NULL, "unlocks encrypted disks with Clevis" },
  { "Plan", "spec.vms[].networkNameTemplate", H, NULL, "interface name template for this VM" },
  { "Plan", "spec.vms[].pvcNameTemplate", H, NULL, "PVC name template for this VM" },
  { "Plan", "spec.vms[].rdmAsLun", R, NULL, "maps this VM's RDM disks as LUNs" },
  { "Plan", "spec.vms[].rootDisk", R, NULL, "chooses the boot disk" },
  { "Plan", "spec.vms[].scsiReservation", R, NULL, "SCSI reservation on this VM's shared disks" },
  { "Plan", "spec.vms[].targetName", H, NULL, "name of the VirtualMachine" },
  { "Plan", "spec.vms[].targetPowerState", H, NULL, "runStrategy of this VM" },
  { "Plan", "spec.vms[].type", R, NULL, "qualifies the VM name (reference type)" },
  { "Plan", "spec.vms[].volumeNameTemplate", H, NULL, "volume name template for this VM" },
  { "Plan", "spec.volumeNameTemplate", H, NULL,
    "template for the VM's volume names ({{.PVCName}}, {{.VolumeIndex}})" },
  { "Plan", "spec.warm", H, NULL, "warm migration (superseded by type)" },
  { "Plan", "spec.xfsCompatibility", R, NULL, "a virt-v2v image that can read old XFS" },
  { "Provider", "spec.secret", H, NULL, "the credentials Secret" },
  { "Provider", "spec.settings", H, NULL, "provider settings (region, target-az...)" },
  { "Provider", "spec.type", H, NULL, "provider type: which pallet provider runs" },
  { "Provider", "spec.url", H, NULL, "the endpoint" },
  { "NetworkMap", "spec.map", H, NULL, "network pairs" },
  { "NetworkMap", "spec.map[].destination", H, NULL, "pod, multus (name, namespace) or ignored" },
  { "NetworkMap", "spec.map[].source.id", H, NULL, "the subnet id" },
  { "NetworkMap", "spec.map[].source.name", H, NULL, "the subnet id or Name" },
  { "NetworkMap", "spec.map[].source.namespace", R, NULL, "namespace of a source network" },
  { "NetworkMap", "spec.map[].source.type", R, NULL, "type of a source network" },
  { "NetworkMap", "spec.map[].source.vlan", R, NULL, "VLAN of a source network" },
  { "NetworkMap", "spec.provider", H, NULL, "the Providers (informational)" },
  { "StorageMap", "spec.map", H, NULL, "storage pairs" },
  { "StorageMap", "spec.map[].destination.accessMode", H, NULL, "access mode of the PV and PVC" },
  { "StorageMap", "spec.map[].destination.storageClass", H, NULL, "storage class of the PVCs" },
  { "StorageMap", "spec.map[].destination.volumeMode", P, "\"Block\"",
    "Filesystem: disk images on a file system; pallet writes disks as Block devices" },
  { "StorageMap", "spec.map[].offloadPlugin", R, NULL, "storage offload (vSphere XCOPY, CSI)" },
  { "StorageMap", "spec.map[].source.id", H, NULL, "the EBS volume type" },
  { "StorageMap", "spec.map[].source.name", H, NULL, "the EBS volume type" },
  { "StorageMap", "spec.map[].source.namespace", R, NULL, "namespace of a source storage" },
  { "StorageMap", "spec.map[].source.type", R, NULL, "type of a source storage" },
  { "StorageMap", "spec.provider", H, NULL, "the Providers (informational)" },
  { "Migration", "spec.cancel", R, NULL, "VMs not to migrate" },
  { "Migration", "spec.cutover", H, NULL, "cutover time of a warm plan" },
  { "Migration", "spec.plan", H, NULL, "the Plan it runs" },
  { "Migration", "spec.resumeConversion", R, NULL, "skips the copy and runs only virt-v2v" },
  { "Migration", "spec.vmCutover", R, NULL, "per-VM cutover times" },
  { "Hook", "spec.aap", R, NULL, "runs an Ansible Automation Platform job" },
  { "Hook", "spec.deadline", H, NULL, "seconds the hook may run (activeDeadlineSeconds)" },
  { "Hook", "spec.image", H, NULL, "image of the hook Pod (default quay.io/kubev2v/hook-runner)" },
  { "Hook", "spec.playbook", H, NULL,
    "Ansible playbook (base64), mounted as /tmp/hook/playbook.yml" },
  { "Hook", "spec.serviceAccount", H, NULL,
    "serviceAccountName of the hook Pod (else the plan's)" },
  { NULL, NULL, NULL, NULL, NULL },
};

/* The schema node of a dotted path ("spec.vms[].id"). */
const json_t *
Pallet_plan_schema_at (const json_t *schema, const char *path)
{
  char buf[256], *tok, *save = NULL;

  snprintf (buf, sizeof buf, "%s", path);
  for (tok = strtok_r (buf, ".", &save); tok && schema; tok = strtok_r (NULL, ".", &save)) {
    size_t n = strlen (tok);
    int items = n > 2 && !strcmp (tok + n - 2, "[]");
    if (items)
      tok[n - 2] = '\0';
    schema = json_object_get (json_object_get (schema, "properties"), tok);
    if (items)
      schema = json_object_get (schema, "items");
  }
  return schema;
}

static int
is_neutral (const struct Pallet_plan_field *f, const json_t *schema, const json_t *v)
{
  const json_t *def = json_object_get (schema, "default");
  json_t *n = f->neutral ? json_loads (f->neutral, JSON_DECODE_ANY, NULL) : NULL;
  int r;

  if (n || def) {
    r = json_equal (n ? n : def, v);
    json_decref (n);
    return r;
  }
  return json_is_null (v) || json_is_false (v) || (json_is_string (v) && !json_string_length (v))
         || (json_is_object (v) && !json_object_size (v))
         || (json_is_array (v) && !json_array_size (v));
}

struct refuse {
  const struct Pallet_plan_field *f;
  const json_t *schema, *entry;
  unsigned flags;
  json_t *warnings;
  char **errmsg;
  int *failed;
};

/* Walks the rest of f->path from v, reporting every non-neutral value. */
static void
walk (struct refuse *r, const json_t *v, const char *rest, const char *done)
{
  char key[128], path[256];
  const char *dot = strchr (rest, '.');
  size_t n = dot ? (size_t) (dot - rest) : strlen (rest);
  int items = n > 2 && rest[n - 2] == '[' && rest[n - 1] == ']';

  if (*r->failed || n >= sizeof key)
    return;
  memcpy (key, rest, n);
  key[items ? n - 2 : n] = '\0';
  v = json_object_get (v, key);
  snprintf (path, sizeof path, "%s%s%s", done, *done ? "." : "", key);
  if (!v)
    return;
  if (items) {
    size_t i;
    const json_t *it;
    json_array_foreach (v, i, it) {
      char p[300];
      snprintf (p, sizeof p, "%s[%zu]", path, i);
      if (dot)
        walk (r, it, dot + 1, p);
    }
    return;
  }
  if (dot) {
    walk (r, v, dot + 1, path);
    return;
  }
  if (is_neutral (r->f, r->schema, v))
    return;
  char *loc = Pallet_plan_where (r->entry), *msg = NULL;
  if (asprintf (&msg, "%s: %s: not supported yet: %s (%s); remove it%s", loc ? loc : "plan", path,
                path, r->f->what,
                r->flags & PALLET_PLAN_LENIENT ? "" : ", or pass --lenient to go on without it")
      < 0)
    msg = NULL;
  if (r->flags & PALLET_PLAN_LENIENT) {
    if (r->warnings)
      json_array_append_new (r->warnings, json_string (msg ? msg : "plan: out of memory"));
  }
  else {
    *r->failed = 1;
    Pallet_plan_set_error (r->errmsg, "%s", msg ? msg : "plan: out of memory");
  }
  free (msg);
  free (loc);
}

void
Pallet_plan_check_refused (int *failed, const json_t *entry, const json_t *schema, unsigned flags,
                           json_t *warnings, char **errmsg)
{
  const json_t *obj = json_object_get (entry, "object");
  const char *kind = json_string_value (json_object_get (obj, "kind"));

  for (const struct Pallet_plan_field *f = Pallet_plan_fields; f->kind && !*failed; ++f) {
    if (strcmp (f->kind, kind) || !strcmp (f->status, H))
      continue;
    struct refuse r = {
      f, Pallet_plan_schema_at (schema, f->path), entry, flags, warnings, errmsg, failed
    };
    walk (&r, obj, f->path, "");
  }
}
