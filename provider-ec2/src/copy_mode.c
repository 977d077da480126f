/* SPDX-License-Identifier: Apache-2.0 */
/* Copy transfer mode: after the snapshots complete (the zero-copy path's
 * step 1), each volume's snapshot is copied through the EBS direct APIs
 * (Pallet_ebs_copy) into a sparse raw file, instead of re-creating EBS
 * volumes.  One volume per call (PENDING in between); the copy itself runs
 * inside the call and polls cancel every 100 ms.
 *
 * When: setting transfer-mode ("copy" or "zero-copy") wins; without it,
 * copy when a StorageMap destination StorageClass, read from the cluster
 * (kube-api-url), is not of the EBS CSI driver (EBS volumes are of no use
 * there); with no cluster to ask, zero copy (ec2_copy_mode_wanted).
 *
 * Where: setting copy-target-dir, else <work.dir>/disks; files are
 * <vm>-disk-<index>.raw, with a journal <file>.journal while copying.
 * Settings: copy-workers (default 8), copy-max-rps (default 950).
 *
 * In a cluster, the copy Pod does the same from the snapshots into the
 * PVCs (ec2_copy_pod_items). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ec2.h"
#include "pallet-ebs-copy.h"
#include "pallet-ec2-manifest.h"
#include "pallet-kube.h"
#include "warm.h"

static const char *
setting (struct ec2 *s, const char *key)
{
  return json_string_value (json_object_get (json_object_get (s->config, "_settings"), key));
}

/* ---- which transfer mode: from facts, never from a name ---- */

#define EBS_CSI "ebs.csi.aws.com"

static int
decided (struct ec2 *s, int mode, char *why)
{
  s->transfer_mode = mode;
  free (s->transfer_why);
  s->transfer_why = why ? why : strdup ("out of memory");
  return mode;
}

/* The provisioner of StorageClass name, by GET from the cluster.  Returns
 * a pallet status; *prov (malloc'd) or *err (malloc'd). */
static int
sc_provisioner (struct ec2 *s, struct Pallet_kube *k, const char *name, char **prov, char **err)
{
  (void) s;
  json_t *sc = NULL;
  int st = Pallet_kube_get (k, "storage.k8s.io/v1", "StorageClass", NULL, name, &sc, err);
  if (st == PALLET_OK) {
    *prov = strdup (ec2_str (sc, "provisioner"));
    json_decref (sc);
  }
  return st;
}

/* From the StorageMap's classes as the cluster has them: any class not
 * of the EBS CSI driver needs the data copied.  -2: cannot tell (*why
 * says why, for the fallback). */
static int
mode_from_cluster (struct ec2 *s, const json_t *plan, char **why)
{
  struct Pallet_kube_config kc;
  ec2_kube_config (s, &kc);
  kc.timeout_ms = 10000;
  char *err = NULL;
  struct Pallet_kube *k = Pallet_kube_new (&kc, &err);
  int mode = -2;
  size_t i, n = 0;
  json_t *e;
  if (!k) {
    if (asprintf (why, "the cluster (setting kube-api-url) cannot be used: %s",
                  err ? err : "out of memory")
        < 0)
      *why = NULL;
    free (err);
    return -2;
  }
  char ebs[512] = "";
  json_array_foreach (json_object_get (plan, "storageMap"), i, e) {
    const char *sc = ec2_str (json_object_get (e, "destination"), "storageClass");
    char *prov = NULL;
    if (!*sc)
      continue;
    if (sc_provisioner (s, k, sc, &prov, &err) != PALLET_OK) {
      if (asprintf (why, "the StorageClass %s could not be read from the cluster: %s", sc,
                    err ? err : "failed")
          < 0)
        *why = NULL;
      free (err);
      mode = -2;
      break;
    }
    if (strcmp (prov, EBS_CSI)) {
      if (asprintf (why,
                    "the cluster's StorageClass %s has provisioner %s, not " EBS_CSI
                    ": the data is copied into its PVCs",
                    sc, *prov ? prov : "(none)")
          < 0)
        *why = NULL;
      free (prov);
      mode = 1;
      break;
    }
    free (prov);
    size_t l = strlen (ebs);
    snprintf (ebs + l, sizeof ebs - l, "%s%s", n++ ? ", " : "", sc);
    mode = 0;
  }
  if (mode == 0
      && asprintf (why,
                   "the cluster's StorageClass%s %s %s provisioner " EBS_CSI
                   ": the EBS volumes are handed over as they are",
                   n > 1 ? "es" : "", ebs, n > 1 ? "have" : "has")
             < 0)
    *why = NULL;
  if (mode == -2 && !*why && asprintf (why, "the StorageMap names no storage class") < 0)
    *why = NULL;
  Pallet_kube_free (k);
  return mode;
}

/* The transfer mode, decided once per session: the setting transfer-mode
 * when given (the user's word wins: e.g. copy mode for warm migration to
 * an EBS cluster); else the provisioners of the StorageMap's classes,
 * read from the cluster (setting kube-api-url); else, or when they
 * cannot be read, zero copy (Forklift's behaviour). */
int
ec2_copy_mode_wanted (struct ec2 *s, const json_t *plan, const char **why)
{
  if (s->transfer_mode != EC2_MODE_UNDECIDED) {
    *why = s->transfer_why;
    return s->transfer_mode;
  }
  const char *m = setting (s, "transfer-mode");
  char *w = NULL;
  if (m && *m) {
    if (!strcmp (m, "copy") || !strcmp (m, "zero-copy"))
      decided (s, !strcmp (m, "copy"), strdup ("the setting transfer-mode"));
    else if (asprintf (&w, "setting transfer-mode is \"%.64s\"; use \"copy\" or \"zero-copy\"%s", m,
                       ec2_edit_distance (m, "zero-copy") <= 3 ? " (did you mean \"zero-copy\"?)"
                       : ec2_edit_distance (m, "copy") <= 2    ? " (did you mean \"copy\"?)"
                                                               : "")
             >= 0)
      decided (s, -1, w);
    else
      decided (s, -1, NULL);
  }
  else if (s->kube_api_url) {
    int mode = mode_from_cluster (s, plan, &w);
    if (mode == -2) {
      char *fb = NULL;
      if (asprintf (&fb,
                    "%s; zero copy, Forklift's default (set transfer-mode to copy or zero-copy "
                    "to decide without the cluster)",
                    w ? w : "the cluster could not be asked")
          < 0)
        fb = NULL;
      free (w);
      decided (s, 0, fb);
    }
    else
      decided (s, mode, w);
  }
  else
    decided (s, 0,
             strdup ("no transfer-mode setting and no cluster to read the StorageClasses from "
                     "(kube-api-url): zero copy, Forklift's default"));
  *why = s->transfer_why;
  return s->transfer_mode;
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

/* ---- Cluster mode: the copy Pod and its credentials ---- */

/* "<vm>-<suffix>", the VM part cut so it stays a DNS-1123 label. */
static void
object_name (const char *vm, const char *suffix, char out[64])
{
  size_t n = strlen (vm), max = 63 - strlen (suffix) - 1;
  if (n > max)
    n = max;
  while (n > 0 && vm[n - 1] == '-')
    n--;
  snprintf (out, 64, "%.*s-%s", (int) n, *vm ? vm : "vm", suffix);
}

/* Forklift's keys (plan, migration, vmID), so a cleanup finds them, and
 * the stage of the build_vm contract. */
static json_t *
item_labels (const struct ec2_input *in, const char *stage)
{
  json_t *l = json_pack ("{s:s,s:s}", "app.kubernetes.io/managed-by", "pallet",
                         PALLET_EC2_STAGE_LABEL, stage);
  if (in->vm_id && *in->vm_id) {
    json_object_set_new (l, "forklift.konveyor.io/vm-id", json_string (in->vm_id));
    json_object_set_new (l, "vmID", json_string (in->vm_id));
  }
  if (*in->plan_uid && Pallet_ec2_is_label_value (in->plan_uid))
    json_object_set_new (l, "plan", json_string (in->plan_uid));
  if (*in->migration_uid)
    json_object_set_new (l, "migration", json_string (in->migration_uid));
  return l;
}

/* The copy Pod's AWS credentials: a Secret Pallet writes into the target
 * namespace (the Pod's own; a Pod cannot read a Secret of another), with
 * the session token when the credentials have one.  Keys are the
 * variables' names, for envFrom.  NULL with *err when there are none. */
static json_t *
credentials_secret (struct ec2 *s, const struct ec2_input *in, const char *name, const char *ns,
                    char **err)
{
  const char *akid = NULL, *sak = NULL, *tok = NULL;
  Pallet_aws_credentials (s->src, &akid, &sak, &tok);
  if (!akid || !*akid || !sak || !*sak) {
    if (asprintf (err, "the copy Pod needs AWS credentials and the provider has none to give it; "
                       "give the Provider's Secret accessKeyId and secretAccessKey, or set "
                       "copy-service-account to a service account that has them (IRSA)")
        < 0)
      *err = NULL;
    return NULL;
  }
  json_t *data = json_pack ("{s:s,s:s}", "AWS_ACCESS_KEY_ID", akid, "AWS_SECRET_ACCESS_KEY", sak);
  if (tok)
    json_object_set_new (data, "AWS_SESSION_TOKEN", json_string (tok));
  /* Temporary: the host of --apply deletes it once the copy Pod is done,
   * so no AWS key outlives the copy in the cluster. */
  json_t *labels = item_labels (in, "storage");
  json_object_set_new (labels, "pallet.dev/temporary", json_string ("true"));
  return json_pack ("{s:s,s:s,s:{s:s,s:s,s:o},s:s,s:o}", "apiVersion", "v1", "kind", "Secret",
                    "metadata", "name", name, "namespace", ns, "labels", labels, "type", "Opaque",
                    "stringData", data);
}

/* One container: pallet-ebs-copy from the disk's snapshot into its PVC. */
static json_t *
copy_container (struct ec2 *s, const char *image, size_t k, const char *snap, json_t *env_from)
{
  char dev[48], cname[32], journal[96];
  snprintf (cname, sizeof cname, "copy-disk-%zu", k);
  snprintf (dev, sizeof dev, "/dev/pallet-disk-%zu", k);
  snprintf (journal, sizeof journal, "/var/lib/pallet/disk-%zu.journal", k);
  json_t *env =
      json_pack ("[{s:s,s:s}]", "name", "AWS_REGION", "value", Pallet_aws_region (s->src));
  const char *ep = Pallet_aws_endpoint (s->src, PALLET_AWS_EBS);
  if (ep && !strstr (ep, ".amazonaws.com"))
    json_array_append_new (env,
                           json_pack ("{s:s,s:s}", "name", "AWS_ENDPOINT_URL_EBS", "value", ep));
  char vname[32];
  snprintf (vname, sizeof vname, "disk-%zu", k);
  /* Root to open the block device (kubelet makes it root:disk 0660);
   * nothing more: no capability, no privilege escalation. */
  json_t *c =
      json_pack ("{s:s,s:s,s:[s,s,s,s,s,s,s],s:o,s:[{s:s,s:s}],s:[{s:s,s:s}],"
                 "s:{s:b,s:b,s:i,s:b,s:{s:[s]}}}",
                 "name", cname, "image", image, "command", "pallet-ebs-copy", "--snapshot", snap,
                 "--target", dev, "--journal", journal, "env", env, "volumeDevices", "name", vname,
                 "devicePath", dev, "volumeMounts", "name", "copy-journal", "mountPath",
                 "/var/lib/pallet", "securityContext", "allowPrivilegeEscalation", 0, "privileged",
                 0, "runAsUser", 0, "readOnlyRootFilesystem", 1, "capabilities", "drop", "ALL");
  if (c && env_from)
    json_object_set (c, "envFrom", env_from);
  return c;
}

/* The snapshot the disk of a PVC is copied from. */
static const char *
pvc_snapshot (const struct ec2_input *in, const json_t *md)
{
  const char *src =
      ec2_str (json_object_get (md, "annotations"), "forklift.konveyor.io/original-volume-id");
  size_t j;
  json_t *v;
  json_array_foreach (json_object_get (in->state, "volumes"), j, v)
    if (!strcmp (ec2_str (v, "sourceVolumeId"), src))
      return ec2_str (v, "snapshotId");
  return "";
}

/* Cluster mode: a Pod (validate.py covers Pod, not batch/v1 Job) that runs
 * pallet-ebs-copy once per disk, each container with its PVC attached as a
 * raw block device and its journal on an emptyDir; before it, the Secret
 * of its credentials (none with copy-service-account).  Settings:
 * copy-image, copy-service-account.  Appends to manifests. */
int
ec2_copy_pod_items (struct ec2 *s, const struct ec2_input *in, json_t *manifests)
{
  const char *image = setting (s, "copy-image");
  const char *sa = setting (s, "copy-service-account");
  if (!image || !*image)
    image = EC2_COPY_DEFAULT_IMAGE;
  const char *vm_name = "", *ns = "";
  size_t i;
  json_t *m;
  json_array_foreach (manifests, i, m) {
    const json_t *md = json_object_get (m, "metadata");
    if (!strcmp (ec2_str (m, "kind"), "VirtualMachine"))
      vm_name = ec2_str (md, "name");
    if (!strcmp (ec2_str (m, "kind"), "PersistentVolumeClaim"))
      ns = ec2_str (md, "namespace");
  }
  char pod_name[64], secret_name[64];
  object_name (vm_name, "ebs-copy", pod_name);
  object_name (vm_name, "ebs-copy-aws", secret_name);
  if (!*ns)
    ns = "default";
  json_t *secret = NULL, *env_from = NULL;
  if (!sa || !*sa) {
    char *err = NULL;
    if (!(secret = credentials_secret (s, in, secret_name, ns, &err))) {
      pallet_error (s->call, PALLET_E_INVALID, "build_vm %s: %s", in->vm_id ? in->vm_id : "",
                    err ? err : "out of memory");
      free (err);
      return PALLET_E_INVALID;
    }
    env_from = json_pack ("[{s:{s:s}}]", "secretRef", "name", secret_name);
  }
  json_t *containers = json_array (), *volumes = json_array ();
  size_t k = 0;
  json_array_foreach (manifests, i, m) {
    const json_t *md = json_object_get (m, "metadata");
    if (strcmp (ec2_str (m, "kind"), "PersistentVolumeClaim"))
      continue;
    char vname[32];
    snprintf (vname, sizeof vname, "disk-%zu", k);
    json_array_append_new (containers,
                           copy_container (s, image, k++, pvc_snapshot (in, md), env_from));
    json_array_append_new (volumes,
                           json_pack ("{s:s,s:{s:s}}", "name", vname, "persistentVolumeClaim",
                                      "claimName", ec2_str (md, "name")));
  }
  json_decref (env_from);
  /* The journals live as long as the Pod: a restarted container
   * (restartPolicy OnFailure) copies only the blocks not yet done. */
  json_array_append_new (volumes, json_pack ("{s:s,s:{}}", "name", "copy-journal", "emptyDir"));
  json_t *pod = json_pack ("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:s,s:b,s:b,s:o,s:o,s:{s:{s:s}}}}",
                           "apiVersion", "v1", "kind", "Pod", "metadata", "name", pod_name,
                           "namespace", ns, "labels", item_labels (in, "copy"), "spec",
                           "restartPolicy", "OnFailure", "automountServiceAccountToken", 0,
                           "enableServiceLinks", 0, "containers", containers, "volumes", volumes,
                           "securityContext", "seccompProfile", "type", "RuntimeDefault");
  if (!pod) {
    json_decref (secret);
    pallet_error (s->call, PALLET_E_NOMEM, "build_vm: out of memory building the copy Pod");
    return PALLET_E_NOMEM;
  }
  if (sa && *sa)
    json_object_set_new (json_object_get (pod, "spec"), "serviceAccountName", json_string (sa));
  /* The plan's transferNetwork and serviceAccount. */
  char *perr = NULL;
  int st = Pallet_ec2_pod_fields_apply (in->plan, NULL, 0, pod, &perr);
  if (st != PALLET_OK) {
    pallet_error (s->call, st, "build_vm %s: copy Pod: %s", in->vm_id ? in->vm_id : "",
                  perr ? perr : "out of memory");
    free (perr);
    json_decref (secret);
    json_decref (pod);
    return st;
  }
  if (secret)
    json_array_append_new (manifests, secret);
  json_array_append_new (manifests, pod);
  return PALLET_OK;
}
