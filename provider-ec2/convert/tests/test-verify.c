/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for Pallet_convert_verify on real small disk images, built
 * here with libguestfs (one appliance launch for all of them):
 *
 *   clean.img  two kernels (the newer by version order, 6.1.0-10, has
 *              virtio_blk as a .ko.zst and virtio_net built in), a gzip
 *              initramfs carrying virtio_blk, fstab by UUID with a comment
 *              naming /dev/xvda1, grub by UUID: every check passes.
 *   bad.img    no virtio_net at all, fstab on /dev/xvda1 and /dev/nvme1n1,
 *              /etc/default/grub with root=/dev/nvme0n1p1: the checks that
 *              should fail do, naming the lines.
 *
 * (A disk without an OS is checked by convert-no-os: it costs a launch.)
 *   test-verify   (needs LIBGUESTFS_BACKEND_SETTINGS=force_tcg here: no KVM)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <guestfs.h>
#include <jansson.h>

#include "pallet-convert.h"

static char tmpdir[] = "/tmp/pallet-verify-test-XXXXXX";
static char clean_img[256], bad_img[256];
static int force_tcg;

#define NEW_KVER "6.1.0-10-cloud-amd64"
#define OLD_KVER "6.1.0-9-cloud-amd64"

static int
put (guestfs_h *g, const char *path, const char *text)
{
  return guestfs_write (g, path, text, strlen (text));
}

/* A gzip'd newc cpio of the guest directory DIR, written to the guest file
 * DEST (what guestfs_initrd_list reads). */
static int
make_initrd (guestfs_h *g, const char *dir, const char *dest)
{
  char cpio[512], gz[512];
  int r;

  snprintf (cpio, sizeof cpio, "%s/initrd.cpio", tmpdir);
  snprintf (gz, sizeof gz, "%s/initrd.cpio.gz", tmpdir);
  r = guestfs_cpio_out (g, dir, cpio, GUESTFS_CPIO_OUT_FORMAT, "newc", -1);
  r |= guestfs_upload (g, cpio, "/initrd.cpio");
  r |= guestfs_compress_out (g, "gzip", "/initrd.cpio", gz, -1);
  r |= guestfs_upload (g, gz, dest);
  r |= guestfs_rm (g, "/initrd.cpio");
  r |= guestfs_rm_rf (g, dir);
  unlink (cpio);
  unlink (gz);
  return r;
}

/* The skeleton inspection recognises as Debian 12, on DEV. */
static int
make_guest (guestfs_h *g, const char *dev, int clean)
{
  int r = 0;

  r |= guestfs_mkfs (g, "ext4", dev);
  r |= guestfs_mount (g, dev, "/");
  r |= guestfs_mkdir_p (g, "/bin");
  r |= guestfs_mkdir_p (g, "/usr/bin");
  r |= guestfs_mkdir_p (g, "/etc/default");
  r |= guestfs_mkdir_p (g, "/boot/grub");
  r |= put (g, "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n"
            "VERSION_ID=\"12\"\nID=debian\n");
  r |= put (g, "/etc/debian_version", "12.5\n");
  r |= put (g, "/etc/hostname", clean ? "clean\n" : "bad\n");
  r |= guestfs_mkdir_p (g, "/lib/modules/" NEW_KVER "/kernel/drivers/block");
  r |= guestfs_mkdir_p (g, "/lib/modules/" NEW_KVER "/kernel/drivers/net");
  r |= guestfs_touch (g, "/lib/modules/" NEW_KVER "/kernel/drivers/block/virtio_blk.ko.zst");
  r |= guestfs_touch (g, "/lib/modules/" NEW_KVER "/kernel/drivers/net/e1000.ko");
  r |= guestfs_touch (g, "/boot/vmlinuz-" NEW_KVER);
  r |= guestfs_mkdir_p (g, "/initrd/usr/lib/modules/" NEW_KVER "/kernel/drivers/block");
  r |= guestfs_touch (g, "/initrd/usr/lib/modules/" NEW_KVER
                         "/kernel/drivers/block/virtio_blk.ko.zst");
  r |= guestfs_touch (g, "/initrd/init");
  r |= make_initrd (g, "/initrd", "/boot/initrd.img-" NEW_KVER);
  if (clean) {
    /* An older kernel with nothing: not the one that boots. */
    r |= guestfs_mkdir_p (g, "/lib/modules/" OLD_KVER "/kernel");
    r |= guestfs_touch (g, "/boot/vmlinuz-" OLD_KVER);
    r |= put (g, "/lib/modules/" NEW_KVER "/modules.builtin",
              "kernel/drivers/nvme/host/nvme.ko\nkernel/drivers/net/virtio_net.ko\n");
    r |= put (g, "/etc/fstab",
              "# / was on /dev/xvda1 during installation\n"
              "UUID=0b5c4f5e-2f7a-4c1e-9a55-0123456789ab / ext4 defaults 0 1\n");
    r |= put (g, "/boot/grub/grub.cfg",
              "search --no-floppy --fs-uuid --set=root 0b5c4f5e\n"
              "linux /boot/vmlinuz-" NEW_KVER " root=UUID=0b5c4f5e ro console=ttyS0\n");
    r |= put (g, "/etc/default/grub",
              "GRUB_DEFAULT=0\n#GRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p1\"\n"
              "GRUB_CMDLINE_LINUX=\"console=ttyS0,115200\"\n");
  }
  else {
    r |= put (g, "/lib/modules/" NEW_KVER "/modules.builtin", "kernel/drivers/nvme/host/nvme.ko\n");
    r |= put (g, "/etc/fstab",
              "/dev/xvda1 / ext4 defaults 0 1\n"
              "  /dev/nvme1n1 /data ext4 defaults 0 2\n");
    r |= put (g, "/boot/grub/grub.cfg", "linux /boot/vmlinuz-" NEW_KVER " root=UUID=0b5c4f5e ro\n");
    r |= put (g, "/etc/default/grub",
              "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p1 console=ttyS0\"\n");
  }
  r |= guestfs_umount (g, "/");
  return r;
}

static int
build_images (void)
{
  guestfs_h *g = guestfs_create ();
  int r = 0;

  if (g == NULL)
    return -1;
  if (force_tcg) {
    char *settings[] = { (char *) "force_tcg", NULL };
    r |= guestfs_set_backend (g, "direct");
    r |= guestfs_set_backend_settings (g, settings);
  }
  r |= guestfs_disk_create (g, clean_img, "raw", 48 << 20, -1);
  r |= guestfs_disk_create (g, bad_img, "raw", 48 << 20, -1);
  r |= guestfs_add_drive_opts (g, clean_img, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw", -1);
  r |= guestfs_add_drive_opts (g, bad_img, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw", -1);
  if (r == 0)
    r |= guestfs_launch (g);
  if (r == 0)
    r |= make_guest (g, "/dev/sda", 1) | make_guest (g, "/dev/sdb", 0);
  if (r)
    fprintf (stderr, "test-verify: building the images failed: %s\n", guestfs_last_error (g));
  r |= guestfs_shutdown (g);
  guestfs_close (g);
  return r;
}

static const char *
kernel_of (json_t *report)
{
  const char *k = json_string_value (json_object_get (report, "kernel"));
  return k ? k : "(null)";
}

static json_t *
check (json_t *report, const char *name)
{
  json_t *c;
  size_t i;

  json_array_foreach (json_object_get (report, "checks"), i, c)
    if (strcmp (json_string_value (json_object_get (c, "name")), name) == 0)
      return c;
  return NULL;
}

static int
check_ok (json_t *report, const char *name)
{
  json_t *c = check (report, name);
  CU_ASSERT_PTR_NOT_NULL (c);
  return c ? json_is_true (json_object_get (c, "ok")) : -1;
}

static const char *
detail (json_t *report, const char *name)
{
  const char *d = json_string_value (json_object_get (check (report, name), "detail"));
  return d ? d : "";
}

static json_t *
run_verify (const char *disk, enum Pallet_convert_error want, char **msg)
{
  struct Pallet_convert_verify_options o = { .force_tcg = force_tcg };
  const char *disks[] = { disk };
  char *json = NULL;
  json_t *report = NULL;
  enum Pallet_convert_error e = Pallet_convert_verify (disks, 1, &o, &json, msg);

  if (e != want)
    fprintf (stderr, "\nverify %s: %s (%s)\n", disk, Pallet_convert_error_name (e),
             *msg ? *msg : "no message");
  CU_ASSERT_EQUAL (e, want);
  if (json) {
    report = json_loads (json, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL (report);
    free (json);
  }
  return report;
}

static void
test_clean (void)
{
  char *msg = NULL;
  json_t *r = run_verify (clean_img, PALLET_CONVERT_OK, &msg);

  CU_ASSERT_PTR_NOT_NULL_FATAL (r);
  CU_ASSERT_PTR_NULL (msg);
  if (msg)
    fprintf (stderr, "\nclean guest: %s\n", msg);
  CU_ASSERT (json_is_true (json_object_get (r, "ok")));
  /* Version order: -10 is newer than -9 (strcmp would say -9). */
  CU_ASSERT_STRING_EQUAL (kernel_of (r), NEW_KVER);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (r, "checks")), 6);
  CU_ASSERT_EQUAL (check_ok (r, "kernel-virtio-blk"), 1);
  CU_ASSERT_EQUAL (check_ok (r, "kernel-virtio-net"), 1);
  CU_ASSERT_PTR_NOT_NULL (strstr (detail (r, "kernel-virtio-net"), "built in"));
  CU_ASSERT_EQUAL (check_ok (r, "initramfs-virtio-blk"), 1);
  CU_ASSERT_PTR_NOT_NULL (strstr (detail (r, "initramfs-virtio-blk"),
                                  "/boot/initrd.img-" NEW_KVER " carries virtio_blk"));
  CU_ASSERT_EQUAL (check_ok (r, "initramfs-virtio-net"), 1);
  CU_ASSERT_EQUAL (check_ok (r, "fstab-device-names"), 1);
  CU_ASSERT_EQUAL (check_ok (r, "grub-device-names"), 1);
  json_decref (r);
  free (msg);
}

static void
test_bad (void)
{
  char *msg = NULL;
  json_t *r = run_verify (bad_img, PALLET_CONVERT_OK, &msg);
  const char *d;

  CU_ASSERT_PTR_NOT_NULL_FATAL (r);
  CU_ASSERT (json_is_false (json_object_get (r, "ok")));
  CU_ASSERT_STRING_EQUAL (kernel_of (r), NEW_KVER);
  CU_ASSERT_EQUAL (check_ok (r, "kernel-virtio-blk"), 1);
  CU_ASSERT_EQUAL (check_ok (r, "initramfs-virtio-blk"), 1);
  CU_ASSERT_EQUAL (check_ok (r, "kernel-virtio-net"), 0);
  CU_ASSERT_PTR_NOT_NULL (strstr (detail (r, "kernel-virtio-net"), "no virtio_net module"));
  CU_ASSERT_EQUAL (check_ok (r, "initramfs-virtio-net"), 0);
  CU_ASSERT_PTR_NOT_NULL (strstr (detail (r, "initramfs-virtio-net"), "does not carry virtio_net"));
  CU_ASSERT_EQUAL (check_ok (r, "fstab-device-names"), 0);
  d = detail (r, "fstab-device-names");
  CU_ASSERT_PTR_NOT_NULL (strstr (d, "/etc/fstab line 1: /dev/xvda1 / ext4"));
  CU_ASSERT_PTR_NOT_NULL (strstr (d, "/etc/fstab line 2: /dev/nvme1n1 /data"));
  CU_ASSERT_EQUAL (check_ok (r, "grub-device-names"), 0);
  d = detail (r, "grub-device-names");
  CU_ASSERT_PTR_NOT_NULL (strstr (d, "/etc/default/grub line 2"));
  CU_ASSERT_PTR_NOT_NULL (strstr (d, "root=/dev/nvme0n1p1"));
  CU_ASSERT_PTR_NULL (strstr (d, "grub.cfg"));
  /* The message: the first failed check, its detail and the fix. */
  CU_ASSERT_PTR_NOT_NULL_FATAL (msg);
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, bad_img));
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, "check kernel-virtio-net failed"));
  CU_ASSERT_PTR_NOT_NULL (strstr (msg, "fix: "));
  json_decref (r);
  free (msg);
}

static void
test_bad_args (void)
{
  char *msg = NULL, *json = (char *) "x";
  const char *missing[] = { "/nonexistent/disk.img" };

  CU_ASSERT_EQUAL (Pallet_convert_verify (NULL, 0, NULL, &json, &msg), PALLET_CONVERT_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (msg && strstr (msg, "no disks"));
  free (msg);
  msg = NULL;
  CU_ASSERT_EQUAL (Pallet_convert_verify (missing, 1, NULL, &json, &msg), PALLET_CONVERT_E_DISK);
  CU_ASSERT_PTR_NULL (json);
  CU_ASSERT_PTR_NOT_NULL (msg && strstr (msg, "/nonexistent/disk.img"));
  free (msg);
}

int
main (void)
{
  const char *s = getenv ("LIBGUESTFS_BACKEND_SETTINGS");
  CU_pSuite suite;
  unsigned failed;

  force_tcg = s && strstr (s, "force_tcg");
  if (mkdtemp (tmpdir) == NULL) {
    perror (tmpdir);
    return 2;
  }
  snprintf (clean_img, sizeof clean_img, "%s/clean.img", tmpdir);
  snprintf (bad_img, sizeof bad_img, "%s/bad.img", tmpdir);
  if (build_images () != 0) {
    fprintf (stderr, "test-verify: FAIL: cannot build the test images with "
                     "libguestfs; run libguestfs-test-tool (and set "
                     "LIBGUESTFS_BACKEND_SETTINGS=force_tcg without KVM)\n");
    return 1;
  }
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  suite = CU_add_suite ("convert-verify", NULL, NULL);
  CU_add_test (suite, "clean guest passes every check", test_clean);
  CU_add_test (suite, "bad guest fails the right checks", test_bad);
  CU_add_test (suite, "no disks, missing disk", test_bad_args);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures () + CU_get_number_of_tests_failed ();
  CU_cleanup_registry ();
  unlink (clean_img);
  unlink (bad_img);
  rmdir (tmpdir);
  return failed ? 1 : 0;
}
