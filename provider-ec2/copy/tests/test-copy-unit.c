/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: the copy journal (create, resume, mismatch, durability
 * order) and the zeroing logic (gaps between listed blocks, punch/zero). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "pallet-ebs-copy.h"

static char dir[] = "/tmp/pallet-copy-unit-XXXXXX";

static char *
path (const char *name)
{
  static char buf[4][256];
  static int k;
  char *p = buf[k++ % 4];
  snprintf (p, 256, "%s/%s", dir, name);
  return p;
}

/* ---- gaps ---- */
struct runs {
  uint64_t s[16], n[16];
  int k;
};

static int
rec (void *opaque, uint64_t s, uint64_t n)
{
  struct runs *r = opaque;
  if (r->k < 16) {
    r->s[r->k] = s;
    r->n[r->k] = n;
  }
  r->k++;
  return 0;
}

static void
test_gaps (void)
{
  struct runs r = { .k = 0 };
  uint64_t a[] = { 0, 1, 5, 9 };
  CU_ASSERT_EQUAL (Pallet_ebs_copy_gaps (a, 4, 12, rec, &r), 3);
  CU_ASSERT_EQUAL (r.s[0], 2);
  CU_ASSERT_EQUAL (r.n[0], 3);
  CU_ASSERT_EQUAL (r.s[1], 6);
  CU_ASSERT_EQUAL (r.n[1], 3);
  CU_ASSERT_EQUAL (r.s[2], 10);
  CU_ASSERT_EQUAL (r.n[2], 2);
  /* the tail after the last block */
  memset (&r, 0, sizeof r);
  uint64_t b[] = { 3 };
  CU_ASSERT_EQUAL (Pallet_ebs_copy_gaps (b, 1, 8, rec, &r), 2);
  CU_ASSERT_EQUAL (r.s[0], 0);
  CU_ASSERT_EQUAL (r.n[0], 3);
  CU_ASSERT_EQUAL (r.s[1], 4);
  CU_ASSERT_EQUAL (r.n[1], 4);
  /* nothing listed: one run; everything listed: none */
  memset (&r, 0, sizeof r);
  CU_ASSERT_EQUAL (Pallet_ebs_copy_gaps (NULL, 0, 7, rec, &r), 1);
  CU_ASSERT_EQUAL (r.s[0], 0);
  CU_ASSERT_EQUAL (r.n[0], 7);
  uint64_t all[] = { 0, 1, 2 };
  CU_ASSERT_EQUAL (Pallet_ebs_copy_gaps (all, 3, 3, NULL, NULL), 0);
}

static int
stop_fn (void *o, uint64_t s, uint64_t n)
{
  (void) o;
  (void) s;
  (void) n;
  return 1;
}

static void
test_gaps_stop (void)
{
  uint64_t a[] = { 2 };
  CU_ASSERT_EQUAL (Pallet_ebs_copy_gaps (a, 1, 5, stop_fn, NULL), -1);
}

/* ---- zero ---- */
static void
test_zero_file (void)
{
  const char *p = path ("zero.raw");
  int fd = open (p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CU_ASSERT_FATAL (fd >= 0);
  size_t sz = 4u << 20;
  unsigned char *buf = malloc (sz);
  memset (buf, 0xAB, sz);
  CU_ASSERT_EQUAL (pwrite (fd, buf, sz, 0), (ssize_t) sz);
  fsync (fd);
  struct stat st;
  fstat (fd, &st);
  long long before = (long long) st.st_blocks;
  /* stale data in [1 MiB, 3 MiB) must read back as zeros, and the file
   * must get sparser (a hole, not written zeros), size unchanged */
  CU_ASSERT_EQUAL (Pallet_ebs_copy_zero (fd, 0, 1u << 20, 2u << 20), 0);
  CU_ASSERT_EQUAL (pread (fd, buf, sz, 0), (ssize_t) sz);
  size_t bad = 0;
  for (size_t i = 0; i < sz; i++) {
    int inside = i >= (1u << 20) && i < (3u << 20);
    if ((inside && buf[i] != 0) || (!inside && buf[i] != 0xAB))
      bad++;
  }
  CU_ASSERT_EQUAL (bad, 0);
  fstat (fd, &st);
  CU_ASSERT_EQUAL (st.st_size, (off_t) sz);
  CU_ASSERT (st.st_blocks < before);
  CU_ASSERT_EQUAL (Pallet_ebs_copy_zero (fd, 0, 0, 0), 0);
  /* a bad fd is an error, not a crash */
  CU_ASSERT (Pallet_ebs_copy_zero (-1, 0, 0, 4096) < 0);
  free (buf);
  close (fd);
  unlink (p);
}

/* ---- journal ---- */
static void
test_journal_resume (void)
{
  const char *p = path ("j1");
  int resumed = -1;
  struct Pallet_ebs_journal *j = Pallet_ebs_journal_open (p, "snap-1", NULL, 100, 524288, &resumed);
  CU_ASSERT_FATAL (j != NULL);
  CU_ASSERT_EQUAL (resumed, 0);
  CU_ASSERT_EQUAL (Pallet_ebs_journal_count (j), 0);
  Pallet_ebs_journal_set (j, 0);
  Pallet_ebs_journal_set (j, 7);
  Pallet_ebs_journal_set (j, 8);
  Pallet_ebs_journal_set (j, 99);
  Pallet_ebs_journal_set (j, 100); /* out of range: ignored */
  Pallet_ebs_journal_set_zeroed (j);
  CU_ASSERT_EQUAL (Pallet_ebs_journal_sync (j, -1), 0);
  Pallet_ebs_journal_set (j, 50); /* not synced: lost on a crash */
  Pallet_ebs_journal_close (j);

  j = Pallet_ebs_journal_open (p, "snap-1", NULL, 100, 524288, &resumed);
  CU_ASSERT_FATAL (j != NULL);
  CU_ASSERT_EQUAL (resumed, 1);
  CU_ASSERT_EQUAL (Pallet_ebs_journal_count (j), 4);
  CU_ASSERT (Pallet_ebs_journal_test (j, 0) && Pallet_ebs_journal_test (j, 7)
             && Pallet_ebs_journal_test (j, 8) && Pallet_ebs_journal_test (j, 99));
  CU_ASSERT (!Pallet_ebs_journal_test (j, 1) && !Pallet_ebs_journal_test (j, 50)
             && !Pallet_ebs_journal_test (j, 100));
  CU_ASSERT_EQUAL (Pallet_ebs_journal_zeroed (j), 1);
  Pallet_ebs_journal_remove (j);
  CU_ASSERT (access (p, F_OK) != 0);
}

static void
test_journal_mismatch (void)
{
  const char *p = path ("j2");
  int resumed;
  struct Pallet_ebs_journal *j = Pallet_ebs_journal_open (p, "snap-1", NULL, 64, 524288, &resumed);
  CU_ASSERT_FATAL (j != NULL);
  Pallet_ebs_journal_set (j, 3);
  Pallet_ebs_journal_sync (j, -1);
  Pallet_ebs_journal_close (j);
  /* another snapshot, another delta base, another size: start over */
  const char *snaps[] = { "snap-2", "snap-1", "snap-1" };
  const char *prevs[] = { NULL, "snap-0", NULL };
  uint64_t sizes[] = { 64, 64, 65 };
  for (int i = 0; i < 3; i++) {
    j = Pallet_ebs_journal_open (p, snaps[i], prevs[i], sizes[i], 524288, &resumed);
    CU_ASSERT_FATAL (j != NULL);
    CU_ASSERT_EQUAL (resumed, 0);
    CU_ASSERT_EQUAL (Pallet_ebs_journal_count (j), 0);
    CU_ASSERT_EQUAL (Pallet_ebs_journal_zeroed (j), 0);
    Pallet_ebs_journal_close (j);
    /* put the original back */
    j = Pallet_ebs_journal_open (p, "snap-1", NULL, 64, 524288, &resumed);
    Pallet_ebs_journal_set (j, 3);
    Pallet_ebs_journal_sync (j, -1);
    Pallet_ebs_journal_close (j);
  }
  /* a truncated or garbage journal is discarded, not trusted */
  int fd = open (p, O_WRONLY | O_TRUNC);
  CU_ASSERT_EQUAL (write (fd, "garbage", 7), 7);
  close (fd);
  j = Pallet_ebs_journal_open (p, "snap-1", NULL, 64, 524288, &resumed);
  CU_ASSERT_FATAL (j != NULL);
  CU_ASSERT_EQUAL (resumed, 0);
  CU_ASSERT_EQUAL (Pallet_ebs_journal_count (j), 0);
  Pallet_ebs_journal_remove (j);
  /* an unwritable place fails cleanly */
  CU_ASSERT (Pallet_ebs_journal_open ("/nonexistent-dir/j", "snap-1", NULL, 8, 524288, &resumed)
             == NULL);
}

static void
test_journal_sync_data (void)
{
  const char *p = path ("j3"), *d = path ("data");
  int fd = open (d, O_RDWR | O_CREAT, 0600);
  int resumed;
  struct Pallet_ebs_journal *j =
      Pallet_ebs_journal_open (p, "snap-9", "snap-8", 20000, 524288, &resumed);
  CU_ASSERT_FATAL (j != NULL && fd >= 0);
  for (uint64_t b = 0; b < 20000; b += 3)
    Pallet_ebs_journal_set (j, b);
  CU_ASSERT_EQUAL (Pallet_ebs_journal_sync (j, fd), 0);
  Pallet_ebs_journal_close (j);
  j = Pallet_ebs_journal_open (p, "snap-9", "snap-8", 20000, 524288, &resumed);
  CU_ASSERT_EQUAL (resumed, 1);
  CU_ASSERT_EQUAL (Pallet_ebs_journal_count (j), 6667);
  /* the file is 0600: it names snapshots of someone's disks */
  struct stat st;
  stat (p, &st);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0600);
  Pallet_ebs_journal_remove (j);
  close (fd);
  unlink (d);
}

int
main (void)
{
  if (!mkdtemp (dir))
    return 1;
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("ebs-copy", NULL, NULL);
  CU_add_test (s, "gaps", test_gaps);
  CU_add_test (s, "gaps_stop", test_gaps_stop);
  CU_add_test (s, "zero_file", test_zero_file);
  CU_add_test (s, "journal_resume", test_journal_resume);
  CU_add_test (s, "journal_mismatch", test_journal_mismatch);
  CU_add_test (s, "journal_sync_data", test_journal_sync_data);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned f = CU_get_number_of_failures () + CU_get_number_of_tests_failed ();
  CU_cleanup_registry ();
  rmdir (dir);
  return f ? 1 : 0;
}
