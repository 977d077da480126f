/* SPDX-License-Identifier: Apache-2.0 */
/* Copy transfer mode: after the snapshots complete (the zero-copy path's
 * step 1), each volume's snapshot is copied through the EBS direct APIs
 * (Pallet_ebs_copy) into a sparse raw file, instead of re-creating EBS
 * volumes.  One volume per call (PENDING in between); the copy itself runs
 * inside the call and polls cancel every 100 ms.
 *
 * When: setting transfer-mode ("copy" or "zero-copy") wins; without it,
 * copy when a StorageMap destination storageClass does not contain "ebs"
 * (the destination is not EBS-backed, so EBS volumes are of no use).
 *
 * Where: setting copy-target-dir, else <work.dir>/disks; files are
 * <vm>-disk-<index>.raw, with a journal <file>.journal while copying.
 * Settings: copy-workers (default 8), copy-max-rps (default 950). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ec2.h"
#include "pallet-ebs-copy.h"
#include "warm.h"

static const char *
setting (struct ec2 *s, const char *key)
{
  return json_string_value (json_object_get (json_object_get (s->config, "_settings"), key));
}

int
ec2_copy_mode_wanted (struct ec2 *s, const json_t *plan, const char **why)
{
  const char *m = setting (s, "transfer-mode");
  if (m && *m) {
    *why = "setting transfer-mode";
    if (!strcmp (m, "copy"))
      return 1;
    if (!strcmp (m, "zero-copy"))
      return 0;
    return -1;
  }
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (plan, "storageMap"), i, e) {
    const char *sc = ec2_str (json_object_get (e, "destination"), "storageClass");
    if (*sc && !strstr (sc, "ebs")) {
      *why = "a StorageMap destination storage class without \"ebs\" in its name";
      return 1;
    }
  }
  *why = "the StorageMap's EBS storage classes";
  return 0;
}

static int
mkdirs (const char *dir)
{
  char p[4096];
  if (snprintf (p, sizeof p, "%s", dir) >= (int) sizeof p)
    return -ENAMETOOLONG;
  for (char *q = p + 1; *q; q++)
    if (*q == '/') {
      *q = 0;
      if (mkdir (p, 0700) < 0 && errno != EEXIST)
        return -errno;
      *q = '/';
    }
  if (mkdir (p, 0700) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

struct cctx {
  struct ec2 *s;
  const char *vm;
  char step[64];
};

static int
c_cancelled (void *opaque)
{
  struct cctx *c = opaque;
  return pallet_cancelled (c->s->call);
}

static void
c_progress (void *opaque, uint64_t done, uint64_t total)
{
  struct cctx *c = opaque;
  pallet_progress (c->s->call, c->vm, c->step, done, total, "bytes");
}

static void
c_log (void *opaque, int level, const char *msg)
{
  struct cctx *c = opaque;
  pallet_log (c->s->call, level, "%s: %s", c->vm, msg);
}

/* A file-name-safe VM name. */
static void
vm_file_name (const struct ec2_input *in, char *out, size_t n)
{
  const char *name = ec2_str (in->vm, "targetName");
  if (!*name)
    name = ec2_str (in->vm, "name");
  if (!*name)
    name = ec2_str (json_object_get (in->state, "instance"), "name");
  if (!*name)
    name = in->vm_id ? in->vm_id : "vm";
  snprintf (out, n, "%s", name);
  for (char *p = out; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || *p == '-' || *p == '_' || *p == '.'))
      *p = '-';
  if (out[0] == '.')
    out[0] = '_';
}

/* The directory of the raw files (recorded in the state). */
static int
target_dir (struct ec2 *s, const struct ec2_input *in, json_t *state, char *dbuf, size_t n,
            const char **out)
{
  struct pallet_call *call = s->call;
  const char *dir = setting (s, "copy-target-dir");
  if (!dir || !*dir) {
    const char *work = call->host->get_param (call, "work.dir");
    if (!work || !*work) {
      pallet_error (call, PALLET_E_INVALID,
                    "transfer %s (copy mode): the host gives no work.dir; set the provider "
                    "setting copy-target-dir to where the raw disk files should go",
                    in->vm_id);
      return PALLET_E_INVALID;
    }
    snprintf (dbuf, n, "%s/disks", work);
    dir = dbuf;
  }
  int r = mkdirs (dir);
  if (r < 0) {
    pallet_error (call, PALLET_E_IO,
                  "transfer %s (copy mode): cannot create the target "
                  "directory %s: %s; fix copy-target-dir or its permissions",
                  in->vm_id, dir, strerror (-r));
    return PALLET_E_IO;
  }
  json_object_set_new (state, "transferMode", json_string ("copy"));
  json_object_set_new (state, "copyTargetDir", json_string (dir));
  *out = dir;
  return PALLET_OK;
}

int
ec2_copy_one (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *v, size_t i,
              const char *snap, const char *prev, const char *step,
              struct Pallet_ebs_copy_result *res)
{
  struct pallet_call *call = s->call;
  char path[4200];
  if (!*ec2_str (v, "localPath")) {
    char dbuf[4096], vmname[128];
    const char *dir;
    int st = target_dir (s, in, state, dbuf, sizeof dbuf, &dir);
    if (st != PALLET_OK)
      return st;
    vm_file_name (in, vmname, sizeof vmname);
    snprintf (path, sizeof path, "%s/%s-disk-%zu.raw", dir, vmname, i);
    /* Recorded first: a failed or cancelled copy leaves a file cleanup removes. */
    json_object_set_new (v, "localPath", json_string (path));
  }
  else
    snprintf (path, sizeof path, "%s", ec2_str (v, "localPath"));
  struct Pallet_aws_config cfg = s->src_cfg;
  cfg.log = NULL; /* the workers' threads must not call the host */
  cfg.cancelled = NULL;
  struct cctx cc = { s, in->vm_id, "" };
  snprintf (cc.step, sizeof cc.step, "%s", step);
  const char *w = setting (s, "copy-workers"), *rps = setting (s, "copy-max-rps");
  struct Pallet_ebs_copy_opts o = {
    .aws = &cfg,
    .snapshot_id = snap,
    .prev_snapshot_id = prev,
    .target = path,
    .workers = w ? atoi (w) : 0,
    .max_rps = rps ? atof (rps) : 0,
    .progress = c_progress,
    .cancelled = c_cancelled,
    .log = c_log,
    .opaque = &cc,
  };
  char *err = NULL;
  if (Pallet_ebs_copy (&o, res, &err) < 0) {
    int st = res->status != PALLET_OK ? res->status : PALLET_E_FAILED;
    pallet_error (call, st, "transfer %s: volume %s: %s", in->vm_id, ec2_str (v, "sourceVolumeId"),
                  err ? err : "copy failed");
    free (err);
    return st;
  }
  pallet_log (call, PALLET_LOG_INFO,
              "volume %s -> %s: %s%s%s%s: %llu of %llu "
              "bytes written in %.1f s",
              ec2_str (v, "sourceVolumeId"), path, prev ? "delta " : "full copy of ", snap,
              prev ? " since " : "", prev ? prev : "", (unsigned long long) res->bytes_written,
              (unsigned long long) res->volume_bytes, res->seconds);
  return PALLET_OK;
}

int
ec2_copy_volumes (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols)
{
  struct pallet_call *call = s->call;
  char dbuf[4096];
  const char *dir;
  int st = target_dir (s, in, state, dbuf, sizeof dbuf, &dir);
  if (st != PALLET_OK)
    return st;
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    if (ec2_bool (v, "copied"))
      continue;
    char step[64];
    snprintf (step, sizeof step, "copy disk %zu", i);
    struct Pallet_ebs_copy_result res;
    if ((st = ec2_copy_one (s, in, state, v, i, ec2_str (v, "snapshotId"), NULL, step, &res))
        != PALLET_OK)
      return st;
    json_object_set_new (v, "copied", json_true ());
    json_object_set_new (v, "copiedBytes", json_integer ((json_int_t) res.bytes_written));
    json_object_set_new (v, "volumeBytes", json_integer ((json_int_t) res.volume_bytes));
    json_object_set_new (v, "blocksFetched", json_integer ((json_int_t) res.blocks_fetched));
    json_object_set_new (v, "copySeconds", json_real (res.seconds));
    if (i + 1 < json_array_size (vols)) {
      pallet_retry_after (call, 0);
      return PALLET_PENDING;
    }
  }
  json_object_set_new (state, "transferred", json_true ());
  return PALLET_OK;
}

void
ec2_copy_remove_files (struct ec2 *s, const char *vm, json_t *vols)
{
  size_t i;
  json_t *v;
  json_array_foreach (vols, i, v) {
    const char *p = ec2_str (v, "localPath");
    if (!*p)
      continue;
    char j[4200];
    snprintf (j, sizeof j, "%s.journal", p);
    unlink (j);
    int gone = unlink (p) == 0 || errno == ENOENT;
    ec2_emit_item (s, json_pack ("{s:s,s:s,s:s,s:s,s:s}", "vm", vm, "kind", "file", "id", p,
                                 "region", "local", "action", gone ? "deleted" : "kept"));
    if (!gone)
      pallet_log (s->call, PALLET_LOG_WARNING, "cannot remove %s: %s", p, strerror (errno));
  }
}

/* Cluster mode: a Pod (validate.py covers Pod, not batch/v1 Job) that runs
 * pallet-ebs-copy once per disk, each container with its PVC attached as a
 * raw block device and its journal on an emptyDir.  Credentials come
 * from the plan's source Secret by
 * secretKeyRef, never inline.  Settings: copy-image. */
json_t *
ec2_copy_pod (struct ec2 *s, const struct ec2_input *in, const json_t *manifests)
{
  const char *image = setting (s, "copy-image");
  if (!image || !*image)
    image = "quay.io/pallet/pallet-ebs-copy:latest";
  const json_t *secret = json_object_get (json_object_get (in->plan, "source"), "secretRef");
  const char *secret_name = ec2_str (secret, "name");
  const char *vm_name = NULL, *ns = NULL;
  json_t *containers = json_array (), *volumes = json_array ();
  size_t i, k = 0;
  json_t *m;
  json_array_foreach (manifests, i, m) {
    const json_t *md = json_object_get (m, "metadata");
    if (!strcmp (ec2_str (m, "kind"), "VirtualMachine"))
      vm_name = ec2_str (md, "name");
    if (strcmp (ec2_str (m, "kind"), "PersistentVolumeClaim"))
      continue;
    ns = ec2_str (md, "namespace");
    const char *src =
        ec2_str (json_object_get (md, "annotations"), "forklift.konveyor.io/original-volume-id");
    const char *snap = "";
    size_t j;
    json_t *v;
    json_array_foreach (json_object_get (in->state, "volumes"), j, v)
      if (!strcmp (ec2_str (v, "sourceVolumeId"), src))
        snap = ec2_str (v, "snapshotId");
    char vname[32], dev[48], cname[32];
    snprintf (vname, sizeof vname, "disk-%zu", k);
    snprintf (cname, sizeof cname, "copy-disk-%zu", k);
    snprintf (dev, sizeof dev, "/dev/pallet-disk-%zu", k);
    k++;
    json_t *env =
        json_pack ("[{s:s,s:s}]", "name", "AWS_REGION", "value", Pallet_aws_region (s->src));
    const char *ep = Pallet_aws_endpoint (s->src, PALLET_AWS_EBS);
    if (ep && !strstr (ep, ".amazonaws.com"))
      json_array_append_new (env,
                             json_pack ("{s:s,s:s}", "name", "AWS_ENDPOINT_URL_EBS", "value", ep));
    if (*secret_name) {
      static const char *const keys[][2] = { { "AWS_ACCESS_KEY_ID", "accessKeyId" },
                                             { "AWS_SECRET_ACCESS_KEY", "secretAccessKey" } };
      for (int e = 0; e < 2; e++)
        json_array_append_new (env,
                               json_pack ("{s:s,s:{s:{s:s,s:s}}}", "name", keys[e][0], "valueFrom",
                                          "secretKeyRef", "name", secret_name, "key", keys[e][1]));
    }
    char journal[96];
    snprintf (journal, sizeof journal, "/var/lib/pallet/%s.journal", vname);
    json_array_append_new (containers,
                           json_pack ("{s:s,s:s,s:[s,s,s,s,s,s,s],s:o,s:[{s:s,s:s}],s:[{s:s,s:s}]}",
                                      "name", cname, "image", image, "command", "pallet-ebs-copy",
                                      "--snapshot", snap, "--target", dev, "--journal", journal,
                                      "env", env, "volumeDevices", "name", vname, "devicePath", dev,
                                      "volumeMounts", "name", "copy-journal", "mountPath",
                                      "/var/lib/pallet"));
    json_array_append_new (volumes,
                           json_pack ("{s:s,s:{s:s}}", "name", vname, "persistentVolumeClaim",
                                      "claimName", ec2_str (md, "name")));
  }
  /* The journals live as long as the Pod: a restarted container
   * (restartPolicy OnFailure) copies only the blocks not yet done. */
  json_array_append_new (volumes, json_pack ("{s:s,s:{}}", "name", "copy-journal", "emptyDir"));
  char name[64];
  snprintf (name, sizeof name, "%.54s-ebs-copy", vm_name && *vm_name ? vm_name : "vm");
  return json_pack ("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s}},s:{s:s,s:o,s:o}}", "apiVersion", "v1", "kind",
                    "Pod", "metadata", "name", name, "namespace", ns && *ns ? ns : "default",
                    "labels", "app.kubernetes.io/managed-by", "pallet",
                    "forklift.konveyor.io/vm-id", in->vm_id ? in->vm_id : "", "spec",
                    "restartPolicy", "OnFailure", "containers", containers, "volumes", volumes);
}
