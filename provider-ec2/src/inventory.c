/* SPDX-License-Identifier: Apache-2.0 */
/* inventory: streams one item per object, every page, with the fields a
 * migration needs.  Tags appear as "label": {...} so that queries can say
 * label.tier = 'web'.  Filtering (-q) is the host's job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ec2.h"

struct inv {
  struct ec2 *s;
  struct Pallet_aws_client *aux; /* a second connection for look-ups made
                                     while a page is being streamed */
  json_t *volumes;               /* volume id -> disk facts as compact JSON text:
                                    a string per volume costs a fifth of the
                                    object it encodes, and this map holds every
                                    volume of the account */
  int failed;
};

static json_t *
labels (const json_t *tagset)
{
  json_t *o = json_object ();
  size_t i;
  json_t *t;
  json_array_foreach (tagset, i, t)
    json_object_set_new (o, ec2_str (t, "key"), json_string (ec2_str (t, "value")));
  return o;
}

static json_t *
disk_facts (const json_t *vol)
{
  json_t *d =
      json_pack ("{s:s,s:I,s:s,s:b,s:s,s:s}", "volumeId", ec2_str (vol, "volumeId"), "sizeGiB",
                 (json_int_t) ec2_int (vol, "size", 0), "type", ec2_str (vol, "volumeType"),
                 "encrypted", ec2_bool (vol, "encrypted"), "availabilityZone",
                 ec2_str (vol, "availabilityZone"), "state", ec2_str (vol, "status"));
  long long iops = ec2_int (vol, "iops", 0), tput = ec2_int (vol, "throughput", 0);
  if (iops)
    json_object_set_new (d, "iops", json_integer (iops));
  if (tput)
    json_object_set_new (d, "throughput", json_integer (tput));
  if (*ec2_str (vol, "kmsKeyId"))
    json_object_set_new (d, "kmsKeyId", json_string (ec2_str (vol, "kmsKeyId")));
  return d;
}

static int
remember_volume (void *opaque, json_t *vol, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  json_t *d = disk_facts (vol);
  char *text = json_dumps (d, JSON_COMPACT);
  json_decref (d);
  if (!text)
    return 0; /* out of memory: the disk is listed by id only */
  json_object_set_new_nocheck (v->volumes, ec2_str (vol, "volumeId"), json_string_nocheck (text));
  free (text);
  return 0;
}

static const char *
firmware_of (const char *boot_mode, const json_t *itype)
{
  if (!strcmp (boot_mode, "uefi"))
    return "efi";
  if (!strcmp (boot_mode, "legacy-bios"))
    return "bios";
  /* uefi-preferred or unset: what the type would boot with. */
  json_t *modes = json_object_get (itype, "supportedBootModes");
  size_t i;
  json_t *m;
  int uefi = 0, bios = 0;
  json_array_foreach (modes, i, m) {
    uefi |= !strcmp (json_string_value (m) ? json_string_value (m) : "", "uefi");
    bios |= !strcmp (json_string_value (m) ? json_string_value (m) : "", "legacy-bios");
  }
  if (!strcmp (boot_mode, "uefi-preferred"))
    return uefi ? "efi" : "bios";
  return bios || !uefi ? "bios" : "efi";
}

static int
instance_item (void *opaque, json_t *inst, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  struct ec2 *s = v->s;
  const char *type = ec2_str (inst, "instanceType");
  const json_t *itype = json_object_get (s->itypes, type);
  if (!itype) {
    /* Look the type up on the second connection: this one is mid-page. */
    struct Pallet_aws_client *keep = s->src;
    s->src = v->aux;
    int st = ec2_instance_type (s, type, &itype);
    s->src = keep;
    if (st != PALLET_OK) {
      v->failed = st;
      return 1;
    }
  }
  json_t *f = ec2_instance_facts (inst, itype);
  const char *state = ec2_str (f, "state");
  json_t *item = json_pack (
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:O,s:o}", "id", ec2_str (f, "instanceId"),
      "name", *ec2_str (f, "name") ? ec2_str (f, "name") : ec2_str (f, "instanceId"), "type", type,
      "state", state, "powerState", ec2_power_state (state), "platform", ec2_str (f, "platform"),
      "bootMode", ec2_str (f, "bootMode"), "firmware", firmware_of (ec2_str (f, "bootMode"), itype),
      "availabilityZone", ec2_str (f, "availabilityZone"), "vpcId", ec2_str (f, "vpcId"),
      "subnetId", ec2_str (f, "subnetId"), "vcpus", json_object_get (itype, "vcpus"), "memoryMiB",
      json_object_get (itype, "memoryMiB"), "label", labels (json_object_get (inst, "tagSet")));
  json_t *nics = json_array ();
  size_t i;
  json_t *n;
  json_array_foreach (json_object_get (f, "networkInterfaces"), i, n)
    json_array_append_new (nics, json_pack ("{s:O,s:O,s:O,s:O,s:O}", "id",
                                            json_object_get (n, "networkInterfaceId"),
                                            "deviceIndex", json_object_get (n, "deviceIndex"),
                                            "mac", json_object_get (n, "macAddress"), "ip",
                                            json_object_get (n, "privateIpAddress"), "subnetId",
                                            json_object_get (n, "subnetId")));
  json_object_set_new (item, "nics", nics);
  json_t *disks = json_array ();
  json_array_foreach (json_object_get (f, "blockDevices"), i, n) {
    const char *d = json_string_value (json_object_get (v->volumes, ec2_str (n, "volumeId")));
    json_t *disk = d ? json_loads (d, 0, NULL) : NULL;
    if (!disk)
      disk = json_pack ("{s:s}", "volumeId", ec2_str (n, "volumeId"));
    json_object_set_new (disk, "device", json_string (ec2_str (n, "deviceName")));
    json_object_set_new (
        disk, "boot",
        json_boolean (!strcmp (ec2_str (n, "deviceName"), ec2_str (f, "rootDeviceName"))));
    json_array_append_new (disks, disk);
  }
  json_object_set_new (item, "disks", disks);
  json_object_set_new (item, "instanceStoreGiB",
                       json_integer (ec2_int (itype, "instanceStoreGiB", 0)));
  static const char *const optional[] = { "PublicIpAddress", "Platform", "KeyName", NULL };
  ec2_mtv_fields (item, inst, optional);
  json_decref (f);
  return ec2_emit_item (s, item) < 0 ? (v->failed = PALLET_E_ABI, 1) : 0;
}

static int
volume_item (void *opaque, json_t *vol, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  json_t *item = disk_facts (vol);
  json_object_set_new (item, "id", json_string (ec2_str (vol, "volumeId")));
  json_t *att = json_array_get (json_object_get (vol, "attachmentSet"), 0);
  json_object_set_new (item, "attachedTo", json_string (ec2_str (att, "instanceId")));
  json_object_set_new (item, "device", json_string (ec2_str (att, "device")));
  json_t *l = labels (json_object_get (vol, "tagSet"));
  /* Every item should have a name: the Name tag, else the id. */
  json_object_set_new (
      item, "name",
      json_string (*ec2_str (l, "Name") ? ec2_str (l, "Name") : ec2_str (vol, "volumeId")));
  json_object_set_new (item, "label", l);
  static const char *const optional[] = { "KmsKeyId", "SnapshotId", NULL };
  ec2_mtv_fields (item, vol, optional);
  return ec2_emit_item (v->s, item) < 0;
}

static int
vpc_item (void *opaque, json_t *o, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  json_t *l = labels (json_object_get (o, "tagSet"));
  json_t *item =
      json_pack ("{s:s,s:s,s:s,s:s,s:s,s:o}", "kind", "vpc", "id", ec2_str (o, "vpcId"), "name",
                 *ec2_str (l, "Name") ? ec2_str (l, "Name") : ec2_str (o, "vpcId"), "cidr",
                 ec2_str (o, "cidrBlock"), "state", ec2_str (o, "state"), "label", l);
  json_object_set_new (item, "networkType", json_string ("vpc"));
  ec2_mtv_fields (item, o, NULL);
  return ec2_emit_item (v->s, item) < 0;
}

static int
subnet_item (void *opaque, json_t *o, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  json_t *l = labels (json_object_get (o, "tagSet"));
  json_t *item = json_pack (
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "kind", "subnet", "id", ec2_str (o, "subnetId"), "name",
      *ec2_str (l, "Name") ? ec2_str (l, "Name") : ec2_str (o, "subnetId"), "cidr",
      ec2_str (o, "cidrBlock"), "vpcId", ec2_str (o, "vpcId"), "availabilityZone",
      ec2_str (o, "availabilityZone"), "state", ec2_str (o, "state"), "label", l);
  json_object_set_new (item, "networkType", json_string ("subnet"));
  ec2_mtv_fields (item, o, NULL);
  return ec2_emit_item (v->s, item) < 0;
}

static int
zone_item (void *opaque, json_t *o, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  json_t *item =
      json_pack ("{s:s,s:s,s:s,s:s}", "name", ec2_str (o, "zoneName"), "id", ec2_str (o, "zoneId"),
                 "state", ec2_str (o, "zoneState"), "region", ec2_str (o, "regionName"));
  return ec2_emit_item (v->s, item) < 0;
}

static int
snapshot_item (void *opaque, json_t *o, const json_t *ctx)
{
  (void) ctx;
  struct inv *v = opaque;
  json_t *item = json_pack (
      "{s:s,s:s,s:s,s:s,s:I,s:s,s:b,s:s,s:o}", "id", ec2_str (o, "snapshotId"), "volumeId",
      ec2_str (o, "volumeId"), "state", ec2_str (o, "status"), "progress", ec2_str (o, "progress"),
      "sizeGiB", (json_int_t) ec2_int (o, "volumeSize", 0), "startTime", ec2_str (o, "startTime"),
      "encrypted", ec2_bool (o, "encrypted"), "description", ec2_str (o, "description"), "label",
      labels (json_object_get (o, "tagSet")));
  const char *tag = ec2_str (json_object_get (item, "label"), "Name");
  json_object_set_new (item, "name", json_string (*tag ? tag : ec2_str (o, "snapshotId")));
  ec2_mtv_fields (item, o, NULL);
  return ec2_emit_item (v->s, item) < 0;
}

static const struct {
  const char *name, *description;
  int iops, throughput;
} volume_types[] = {
  { "gp3", "General Purpose SSD (gp3)", 1, 1 },      { "gp2", "General Purpose SSD (gp2)", 0, 0 },
  { "io2", "Provisioned IOPS SSD (io2)", 1, 0 },     { "io1", "Provisioned IOPS SSD (io1)", 1, 0 },
  { "st1", "Throughput Optimized HDD (st1)", 0, 0 }, { "sc1", "Cold HDD (sc1)", 0, 0 },
  { "standard", "Magnetic (standard)", 0, 0 },
};

int
ec2_inventory (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  ec2_begin (s, call);
  json_error_t jerr;
  json_t *in = input_json ? json_loads (input_json, 0, &jerr) : NULL;
  const char *kind = ec2_inventory_kind (json_string_value (json_object_get (in, "kind")));
  json_t *query = json_object_get (in, "query");
  if (query && !json_is_string (query) && !json_is_null (query)) {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 inventory: input.query must be a string such as \"where powerState = 'On'\"");
    json_decref (in);
    return PALLET_E_INVALID;
  }
  if (!kind) {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 inventory: the input needs {\"kind\": ...}; kinds: ec2-instance (instances), ec2-volume (volumes), ec2-volume-type (volume-types), ec2-network (networks), ec2-snapshot (snapshots), availability-zones");
    json_decref (in);
    return PALLET_E_INVALID;
  }
  struct inv v = { s, NULL, NULL, 0 };
  int r = 0, st = PALLET_OK;
  if (!strcmp (kind, "instances")) {
    char *err = NULL;
    v.aux = Pallet_aws_client_new (&s->src_cfg, &err);
    if (!v.aux) {
      pallet_error (call, PALLET_E_FAILED, "ec2 inventory: %s",
                    err ? err : "cannot make an AWS client");
      free (err);
      json_decref (in);
      return PALLET_E_FAILED;
    }
    v.volumes = json_object ();
    r = Pallet_aws_ec2_describe_volumes (s->src, NULL, remember_volume, &v);
    if (r == 0)
      r = Pallet_aws_ec2_describe_instances (s->src, NULL, instance_item, &v);
  }
  else if (!strcmp (kind, "volumes"))
    r = Pallet_aws_ec2_describe_volumes (s->src, NULL, volume_item, &v);
  else if (!strcmp (kind, "volume-types")) {
    for (size_t i = 0; i < sizeof volume_types / sizeof volume_types[0]; i++)
      if (ec2_emit_item (s, json_pack ("{s:s,s:s,s:s,s:b,s:b}", "id", volume_types[i].name, "name",
                                       volume_types[i].name, "description",
                                       volume_types[i].description, "iopsConfigurable",
                                       volume_types[i].iops, "throughputConfigurable",
                                       volume_types[i].throughput))
          < 0)
        st = PALLET_E_ABI;
  }
  else if (!strcmp (kind, "networks")) {
    r = Pallet_aws_ec2_describe_vpcs (s->src, NULL, vpc_item, &v);
    if (r == 0)
      r = Pallet_aws_ec2_describe_subnets (s->src, NULL, subnet_item, &v);
  }
  else if (!strcmp (kind, "availability-zones"))
    r = Pallet_aws_ec2_describe_availability_zones (s->src, NULL, zone_item, &v);
  else if (!strcmp (kind, "snapshots")) {
    struct Pallet_aws_params *p = Pallet_aws_params_new ();
    Pallet_aws_params_add (p, "Owner.1", "self");
    r = Pallet_aws_ec2_describe_snapshots (s->src, p, snapshot_item, &v);
    Pallet_aws_params_free (p);
  }
  else {
    pallet_error (
        call, PALLET_E_INVALID,
        "ec2 inventory: unknown kind \"%.60s\"; kinds: ec2-instance (instances), ec2-volume (volumes), ec2-volume-type (volume-types), ec2-network (networks), ec2-snapshot (snapshots), availability-zones",
        kind);
    st = PALLET_E_INVALID;
  }
  if (v.failed)
    st = v.failed;
  else if (r < 0)
    st = ec2_aws_fail (s, s->src, "listing the inventory");
  if (v.aux)
    Pallet_aws_client_free (v.aux);
  json_decref (v.volumes);
  json_decref (in);
  return st;
}
