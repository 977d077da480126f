/* SPDX-License-Identifier: Apache-2.0 */
/* Warm migration (plan type warm, copy mode only).
 *
 * The source keeps running while transfer copies it in rounds: round 0
 * snapshots every volume (CreateSnapshots, crash-consistent) and copies it
 * in full; each later round takes a new snapshot and copies only the
 * blocks ListChangedBlocks names against the previous one (a block with
 * no SecondBlockToken is zeroed).  Between rounds transfer returns PENDING
 * with the precopy interval (setting precopy-interval, seconds, default
 * 3600).  Once options.cutover is true (and the round in progress is
 * done) it stops the instance, waits until it is stopped, runs one last
 * round and returns OK: the downtime is from the stop to the end of that
 * round.
 *
 * State (state.warm): round (the round in progress, absent between
 * rounds), rounds (done), nextRoundAt, cutover, stoppedAt, lastDeltaDoneAt,
 * downtimeSeconds, bytesPerRound[], roundsDetail[], obsoleteSnapshots[].
 * Per volume: snapshotId (what the raw file equals), roundSnapshotId,
 * roundSnapshotState, roundCopied.
 *
 * Crash safety: a round's snapshots carry the round tag, so a rerun finds
 * them before creating new ones; the copy resumes from its journal; a
 * delta applied twice gives the same file.  The previous round's snapshot
 * is deleted only in the call after the state naming its successor was
 * saved, so a resumed delta never lacks its base. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "warm.h"

#define WARM_DEFAULT_INTERVAL 3600.0
#define WARM_POLL_MIN_MS      500

int
ec2_plan_is_warm (const json_t *plan)
{
  return !strcmp (ec2_str (plan, "type"), "warm");
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *
iso (double t)
{
  time_t sec = (time_t) t;
  struct tm tm;
  char buf[64];
  gmtime_r (&sec, &tm);
  snprintf (buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            (int) ((t - (double) sec) * 1000));
  return json_string (buf);
}

/* Waits in a warm migration poll faster than the cold ones at first: at
 * cutover every second is downtime. */
static uint32_t
warm_poll_ms (json_t *w, const char *counter)
{
  return ec2_poll_ms_from (w, counter, WARM_POLL_MIN_MS);
}

/* Setting precopy-interval: seconds, a string or a number. */
static int
precopy_interval (struct ec2 *s, const struct ec2_input *in, double *out)
{
  json_t *v = json_object_get (json_object_get (s->config, "_settings"), "precopy-interval");
  *out = WARM_DEFAULT_INTERVAL;
  if (!v || json_is_null (v))
    return PALLET_OK;
  char *end = NULL;
  double d = json_is_number (v)   ? json_number_value (v)
             : json_is_string (v) ? strtod (json_string_value (v), &end)
                                  : -1;
  if ((json_is_string (v) && (end == json_string_value (v) || *end)) || !(d > 0) || d > 7 * 86400) {
    pallet_error (s->call, PALLET_E_INVALID,
                  "transfer %s: setting precopy-interval must be a number of seconds "
                  "between 0 and 604800 (a week), e.g. \"3600\"",
                  in->vm_id);
    return PALLET_E_INVALID;
  }
  *out = d;
  return PALLET_OK;
}

static int
snapshot_gone (struct Pallet_aws_client *c)
{
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  return e && e->code && !strcmp (e->code, "InvalidSnapshot.NotFound");
}

/* Deletes the snapshots listed in w.obsoleteSnapshots (saved by an earlier
 * call); what is gone already counts as deleted. */
static int
delete_obsolete (struct ec2 *s, const struct ec2_input *in, json_t *w)
{
  json_t *list = json_object_get (w, "obsoleteSnapshots");
  while (json_array_size (list) > 0) {
    const char *id = json_string_value (json_array_get (list, 0));
    if (id && *id && Pallet_aws_ec2_delete_snapshot (s->src, id) < 0 && !snapshot_gone (s->src))
      return ec2_aws_fail (s, s->src, "deleting the snapshot of an earlier warm round");
    if (id && *id) {
      ec2_emit_item (s, json_pack ("{s:s,s:s,s:s,s:s,s:s}", "vm", in->vm_id, "kind", "snapshot",
                                   "id", id, "region", s->region, "action", "deleted"));
      pallet_log (s->call, PALLET_LOG_INFO, "snapshot %s of an earlier round deleted", id);
    }
    json_array_remove (list, 0);
  }
  return PALLET_OK;
}

/* The cutover stop: PALLET_OK once the instance is stopped. */
static int
warm_stop (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *w)
{
  if (ec2_bool (state, "stopped"))
    return PALLET_OK;
  json_t *inst = NULL;
  int st = ec2_describe_instance (s, in->vm_id, NULL, &inst);
  if (st != PALLET_OK)
    return st;
  const char *name = ec2_str (json_object_get (inst, "instanceState"), "name");
  int on = !strcmp (ec2_str (state, "powerState"), "On");
  /* Stopping or stopped after being On: our StopInstances, sent before a
   * crash kept it out of the state. */
  if (on && (!strcmp (name, "stopping") || !strcmp (name, "stopped")))
    json_object_set_new (state, "stopRequested", json_true ());
  if (!json_object_get (w, "stoppedAt")) {
    double t = now_s ();
    json_object_set_new (w, "stoppedAt", iso (t));
    json_object_set_new (w, "stoppedAtEpoch", json_real (t));
  }
  if (!strcmp (name, "stopped")) {
    json_object_set_new (state, "stopped", json_true ());
    json_object_set_new (w, "stoppedObservedAt", iso (now_s ()));
    json_decref (inst);
    return PALLET_OK;
  }
  if (!strcmp (name, "terminated") || !strcmp (name, "shutting-down")) {
    pallet_error (s->call, PALLET_E_CONFLICT,
                  "transfer %s (warm cutover): the instance is %s; "
                  "it cannot be migrated",
                  in->vm_id, name);
    json_decref (inst);
    return PALLET_E_CONFLICT;
  }
  if ((!strcmp (name, "running") || !strcmp (name, "pending"))
      && !ec2_bool (state, "stopRequested")) {
    const char *ids[] = { in->vm_id };
    if (Pallet_aws_ec2_stop_instances (s->src, ids, 1, 0, NULL) < 0) {
      json_decref (inst);
      return ec2_aws_fail (s, s->src, "stopping the instance for the warm cutover");
    }
    double t = now_s ();
    json_object_set_new (state, "stopRequested", json_true ());
    json_object_set_new (w, "stoppedAt", iso (t));
    json_object_set_new (w, "stoppedAtEpoch", json_real (t));
    pallet_log (s->call, PALLET_LOG_INFO, "cutover: StopInstances sent");
  }
  json_decref (inst);
  pallet_retry_after (s->call, warm_poll_ms (w, "stopPolls"));
  return PALLET_PENDING;
}

/* Round n's snapshots exist (found by tag, or created) and are complete. */
static int
round_snapshots (struct ec2 *s, const struct ec2_input *in, json_t *vols, json_t *w,
                 const char *round)
{
  size_t i, missing = 0;
  json_t *v;
  json_array_foreach (vols, i, v)
    missing += !*ec2_str (v, "roundSnapshotId");
  if (missing) {
    int st = ec2_snapshots_find (s, in, vols, "roundSnapshotId", round);
    if (st != PALLET_OK)
      return st;
    size_t found = 0;
    json_array_foreach (vols, i, v)
      found += *ec2_str (v, "roundSnapshotId") != 0;
    if (found == 0
        && (st = ec2_snapshots_create (s, in, vols, "roundSnapshotId", round)) != PALLET_OK)
      return st;
    missing = 0;
    json_array_foreach (vols, i, v)
      missing += !*ec2_str (v, "roundSnapshotId");
    if (missing) {
      pallet_error (s->call, PALLET_E_FAILED,
                    "transfer %s: CreateSnapshots (warm round %s) did not cover %zu of the "
                    "instance's volumes; were volumes attached or detached during the "
                    "migration? Cancel it and start again",
                    in->vm_id, round, missing);
      return PALLET_E_FAILED;
    }
  }
  int done = 0;
  int st = ec2_snapshots_wait (s, s->src, in, vols, "roundSnapshotId", "roundSnapshotState",
                               "waiting for snapshots", &done);
  if (st != PALLET_OK)
    return st;
  if (!done) {
    pallet_retry_after (s->call, warm_poll_ms (w, "snapshotPolls"));
    return PALLET_PENDING;
  }
  return PALLET_OK;
}

/* The round's snapshots become the base of the raw files; the old base
 * snapshots are deleted by the next call. */
static void
finish_round (struct ec2 *s, const struct ec2_input *in, json_t *vols, json_t *w, long long rnd,
              int final)
{
  json_t *obsolete = json_object_get (w, "obsoleteSnapshots");
  if (!json_is_array (obsolete)) {
    obsolete = json_array ();
    json_object_set_new (w, "obsoleteSnapshots", obsolete);
  }
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    const char *old = ec2_str (v, "snapshotId");
    if (*old && strcmp (old, ec2_str (v, "roundSnapshotId")))
      json_array_append_new (obsolete, json_string (old));
    json_object_set (v, "snapshotId", json_object_get (v, "roundSnapshotId"));
    json_object_set_new (v, "snapshotState", json_string ("completed"));
    json_object_set_new (v, "copied", json_true ());
    json_object_del (v, "roundSnapshotId");
    json_object_del (v, "roundSnapshotState");
    json_object_del (v, "roundCopied");
  }
  double t = now_s ();
  json_t *cur = json_object_get (w, "current");
  json_int_t bytes = json_integer_value (json_object_get (cur, "bytes"));
  json_t *detail = json_deep_copy (cur ? cur : json_null ());
  if (!json_is_object (detail)) {
    json_decref (detail);
    detail = json_object ();
  }
  json_object_set_new (detail, "round", json_integer (rnd));
  json_object_set_new (detail, "final", json_boolean (final));
  json_object_set_new (detail, "seconds",
                       json_real (t - json_real_value (json_object_get (w, "roundStartedEpoch"))));
  json_array_append_new (json_object_get (w, "bytesPerRound"), json_integer (bytes));
  json_array_append_new (json_object_get (w, "roundsDetail"), detail);
  json_object_set_new (w, "rounds", json_integer (rnd + 1));
  json_object_del (w, "round");
  json_object_del (w, "current");
  json_object_del (w, "snapshotPolls");
  pallet_log (s->call, PALLET_LOG_INFO, "transfer %s: warm round %lld done (%s): %lld bytes",
              in->vm_id, rnd,
              rnd == 0 ? "full copy"
              : final  ? "final delta"
                       : "delta",
              (long long) bytes);
  if (final) {
    json_object_set_new (w, "lastDeltaDoneAt", iso (t));
    double stopped = json_real_value (json_object_get (w, "stoppedAtEpoch"));
    double down = t - stopped;
    json_object_set_new (w, "downtimeSeconds",
                         json_real ((double) (long long) (down * 1000 + 0.5) / 1000));
    json_object_set_new (w, "done", json_true ());
    pallet_log (s->call, PALLET_LOG_INFO,
                "transfer %s: warm cutover done: downtime %.3f s "
                "over %lld rounds",
                in->vm_id, down, rnd + 1);
  }
}

static void
add_count (json_t *cur, const char *key, uint64_t n)
{
  json_object_set_new (
      cur, key, json_integer (json_integer_value (json_object_get (cur, key)) + (json_int_t) n));
}

static void
emit_result (struct ec2 *s, json_t *w)
{
  json_t *r = json_pack (
      "{s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "mode", "warm", "rounds",
      json_object_get (w, "rounds"), "downtimeSeconds", json_object_get (w, "downtimeSeconds"),
      "stoppedAt", json_object_get (w, "stoppedAt"), "lastDeltaDoneAt",
      json_object_get (w, "lastDeltaDoneAt"), "bytesPerRound", json_object_get (w, "bytesPerRound"),
      "roundsDetail", json_object_get (w, "roundsDetail"));
  char *t = r ? json_dumps (r, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (t)
    pallet_emit (s->call, PALLET_EMIT_RESULT, t);
  free (t);
  json_decref (r);
}

/* state.warm, created on the first call. */
static json_t *
warm_record (json_t *state)
{
  json_t *w = json_object_get (state, "warm");
  if (!json_is_object (w)) {
    w = json_pack ("{s:i,s:[],s:[],s:[]}", "rounds", 0, "bytesPerRound", "roundsDetail",
                   "obsoleteSnapshots");
    json_object_set_new (state, "warm", w);
  }
  return w;
}

/* Between rounds: wait for the next one, or cut over; then open round
 * number ROUNDS in w. */
static int
start_round (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *w, long long rounds,
             int cut)
{
  struct pallet_call *call = s->call;
  int st;
  if (rounds > 0 && !cut) {
    double wait = json_number_value (json_object_get (w, "nextRoundAtEpoch")) - now_s ();
    if (wait > 0) {
      pallet_retry_after (call, (uint32_t) (wait * 1000 + 1));
      return PALLET_PENDING;
    }
  }
  if (rounds > 0 && cut) {
    if (!ec2_bool (w, "cutover")) {
      json_object_set_new (w, "cutover", json_true ());
      json_object_set_new (w, "cutoverAt", iso (now_s ()));
      pallet_log (call, PALLET_LOG_INFO, "transfer %s: cutover after %lld rounds", in->vm_id,
                  rounds);
    }
    if ((st = warm_stop (s, in, state, w)) != PALLET_OK)
      return st;
    json_object_set_new (w, "final", json_true ());
  }
  double t = now_s ();
  json_object_set_new (w, "round", json_integer (rounds));
  json_object_set_new (w, "roundStartedAt", iso (t));
  json_object_set_new (w, "roundStartedEpoch", json_real (t));
  json_object_set_new (w, "current",
                       json_pack ("{s:i,s:i,s:i,s:i}", "bytes", 0, "blocksChanged", 0,
                                  "blocksFetched", 0, "blocksZeroed", 0));
  return PALLET_OK;
}

/* Copies the round's changes into the raw files, one volume per call (the
 * state is saved in between): PENDING until the last one is copied. */
static int
copy_round_volumes (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols,
                    json_t *w, long long round, int final)
{
  struct pallet_call *call = s->call;
  int st;
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    if (ec2_bool (v, "roundCopied"))
      continue;
    char step[64];
    snprintf (step, sizeof step, "%s disk %zu",
              round == 0 ? "precopy full"
              : final    ? "cutover delta"
                         : "precopy delta",
              i);
    const char *prev = round == 0 ? NULL : ec2_str (v, "snapshotId");
    if (prev && !*prev) {
      pallet_error (call, PALLET_E_CONFLICT,
                    "transfer %s: volume %s has no snapshot of an "
                    "earlier warm round to copy the changes against; roll back with "
                    "`pallet cleanup` and start again",
                    in->vm_id, ec2_str (v, "sourceVolumeId"));
      return PALLET_E_CONFLICT;
    }
    struct Pallet_ebs_copy_result res;
    memset (&res, 0, sizeof res);
    if ((st = ec2_copy_one (s, in, state, v, i, ec2_str (v, "roundSnapshotId"), prev, step, &res))
        != PALLET_OK)
      return st;
    json_t *cur = json_object_get (w, "current");
    add_count (cur, "bytes", res.bytes_written);
    add_count (cur, "blocksChanged", res.blocks_listed);
    add_count (cur, "blocksFetched", res.blocks_fetched);
    add_count (cur, "blocksZeroed", res.blocks_zeroed);
    json_object_set_new (v, "roundCopied", json_true ());
    json_object_set_new (v, "volumeBytes", json_integer ((json_int_t) res.volume_bytes));
    if (i + 1 < json_array_size (vols)) {
      pallet_retry_after (call, 0);
      return PALLET_PENDING;
    }
  }
  return PALLET_OK;
}

int
ec2_warm_transfer (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols)
{
  struct pallet_call *call = s->call;
  double interval;
  int st = precopy_interval (s, in, &interval);
  if (st != PALLET_OK)
    return st;
  json_t *w = warm_record (state);
  /* The old bases, now that the state naming the new ones is saved. */
  if ((st = delete_obsolete (s, in, w)) != PALLET_OK)
    return st;
  if (ec2_bool (w, "done")) {
    json_object_set_new (state, "transferred", json_true ());
    emit_result (s, w);
    return PALLET_OK;
  }
  long long rounds = ec2_int (w, "rounds", 0);
  int cut = ec2_bool (w, "cutover") || ec2_bool (in->options, "cutover");
  if (!json_object_get (w, "round")
      && (st = start_round (s, in, state, w, rounds, cut)) != PALLET_OK)
    return st;
  long long round = ec2_int (w, "round", 0);
  int final = ec2_bool (w, "final");
  /* The final round has its own tag: snapshots a crash hid from the state
   * were taken while the source ran and must not be taken for it. */
  char rtag[32];
  snprintf (rtag, sizeof rtag, "%lld%s", round, final ? "-final" : "");
  if ((st = round_snapshots (s, in, vols, w, rtag)) != PALLET_OK)
    return st;
  if ((st = copy_round_volumes (s, in, state, vols, w, round, final)) != PALLET_OK)
    return st;

  finish_round (s, in, vols, w, round, final);
  if (final) {
    json_object_set_new (state, "transferred", json_true ());
    /* The next call deletes the old bases and returns OK. */
    pallet_retry_after (call, 0);
    return PALLET_PENDING;
  }
  double next = now_s () + interval;
  json_object_set_new (w, "nextRoundAt", iso (next));
  json_object_set_new (w, "nextRoundAtEpoch", json_real (next));
  /* Deleting the old bases needs the new state saved first, and a cutover
   * asked for during this round starts now: come back at once for those,
   * else wait out the interval. */
  pallet_retry_after (call, cut || json_array_size (json_object_get (w, "obsoleteSnapshots"))
                                ? 0
                                : (uint32_t) (interval * 1000));
  return PALLET_PENDING;
}
