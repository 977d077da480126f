/* SPDX-License-Identifier: Apache-2.0 */
/* EC2 and STS actions: thin wrappers that fill the Query parameters the
 * botocore model names and pick the list to stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aws-internal.h"

#define EC2 PALLET_AWS_EC2

int
Pallet_aws_ec2_describe_instances (struct Pallet_aws_client *c,
                                   const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                   void *opaque)
{
  /* MaxResults cannot be combined with InstanceId.N. */
  return Pallet_aws_query_paged (c, EC2, "DescribeInstances", params, 1000, "InstanceId.",
                                 "reservationSet/item/instancesSet/item", cb, opaque);
}

int
Pallet_aws_ec2_describe_instance_types (struct Pallet_aws_client *c,
                                        const struct Pallet_aws_params *params,
                                        Pallet_aws_item_fn cb, void *opaque)
{
  return Pallet_aws_query_paged (c, EC2, "DescribeInstanceTypes", params, 100, "InstanceType.",
                                 "instanceTypeSet/item", cb, opaque);
}

int
Pallet_aws_ec2_describe_volumes (struct Pallet_aws_client *c,
                                 const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                 void *opaque)
{
  return Pallet_aws_query_paged (c, EC2, "DescribeVolumes", params, 500, "VolumeId.",
                                 "volumeSet/item", cb, opaque);
}

int
Pallet_aws_ec2_describe_snapshots (struct Pallet_aws_client *c,
                                   const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                   void *opaque)
{
  return Pallet_aws_query_paged (c, EC2, "DescribeSnapshots", params, 1000, "SnapshotId.",
                                 "snapshotSet/item", cb, opaque);
}

int
Pallet_aws_ec2_describe_subnets (struct Pallet_aws_client *c,
                                 const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                 void *opaque)
{
  return Pallet_aws_query_paged (c, EC2, "DescribeSubnets", params, 1000, "SubnetId.",
                                 "subnetSet/item", cb, opaque);
}

int
Pallet_aws_ec2_describe_vpcs (struct Pallet_aws_client *c, const struct Pallet_aws_params *params,
                              Pallet_aws_item_fn cb, void *opaque)
{
  return Pallet_aws_query_paged (c, EC2, "DescribeVpcs", params, 1000, "VpcId.", "vpcSet/item", cb,
                                 opaque);
}

int
Pallet_aws_ec2_describe_availability_zones (struct Pallet_aws_client *c,
                                            const struct Pallet_aws_params *params,
                                            Pallet_aws_item_fn cb, void *opaque)
{
  return Pallet_aws_query (c, EC2, "DescribeAvailabilityZones", params, "availabilityZoneInfo/item",
                           cb, opaque, NULL);
}

int
Pallet_aws_ec2_describe_regions (struct Pallet_aws_client *c,
                                 const struct Pallet_aws_params *params, Pallet_aws_item_fn cb,
                                 void *opaque)
{
  return Pallet_aws_query (c, EC2, "DescribeRegions", params, "regionInfo/item", cb, opaque, NULL);
}

/* Runs action with p (freed here) and an out-of-memory check. */
static int
run (struct Pallet_aws_client *c, enum Pallet_aws_service svc, const char *action,
     struct Pallet_aws_params *p, int build_failed, json_t **result)
{
  if (result)
    *result = NULL;
  if (!p || build_failed) {
    Pallet_aws_params_free (p);
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, svc, action, NULL, NULL, NULL,
                          "out of memory building AWS %s parameters", action);
    return -1;
  }
  int r = Pallet_aws_query (c, svc, action, p, NULL, NULL, NULL, result);
  Pallet_aws_params_free (p);
  return r;
}

static int
need (struct Pallet_aws_client *c, const char *action, const char *what, const char *v)
{
  if (v && *v)
    return 0;
  Pallet_aws_set_error (c, PALLET_E_INVALID, 0, 0, EC2, action, "MissingParameter", NULL, NULL,
                        "AWS ec2 %s: %s is empty; pass a value", action, what);
  return -1;
}

static int
add_extra (struct Pallet_aws_params *p, const struct Pallet_aws_params *extra)
{
  return Pallet_aws_params_append (p, extra);
}

int
Pallet_aws_ec2_stop_instances (struct Pallet_aws_client *c, const char *const *ids, size_t n,
                               int force, json_t **result)
{
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add_list (p, "InstanceId", ids, n);
  if (force)
    bad |= Pallet_aws_params_add (p, "Force", "true");
  return run (c, EC2, "StopInstances", p, bad, result);
}

int
Pallet_aws_ec2_start_instances (struct Pallet_aws_client *c, const char *const *ids, size_t n,
                                json_t **result)
{
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add_list (p, "InstanceId", ids, n);
  return run (c, EC2, "StartInstances", p, bad, result);
}

int
Pallet_aws_ec2_create_snapshot (struct Pallet_aws_client *c, const char *volume_id,
                                const char *description, const struct Pallet_aws_params *extra,
                                json_t **result)
{
  if (need (c, "CreateSnapshot", "the volume id", volume_id) < 0)
    return -1;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "VolumeId", volume_id);
  if (description)
    bad |= Pallet_aws_params_add (p, "Description", description);
  bad |= add_extra (p, extra);
  return run (c, EC2, "CreateSnapshot", p, bad, result);
}

int
Pallet_aws_ec2_create_snapshots (struct Pallet_aws_client *c, const char *instance_id,
                                 const char *description, const struct Pallet_aws_params *extra,
                                 json_t **result)
{
  if (need (c, "CreateSnapshots", "the instance id", instance_id) < 0)
    return -1;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "InstanceSpecification.InstanceId", instance_id);
  if (description)
    bad |= Pallet_aws_params_add (p, "Description", description);
  bad |= add_extra (p, extra);
  return run (c, EC2, "CreateSnapshots", p, bad, result);
}

int
Pallet_aws_ec2_copy_snapshot (struct Pallet_aws_client *c, const char *source_region,
                              const char *source_snapshot_id, const char *description,
                              const char *client_token, const struct Pallet_aws_params *extra,
                              json_t **result)
{
  if (need (c, "CopySnapshot", "the source region", source_region) < 0
      || need (c, "CopySnapshot", "the source snapshot id", source_snapshot_id) < 0)
    return -1;
  char token[37];
  if (!client_token || !*client_token) {
    Pallet_aws_uuid (token);
    client_token = token;
  }
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "SourceRegion", source_region);
  bad |= Pallet_aws_params_add (p, "SourceSnapshotId", source_snapshot_id);
  if (description)
    bad |= Pallet_aws_params_add (p, "Description", description);
  bad |= Pallet_aws_params_add (p, "ClientToken", client_token);
  bad |= add_extra (p, extra);
  return run (c, EC2, "CopySnapshot", p, bad, result);
}

int
Pallet_aws_ec2_create_volume (struct Pallet_aws_client *c, const char *snapshot_id,
                              const char *availability_zone, const char *volume_type,
                              const char *client_token, const struct Pallet_aws_params *extra,
                              json_t **result)
{
  if (need (c, "CreateVolume", "the availability zone", availability_zone) < 0)
    return -1;
  char token[37];
  if (!client_token || !*client_token) {
    Pallet_aws_uuid (token);
    client_token = token;
  }
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "AvailabilityZone", availability_zone);
  if (snapshot_id && *snapshot_id)
    bad |= Pallet_aws_params_add (p, "SnapshotId", snapshot_id);
  if (volume_type && *volume_type)
    bad |= Pallet_aws_params_add (p, "VolumeType", volume_type);
  bad |= Pallet_aws_params_add (p, "ClientToken", client_token);
  bad |= add_extra (p, extra);
  return run (c, EC2, "CreateVolume", p, bad, result);
}

int
Pallet_aws_ec2_delete_snapshot (struct Pallet_aws_client *c, const char *snapshot_id)
{
  if (need (c, "DeleteSnapshot", "the snapshot id", snapshot_id) < 0)
    return -1;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "SnapshotId", snapshot_id);
  return run (c, EC2, "DeleteSnapshot", p, bad, NULL);
}

int
Pallet_aws_ec2_delete_volume (struct Pallet_aws_client *c, const char *volume_id)
{
  if (need (c, "DeleteVolume", "the volume id", volume_id) < 0)
    return -1;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "VolumeId", volume_id);
  return run (c, EC2, "DeleteVolume", p, bad, NULL);
}

int
Pallet_aws_ec2_create_tags (struct Pallet_aws_client *c, const char *const *resources, size_t nres,
                            const struct Pallet_aws_tag *tags, size_t ntags)
{
  if (nres == 0) {
    Pallet_aws_set_error (c, PALLET_E_INVALID, 0, 0, EC2, "CreateTags", "MissingParameter", NULL,
                          NULL, "AWS ec2 CreateTags: no resource ids; pass at least one");
    return -1;
  }
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add_list (p, "ResourceId", resources, nres);
  char key[64];
  for (size_t i = 0; i < ntags && !bad; i++) {
    snprintf (key, sizeof key, "Tag.%zu.Key", i + 1);
    bad |= Pallet_aws_params_add (p, key, tags[i].key);
    snprintf (key, sizeof key, "Tag.%zu.Value", i + 1);
    bad |= Pallet_aws_params_add (p, key, tags[i].value ? tags[i].value : "");
  }
  return run (c, EC2, "CreateTags", p, bad, NULL);
}

int
Pallet_aws_ec2_modify_snapshot_permission (struct Pallet_aws_client *c, const char *snapshot_id,
                                           const char *user_id, int remove, int legacy)
{
  if (need (c, "ModifySnapshotAttribute", "the snapshot id", snapshot_id) < 0
      || need (c, "ModifySnapshotAttribute", "the account id", user_id) < 0)
    return -1;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int bad = Pallet_aws_params_add (p, "SnapshotId", snapshot_id);
  bad |= Pallet_aws_params_add (p, "Attribute", "createVolumePermission");
  if (legacy) {
    bad |= Pallet_aws_params_add (p, "OperationType", remove ? "remove" : "add");
    bad |= Pallet_aws_params_add (p, "UserId.1", user_id);
  }
  else
    bad |= Pallet_aws_params_add (p,
                                  remove ? "CreateVolumePermission.Remove.1.UserId"
                                         : "CreateVolumePermission.Add.1.UserId",
                                  user_id);
  return run (c, EC2, "ModifySnapshotAttribute", p, bad, NULL);
}

int
Pallet_aws_sts_get_caller_identity (struct Pallet_aws_client *c, json_t **result)
{
  json_t *rest = NULL;
  *result = NULL;
  if (Pallet_aws_query (c, PALLET_AWS_STS, "GetCallerIdentity", NULL, NULL, NULL, NULL, &rest) < 0)
    return -1;
  json_t *r = json_object_get (rest, "GetCallerIdentityResult");
  const char *account = Pallet_aws_json_str (r, "Account");
  if (!account) {
    json_decref (rest);
    Pallet_aws_set_error (c, PALLET_E_FAILED, 200, 1, PALLET_AWS_STS, "GetCallerIdentity",
                          "MalformedResponse", NULL, NULL,
                          "AWS sts GetCallerIdentity in region %s returned no Account; check "
                          "that the STS endpoint %s is an AWS endpoint",
                          c->r.region, c->r.endpoint[PALLET_AWS_STS]);
    return -1;
  }
  *result = json_pack ("{s:s, s:s?, s:s?}", "Account", account, "Arn",
                       Pallet_aws_json_str (r, "Arn"), "UserId", Pallet_aws_json_str (r, "UserId"));
  json_decref (rest);
  return *result ? 0 : -1;
}
