/* SPDX-License-Identifier: Apache-2.0 */
/* Pallet_ebs_copy: list, then N workers GetSnapshotBlock + pwrite. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "pallet-ebs-copy.h"

#define JOURNAL_SYNC_BLOCKS 256 /* and at least every ~1 s */
#define JOURNAL_SYNC_NS     1000000000LL

/* ---- Zeroing ---- */

int
Pallet_ebs_copy_gaps (const uint64_t *idx, size_t n, uint64_t total,
                      int (*fn) (void *, uint64_t, uint64_t), void *opaque)
{
  uint64_t next = 0;
  int runs = 0;
  for (size_t i = 0; i <= n; i++) {
    uint64_t b = i < n ? idx[i] : total;
    if (b > total)
      b = total;
    if (b > next) {
      if (fn && fn (opaque, next, b - next))
        return -1;
      runs++;
    }
    if (b + 1 > next)
      next = b + 1;
  }
  return runs;
}

static int
write_zeros (int fd, uint64_t off, uint64_t len)
{
  static const char zero[65536];
  while (len) {
    size_t n = len < sizeof zero ? (size_t) len : sizeof zero;
    ssize_t r = pwrite (fd, zero, n, (off_t) off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? -errno : -EIO;
    off += (uint64_t) r;
    len -= (uint64_t) r;
  }
  return 0;
}

int
Pallet_ebs_copy_zero (int fd, int is_blockdev, uint64_t off, uint64_t len)
{
  if (len == 0)
    return 0;
  if (is_blockdev) {
    uint64_t range[2] = { off, len };
    if (ioctl (fd, BLKZEROOUT, range) == 0)
      return 0;
    return write_zeros (fd, off, len);
  }
  if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len) == 0)
    return 0;
  if (errno != EOPNOTSUPP && errno != ENOSYS)
    return -errno;
  return write_zeros (fd, off, len);
}

/* ---- The copy ---- */

struct blk {
  uint64_t index;
  char *token; /* NULL: zero this block (delta, no SecondBlockToken) */
};

struct copy {
  const struct Pallet_ebs_copy_opts *o;
  struct blk *blks;
  size_t nblks, cap;
  uint32_t block_size;
  uint64_t volume_bytes;
  int fd, is_blockdev, fresh;
  struct Pallet_ebs_journal *j;
  pthread_mutex_t lock;
  size_t next; /* next blks[] to hand out */
  char *err;   /* first error */
  int err_status;
  atomic_int stop;
  atomic_uint_fast64_t done_bytes, fetched, zeroed, written, since_sync;
  /* token bucket (GCRA): the time the next request may start */
  pthread_mutex_t rate_lock;
  int64_t rate_next_ns, rate_step_ns, rate_burst_ns;
  _Atomic int64_t last_sync_ns;
};

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
set_err (struct copy *c, int status, const char *fmt, ...)
{
  va_list ap;
  char *m = NULL;
  va_start (ap, fmt);
  if (vasprintf (&m, fmt, ap) < 0)
    m = NULL;
  va_end (ap);
  pthread_mutex_lock (&c->lock);
  if (!c->err) {
    c->err = m;
    c->err_status = status;
    m = NULL;
  }
  pthread_mutex_unlock (&c->lock);
  free (m);
  atomic_store (&c->stop, 1);
}

static int
add_blk (struct copy *c, uint64_t index, const char *token)
{
  if (c->nblks == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    struct blk *b = realloc (c->blks, cap * sizeof *b);
    if (!b)
      return -1;
    c->blks = b;
    c->cap = cap;
  }
  char *t = token ? strdup (token) : NULL;
  if (token && !t)
    return -1;
  c->blks[c->nblks++] = (struct blk){ index, t };
  return 0;
}

static int
on_block (void *opaque, json_t *item, const json_t *ctx)
{
  (void) ctx;
  struct copy *c = opaque;
  json_t *ji = json_object_get (item, "BlockIndex");
  if (!json_is_integer (ji) || json_integer_value (ji) < 0)
    return 1;
  const char *tok;
  if (c->o->prev_snapshot_id)
    tok = json_string_value (json_object_get (item, "SecondBlockToken"));
  else
    tok = json_string_value (json_object_get (item, "BlockToken"));
  return add_blk (c, (uint64_t) json_integer_value (ji), tok) < 0;
}

/* Waits for a GetSnapshotBlock slot: at most 1/step per second, bursts of
 * burst_ns worth. */
static void
rate_wait (struct copy *c)
{
  pthread_mutex_lock (&c->rate_lock);
  int64_t now = now_ns ();
  if (c->rate_next_ns < now - c->rate_burst_ns)
    c->rate_next_ns = now - c->rate_burst_ns;
  int64_t at = c->rate_next_ns;
  c->rate_next_ns += c->rate_step_ns;
  pthread_mutex_unlock (&c->rate_lock);
  if (at > now) {
    struct timespec ts = { (time_t) ((at - now) / 1000000000LL),
                           (long) ((at - now) % 1000000000LL) };
    nanosleep (&ts, NULL);
  }
}

static int
worker_cancelled (void *opaque)
{
  struct copy *c = opaque;
  return atomic_load (&c->stop);
}

static int
all_zero (const unsigned char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

static void
maybe_sync (struct copy *c, int force)
{
  int64_t t = now_ns ();
  uint64_t every =
      c->o->journal_sync_blocks > 0 ? (uint64_t) c->o->journal_sync_blocks : JOURNAL_SYNC_BLOCKS;
  if (!force && atomic_load (&c->since_sync) < every && t - c->last_sync_ns < JOURNAL_SYNC_NS)
    return;
  atomic_store (&c->since_sync, 0);
  c->last_sync_ns = t;
  if (Pallet_ebs_journal_sync (c->j, c->fd) < 0)
    set_err (c, PALLET_E_IO,
             "writing the copy journal of %s failed: %s; check the space "
             "and permissions of the journal's directory",
             c->o->target, strerror (errno));
}

static int
do_block (struct copy *c, struct Pallet_aws_client *cl, unsigned char *buf, const struct blk *b)
{
  uint64_t off = b->index * c->block_size;
  uint64_t len = c->block_size;
  if (off + len > c->volume_bytes)
    len = c->volume_bytes - off;
  if (!b->token) {
    int r = Pallet_ebs_copy_zero (c->fd, c->is_blockdev, off, len);
    if (r < 0) {
      set_err (c, PALLET_E_IO, "zeroing block %llu of %s failed: %s", (unsigned long long) b->index,
               c->o->target, strerror (-r));
      return -1;
    }
    atomic_fetch_add (&c->zeroed, 1);
    return 0;
  }
  rate_wait (c);
  size_t got = 0;
  if (Pallet_aws_ebs_get_snapshot_block (cl, c->o->snapshot_id, (int64_t) b->index, b->token, buf,
                                         c->block_size, &got)
      < 0) {
    const struct Pallet_aws_error *e = Pallet_aws_last_error (cl);
    if (atomic_load (&c->stop) && e->status == PALLET_E_CANCELLED)
      return -1;
    set_err (c, e->status,
             "copying block %llu of snapshot %s to %s failed after %d attempt(s): "
             "%s",
             (unsigned long long) b->index, c->o->snapshot_id, c->o->target, e->attempts,
             Pallet_aws_errmsg (cl));
    return -1;
  }
  atomic_fetch_add (&c->fetched, 1);
  if (got < len)
    memset (buf + got, 0, len - got);
  int r;
  if (all_zero (buf, len)) {
    r = c->fresh ? 0 : Pallet_ebs_copy_zero (c->fd, c->is_blockdev, off, len);
    atomic_fetch_add (&c->zeroed, 1);
  }
  else {
    /* Keep the target as sparse as the source: a zero tail (4 KiB
     * granules) is not written, and punched unless the target is fresh. */
    size_t end = len;
    while (end > 0 && buf[end - 1] == 0)
      end--;
    end = (end + 4095) & ~(size_t) 4095;
    if (end < len) {
      r = c->fresh ? 0 : Pallet_ebs_copy_zero (c->fd, c->is_blockdev, off + end, len - end);
      len = end;
    }
    else
      r = 0;
    for (size_t w = 0; w < len && r == 0;) {
      ssize_t n = pwrite (c->fd, buf + w, len - w, (off_t) (off + w));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        r = n < 0 ? -errno : -EIO;
      else
        w += (size_t) n;
    }
    if (r == 0)
      atomic_fetch_add (&c->written, len);
  }
  if (r < 0) {
    set_err (c, PALLET_E_IO,
             "writing block %llu (offset %llu) to %s failed: %s; check the "
             "target's space and health",
             (unsigned long long) b->index, (unsigned long long) off, c->o->target, strerror (-r));
    return -1;
  }
  return 0;
}

struct worker {
  struct copy *c;
  pthread_t tid;
  int started;
};

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  struct copy *c = w->c;
  char *em = NULL;
  struct Pallet_aws_client *cl = Pallet_aws_client_new (c->o->aws, &em);
  unsigned char *buf = malloc (c->block_size);
  if (!cl || !buf) {
    set_err (c, PALLET_E_FAILED, "creating an AWS client for the copy of snapshot %s failed: %s",
             c->o->snapshot_id, em ? em : "out of memory");
    goto out;
  }
  Pallet_aws_client_set_callbacks (cl, NULL, NULL, worker_cancelled, c);
  while (!atomic_load (&c->stop)) {
    pthread_mutex_lock (&c->lock);
    size_t i = c->next < c->nblks ? c->next++ : c->nblks;
    pthread_mutex_unlock (&c->lock);
    if (i >= c->nblks)
      break;
    const struct blk *b = &c->blks[i];
    if (Pallet_ebs_journal_test (c->j, b->index))
      continue;
    if (do_block (c, cl, buf, b) < 0)
      break;
    Pallet_ebs_journal_set (c->j, b->index);
    atomic_fetch_add (&c->done_bytes, c->block_size);
    atomic_fetch_add (&c->since_sync, 1);
    maybe_sync (c, 0);
  }
out:
  free (buf);
  free (em);
  Pallet_aws_client_free (cl);
  return NULL;
}

static void
logf_ (const struct Pallet_ebs_copy_opts *o, int level, const char *fmt, ...)
{
  if (!o->log)
    return;
  char m[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (m, sizeof m, fmt, ap);
  va_end (ap);
  o->log (o->opaque, level, m);
}

static int
zero_gap (void *opaque, uint64_t start, uint64_t count)
{
  struct copy *c = opaque;
  uint64_t off = start * c->block_size, len = count * c->block_size;
  if (off + len > c->volume_bytes)
    len = c->volume_bytes - off;
  int r = Pallet_ebs_copy_zero (c->fd, c->is_blockdev, off, len);
  if (r < 0) {
    set_err (c, PALLET_E_IO, "zeroing blocks %llu..%llu of %s (not in snapshot %s) failed: %s",
             (unsigned long long) start, (unsigned long long) (start + count - 1), c->o->target,
             c->o->snapshot_id, strerror (-r));
    return 1;
  }
  return 0;
}

static int
cmp_blk (const void *a, const void *b)
{
  uint64_t x = ((const struct blk *) a)->index, y = ((const struct blk *) b)->index;
  return x < y ? -1 : x > y;
}

/* Opens the target; sizes a file; checks a device. */
static int
open_target (struct copy *c)
{
  const char *t = c->o->target;
  struct stat st;
  int exists = stat (t, &st) == 0;
  c->fd = open (t, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->fd < 0) {
    set_err (c, PALLET_E_IO,
             "the copy target %s cannot be opened for writing: %s; check the "
             "path and its permissions",
             t, strerror (errno));
    return -1;
  }
  if (fstat (c->fd, &st) < 0) {
    set_err (c, PALLET_E_IO, "stat %s: %s", t, strerror (errno));
    return -1;
  }
  if (S_ISBLK (st.st_mode)) {
    c->is_blockdev = 1;
    uint64_t sz = 0;
    if (ioctl (c->fd, BLKGETSIZE64, &sz) < 0 || sz < c->volume_bytes) {
      set_err (c, PALLET_E_INVALID,
               "the block device %s holds %llu bytes but snapshot %s needs "
               "%llu; give a device (PVC) at least as large as the volume",
               t, (unsigned long long) sz, c->o->snapshot_id, (unsigned long long) c->volume_bytes);
      return -1;
    }
    return 0;
  }
  if (!S_ISREG (st.st_mode)) {
    set_err (c, PALLET_E_INVALID,
             "the copy target %s is neither a regular file nor a block "
             "device; pass a raw file path or a block device",
             t);
    return -1;
  }
  if (c->o->prev_snapshot_id && (uint64_t) st.st_size != c->volume_bytes) {
    set_err (c, PALLET_E_INVALID,
             "a delta copy (%s -> %s) needs the target %s to hold the copy "
             "of %s (%llu bytes), but it is %llu bytes; run the full copy first",
             c->o->prev_snapshot_id, c->o->snapshot_id, t, c->o->prev_snapshot_id,
             (unsigned long long) c->volume_bytes, (unsigned long long) st.st_size);
    return -1;
  }
  if ((uint64_t) st.st_size > c->volume_bytes) {
    set_err (c, PALLET_E_INVALID,
             "the copy target %s is %llu bytes, larger than snapshot %s "
             "(%llu bytes); remove it or pass another path",
             t, (unsigned long long) st.st_size, c->o->snapshot_id,
             (unsigned long long) c->volume_bytes);
    return -1;
  }
  if (!exists || st.st_size == 0)
    c->fresh = 1;
  if ((uint64_t) st.st_size < c->volume_bytes && ftruncate (c->fd, (off_t) c->volume_bytes) < 0) {
    set_err (c, PALLET_E_IO, "sizing %s to %llu bytes failed: %s; check the free space", t,
             (unsigned long long) c->volume_bytes, strerror (errno));
    return -1;
  }
  return 0;
}

/* 1. The block list (all pages; tokens live 7 days), sorted and checked. */
static int
list_blocks (struct copy *c, struct Pallet_aws_client *lc, json_t **info, uint64_t *nblocks,
             struct Pallet_ebs_copy_result *res)
{
  const struct Pallet_ebs_copy_opts *o = c->o;
  int r = o->prev_snapshot_id
              ? Pallet_aws_ebs_list_changed_blocks (lc, o->prev_snapshot_id, o->snapshot_id, -1,
                                                    on_block, c, info)
              : Pallet_aws_ebs_list_snapshot_blocks (lc, o->snapshot_id, -1, on_block, c, info);
  if (r < 0) {
    set_err (c, Pallet_aws_last_error (lc)->status,
             "listing the blocks of snapshot %s "
             "failed: %s",
             o->snapshot_id, Pallet_aws_errmsg (lc));
    return -1;
  }
  long long vs = Pallet_aws_json_int (*info, "VolumeSize", 0);
  long long bs = Pallet_aws_json_int (*info, "BlockSize", PALLET_EBS_BLOCK_SIZE);
  if (vs <= 0 || bs <= 0 || bs > (64 << 20) || bs % 512) {
    set_err (c, PALLET_E_FAILED,
             "snapshot %s: the EBS listing gave VolumeSize %lld GiB and "
             "BlockSize %lld; the endpoint's answer is not usable",
             o->snapshot_id, vs, bs);
    return -1;
  }
  c->block_size = (uint32_t) bs;
  c->volume_bytes = (uint64_t) vs << 30;
  *nblocks = (c->volume_bytes + c->block_size - 1) / c->block_size;
  qsort (c->blks, c->nblks, sizeof *c->blks, cmp_blk);
  for (size_t i = 0; i < c->nblks; i++)
    if (c->blks[i].index >= *nblocks || (i && c->blks[i].index == c->blks[i - 1].index)) {
      set_err (c, PALLET_E_FAILED,
               "snapshot %s: the listing has block %llu twice or beyond "
               "the volume (%llu blocks); the endpoint's answer is not usable",
               o->snapshot_id, (unsigned long long) c->blks[i].index,
               (unsigned long long) *nblocks);
      return -1;
    }
  res->volume_bytes = c->volume_bytes;
  res->block_size = c->block_size;
  res->blocks_listed = c->nblks;
  logf_ (o, PALLET_LOG_INFO, "snapshot %s%s%s: %zu blocks of %u bytes to copy, volume %llu GiB",
         o->snapshot_id, o->prev_snapshot_id ? " since " : "",
         o->prev_snapshot_id ? o->prev_snapshot_id : "", c->nblks, c->block_size, vs);
  return 0;
}

/* 2. The journal: which blocks an earlier run already copied. */
static int
open_journal (struct copy *c, uint64_t nblocks, char **jpath, struct Pallet_ebs_copy_result *res)
{
  const struct Pallet_ebs_copy_opts *o = c->o;
  if (o->journal)
    *jpath = strdup (o->journal);
  else if (asprintf (jpath, "%s.journal", o->target) < 0)
    *jpath = NULL;
  int resumed = 0;
  c->j = *jpath ? Pallet_ebs_journal_open (*jpath, o->snapshot_id, o->prev_snapshot_id, nblocks,
                                           c->block_size, &resumed)
                : NULL;
  if (!c->j) {
    set_err (c, PALLET_E_IO, "the copy journal %s cannot be opened: %s; check its directory",
             *jpath ? *jpath : "(none)", strerror (errno));
    return -1;
  }
  if (resumed)
    c->fresh = 0; /* earlier runs wrote to it */
  if (o->target_is_zero && !resumed)
    c->fresh = 1;
  res->blocks_skipped = 0;
  for (size_t i = 0; i < c->nblks; i++)
    if (Pallet_ebs_journal_test (c->j, c->blks[i].index))
      res->blocks_skipped++;
  atomic_store (&c->done_bytes, res->blocks_skipped * c->block_size);
  return 0;
}

/* 3. Unlisted blocks read as zero (full copy only): never stale data. */
static int
zero_unlisted (struct copy *c, uint64_t nblocks, const char *jpath,
               struct Pallet_ebs_copy_result *res)
{
  if (c->o->prev_snapshot_id || Pallet_ebs_journal_zeroed (c->j))
    return 0;
  if (!c->fresh) {
    uint64_t *idx = malloc ((c->nblks + 1) * sizeof *idx);
    if (!idx) {
      set_err (c, PALLET_E_NOMEM, "out of memory");
      return -1;
    }
    for (size_t i = 0; i < c->nblks; i++)
      idx[i] = c->blks[i].index;
    int runs = Pallet_ebs_copy_gaps (idx, c->nblks, nblocks, zero_gap, c);
    free (idx);
    if (runs < 0)
      return -1;
    res->ranges_zeroed = (uint64_t) runs;
  }
  Pallet_ebs_journal_set_zeroed (c->j);
  if (Pallet_ebs_journal_sync (c->j, c->fd) < 0) {
    set_err (c, PALLET_E_IO, "writing the copy journal %s failed: %s", jpath, strerror (errno));
    return -1;
  }
  return 0;
}

/* 4. The workers: start them, report progress until the list is handed out
   or cancelled, join them, sync the journal. */
static void
run_workers (struct copy *c, struct worker *ws, int nw, const char *jpath)
{
  const struct Pallet_ebs_copy_opts *o = c->o;
  for (int i = 0; i < nw; i++) {
    ws[i].c = c;
    if (pthread_create (&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
      set_err (c, PALLET_E_FAILED, "starting copy thread %d failed", i);
      break;
    }
    ws[i].started = 1;
  }
  uint64_t total = c->nblks * (uint64_t) c->block_size;
  for (;;) {
    pthread_mutex_lock (&c->lock);
    int done = c->next >= c->nblks;
    pthread_mutex_unlock (&c->lock);
    if (done || atomic_load (&c->stop))
      break;
    if (o->cancelled && o->cancelled (o->opaque)) {
      set_err (c, PALLET_E_CANCELLED,
               "the copy of snapshot %s to %s was cancelled; rerun to "
               "continue from the journal",
               o->snapshot_id, o->target);
      break;
    }
    if (o->progress)
      o->progress (o->opaque, atomic_load (&c->done_bytes), total);
    struct timespec ts = { 0, 100000000 };
    nanosleep (&ts, NULL);
  }
  /* Workers finish their block in flight (cancel aborts the transfer). */
  for (int i = 0; i < nw; i++)
    if (ws[i].started)
      pthread_join (ws[i].tid, NULL);
  /* Whatever finished is durable in the journal, error or not. */
  if (Pallet_ebs_journal_sync (c->j, c->fd) < 0 && !c->err)
    set_err (c, PALLET_E_IO, "writing the copy journal %s failed: %s", jpath, strerror (errno));
  if (!c->err && o->progress)
    o->progress (o->opaque, atomic_load (&c->done_bytes), total);
}

/* Fills the counters, closes the journal and target, frees the list. */
static void
finish_copy (struct copy *c, struct Pallet_ebs_copy_result *res, int64_t t0)
{
  res->blocks_fetched = atomic_load (&c->fetched);
  res->blocks_zeroed = atomic_load (&c->zeroed);
  res->bytes_written = atomic_load (&c->written);
  res->seconds = (double) (now_ns () - t0) / 1e9;
  res->status = c->err ? c->err_status : PALLET_OK;
  if (c->j) {
    if (!c->err && !c->o->keep_journal)
      Pallet_ebs_journal_remove (c->j);
    else
      Pallet_ebs_journal_close (c->j);
  }
  if (c->fd >= 0 && close (c->fd) < 0 && !c->err)
    set_err (c, PALLET_E_IO, "closing %s failed: %s", c->o->target, strerror (errno));
  for (size_t i = 0; i < c->nblks; i++)
    free (c->blks[i].token);
  free (c->blks);
}

int
Pallet_ebs_copy (const struct Pallet_ebs_copy_opts *o, struct Pallet_ebs_copy_result *res,
                 char **errmsg)
{
  struct Pallet_ebs_copy_result dummy;
  if (!res)
    res = &dummy;
  memset (res, 0, sizeof *res);
  if (errmsg)
    *errmsg = NULL;
  int64_t t0 = now_ns ();
  struct copy c = { .o = o, .fd = -1 };
  pthread_mutex_init (&c.lock, NULL);
  pthread_mutex_init (&c.rate_lock, NULL);
  struct worker *ws = NULL;
  int nw = o->workers > 0 ? o->workers : PALLET_EBS_COPY_DEFAULT_WORKERS;
  if (nw > PALLET_EBS_COPY_MAX_WORKERS)
    nw = PALLET_EBS_COPY_MAX_WORKERS;
  char *jpath = NULL;
  struct Pallet_aws_client *lc = NULL;
  json_t *info = NULL;
  uint64_t nblocks = 0;

  if (!o->aws || !o->snapshot_id || !*o->snapshot_id || !o->target || !*o->target) {
    set_err (&c, PALLET_E_INVALID,
             "Pallet_ebs_copy: a snapshot id, a target and an AWS "
             "configuration are required");
    goto out;
  }
  char *em = NULL;
  lc = Pallet_aws_client_new (o->aws, &em);
  if (!lc) {
    set_err (&c, PALLET_E_FAILED, "creating an AWS client to list snapshot %s failed: %s",
             o->snapshot_id, em ? em : "out of memory");
    free (em);
    goto out;
  }
  if (o->cancelled)
    Pallet_aws_client_set_callbacks (lc, NULL, NULL, o->cancelled, o->opaque);
  if (list_blocks (&c, lc, &info, &nblocks, res) < 0)
    goto out;
  if (open_target (&c) < 0 || open_journal (&c, nblocks, &jpath, res) < 0
      || zero_unlisted (&c, nblocks, jpath, res) < 0)
    goto out;
  double rps = o->max_rps > 0 ? o->max_rps : PALLET_EBS_COPY_DEFAULT_RPS;
  c.rate_step_ns = (int64_t) (1e9 / rps);
  c.rate_burst_ns = c.rate_step_ns * 4;
  c.rate_next_ns = now_ns ();
  c.last_sync_ns = now_ns ();
  ws = calloc ((size_t) nw, sizeof *ws);
  if (!ws) {
    set_err (&c, PALLET_E_NOMEM, "out of memory");
    goto out;
  }
  run_workers (&c, ws, nw, jpath);

out:
  finish_copy (&c, res, t0);
  free (ws);
  free (jpath);
  json_decref (info);
  Pallet_aws_client_free (lc);
  pthread_mutex_destroy (&c.lock);
  pthread_mutex_destroy (&c.rate_lock);
  int ret = c.err ? -1 : 0;
  if (c.err) {
    res->status = c.err_status;
    if (errmsg)
      *errmsg = c.err;
    else
      free (c.err);
  }
  return ret;
}
