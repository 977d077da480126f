/* SPDX-License-Identifier: Apache-2.0 */
/* The copy journal: a header naming the copy, then a bitmap of the blocks
 * done.  Small (1 bit per 512 KiB: 32 KiB per TiB), rewritten whole. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pallet-ebs-copy.h"

#define J_MAGIC "PALLETJ1"
#define J_HDR   256
#define J_IDLEN 96

struct j_header {
  char magic[8];
  uint32_t version;
  uint32_t block_size;
  uint64_t nblocks;
  uint64_t flags; /* bit 0: unlisted ranges zeroed */
  char snap[J_IDLEN];
  char prev[J_IDLEN];
};

struct Pallet_ebs_journal {
  char *path;
  int fd;
  pthread_mutex_t lock;
  pthread_mutex_t sync_lock; /* one writer at a time */
  struct j_header hdr;
  size_t bytes; /* bitmap size */
  unsigned char *map, *copy;
};

static void
fill_header (struct j_header *h, const char *snap, const char *prev, uint64_t nblocks,
             uint32_t block_size)
{
  memset (h, 0, sizeof *h);
  memcpy (h->magic, J_MAGIC, 8);
  h->version = 1;
  h->block_size = block_size;
  h->nblocks = nblocks;
  strncpy (h->snap, snap ? snap : "", J_IDLEN - 1);
  strncpy (h->prev, prev ? prev : "", J_IDLEN - 1);
}

struct Pallet_ebs_journal *
Pallet_ebs_journal_open (const char *path, const char *snap, const char *prev, uint64_t nblocks,
                         uint32_t block_size, int *resumed)
{
  *resumed = 0;
  struct Pallet_ebs_journal *j = calloc (1, sizeof *j);
  if (!j)
    return NULL;
  j->bytes = (nblocks + 7) / 8;
  j->map = calloc (1, j->bytes + 1);
  j->copy = calloc (1, j->bytes + 1);
  j->path = strdup (path);
  j->fd = -1;
  if (!j->map || !j->copy || !j->path) {
    errno = ENOMEM;
    goto fail;
  }
  pthread_mutex_init (&j->lock, NULL);
  pthread_mutex_init (&j->sync_lock, NULL);
  fill_header (&j->hdr, snap, prev, nblocks, block_size);
  j->fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->fd < 0)
    goto fail_locks;
  /* An old journal counts only if it describes exactly this copy. */
  struct j_header old;
  unsigned char raw[J_HDR];
  if (pread (j->fd, raw, J_HDR, 0) == J_HDR) {
    memcpy (&old, raw, sizeof old);
    struct j_header want = j->hdr;
    want.flags = old.flags;
    if (memcmp (&old, &want, sizeof old) == 0
        && pread (j->fd, j->map, j->bytes, J_HDR) == (ssize_t) j->bytes) {
      j->hdr.flags = old.flags;
      *resumed = 1;
      return j;
    }
  }
  memset (j->map, 0, j->bytes);
  if (ftruncate (j->fd, 0) < 0 || Pallet_ebs_journal_sync (j, -1) < 0)
    goto fail_locks;
  return j;
fail_locks : {
  int e = errno;
  pthread_mutex_destroy (&j->lock);
  pthread_mutex_destroy (&j->sync_lock);
  errno = e;
}
fail : {
  int e = errno;
  if (j->fd >= 0)
    close (j->fd);
  free (j->map);
  free (j->copy);
  free (j->path);
  free (j);
  errno = e;
}
  return NULL;
}

int
Pallet_ebs_journal_test (const struct Pallet_ebs_journal *j, uint64_t b)
{
  if (b >= j->hdr.nblocks)
    return 0;
  pthread_mutex_lock ((pthread_mutex_t *) &j->lock);
  int r = (j->map[b / 8] >> (b % 8)) & 1;
  pthread_mutex_unlock ((pthread_mutex_t *) &j->lock);
  return r;
}

void
Pallet_ebs_journal_set (struct Pallet_ebs_journal *j, uint64_t b)
{
  if (b >= j->hdr.nblocks)
    return;
  pthread_mutex_lock (&j->lock);
  j->map[b / 8] |= (unsigned char) (1u << (b % 8));
  pthread_mutex_unlock (&j->lock);
}

uint64_t
Pallet_ebs_journal_count (const struct Pallet_ebs_journal *j)
{
  uint64_t n = 0;
  pthread_mutex_lock ((pthread_mutex_t *) &j->lock);
  for (size_t i = 0; i < j->bytes; i++)
    n += (uint64_t) __builtin_popcount (j->map[i]);
  pthread_mutex_unlock ((pthread_mutex_t *) &j->lock);
  return n;
}

int
Pallet_ebs_journal_zeroed (const struct Pallet_ebs_journal *j)
{
  return (int) (j->hdr.flags & 1);
}

void
Pallet_ebs_journal_set_zeroed (struct Pallet_ebs_journal *j)
{
  pthread_mutex_lock (&j->lock);
  j->hdr.flags |= 1;
  pthread_mutex_unlock (&j->lock);
}

static int
write_all (int fd, const void *buf, size_t len, off_t off)
{
  const char *p = buf;
  while (len) {
    ssize_t r = pwrite (fd, p, len, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? -errno : -EIO;
    p += r;
    len -= (size_t) r;
    off += r;
  }
  return 0;
}

int
Pallet_ebs_journal_sync (struct Pallet_ebs_journal *j, int data_fd)
{
  pthread_mutex_lock (&j->sync_lock);
  unsigned char hdr[J_HDR] = { 0 };
  pthread_mutex_lock (&j->lock);
  memcpy (j->copy, j->map, j->bytes);
  memcpy (hdr, &j->hdr, sizeof j->hdr);
  pthread_mutex_unlock (&j->lock);
  int r = 0;
  /* Data first: a bit must never be durable before its block. */
  if (data_fd >= 0 && fdatasync (data_fd) < 0 && errno != EINVAL)
    r = -errno;
  if (r == 0)
    r = write_all (j->fd, j->copy, j->bytes, J_HDR);
  if (r == 0)
    r = write_all (j->fd, hdr, J_HDR, 0);
  if (r == 0 && fsync (j->fd) < 0)
    r = -errno;
  pthread_mutex_unlock (&j->sync_lock);
  if (r < 0)
    errno = -r;
  return r;
}

void
Pallet_ebs_journal_close (struct Pallet_ebs_journal *j)
{
  if (!j)
    return;
  close (j->fd);
  pthread_mutex_destroy (&j->lock);
  pthread_mutex_destroy (&j->sync_lock);
  free (j->map);
  free (j->copy);
  free (j->path);
  free (j);
}

void
Pallet_ebs_journal_remove (struct Pallet_ebs_journal *j)
{
  if (j)
    unlink (j->path);
  Pallet_ebs_journal_close (j);
}
