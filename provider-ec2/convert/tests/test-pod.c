/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for Pallet_convert_pod_manifest: the Pod's shape (command
 * with the device-name fix-up and its device map, block devices in disk
 * order, node selector, labels, resources, no credentials, the
 * termination message file) and the argument checks; and the result JSON
 * cut to a termination message's size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet-convert.h"

static const char *const claims3[] = { "vm-boot", "vm-data-1", "vm-data.2" };
/* As ec2_device_map makes it: disk 2 has no mapping entry (no name). */
static const struct Pallet_convert_device map3[] = {
  { "/dev/xvda", 0 },
  { "/dev/sdf", 1 },
  { NULL, 0 },
};

static struct Pallet_convert_pod_options
base_options (void)
{
  struct Pallet_convert_pod_options o = {
    .name = "pallet-convert-i-0abc",
    .namespace_ = "target-ns",
    .claims = claims3,
    .nclaims = 3,
    .zone = "us-east-1a",
    .vm_id = "i-0123456789abcdef0",
    .plan_uid = "9d3c6b3e-1111-2222-3333-444455556666",
    .migration_uid = "0f0e0d0c-aaaa-bbbb-cccc-ddddeeeeffff",
    .force_tcg = 1,
    .fix_device_names = 1,
    .devices = map3,
    .ndevices = 3,
  };
  return o;
}

static json_t *jpath (json_t *root, const char *path);

static const char *
path_str (json_t *root, const char *path)
{
  json_t *v = jpath (root, path);
  return json_is_string (v) ? json_string_value (v) : NULL;
}

/* Small dotted-path walker: "spec.containers.0.image". */
static json_t *
jpath (json_t *root, const char *path)
{
  char buf[256], *save = NULL, *tok;
  json_t *v = root;

  snprintf (buf, sizeof buf, "%s", path);
  for (tok = strtok_r (buf, ".", &save); tok && v; tok = strtok_r (NULL, ".", &save)) {
    if (json_is_array (v))
      v = json_array_get (v, strtoul (tok, NULL, 10));
    else
      v = json_object_get (v, tok);
  }
  return v;
}

/* Any object key in the tree that would carry a credential. */
static int
has_credential_key (json_t *v)
{
  static const char *const bad[] = {
    "secret",    "secretRef",          "secretKeyRef",     "envFrom",
    "valueFrom", "serviceAccountName", "imagePullSecrets", "projected",
  };
  const char *k;
  json_t *x;
  size_t i;

  if (json_is_object (v)) {
    json_object_foreach (v, k, x) {
      for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strcmp (k, bad[i]) == 0)
          return 1;
      if (has_credential_key (x))
        return 1;
    }
  }
  else if (json_is_array (v)) {
    json_array_foreach (v, i, x)
      if (has_credential_key (x))
        return 1;
  }
  return 0;
}

static const char *
env_value (json_t *pod, const char *name)
{
  json_t *env = jpath (pod, "spec.containers.0.env"), *e;
  size_t i;

  json_array_foreach (env, i, e)
    if (strcmp (json_string_value (json_object_get (e, "name")), name) == 0)
      return json_string_value (json_object_get (e, "value"));
  return NULL;
}

static const char *
nz (const char *s)
{
  return s ? s : "";
}

static void
test_shape (void)
{
  struct Pallet_convert_pod_options o = base_options ();
  static const char *const argv[] = {
    "pallet-convert-tool",
    "convert",
    "--verbose",
    "--log",
    "-",
    "--root",
    "first",
    "--format",
    "raw",
    "--work-dir",
    "/var/tmp",
    "--result-file",
    "/dev/termination-log",
    "--tcg",
    "--fix-device-names",
    "--device",
    "/dev/xvda=0",
    "--device",
    "/dev/sdf=1",
    "/dev/block0",
    "/dev/block1",
    "/dev/block2",
  };
  char *err = (char *) "untouched";
  json_t *pod = Pallet_convert_pod_manifest (&o, &err), *cmd, *devs, *vols;
  char key[128];

  CU_ASSERT_PTR_NOT_NULL_FATAL (pod);
  CU_ASSERT_PTR_NULL (err);
  CU_ASSERT_STRING_EQUAL (path_str (pod, "apiVersion"), "v1");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "kind"), "Pod");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "metadata.name"), o.name);
  CU_ASSERT_STRING_EQUAL (path_str (pod, "metadata.namespace"), "target-ns");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.restartPolicy"), "Never");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.image"), PALLET_CONVERT_DEFAULT_IMAGE);
  CU_ASSERT_EQUAL (json_array_size (jpath (pod, "spec.containers")), 1);

  /* The whole command, no shell. */
  cmd = jpath (pod, "spec.containers.0.command");
  CU_ASSERT_EQUAL_FATAL (json_array_size (cmd), sizeof argv / sizeof argv[0]);
  for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++)
    CU_ASSERT_STRING_EQUAL (json_string_value (json_array_get (cmd, i)), argv[i]);
  CU_ASSERT_PTR_NULL (jpath (pod, "spec.containers.0.args"));
  /* The tool's result JSON is the termination message, failed or not. */
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.terminationMessagePath"),
                          "/dev/termination-log");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.terminationMessagePolicy"), "File");
  /* The work dir (the overlays) is the tmp emptyDir. */
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.volumeMounts.0.mountPath"), "/var/tmp");

  /* Disk i: volumeDevice /dev/block<i> -> volume -> claims[i]. */
  devs = jpath (pod, "spec.containers.0.volumeDevices");
  vols = jpath (pod, "spec.volumes");
  CU_ASSERT_EQUAL_FATAL (json_array_size (devs), 3);
  for (size_t i = 0; i < 3; i++) {
    const char *vname = json_string_value (json_object_get (json_array_get (devs, i), "name"));
    char dev[32];
    int found = 0;
    size_t j;
    json_t *v;

    snprintf (dev, sizeof dev, "/dev/block%zu", i);
    CU_ASSERT_STRING_EQUAL (
        json_string_value (json_object_get (json_array_get (devs, i), "devicePath")), dev);
    json_array_foreach (vols, j, v)
      if (strcmp (json_string_value (json_object_get (v, "name")), vname) == 0) {
        snprintf (key, sizeof key, "spec.volumes.%zu.persistentVolumeClaim.claimName", j);
        CU_ASSERT_STRING_EQUAL (path_str (pod, key), claims3[i]);
        found = 1;
      }
    CU_ASSERT (found);
  }

  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (jpath (pod, "spec.nodeSelector"),
                                                              "topology.kubernetes.io/zone")),
                          "us-east-1a");
  CU_ASSERT_EQUAL (json_object_size (jpath (pod, "spec.nodeSelector")), 1);

  json_t *labels = jpath (pod, "metadata.labels");
  CU_ASSERT_STRING_EQUAL (
      json_string_value (json_object_get (labels, "forklift.konveyor.io/vm-id")), o.vm_id);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (labels, "plan")), o.plan_uid);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (labels, "migration")),
                          o.migration_uid);

  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.resources.requests.cpu"), "1");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.resources.requests.memory"), "2Gi");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.resources.limits.memory"), "2Gi");
  CU_ASSERT_STRING_EQUAL (nz (env_value (pod, "LIBGUESTFS_BACKEND_SETTINGS")), "force_tcg");
  CU_ASSERT_STRING_EQUAL (nz (env_value (pod, "LIBGUESTFS_BACKEND")), "direct");
  CU_ASSERT (json_is_false (jpath (pod, "spec.automountServiceAccountToken")));
  CU_ASSERT (
      json_is_false (jpath (pod, "spec.containers.0.securityContext.allowPrivilegeEscalation")));
  CU_ASSERT_FALSE (has_credential_key (pod));
  json_decref (pod);
}

/* force_tcg off: the KVM device and a KubeVirt node; requests honoured;
 * no zone, no labels. */
static void
test_kvm_and_options (void)
{
  struct Pallet_convert_pod_options o = {
    .name = "conv",
    .namespace_ = "ns",
    .image = "registry.local/v2v@sha256:0123",
    .claims = claims3,
    .nclaims = 1,
    .cpu_request = "500m",
    .memory_request = "3.5Gi",
  };
  char *err = NULL;
  json_t *pod = Pallet_convert_pod_manifest (&o, &err), *sel, *labels;

  CU_ASSERT_PTR_NOT_NULL_FATAL (pod);
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.image"), o.image);
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.resources.requests.cpu"), "500m");
  CU_ASSERT_STRING_EQUAL (path_str (pod, "spec.containers.0.resources.limits.memory"), "3.5Gi");
  CU_ASSERT_STRING_EQUAL (
      json_string_value (json_object_get (jpath (pod, "spec.containers.0.resources.limits"),
                                          "devices.kubevirt.io/kvm")),
      "1");
  CU_ASSERT_PTR_NULL (env_value (pod, "LIBGUESTFS_BACKEND_SETTINGS"));
  sel = jpath (pod, "spec.nodeSelector");
  CU_ASSERT_PTR_NULL (json_object_get (sel, "topology.kubernetes.io/zone"));
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (sel, "kubevirt.io/schedulable")),
                          "true");
  labels = jpath (pod, "metadata.labels");
  CU_ASSERT_EQUAL (json_object_size (labels), 2); /* app and the stage only */
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (labels, "pallet.dev/stage")),
                          "convert");
  CU_ASSERT_EQUAL (json_array_size (jpath (pod, "spec.containers.0.volumeDevices")), 1);
  /* fix-device-names=false and KVM: neither --fix-device-names, --device
   * nor --tcg; the disk last. */
  json_t *cmd = jpath (pod, "spec.containers.0.command");
  for (size_t i = 0; i < json_array_size (cmd); i++) {
    const char *a = json_string_value (json_array_get (cmd, i));
    CU_ASSERT (strcmp (a, "--fix-device-names") && strcmp (a, "--device") && strcmp (a, "--tcg"));
  }
  CU_ASSERT_STRING_EQUAL (json_string_value (json_array_get (cmd, json_array_size (cmd) - 1)),
                          "/dev/block0");
  json_decref (pod);

  /* The fix-up with no mapping at all: the tool then knows disk I by
   * position; no --device. */
  o.fix_device_names = 1;
  pod = Pallet_convert_pod_manifest (&o, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (pod);
  cmd = jpath (pod, "spec.containers.0.command");
  int fix = 0, dev = 0;
  for (size_t i = 0; i < json_array_size (cmd); i++) {
    fix += !strcmp (json_string_value (json_array_get (cmd, i)), "--fix-device-names");
    dev += !strcmp (json_string_value (json_array_get (cmd, i)), "--device");
  }
  CU_ASSERT_EQUAL (fix, 1);
  CU_ASSERT_EQUAL (dev, 0);
  json_decref (pod);
  o.fix_device_names = 0;

  /* tcg and no zone: no nodeSelector at all. */
  o.force_tcg = 1;
  pod = Pallet_convert_pod_manifest (&o, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (pod);
  CU_ASSERT_PTR_NULL (jpath (pod, "spec.nodeSelector"));
  CU_ASSERT_PTR_NULL (json_object_get (jpath (pod, "spec.containers.0.resources.limits"),
                                       "devices.kubevirt.io/kvm"));
  json_decref (pod);
}

/* One bad field at a time: NULL, and a message naming the value. */
static void
expect_error (const struct Pallet_convert_pod_options *o, const char *needle)
{
  char *err = NULL;
  json_t *pod = Pallet_convert_pod_manifest (o, &err);

  CU_ASSERT_PTR_NULL (pod);
  json_decref (pod);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (strstr (err, needle) == NULL)
    fprintf (stderr, "\nmessage \"%s\" lacks \"%s\"\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, needle));
  free (err);
  /* err may be NULL too. */
  CU_ASSERT_PTR_NULL (Pallet_convert_pod_manifest (o, NULL));
}

static void
test_errors (void)
{
  struct Pallet_convert_pod_options o;
  const char *many[PALLET_CONVERT_POD_MAX_DISKS + 1];
  char names[PALLET_CONVERT_POD_MAX_DISKS + 1][16];
  const char *dup[] = { "a", "b", "a" };
  const char *badc[] = { "ok", "Bad_Claim" };
  const char *nullc[] = { "ok", NULL };
  char long_label[80];
  char *err = NULL;

  CU_ASSERT_PTR_NULL (Pallet_convert_pod_manifest (NULL, &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "no options"));
  free (err);

  o = base_options ();
  o.name = "Bad_Name";
  expect_error (&o, "Bad_Name");
  o = base_options ();
  o.name = NULL;
  expect_error (&o, "(null)");
  o = base_options ();
  o.name = "-lead";
  expect_error (&o, "-lead");
  o = base_options ();
  o.namespace_ = "a.b";
  expect_error (&o, "namespace \"a.b\"");
  o = base_options ();
  o.namespace_ = "";
  expect_error (&o, "namespace");
  o = base_options ();
  o.image = "bad image";
  expect_error (&o, "bad image");
  o = base_options ();
  o.image = "";
  expect_error (&o, "image");
  o = base_options ();
  o.nclaims = 0;
  expect_error (&o, "no PersistentVolumeClaims");
  o = base_options ();
  o.claims = NULL;
  expect_error (&o, "no PersistentVolumeClaims");
  for (size_t i = 0; i <= PALLET_CONVERT_POD_MAX_DISKS; i++) {
    snprintf (names[i], sizeof names[i], "c%zu", i);
    many[i] = names[i];
  }
  o = base_options ();
  o.claims = many;
  o.nclaims = PALLET_CONVERT_POD_MAX_DISKS + 1;
  expect_error (&o, "65 PersistentVolumeClaims");
  o.nclaims = PALLET_CONVERT_POD_MAX_DISKS; /* the limit itself is fine */
  json_decref (Pallet_convert_pod_manifest (&o, &err));
  CU_ASSERT_PTR_NULL (err);
  o = base_options ();
  o.claims = dup;
  o.nclaims = 3;
  expect_error (&o, "\"a\" is given twice");
  o = base_options ();
  o.claims = badc;
  o.nclaims = 2;
  expect_error (&o, "claim 1, \"Bad_Claim\"");
  o = base_options ();
  o.claims = nullc;
  o.nclaims = 2;
  expect_error (&o, "claim 1, \"(null)\"");
  o = base_options ();
  o.zone = "us east";
  expect_error (&o, "zone \"us east\"");
  memset (long_label, 'a', 70);
  long_label[70] = '\0';
  o = base_options ();
  o.vm_id = long_label;
  expect_error (&o, "vm_id");
  o = base_options ();
  o.plan_uid = "x/y";
  expect_error (&o, "plan_uid \"x/y\"");
  o = base_options ();
  o.migration_uid = "-m";
  expect_error (&o, "migration_uid");
  o = base_options ();
  o.cpu_request = "0";
  expect_error (&o, "CPU request \"0\"");
  o = base_options ();
  o.cpu_request = "-1";
  expect_error (&o, "CPU request");
  o = base_options ();
  o.memory_request = "2 Gi";
  expect_error (&o, "memory request \"2 Gi\"");
  o = base_options ();
  o.memory_request = "2GB";
  expect_error (&o, "2GB");
  o = base_options ();
  o.memory_request = "";
  expect_error (&o, "memory request");
  {
    struct Pallet_convert_device bad[] = { { "/dev/xvda", 0 }, { "/dev/sd f", 1 } };
    o = base_options ();
    o.devices = bad;
    o.ndevices = 2;
    expect_error (&o, "device 1, \"/dev/sd f\"");
    bad[1].name = "/dev/sdf=2";
    expect_error (&o, "\"/dev/sdf=2\"");
    bad[1].name = "/dev/sdf";
    bad[1].disk = 3; /* 3 claims: 0..2 */
    expect_error (&o, "device /dev/sdf is disk 3 of 3 claims");
    o.devices = NULL;
    expect_error (&o, "2 devices but no device map");
  }
  /* Empty optional labels are just left out. */
  o = base_options ();
  o.vm_id = "";
  o.plan_uid = NULL;
  json_t *pod = Pallet_convert_pod_manifest (&o, &err);
  CU_ASSERT_PTR_NOT_NULL (pod);
  CU_ASSERT_PTR_NULL (
      json_object_get (jpath (pod, "metadata.labels"), "forklift.konveyor.io/vm-id"));
  CU_ASSERT_PTR_NULL (json_object_get (jpath (pod, "metadata.labels"), "plan"));
  json_decref (pod);
}

/* The result as a termination message: under 4096 bytes whatever the
 * guest said, valid JSON, the cuts counted. */
static void
test_result_max (void)
{
  struct Pallet_convert_rewrite rw[200];
  char *warn[50], big[3000], files[200][48];
  struct Pallet_convert_result r = { 0 };
  json_t *j;
  char *s;

  memset (big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  for (size_t i = 0; i < 50; i++)
    warn[i] = big;
  for (size_t i = 0; i < 200; i++) {
    snprintf (files[i], sizeof files[i], "/boot/loader/entries/entry-%zu.conf", i);
    rw[i] = (struct Pallet_convert_rewrite){ files[i], (unsigned) i + 1, "/dev/nvme0n1p1",
                                             "UUID=0123abcd-0123-4567-89ab-0123456789ab" };
  }
  /* Small: whole, no cut marks. */
  r.rewrites = rw;
  r.nrewrites = 2;
  s = Pallet_convert_result_to_json_max (&r, PALLET_CONVERT_POD_RESULT_MAX);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  j = json_loads (s, 0, NULL);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (j, "deviceNameRewrites")), 2);
  CU_ASSERT_PTR_NULL (json_object_get (j, "rewritesOmitted"));
  CU_ASSERT_STRING_EQUAL (
      json_string_value (
          json_object_get (json_array_get (json_object_get (j, "deviceNameRewrites"), 1), "from")),
      "/dev/nvme0n1p1");
  json_decref (j);
  free (s);
  /* Huge: warnings gone, message cut, rewrites dropped from the end. */
  r.error = PALLET_CONVERT_E_FAILED;
  r.message = big;
  r.warnings = warn;
  r.nwarnings = 50;
  r.nrewrites = 200;
  s = Pallet_convert_result_to_json_max (&r, PALLET_CONVERT_POD_RESULT_MAX);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  CU_ASSERT (strlen (s) < PALLET_CONVERT_POD_RESULT_MAX);
  j = json_loads (s, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (j);
  CU_ASSERT_EQUAL (json_integer_value (json_object_get (j, "warningsOmitted")), 50);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (j, "warnings")), 0);
  CU_ASSERT_EQUAL (strlen (json_string_value (json_object_get (j, "message"))), 512);
  size_t kept = json_array_size (json_object_get (j, "deviceNameRewrites"));
  CU_ASSERT (kept > 10 && kept < 200);
  CU_ASSERT_EQUAL (json_integer_value (json_object_get (j, "rewritesOmitted")),
                   (json_int_t) (200 - kept));
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (j, "error")), "failed");
  json_decref (j);
  free (s);
  CU_ASSERT_PTR_NULL (Pallet_convert_result_to_json_max (&r, 100));
}

int
main (void)
{
  CU_pSuite s;
  unsigned failed;

  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("convert-pod", NULL, NULL);
  CU_add_test (s, "manifest shape", test_shape);
  CU_add_test (s, "KVM, image and requests", test_kvm_and_options);
  CU_add_test (s, "argument checks", test_errors);
  CU_add_test (s, "result as a termination message", test_result_max);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures () + CU_get_number_of_tests_failed ();
  CU_cleanup_registry ();
  return failed ? 1 : 0;
}
