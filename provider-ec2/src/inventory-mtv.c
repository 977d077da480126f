/* SPDX-License-Identifier: Apache-2.0 */
/* inventory-mtv: kubectl-mtv's names for the EC2 inventory.  kubectl-mtv
 * lists ec2-instance, ec2-volume, ec2-volume-type, ec2-network and
 * ec2-snapshot, and its items are the AWS API objects (PascalCase:
 * InstanceType, State.Name, Placement.AvailabilityZone, Tags[*].Key) with
 * "id" and "name" added.  Pallet's items carry both: its own camelCase
 * fields and the AWS object's, so a query written for either works. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ec2.h"

static const struct {
  const char *alias, *kind;
} kinds[] = {
  { "ec2-instance", "instances" },
  { "ec2-instances", "instances" },
  { "vms", "instances" },
  { "vm", "instances" },
  { "instance", "instances" },
  { "ec2-volume", "volumes" },
  { "ec2-volumes", "volumes" },
  { "volume", "volumes" },
  { "disks", "volumes" },
  { "ec2-volume-type", "volume-types" },
  { "ec2-volume-types", "volume-types" },
  { "storages", "volume-types" },
  { "storage", "volume-types" },
  { "ec2-network", "networks" },
  { "ec2-networks", "networks" },
  { "network", "networks" },
  { "ec2-snapshot", "snapshots" },
  { "ec2-snapshots", "snapshots" },
  { "snapshot", "snapshots" },
  { "ec2-availability-zone", "availability-zones" },
  { "ec2-availability-zones", "availability-zones" },
};

const char *
ec2_inventory_kind (const char *kind)
{
  for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp (kind, kinds[i].alias))
      return kinds[i].kind;
  return kind;
}

/* The AWS SDKs' name for an EC2 Query API (XML) element. */
static char *
sdk_name (const char *k)
{
  static const struct {
    const char *xml, *sdk;
  } renames[] = {
    { "instanceState", "State" },
    { "ipAddress", "PublicIpAddress" },
    { "dnsName", "PublicDnsName" },
    { "tagSet", "Tags" },
    { "groupSet", "SecurityGroups" },
    { "blockDeviceMapping", "BlockDeviceMappings" },
    { "networkInterfaceSet", "NetworkInterfaces" },
    { "privateIpAddressesSet", "PrivateIpAddresses" },
    { "attachmentSet", "Attachments" },
    { "status", "State" }, /* volumes and snapshots */
    { "productCodes", "ProductCodes" },
  };
  for (size_t i = 0; i < sizeof renames / sizeof renames[0]; i++)
    if (!strcmp (k, renames[i].xml))
      return strdup (renames[i].sdk);
  char *s = strdup (k);
  size_t n = s ? strlen (s) : 0;
  if (n > 3 && !strcmp (s + n - 3, "Set"))
    strcpy (s + n - 3, "s"); /* securityGroupSet -> SecurityGroups */
  if (s && *s)
    s[0] = (char) toupper ((unsigned char) s[0]);
  return s;
}

/* XML text as the SDK types it: integers and booleans. */
static json_t *
sdk_scalar (json_t *v)
{
  const char *s = json_string_value (v);
  if (!s)
    return json_incref (v);
  if (!strcmp (s, "true") || !strcmp (s, "false"))
    return json_boolean (s[0] == 't');
  size_t n = strlen (s), i = s[0] == '-';
  if (n > i && n - i < 16 && (s[i] != '0' || n - i == 1)) {
    while (isdigit ((unsigned char) s[i]))
      i++;
    if (s[i] == '\0')
      return json_integer (strtoll (s, NULL, 10));
  }
  return json_incref (v);
}

static json_t *
sdk_object (const json_t *raw)
{
  if (json_is_array (raw)) {
    json_t *a = json_array ();
    size_t i;
    json_t *e;
    json_array_foreach (raw, i, e)
      json_array_append_new (a, sdk_object (e));
    return a;
  }
  if (!json_is_object (raw))
    return sdk_scalar ((json_t *) raw);
  json_t *o = json_object ();
  const char *k;
  json_t *v;
  json_object_foreach ((json_t *) raw, k, v) {
    char *name = sdk_name (k);
    if (name)
      json_object_set_new (o, name, sdk_object (v));
    free (name);
  }
  return o;
}

void
ec2_mtv_fields (json_t *item, const json_t *raw, const char *const *optional)
{
  json_t *o = sdk_object (raw);
  const char *k;
  json_t *v;
  json_object_foreach (o, k, v) {
    if (!json_object_get (item, k))
      json_object_set (item, k, v);
  }
  /* AWS leaves an absent value out; a query asking `is null` must still
   * find the field (an unknown field is an error). */
  for (size_t i = 0; optional && optional[i]; i++)
    if (!json_object_get (item, optional[i]))
      json_object_set_new (item, optional[i], json_null ());
  json_decref (o);
}
