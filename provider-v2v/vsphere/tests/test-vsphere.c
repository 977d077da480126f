/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_vsphere against govmomi's simulator (tests/vsphere-sim) with
 * the test guest staged: VMs with their facts from vCenter and ESXi,
 * datastores, networks, hosts; a wrong password, TLS verification and a
 * bad inventory path each fail with their own status and message.
 * argv[1] = vsphere-sim, argv[2] = a raw guest image. */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include <pallet/provider.h>
#include "pallet-v2v-driver.h"
#include "pallet-v2v-vsphere.h"

extern char **environ;
static const char *sim, *image;

struct simproc {
  pid_t pid;
  int in_fd;
  json_t *info;
};

static int
sim_start (struct simproc *s, const char *model)
{
  int in[2], out[2];
  if (pipe (in) < 0 || pipe (out) < 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, in[0], 0);
  posix_spawn_file_actions_adddup2 (&fa, out[1], 1);
  posix_spawn_file_actions_addclose (&fa, in[1]);
  posix_spawn_file_actions_addclose (&fa, out[0]);
  char *argv[] = { (char *) sim,
                   (char *) "-model",
                   (char *) model,
                   (char *) "-guest-disk",
                   (char *) image,
                   (char *) "-lifetime",
                   (char *) "300",
                   (char *) "-uuid",
                   (char *) "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c",
                   (char *) "-firmware",
                   (char *) (strcmp (model, "esx") ? "bios" : "efi"),
                   NULL };
  int r = posix_spawn (&s->pid, sim, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (in[0]);
  close (out[1]);
  if (r) {
    close (in[1]);
    close (out[0]);
    return -1;
  }
  s->in_fd = in[1];
  FILE *f = fdopen (out[0], "r");
  char line[4096];
  s->info = fgets (line, sizeof line, f) ? json_loads (line, 0, NULL) : NULL;
  fclose (f);
  return s->info ? 0 : -1;
}

static void
sim_stop (struct simproc *s)
{
  close (s->in_fd); /* stdin EOF: it exits */
  int st;
  waitpid (s->pid, &st, 0);
  json_decref (s->info);
}

static const char *
info (struct simproc *s, const char *k)
{
  return json_string_value (json_object_get (s->info, k));
}

static char *
uri_for (struct simproc *s, int input, int insecure, const char *path)
{
  char *err = NULL;
  int port = (int) json_integer_value (json_object_get (s->info, "port"));
  char *u = pallet_v2v_uri (input, "root", "127.0.0.1", port, path, insecure, &err);
  free (err);
  return u;
}

static void
test_vcenter (void)
{
  struct simproc s;
  CU_ASSERT_EQUAL_FATAL (sim_start (&s, "vpx"), 0);
  char *uri = uri_for (&s, PALLET_V2V_IN_VPX, 1, info (&s, "hostPath"));
  struct pallet_v2v_vsphere *v = NULL;
  char *err = NULL;
  int st = pallet_v2v_vsphere_open (uri, "root", "pallet-sim-pw", &v, &err);
  if (st)
    fprintf (stderr, "\n%s\n", err);
  CU_ASSERT_EQUAL_FATAL (st, PALLET_OK);
  json_t *vms = pallet_v2v_vsphere_vms (v, &err);
  CU_ASSERT_EQUAL (json_array_size (vms), 1);
  json_decref (vms);
  json_t *f = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_v2v_vsphere_vm (v, "DC0_H0_VM0", &f, &err), PALLET_OK);
  char *t = json_dumps (f, JSON_SORT_KEYS | JSON_COMPACT);
  CU_ASSERT_STRING_EQUAL (
      t,
      "{\"cpus\":1,\"datacenter\":\"DC0\",\"disks\":[{\"bus\":\"scsi\",\"datastore\":\"LocalDS_0\","
      "\"file\":\"[LocalDS_0] DC0_H0_VM0/disk1.vmdk\",\"target\":\"sda\",\"vmdk\":\"DC0_H0_VM0/disk1.vmdk\"}],"
      "\"firmware\":\"bios\",\"id\":\"vm-57\",\"memoryMiB\":1024,\"name\":\"DC0_H0_VM0\","
      "\"nics\":[{\"mac\":\"00:50:56:aa:bb:01\",\"model\":\"vmxnet3\",\"network\":\"VM Network\"}],"
      "\"powerState\":\"Off\",\"uuid\":\"42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c\"}");
  free (t);
  json_decref (f);
  /* by UUID and by moref too */
  CU_ASSERT_EQUAL (pallet_v2v_vsphere_vm (v, "42233D5E-7A1C-4B59-9A7E-0D1E2F3A4B5C", &f, &err),
                   PALLET_OK);
  json_decref (f);
  CU_ASSERT_EQUAL (pallet_v2v_vsphere_vm (v, info (&s, "vmMoref"), &f, &err), PALLET_OK);
  json_decref (f);
  CU_ASSERT_EQUAL (pallet_v2v_vsphere_vm (v, "nope", &f, &err), PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "VMs there: DC0_H0_VM0"));
  free (err);
  json_t *ds = pallet_v2v_vsphere_datastores (v, &err);
  CU_ASSERT_EQUAL (json_array_size (ds), 1);
  CU_ASSERT_STRING_EQUAL (
      json_string_value (json_object_get (json_array_get (ds, 0), "name")) ?: "", "LocalDS_0");
  json_decref (ds);
  json_t *nets = pallet_v2v_vsphere_networks (v, &err);
  CU_ASSERT_STRING_EQUAL (
      json_string_value (json_object_get (json_array_get (nets, 0), "name")) ?: "", "vSwitch0");
  json_decref (nets);
  json_t *hosts = pallet_v2v_vsphere_hosts (v, &err);
  CU_ASSERT_EQUAL (json_array_size (hosts), 1);
  json_decref (hosts);
  pallet_v2v_vsphere_close (v);

  /* A wrong password: PALLET_E_AUTH. */
  CU_ASSERT_EQUAL (pallet_v2v_vsphere_open (uri, "root", "wrong", &v, &err), PALLET_E_AUTH);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "Login failure"));
  CU_ASSERT_PTR_NULL (strstr (err, "wrong")); /* never the password */
  free (err);
  free (uri);
  /* TLS verified (no no_verify): the simulator's certificate is not trusted. */
  uri = uri_for (&s, PALLET_V2V_IN_VPX, 0, info (&s, "hostPath"));
  CU_ASSERT_EQUAL (pallet_v2v_vsphere_open (uri, "root", "pallet-sim-pw", &v, &err),
                   PALLET_E_FAILED);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "insecureSkipVerify"));
  free (err);
  free (uri);
  /* A host path that is not there. */
  uri = uri_for (&s, PALLET_V2V_IN_VPX, 1, "DC0/NOPE");
  st = pallet_v2v_vsphere_open (uri, "root", "pallet-sim-pw", &v, &err);
  CU_ASSERT (st == PALLET_E_INVALID || st == PALLET_E_FAILED);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "host-path"));
  free (err);
  free (uri);
  sim_stop (&s);
}

static void
test_esxi (void)
{
  struct simproc s;
  CU_ASSERT_EQUAL_FATAL (sim_start (&s, "esx"), 0);
  char *uri = uri_for (&s, PALLET_V2V_IN_ESX, 1, NULL);
  struct pallet_v2v_vsphere *v = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_v2v_vsphere_open (uri, "root", "pallet-sim-pw", &v, &err),
                         PALLET_OK);
  json_t *f = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_v2v_vsphere_vm (v, "ha-host_VM0", &f, &err), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (f, "firmware")), "efi");
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (f, "datacenter")), "ha-datacenter");
  json_decref (f);
  pallet_v2v_vsphere_close (v);
  free (uri);
  sim_stop (&s);
}

static void
test_bad_xml (void)
{
  char *err = NULL;
  CU_ASSERT_PTR_NULL (pallet_v2v_domain_facts ("<domain><name>x</nam", &err));
  CU_ASSERT_PTR_NOT_NULL (err);
  free (err);
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    return 2;
  sim = argv[1];
  image = argv[2];
  signal (SIGPIPE, SIG_IGN);
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("v2v-vsphere", NULL, NULL);
  CU_add_test (s, "vcenter", test_vcenter);
  CU_add_test (s, "esxi", test_esxi);
  CU_add_test (s, "bad_xml", test_bad_xml);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  return fails ? 1 : 0;
}
