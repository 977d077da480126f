/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_conversion: matching PVCs to a three-disk VM, every
 * problem, and the XML rewrite. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "pallet-v2v-conversion.h"

#define UUID "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c"

static json_t *
facts (void)
{
  return json_pack ("{s:s,s:s,s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "name", "web", "id", "vm-42",
                    "uuid", UUID, "disks", "file", "[ds1] web/web.vmdk", "vmdk", "web/web.vmdk",
                    "file", "[ds1] web/web_1.vmdk", "vmdk", "web/web_1.vmdk", "file",
                    "[ds2] web/data.vmdk", "vmdk", "web/data.vmdk");
}

static json_t *
pvc (const char *name, const char *label, const char *value, const char *src)
{
  json_t *p = json_pack ("{s:{s:s,s:s,s:{},s:{}},s:{s:s,s:s}}", "metadata", "name", name,
                         "namespace", "vms", "labels", "annotations", "spec", "volumeMode", "Block",
                         "storageClassName", "ceph");
  json_t *md = json_object_get (p, "metadata");
  if (label)
    json_object_set_new (json_object_get (md, "labels"), label, json_string (value));
  if (src)
    json_object_set_new (json_object_get (md, "annotations"), PALLET_V2V_ANN_DISK_SOURCE,
                         json_string (src));
  return p;
}

static const char *
claim (const json_t *claims, size_t i)
{
  return json_string_value (json_object_get (json_array_get (claims, i), "pvcName"));
}

static void
test_disk_of (void)
{
  json_t *f = facts ();
  CU_ASSERT_EQUAL (pallet_v2v_conversion_disk_of (f, "[ds1] web/web_1.vmdk"), 1);
  CU_ASSERT_EQUAL (pallet_v2v_conversion_disk_of (f, "web/data.vmdk"), 2);
  CU_ASSERT_EQUAL (pallet_v2v_conversion_disk_of (f, "web.vmdk"), 0);
  CU_ASSERT_EQUAL (pallet_v2v_conversion_disk_of (f, "other.vmdk"), -1);
  CU_ASSERT_EQUAL (pallet_v2v_conversion_disk_of (f, ""), -1);
  /* a bare name two disks share is ambiguous */
  json_object_set_new (json_array_get (json_object_get (f, "disks"), 2), "vmdk",
                       json_string ("db/web.vmdk"));
  CU_ASSERT_EQUAL (pallet_v2v_conversion_disk_of (f, "web.vmdk"), -1);
  json_decref (f);
}

/* Names sort against disk order; found by vmID, vmUUID (case apart);
 * decoys: another VM's, another namespace's, a duplicate listing. */
static void
test_match_ok (void)
{
  json_t *f = facts (), *claims, *problems;
  json_t *l = json_pack (
      "[o,o,o,o,o]", pvc ("zz", "vmID", "vm-42", "web.vmdk"),
      pvc ("aa", "vmUUID", "42233D5E-7A1C-4B59-9A7E-0D1E2F3A4B5C", "[ds2] web/data.vmdk"),
      pvc ("mm", "vmID", "vm-42", "web/web_1.vmdk"), pvc ("other", "vmID", "vm-7", "web.vmdk"),
      pvc ("zz", "vmID", "vm-42", "web.vmdk"));
  json_t *elsewhere = pvc ("far", "vmID", "vm-42", "web.vmdk");
  json_object_set_new (json_object_get (elsewhere, "metadata"), "namespace", json_string ("x"));
  json_array_append_new (l, elsewhere);
  CU_ASSERT_EQUAL (pallet_v2v_conversion_match (f, l, "vms", &claims, &problems), 0);
  CU_ASSERT_STRING_EQUAL (claim (claims, 0), "zz");
  CU_ASSERT_STRING_EQUAL (claim (claims, 1), "mm");
  CU_ASSERT_STRING_EQUAL (claim (claims, 2), "aa");
  CU_ASSERT_STRING_EQUAL (
      json_string_value (json_object_get (json_array_get (claims, 2), "storageClass")), "ceph");
  json_decref (claims);
  json_decref (problems);
  json_decref (l);
  json_decref (f);
}

static const json_t *
only (const json_t *problems, const char *type)
{
  const json_t *p, *hit = NULL;
  size_t i, n = 0;
  json_array_foreach (problems, i, p)
    if (!strcmp (json_string_value (json_object_get (p, "type")), type)) {
      hit = p;
      n++;
    }
  CU_ASSERT_EQUAL (n, 1);
  return hit;
}

static int
says (const json_t *p, const char *text)
{
  const char *m = json_string_value (json_object_get (p, "message"));
  return m && strstr (m, text) != NULL;
}

static void
test_match_problems (void)
{
  json_t *f = facts (), *claims, *problems;
  json_t *l =
      json_pack ("[o,o,o,o,o]", pvc ("root", "vmID", "vm-42", "web.vmdk"),
                 pvc ("noann", "vmID", "vm-42", NULL), pvc ("typo", "vmUUID", UUID, "web_2.vmdk"),
                 pvc ("again", "vmID", "vm-42", "[ds1] web/web.vmdk"),
                 pvc ("nolabel", NULL, NULL, "web/web_1.vmdk"));
  CU_ASSERT_EQUAL (pallet_v2v_conversion_match (f, l, "vms", &claims, &problems), 5);
  CU_ASSERT (says (only (problems, "ConversionPVCAnnotationMissing"), "vms/noann"));
  const json_t *p = only (problems, "ConversionPVCUnknownDisk");
  CU_ASSERT (says (p, "\"web_2.vmdk\" is not a disk of VM web"));
  CU_ASSERT (says (p, "[ds1] web/web.vmdk, [ds1] web/web_1.vmdk, [ds2] web/data.vmdk"));
  CU_ASSERT (
      says (only (problems, "ConversionPVCDuplicate"), "PVCs root and again both hold disk 0"));
  CU_ASSERT (says (only (problems, "ConversionPVCLabelMissing"),
                   "kubectl label pvc -n vms nolabel vmID=vm-42 vmUUID=" UUID));
  p = only (problems, "ConversionPVCCountMismatch");
  CU_ASSERT (says (p, "VM web has 3 disks but 1 PVC"));
  CU_ASSERT (says (p, "no PVC holds [ds2] web/data.vmdk"));
  CU_ASSERT (json_is_null (json_array_get (claims, 1)));
  json_decref (claims);
  json_decref (problems);
  json_decref (l);
  json_decref (f);
}

static const char *domain_xml =
    "<domain type='vmware' xmlns:vmware='http://libvirt.org/schemas/domain/vmware/1.0'>"
    "<name>web</name><memory unit='KiB'>1048576</memory><vcpu>2</vcpu>"
    "<os><type arch='x86_64'>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='[ds1] web/web.vmdk'/>"
    "<target dev='sda' bus='scsi'/></disk>"
    "<disk type='file' device='cdrom'><source file='[ds1] iso/x.iso'/>"
    "<target dev='hda' bus='ide'/></disk>"
    "<disk type='file' device='disk'><source file='[ds2] web/data.vmdk'/>"
    "<target dev='sdb' bus='scsi'/></disk>"
    "<interface type='bridge'><mac address='00:50:56:aa:bb:01'/>"
    "<source bridge='VM Network'/></interface></devices>"
    "<vmware:moref>vm-42</vmware:moref></domain>";

static void
test_xml (void)
{
  struct pallet_v2v_conversion_disk d[2] = { { "/dev/pvc/root", 1 }, { "/var/pvc/data", 0 } };
  char *out = NULL, *err = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_v2v_conversion_xml (domain_xml, d, 2, &out, &err), 0);
  const char *a = strstr (out, "<source dev=\"/dev/pvc/root\"/>");
  const char *b = strstr (out, "<source file=\"/var/pvc/data\"/>");
  CU_ASSERT (a && b && a < b);
  CU_ASSERT (strstr (out, "<disk type=\"block\" device=\"disk\">") != NULL);
  CU_ASSERT (strstr (out, "<driver name=\"qemu\" type=\"raw\"/>") != NULL);
  CU_ASSERT (strstr (out, "[ds") == NULL);
  CU_ASSERT (strstr (out, "<source bridge=\"VM Network\"/>") != NULL);
  free (out);
  CU_ASSERT_NOT_EQUAL (pallet_v2v_conversion_xml (domain_xml, d, 1, &out, &err), 0);
  CU_ASSERT (err && strstr (err, "has 2 disks but 1 PVC devices"));
  free (err);
  err = NULL;
  struct pallet_v2v_conversion_disk rel = { "pvc/root", 1 };
  CU_ASSERT_NOT_EQUAL (pallet_v2v_conversion_xml (domain_xml, &rel, 1, &out, &err), 0);
  CU_ASSERT (err && strstr (err, "not an absolute path"));
  free (err);
  err = NULL;
  CU_ASSERT_NOT_EQUAL (pallet_v2v_conversion_xml ("<vm/>", d, 2, &out, &err), 0);
  CU_ASSERT (err && strstr (err, "not a libvirt <domain>"));
  free (err);
}

int
main (void)
{
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  CU_pSuite s = CU_add_suite ("v2v-conversion", NULL, NULL);
  CU_add_test (s, "disk_of", test_disk_of);
  CU_add_test (s, "match_ok", test_match_ok);
  CU_add_test (s, "match_problems", test_match_problems);
  CU_add_test (s, "xml", test_xml);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned failed = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  return failed ? 1 : 0;
}
