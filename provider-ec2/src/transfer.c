/* SPDX-License-Identifier: Apache-2.0 */
/* transfer (zero-copy): snapshot the instance's EBS volumes together, share
 * or copy the snapshots when the target is another account or region, and
 * re-create each volume in the target zone.  Each call does what it can and
 * returns PENDING while AWS works.  A rerun finds its own resources: the
 * snapshots by plan and migration tags, the volumes and copies by a
 * ClientToken derived from the migration, so nothing is created twice and
 * nothing from another migration is reused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ec2.h"
#include "warm.h"

static json_t *
volume_by_source (json_t *vols, const char *source_volume_id)
{
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v)
    if (!strcmp (ec2_str (v, "sourceVolumeId"), source_volume_id))
      return v;
  return NULL;
}

struct found {
  json_t *vols;
  const char *id_key;
};

static int
add_found_snapshot (void *opaque, json_t *snap, const json_t *ctx)
{
  (void) ctx;
  struct found *f = opaque;
  json_t *v = volume_by_source (f->vols, ec2_str (snap, "volumeId"));
  if (v && !*ec2_str (v, f->id_key))
    json_object_set_new (v, f->id_key, json_string (ec2_str (snap, "snapshotId")));
  return 0;
}

/* Snapshots of this migration that exist already (a crash after
 * CreateSnapshots, before the state was saved).  round: only those of
 * that warm round (tag EC2_TAG_ROUND); NULL: any. */
int
ec2_snapshots_find (struct ec2 *s, const struct ec2_input *in, json_t *vols, const char *id_key,
                    const char *round)
{
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  const char *mig[] = { in->migration_uid }, *vm[] = { in->vm_id }, *rnd[] = { round };
  struct found f = { vols, id_key };
  Pallet_aws_params_add (p, "Owner.1", "self");
  Pallet_aws_params_add_filter (p, "tag:" EC2_TAG_MIGRATION, mig, 1);
  Pallet_aws_params_add_filter (p, "tag:" EC2_TAG_VM_ID, vm, 1);
  if (round)
    Pallet_aws_params_add_filter (p, "tag:" EC2_TAG_ROUND, rnd, 1);
  int r = Pallet_aws_ec2_describe_snapshots (s->src, p, add_found_snapshot, &f);
  Pallet_aws_params_free (p);
  return r < 0 ? ec2_aws_fail (s, s->src, "looking for this migration's snapshots") : PALLET_OK;
}

int
ec2_snapshots_create (struct ec2 *s, const struct ec2_input *in, json_t *vols, const char *id_key,
                      const char *round)
{
  char desc[256];
  const char *name = ec2_str (json_object_get (in->state, "instance"), "name");
  snprintf (desc, sizeof desc, "Pallet migration snapshot%s%s for VM %.100s (%s)",
            round ? ", warm round " : "", round ? round : "", *name ? name : in->vm_id, in->vm_id);
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  struct Pallet_aws_tag extra[] = { { EC2_TAG_ROUND, round } };
  ec2_add_tags (p, "snapshot", in, extra, round ? 1 : 0);
  json_t *res = NULL;
  int r = Pallet_aws_ec2_create_snapshots (s->src, in->vm_id, desc, p, &res);
  Pallet_aws_params_free (p);
  if (r < 0)
    return ec2_aws_fail (s, s->src, "creating the instance's snapshots (CreateSnapshots)");
  size_t i;
  json_t *snap;
  struct found f = { vols, id_key };
  json_array_foreach (json_object_get (res, "snapshotSet"), i, snap)
    add_found_snapshot (&f, snap, NULL);
  json_decref (res);
  return PALLET_OK;
}

/* Forklift tags each snapshot with the volume it is of.  One
 * CreateSnapshots tags all of an instance's snapshots alike, so that tag
 * costs a CreateTags per snapshot: done only when the setting
 * tag-snapshot-volumes is "true" (each snapshot's VolumeId names its
 * volume anyway).  CreateTags is idempotent; a rerun repeats only the
 * snapshots not yet marked in the state. */
static int
tag_snapshot_volumes (struct ec2 *s, json_t *vols, const char *id_key)
{
  json_t *set = json_object_get (json_object_get (s->config, "_settings"), "tag-snapshot-volumes");
  const char *val = json_is_string (set) ? json_string_value (set) : NULL;
  if (!json_is_true (set) && !(val && !strcmp (val, "true"))) {
    if (set && !json_is_false (set) && !(val && (!strcmp (val, "false") || !*val))) {
      pallet_error (s->call, PALLET_E_INVALID,
                    "setting tag-snapshot-volumes: expected \"true\" or \"false\"; fix "
                    "spec.settings.tag-snapshot-volumes of the Provider");
      return PALLET_E_INVALID;
    }
    return PALLET_OK;
  }
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    const char *snap = ec2_str (v, id_key);
    if (!*snap || ec2_bool (v, "snapshotVolumeTagged"))
      continue;
    const char *res[] = { snap };
    struct Pallet_aws_tag tag[] = { { EC2_TAG_VOLUME, ec2_str (v, "sourceVolumeId") } };
    if (Pallet_aws_ec2_create_tags (s->src, res, 1, tag, 1) < 0)
      return ec2_aws_fail (s, s->src, "tagging a snapshot with its volume (CreateTags)");
    json_object_set_new (v, "snapshotVolumeTagged", json_true ());
  }
  return PALLET_OK;
}

struct snapwait {
  json_t *vols;
  const char *id_key, *state_key;
  int completed, total, errors;
  long long progress;
  char reason[512];
};

static int
note_snapshot (void *opaque, json_t *snap, const json_t *ctx)
{
  (void) ctx;
  struct snapwait *w = opaque;
  size_t i;
  json_t *v;
  json_array_foreach (w->vols, i, v) {
    if (strcmp (ec2_str (v, w->id_key), ec2_str (snap, "snapshotId")))
      continue;
    const char *st = ec2_str (snap, "status");
    json_object_set_new (v, w->state_key, json_string (st));
    w->progress += atoi (ec2_str (snap, "progress"));
    if (!strcmp (st, "completed"))
      w->completed++;
    else if (!strcmp (st, "error")) {
      w->errors++;
      snprintf (w->reason, sizeof w->reason, "snapshot %s of volume %s failed: %s",
                ec2_str (snap, "snapshotId"), ec2_str (v, "sourceVolumeId"),
                *ec2_str (snap, "statusMessage") ? ec2_str (snap, "statusMessage")
                                                 : "no reason given by AWS");
    }
  }
  return 0;
}

/* One DescribeSnapshots for all of the VM's snapshots (or copies). */
int
ec2_snapshots_wait (struct ec2 *s, struct Pallet_aws_client *c, const struct ec2_input *in,
                    json_t *vols, const char *id_key, const char *state_key, const char *what,
                    int *done)
{
  struct snapwait w = { vols, id_key, state_key, 0, 0, 0, 0, "" };
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    if (!strcmp (ec2_str (v, state_key), "completed"))
      continue;
    char key[32];
    snprintf (key, sizeof key, "SnapshotId.%d", ++w.total);
    Pallet_aws_params_add (p, key, ec2_str (v, id_key));
  }
  *done = 0;
  if (w.total == 0) {
    Pallet_aws_params_free (p);
    *done = 1;
    return PALLET_OK;
  }
  int r = Pallet_aws_ec2_describe_snapshots (c, p, note_snapshot, &w);
  Pallet_aws_params_free (p);
  if (r < 0)
    return ec2_aws_fail (s, c, what);
  if (w.errors) {
    pallet_error (s->call, PALLET_E_FAILED, "%s: %s", in->vm_id, w.reason);
    return PALLET_E_FAILED;
  }
  pallet_progress (s->call, in->vm_id, what, (uint64_t) w.progress, (uint64_t) w.total * 100,
                   "percent");
  *done = w.completed == w.total;
  return PALLET_OK;
}

static int
share_snapshots (struct ec2 *s, json_t *vols)
{
  const char *target;
  int st = ec2_target_account (s, &target);
  if (st != PALLET_OK)
    return st;
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    if (ec2_bool (v, "shared"))
      continue;
    if (Pallet_aws_ec2_modify_snapshot_permission (s->src, ec2_str (v, "snapshotId"), target, 0, 0)
        < 0)
      return ec2_aws_fail (s, s->src, "sharing a snapshot with the target account");
    json_object_set_new (v, "shared", json_true ());
    json_object_set_new (v, "sharedWith", json_string (target));
  }
  return PALLET_OK;
}

static int
copy_snapshots (struct ec2 *s, const struct ec2_input *in, json_t *vols)
{
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    if (*ec2_str (v, "copySnapshotId"))
      continue;
    char token[65], desc[200];
    ec2_client_token (in->migration_uid, ec2_str (v, "snapshotId"), token);
    snprintf (desc, sizeof desc, "Pallet copy of %s for VM %s", ec2_str (v, "snapshotId"),
              in->vm_id);
    struct Pallet_aws_params *p = Pallet_aws_params_new ();
    struct Pallet_aws_tag extra[] = { { EC2_TAG_VOLUME, ec2_str (v, "sourceVolumeId") } };
    ec2_add_tags (p, "snapshot", in, extra, 1);
    if (ec2_bool (v, "encrypted")) {
      Pallet_aws_params_add (p, "Encrypted", "true");
      if (s->target_kms_key)
        Pallet_aws_params_add (p, "KmsKeyId", s->target_kms_key);
    }
    json_t *res = NULL;
    int r = Pallet_aws_ec2_copy_snapshot (s->tgt, s->region, ec2_str (v, "snapshotId"), desc, token,
                                          p, &res);
    Pallet_aws_params_free (p);
    if (r < 0)
      return ec2_aws_fail (s, s->tgt, "copying a snapshot to the target region (CopySnapshot)");
    json_object_set_new (v, "copySnapshotId", json_string (ec2_str (res, "snapshotId")));
    json_decref (res);
  }
  return PALLET_OK;
}

static int
create_volumes (struct ec2 *s, const struct ec2_input *in, json_t *vols)
{
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    if (*ec2_str (v, "targetVolumeId"))
      continue;
    const char *snap =
        *ec2_str (v, "copySnapshotId") ? ec2_str (v, "copySnapshotId") : ec2_str (v, "snapshotId");
    const char *type = ec2_str (v, "volumeType");
    char token[65];
    ec2_client_token (in->migration_uid, ec2_str (v, "sourceVolumeId"), token);
    struct Pallet_aws_params *p = Pallet_aws_params_new ();
    Pallet_aws_params_addf (p, "Size", "%lld", ec2_int (v, "sizeGiB", 0));
    /* io1/io2 need their IOPS; gp3 keeps custom IOPS and throughput. */
    if ((!strcmp (type, "io1") || !strcmp (type, "io2") || !strcmp (type, "gp3"))
        && ec2_int (v, "iops", 0) > 0)
      Pallet_aws_params_addf (p, "Iops", "%lld", ec2_int (v, "iops", 0));
    if (!strcmp (type, "gp3") && ec2_int (v, "throughput", 0) > 0)
      Pallet_aws_params_addf (p, "Throughput", "%lld", ec2_int (v, "throughput", 0));
    if (ec2_bool (v, "encrypted")) {
      Pallet_aws_params_add (p, "Encrypted", "true");
      const char *key =
          (s->cross_account || s->cross_region) ? s->target_kms_key : ec2_str (v, "kmsKeyId");
      if (key && *key)
        Pallet_aws_params_add (p, "KmsKeyId", key);
    }
    struct Pallet_aws_tag extra[] = { { EC2_TAG_ORIG_VOLUME, ec2_str (v, "sourceVolumeId") },
                                      { EC2_TAG_SNAPSHOT, snap } };
    ec2_add_tags (p, "volume", in, extra, 2);
    json_t *res = NULL;
    int r = Pallet_aws_ec2_create_volume (s->tgt, snap, s->target_az, type, token, p, &res);
    Pallet_aws_params_free (p);
    if (r < 0)
      return ec2_aws_fail (s, s->tgt, "creating a volume from a snapshot (CreateVolume)");
    json_object_set_new (v, "targetVolumeId", json_string (ec2_str (res, "volumeId")));
    json_object_set_new (v, "targetAZ", json_string (s->target_az));
    json_decref (res);
  }
  return PALLET_OK;
}

struct volwait {
  json_t *vols;
  int available, total, errors;
  char reason[256];
};

static int
note_volume (void *opaque, json_t *vol, const json_t *ctx)
{
  (void) ctx;
  struct volwait *w = opaque;
  size_t i;
  json_t *v;
  json_array_foreach (w->vols, i, v) {
    if (strcmp (ec2_str (v, "targetVolumeId"), ec2_str (vol, "volumeId")))
      continue;
    const char *st = ec2_str (vol, "status");
    json_object_set_new (v, "targetState", json_string (st));
    if (!strcmp (st, "available"))
      w->available++;
    else if (!strcmp (st, "error")) {
      w->errors++;
      snprintf (w->reason, sizeof w->reason, "volume %s (from %s) went to state error",
                ec2_str (vol, "volumeId"), ec2_str (v, "sourceVolumeId"));
    }
  }
  return 0;
}

static int
wait_volumes (struct ec2 *s, const struct ec2_input *in, json_t *vols, int *done)
{
  struct volwait w = { vols, 0, 0, 0, "" };
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    char key[32];
    snprintf (key, sizeof key, "VolumeId.%d", ++w.total);
    Pallet_aws_params_add (p, key, ec2_str (v, "targetVolumeId"));
  }
  int r = Pallet_aws_ec2_describe_volumes (s->tgt, p, note_volume, &w);
  Pallet_aws_params_free (p);
  if (r < 0)
    return ec2_aws_fail (s, s->tgt, "waiting for the new volumes");
  if (w.errors) {
    pallet_error (s->call, PALLET_E_FAILED, "%s: %s", in->vm_id, w.reason);
    return PALLET_E_FAILED;
  }
  pallet_progress (s->call, in->vm_id, "transfer", (uint64_t) w.available, (uint64_t) w.total,
                   "volumes");
  *done = w.available == w.total;
  return PALLET_OK;
}

/* Refuses a transfer that cannot start; nothing is touched yet, so no state
 * is emitted.  Sets *copy_mode, *warm and *why for the caller. */
static int
transfer_check (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols,
                int *copy_mode, int *warm, const char **why)
{
  struct pallet_call *call = s->call;
  if (!in->vm_id || !json_is_array (vols) || json_array_size (vols) == 0) {
    pallet_error (call, PALLET_E_INVALID,
                  "transfer: the state has no instance or volumes; run validate first");
    return PALLET_E_INVALID;
  }
  if (!*in->migration_uid) {
    pallet_error (
        call, PALLET_E_INVALID,
        "transfer %s: options.migrationUID is missing; the host must give one so that reruns find their own resources",
        in->vm_id);
    return PALLET_E_INVALID;
  }
  *copy_mode = ec2_copy_mode_wanted (s, in->plan, why);
  if (*copy_mode < 0) {
    pallet_error (call, PALLET_E_INVALID, "transfer %s: %s", in->vm_id, *why);
    return PALLET_E_INVALID;
  }
  *warm = ec2_plan_is_warm (in->plan);
  if (*warm && !*copy_mode) {
    pallet_error (call, PALLET_E_INVALID, "transfer %s: " EC2_WARM_NEEDS_COPY " (decided by %s)",
                  in->vm_id, *why);
    return PALLET_E_INVALID;
  }
  if (!*warm && !ec2_bool (state, "stopped")) {
    pallet_error (call, PALLET_E_CONFLICT,
                  "transfer %s: the instance is not known to be stopped; run prepare_source first",
                  in->vm_id);
    return PALLET_E_CONFLICT;
  }
  return PALLET_OK;
}

static size_t
count_missing (json_t *vols, const char *id_key)
{
  size_t i, missing = 0;
  json_t *v;
  json_array_foreach (vols, i, v)
    missing += !*ec2_str (v, id_key);
  return missing;
}

/* Step 1: a snapshot of every volume, taken together (crash-consistent). */
static int
take_snapshots (struct ec2 *s, const struct ec2_input *in, json_t *vols)
{
  int st;
  if (!count_missing (vols, "snapshotId"))
    return PALLET_OK;
  /* A crash after CreateSnapshots leaves snapshots the saved state does
   * not know: look for this migration's own before taking new ones. */
  if ((st = ec2_snapshots_find (s, in, vols, "snapshotId", NULL)) != PALLET_OK)
    return st;
  if (count_missing (vols, "snapshotId") == json_array_size (vols)
      && (st = ec2_snapshots_create (s, in, vols, "snapshotId", NULL)) != PALLET_OK)
    return st;
  size_t missing = count_missing (vols, "snapshotId");
  if (missing) {
    pallet_error (
        s->call, PALLET_E_FAILED,
        "transfer %s: CreateSnapshots did not cover %zu of the instance's volumes; were volumes attached or detached during the migration?",
        in->vm_id, missing);
    return PALLET_E_FAILED;
  }
  return PALLET_OK;
}

/* Steps 2 and 3: snapshots the target account and region can use. */
static int
reach_target (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols)
{
  int st, done = 0;
  /* Another account may use them only once shared. */
  if (s->cross_account && (st = share_snapshots (s, vols)) != PALLET_OK)
    return st;
  /* Another region gets its own copies. */
  if (s->cross_region) {
    if ((st = copy_snapshots (s, in, vols)) != PALLET_OK)
      return st;
    if ((st = ec2_snapshots_wait (s, s->tgt, in, vols, "copySnapshotId", "copyState",
                                  "copying snapshots", &done))
        != PALLET_OK)
      return st;
    if (!done) {
      pallet_retry_after (s->call, ec2_poll_ms (state, "copyPolls"));
      return PALLET_PENDING;
    }
  }
  return PALLET_OK;
}

/* Step 4: volumes in the target zone. */
static int
make_target_volumes (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols)
{
  int st, done = 0;
  if (!*s->target_az) {
    pallet_error (
        s->call, PALLET_E_INVALID,
        "transfer %s: the provider has no target-az; set spec.settings.target-az to the worker nodes' zone",
        in->vm_id);
    return PALLET_E_INVALID;
  }
  if ((st = create_volumes (s, in, vols)) != PALLET_OK)
    return st;
  if ((st = wait_volumes (s, in, vols, &done)) != PALLET_OK)
    return st;
  if (!done) {
    pallet_retry_after (s->call, ec2_poll_ms (state, "volumePolls"));
    return PALLET_PENDING;
  }
  json_object_set_new (state, "transferred", json_true ());
  return PALLET_OK;
}

/* Copy mode when the host applies the objects: the copy Pod build_vm
 * emits reads the snapshots into the PVCs in the cluster, so nothing is
 * copied here (a local copy would be converted and then thrown away). */
static int
copy_in_cluster (struct ec2 *s, const struct ec2_input *in, json_t *state)
{
  if (!json_is_true (json_object_get (state, "transferred")))
    pallet_log (s->call, PALLET_LOG_INFO,
                "transfer %s: the copy Pod copies the snapshots into the PVCs in the cluster",
                in->vm_id);
  json_object_set_new (state, "transferMode", json_string ("copy"));
  json_object_set_new (state, "copyIn", json_string ("cluster"));
  json_object_set_new (state, "transferred", json_true ());
  return PALLET_OK;
}

/* Cold: snapshots, then either the copy or the zero-copy path. */
static int
cold_transfer (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols,
               int copy_mode, const char *why)
{
  int st, done = 0;
  if ((st = take_snapshots (s, in, vols)) != PALLET_OK)
    return st;
  if ((st = tag_snapshot_volumes (s, vols, "snapshotId")) != PALLET_OK)
    return st;
  if ((st = ec2_snapshots_wait (s, s->src, in, vols, "snapshotId", "snapshotState",
                                "waiting for snapshots", &done))
      != PALLET_OK)
    return st;
  if (!done) {
    pallet_retry_after (s->call, ec2_poll_ms (state, "snapshotPolls"));
    return PALLET_PENDING;
  }
  /* Copy mode: read the snapshots through the EBS direct APIs instead of
   * re-creating EBS volumes (no sharing or copying needed either). */
  if (copy_mode) {
    if (!*ec2_str (state, "transferMode"))
      pallet_log (s->call, PALLET_LOG_INFO, "copy mode (%s)", why);
    if (ec2_cluster_applies (s) || !strcmp (ec2_str (state, "copyIn"), "cluster"))
      return copy_in_cluster (s, in, state);
    return ec2_copy_volumes (s, in, state, vols);
  }
  if ((st = reach_target (s, in, state, vols)) != PALLET_OK)
    return st;
  return make_target_volumes (s, in, state, vols);
}

int
ec2_transfer (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "transfer", input_json, &in) < 0)
    return PALLET_E_INVALID;
  json_t *state = json_deep_copy (in.state);
  json_t *vols = json_object_get (state, "volumes");
  const char *why = "";
  int copy_mode = 0, warm = 0;
  int st = transfer_check (s, &in, state, vols, &copy_mode, &warm, &why);
  if (st != PALLET_OK)
    goto out;
  json_object_set_new (state, "migrationUID", json_string (in.migration_uid));
  if (pallet_cancelled (call)) {
    pallet_error (call, PALLET_E_CANCELLED, "transfer %s: cancelled", in.vm_id);
    st = PALLET_E_CANCELLED;
  }
  else if (warm) /* precopy rounds while the source runs, then the cutover */
    st = ec2_warm_transfer (s, &in, state, vols);
  else
    st = cold_transfer (s, &in, state, vols, copy_mode, why);
  /* Always: cleanup needs to know what exists, even after a failure. */
  ec2_emit_state (s, state);
out:
  json_decref (state);
  ec2_input_free (&in);
  return st;
}
