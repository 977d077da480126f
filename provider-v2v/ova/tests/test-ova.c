/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_ova_check on archives written here with libarchive: a good
 * OVA, and the hostile ones (../, absolute names, links, devices) that
 * must be refused before virt-v2v would unpack them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <archive.h>
#include <archive_entry.h>
#include <CUnit/Basic.h>
#include <pallet/provider.h>
#include "pallet-v2v-ova.h"

static char dir[] = "/tmp/pallet-v2v-ova-XXXXXX";

struct member {
  const char *name;
  mode_t type;
  const char *link;
};

static void
write_tar (const char *path, const struct member *m, size_t n, int zip)
{
  struct archive *a = archive_write_new ();
  if (zip)
    archive_write_set_format_zip (a);
  else
    archive_write_set_format_pax_restricted (a);
  archive_write_open_filename (a, path);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *e = archive_entry_new ();
    archive_entry_set_pathname (e, m[i].name);
    archive_entry_set_filetype (e, m[i].type);
    archive_entry_set_perm (e, 0644);
    if (m[i].link)
      archive_entry_set_symlink (e, m[i].link);
    archive_entry_set_size (e, m[i].type == AE_IFREG ? 5 : 0);
    archive_write_header (a, e);
    if (m[i].type == AE_IFREG)
      archive_write_data (a, "hello", 5);
    archive_entry_free (e);
  }
  archive_write_close (a);
  archive_write_free (a);
}

static void
expect (const struct member *m, size_t n, int zip, int code, const char *needle)
{
  char p[256];
  snprintf (p, sizeof p, "%s/t.ova", dir);
  write_tar (p, m, n, zip);
  json_t *members = NULL;
  char *err = NULL;
  int r = pallet_v2v_ova_check (p, &members, &err);
  CU_ASSERT_EQUAL (r, code);
  if (code == PALLET_OK) {
    CU_ASSERT_EQUAL (json_array_size (members), n);
  }
  else {
    CU_ASSERT_PTR_NULL (members);
    CU_ASSERT_PTR_NOT_NULL_FATAL (err);
    if (!strstr (err, needle))
      fprintf (stderr, "\n'%s' lacks '%s'\n", err, needle);
    CU_ASSERT_PTR_NOT_NULL (strstr (err, needle));
  }
  free (err);
  json_decref (members);
  unlink (p);
}

#define N(a) (sizeof (a) / sizeof (a)[0])

static void
test_good (void)
{
  struct member m[] = { { "guest.ovf", AE_IFREG, NULL },
                        { "guest.mf", AE_IFREG, NULL },
                        { "guest-disk1.vmdk", AE_IFREG, NULL } };
  expect (m, N (m), 0, PALLET_OK, NULL);
  expect (m, N (m), 1, PALLET_OK, NULL); /* zip OVAs too */
}

static void
test_hostile (void)
{
  struct member up[] = { { "guest.ovf", AE_IFREG, NULL }, { "../evil.vmdk", AE_IFREG, NULL } };
  expect (up, N (up), 0, PALLET_E_INVALID, "'../evil.vmdk' is a '..' component");
  struct member deep[] = { { "guest.ovf", AE_IFREG, NULL },
                           { "a/b/../../../etc/cron.d/x", AE_IFREG, NULL } };
  expect (deep, N (deep), 0, PALLET_E_INVALID, "a '..' component");
  struct member abs[] = { { "guest.ovf", AE_IFREG, NULL }, { "/etc/passwd", AE_IFREG, NULL } };
  expect (abs, N (abs), 0, PALLET_E_INVALID, "'/etc/passwd' is an absolute name");
  struct member zabs[] = { { "guest.ovf", AE_IFREG, NULL }, { "../x", AE_IFREG, NULL } };
  expect (zabs, N (zabs), 1, PALLET_E_INVALID, "a '..' component");
  struct member link[] = { { "guest.ovf", AE_IFREG, NULL }, { "disk.vmdk", AE_IFLNK, "/dev/sda" } };
  expect (link, N (link), 0, PALLET_E_INVALID, "is a link");
  struct member dev[] = { { "guest.ovf", AE_IFREG, NULL }, { "fifo", AE_IFIFO, NULL } };
  expect (dev, N (dev), 0, PALLET_E_INVALID, "not a regular file");
  /* dotted names that are not ".." are fine */
  struct member dots[] = { { "guest.ovf", AE_IFREG, NULL }, { "..disk..vmdk", AE_IFREG, NULL } };
  expect (dots, N (dots), 0, PALLET_OK, NULL);
}

static void
test_shape (void)
{
  struct member none[] = { { "disk.vmdk", AE_IFREG, NULL } };
  expect (none, N (none), 0, PALLET_E_INVALID, "holds 0 .ovf");
  struct member two[] = { { "a.ovf", AE_IFREG, NULL }, { "b.OVF", AE_IFREG, NULL } };
  expect (two, N (two), 0, PALLET_E_INVALID, "holds 2 .ovf");
  char p[256];
  snprintf (p, sizeof p, "%s/plain.ova", dir);
  FILE *f = fopen (p, "w");
  fputs ("this is not an archive\n", f);
  fclose (f);
  json_t *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL (pallet_v2v_ova_check (p, &m, &err), PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "not a tar or zip"));
  free (err);
  unlink (p);
  CU_ASSERT_EQUAL (pallet_v2v_ova_check ("/nonexistent.ova", &m, &err), PALLET_E_NOT_FOUND);
  free (err);
  /* an unpacked OVA directory */
  char d2[300], f2[400];
  snprintf (d2, sizeof d2, "%s/unpacked", dir);
  mkdir (d2, 0700);
  snprintf (f2, sizeof f2, "%s/g.ovf", d2);
  fclose (fopen (f2, "w"));
  CU_ASSERT_EQUAL (pallet_v2v_ova_check (d2, &m, &err), PALLET_OK);
  json_decref (m);
  unlink (f2);
  rmdir (d2);
}

int
main (void)
{
  if (!mkdtemp (dir))
    return 1;
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("v2v-ova", NULL, NULL);
  CU_add_test (s, "good", test_good);
  CU_add_test (s, "hostile", test_hostile);
  CU_add_test (s, "shape", test_shape);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  rmdir (dir);
  return fails ? 1 : 0;
}
