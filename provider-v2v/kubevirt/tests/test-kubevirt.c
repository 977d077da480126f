/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_kubevirt on virt-v2v 2.2.0's real -o kubevirt output: the
 * quirks undone, the fields that matter, every manifest through
 * pallet-lint-manifests --strict, and the refusals.  argv[1] = tests dir,
 * argv[2] = pallet-lint-manifests. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include <pallet/provider.h>
#include "pallet-v2v-kubevirt.h"

#define PYTHON "/usr/bin/python3"
extern char **environ;
static const char *dir, *validate_py;
static char yaml[512];

static const char *PLAN =
    "{\"name\":\"p\",\"uid\":\"5a1d0000-0000-4000-8000-0000000000a1\",\"targetNamespace\":\"vms\","
    "\"targetPowerState\":null,\"spec\":{\"targetLabels\":{\"team\":\"blue\"}},"
    "\"vms\":[{\"name\":\"DC0_H0_VM0\",\"id\":\"vm-57\",\"index\":0}],"
    "\"networkMap\":[{\"source\":{\"name\":\"VM Network\"},\"destination\":{\"type\":\"pod\"}}],"
    "\"storageMap\":[{\"source\":{\"name\":\"LocalDS_0\"},\"destination\":{\"storageClass\":\"local-path\"}}]}";

static json_t *
source_facts (const char *firmware)
{
  return json_pack ("{s:s,s:s,s:s,s:i,s:i,s:s,s:[{s:s,s:s}],s:[{s:s,s:s}]}", "name", "DC0_H0_VM0",
                    "uuid", "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c", "firmware", firmware, "cpus", 1,
                    "memoryMiB", 1024, "powerState", "Off", "disks", "file",
                    "[LocalDS_0] DC0_H0_VM0/disk1.vmdk", "datastore", "LocalDS_0", "nics", "mac",
                    "00:50:56:aa:bb:01", "network", "VM Network");
}

static json_t *
outputs (void)
{
  /* the path virt-v2v wrote into the fixture */
  return json_pack ("{s:s,s:[{s:s,s:I}]}", "yaml", yaml, "disks", "path",
                    "/tmp/v2v-fixture/out/DC0_H0_VM0-sda", "sizeBytes", (json_int_t) 2147483648LL);
}

static int
validate_file (const char *path)
{
  char *argv[] = { (char *) PYTHON, (char *) validate_py, (char *) "--strict", (char *) path,
                   NULL };
  pid_t pid;
  int status;
  if (posix_spawn (&pid, PYTHON, NULL, NULL, argv, environ) != 0)
    return -1;
  waitpid (pid, &status, 0);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static int
validate_all (json_t *manifests)
{
  size_t i;
  json_t *m;
  int bad = 0;
  json_array_foreach (manifests, i, m) {
    char p[] = "/tmp/pallet-v2v-manifest-XXXXXX";
    int fd = mkstemp (p);
    close (fd);
    json_dump_file (m, p, JSON_INDENT (2));
    if (validate_file (p) != 0) {
      fprintf (stderr, "\n%s (%s) failed pallet-lint-manifests --strict\n", p,
               json_string_value (json_object_get (m, "kind")));
      bad++;
    }
    unlink (p);
  }
  return bad;
}

static int
build (json_t *vmi, json_t *plan, json_t *src, json_t *outs, json_t **ms, char **err)
{
  struct pallet_v2v_vm_in in = { .plan = plan,
                                 .vm = json_array_get (json_object_get (plan, "vms"), 0),
                                 .source = src,
                                 .outputs = outs,
                                 .migration_uid = "mig-1",
                                 .provider_type = "vsphere" };
  json_t *notes = NULL;
  int st = pallet_v2v_kubevirt_manifests (vmi, &in, ms, &notes, err);
  json_decref (notes);
  return st;
}

static void
test_real_output (void)
{
  char *err = NULL;
  json_t *vmi = pallet_v2v_kubevirt_read (yaml, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vmi);
  /* the quirks are really in the input */
  json_t *res =
      json_object_get (json_object_get (json_object_get (vmi, "spec"), "domain"), "resources");
  CU_ASSERT_PTR_NOT_NULL (json_object_get (res, "cpu"));
  CU_ASSERT (json_is_null (json_object_get (res, "features")));
  json_t *plan = json_loads (PLAN, 0, NULL), *src = source_facts ("bios"), *outs = outputs (),
         *ms = NULL;
  CU_ASSERT_EQUAL_FATAL (build (vmi, plan, src, outs, &ms, &err), PALLET_OK);
  CU_ASSERT_EQUAL_FATAL (json_array_size (ms), 2);
  json_t *pvc = json_array_get (ms, 0), *vm = json_array_get (ms, 1);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (pvc, "kind")),
                          "PersistentVolumeClaim");
  char *s = json_dumps (pvc, JSON_SORT_KEYS | JSON_COMPACT);
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"storageClassName\":\"local-path\""));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"storage\":\"2048Mi\""));
  CU_ASSERT_PTR_NOT_NULL (
      strstr (s, "\"forklift.konveyor.io/disk-source\":\"[LocalDS_0] DC0_H0_VM0/disk1.vmdk\""));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"name\":\"dc0-h0-vm0-disk-0\""));
  free (s);
  s = json_dumps (vm, JSON_SORT_KEYS | JSON_COMPACT);
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"kind\":\"VirtualMachine\""));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"name\":\"dc0-h0-vm0\""));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"cpu\":{\"cores\":1,\"sockets\":1,\"threads\":1}"));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"memory\":{\"guest\":\"1024Mi\"}"));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"bootloader\":{\"bios\":{}}"));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"uuid\":\"42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c\""));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"macAddress\":\"00:50:56:aa:bb:01\""));
  CU_ASSERT_PTR_NOT_NULL (
      strstr (s, "\"persistentVolumeClaim\":{\"claimName\":\"dc0-h0-vm0-disk-0\"}"));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"bootOrder\":1"));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"runStrategy\":\"Halted\"")); /* source was off */
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"team\":\"blue\""));
  CU_ASSERT_PTR_NULL (strstr (s, "hostDisk"));
  CU_ASSERT_PTR_NULL (strstr (s, "\"features\"")); /* empty: dropped */
  CU_ASSERT_PTR_NULL (strstr (s, "\"resources\":{\"cpu\""));
  free (s);
  CU_ASSERT_EQUAL (validate_all (ms), 0);
  json_decref (ms);
  /* The source's UEFI firmware wins when virt-v2v says nothing. */
  json_decref (src);
  src = source_facts ("efi");
  CU_ASSERT_EQUAL_FATAL (build (vmi, plan, src, outs, &ms, &err), PALLET_OK);
  s = json_dumps (json_array_get (ms, 1), JSON_SORT_KEYS | JSON_COMPACT);
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"bootloader\":{\"efi\":{\"secureBoot\":false}}"));
  free (s);
  CU_ASSERT_EQUAL (validate_all (ms), 0);
  json_decref (ms);
  json_decref (src);
  json_decref (outs);
  json_decref (plan);
  json_decref (vmi);
}

/* virt-v2v -i disk fills features in, pae among them: KubeVirt's
 * v1.Features has no pae, so it is left out (with a note), acpi and apic
 * kept, and the VM passes --strict. */
static void
test_disk_output_features (void)
{
  char path[600], *err = NULL;
  snprintf (path, sizeof path, "%s/fixtures/disk-debian12.yaml", dir);
  json_t *vmi = pallet_v2v_kubevirt_read (path, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vmi);
  json_t *plan = json_loads (PLAN, 0, NULL);
  json_t *vm0 = json_array_get (json_object_get (plan, "vms"), 0);
  json_object_set_new (vm0, "name", json_string ("web"));
  json_object_set_new (vm0, "id", json_string ("web"));
  json_object_set_new (
      json_object_get (json_array_get (json_object_get (plan, "storageMap"), 0), "source"), "name",
      json_string ("default"));
  json_t *src =
      json_pack ("{s:s,s:s,s:[{s:s,s:s}],s:[],s:s}", "name", "web", "id", "web", "disks", "file",
                 "/tmp/v2v-fixture-disk/web.img", "datastore", "", "nics", "powerState", "Off");
  json_t *outs =
      json_pack ("{s:s,s:[{s:s,s:I}]}", "yaml", path, "disks", "path",
                 "/tmp/v2v-fixture-disk/out/web-sda", "sizeBytes", (json_int_t) 2147483648LL);
  struct pallet_v2v_vm_in in = { .plan = plan,
                                 .vm = vm0,
                                 .source = src,
                                 .outputs = outs,
                                 .migration_uid = "mig-1",
                                 .provider_type = "disk" };
  json_t *ms = NULL, *notes = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_v2v_kubevirt_manifests (vmi, &in, &ms, &notes, &err), PALLET_OK);
  char *s = json_dumps (json_array_get (ms, 1), JSON_SORT_KEYS | JSON_COMPACT);
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"features\":{\"acpi\":{},\"apic\":{}}"));
  CU_ASSERT_PTR_NULL (strstr (s, "pae"));
  CU_ASSERT_PTR_NOT_NULL (strstr (s, "\"memory\":{\"guest\":\"2048Mi\"}"));
  free (s);
  s = json_dumps (notes, JSON_COMPACT);
  CU_ASSERT_PTR_NOT_NULL (s && strstr (s, "features.pae"));
  free (s);
  CU_ASSERT_EQUAL (validate_all (ms), 0);
  json_decref (ms);
  json_decref (notes);
  json_decref (outs);
  json_decref (src);
  json_decref (plan);
  json_decref (vmi);
}

/* The validator is not a rubber stamp: a VMI as virt-v2v wrote it fails. */
static void
test_raw_output_is_invalid (void)
{
  char *err = NULL;
  json_t *vmi = pallet_v2v_kubevirt_read (yaml, &err);
  json_t *arr = json_pack ("[O]", vmi);
  CU_ASSERT_EQUAL (validate_all (arr), 1);
  json_decref (arr);
  json_decref (vmi);
}

static void
expect_error (json_t *vmi, json_t *plan, json_t *src, json_t *outs, int code, const char *needle)
{
  char *err = NULL;
  json_t *ms = NULL;
  CU_ASSERT_EQUAL (build (vmi, plan, src, outs, &ms, &err), code);
  CU_ASSERT_PTR_NULL (ms);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (!strstr (err, needle))
    fprintf (stderr, "\nmessage '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, needle));
  free (err);
}

static void
test_refusals (void)
{
  char *err = NULL;
  json_t *vmi = pallet_v2v_kubevirt_read (yaml, &err);
  json_t *plan = json_loads (PLAN, 0, NULL), *src = source_facts ("bios"), *outs = outputs ();
  /* an unknown field from a newer virt-v2v */
  json_t *v2 = json_deep_copy (vmi);
  json_object_set_new (
      json_object_get (json_object_get (json_object_get (v2, "spec"), "domain"), "resources"),
      "limits", json_object ());
  expect_error (v2, plan, src, outs, PALLET_E_INVALID,
                "spec.domain.resources.limits is not a field");
  json_decref (v2);
  /* a hostDisk that is not one of the converted disks */
  json_t *o2 = json_pack ("{s:s,s:[{s:s,s:I}]}", "yaml", yaml, "disks", "path", "/elsewhere-sda",
                          "sizeBytes", (json_int_t) 1);
  expect_error (vmi, plan, src, o2, PALLET_E_INVALID, "not one of the converted disks");
  json_decref (o2);
  /* no storage map entry for the datastore */
  json_t *p2 = json_deep_copy (plan);
  json_object_set_new (
      json_object_get (json_array_get (json_object_get (p2, "storageMap"), 0), "source"), "name",
      json_string ("other-ds"));
  json_array_append_new (
      json_object_get (p2, "storageMap"),
      json_pack ("{s:{s:s},s:{s:s}}", "source", "name", "x", "destination", "storageClass", "y"));
  expect_error (vmi, p2, src, outs, PALLET_E_INVALID, "no StorageMap entry");
  json_decref (p2);
  /* an unmapped network */
  p2 = json_deep_copy (plan);
  json_array_clear (json_object_get (p2, "networkMap"));
  expect_error (vmi, p2, src, outs, PALLET_E_INVALID, "not in the NetworkMap");
  json_decref (p2);
  /* a wrong document */
  char bad[] = "/tmp/pallet-v2v-bad-XXXXXX.yaml";
  int fd = mkstemps (bad, 5);
  const char *txt = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n";
  CU_ASSERT_EQUAL (write (fd, txt, strlen (txt)), (ssize_t) strlen (txt));
  close (fd);
  CU_ASSERT_PTR_NULL (pallet_v2v_kubevirt_read (bad, &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "not the kubevirt.io/v1 VirtualMachineInstance"));
  free (err);
  unlink (bad);
  json_decref (outs);
  json_decref (src);
  json_decref (plan);
  json_decref (vmi);
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    return 2;
  dir = argv[1];
  validate_py = argv[2];
  snprintf (yaml, sizeof yaml, "%s/fixtures/vpx-debian12.yaml", dir);
  if (access (validate_py, R_OK) != 0) {
    fprintf (stderr, "pallet-lint-manifests not found at %s\n", validate_py);
    return 1;
  }
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("v2v-kubevirt", NULL, NULL);
  CU_add_test (s, "real virt-v2v 2.2.0 output -> VM, --strict", test_real_output);
  CU_add_test (s, "virt-v2v's VMI as written fails --strict", test_raw_output_is_invalid);
  CU_add_test (s, "-i disk output: pae left out, --strict", test_disk_output_features);
  CU_add_test (s, "refusals", test_refusals);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  return fails ? 1 : 0;
}
