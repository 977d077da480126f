/* SPDX-License-Identifier: Apache-2.0 */
/* EC2 build_vm manifests: schema validation of every manifest plus the
 * fields that matter.  argv[1] = fixtures dir, argv[2] = validate.py. */

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include <pallet/provider.h>

#include "pallet-ec2-manifest.h"

extern char **environ;

static const char *fixtures;
static const char *validate_py;
#define PYTHON "/usr/bin/python3"

static json_t *
load (const char *name)
{
  char path[4096];
  json_error_t e;
  json_t *j;

  snprintf (path, sizeof path, "%s/%s", fixtures, name);
  j = json_load_file (path, 0, &e);
  if (j == NULL)
    fprintf (stderr, "%s:%d: %s\n", path, e.line, e.text);
  return j;
}

/* Looks up "a>b>0>c": '>' separates keys (keys hold dots and slashes),
 * all-digit segments index arrays. */
static json_t *
jget (json_t *j, const char *path)
{
  char buf[512], *save = NULL, *seg;

  snprintf (buf, sizeof buf, "%s", path);
  for (seg = strtok_r (buf, ">", &save); seg && j; seg = strtok_r (NULL, ">", &save)) {
    if (json_is_array (j) && strspn (seg, "0123456789") == strlen (seg))
      j = json_array_get (j, strtoul (seg, NULL, 10));
    else
      j = json_object_get (j, seg);
  }
  return j;
}

static const char *
sget (json_t *j, const char *path)
{
  return json_string_value (jget (j, path));
}

static json_int_t
iget (json_t *j, const char *path)
{
  json_t *v = jget (j, path);

  return json_is_integer (v) ? json_integer_value (v) : -999;
}

#define ASSERT_STR(j, path, want)                                                          \
  do {                                                                                     \
    const char *got_ = sget ((j), (path));                                                 \
    if (got_ == NULL || strcmp (got_, (want)) != 0)                                        \
      fprintf (stderr, "  %s: got %s, want %s\n", (path), got_ ? got_ : "(none)", (want)); \
    CU_ASSERT_PTR_NOT_NULL (got_);                                                         \
    if (got_)                                                                              \
      CU_ASSERT_STRING_EQUAL (got_, (want));                                               \
  } while (0)

/* Runs validate.py --strict over the files; returns its exit status. */
static int
run_validator (char **files, size_t n)
{
  char **argv = calloc (n + 5, sizeof *argv);
  pid_t pid;
  int st, r;
  size_t i;

  if (argv == NULL)
    return -1;
  argv[0] = (char *) PYTHON;
  argv[1] = (char *) validate_py;
  argv[2] = (char *) "--strict";
  argv[3] = (char *) "-q";
  for (i = 0; i < n; i++)
    argv[4 + i] = files[i];
  r = posix_spawn (&pid, PYTHON, NULL, NULL, argv, environ);
  free (argv);
  if (r != 0) {
    fprintf (stderr, "posix_spawn %s: %s\n", PYTHON, strerror (r));
    return -1;
  }
  while (waitpid (pid, &st, 0) == -1)
    if (errno != EINTR)
      return -1;
  return WIFEXITED (st) ? WEXITSTATUS (st) : -1;
}

/* Writes each manifest to its own temp file and validates them all. */
static int
validate_all (json_t *manifests)
{
  char dir[] = "/tmp/pallet-ec2-manifest-XXXXXX";
  char **files;
  size_t i, n = json_array_size (manifests);
  int rc = -1;

  if (mkdtemp (dir) == NULL)
    return -1;
  files = calloc (n + 1, sizeof *files);
  if (files == NULL)
    goto out;
  for (i = 0; i < n; i++) {
    if (asprintf (&files[i], "%s/m%zu.json", dir, i) == -1) {
      files[i] = NULL;
      goto out;
    }
    if (json_dump_file (json_array_get (manifests, i), files[i], JSON_INDENT (2)) == -1)
      goto out;
  }
  rc = run_validator (files, n);
out:
  for (i = 0; files && i < n; i++)
    if (files[i]) {
      unlink (files[i]);
      free (files[i]);
    }
  free (files);
  rmdir (dir);
  return rc;
}

/* Manifests that must pass are queued under a name saying where they
 * came from and validated in one validator run at the end (each run
 * loads the schemas, which costs seconds on a busy machine). */
static char qdir[] = "/tmp/pallet-ec2-queue-XXXXXX";
static char **qfiles;
static size_t nq;

static void
queue_text (const char *label, size_t i, const char *text)
{
  FILE *fp;
  char *f, *p;

  CU_ASSERT_FATAL (asprintf (&f, "%s/%s-%zu.json", qdir, label, i) != -1);
  for (p = f + strlen (qdir) + 1; *p; p++)
    if (*p == '/')
      *p = '_';
  qfiles = realloc (qfiles, (nq + 1) * sizeof *qfiles);
  CU_ASSERT_PTR_NOT_NULL_FATAL (qfiles);
  qfiles[nq++] = f;
  fp = fopen (f, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL (fp);
  fputs (text, fp);
  CU_ASSERT_EQUAL (fclose (fp), 0);
}

static void
queue_manifests (const char *label, json_t *manifests)
{
  size_t i;

  for (i = 0; i < json_array_size (manifests); i++) {
    char *t = json_dumps (json_array_get (manifests, i), JSON_INDENT (2));

    CU_ASSERT_PTR_NOT_NULL_FATAL (t);
    queue_text (label, i, t);
    free (t);
  }
}

static void
test_queued_manifests_validate (void)
{
  size_t i;

  fprintf (stderr, "  validating %zu queued manifests\n", nq);
  CU_ASSERT_TRUE (nq >= 60);
  CU_ASSERT_EQUAL (run_validator (qfiles, nq), 0);
  for (i = 0; i < nq; i++) {
    unlink (qfiles[i]);
    free (qfiles[i]);
  }
  free (qfiles);
  qfiles = NULL;
  nq = 0;
}

struct built {
  json_t *plan, *vm, *state, *manifests, *notes;
  char *err;
  int rc;
};

static void
built_free (struct built *b)
{
  json_decref (b->plan);
  json_decref (b->vm);
  json_decref (b->state);
  json_decref (b->manifests);
  json_decref (b->notes);
  free (b->err);
}

/* Loads a case (plan.json patched by the case's planPatch) without
 * building it, so error tests can break it first. */
static void
load_case (const char *name, struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  json_t *c = load (name), *patch;
  char *err = NULL;

  memset (b, 0, sizeof *b);
  b->plan = load ("plan.json");
  CU_ASSERT_PTR_NOT_NULL_FATAL (c);
  CU_ASSERT_PTR_NOT_NULL_FATAL (b->plan);
  patch = json_object_get (c, "planPatch");
  if (patch)
    CU_ASSERT_EQUAL (json_object_update_recursive (b->plan, patch), 0);
  b->vm = json_incref (json_object_get (c, "vm"));
  b->state = json_incref (json_object_get (c, "state"));
  CU_ASSERT_EQUAL (Pallet_ec2_manifest_opts_from_json (json_object_get (c, "options"), o, &err), 0);
  free (err);
  json_decref (c);
}

static void
build (struct built *b, const struct Pallet_ec2_manifest_opts *o)
{
  b->rc =
      Pallet_ec2_build_manifests (b->plan, b->vm, b->state, o, &b->manifests, &b->notes, &b->err);
}

/* Builds a case; it must succeed and every manifest must validate. */
static void
build_ok (const char *name, struct built *b)
{
  struct Pallet_ec2_manifest_opts o;

  load_case (name, b, &o);
  build (b, &o);
  if (b->rc != 0)
    fprintf (stderr, "  %s: %s\n", name, b->err ? b->err : "(no message)");
  CU_ASSERT_EQUAL_FATAL (b->rc, 0);
  CU_ASSERT_PTR_NULL (b->err);
  CU_ASSERT_TRUE_FATAL (json_array_size (b->manifests) > 0);
  queue_manifests (name, b->manifests);
}

/* The n-th manifest of a kind. */
static json_t *
nth (json_t *manifests, const char *kind, size_t n)
{
  size_t i;
  json_t *m;

  json_array_foreach (manifests, i, m)
    if (strcmp (json_string_value (json_object_get (m, "kind")), kind) == 0 && n-- == 0)
      return m;
  return NULL;
}

static size_t
count (json_t *manifests, const char *kind)
{
  size_t k = 0;

  while (nth (manifests, kind, k))
    k++;
  return k;
}

/* Checks PV i and PVC i point at each other and carry the volume. */
static void
check_pair (json_t *ms, size_t i, const char *vm, const char *src, const char *target,
            const char *sc, const char *size, const char *zone)
{
  json_t *pv = nth (ms, "PersistentVolume", i);
  json_t *pvc = nth (ms, "PersistentVolumeClaim", i);
  char pvcname[128], pvname[128];

  CU_ASSERT_PTR_NOT_NULL_FATAL (pv);
  CU_ASSERT_PTR_NOT_NULL_FATAL (pvc);
  snprintf (pvcname, sizeof pvcname, "%s-disk-%zu", vm, i);
  snprintf (pvname, sizeof pvname, "pv-%s", target);
  ASSERT_STR (pvc, "metadata>name", pvcname);
  ASSERT_STR (pvc, "metadata>namespace", "migrated");
  ASSERT_STR (pvc, "spec>volumeName", pvname);
  ASSERT_STR (pvc, "spec>storageClassName", sc);
  ASSERT_STR (pvc, "spec>volumeMode", "Block");
  ASSERT_STR (pvc, "spec>accessModes>0", "ReadWriteOnce");
  ASSERT_STR (pvc, "spec>resources>requests>storage", size);
  ASSERT_STR (pvc, "metadata>annotations>forklift.konveyor.io/disk-source", src);
  ASSERT_STR (pvc, "metadata>labels>forklift.konveyor.io/volume-id", src);

  ASSERT_STR (pv, "metadata>name", pvname);
  CU_ASSERT_PTR_NULL (jget (pv, "metadata>namespace"));
  ASSERT_STR (pv, "spec>csi>driver", "ebs.csi.aws.com");
  ASSERT_STR (pv, "spec>csi>volumeHandle", target);
  CU_ASSERT_PTR_NULL (jget (pv, "spec>csi>fsType"));
  ASSERT_STR (pv, "spec>volumeMode", "Block");
  ASSERT_STR (pv, "spec>capacity>storage", size);
  ASSERT_STR (pv, "spec>storageClassName", sc);
  ASSERT_STR (pv, "spec>persistentVolumeReclaimPolicy", "Retain");
  ASSERT_STR (pv, "spec>claimRef>name", pvcname);
  ASSERT_STR (pv, "spec>claimRef>namespace", "migrated");
  ASSERT_STR (pv, "spec>claimRef>kind", "PersistentVolumeClaim");
  ASSERT_STR (pv,
              "spec>nodeAffinity>required>nodeSelectorTerms>0>"
              "matchExpressions>0>key",
              "topology.kubernetes.io/zone");
  ASSERT_STR (pv,
              "spec>nodeAffinity>required>nodeSelectorTerms>0>"
              "matchExpressions>0>values>0",
              zone);
  ASSERT_STR (pv,
              "spec>nodeAffinity>required>nodeSelectorTerms>1>"
              "matchExpressions>0>key",
              "topology.ebs.csi.aws.com/zone");
  ASSERT_STR (pv,
              "spec>nodeAffinity>required>nodeSelectorTerms>1>"
              "matchExpressions>0>values>0",
              zone);
}

static void
check_labels (json_t *m, const char *plan_uid, const char *mig, const char *id)
{
  ASSERT_STR (m, "metadata>labels>plan", plan_uid);
  ASSERT_STR (m, "metadata>labels>migration", mig);
  ASSERT_STR (m, "metadata>labels>vmID", id);
}

#define PLAN_UID "3f1c9a2e-5b7d-4c8e-9f10-aa11bb22cc33"
#define T        "spec>template>spec>"
#define D        T "domain>"

static void
test_bios_1vol (void)
{
  struct built b;
  json_t *vm;

  build_ok ("case-bios-1vol.json", &b);
  CU_ASSERT_EQUAL (json_array_size (b.manifests), 3);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolume"), 1);
  vm = nth (b.manifests, "VirtualMachine", 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  /* Creation order: PV, PVC, VM. */
  CU_ASSERT_PTR_EQUAL (json_array_get (b.manifests, 2), vm);
  check_pair (b.manifests, 0, "web-01", "vol-0src0000000000001", "vol-0new0000000000001", "gp3-csi",
              "20Gi", "us-east-1b");
  ASSERT_STR (vm, "apiVersion", "kubevirt.io/v1");
  ASSERT_STR (vm, "metadata>name", "web-01");
  ASSERT_STR (vm, "metadata>namespace", "migrated");
  check_labels (vm, PLAN_UID, "77aa88bb-0000-4000-8000-000000000001", "i-0a1b2c3d4e5f60001");
  check_labels (nth (b.manifests, "PersistentVolumeClaim", 0), PLAN_UID,
                "77aa88bb-0000-4000-8000-000000000001", "i-0a1b2c3d4e5f60001");
  check_labels (nth (b.manifests, "PersistentVolume", 0), PLAN_UID,
                "77aa88bb-0000-4000-8000-000000000001", "i-0a1b2c3d4e5f60001");
  ASSERT_STR (vm, "spec>runStrategy", "Always"); /* auto + source On */
  CU_ASSERT_EQUAL (iget (vm, D "cpu>cores"), 2);
  CU_ASSERT_EQUAL (iget (vm, D "cpu>sockets"), 1);
  ASSERT_STR (vm, D "memory>guest", "8192Mi");
  CU_ASSERT_PTR_NOT_NULL (jget (vm, D "firmware>bootloader>bios"));
  CU_ASSERT_PTR_NULL (jget (vm, D "firmware>bootloader>efi"));
  ASSERT_STR (vm, D "devices>disks>0>name", "disk-0");
  ASSERT_STR (vm, D "devices>disks>0>disk>bus", "virtio");
  CU_ASSERT_EQUAL (iget (vm, D "devices>disks>0>bootOrder"), 1);
  ASSERT_STR (vm, T "volumes>0>persistentVolumeClaim>claimName", "web-01-disk-0");
  ASSERT_STR (vm, D "devices>interfaces>0>macAddress", "0a:1b:2c:3d:4e:5f");
  ASSERT_STR (vm, D "devices>interfaces>0>model", "virtio");
  CU_ASSERT_PTR_NOT_NULL (jget (vm, D "devices>interfaces>0>masquerade"));
  CU_ASSERT_PTR_NOT_NULL (jget (vm, T "networks>0>pod"));
  ASSERT_STR (vm, T "nodeSelector>topology.kubernetes.io/zone", "us-east-1b");
  built_free (&b);
}

static void
test_uefi_3vol (void)
{
  struct built b;
  json_t *vm, *ifs, *nets;

  build_ok ("case-uefi-3vol.json", &b);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolume"), 3);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolumeClaim"), 3);
  /* Ordered by disk index, not by the order in state. */
  check_pair (b.manifests, 0, "db-main", "vol-0src0000000000010", "vol-0new0000000000010",
              "gp3-csi", "50Gi", "us-east-1b");
  check_pair (b.manifests, 1, "db-main", "vol-0src0000000000011", "vol-0new0000000000011",
              "io2-fast", "200Gi", "us-east-1b");
  check_pair (b.manifests, 2, "db-main", "vol-0src0000000000012", "vol-0new0000000000012",
              "gp3-csi", "500Gi", "us-east-1b");
  vm = nth (b.manifests, "VirtualMachine", 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  ASSERT_STR (vm, "metadata>name", "db-main");
  ASSERT_STR (vm, "spec>runStrategy", "Halted"); /* targetPowerState off */
  CU_ASSERT_EQUAL (iget (vm, D "cpu>cores"), 8);
  ASSERT_STR (vm, D "memory>guest", "65536Mi");
  ASSERT_STR (vm, D "resources>requests>memory", "65536Mi");
  CU_ASSERT_TRUE (json_is_false (jget (vm, D "firmware>bootloader>efi>secureBoot")));
  CU_ASSERT_PTR_NULL (jget (vm, D "firmware>bootloader>bios"));
  /* The root device (disk-0, /dev/sda1) boots; the others do not. */
  CU_ASSERT_EQUAL (iget (vm, D "devices>disks>0>bootOrder"), 1);
  CU_ASSERT_PTR_NULL (jget (vm, D "devices>disks>1>bootOrder"));
  CU_ASSERT_PTR_NULL (jget (vm, D "devices>disks>2>bootOrder"));
  ASSERT_STR (vm, T "volumes>2>persistentVolumeClaim>claimName", "db-main-disk-2");
  /* Device-index order; the ignored ENI (index 2) is dropped. */
  ifs = jget (vm, D "devices>interfaces");
  nets = jget (vm, T "networks");
  CU_ASSERT_EQUAL (json_array_size (ifs), 3);
  CU_ASSERT_EQUAL (json_array_size (nets), 3);
  ASSERT_STR (ifs, "0>macAddress", "02:00:00:00:00:01");
  ASSERT_STR (ifs, "1>macAddress", "02:00:00:00:00:02");
  ASSERT_STR (ifs, "2>macAddress", "02:00:00:00:00:04");
  CU_ASSERT_PTR_NOT_NULL (jget (ifs, "0>masquerade"));
  CU_ASSERT_PTR_NOT_NULL (jget (ifs, "1>bridge"));
  CU_ASSERT_PTR_NOT_NULL (jget (ifs, "2>bridge"));
  CU_ASSERT_PTR_NOT_NULL (jget (nets, "0>pod"));
  ASSERT_STR (nets, "1>multus>networkName", "net-ns/vlan-100");
  ASSERT_STR (nets, "2>multus>networkName", "migrated/storage-net");
  ASSERT_STR (ifs, "0>name", sget (nets, "0>name"));
  ASSERT_STR (ifs, "2>name", sget (nets, "2>name"));
  /* The plan's target fields are kept; the migration's labels win. */
  ASSERT_STR (vm, "spec>template>metadata>labels>team", "dba");
  ASSERT_STR (vm, "metadata>labels>team", "dba");
  ASSERT_STR (vm, "spec>template>metadata>labels>plan", PLAN_UID);
  ASSERT_STR (vm, T "nodeSelector>node-role.kubernetes.io/worker", "");
  ASSERT_STR (vm, T "nodeSelector>topology.kubernetes.io/zone", "us-east-1b");
  CU_ASSERT_EQUAL (iget (vm, T "affinity>podAntiAffinity>"
                               "preferredDuringSchedulingIgnoredDuringExecution>0>"
                               "weight"),
                   100);
  built_free (&b);
}

static void
test_compat (void)
{
  struct built b;
  json_t *vm;

  build_ok ("case-compat.json", &b);
  vm = nth (b.manifests, "VirtualMachine", 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  ASSERT_STR (vm, "metadata>name", "legacy-target"); /* targetName */
  ASSERT_STR (vm, "metadata>annotations>openshift.io/display-name", "Legacy Box");
  ASSERT_STR (vm, "spec>runStrategy", "Always"); /* on, though source Off */
  ASSERT_STR (vm, D "devices>disks>0>disk>bus", "sata");
  ASSERT_STR (vm, D "devices>interfaces>0>model", "e1000e");
  ASSERT_STR (vm, D "devices>inputs>0>bus", "usb");
  CU_ASSERT_PTR_NOT_NULL (jget (vm, D "firmware>bootloader>bios"));
  CU_ASSERT_EQUAL (iget (vm, D "cpu>cores"), 4);
  ASSERT_STR (vm, D "memory>guest", "8192Mi");
  check_pair (b.manifests, 0, "legacy-target", "vol-0src0000000000020", "vol-0new0000000000020",
              "gp2-csi", "30Gi", "us-east-1c");
  ASSERT_STR (vm, T "nodeSelector>topology.kubernetes.io/zone", "us-east-1c");
  built_free (&b);
}

static void
test_hostile_name (void)
{
  struct built b;
  json_t *vm;
  const char *name, *pvc, *orig;

  build_ok ("case-hostile-name.json", &b);
  vm = nth (b.manifests, "VirtualMachine", 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  name = sget (vm, "metadata>name");
  pvc = sget (nth (b.manifests, "PersistentVolumeClaim", 0), "metadata>name");
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label (name));
  CU_ASSERT_EQUAL (strlen (name), 63);
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label (pvc));
  CU_ASSERT_EQUAL (strncmp (name, "prod-rm-rf-reboot-id-echo-pwned-t-xxx", 37), 0);
  CU_ASSERT_EQUAL (strlen (pvc), 63);
  CU_ASSERT_EQUAL (strcmp (pvc + 63 - 7, "-disk-0"), 0);
  /* The raw name survives only as annotation text. */
  orig = sget (vm, "metadata>annotations>forklift.konveyor.io/source-vm-name");
  CU_ASSERT_PTR_NOT_NULL (orig);
  if (orig)
    CU_ASSERT_PTR_NOT_NULL (strchr (orig, '\n'));
  CU_ASSERT_TRUE (json_array_size (b.notes) >= 1);
  /* Inspection wins over uefi-preferred; Secure Boot asked for. */
  CU_ASSERT_TRUE (json_is_true (jget (vm, D "firmware>bootloader>efi>secureBoot")));
  CU_ASSERT_TRUE (json_is_true (jget (vm, D "features>smm>enabled")));
  ASSERT_STR (vm, "spec>runStrategy", "Halted"); /* auto + source Off */
  CU_ASSERT_EQUAL (iget (vm, D "cpu>cores"), 128);
  ASSERT_STR (vm, D "memory>guest", "524288Mi");
  ASSERT_STR (vm, D "devices>interfaces>0>binding>name", "l2bridge");
  CU_ASSERT_PTR_NULL (jget (vm, D "devices>interfaces>0>masquerade"));
  /* skipZoneNodeSelector: no VM selector, but the PV still pins the zone. */
  CU_ASSERT_PTR_NULL (jget (vm, T "nodeSelector"));
  ASSERT_STR (nth (b.manifests, "PersistentVolume", 0),
              "spec>nodeAffinity>required>nodeSelectorTerms>0>"
              "matchExpressions>0>values>0",
              "us-east-1a");
  ASSERT_STR (vm, "metadata>annotations>vm.kubevirt.io/os", "rhel9");
  built_free (&b);
}

static void
test_copy_mode (void)
{
  struct built b;
  json_t *vm, *pvc;

  build_ok ("case-copy-mode.json", &b);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolume"), 0);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolumeClaim"), 2);
  pvc = nth (b.manifests, "PersistentVolumeClaim", 1);
  vm = nth (b.manifests, "VirtualMachine", 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  CU_ASSERT_PTR_NOT_NULL_FATAL (pvc);
  ASSERT_STR (vm, "metadata>name", "i-0a1b2c3d4e5f60005"); /* Name unusable */
  ASSERT_STR (pvc, "metadata>name", "i-0a1b2c3d4e5f60005-disk-1");
  ASSERT_STR (pvc, "spec>storageClassName", "io2-fast");
  ASSERT_STR (pvc, "spec>volumeMode", "Block");
  ASSERT_STR (pvc, "spec>resources>requests>storage", "100Gi");
  CU_ASSERT_PTR_NULL (jget (pvc, "spec>volumeName"));
  CU_ASSERT_EQUAL (iget (vm, D "devices>disks>0>bootOrder"), 1);
  ASSERT_STR (vm, "spec>runStrategy", "Always"); /* "running" */
  CU_ASSERT_PTR_NOT_NULL (jget (vm, D "firmware>bootloader>efi"));
  ASSERT_STR (vm, T "networks>0>name", "default");
  CU_ASSERT_PTR_NOT_NULL (jget (vm, T "networks>0>pod"));
  CU_ASSERT_PTR_NULL (jget (vm, D "devices>interfaces>0>macAddress"));
  CU_ASSERT_PTR_NULL (jget (vm, T "nodeSelector"));
  built_free (&b);
}

/* The harness itself can fail: a bad field is caught by the validator. */
static void
test_validator_catches_errors (void)
{
  struct built b;
  json_t *vm;

  build_ok ("case-bios-1vol.json", &b);
  vm = nth (b.manifests, "VirtualMachine", 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  json_object_set_new (json_object_get (vm, "spec"), "runStrategee", json_string ("Always"));
  CU_ASSERT_EQUAL (validate_all (b.manifests), 1);
  built_free (&b);
}

/* ---- errors ----------------------------------------------------------- */

/* Builds case-bios-1vol after mutate(); expects failure naming want. */
static void
expect_error (void (*mutate) (struct built *, struct Pallet_ec2_manifest_opts *), const char *want)
{
  struct built b;
  struct Pallet_ec2_manifest_opts o;

  load_case ("case-bios-1vol.json", &b, &o);
  mutate (&b, &o);
  build (&b, &o);
  CU_ASSERT_NOT_EQUAL (b.rc, 0);
  CU_ASSERT_PTR_NULL (b.manifests);
  CU_ASSERT_PTR_NOT_NULL_FATAL (b.err);
  if (strstr (b.err, want) == NULL)
    fprintf (stderr, "  error \"%s\" lacks \"%s\"\n", b.err, want);
  CU_ASSERT_PTR_NOT_NULL (strstr (b.err, want));
  built_free (&b);
}

static json_t *
inst (struct built *b)
{
  return json_object_get (b->state, "instance");
}

static json_t *
vol0 (struct built *b)
{
  return json_array_get (json_object_get (b->state, "volumes"), 0);
}

static void
m_unmapped_subnet (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_array_get (json_object_get (inst (b), "networkInterfaces"), 0),
                       "subnetId", json_string ("subnet-0zzz"));
}

static void
m_unmapped_type (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (vol0 (b), "volumeType", json_string ("st1"));
}

static void
m_no_vcpus (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_del (inst (b), "vcpus");
}

static void
m_two_pod_networks (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_array_append_new (json_object_get (inst (b), "networkInterfaces"),
                         json_pack ("{s:s, s:i, s:s, s:s}", "networkInterfaceId", "eni-02",
                                    "deviceIndex", 1, "macAddress", "02:00:00:00:00:09", "subnetId",
                                    "subnet-0eee"));
}

static void
m_no_migration_uid (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_del (b->state, "migrationUID");
}

static void
m_zone_conflict (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_object_get (b->plan, "spec"), "targetNodeSelector",
                       json_pack ("{s:s}", "topology.kubernetes.io/zone", "us-east-1f"));
}

static void
m_split_zones (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  json_t *v = json_deep_copy (vol0 (b));

  (void) o;
  json_object_set_new (v, "sourceVolumeId", json_string ("vol-0src9"));
  json_object_set_new (v, "targetVolumeId", json_string ("vol-0new9"));
  json_object_set_new (v, "diskIndex", json_integer (1));
  json_object_set_new (v, "boot", json_false ());
  json_object_set_new (v, "targetAZ", json_string ("us-east-1c"));
  json_array_append_new (json_object_get (b->state, "volumes"), v);
}

static void
m_bad_power (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "targetPowerState", json_string ("sometimes"));
}

static void
m_no_target_volume (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_del (vol0 (b), "targetVolumeId");
}

static void
m_secure_boot_bios (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) b;
  o->secure_boot = 1;
}

static void
m_no_namespace (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "targetNamespace", json_string ("Bad NS"));
}

static void
m_duplicate_index (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_split_zones (b, o);
  json_object_set_new (json_array_get (json_object_get (b->state, "volumes"), 1), "diskIndex",
                       json_integer (0));
}

static void
m_bad_mac (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_array_get (json_object_get (inst (b), "networkInterfaces"), 0),
                       "macAddress", json_string ("02:00;reboot"));
}

static void
m_wrong_state (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->vm, "id", json_string ("i-other"));
}

static void
m_no_volumes (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_array_clear (json_object_get (b->state, "volumes"));
}

static void
m_bad_boot_mode (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (inst (b), "bootMode", json_string ("coreboot"));
}

static void
test_errors (void)
{
  expect_error (m_unmapped_subnet, "subnet subnet-0zzz (network interface "
                                   "eni-01) is not mapped");
  expect_error (m_unmapped_type, "EBS volume type \"st1\" is not mapped to a "
                                 "storage class");
  expect_error (m_no_vcpus, "instance type facts for \"m5.large\" are "
                            "missing");
  expect_error (m_two_pod_networks, "more than one network interface");
  expect_error (m_no_migration_uid, "state.migrationUID is missing");
  expect_error (m_zone_conflict, "in zone us-east-1f but its volumes are in "
                                 "us-east-1b");
  expect_error (m_split_zones, "volume vol-0src9 is in zone us-east-1c but "
                               "the VM's other volumes are in us-east-1b");
  expect_error (m_bad_power, "plan.targetPowerState \"sometimes\" is not on, "
                             "off or auto");
  expect_error (m_no_target_volume, "volume vol-0src0000000000001: "
                                    "targetVolumeId is missing");
  expect_error (m_secure_boot_bios, "Secure Boot was asked for but the guest "
                                    "boots with BIOS");
  expect_error (m_no_namespace, "plan.targetNamespace \"Bad NS\" is not "
                                "valid");
  expect_error (m_duplicate_index, "both have diskIndex 0");
  expect_error (m_bad_mac, "network interface eni-01 has an invalid MAC");
  expect_error (m_wrong_state, "vm.id \"i-other\" and "
                               "state.instance.instanceId \"i-0a1b2c3d4e5f60001\" differ");
  expect_error (m_no_volumes, "state.volumes is missing or empty");
  expect_error (m_bad_boot_mode, "bootMode \"coreboot\" is not uefi");
}

/* ---- variants of case-bios-1vol that must build and validate ---------- */

static void
variant (void (*mutate) (struct built *, struct Pallet_ec2_manifest_opts *), struct built *b)
{
  static int nvariant;
  struct Pallet_ec2_manifest_opts o;
  char label[32];

  load_case ("case-bios-1vol.json", b, &o);
  mutate (b, &o);
  build (b, &o);
  if (b->rc != 0)
    fprintf (stderr, "  variant: %s\n", b->err ? b->err : "(no message)");
  CU_ASSERT_EQUAL_FATAL (b->rc, 0);
  snprintf (label, sizeof label, "variant%d", nvariant++);
  queue_manifests (label, b->manifests);
}

static json_t *
vm_of (struct built *b)
{
  json_t *vm = nth (b->manifests, "VirtualMachine", 0);

  CU_ASSERT_PTR_NOT_NULL (vm);
  return vm;
}

/* Some note contains want. */
static int
has_note (struct built *b, const char *want)
{
  size_t i;
  json_t *n;

  json_array_foreach (b->notes, i, n)
    if (strstr (json_string_value (n), want))
      return 1;
  return 0;
}

static void
m_uefi_pref_unknown (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (inst (b), "bootMode", json_string ("uefi-preferred"));
}

static void
m_uefi_pref_bios_only (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_uefi_pref_unknown (b, o);
  json_object_set_new (inst (b), "supportedBootModes", json_pack ("[s]", "legacy-bios"));
}

static void
m_current_uefi (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_uefi_pref_bios_only (b, o);
  json_object_set_new (inst (b), "currentBootMode", json_string ("uefi"));
}

static void
m_inspect_bios (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (inst (b), "bootMode", json_string ("uefi"));
  json_object_set_new (b->state, "inspection", json_pack ("{s:s}", "firmware", "bios"));
}

static void
test_firmware_variants (void)
{
  struct built b;

  variant (m_uefi_pref_unknown, &b);
  CU_ASSERT_PTR_NOT_NULL (jget (vm_of (&b), D "firmware>bootloader>bios"));
  CU_ASSERT_TRUE (has_note (&b, "uefi-preferred"));
  built_free (&b);

  variant (m_uefi_pref_bios_only, &b);
  CU_ASSERT_PTR_NOT_NULL (jget (vm_of (&b), D "firmware>bootloader>bios"));
  CU_ASSERT_FALSE (has_note (&b, "uefi-preferred"));
  built_free (&b);

  variant (m_current_uefi, &b);
  CU_ASSERT_PTR_NOT_NULL (jget (vm_of (&b), D "firmware>bootloader>efi"));
  built_free (&b);

  variant (m_inspect_bios, &b);
  CU_ASSERT_PTR_NOT_NULL (jget (vm_of (&b), D "firmware>bootloader>bios"));
  CU_ASSERT_TRUE (has_note (&b, "inspection found bios firmware"));
  CU_ASSERT_EQUAL (strcmp (sget (vm_of (&b), "spec>template>metadata>labels>"
                                             "guestConverted"),
                           "true"),
                   0);
  built_free (&b);
}

static void
m_power_unset_off (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->state, "powerState", json_string ("Off"));
}

static void
m_power_unknown (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_del (b->state, "powerState");
}

static void
m_power_spec_on (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_power_unset_off (b, o);
  json_object_set_new (json_object_get (b->plan, "spec"), "targetPowerState", json_string ("on"));
}

static void
m_power_auto_on (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "targetPowerState", json_string ("auto"));
}

static void
test_power_variants (void)
{
  struct built b;

  variant (m_power_unset_off, &b);
  ASSERT_STR (vm_of (&b), "spec>runStrategy", "Halted");
  CU_ASSERT_FALSE (has_note (&b, "power state"));
  built_free (&b);

  variant (m_power_unknown, &b);
  ASSERT_STR (vm_of (&b), "spec>runStrategy", "Halted");
  CU_ASSERT_TRUE (has_note (&b, "source power state was not recorded"));
  built_free (&b);

  variant (m_power_spec_on, &b);
  ASSERT_STR (vm_of (&b), "spec>runStrategy", "Always");
  built_free (&b);

  variant (m_power_auto_on, &b);
  ASSERT_STR (vm_of (&b), "spec>runStrategy", "Always");
  built_free (&b);
}

static void
m_bad_target_name (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->vm, "targetName", json_string ("My VM!\n"));
}

/* Two volumes, none marked boot: the root device decides. */
static void
m_root_device (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_split_zones (b, o);
  json_object_set_new (json_array_get (json_object_get (b->state, "volumes"), 1), "targetAZ",
                       json_string ("us-east-1b"));
  json_object_del (vol0 (b), "boot");
  json_object_set_new (json_array_get (json_object_get (b->state, "volumes"), 1), "deviceName",
                       json_string ("/dev/sdq"));
  json_object_set_new (inst (b), "rootDeviceName", json_string ("/dev/sdq"));
}

static void
m_no_root_match (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_root_device (b, o);
  json_object_set_new (inst (b), "rootDeviceName", json_string ("/dev/nope"));
}

static void
m_uid_from_opts (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  json_object_del (b->state, "migrationUID");
  o->migration_uid = "opts-uid-1";
}

static void
test_naming_and_boot (void)
{
  struct built b;
  json_t *vm;

  variant (m_bad_target_name, &b);
  vm = vm_of (&b);
  ASSERT_STR (vm, "metadata>name", "my-vm");
  ASSERT_STR (nth (b.manifests, "PersistentVolumeClaim", 0), "metadata>name", "my-vm-disk-0");
  CU_ASSERT_TRUE (has_note (&b, "targetName"));
  built_free (&b);

  variant (m_root_device, &b);
  vm = vm_of (&b);
  CU_ASSERT_PTR_NULL (jget (vm, D "devices>disks>0>bootOrder"));
  CU_ASSERT_EQUAL (iget (vm, D "devices>disks>1>bootOrder"), 1);
  built_free (&b);

  variant (m_no_root_match, &b);
  vm = vm_of (&b);
  CU_ASSERT_EQUAL (iget (vm, D "devices>disks>0>bootOrder"), 1);
  CU_ASSERT_PTR_NULL (jget (vm, D "devices>disks>1>bootOrder"));
  CU_ASSERT_TRUE (has_note (&b, "no volume is marked boot"));
  built_free (&b);

  variant (m_uid_from_opts, &b);
  ASSERT_STR (vm_of (&b), "metadata>labels>migration", "opts-uid-1");
  built_free (&b);
}

static void
m_uid_conflict (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) b;
  o->migration_uid = "another-migration";
}

static void
m_bad_label_key (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_object_get (b->plan, "spec"), "targetLabels",
                       json_pack ("{s:s}", "bad key;rm", "x"));
}

static void
m_bad_label_value (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_object_get (b->plan, "spec"), "targetLabels",
                       json_pack ("{s:s}", "example.com/tier", "a b"));
}

static void
m_bad_storage_class (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (
      json_object_get (json_array_get (json_object_get (b->plan, "storageMap"), 0), "destination"),
      "storageClass", json_string ("GP3 CSI"));
}

static void
m_bad_nad (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_array_get (json_object_get (inst (b), "networkInterfaces"), 0),
                       "subnetId", json_string ("subnet-0ddd"));
  json_object_set_new (
      json_object_get (json_array_get (json_object_get (b->plan, "networkMap"), 3), "destination"),
      "name", json_string ("x/y"));
}

static void
test_more_errors (void)
{
  struct built b;
  struct Pallet_ec2_manifest_opts o;

  expect_error (m_uid_conflict, "state.migrationUID "
                                "\"77aa88bb-0000-4000-8000-000000000001\" is not the current "
                                "migration \"another-migration\"");
  load_case ("case-bios-1vol.json", &b, &o);
  m_uid_conflict (&b, &o);
  build (&b, &o);
  CU_ASSERT_EQUAL (b.rc, 12); /* PALLET_E_CONFLICT */
  built_free (&b);
  expect_error (m_bad_label_key, "plan.spec.targetLabels: \"bad key;rm\" is "
                                 "not a valid label key");
  expect_error (m_bad_label_value, "plan.spec.targetLabels.example.com/tier: "
                                   "\"a b\" is not a valid label value");
  expect_error (m_bad_storage_class, "destination.storageClass \"GP3 CSI\" "
                                     "is not a valid storage class name");
  expect_error (m_bad_nad, "NetworkMap entry for subnet subnet-0ddd: a multus "
                           "destination needs the NetworkAttachmentDefinition name");
}

/* ---- every field of every input, replaced by every JSON type ---------- */

struct paths {
  char **v;
  size_t n, cap;
};

static void
add_path (struct paths *p, const char *path)
{
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 64;
    p->v = realloc (p->v, p->cap * sizeof *p->v);
    CU_ASSERT_PTR_NOT_NULL_FATAL (p->v);
  }
  p->v[p->n++] = strdup (path);
}

/* Every object member and array element below j, as "a>b>0". */
static void
collect (json_t *j, const char *prefix, struct paths *p)
{
  char path[512];
  const char *k;
  json_t *v;
  size_t i;

  if (json_is_object (j))
    json_object_foreach (j, k, v) {
      snprintf (path, sizeof path, "%s%s%s", prefix, *prefix ? ">" : "", k);
      add_path (p, path);
      collect (v, path, p);
    }
  else if (json_is_array (j))
    json_array_foreach (j, i, v) {
      snprintf (path, sizeof path, "%s%s%zu", prefix, *prefix ? ">" : "", i);
      add_path (p, path);
      collect (v, path, p);
    }
}

/* Replaces the node at path (in root) by repl (stolen). */
static void
replace_at (json_t *root, const char *path, json_t *repl)
{
  char parent[512], *last;
  json_t *pj;

  snprintf (parent, sizeof parent, "%s", path);
  last = strrchr (parent, '>');
  if (last) {
    *last++ = '\0';
    pj = jget (root, parent);
  }
  else {
    last = parent;
    pj = root;
  }
  if (json_is_array (pj))
    json_array_set_new (pj, strtoul (last, NULL, 10), repl);
  else
    json_object_set_new (pj, last, repl);
}

static json_t *
replacement (int kind)
{
  switch (kind) {
  case 0: return json_null ();
  case 1: return json_integer (-1);
  case 2: return json_string ("");
  case 3: return json_string ("X;\n$(y)\xc3\xa9");
  case 4: return json_array ();
  default: return json_object ();
  }
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Below targetAffinity's outline the plan's text is passed through as
 * written (the API server checks it), so it is not fuzzed. */
static int
passed_through (const char *path)
{
  const char *p = "spec>targetAffinity>";

  return strncmp (path, p, strlen (p)) == 0 && strchr (path + strlen (p), '>') != NULL;
}

static void
test_every_field_every_type (void)
{
  const char *cases[] = { "case-bios-1vol.json", "case-uefi-3vol.json" };
  char **dumps = NULL;
  size_t ndumps = 0, nfiles = 0, c, i, ok = 0, bad = 0;
  int kind, which;

  for (c = 0; c < 2; c++) {
    struct built base;
    struct Pallet_ec2_manifest_opts o;

    load_case (cases[c], &base, &o);
    for (which = 0; which < 3; which++) {
      json_t *doc = which == 0 ? base.plan : which == 1 ? base.vm : base.state;
      struct paths p = { 0 };

      collect (doc, "", &p);
      for (i = 0; i < p.n; i++) {
        for (kind = 0; kind < 6 && !(which == 0 && passed_through (p.v[i])); kind++) {
          struct built b = { 0 };
          size_t m;

          b.plan = json_deep_copy (base.plan);
          b.vm = json_deep_copy (base.vm);
          b.state = json_deep_copy (base.state);
          replace_at (which == 0   ? b.plan
                      : which == 1 ? b.vm
                                   : b.state,
                      p.v[i], replacement (kind));
          build (&b, &o);
          if (b.rc != 0) {
            bad++;
            /* Every failure says why, and only known codes come back. */
            CU_ASSERT_PTR_NOT_NULL (b.err);
            CU_ASSERT_TRUE (b.rc == 2 || b.rc == 12);
            CU_ASSERT_PTR_NULL (b.manifests);
          }
          else {
            ok++;
            CU_ASSERT_PTR_NULL (b.err);
            for (m = 0; m < json_array_size (b.manifests); m++) {
              dumps = realloc (dumps, (ndumps + 1) * sizeof *dumps);
              CU_ASSERT_PTR_NOT_NULL_FATAL (dumps);
              dumps[ndumps] = json_dumps (json_array_get (b.manifests, m), JSON_SORT_KEYS);
              CU_ASSERT_PTR_NOT_NULL_FATAL (dumps[ndumps]);
              ndumps++;
            }
          }
          built_free (&b);
        }
        free (p.v[i]);
      }
      free (p.v);
    }
    built_free (&base);
  }

  /* Every distinct successful output must validate (queued). */
  if (ndumps)
    qsort (dumps, ndumps, sizeof *dumps, cmp_str);
  for (i = 0; i < ndumps; i++) {
    if (i > 0 && strcmp (dumps[i], dumps[i - 1]) == 0)
      continue;
    queue_text ("fuzz", nfiles++, dumps[i]);
  }
  fprintf (stderr,
           "  %zu builds succeeded, %zu were refused; queued "
           "%zu distinct manifests\n",
           ok, bad, nfiles);
  CU_ASSERT_TRUE (ok > 0);
  CU_ASSERT_TRUE (bad > 0);
  for (i = 0; i < ndumps; i++)
    free (dumps[i]);
  free (dumps);
}

static void
test_options_json (void)
{
  struct Pallet_ec2_manifest_opts o;
  json_t *j = json_pack ("{s:b, s:s}", "copyMode", 1, "podBinding", "l2bridge");
  char *err = NULL;

  CU_ASSERT_EQUAL (Pallet_ec2_manifest_opts_from_json (j, &o, &err), 0);
  CU_ASSERT_EQUAL (o.copy_mode, 1);
  CU_ASSERT_EQUAL (o.pod_l2bridge, 1);
  CU_ASSERT_EQUAL (o.secure_boot, 0);
  json_object_set_new (j, "podBinding", json_string ("passt"));
  CU_ASSERT_EQUAL (Pallet_ec2_manifest_opts_from_json (j, &o, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err);
  if (err)
    CU_ASSERT_PTR_NOT_NULL (strstr (err, "options.podBinding"));
  free (err);
  json_decref (j);
}

static void
test_bad_input_types (void)
{
  json_t *arr = json_array (), *obj = json_object (), *ms = NULL;
  char *err = NULL;

  CU_ASSERT_EQUAL (Pallet_ec2_build_manifests (arr, obj, obj, NULL, &ms, NULL, &err), 2);
  CU_ASSERT_PTR_NULL (ms);
  CU_ASSERT_PTR_NOT_NULL (err);
  free (err);
  err = NULL;
  CU_ASSERT_EQUAL (Pallet_ec2_build_manifests (obj, obj, obj, NULL, &ms, NULL, &err), 2);
  CU_ASSERT_PTR_NOT_NULL (err);
  free (err);
  json_decref (arr);
  json_decref (obj);
}

/* ---- conversion-only plans: existing PVCs ---- */

#define DS       "forklift.konveyor.io/disk-source"
#define CASE3_ID "i-0a1b2c3d4e5f60002"

static json_t *
pvc (const char *name, const char *ns, const char *label, const char *id, const char *src,
     const char *index, const char *mode)
{
  json_t *p = json_pack ("{s:{s:s, s:s, s:{s:s}, s:{}}, s:{s:s, s:s}}", "metadata", "name", name,
                         "namespace", ns, "labels", label, id, "annotations", "spec", "volumeMode",
                         mode, "storageClassName", "ceph");
  json_t *ann = jget (p, "metadata>annotations");

  if (src)
    json_object_set_new (ann, DS, json_string (src));
  if (index)
    json_object_set_new (ann, "forklift.konveyor.io/disk-index", json_string (index));
  return p;
}

/* case-uefi-3vol: disk 0 vol-..010, 1 vol-..011, 2 vol-..012.  One PVC by
 * disk-source, one by vmUUID, one by disk-index; decoys: no disk-source,
 * another VM, another namespace, the same PVC listed twice. */
static json_t *
good_pvcs (void)
{
  json_t *a = json_array ();

  json_array_append_new (
      a, pvc ("c-root", "vms", "vmID", CASE3_ID, "vol-0src0000000000010", NULL, "Block"));
  json_array_append_new (
      a, pvc ("a-data", "vms", "vmUUID", CASE3_ID, "vol-0src0000000000011", NULL, "Block"));
  json_array_append_new (
      a, pvc ("b-logs", "vms", "vmID", CASE3_ID, "imported/logs.img", "2", "Filesystem"));
  json_array_append_new (a, pvc ("scratch", "vms", "vmID", CASE3_ID, NULL, NULL, "Block"));
  json_array_append_new (
      a, pvc ("other", "vms", "vmID", "i-0other", "vol-0src0000000000010", NULL, "Block"));
  json_array_append_new (
      a, pvc ("elsewhere", "prod", "vmID", CASE3_ID, "vol-0src0000000000012", NULL, "Block"));
  json_array_append_new (
      a, pvc ("c-root", "vms", "vmID", CASE3_ID, "vol-0src0000000000010", NULL, "Block"));
  return a;
}

static json_t *
vol_by_index (json_t *state, json_int_t idx)
{
  size_t i;
  json_t *v;

  json_array_foreach (json_object_get (state, "volumes"), i, v)
    if (json_integer_value (json_object_get (v, "diskIndex")) == idx)
      return v;
  return NULL;
}

static void
test_existing_pvcs (void)
{
  struct built b;
  struct Pallet_ec2_manifest_opts o;
  json_t *pvcs = good_pvcs (), *vm;
  const char *code = NULL;
  char *err = NULL;
  static const char *const want[] = { "c-root", "a-data", "b-logs" };

  load_case ("case-uefi-3vol.json", &b, &o);
  CU_ASSERT_EQUAL_FATAL (Pallet_ec2_conversion_pvcs (pvcs, CASE3_ID, "vms",
                                                     json_object_get (b.state, "volumes"), &code,
                                                     &err),
                         0);
  CU_ASSERT_PTR_NULL (code);
  CU_ASSERT_PTR_NULL (err);
  for (json_int_t i = 0; i < 3; i++)
    ASSERT_STR (vol_by_index (b.state, i), "pvcName", want[i]);
  ASSERT_STR (vol_by_index (b.state, 2), "pvcVolumeMode", "Filesystem");
  ASSERT_STR (vol_by_index (b.state, 0), "pvcStorageClass", "ceph");
  /* Only the claims: no PV, no PVC, the VM on the given names. */
  o.existing_pvcs = 1;
  build (&b, &o);
  CU_ASSERT_EQUAL_FATAL (b.rc, 0);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolume"), 0);
  CU_ASSERT_EQUAL (count (b.manifests, "PersistentVolumeClaim"), 0);
  CU_ASSERT_EQUAL (json_array_size (b.manifests), 1);
  vm = vm_of (&b);
  for (int i = 0; i < 3; i++) {
    char path[128];
    snprintf (path, sizeof path, T "volumes>%d>persistentVolumeClaim>claimName", i);
    ASSERT_STR (vm, path, want[i]);
  }
  ASSERT_STR (vm, D "devices>disks>0>serial", "vol-0src0000000000010");
  CU_ASSERT_EQUAL (iget (vm, D "devices>disks>0>bootOrder"), 1);
  queue_manifests ("existing-pvcs", b.manifests);
  json_decref (pvcs);
  built_free (&b);
}

/* Runs the matcher on case-uefi-3vol with pvcs (stolen); returns its
 * status and sets *code, *err (caller frees err). */
static int
match (json_t *pvcs, const char **code, char **err)
{
  struct built b;
  struct Pallet_ec2_manifest_opts o;
  int r;

  load_case ("case-uefi-3vol.json", &b, &o);
  r = Pallet_ec2_conversion_pvcs (pvcs, CASE3_ID, "vms", json_object_get (b.state, "volumes"), code,
                                  err);
  json_decref (pvcs);
  built_free (&b);
  return r;
}

static void
test_existing_pvcs_errors (void)
{
  const char *code;
  char *err;
  json_t *p;
  struct built b;
  struct Pallet_ec2_manifest_opts o;

  /* One PVC short: counted, named, with the fix. */
  p = good_pvcs ();
  json_array_remove (p, 1);
  CU_ASSERT_EQUAL (match (p, &code, &err), 2 /* PALLET_E_INVALID */);
  CU_ASSERT_STRING_EQUAL (code, "ConversionPVCCountMismatch");
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "has 3 EBS volumes"));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "but 2 PVCs"));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "(c-root, b-logs)"));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "vol-0src0000000000011"));
  free (err);

  /* A disk-source that is no volume, and no disk-index. */
  p = good_pvcs ();
  json_object_set_new (jget (json_array_get (p, 1), "metadata>annotations"), DS,
                       json_string ("vol-0nope"));
  CU_ASSERT_EQUAL (match (p, &code, &err), 2);
  CU_ASSERT_STRING_EQUAL (code, "ConversionPVCUnmatched");
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "a-data"));
  free (err);

  /* A disk-index out of range is no match either. */
  p = good_pvcs ();
  json_object_set_new (jget (json_array_get (p, 2), "metadata>annotations"),
                       "forklift.konveyor.io/disk-index", json_string ("7"));
  CU_ASSERT_EQUAL (match (p, &code, &err), 2);
  CU_ASSERT_STRING_EQUAL (code, "ConversionPVCUnmatched");
  free (err);

  /* Two PVCs for one disk. */
  p = good_pvcs ();
  json_object_set_new (jget (json_array_get (p, 2), "metadata>annotations"), DS,
                       json_string ("vol-0src0000000000011"));
  CU_ASSERT_EQUAL (match (p, &code, &err), 2);
  CU_ASSERT_STRING_EQUAL (code, "ConversionPVCDuplicate");
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "a-data") && strstr (err, "b-logs"));
  free (err);

  /* Not a list of objects: no crash, a count mismatch. */
  CU_ASSERT_EQUAL (match (json_pack ("[s,i,{}]", "x", 1), &code, &err), 2);
  CU_ASSERT_STRING_EQUAL (code, "ConversionPVCCountMismatch");
  free (err);

  /* build_vm with existing PVCs but no pvcName recorded. */
  load_case ("case-uefi-3vol.json", &b, &o);
  o.existing_pvcs = 1;
  build (&b, &o);
  CU_ASSERT_EQUAL (b.rc, 2);
  CU_ASSERT_PTR_NOT_NULL (b.err && strstr (b.err, "pvcName"));
  built_free (&b);
}

/* ---- Forklift plan fields: compatibility default, per-VM power, storage
 * modes, name templates ----------------------------------------------- */

static json_t *
spec_of (struct built *b)
{
  json_t *spec = json_object_get (b->plan, "spec");
  if (!spec) {
    spec = json_object ();
    json_object_set_new (b->plan, "spec", spec);
  }
  return spec;
}

static void
m_skip_conversion (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "skipGuestConversion", json_true ());
}

static void
m_skip_no_compat (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  m_skip_conversion (b, o);
  json_object_set_new (spec_of (b), "useCompatibilityMode", json_false ());
}

static void
m_vm_power_off (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "targetPowerState", json_string ("on"));
  json_object_set_new (b->vm, "targetPowerState", json_string ("off"));
}

static json_t *
sto0_dest (struct built *b)
{
  json_t *map = json_object_get (b->plan, "storageMap"), *e;
  size_t i;
  json_array_foreach (map, i, e)
    if (!strcmp (json_string_value (json_object_get (json_object_get (e, "source"), "name"))
                     ? json_string_value (json_object_get (json_object_get (e, "source"), "name"))
                     : "",
                 "gp3"))
      return json_object_get (e, "destination");
  return NULL;
}

static void
m_rwx (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (sto0_dest (b), "accessMode", json_string ("ReadWriteMany"));
  json_object_set_new (sto0_dest (b), "volumeMode", json_string ("Block"));
}

static void
m_filesystem (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (sto0_dest (b), "volumeMode", json_string ("Filesystem"));
}

static void
m_templates (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (spec_of (b), "pvcNameTemplate",
                       json_string ("{{trunc 3 .PlanName}}-{{.TargetVmName}}-{{if eq .DiskIndex "
                                    ".RootDiskIndex}}root{{else}}data{{end}}-{{lower .VolumeID}}"));
  json_object_set_new (spec_of (b), "volumeNameTemplate", json_string ("vol-{{.VolumeIndex}}"));
  json_object_set_new (spec_of (b), "networkNameTemplate",
                       json_string ("{{if eq .NetworkType \"Pod\"}}pod{{else}}multus-{{"
                                    ".NetworkIndex}}{{end}}"));
  /* The VM's own template wins over the plan's. */
  json_object_set_new (b->vm, "volumeNameTemplate", json_string ("d{{.VolumeIndex}}"));
}

static void
m_tpl_unknown_var (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (spec_of (b), "pvcNameTemplate", json_string ("{{.VMName}}-{{.DiskIndex}}"));
}

static void
m_tpl_bad_action (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (spec_of (b), "networkNameTemplate", json_string ("{{printf \"%d\" 1}}"));
}

static void
m_tpl_not_label (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (spec_of (b), "pvcNameTemplate", json_string ("{{.VmName}}_{{.DiskIndex}}"));
}

static void
m_tpl_same_name (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  json_t *v2 = json_deep_copy (vol0 (b));
  (void) o;
  json_object_set_new (v2, "sourceVolumeId", json_string ("vol-0src0000000000002"));
  json_object_set_new (v2, "targetVolumeId", json_string ("vol-0new0000000000002"));
  json_object_set_new (v2, "diskIndex", json_integer (1));
  json_object_set_new (v2, "boot", json_false ());
  json_array_append_new (json_object_get (b->state, "volumes"), v2);
  json_object_set_new (spec_of (b), "pvcNameTemplate", json_string ("{{.VmName}}"));
}

static void
m_generate_name (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (spec_of (b), "pvcNameTemplateUseGenerateName", json_true ());
}

/* A VM's targetPowerState, not the plan's, is what the VM starts with
 * once its Pods have run (pallet.dev/target-run-strategy). */
static void
m_vm_power_on (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "targetPowerState", json_string ("off"));
  json_object_set_new (b->vm, "targetPowerState", json_string ("on"));
}

static void
m_vm_power_bad (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (b->plan, "targetPowerState", json_string ("on"));
  json_object_set_new (b->vm, "index", json_integer (3));
  json_object_set_new (b->vm, "targetPowerState", json_string ("sometimes"));
}

static void
staged_strategy (void (*mutate) (struct built *, struct Pallet_ec2_manifest_opts *),
                 const char *want)
{
  struct built b;
  char *err = NULL;

  variant (mutate, &b);
  json_array_append_new (b.manifests, json_pack ("{s:s,s:s,s:{s:s,s:{s:s}},s:{}}", "apiVersion",
                                                 "v1", "kind", "Pod", "metadata", "name", "copy",
                                                 "labels", PALLET_EC2_STAGE_LABEL, "copy", "spec"));
  CU_ASSERT_EQUAL (Pallet_ec2_stage_items (b.manifests, &err), 0);
  free (err);
  ASSERT_STR (vm_of (&b), "spec>runStrategy", "Halted");
  ASSERT_STR (vm_of (&b), "metadata>annotations>" PALLET_EC2_TARGET_RUN_STRATEGY, want);
  built_free (&b);
}

static void
test_vm_power_annotation (void)
{
  staged_strategy (m_vm_power_on, "Always");
  staged_strategy (m_vm_power_off, "Halted");
  staged_strategy (m_power_spec_on, "Always");
  expect_error (m_vm_power_bad, "plan.spec.vms[3].targetPowerState \"sometimes\" is not on, off "
                                "or auto");
}

/* ---- the Plan's Pod fields (podfields.c) ---- */

#define POD_FIELDS                                                                                  \
  "{\"convertorLabels\": {\"team\": \"blue\", \"example.com/tier\": \"gold\"},"                     \
  " \"convertorNodeSelector\": {\"node-role.kubernetes.io/worker\": \"\","                          \
  "   \"topology.kubernetes.io/zone\": \"us-east-1b\"},"                                            \
  " \"convertorAffinity\": {\"nodeAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\":" \
  "   {\"nodeSelectorTerms\": [{\"matchExpressions\": [{\"key\": \"fast\", \"operator\": "          \
  "\"Exists\"}]}]}}},"                                                                              \
  " \"transferNetwork\": {\"name\": \"transfer\", \"namespace\": \"net\"},"                         \
  " \"serviceAccount\": \"migrator\"}"

static json_t *
pod_plan (const char *spec_json)
{
  json_t *spec = json_loads (spec_json, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (spec);
  return json_pack ("{s:s,s:o}", "name", "p", "spec", spec);
}

static json_t *
bare_pod (const char *name, const char *stage)
{
  return json_pack ("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s}},s:{s:s,s:{s:s},s:[{s:s,s:s}]}}", "apiVersion",
                    "v1", "kind", "Pod", "metadata", "name", name, "namespace", "vms", "labels",
                    "app", "pallet-convert", PALLET_EC2_STAGE_LABEL, stage, "spec", "restartPolicy",
                    "Never", "nodeSelector", "topology.kubernetes.io/zone", "us-east-1b",
                    "containers", "name", "c", "image", "debian");
}

/* The spec patched with one field, checked against zone; fails naming want. */
static void
pod_error (const char *key, const char *value_json, const char *want)
{
  json_t *plan = pod_plan (POD_FIELDS), *pod = bare_pod ("x-v2v", "convert");
  char *err = NULL;

  json_object_set_new (json_object_get (plan, "spec"), key,
                       json_loads (value_json, JSON_DECODE_ANY, NULL));
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_check (plan, "us-east-1b", &err), PALLET_E_INVALID);
  free (err);
  err = NULL;
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (plan, "us-east-1b", 1, pod, &err),
                   PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (!strstr (err, want))
    fprintf (stderr, "  error \"%s\" lacks \"%s\"\n", err, want);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, want));
  free (err);
  json_decref (plan);
  json_decref (pod);
}

static void
m_bad_convertor_label (struct built *b, struct Pallet_ec2_manifest_opts *o)
{
  (void) o;
  json_object_set_new (json_object_get (b->plan, "spec"), "convertorLabels",
                       json_pack ("{s:s}", "team", "a b"));
}

static void
test_pod_fields (void)
{
  json_t *plan = pod_plan (POD_FIELDS), *conv = bare_pod ("web-01-v2v", "convert");
  json_t *copy = bare_pod ("web-01-ebs-copy", "copy"), *q = json_array ();
  char *err = NULL;

  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (plan, "us-east-1b", 1, conv, &err), PALLET_OK);
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (plan, "us-east-1b", 0, copy, &err), PALLET_OK);
  CU_ASSERT_PTR_NULL (err);
  /* The conversion Pod: labels and node selector merged with pallet's. */
  ASSERT_STR (conv, "metadata>labels>team", "blue");
  ASSERT_STR (conv, "metadata>labels>example.com/tier", "gold");
  ASSERT_STR (conv, "metadata>labels>app", "pallet-convert");
  ASSERT_STR (conv, "spec>nodeSelector>node-role.kubernetes.io/worker", "");
  ASSERT_STR (conv, "spec>nodeSelector>topology.kubernetes.io/zone", "us-east-1b");
  ASSERT_STR (conv,
              "spec>affinity>nodeAffinity>requiredDuringSchedulingIgnoredDuringExecution>"
              "nodeSelectorTerms>0>matchExpressions>0>operator",
              "Exists");
  ASSERT_STR (conv, "metadata>annotations>k8s.v1.cni.cncf.io/networks",
              "[{\"name\":\"transfer\",\"namespace\":\"net\"}]");
  ASSERT_STR (conv, "spec>serviceAccountName", "migrator");
  /* The copy Pod: the network and the service account only, as Forklift
   * does for its transfer Pods. */
  ASSERT_STR (copy, "metadata>annotations>k8s.v1.cni.cncf.io/networks",
              "[{\"name\":\"transfer\",\"namespace\":\"net\"}]");
  ASSERT_STR (copy, "spec>serviceAccountName", "migrator");
  CU_ASSERT_PTR_NULL (jget (copy, "metadata>labels>team"));
  CU_ASSERT_PTR_NULL (jget (copy, "spec>affinity"));
  CU_ASSERT_PTR_NULL (jget (copy, "spec>nodeSelector>node-role.kubernetes.io/worker"));
  json_array_append (q, conv);
  json_array_append (q, copy);
  queue_manifests ("podfields", q);

  /* No namespace: Multus takes the Pod's. */
  json_object_del (json_object_get (json_object_get (plan, "spec"), "transferNetwork"),
                   "namespace");
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (plan, NULL, 1, conv, &err), PALLET_OK);
  ASSERT_STR (conv, "metadata>annotations>k8s.v1.cni.cncf.io/networks",
              "[{\"name\":\"transfer\"}]");
  /* A copy Pod with copy-service-account: the same name, or an error. */
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (plan, NULL, 0, copy, &err), PALLET_OK);
  json_object_set_new (json_object_get (copy, "spec"), "serviceAccountName", json_string ("irsa"));
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (plan, NULL, 0, copy, &err), PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "copy-service-account \"irsa\""));
  free (err);
  /* Nothing set: the Pods are left as they are. */
  err = NULL;
  json_t *none = pod_plan ("{\"transferNetwork\": {}, \"serviceAccount\": \"\"}");
  json_t *pod = bare_pod ("y-v2v", "convert"), *before = json_deep_copy (pod);
  CU_ASSERT_EQUAL (Pallet_ec2_pod_fields_apply (none, NULL, 1, pod, &err), PALLET_OK);
  CU_ASSERT_TRUE (json_equal (pod, before));
  json_decref (none);
  json_decref (pod);
  json_decref (before);
  json_decref (q);
  json_decref (conv);
  json_decref (copy);
  json_decref (plan);

  pod_error ("convertorLabels", "{\"bad key;rm\": \"x\"}",
             "plan.spec.convertorLabels: \"bad key;rm\" is not a valid label key");
  pod_error ("convertorLabels", "{\"team\": \"-blue\"}",
             "plan.spec.convertorLabels.team: \"-blue\" is not a valid label value");
  pod_error ("convertorLabels", "{\"team\": 3}",
             "plan.spec.convertorLabels.team: expected a string value");
  pod_error ("convertorLabels", "[\"team\"]", "plan.spec.convertorLabels: expected an object");
  pod_error ("convertorLabels", "{\"pallet.dev/stage\": \"x\"}",
             "plan.spec.convertorLabels.pallet.dev/stage: pallet sets this label");
  pod_error ("convertorNodeSelector", "{\"topology.kubernetes.io/zone\": \"us-east-1a\"}",
             "puts the conversion Pod in zone us-east-1a but the VM's volumes are in "
             "us-east-1b");
  pod_error ("convertorNodeSelector", "{\"a/b/c\": \"x\"}",
             "plan.spec.convertorNodeSelector: \"a/b/c\" is not a valid label key");
  pod_error ("convertorAffinity", "\"near\"", "plan.spec.convertorAffinity: expected an object");
  pod_error ("convertorAffinity", "{\"nodeAfinity\": {}}",
             "plan.spec.convertorAffinity.nodeAfinity: expected one of nodeAffinity");
  pod_error ("transferNetwork", "{\"namespace\": \"net\"}",
             "plan.spec.transferNetwork.name: missing");
  pod_error ("transferNetwork", "{\"name\": \"Transfer_Net\"}",
             "plan.spec.transferNetwork.name: \"Transfer_Net\" is not a "
             "NetworkAttachmentDefinition name");
  pod_error ("transferNetwork", "{\"name\": \"t\", \"namespace\": \"a.b\"}",
             "plan.spec.transferNetwork.namespace: \"a.b\" is not a namespace name");
  pod_error ("transferNetwork", "{\"name\": \"t\", \"kind\": \"Network\"}",
             "plan.spec.transferNetwork.kind: \"Network\"");
  pod_error ("transferNetwork", "{\"name\": \"t\", \"apiVersion\": \"v1\"}",
             "plan.spec.transferNetwork.apiVersion: \"v1\"");
  pod_error ("transferNetwork", "{\"name\": \"t\", \"fieldPath\": \"spec\"}",
             "plan.spec.transferNetwork.fieldPath");
  pod_error ("transferNetwork", "\"transfer\"", "plan.spec.transferNetwork: expected an object");
  pod_error ("serviceAccount", "\"Mig rator\"",
             "plan.spec.serviceAccount: \"Mig rator\" is not a ServiceAccount name");
  pod_error ("serviceAccount", "7", "plan.spec.serviceAccount: expected a string");
  /* build_vm fails before it emits anything. */
  expect_error (m_bad_convertor_label, "plan.spec.convertorLabels.team: \"a b\"");
}

static void
test_forklift_fields (void)
{
  struct built b;
  json_t *pvc, *pv;

  /* useCompatibilityMode absent = true (the CRD's default). */
  variant (m_skip_conversion, &b);
  ASSERT_STR (vm_of (&b), D "devices>disks>0>disk>bus", "sata");
  ASSERT_STR (vm_of (&b), D "devices>interfaces>0>model", "e1000e");
  built_free (&b);
  variant (m_skip_no_compat, &b);
  ASSERT_STR (vm_of (&b), D "devices>disks>0>disk>bus", "virtio");
  built_free (&b);

  /* A VM's targetPowerState wins over the plan's. */
  variant (m_vm_power_off, &b);
  ASSERT_STR (vm_of (&b), "spec>runStrategy", "Halted");
  built_free (&b);

  variant (m_rwx, &b);
  pvc = nth (b.manifests, "PersistentVolumeClaim", 0);
  pv = nth (b.manifests, "PersistentVolume", 0);
  ASSERT_STR (pvc, "spec>accessModes>0", "ReadWriteMany");
  ASSERT_STR (pv, "spec>accessModes>0", "ReadWriteMany");
  ASSERT_STR (pvc, "spec>volumeMode", "Block");
  built_free (&b);
  expect_error (m_filesystem, "destination.volumeMode \"Filesystem\" is not supported yet");

  variant (m_templates, &b);
  pvc = nth (b.manifests, "PersistentVolumeClaim", 0);
  pv = nth (b.manifests, "PersistentVolume", 0);
  ASSERT_STR (pvc, "metadata>name", "ec2-web-01-root-vol-0src0000000000001");
  ASSERT_STR (pv, "spec>claimRef>name", "ec2-web-01-root-vol-0src0000000000001");
  ASSERT_STR (vm_of (&b), T "volumes>0>name", "d0");
  ASSERT_STR (vm_of (&b), T "volumes>0>persistentVolumeClaim>claimName",
              "ec2-web-01-root-vol-0src0000000000001");
  ASSERT_STR (vm_of (&b), D "devices>disks>0>name", "d0");
  ASSERT_STR (vm_of (&b), D "devices>interfaces>0>name", "pod");
  ASSERT_STR (vm_of (&b), T "networks>0>name", "pod");
  built_free (&b);

  expect_error (m_tpl_unknown_var, "pvcNameTemplate \"{{.VMName}}-{{.DiskIndex}}\": unknown "
                                   "variable .VMName (this template has ");
  expect_error (m_tpl_bad_action, "{{printf \"%d\" 1}} is not supported");
  expect_error (m_tpl_not_label, "gives \"web-01_0\" for a PVC, not a DNS-1123 label");
  expect_error (m_tpl_same_name, "gives \"web-01\" for disks 0 and 1; use {{.DiskIndex}}");
  expect_error (m_generate_name, "pvcNameTemplateUseGenerateName: not supported yet");
}

static void
test_template (void)
{
  json_t *vars = json_pack ("{s:s, s:i, s:i}", "Name", "Web-Server", "I", 2, "R", 0);
  static const char *const ok[][2] = {
    { "plain", "plain" },
    { "{{.Name}}-{{.I}}", "Web-Server-2" },
    { "{{ lower .Name }}", "web-server" },
    { "{{upper .Name}}", "WEB-SERVER" },
    { "{{trunc 3 .Name}}", "Web" },
    { "{{trunc 30 .Name}}", "Web-Server" },
    { "{{if eq .I .R}}root{{else}}data{{end}}", "data" },
    { "{{if eq .I 2}}two{{end}}!", "two!" },
    { "{{if eq .Name \"Web-Server\"}}y{{else}}n{{end}}", "y" },
  };
  static const char *const bad[][2] = {
    { "{{.Nope}}", "unknown variable .Nope (this template has .Name, .I, .R)" },
    { "{{.Name", "not closed" },
    { "{{if eq .I 2}}x", "{{if}} has no {{end}}" },
    { "x{{end}}", "{{end}} without {{if}}" },
    { "{{range .I}}", "is not supported" },
    { "{{}}", "empty or malformed" },
    { "{{trunc x .Name}}", "'x' is not a variable" },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL (Pallet_ec2_template (ok[i][0], vars, &out, &err), 0);
    if (!out || strcmp (out, ok[i][1]))
      fprintf (stderr, "  template %s: got %s (%s)\n", ok[i][0], out ? out : "-", err ? err : "");
    CU_ASSERT (out && !strcmp (out, ok[i][1]));
    free (out);
    free (err);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *out = NULL, *err = NULL;
    CU_ASSERT_EQUAL (Pallet_ec2_template (bad[i][0], vars, &out, &err), -1);
    CU_ASSERT_PTR_NULL (out);
    if (!err || !strstr (err, bad[i][1]))
      fprintf (stderr, "  template %s: error %s lacks %s\n", bad[i][0], err ? err : "-", bad[i][1]);
    CU_ASSERT (err && strstr (err, bad[i][1]));
    free (err);
  }
  json_decref (vars);
}

int
main (int argc, char **argv)
{
  CU_pSuite s;
  unsigned fails;

  if (argc != 3) {
    fprintf (stderr, "usage: %s FIXTURES-DIR VALIDATE.PY\n", argv[0]);
    return 2;
  }
  fixtures = argv[1];
  validate_py = argv[2];
  if (access (PYTHON, X_OK) != 0 || access (validate_py, R_OK) != 0) {
    fprintf (stderr, "%s or %s is missing: run scripts/install-deps.sh\n", PYTHON, validate_py);
    return 1;
  }
  if (mkdtemp (qdir) == NULL) {
    perror (qdir);
    return 1;
  }
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("ec2-manifest", NULL, NULL);
  CU_add_test (s, "BIOS, 1 volume, pod network", test_bios_1vol);
  CU_add_test (s, "UEFI, 3 volumes, pod+multus+ignored", test_uefi_3vol);
  CU_add_test (s, "compatibility mode, targetName", test_compat);
  CU_add_test (s, "hostile name, l2bridge, secure boot", test_hostile_name);
  CU_add_test (s, "copy mode", test_copy_mode);
  CU_add_test (s, "validator catches errors", test_validator_catches_errors);
  CU_add_test (s, "errors name the thing", test_errors);
  CU_add_test (s, "firmware variants", test_firmware_variants);
  CU_add_test (s, "power variants", test_power_variants);
  CU_add_test (s, "naming and boot disk", test_naming_and_boot);
  CU_add_test (s, "more errors", test_more_errors);
  CU_add_test (s, "every field, every type", test_every_field_every_type);
  CU_add_test (s, "options from JSON", test_options_json);
  CU_add_test (s, "conversion-only: existing PVCs", test_existing_pvcs);
  CU_add_test (s, "conversion-only: PVC errors", test_existing_pvcs_errors);
  CU_add_test (s, "Forklift plan fields", test_forklift_fields);
  CU_add_test (s, "a VM's targetPowerState after its Pods", test_vm_power_annotation);
  CU_add_test (s, "the Plan's Pod fields", test_pod_fields);
  CU_add_test (s, "name templates", test_template);
  CU_add_test (s, "queued manifests pass validate.py --strict", test_queued_manifests_validate);
  CU_add_test (s, "bad input types", test_bad_input_types);

  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  fails = CU_get_number_of_failures () + CU_get_number_of_tests_failed ();
  CU_cleanup_registry ();
  /* Left over only if a test stopped early. */
  while (nq > 0) {
    unlink (qfiles[--nq]);
    free (qfiles[nq]);
  }
  free (qfiles);
  rmdir (qdir);
  return fails ? 1 : 0;
}
