/* SPDX-License-Identifier: Apache-2.0 */
/* cleanup: after success, delete the snapshots (and their copies), except
 * those the written objects still need: the copy Pod reads them, or
 * keep-snapshots-until-boot keeps them as the way back until the VM has
 * booted.  Those are kept (state.retained) until `pallet cleanup`
 * (options.onDemand) releases them.  After a failure or cancel, delete
 * everything this migration made, the new volumes too, and start the
 * instance again if it was running.  Resources are found from the state
 * and, for what a crash kept out of the state, by this migration's tags.
 * Idempotent: what is gone already counts as removed. */
#include <stdio.h>
#include <string.h>
#include "ec2.h"

/* Why a tidy-up keeps snapshots, or all NULL when it deletes them. */
struct keep {
  const char *copy_pod; /* the copy Pod that reads the source snapshots */
  const char *boot_vm;  /* keep-snapshots-until-boot: the VM to boot first */
  json_t *named;        /* the snapshot ids the copy Pod names */
  json_t *retained;     /* state.retained, one entry per kept snapshot */
};

struct sweep {
  struct ec2 *s;
  struct pallet_call *call;
  const char *vm;
  int pending;
  int failed;
  struct keep *keep;
};

static int
not_found (struct Pallet_aws_client *c, const char *prefix)
{
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  return e && e->code && strncmp (e->code, prefix, strlen (prefix)) == 0;
}

static void
removed (struct sweep *w, const char *kind, const char *id, const char *region, const char *how)
{
  ec2_emit_item (w->s, json_pack ("{s:s,s:s,s:s,s:s,s:s}", "vm", w->vm, "kind", kind, "id", id,
                                  "region", region, "action", how));
  pallet_log (w->call, PALLET_LOG_INFO, "%s %s %s", kind, id, how);
}

static int
has_id (const json_t *ids, const char *id)
{
  size_t i;
  json_t *v;
  json_array_foreach (ids, i, v)
    if (!strcmp (json_string_value (v), id))
      return 1;
  return 0;
}

/* Keeps snapshot id if the objects still need it: 1 if kept. */
static int
keep_snapshot (struct sweep *w, struct Pallet_aws_client *c, const char *id)
{
  const struct keep *k = w->keep;
  char reason[320], until[200];
  if (k->copy_pod && has_id (k->named, id)) {
    snprintf (reason, sizeof reason, "the copy Pod %s reads it", k->copy_pod);
    snprintf (until, sizeof until, "the copy Pod %s has succeeded", k->copy_pod);
  }
  else if (k->boot_vm) {
    snprintf (reason, sizeof reason,
              "keep-snapshots-until-boot: the way back until the VM %s has booted", k->boot_vm);
    snprintf (until, sizeof until, "the VM %s has booted", k->boot_vm);
  }
  else
    return 0;
  json_t *item = json_pack ("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "vm", w->vm, "kind", "snapshot", "id",
                            id, "region", Pallet_aws_region (c), "action", "kept", "reason", reason,
                            "until", until);
  json_array_append (k->retained, item);
  ec2_emit_item (w->s, item);
  pallet_log (w->call, PALLET_LOG_INFO, "snapshot %s kept: %s; `pallet cleanup` deletes it once %s",
              id, reason, until);
  return 1;
}

static void
delete_snapshot (struct sweep *w, struct Pallet_aws_client *c, const char *id)
{
  if (!id || !*id || keep_snapshot (w, c, id))
    return;
  if (Pallet_aws_ec2_delete_snapshot (c, id) == 0)
    removed (w, "snapshot", id, Pallet_aws_region (c), "deleted");
  else if (not_found (c, "InvalidSnapshot.NotFound"))
    removed (w, "snapshot", id, Pallet_aws_region (c), "already-gone");
  else if (not_found (c, "IncorrectState") || not_found (c, "InvalidSnapshot.InUse"))
    w->pending = 1;
  else {
    w->failed = ec2_aws_fail (w->s, c, "deleting a snapshot");
  }
}

static void
delete_volume (struct sweep *w, struct Pallet_aws_client *c, const char *id)
{
  if (!id || !*id)
    return;
  if (Pallet_aws_ec2_delete_volume (c, id) == 0)
    removed (w, "volume", id, Pallet_aws_region (c), "deleted");
  else if (not_found (c, "InvalidVolume.NotFound"))
    removed (w, "volume", id, Pallet_aws_region (c), "already-gone");
  else if (not_found (c, "IncorrectState") || not_found (c, "VolumeInUse"))
    w->pending = 1; /* still creating: try again shortly */
  else
    w->failed = ec2_aws_fail (w->s, c, "deleting a volume");
}

/* A volume names the snapshot it came from, and a snapshot its volume:
 * take each kind's own id. */
static int
collect_snapshot_id (void *opaque, json_t *item, const json_t *ctx)
{
  (void) ctx;
  const char *id = json_string_value (json_object_get (item, "snapshotId"));
  if (id)
    json_array_append_new ((json_t *) opaque, json_string (id));
  return 0;
}

static int
collect_volume_id (void *opaque, json_t *item, const json_t *ctx)
{
  (void) ctx;
  const char *id = json_string_value (json_object_get (item, "volumeId"));
  if (id)
    json_array_append_new ((json_t *) opaque, json_string (id));
  return 0;
}

/* This migration's resources of a kind, by tag. */
static int
tagged (struct ec2 *s, struct Pallet_aws_client *c, const struct ec2_input *in, int snapshots,
        json_t *ids)
{
  if (!*in->migration_uid || !in->vm_id)
    return 0;
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  const char *mig[] = { in->migration_uid }, *vm[] = { in->vm_id };
  if (snapshots)
    Pallet_aws_params_add (p, "Owner.1", "self");
  Pallet_aws_params_add_filter (p, "tag:" EC2_TAG_MIGRATION, mig, 1);
  Pallet_aws_params_add_filter (p, "tag:" EC2_TAG_VM_ID, vm, 1);
  int r = snapshots ? Pallet_aws_ec2_describe_snapshots (c, p, collect_snapshot_id, ids)
                    : Pallet_aws_ec2_describe_volumes (c, p, collect_volume_id, ids);
  Pallet_aws_params_free (p);
  if (r < 0)
    return ec2_aws_fail (s, c,
                         snapshots ? "looking for this migration's snapshots"
                                   : "looking for this migration's volumes");
  return 0;
}

static void
add_unique (json_t *ids, const char *id)
{
  if (id && *id && !has_id (ids, id))
    json_array_append_new (ids, json_string (id));
}

/* What cleanup deletes: ids without duplicates. */
struct doomed {
  json_t *src_snaps, *tgt_snaps, *tgt_vols;
};

/* The ids the state knows. */
static void
doomed_from_state (json_t *vols, int rollback, struct doomed *d)
{
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    add_unique (d->src_snaps, ec2_str (v, "snapshotId"));
    add_unique (d->tgt_snaps, ec2_str (v, "copySnapshotId"));
    if (rollback)
      add_unique (d->tgt_vols, ec2_str (v, "targetVolumeId"));
  }
}

/* Moves the ids of FOUND into IDS, leaving FOUND empty for the next look. */
static void
add_found (json_t *ids, json_t *found)
{
  size_t i;
  json_t *v;
  json_array_foreach (found, i, v)
    add_unique (ids, json_string_value (v));
  json_array_clear (found);
}

/* The ids a crash kept out of the state, by this migration's tags. */
static int
doomed_by_tag (struct ec2 *s, const struct ec2_input *in, int rollback, struct doomed *d)
{
  json_t *found = json_array ();
  int st;
  if ((st = tagged (s, s->src, in, 1, found)) != PALLET_OK)
    goto out;
  add_found (d->src_snaps, found);
  if (s->tgt != s->src && s->cross_region) {
    if ((st = tagged (s, s->tgt, in, 1, found)) != PALLET_OK)
      goto out;
    add_found (d->tgt_snaps, found);
  }
  if (rollback && (st = tagged (s, s->tgt, in, 0, found)) == PALLET_OK)
    add_found (d->tgt_vols, found);
out:
  json_decref (found);
  return st;
}

static void
delete_doomed (struct sweep *w, const struct doomed *d, int rollback, json_t *vols)
{
  struct ec2 *s = w->s;
  size_t i;
  json_t *v;
  json_array_foreach (d->tgt_vols, i, v)
    delete_volume (w, s->tgt, json_string_value (v));
  json_array_foreach (d->tgt_snaps, i, v)
    delete_snapshot (w, s->tgt, json_string_value (v));
  json_array_foreach (d->src_snaps, i, v)
    delete_snapshot (w, s->src, json_string_value (v));
  if (rollback) /* copy mode: partial or unwanted raw files */
    ec2_copy_remove_files (s, w->vm, vols);
}

/* Starts the source again after a rollback, if we stopped it while running. */
static int
restart_source (struct sweep *w, const struct ec2_input *in, json_t *state)
{
  struct ec2 *s = w->s;
  /* stopRequested is also set by prepare_source when it finds the
   * instance stopping after it was On (a crash hid our StopInstances). */
  json_t *inst = NULL;
  int st;
  if ((st = ec2_describe_instance (s, in->vm_id, NULL, &inst)) != PALLET_OK)
    return st;
  const char *name = ec2_str (json_object_get (inst, "instanceState"), "name");
  if (!strcmp (name, "stopped")) {
    const char *ids[] = { in->vm_id };
    if (Pallet_aws_ec2_start_instances (s->src, ids, 1, NULL) < 0) {
      json_decref (inst);
      return ec2_aws_fail (s, s->src, "starting the source instance again");
    }
    removed (w, "instance", in->vm_id, s->region, "started");
    json_object_set_new (state, "restarted", json_true ());
  }
  else if (!strcmp (name, "stopping"))
    w->pending = 1;
  else if (!strcmp (name, "running") || !strcmp (name, "pending"))
    json_object_set_new (state, "restarted", json_true ());
  json_decref (inst);
  return PALLET_OK;
}

/* Records what is gone and what is kept: cleaned only when nothing is. */
static void
mark_cleaned (json_t *state, json_t *vols, int rollback, const struct keep *k)
{
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    int kept = 0;
    size_t j;
    json_t *r;
    json_array_foreach (k->retained, j, r)
      kept |= !strcmp (ec2_str (r, "id"), ec2_str (v, "snapshotId"))
              || !strcmp (ec2_str (r, "id"), ec2_str (v, "copySnapshotId"));
    json_object_set_new (v, "snapshotDeleted", json_boolean (!kept));
    if (rollback && *ec2_str (v, "targetVolumeId"))
      json_object_set_new (v, "targetVolumeDeleted", json_true ());
  }
  json_object_set (state, "retained", k->retained);
  json_object_set_new (state, "cleaned", json_boolean (json_array_size (k->retained) == 0));
}

/* A tidy-up keeps what the written objects still need: in manifest mode
 * all of it; in cluster mode (input.cluster) not what the host saw done
 * (podsSucceeded: the copy Pod's snapshots; vmBooted: the way back).  A
 * rollback, or `pallet cleanup` (options.onDemand: the user says the
 * Pods succeeded and the VM booted), deletes it. */
static void
keep_init (struct ec2 *s, const struct ec2_input *in, const json_t *state, int rollback,
           struct keep *k)
{
  k->named = json_array ();
  k->retained = json_array ();
  if (rollback || json_is_true (json_object_get (in->options, "onDemand")))
    return;
  int copy = !strcmp (ec2_str (state, "transferMode"), "copy");
  /* In cluster mode the host saw the Pods run and the VM boot (ABI 1.1). */
  const json_t *cl = json_object_get (in->root, "cluster");
  int applied = !strcmp (ec2_str (cl, "mode"), "apply");
  int pods_done = applied && json_is_true (json_object_get (cl, "podsSucceeded"));
  int booted = applied && json_is_true (json_object_get (cl, "vmBooted"));
  if (copy && !pods_done) {
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get (state, "volumes"), i, v)
      add_unique (k->named, ec2_str (v, "snapshotId"));
    k->copy_pod = *ec2_str (state, "copyPod") ? ec2_str (state, "copyPod") : "of the VM";
  }
  int until_boot = s->keep_until_boot >= 0 ? s->keep_until_boot : !copy;
  if (copy && pods_done)
    pallet_log (s->call, PALLET_LOG_INFO,
                "the cluster ran the copy Pod to success: its source snapshots go now");
  if (until_boot && booted)
    pallet_log (s->call, PALLET_LOG_INFO,
                "the cluster saw the VM boot: keep-snapshots-until-boot lets its snapshots go");
  if (until_boot && !booted)
    k->boot_vm = *ec2_str (state, "vmObject") ? ec2_str (state, "vmObject")
                 : in->vm_name                ? in->vm_name
                                              : in->vm_id;
  if (k->boot_vm && !*k->boot_vm)
    k->boot_vm = "of this migration";
}

int
ec2_cleanup (void *handle, struct pallet_call *call, const char *input_json)
{
  struct ec2 *s = handle;
  struct ec2_input in;
  ec2_begin (s, call);
  if (ec2_input_parse (s, "cleanup", input_json, &in) < 0)
    return PALLET_E_INVALID;
  json_t *state = json_deep_copy (in.state);
  json_t *vols = json_object_get (state, "volumes");
  if (ec2_plan_is_conversion (in.plan)) {
    /* Nothing was made in AWS, and the PVCs are not ours: never delete. */
    json_object_set_new (state, "cleaned", json_true ());
    pallet_log (call, PALLET_LOG_INFO,
                "conversion-only plan: nothing to delete in AWS; the PVCs are kept");
    ec2_emit_state (s, state);
    json_decref (state);
    ec2_input_free (&in);
    return PALLET_OK;
  }
  int rollback = in.rollback || !in.succeeded;
  struct keep k = { 0 };
  keep_init (s, &in, state, rollback, &k);
  struct sweep w = { s, call, in.vm_id ? in.vm_id : in.vm_name, 0, 0, &k };
  struct doomed d = { json_array (), json_array (), json_array () };
  int st;

  doomed_from_state (vols, rollback, &d);
  if (ec2_str (state, "migrationUID")[0] && !*in.migration_uid)
    in.migration_uid = ec2_str (state, "migrationUID");
  if ((st = doomed_by_tag (s, &in, rollback, &d)) != PALLET_OK)
    goto out;
  delete_doomed (&w, &d, rollback, vols);
  if (w.failed) {
    st = w.failed;
    goto out;
  }
  if (rollback && in.vm_id && !strcmp (ec2_str (state, "powerState"), "On")
      && ec2_bool (state, "stopRequested") && !ec2_bool (state, "restarted")
      && (st = restart_source (&w, &in, state)) != PALLET_OK)
    goto out;
  if (w.pending) {
    pallet_retry_after (call, EC2_POLL_MIN_MS);
    st = PALLET_PENDING;
  }
  else
    mark_cleaned (state, vols, rollback, &k);
out:
  ec2_emit_state (s, state);
  json_decref (k.named);
  json_decref (k.retained);
  json_decref (d.src_snaps);
  json_decref (d.tgt_snaps);
  json_decref (d.tgt_vols);
  json_decref (state);
  ec2_input_free (&in);
  return st;
}
