/* SPDX-License-Identifier: Apache-2.0 */
/* EC2 build_vm manifests: VirtualMachine, PersistentVolumes, PVCs.
 *
 * Pure functions of (plan, vm, state, options).  See README.md for the
 * state shape and forklift-ec2.md 8.2 for the upstream gaps this avoids
 * (sizing by suffix table, uefi-preferred taken as UEFI, NIC order, boot
 * disk = first BDM, PV without nodeAffinity, dropped target labels ...).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pallet/provider.h>

#include "pallet-ec2-manifest.h"

#define ZONE_KEY       "topology.kubernetes.io/zone"
#define EBS_ZONE_KEY   "topology.ebs.csi.aws.com/zone"
#define EBS_CSI_DRIVER "ebs.csi.aws.com"
#define FK             "forklift.konveyor.io/"

struct vol {
  const json_t *j;
  const char *src_id, *dev, *type, *target_id, *target_az;
  json_int_t size_gib, index;
  int boot;
  const char *storage_class, *access_mode;
  const char *pvc_given; /* existing_pvcs: the claim's name */
  char *pvc_name, *pv_name, *disk_name;
};

struct nic {
  const char *eni, *mac, *subnet;
  json_int_t card, devidx;
  char *name;
  const json_t *map_dest;
};

struct ctx {
  const json_t *plan, *vm, *state, *spec, *inst;
  struct Pallet_ec2_manifest_opts opts;
  json_t *notes;
  char **errmsg;
  int oom;
  const char *ns, *plan_name, *plan_uid, *mig_uid, *vm_id;
  const char *target_az;
  char *vm_name;
  struct vol *vols;
  size_t nvols;
  struct nic *nics;
  size_t nnics;
  int compat;
};

static int fail (struct ctx *c, int code, const char *fmt, ...) PALLET_PRINTF (3, 4);

static int
fail (struct ctx *c, int code, const char *fmt, ...)
{
  va_list ap;

  if (c->errmsg && *c->errmsg == NULL) {
    va_start (ap, fmt);
    if (vasprintf (c->errmsg, fmt, ap) == -1)
      *c->errmsg = NULL;
    va_end (ap);
  }
  return code;
}

static void note (struct ctx *c, const char *fmt, ...) PALLET_PRINTF (2, 3);

static void
note (struct ctx *c, const char *fmt, ...)
{
  va_list ap;
  char *s;
  int r;

  if (c->notes == NULL)
    return;
  va_start (ap, fmt);
  r = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (r == -1) {
    c->oom = 1;
    return;
  }
  if (json_array_append_new (c->notes, json_string (s)) == -1)
    c->oom = 1;
  free (s);
}

static const char *
jstr (const json_t *o, const char *key)
{
  return json_string_value (json_object_get (o, key));
}

/* A non-empty string, or NULL. */
static const char *
jstr_ne (const json_t *o, const char *key)
{
  const char *s = jstr (o, key);

  return s && *s ? s : NULL;
}

/* Sets o[key] = v (stolen); records out-of-memory instead of crashing. */
static void
set (struct ctx *c, json_t *o, const char *key, json_t *v)
{
  if (o == NULL || v == NULL || json_object_set_new (o, key, v) == -1) {
    if (v)
      json_decref (v);
    c->oom = 1;
  }
}

static void
push (struct ctx *c, json_t *a, json_t *v)
{
  if (a == NULL || v == NULL || json_array_append_new (a, v) == -1)
    c->oom = 1;
}

static void
set_str (struct ctx *c, json_t *o, const char *key, const char *s)
{
  set (c, o, key, json_string (s));
}

static json_t *
gib (json_int_t n)
{
  char buf[32];

  snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT "Gi", n);
  return json_string (buf);
}

/* ---- options ---------------------------------------------------------- */

int
Pallet_ec2_manifest_opts_from_json (const json_t *options, struct Pallet_ec2_manifest_opts *opts,
                                    char **errmsg)
{
  const json_t *v;

  memset (opts, 0, sizeof *opts);
  if (errmsg)
    *errmsg = NULL;
  if (options == NULL || json_is_null (options))
    return 0;
  if (!json_is_object (options)) {
    if (errmsg
        && asprintf (errmsg, "options: expected a JSON object; "
                             "pass {} when there are none")
               == -1)
      *errmsg = NULL;
    return -1;
  }
#define BOOL_OPT(key, field)                                     \
  if ((v = json_object_get (options, key)) != NULL) {            \
    if (!json_is_boolean (v)) {                                  \
      if (errmsg                                                 \
          && asprintf (errmsg, "options." key ": expected true " \
                               "or false")                       \
                 == -1)                                          \
        *errmsg = NULL;                                          \
      return -1;                                                 \
    }                                                            \
    opts->field = json_is_true (v);                              \
  }
  BOOL_OPT ("copyMode", copy_mode);
  BOOL_OPT ("secureBoot", secure_boot);
#undef BOOL_OPT
  if ((v = json_object_get (options, "migrationUID")) != NULL && !json_is_null (v)) {
    if (!json_is_string (v)) {
      if (errmsg
          && asprintf (errmsg, "options.migrationUID: expected a "
                               "string")
                 == -1)
        *errmsg = NULL;
      return -1;
    }
    opts->migration_uid = json_string_value (v);
  }
  if ((v = json_object_get (options, "podBinding")) != NULL) {
    const char *s = json_string_value (v);

    if (s && strcmp (s, "l2bridge") == 0)
      opts->pod_l2bridge = 1;
    else if (!(s && strcmp (s, "masquerade") == 0)) {
      if (errmsg
          && asprintf (errmsg, "options.podBinding: expected "
                               "\"masquerade\" or \"l2bridge\"")
                 == -1)
        *errmsg = NULL;
      return -1;
    }
  }
  return 0;
}

/* ---- VM name ---------------------------------------------------------- */

/* A name with no ASCII letter or digit would clean up to nothing. */
static int
has_alnum (const char *s)
{
  for (; *s; s++)
    if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
      return 1;
  return 0;
}

/* instance.name, else the Name tag: tags as {"Name": v} or as AWS's
 * [{"Key": "Name", "Value": v}]. */
static const char *
instance_name (const json_t *inst)
{
  const char *s = jstr_ne (inst, "name");
  const json_t *tags = json_object_get (inst, "tags"), *t;
  size_t i;

  if (s)
    return s;
  if (json_is_object (tags))
    return jstr_ne (tags, "Name");
  json_array_foreach (tags, i, t) {
    const char *k = jstr (t, "Key");
    if (k && strcmp (k, "Name") == 0)
      return jstr_ne (t, "Value");
  }
  return NULL;
}

/* Whether plan.vms[] entry e is this VM: by index, else id, else name. */
static int
same_vm (const json_t *e, const json_t *vm, const char *id)
{
  const json_t *ei = json_object_get (e, "index");
  const json_t *vi = json_object_get (vm, "index");
  const char *eid = jstr_ne (e, "id"), *en = jstr_ne (e, "name");
  const char *vn = jstr_ne (vm, "name");

  if (json_is_integer (ei) && json_is_integer (vi))
    return json_integer_value (ei) == json_integer_value (vi);
  if (eid)
    return strcmp (eid, id) == 0;
  return en && vn && strcmp (en, vn) == 0;
}

int
Pallet_ec2_vm_name (const json_t *plan, const json_t *vm, const json_t *state, json_t *notes,
                    char **name, char **errmsg)
{
  struct ctx c = { .notes = notes, .errmsg = errmsg };
  const json_t *inst = json_object_get (state, "instance");
  const char *id = jstr_ne (inst, "instanceId");
  const char *want, *what;
  const json_t *vms = json_object_get (plan, "vms"), *other;
  const char **taken = NULL;
  size_t i, ntaken = 0;
  int changed = 0, r;

  *name = NULL;
  if (errmsg)
    *errmsg = NULL;
  if (id == NULL)
    id = jstr_ne (vm, "id");
  if (id == NULL)
    return fail (&c, PALLET_E_INVALID,
                 "state.instance.instanceId is "
                 "missing: record the EC2 instance id (i-...) in the VM "
                 "state before build_vm");

  /* The name validate chose (it saw every VM's Name tag) stays the name
   * on every later step and resume. */
  want = jstr_ne (state, "targetName");
  if (want && Pallet_ec2_is_dns1123_label (want)) {
    *name = strdup (want);
    return *name ? PALLET_OK : fail (&c, PALLET_E_NOMEM, "out of memory");
  }
  if ((want = jstr_ne (vm, "targetName")) != NULL)
    what = "targetName";
  else if ((want = instance_name (inst)) != NULL && has_alnum (want))
    what = "instance Name tag";
  else {
    want = id;
    what = "instance id";
  }

  /* The other VMs of the plan, as they would be named, so two VMs whose
   * names clean up to the same label both get a hash suffix. */
  taken = calloc (json_array_size (vms) + 1, sizeof *taken);
  const char **owner = calloc (json_array_size (vms) + 1, sizeof *owner);
  if (taken == NULL || owner == NULL) {
    free (taken);
    free (owner);
    return fail (&c, PALLET_E_NOMEM, "out of memory");
  }
  json_array_foreach (vms, i, other) {
    const char *oid = jstr (other, "id");
    const char *on = jstr_ne (other, "targetName");
    char *o = NULL;

    if (same_vm (other, vm, id))
      continue;
    /* sourceName: the other instance's Name tag, which validate looks up
     * for entries given by id. */
    if (on == NULL)
      on = jstr_ne (other, "sourceName");
    if (on == NULL)
      on = jstr_ne (other, "name");
    if (on == NULL || !has_alnum (on))
      continue;
    if (Pallet_ec2_dns1123_label (on, oid, NULL, 0, PALLET_EC2_DNS1123_LABEL_MAX, &o, NULL) == 0) {
      owner[ntaken] = oid ? oid : on;
      taken[ntaken++] = o;
    }
  }
  r = Pallet_ec2_dns1123_label (want, id, taken, ntaken, PALLET_EC2_DNS1123_LABEL_MAX, name,
                                &changed);
  /* Two VMs whose names clean up alike: both get their own id's suffix,
   * and each VM's advisory names the other. */
  char *plain = NULL;
  if (r == 0
      && Pallet_ec2_dns1123_label (want, id, NULL, 0, PALLET_EC2_DNS1123_LABEL_MAX, &plain, NULL)
             == 0)
    for (i = 0; i < ntaken; i++)
      if (!strcmp (taken[i], plain))
        note (&c,
              "VMs %s and %s would both be named \"%s\"; %s is named \"%s\" (a suffix from "
              "its instance id), so the two VirtualMachines and their PVCs stay apart",
              id, owner[i], plain, id, *name);
  free (plain);
  for (i = 0; i < ntaken; i++)
    free ((char *) taken[i]);
  free (taken);
  free (owner);
  if (r == -1)
    return fail (&c, PALLET_E_NOMEM, "out of memory making a VM name");
  if (changed)
    note (&c,
          "VM %s: %s \"%s\" is not a DNS-1123 label (or clashes with "
          "another VM of the plan); the target VM is named \"%s\"",
          id, what, want, *name);
  return c.oom ? PALLET_E_NOMEM : PALLET_OK;
}

/* ---- input checks ------------------------------------------------------ */

static int
get_int (const json_t *o, const char *key, json_int_t *out)
{
  const json_t *v = json_object_get (o, key);

  if (!json_is_integer (v))
    return -1;
  *out = json_integer_value (v);
  return 0;
}

static int
check_plan (struct ctx *c)
{
  const json_t *v;

  c->ns = jstr_ne (c->plan, "targetNamespace");
  if (c->ns == NULL || !Pallet_ec2_is_dns1123_label (c->ns))
    return fail (c, PALLET_E_INVALID,
                 "plan.targetNamespace %s%s%s: must "
                 "be a namespace name (DNS-1123 label); set the Plan's "
                 "spec.targetNamespace",
                 c->ns ? "\"" : "is missing", c->ns ? c->ns : "", c->ns ? "\" is not valid" : "");
  c->plan_name = jstr_ne (c->plan, "name");
  c->plan_uid = jstr_ne (c->plan, "uid");
  if (c->plan_name == NULL)
    return fail (c, PALLET_E_INVALID,
                 "plan.name is missing: the "
                 "normalized plan must carry the Plan's metadata.name");
  if (c->plan_uid == NULL || !Pallet_ec2_is_label_value (c->plan_uid))
    return fail (c, PALLET_E_INVALID,
                 "plan.uid %s: it becomes the "
                 "\"plan\" label; the normalized plan must carry the "
                 "Plan's metadata.uid",
                 c->plan_uid ? "is not a valid label value" : "is missing");
  c->mig_uid = jstr_ne (c->state, "migrationUID");
  if (c->mig_uid && c->opts.migration_uid && *c->opts.migration_uid
      && strcmp (c->mig_uid, c->opts.migration_uid) != 0)
    return fail (c, PALLET_E_CONFLICT,
                 "state.migrationUID \"%s\" is not "
                 "the current migration \"%s\": the state was left by "
                 "another migration; start this VM from an empty state",
                 c->mig_uid, c->opts.migration_uid);
  if (c->mig_uid == NULL && c->opts.migration_uid && *c->opts.migration_uid)
    c->mig_uid = c->opts.migration_uid;
  if (c->mig_uid == NULL || !Pallet_ec2_is_label_value (c->mig_uid))
    return fail (c, PALLET_E_INVALID,
                 "state.migrationUID %s: it becomes "
                 "the \"migration\" label; record the migration's uid in "
                 "the VM state (or pass options.migrationUID)",
                 c->mig_uid ? "is not a valid label value" : "is missing");
  c->spec = json_object_get (c->plan, "spec");
  if (c->spec != NULL && !json_is_object (c->spec))
    return fail (c, PALLET_E_INVALID, "plan.spec: expected an object");
  v = json_object_get (c->spec, "useCompatibilityMode");
  /* Like Forklift: compatibility devices only matter when no conversion
   * installs virtio drivers; absent means true, the CRD's default. */
  c->compat = !json_is_false (v)
              && (json_is_true (json_object_get (c->plan, "skipGuestConversion"))
                  || json_is_true (json_object_get (c->spec, "skipGuestConversion")));
  return PALLET_OK;
}

static int
check_instance (struct ctx *c)
{
  const char *vmid = jstr_ne (c->vm, "id");
  json_int_t n;

  c->inst = json_object_get (c->state, "instance");
  if (!json_is_object (c->inst))
    return fail (c, PALLET_E_INVALID,
                 "state.instance is missing: record "
                 "the instance facts (DescribeInstances, "
                 "DescribeInstanceTypes) in the VM state before build_vm");
  c->vm_id = jstr_ne (c->inst, "instanceId");
  if (c->vm_id == NULL || !Pallet_ec2_is_label_value (c->vm_id))
    return fail (c, PALLET_E_INVALID,
                 "state.instance.instanceId %s: "
                 "record the EC2 instance id (i-...)",
                 c->vm_id ? "is not a valid instance id" : "is missing");
  if (vmid && strcmp (vmid, c->vm_id) != 0)
    return fail (c, PALLET_E_INVALID,
                 "vm.id \"%s\" and "
                 "state.instance.instanceId \"%s\" differ: the state "
                 "belongs to another VM; pass this VM's own state",
                 vmid, c->vm_id);
  if (get_int (c->inst, "vcpus", &n) == -1 || n <= 0 || n > 4096
      || get_int (c->inst, "memoryMiB", &n) == -1 || n <= 0)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: instance type facts "
                 "for \"%s\" are missing or invalid: record "
                 "DescribeInstanceTypes' VCpuInfo.DefaultVCpus as "
                 "state.instance.vcpus and MemoryInfo.SizeInMiB as "
                 "state.instance.memoryMiB (positive integers)",
                 c->vm_id,
                 jstr_ne (c->inst, "instanceType") ? jstr (c->inst, "instanceType")
                                                   : "(unknown type)");
  return PALLET_OK;
}

/* ---- volumes ---------------------------------------------------------- */

static int
cmp_vol (const void *a, const void *b)
{
  const struct vol *x = a, *y = b;

  return x->index < y->index ? -1 : x->index > y->index;
}

static const json_t *
storage_dest_for (struct ctx *c, const char *type)
{
  const json_t *map = json_object_get (c->plan, "storageMap"), *e;
  size_t i;

  json_array_foreach (map, i, e) {
    const json_t *src = json_object_get (e, "source");
    const char *n = jstr (src, "name"), *id = jstr (src, "id");

    if ((n && strcmp (n, type) == 0) || (id && strcmp (id, type) == 0))
      return json_object_get (e, "destination");
  }
  return NULL;
}

static int
parse_volume (struct ctx *c, const json_t *j, size_t i, struct vol *v)
{
  const json_t *b;

  v->j = j;
  if (!json_is_object (j))
    return fail (c, PALLET_E_INVALID,
                 "state.volumes[%zu]: expected an "
                 "object",
                 i);
  v->src_id = jstr_ne (j, "sourceVolumeId");
  if (v->src_id == NULL || !Pallet_ec2_is_label_value (v->src_id))
    return fail (c, PALLET_E_INVALID,
                 "state.volumes[%zu].sourceVolumeId "
                 "%s: record the source EBS volume id (vol-...)",
                 i, v->src_id ? "is not a valid volume id" : "is missing");
  v->dev = jstr_ne (j, "deviceName");
  v->type = jstr_ne (j, "volumeType");
  if (v->type == NULL)
    return fail (c, PALLET_E_INVALID,
                 "volume %s: volumeType is missing: "
                 "record the EBS volume type (gp3, io2, ...)",
                 v->src_id);
  if (get_int (j, "sizeGiB", &v->size_gib) == -1 || v->size_gib <= 0)
    return fail (c, PALLET_E_INVALID,
                 "volume %s: sizeGiB is missing or "
                 "not a positive integer: record the EBS volume's Size",
                 v->src_id);
  if (get_int (j, "diskIndex", &v->index) == -1 || v->index < 0 || v->index > 9999)
    return fail (c, PALLET_E_INVALID,
                 "volume %s: diskIndex is missing or "
                 "not an integer in 0..9999: record its position in the "
                 "instance's block device mappings",
                 v->src_id);
  b = json_object_get (j, "boot");
  if (b != NULL && !json_is_boolean (b))
    return fail (c, PALLET_E_INVALID,
                 "volume %s: boot must be true or "
                 "false",
                 v->src_id);
  v->boot = json_is_true (b);
  v->target_id = jstr_ne (j, "targetVolumeId");
  v->target_az = jstr_ne (j, "targetAZ");
  if (c->opts.existing_pvcs) {
    /* The claim exists; its storage is not ours to name. */
    v->pvc_given = jstr_ne (j, "pvcName");
    if (v->pvc_given == NULL || !Pallet_ec2_is_dns1123_subdomain (v->pvc_given))
      return fail (c, PALLET_E_INVALID,
                   "volume %s: pvcName %s: a "
                   "conversion-only plan needs the existing PVC of each "
                   "disk; run validate, which finds them",
                   v->src_id, v->pvc_given ? "is not a valid PVC name" : "is missing");
    v->target_az = NULL;
    return PALLET_OK;
  }
  if (!c->opts.copy_mode) {
    if (v->target_id == NULL || !Pallet_ec2_is_label_value (v->target_id))
      return fail (c, PALLET_E_INVALID,
                   "volume %s: targetVolumeId %s: "
                   "the new EBS volume must be created (transfer) before "
                   "build_vm",
                   v->src_id, v->target_id ? "is not a valid volume id" : "is missing");
    if (v->target_az == NULL || !Pallet_ec2_is_label_value (v->target_az))
      return fail (c, PALLET_E_INVALID,
                   "volume %s: targetAZ %s: record "
                   "the availability zone of the new volume %s",
                   v->src_id, v->target_az ? "is not a valid zone name" : "is missing",
                   v->target_id);
  }
  const json_t *dest = storage_dest_for (c, v->type);
  const char *vmode = jstr_ne (dest, "volumeMode");
  v->storage_class = jstr_ne (dest, "storageClass");
  v->access_mode = jstr_ne (dest, "accessMode");
  if (v->access_mode && strcmp (v->access_mode, "ReadWriteOnce")
      && strcmp (v->access_mode, "ReadWriteMany") && strcmp (v->access_mode, "ReadOnlyMany"))
    return fail (c, PALLET_E_INVALID,
                 "StorageMap entry for volume type \"%s\": destination.accessMode \"%s\" is "
                 "not ReadWriteOnce, ReadWriteMany or ReadOnlyMany",
                 v->type, v->access_mode);
  /* The disks are written and attached as raw block devices: a
   * Filesystem PVC would be formatted under the guest's disk. */
  if (vmode && strcmp (vmode, "Block"))
    return fail (c, PALLET_E_INVALID,
                 "StorageMap entry for volume type \"%s\": destination.volumeMode \"%s\" is "
                 "not supported yet (pallet writes disks as Block devices); use Block",
                 v->type, vmode);
  if (v->storage_class == NULL)
    return fail (c, PALLET_E_INVALID,
                 "volume %s: EBS volume type \"%s\" "
                 "is not mapped to a storage class: add a StorageMap entry "
                 "with source.name \"%s\" and destination.storageClass",
                 v->src_id, v->type, v->type);
  if (!Pallet_ec2_is_dns1123_subdomain (v->storage_class))
    return fail (c, PALLET_E_INVALID,
                 "StorageMap entry for volume type "
                 "\"%s\": destination.storageClass \"%s\" is not a valid "
                 "storage class name (DNS-1123 subdomain)",
                 v->type, v->storage_class);
  return PALLET_OK;
}

/* PVC "<vm>-disk-<index>", the VM part shortened so the suffix survives. */
static char *
pvc_name (const char *vm_name, json_int_t index)
{
  char suffix[32], *s;
  size_t room, n = strlen (vm_name);

  snprintf (suffix, sizeof suffix, "-disk-%" JSON_INTEGER_FORMAT, index);
  room = PALLET_EC2_DNS1123_LABEL_MAX - strlen (suffix);
  if (n > room)
    n = room;
  while (n > 0 && vm_name[n - 1] == '-')
    n--;
  if (asprintf (&s, "%.*s%s", (int) n, vm_name, suffix) == -1)
    return NULL;
  return s;
}

/* Unique indices and ids, one zone for all; counts the boot volumes. */
static int
check_volume_set (struct ctx *c, size_t *nboot)
{
  const char *saz = jstr_ne (c->state, "targetAZ");
  size_t i, j;

  for (i = 0; i < c->nvols; i++) {
    struct vol *v = &c->vols[i];

    for (j = i + 1; j < c->nvols; j++) {
      if (v->index == c->vols[j].index)
        return fail (c, PALLET_E_INVALID,
                     "volumes %s and %s both have "
                     "diskIndex %" JSON_INTEGER_FORMAT ": disk indices "
                     "must be unique",
                     v->src_id, c->vols[j].src_id, v->index);
      if (strcmp (v->src_id, c->vols[j].src_id) == 0)
        return fail (c, PALLET_E_INVALID,
                     "volume %s is listed twice in "
                     "state.volumes",
                     v->src_id);
    }
    *nboot += v->boot;
    /* One zone for all: the VM's pod must be able to attach every disk. */
    if (v->target_az) {
      if (saz == NULL)
        saz = v->target_az;
      else if (strcmp (saz, v->target_az) != 0)
        return fail (c, PALLET_E_INVALID,
                     "volume %s is in zone %s but "
                     "the VM's other volumes are in %s: create all target "
                     "volumes in one availability zone",
                     v->src_id, v->target_az, saz);
    }
  }
  if (saz && !Pallet_ec2_is_label_value (saz))
    return fail (c, PALLET_E_INVALID,
                 "state.targetAZ \"%s\" is not a "
                 "valid availability zone name",
                 saz);
  c->target_az = saz;
  return PALLET_OK;
}

/* At most one boot volume; none marked: the root device's, else the first. */
static int
choose_boot (struct ctx *c, size_t nboot)
{
  const char *root = jstr_ne (c->inst, "rootDeviceName");
  size_t i;

  if (nboot > 1)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: %zu volumes are marked "
                 "boot: mark only the root volume",
                 c->vm_id, nboot);
  if (nboot == 0) {
    /* The root device, not the first mapping (upstream gap 8.2.10). */
    for (i = 0; root && i < c->nvols; i++)
      if (c->vols[i].dev && strcmp (c->vols[i].dev, root) == 0) {
        c->vols[i].boot = 1;
        break;
      }
    if (i == c->nvols || root == NULL) {
      c->vols[0].boot = 1;
      note (c,
            "VM %s: no volume is marked boot and none matches the root "
            "device %s; booting from disk index %" JSON_INTEGER_FORMAT " (%s)",
            c->vm_id, root ? root : "(unknown)", c->vols[0].index, c->vols[0].src_id);
    }
  }
  return PALLET_OK;
}

/* vm.KEY, else spec.KEY: a name template, or NULL. */
static const char *
template_of (struct ctx *c, const char *key)
{
  const char *t = jstr_ne (c->vm, key);
  return t ? t : jstr_ne (c->spec, key);
}

/* Expands template key (see template_of) into *out; vars is consumed.
 * The result must be a DNS-1123 label. */
static int
expand (struct ctx *c, const char *key, json_t *vars, const char *what, char **out)
{
  const char *t = template_of (c, key);
  char *err = NULL;
  int r;

  *out = NULL;
  if (!vars)
    return fail (c, PALLET_E_NOMEM, "out of memory");
  r = Pallet_ec2_template (t, vars, out, &err);
  json_decref (vars);
  if (r == -1) {
    r = fail (c, PALLET_E_INVALID, "VM %s: %s \"%s\": %s; fix the template", c->vm_id, key, t,
              err ? err : "out of memory");
    free (err);
    return r;
  }
  if (!Pallet_ec2_is_dns1123_label (*out)) {
    r = fail (c, PALLET_E_INVALID,
              "VM %s: %s \"%s\" gives \"%s\" for %s, not a DNS-1123 label (at most 63 of "
              "a-z, 0-9 and '-', alphanumeric at both ends); change the template",
              c->vm_id, key, t, *out, what);
    free (*out);
    *out = NULL;
    return r;
  }
  return PALLET_OK;
}

/* The variables Forklift gives pvcNameTemplate; EC2 has no value for the
 * other providers' ones, which are empty as upstream. */
static json_t *
pvc_vars (struct ctx *c, const struct vol *v)
{
  json_int_t root = 0;
  const char *src = instance_name (c->inst);
  for (size_t i = 0; i < c->nvols; i++)
    if (c->vols[i].boot)
      root = c->vols[i].index;
  return json_pack (
      "{s:s, s:s, s:s, s:I, s:s, s:I, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "VmName",
      src ? src : c->vm_id, "TargetVmName", c->vm_name, "PlanName", c->plan_name, "DiskIndex",
      v->index, "VmId", c->vm_id, "RootDiskIndex", root, "Shared", 0, "VolumeID", v->src_id,
      "SnapshotID", jstr_ne (v->j, "snapshotId") ? jstr (v->j, "snapshotId") : "", "WinDriveLetter",
      "", "FileName", "", "SourcePVCName", "", "SourcePVCNamespace", "", "DiskId", "");
}

/* PVC and volume names from the plan's templates, when it has them. */
static int
templated_volume_names (struct ctx *c, struct vol *v, size_t i)
{
  int r;
  if (!v->pvc_given && template_of (c, "pvcNameTemplate")) {
    free (v->pvc_name);
    if ((r = expand (c, "pvcNameTemplate", pvc_vars (c, v), "a PVC", &v->pvc_name)))
      return r;
    for (size_t j = 0; j < i; j++)
      if (!strcmp (c->vols[j].pvc_name, v->pvc_name))
        return fail (c, PALLET_E_INVALID,
                     "VM %s: pvcNameTemplate \"%s\" gives \"%s\" for disks %" JSON_INTEGER_FORMAT
                     " and %" JSON_INTEGER_FORMAT "; use {{.DiskIndex}} in it",
                     c->vm_id, template_of (c, "pvcNameTemplate"), v->pvc_name, c->vols[j].index,
                     v->index);
  }
  if (template_of (c, "volumeNameTemplate")) {
    free (v->disk_name);
    if ((r = expand (
             c, "volumeNameTemplate",
             json_pack ("{s:s, s:I}", "PVCName", v->pvc_name, "VolumeIndex", (json_int_t) i),
             "a volume", &v->disk_name)))
      return r;
    for (size_t j = 0; j < i; j++)
      if (!strcmp (c->vols[j].disk_name, v->disk_name))
        return fail (c, PALLET_E_INVALID,
                     "VM %s: volumeNameTemplate \"%s\" gives \"%s\" for two volumes; use "
                     "{{.VolumeIndex}} or {{.PVCName}} in it",
                     c->vm_id, template_of (c, "volumeNameTemplate"), v->disk_name);
  }
  return PALLET_OK;
}

/* Each volume's PVC, disk and (unless copying or given PVCs) PV names. */
static int
name_volumes (struct ctx *c)
{
  const json_t *ugn = json_object_get (c->spec, "pvcNameTemplateUseGenerateName");
  if (json_is_true (ugn))
    return fail (c, PALLET_E_INVALID,
                 "spec.pvcNameTemplateUseGenerateName: not supported yet: the PV, the VM and "
                 "the Pods name each PVC, so it needs an exact name; set it to false");
  for (size_t i = 0; i < c->nvols; i++) {
    struct vol *v = &c->vols[i];
    int r;

    v->pvc_name = v->pvc_given ? strdup (v->pvc_given) : pvc_name (c->vm_name, v->index);
    if (asprintf (&v->disk_name, "disk-%" JSON_INTEGER_FORMAT, v->index) == -1)
      v->disk_name = NULL;
    if (v->pvc_name == NULL || v->disk_name == NULL)
      return fail (c, PALLET_E_NOMEM, "out of memory");
    if ((r = templated_volume_names (c, v, i)))
      return r;
    if (!c->opts.copy_mode && !c->opts.existing_pvcs) {
      /* PVs are cluster-wide: the EBS volume id is unique, the PVC
       * name is not. */
      char *raw;
      if (asprintf (&raw, "pv-%s", v->target_id) == -1)
        raw = NULL;
      if (raw) {
        if (Pallet_ec2_dns1123_label (raw, NULL, NULL, 0, PALLET_EC2_DNS1123_LABEL_MAX, &v->pv_name,
                                      NULL)
            == -1)
          v->pv_name = NULL;
        free (raw);
      }
      if (v->pv_name == NULL)
        return fail (c, PALLET_E_NOMEM, "out of memory");
    }
    if (v->pvc_name == NULL || v->disk_name == NULL)
      return fail (c, PALLET_E_NOMEM, "out of memory");
  }
  return PALLET_OK;
}

static int
check_volumes (struct ctx *c)
{
  const json_t *arr = json_object_get (c->state, "volumes");
  size_t i, nboot = 0;
  int r;

  if (!json_is_array (arr) || json_array_size (arr) == 0)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: state.volumes is "
                 "missing or empty: the instance has no EBS volumes to "
                 "build a VM from; run transfer first",
                 c->vm_id);
  c->nvols = json_array_size (arr);
  c->vols = calloc (c->nvols, sizeof *c->vols);
  if (c->vols == NULL)
    return fail (c, PALLET_E_NOMEM, "out of memory");
  for (i = 0; i < c->nvols; i++)
    if ((r = parse_volume (c, json_array_get (arr, i), i, &c->vols[i])))
      return r;
  qsort (c->vols, c->nvols, sizeof *c->vols, cmp_vol);
  if ((r = check_volume_set (c, &nboot)) || (r = choose_boot (c, nboot)))
    return r;
  return name_volumes (c);
}

/* ---- NICs and networks ------------------------------------------------ */

static int
cmp_nic (const void *a, const void *b)
{
  const struct nic *x = a, *y = b;

  if (x->card != y->card)
    return x->card < y->card ? -1 : 1;
  return x->devidx < y->devidx ? -1 : x->devidx > y->devidx;
}

static int
is_mac (const char *s)
{
  size_t i;

  if (strlen (s) != 17)
    return 0;
  for (i = 0; i < 17; i++) {
    char ch = s[i];
    if (i % 3 == 2) {
      if (ch != ':')
        return 0;
    }
    else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
      return 0;
  }
  return 1;
}

static const json_t *
network_dest_for (struct ctx *c, const char *subnet)
{
  const json_t *map = json_object_get (c->plan, "networkMap"), *e;
  size_t i;

  json_array_foreach (map, i, e) {
    const json_t *src = json_object_get (e, "source");
    const char *n = jstr (src, "name"), *id = jstr (src, "id");

    if ((id && strcmp (id, subnet) == 0) || (n && strcmp (n, subnet) == 0))
      return json_object_get (e, "destination");
  }
  return NULL;
}

/* One recorded network interface: id, MAC, subnet, indices, its mapping. */
static int
parse_nic (struct ctx *c, const json_t *e, struct nic *n)
{
  n->eni = jstr_ne (e, "networkInterfaceId");
  if (n->eni == NULL)
    n->eni = "(no id)";
  n->mac = jstr_ne (e, "macAddress");
  n->subnet = jstr_ne (e, "subnetId");
  if (get_int (e, "deviceIndex", &n->devidx) == -1 || n->devidx < 0)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: network interface %s "
                 "has no deviceIndex: record Attachment.DeviceIndex",
                 c->vm_id, n->eni);
  if (json_object_get (e, "networkCardIndex") != NULL
      && (get_int (e, "networkCardIndex", &n->card) == -1 || n->card < 0))
    return fail (c, PALLET_E_INVALID,
                 "instance %s: network interface %s: "
                 "networkCardIndex must be a non-negative integer",
                 c->vm_id, n->eni);
  if (n->mac == NULL || !is_mac (n->mac))
    return fail (c, PALLET_E_INVALID,
                 "instance %s: network interface %s "
                 "has %s MAC address: record its MacAddress "
                 "(xx:xx:xx:xx:xx:xx)",
                 c->vm_id, n->eni, n->mac ? "an invalid" : "no");
  if (n->subnet == NULL)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: network interface %s "
                 "has no subnetId: record its SubnetId",
                 c->vm_id, n->eni);
  n->map_dest = network_dest_for (c, n->subnet);
  if (n->map_dest == NULL)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: subnet %s (network "
                 "interface %s) is not mapped: add a NetworkMap entry "
                 "with source.id \"%s\" and a pod, multus or ignored "
                 "destination",
                 c->vm_id, n->subnet, n->eni, n->subnet);
  return PALLET_OK;
}

/* The interface's NetworkMap destination: a known type, at most one pod
   network (counted in *NPOD), a valid NetworkAttachmentDefinition. */
static int
check_nic_dest (struct ctx *c, const struct nic *n, int *npod)
{
  const char *type = jstr (n->map_dest, "type");

  if (type == NULL
      || (strcmp (type, "pod") != 0 && strcmp (type, "multus") != 0
          && strcmp (type, "ignored") != 0))
    return fail (c, PALLET_E_INVALID,
                 "NetworkMap entry for subnet %s: "
                 "destination.type %s%s%s is not one of pod, multus, "
                 "ignored",
                 n->subnet, type ? "\"" : "(missing)", type ? type : "", type ? "\"" : "");
  if (strcmp (type, "pod") == 0 && ++*npod > 1)
    return fail (c, PALLET_E_INVALID,
                 "instance %s: more than one network "
                 "interface (subnets %s ...) maps to the pod network; a "
                 "VM has one pod network: map the other subnets to "
                 "multus or ignored",
                 c->vm_id, n->subnet);
  if (strcmp (type, "multus") == 0) {
    const char *nad = jstr_ne (n->map_dest, "name");
    const char *nadns = jstr_ne (n->map_dest, "namespace");

    if (nad == NULL || !Pallet_ec2_is_dns1123_subdomain (nad))
      return fail (c, PALLET_E_INVALID,
                   "NetworkMap entry for subnet %s: "
                   "a multus destination needs the "
                   "NetworkAttachmentDefinition name in destination.name "
                   "(%s)",
                   n->subnet, nad ? "not a valid name" : "missing");
    if (nadns && !Pallet_ec2_is_dns1123_label (nadns))
      return fail (c, PALLET_E_INVALID,
                   "NetworkMap entry for subnet %s: "
                   "destination.namespace \"%s\" is not a valid namespace "
                   "name",
                   n->subnet, nadns);
  }
  return PALLET_OK;
}

static int
check_nics (struct ctx *c)
{
  const json_t *arr = json_object_get (c->inst, "networkInterfaces"), *e;
  size_t i;
  int npod = 0, r;

  if (arr != NULL && !json_is_array (arr))
    return fail (c, PALLET_E_INVALID,
                 "state.instance.networkInterfaces: "
                 "expected an array");
  c->nnics = json_array_size (arr);
  if (c->nnics == 0)
    return PALLET_OK;
  c->nics = calloc (c->nnics, sizeof *c->nics);
  if (c->nics == NULL)
    return fail (c, PALLET_E_NOMEM, "out of memory");
  json_array_foreach (arr, i, e) {
    if ((r = parse_nic (c, e, &c->nics[i])))
      return r;
  }
  qsort (c->nics, c->nnics, sizeof *c->nics, cmp_nic);
  for (i = 0; i < c->nnics; i++) {
    struct nic *n = &c->nics[i];

    if (i > 0 && cmp_nic (n, n - 1) == 0)
      return fail (c, PALLET_E_INVALID,
                   "instance %s: network interfaces "
                   "%s and %s have the same device index %" JSON_INTEGER_FORMAT,
                   c->vm_id, n[-1].eni, n->eni, n->devidx);
    if ((r = check_nic_dest (c, n, &npod)))
      return r;
    const char *type = jstr (n->map_dest, "type");
    if (template_of (c, "networkNameTemplate") && strcmp (type, "ignored")) {
      int multus = !strcmp (type, "multus");
      const char *nadns = jstr_ne (n->map_dest, "namespace");
      if ((r = expand (c, "networkNameTemplate",
                       json_pack ("{s:s, s:s, s:s, s:I}", "NetworkName",
                                  multus ? jstr (n->map_dest, "name") : "", "NetworkNamespace",
                                  multus ? (nadns ? nadns : c->ns) : "", "NetworkType",
                                  multus ? "Multus" : "Pod", "NetworkIndex", (json_int_t) i),
                       "a network", &n->name)))
        return r;
      for (size_t j = 0; j < i; j++)
        if (c->nics[j].name && !strcmp (c->nics[j].name, n->name))
          return fail (c, PALLET_E_INVALID,
                       "VM %s: networkNameTemplate \"%s\" gives \"%s\" for two interfaces; "
                       "use {{.NetworkIndex}} in it",
                       c->vm_id, template_of (c, "networkNameTemplate"), n->name);
    }
    else if (asprintf (&n->name, "net-%zu", i) == -1) {
      n->name = NULL;
      return fail (c, PALLET_E_NOMEM, "out of memory");
    }
  }
  return PALLET_OK;
}

/* ---- firmware and power ----------------------------------------------- */

static int
contains_str (const json_t *arr, const char *s)
{
  size_t i;
  const json_t *e;

  json_array_foreach (arr, i, e)
    if (json_string_value (e) && strcmp (json_string_value (e), s) == 0)
      return 1;
  return 0;
}

/* Sets *uefi.  Inspection of the converted disk wins; then the mode the
 * instance actually booted with; then the AMI's boot mode, where
 * uefi-preferred means UEFI only if the instance type supports it (upstream
 * gap 8.2.10 took it as UEFI always). */
static int
firmware (struct ctx *c, int *uefi)
{
  const json_t *insp = json_object_get (c->state, "inspection");
  const char *fw = jstr_ne (insp, "firmware");
  const char *cur = jstr_ne (c->inst, "currentBootMode");
  const char *bm = jstr_ne (c->inst, "bootMode");
  const json_t *sup = json_object_get (c->inst, "supportedBootModes");

  if (fw) {
    if (strcmp (fw, "uefi") != 0 && strcmp (fw, "bios") != 0)
      return fail (c, PALLET_E_INVALID,
                   "state.inspection.firmware \"%s\" "
                   "is not \"bios\" or \"uefi\"",
                   fw);
    *uefi = strcmp (fw, "uefi") == 0;
  }
  else if (cur && (strcmp (cur, "uefi") == 0 || strcmp (cur, "legacy-bios") == 0))
    *uefi = strcmp (cur, "uefi") == 0;
  else if (bm == NULL || strcmp (bm, "legacy-bios") == 0)
    *uefi = 0;
  else if (strcmp (bm, "uefi") == 0)
    *uefi = 1;
  else if (strcmp (bm, "uefi-preferred") == 0) {
    if (json_is_array (sup))
      *uefi = contains_str (sup, "uefi");
    else {
      *uefi = 0;
      note (c,
            "VM %s: boot mode uefi-preferred and the instance type's "
            "supported boot modes are unknown; using BIOS (record "
            "currentBootMode or supportedBootModes to decide)",
            c->vm_id);
    }
  }
  else
    return fail (c, PALLET_E_INVALID,
                 "instance %s: bootMode \"%s\" is not "
                 "uefi, legacy-bios or uefi-preferred",
                 c->vm_id, bm);
  if (fw && bm && cur == NULL
      && ((strcmp (bm, "uefi") == 0 && !*uefi) || (strcmp (bm, "legacy-bios") == 0 && *uefi)))
    note (c,
          "VM %s: inspection found %s firmware although the instance "
          "boot mode is %s; using %s",
          c->vm_id, fw, bm, fw);
  if (c->opts.secure_boot && !*uefi)
    return fail (c, PALLET_E_INVALID,
                 "VM %s: Secure Boot was asked for "
                 "but the guest boots with BIOS; drop the secureBoot "
                 "option",
                 c->vm_id);
  return PALLET_OK;
}

static int
run_strategy (struct ctx *c, const char **out)
{
  /* This VM's own setting wins over the plan's. */
  const json_t *tps = json_object_get (c->vm, "targetPowerState");
  const char *t, *p;
  char where[64] = "plan.targetPowerState";

  if (tps != NULL && !json_is_null (tps)) {
    const json_t *ix = json_object_get (c->vm, "index");
    if (json_is_integer (ix))
      snprintf (where, sizeof where, "plan.spec.vms[%" JSON_INTEGER_FORMAT "].targetPowerState",
                json_integer_value (ix));
    else
      snprintf (where, sizeof where, "the targetPowerState of VM %s", c->vm_id);
  }
  if (tps == NULL || json_is_null (tps))
    tps = json_object_get (c->plan, "targetPowerState");
  if (tps == NULL || json_is_null (tps))
    tps = json_object_get (c->spec, "targetPowerState");
  t = json_string_value (tps);
  if (tps != NULL && !json_is_null (tps)
      && (t == NULL
          || (strcmp (t, "on") != 0 && strcmp (t, "off") != 0 && strcmp (t, "auto") != 0
              && *t != '\0')))
    return fail (c, PALLET_E_INVALID, "%s %s%s%s is not on, off or auto; set one of them", where,
                 t ? "\"" : "", t ? t : "(not a string)", t ? "\"" : "");
  if (t && strcmp (t, "on") == 0) {
    *out = "Always";
    return PALLET_OK;
  }
  if (t && strcmp (t, "off") == 0) {
    *out = "Halted";
    return PALLET_OK;
  }
  /* auto or unset: as the source was before it was stopped. */
  p = jstr_ne (c->state, "powerState");
  if (p && (strcasecmp (p, "on") == 0 || strcasecmp (p, "running") == 0))
    *out = "Always";
  else {
    *out = "Halted";
    if (p == NULL || (strcasecmp (p, "off") != 0 && strcasecmp (p, "stopped") != 0))
      note (c,
            "VM %s: the source power state was not recorded (%s); the "
            "target VM is left Halted",
            c->vm_id, p ? p : "missing");
  }
  return PALLET_OK;
}

/* ---- labels ----------------------------------------------------------- */

/* vmID, plan, migration: the keys Forklift's ensurer looks VMs, PVs and
 * PVCs up by. */
static json_t *
base_labels (struct ctx *c)
{
  json_t *l = json_object ();

  set_str (c, l, "migration", c->mig_uid);
  set_str (c, l, "plan", c->plan_uid);
  set_str (c, l, "vmID", c->vm_id);
  return l;
}

/* Copies a string map from the plan spec into dst; keys already there
 * (the migration's own) win.  check_spec has checked the types. */
static void
merge_string_map (struct ctx *c, json_t *dst, const char *key, int quiet)
{
  const json_t *m = json_object_get (c->spec, key), *v;
  const char *k;

  if (!json_is_object (m))
    return;
  json_object_foreach ((json_t *) m, k, v) {
    const char *have = jstr (dst, k);

    if (!json_is_string (v))
      continue;
    if (have == NULL)
      set (c, dst, k, json_copy ((json_t *) v));
    else if (!quiet && strcmp (have, json_string_value (v)) != 0)
      note (c,
            "VM %s: plan.spec.%s.%s is set by the migration and was "
            "not overridden",
            c->vm_id, key, k);
  }
}

/* ---- PV and PVC --------------------------------------------------------- */

/* The StorageMap's destination.accessMode, else ReadWriteOnce. */
static json_t *
access_modes (const struct vol *v)
{
  json_t *a = json_array ();

  json_array_append_new (a, json_string (v->access_mode ? v->access_mode : "ReadWriteOnce"));
  return a;
}

static json_t *
zone_term (const char *key, const char *az)
{
  return json_pack ("{s:[{s:s, s:s, s:[s]}]}", "matchExpressions", "key", key, "operator", "In",
                    "values", az);
}

static json_t *
build_pv (struct ctx *c, const struct vol *v)
{
  json_t *pv = json_object (), *md = json_object (), *spec = json_object ();
  json_t *labels = base_labels (c), *ann = json_object (), *terms;

  set_str (c, pv, "apiVersion", "v1");
  set_str (c, pv, "kind", "PersistentVolume");
  set_str (c, md, "name", v->pv_name);
  set_str (c, labels, FK "ebs-volume-id", v->target_id);
  set (c, md, "labels", labels);
  set_str (c, ann, FK "ebs-volume-id", v->target_id);
  set_str (c, ann, FK "original-volume-id", v->src_id);
  set (c, md, "annotations", ann);
  set (c, pv, "metadata", md);

  set (c, spec, "capacity", json_pack ("{s:o}", "storage", gib (v->size_gib)));
  set (c, spec, "accessModes", access_modes (v));
  set_str (c, spec, "volumeMode", "Block");
  /* Retain: the EBS volume is the migrated disk itself, the only copy of
   * the guest's data once the source is gone.  Deleting the PVC (a
   * cleanup, a retry, a mistake) must not delete it; pallet's cleanup
   * removes volumes explicitly and only on rollback. */
  set_str (c, spec, "persistentVolumeReclaimPolicy", "Retain");
  set_str (c, spec, "storageClassName", v->storage_class);
  /* Block mode: no fsType, the guest owns the partition table. */
  set (c, spec, "csi",
       json_pack ("{s:s, s:s}", "driver", EBS_CSI_DRIVER, "volumeHandle", v->target_id));
  /* Pin to the volume's zone even when the plan skips the VM's zone
   * selector (upstream gap 8.2.11).  Two terms (OR): nodes labelled by
   * Kubernetes or only by older EBS CSI drivers. */
  terms = json_array ();
  push (c, terms, zone_term (ZONE_KEY, v->target_az));
  push (c, terms, zone_term (EBS_ZONE_KEY, v->target_az));
  set (c, spec, "nodeAffinity", json_pack ("{s:{s:o}}", "required", "nodeSelectorTerms", terms));
  /* Pre-bound to its claim so no other PVC can take the disk. */
  set (c, spec, "claimRef",
       json_pack ("{s:s, s:s, s:s, s:s}", "apiVersion", "v1", "kind", "PersistentVolumeClaim",
                  "namespace", c->ns, "name", v->pvc_name));
  set (c, pv, "spec", spec);
  return pv;
}

static json_t *
build_pvc (struct ctx *c, const struct vol *v)
{
  json_t *pvc = json_object (), *md = json_object (), *spec = json_object ();
  json_t *labels = base_labels (c), *ann = json_object ();
  char idx[32];

  set_str (c, pvc, "apiVersion", "v1");
  set_str (c, pvc, "kind", "PersistentVolumeClaim");
  set_str (c, md, "name", v->pvc_name);
  set_str (c, md, "namespace", c->ns);
  set_str (c, labels, FK "volume-id", v->src_id);
  set (c, md, "labels", labels);
  /* disk-source: Forklift's generic code (conversion pod disks) finds
   * the PVCs by it (upstream MTV-5493). */
  set_str (c, ann, FK "disk-source", v->src_id);
  set_str (c, ann, FK "original-volume-id", v->src_id);
  if (!c->opts.copy_mode)
    set_str (c, ann, FK "ebs-volume-id", v->target_id);
  snprintf (idx, sizeof idx, "%" JSON_INTEGER_FORMAT, v->index);
  set_str (c, ann, FK "disk-index", idx);
  set (c, md, "annotations", ann);
  set (c, pvc, "metadata", md);

  set (c, spec, "accessModes", access_modes (v));
  set_str (c, spec, "volumeMode", "Block");
  set_str (c, spec, "storageClassName", v->storage_class);
  set (c, spec, "resources", json_pack ("{s:{s:o}}", "requests", "storage", gib (v->size_gib)));
  if (!c->opts.copy_mode)
    set_str (c, spec, "volumeName", v->pv_name);
  set (c, pvc, "spec", spec);
  return pvc;
}

/* ---- VirtualMachine ---------------------------------------------------- */

static json_t *
build_devices_and_networks (struct ctx *c, json_t *tspec)
{
  json_t *dev = json_object (), *disks = json_array (), *ifs = json_array ();
  json_t *nets = json_array (), *vols = json_array ();
  const char *bus = c->compat ? "sata" : "virtio";
  const char *model = c->compat ? "e1000e" : "virtio";
  size_t i;

  for (i = 0; i < c->nvols; i++) {
    const struct vol *v = &c->vols[i];
    json_t *d = json_object ();

    set_str (c, d, "name", v->disk_name);
    set (c, d, "disk", json_pack ("{s:s}", "bus", bus));
    /* The guest sees the source volume id as the disk serial. */
    set_str (c, d, "serial", v->src_id);
    if (v->boot)
      set (c, d, "bootOrder", json_integer (1));
    push (c, disks, d);
    push (c, vols,
          json_pack ("{s:s, s:{s:s}}", "name", v->disk_name, "persistentVolumeClaim", "claimName",
                     v->pvc_name));
  }

  for (i = 0; i < c->nnics; i++) {
    const struct nic *n = &c->nics[i];
    const char *type = jstr (n->map_dest, "type");
    json_t *itf, *net;
    char mac[18];
    size_t k;

    if (strcmp (type, "ignored") == 0)
      continue;
    for (k = 0; k < 17; k++)
      mac[k] = (n->mac[k] >= 'A' && n->mac[k] <= 'F') ? n->mac[k] - 'A' + 'a' : n->mac[k];
    mac[17] = '\0';
    itf = json_pack ("{s:s, s:s, s:s}", "name", n->name, "model", model, "macAddress", mac);
    net = json_pack ("{s:s}", "name", n->name);
    if (strcmp (type, "pod") == 0) {
      if (c->opts.pod_l2bridge)
        set (c, itf, "binding", json_pack ("{s:s}", "name", "l2bridge"));
      else
        set (c, itf, "masquerade", json_object ());
      set (c, net, "pod", json_object ());
    }
    else {
      const char *nadns = jstr_ne (n->map_dest, "namespace");
      char *nn;

      if (asprintf (&nn, "%s/%s", nadns ? nadns : c->ns, jstr (n->map_dest, "name")) == -1) {
        c->oom = 1;
        nn = NULL;
      }
      set (c, itf, "bridge", json_object ());
      set (c, net, "multus", json_pack ("{s:s?}", "networkName", nn));
      free (nn);
    }
    push (c, ifs, itf);
    push (c, nets, net);
  }
  if (c->nnics == 0) {
    /* No ENI recorded: give the guest the pod network, like Forklift. */
    json_t *itf = json_pack ("{s:s, s:s}", "name", "default", "model", model);
    if (c->opts.pod_l2bridge)
      set (c, itf, "binding", json_pack ("{s:s}", "name", "l2bridge"));
    else
      set (c, itf, "masquerade", json_object ());
    push (c, ifs, itf);
    push (c, nets, json_pack ("{s:s, s:{}}", "name", "default", "pod"));
    note (c, "VM %s: no network interfaces recorded; using the pod network", c->vm_id);
  }
  if (json_array_size (nets) == 0)
    note (c,
          "VM %s: every network interface is ignored; the VM has no "
          "network",
          c->vm_id);

  set (c, dev, "disks", disks);
  set (c, dev, "interfaces", ifs);
  set (c, dev, "inputs",
       json_pack ("[{s:s, s:s, s:s}]", "name", "tablet", "type", "tablet", "bus",
                  c->compat ? "usb" : "virtio"));
  set (c, tspec, "networks", nets);
  set (c, tspec, "volumes", vols);
  return dev;
}

/* Checks the plan's target* fields before anything is built, so building
 * cannot fail half way. */
static int
check_spec (struct ctx *c)
{
  static const char *const maps[] = { "targetLabels", "targetNodeSelector" };
  const json_t *m, *v, *aff;
  const char *k, *have;
  size_t i;

  for (i = 0; i < sizeof maps / sizeof maps[0]; i++) {
    m = json_object_get (c->spec, maps[i]);
    if (m == NULL || json_is_null (m))
      continue;
    if (!json_is_object (m))
      return fail (c, PALLET_E_INVALID,
                   "plan.spec.%s: expected an object "
                   "of strings",
                   maps[i]);
    json_object_foreach ((json_t *) m, k, v) {
      if (!json_is_string (v))
        return fail (c, PALLET_E_INVALID,
                     "plan.spec.%s.%s: expected a "
                     "string value",
                     maps[i], k);
      if (!Pallet_ec2_is_label_key (k))
        return fail (c, PALLET_E_INVALID,
                     "plan.spec.%s: \"%s\" is not a "
                     "valid label key ([prefix/]name, name up to 63 "
                     "characters of [A-Za-z0-9._-])",
                     maps[i], k);
      if (!Pallet_ec2_is_label_value (json_string_value (v)))
        return fail (c, PALLET_E_INVALID,
                     "plan.spec.%s.%s: \"%s\" is not "
                     "a valid label value (up to 63 characters of "
                     "[A-Za-z0-9._-])",
                     maps[i], k, json_string_value (v));
    }
  }
  have = jstr (json_object_get (c->spec, "targetNodeSelector"), ZONE_KEY);
  if (have && c->target_az && strcmp (have, c->target_az) != 0)
    return fail (c, PALLET_E_INVALID,
                 "plan.spec.targetNodeSelector puts "
                 "VM %s in zone %s but its volumes are in %s: an EBS volume "
                 "attaches only in its own zone; drop the zone from "
                 "targetNodeSelector",
                 c->vm_id, have, c->target_az);
  aff = json_object_get (c->spec, "targetAffinity");
  if (aff && !json_is_null (aff) && !json_is_object (aff))
    return fail (c, PALLET_E_INVALID,
                 "plan.spec.targetAffinity: expected "
                 "an object (a core/v1 Affinity)");
  /* Copied as written; check its outline so a typo fails here rather
   * than at the API server.  The API server checks the rest. */
  json_object_foreach ((json_t *) aff, k, v)
    if ((strcmp (k, "nodeAffinity") != 0 && strcmp (k, "podAffinity") != 0
         && strcmp (k, "podAntiAffinity") != 0)
        || !json_is_object (v))
      return fail (c, PALLET_E_INVALID,
                   "plan.spec.targetAffinity.%s: "
                   "expected one of nodeAffinity, podAffinity, "
                   "podAntiAffinity, each an object",
                   k);
  /* The Pods' fields too, so a bad one fails before any manifest. */
  char *perr = NULL;
  int r = Pallet_ec2_pod_fields_check (
      c->plan,
      json_is_true (json_object_get (c->spec, "skipZoneNodeSelector")) ? NULL : c->target_az,
      &perr);
  if (r != PALLET_OK) {
    fail (c, r, "%s", perr ? perr : "out of memory");
    free (perr);
  }
  return r;
}

static void
node_selector (struct ctx *c, json_t *tspec)
{
  json_t *ns = json_object ();

  if (c->target_az && !json_is_true (json_object_get (c->spec, "skipZoneNodeSelector")))
    set_str (c, ns, ZONE_KEY, c->target_az);
  merge_string_map (c, ns, "targetNodeSelector", 0);
  if (json_object_size (ns) > 0)
    set (c, tspec, "nodeSelector", ns);
  else
    json_decref (ns);
}

static json_t *
build_vm (struct ctx *c, const char *strategy, int uefi)
{
  json_t *vm = json_object (), *md = json_object (), *spec = json_object ();
  json_t *tmpl = json_object (), *tmd = json_object (), *tspec = json_object ();
  json_t *dom = json_object (), *fw = json_object (), *feat = json_object ();
  json_t *labels = base_labels (c), *tlabels = base_labels (c);
  json_t *ann = json_object (), *aff;
  const char *orig = instance_name (c->inst);
  const char *os = jstr_ne (json_object_get (c->state, "inspection"), "os");
  const char *itype = jstr_ne (c->inst, "instanceType");
  json_int_t vcpus = json_integer_value (json_object_get (c->inst, "vcpus"));
  json_int_t mib = json_integer_value (json_object_get (c->inst, "memoryMiB"));
  char mem[32];

  set_str (c, vm, "apiVersion", "kubevirt.io/v1");
  set_str (c, vm, "kind", "VirtualMachine");
  set_str (c, md, "name", c->vm_name);
  set_str (c, md, "namespace", c->ns);
  set_str (c, tlabels, "app", c->vm_name);
  set_str (c, tlabels, "guestConverted",
           json_object_get (c->state, "inspection") ? "true" : "false");
  /* Kept, unlike upstream (gap 8.2.6). */
  merge_string_map (c, labels, "targetLabels", 0);
  merge_string_map (c, tlabels, "targetLabels", 1);
  set (c, md, "labels", labels);
  set_str (c, ann, FK "plan-name", c->plan_name);
  set_str (c, ann, FK "source-instance-id", c->vm_id);
  if (itype)
    set_str (c, ann, FK "instance-type", itype);
  if (orig) {
    /* Annotation values are free text: the raw Name tag is safe here. */
    set_str (c, ann, FK "source-vm-name", orig);
    if (strcmp (orig, c->vm_name) != 0)
      set_str (c, ann, "openshift.io/display-name", orig);
  }
  if (os)
    set_str (c, ann, "vm.kubevirt.io/os", os);
  set (c, md, "annotations", ann);
  set (c, vm, "metadata", md);

  set_str (c, spec, "runStrategy", strategy);
  set (c, tmd, "labels", tlabels);
  set (c, tmpl, "metadata", tmd);

  /* Topology from DescribeInstanceTypes, never from the size suffix
   * (upstream gap 8.2.8). */
  set (c, dom, "cpu",
       json_pack ("{s:I, s:I, s:I}", "sockets", (json_int_t) 1, "cores", vcpus, "threads",
                  (json_int_t) 1));
  snprintf (mem, sizeof mem, "%" JSON_INTEGER_FORMAT "Mi", mib);
  set (c, dom, "memory", json_pack ("{s:s}", "guest", mem));
  set (c, dom, "resources", json_pack ("{s:{s:s}}", "requests", "memory", mem));
  set_str (c, fw, "serial", c->vm_id);
  if (uefi)
    set (c, fw, "bootloader", json_pack ("{s:{s:b}}", "efi", "secureBoot", c->opts.secure_boot));
  else
    set (c, fw, "bootloader", json_pack ("{s:{}}", "bios"));
  set (c, dom, "firmware", fw);
  set (c, feat, "acpi", json_object ());
  /* KubeVirt requires SMM for Secure Boot. */
  if (uefi && c->opts.secure_boot)
    set (c, feat, "smm", json_pack ("{s:b}", "enabled", 1));
  set (c, dom, "features", feat);
  set (c, dom, "devices", build_devices_and_networks (c, tspec));
  set (c, tspec, "domain", dom);

  node_selector (c, tspec);
  aff = json_object_get (c->spec, "targetAffinity");
  if (json_is_object (aff))
    set (c, tspec, "affinity", json_deep_copy (aff));
  set (c, tmpl, "spec", tspec);
  set (c, spec, "template", tmpl);
  set (c, vm, "spec", spec);
  return vm;
}

/* ---- entry point ------------------------------------------------------ */

static void
ctx_free (struct ctx *c)
{
  size_t i;

  for (i = 0; c->vols && i < c->nvols; i++) {
    free (c->vols[i].pvc_name);
    free (c->vols[i].pv_name);
    free (c->vols[i].disk_name);
  }
  free (c->vols);
  for (i = 0; c->nics && i < c->nnics; i++)
    free (c->nics[i].name);
  free (c->nics);
  free (c->vm_name);
}

static int
build_all (struct ctx *c, json_t *out)
{
  const char *strategy = NULL;
  size_t i;
  int r, uefi = 0;

  if ((r = check_plan (c)) || (r = check_instance (c)))
    return r;
  if ((r = Pallet_ec2_vm_name (c->plan, c->vm, c->state, c->notes, &c->vm_name, c->errmsg)))
    return r;
  if ((r = check_volumes (c)) || (r = check_nics (c)) || (r = check_spec (c))
      || (r = firmware (c, &uefi)) || (r = run_strategy (c, &strategy)))
    return r;

  for (i = 0; !c->opts.copy_mode && !c->opts.existing_pvcs && i < c->nvols; i++)
    push (c, out, build_pv (c, &c->vols[i]));
  for (i = 0; !c->opts.existing_pvcs && i < c->nvols; i++)
    push (c, out, build_pvc (c, &c->vols[i]));
  push (c, out, build_vm (c, strategy, uefi));
  return PALLET_OK;
}

int
Pallet_ec2_build_manifests (const json_t *plan, const json_t *vm, const json_t *state,
                            const struct Pallet_ec2_manifest_opts *opts, json_t **manifests,
                            json_t **notes, char **errmsg)
{
  struct ctx c = { .plan = plan, .vm = vm, .state = state, .errmsg = errmsg };
  json_t *out;
  int r;

  if (errmsg)
    *errmsg = NULL;
  if (manifests == NULL)
    return PALLET_E_INVALID;
  *manifests = NULL;
  if (notes)
    *notes = NULL;
  if (opts)
    c.opts = *opts;
  if (!json_is_object (plan) || !json_is_object (vm) || !json_is_object (state))
    return fail (&c, PALLET_E_INVALID,
                 "build_vm input: plan, vm and state "
                 "must all be JSON objects");
  out = json_array ();
  c.notes = json_array ();
  if (out == NULL || c.notes == NULL) {
    json_decref (out);
    json_decref (c.notes);
    return fail (&c, PALLET_E_NOMEM, "out of memory");
  }
  r = build_all (&c, out);
  if (r == PALLET_OK && c.oom)
    r = fail (&c, PALLET_E_NOMEM, "out of memory building the manifests");
  ctx_free (&c);
  if (r != PALLET_OK) {
    json_decref (out);
    json_decref (c.notes);
    return r;
  }
  *manifests = out;
  if (notes)
    *notes = c.notes;
  else
    json_decref (c.notes);
  return PALLET_OK;
}

/* ---- conversion-only plans: existing PVCs ----------------------------- */

static const char *
label_of (const json_t *pvc, const char *key)
{
  return jstr (json_object_get (json_object_get (pvc, "metadata"), "labels"), key);
}

static const char *
ann_of (const json_t *pvc, const char *key)
{
  return jstr_ne (json_object_get (json_object_get (pvc, "metadata"), "annotations"), key);
}

/* "a, b, c" of the names in arr (strings), for messages. */
static char *
name_list (const json_t *arr)
{
  size_t i, n = 1;
  const json_t *v;
  char *s;

  json_array_foreach (arr, i, v)
    n += strlen (json_string_value (v)) + 2;
  if ((s = malloc (n + 8)) == NULL)
    return NULL;
  *s = '\0';
  json_array_foreach (arr, i, v) {
    if (i)
      strcat (s, ", ");
    strcat (s, json_string_value (v));
  }
  if (json_array_size (arr) == 0)
    strcpy (s, "none");
  return s;
}

/* This VM's disk claims, each once: their names into NAMES, the claims
   into PICK. */
static void
vm_disk_pvcs (const json_t *pvcs, const char *vm_id, const char *ns, json_t *names, json_t *pick)
{
  const json_t *p, *v;
  size_t i, j;
  json_array_foreach (pvcs, i, p) {
    const char *name = jstr_ne (json_object_get (p, "metadata"), "name");
    const char *pns = jstr_ne (json_object_get (p, "metadata"), "namespace");
    const char *a = label_of (p, "vmID"), *b = label_of (p, "vmUUID");
    int dup = 0;

    if (name == NULL || ann_of (p, FK "disk-source") == NULL || (ns && pns && strcmp (ns, pns) != 0)
        || !((a && strcmp (a, vm_id) == 0) || (b && strcmp (b, vm_id) == 0)))
      continue;
    json_array_foreach (names, j, v)
      dup |= strcmp (json_string_value (v), name) == 0;
    if (dup)
      continue;
    json_array_append_new (names, json_string (name));
    json_array_append (pick, (json_t *) p);
  }
}

/* The volume a claim holds: by its disk-source, else by its disk-index. */
static json_t *
claim_volume (json_t *volumes, const char *src, const char *idx)
{
  const json_t *v;
  json_t *vol = NULL;
  char *end = NULL;
  size_t j;

  json_array_foreach (volumes, j, v)
    if (jstr (v, "sourceVolumeId") && strcmp (jstr (v, "sourceVolumeId"), src) == 0)
      vol = (json_t *) v;
  if (vol == NULL && idx) {
    long n = strtol (idx, &end, 10);
    json_array_foreach (volumes, j, v)
      if (end && *end == '\0' && end != idx
          && json_integer_value (json_object_get (v, "diskIndex")) == n)
        vol = (json_t *) v;
  }
  return vol;
}

/* Sets each volume's pvcName, pvcVolumeMode and pvcStorageClass from the
   claim that holds it. */
static int
bind_claims (struct ctx *c, const json_t *pick, const json_t *names, json_t *volumes,
             const char *vm_id, const char *ns, const char **code)
{
  size_t i, nvol = json_array_size (volumes);
  const json_t *p, *v;

  json_array_foreach (volumes, i, v)
    json_object_del ((json_t *) v, "pvcName");
  json_array_foreach (pick, i, p) {
    const char *name = json_string_value (json_array_get (names, i));
    const char *src = ann_of (p, FK "disk-source");
    const char *idx = ann_of (p, FK "disk-index");
    const json_t *spec = json_object_get (p, "spec");
    json_t *vol = claim_volume (volumes, src, idx);

    if (vol == NULL) {
      *code = "ConversionPVCUnmatched";
      return fail (c, PALLET_E_INVALID,
                   "PVC %s/%s: its disk-source \"%s\" is "
                   "not a volume of instance %s%s%s%s and no disk-index "
                   "annotation names one of its disks 0..%zu; set "
                   "forklift.konveyor.io/disk-source to the EBS volume id "
                   "the PVC holds",
                   ns ? ns : "", name, src, vm_id, idx ? " (disk-index \"" : "", idx ? idx : "",
                   idx ? "\")" : "", nvol ? nvol - 1 : 0);
    }
    if (jstr (vol, "pvcName")) {
      *code = "ConversionPVCDuplicate";
      return fail (c, PALLET_E_INVALID,
                   "PVCs %s and %s both hold disk %" JSON_INTEGER_FORMAT
                   " (volume %s) of instance %s; keep one PVC "
                   "per disk (fix their disk-source annotations)",
                   jstr (vol, "pvcName"), name,
                   json_integer_value (json_object_get (vol, "diskIndex")),
                   jstr (vol, "sourceVolumeId"), vm_id);
    }
    json_object_set_new (vol, "pvcName", json_string (name));
    json_object_set_new (
        vol, "pvcVolumeMode",
        json_string (jstr_ne (spec, "volumeMode") ? jstr (spec, "volumeMode") : "Filesystem"));
    if (jstr_ne (spec, "storageClassName"))
      json_object_set_new (vol, "pvcStorageClass", json_string (jstr (spec, "storageClassName")));
  }
  return PALLET_OK;
}

int
Pallet_ec2_conversion_pvcs (const json_t *pvcs, const char *vm_id, const char *ns, json_t *volumes,
                            const char **code, char **errmsg)
{
  struct ctx c = { .errmsg = errmsg };
  json_t *names = json_array (), *want = json_array (), *pick = json_array ();
  const json_t *v;
  size_t i, nvol = json_array_size (volumes);
  int r = PALLET_OK;

  *code = NULL;
  if (errmsg)
    *errmsg = NULL;
  if (names == NULL || want == NULL || pick == NULL) {
    r = fail (&c, PALLET_E_NOMEM, "out of memory");
    goto out;
  }
  json_array_foreach (volumes, i, v)
    json_array_append_new (
        want, json_string (jstr (v, "sourceVolumeId") ? jstr (v, "sourceVolumeId") : "?"));
  vm_disk_pvcs (pvcs, vm_id, ns, names, pick);
  if (json_array_size (pick) != nvol) {
    char *f = name_list (names), *w = name_list (want);
    *code = "ConversionPVCCountMismatch";
    r = fail (&c, PALLET_E_INVALID,
              "instance %s has %zu EBS volume%s (%s) "
              "but %zu PVC%s in namespace %s %s labelled vmID=%s (or vmUUID) "
              "with a forklift.konveyor.io/disk-source annotation (%s); "
              "make exactly one PVC per volume, labelled and annotated so "
              "(disk-source = the volume id)",
              vm_id, nvol, nvol == 1 ? "" : "s", w ? w : "?", json_array_size (pick),
              json_array_size (pick) == 1 ? "" : "s", ns ? ns : "(target)",
              json_array_size (pick) == 1 ? "is" : "are", vm_id, f ? f : "?");
    free (f);
    free (w);
    goto out;
  }
  r = bind_claims (&c, pick, names, volumes, vm_id, ns, code);
out:
  json_decref (names);
  json_decref (want);
  json_decref (pick);
  return r;
}
