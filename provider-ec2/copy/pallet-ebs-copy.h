/* SPDX-License-Identifier: Apache-2.0 */
/* Pallet_ebs_copy: copy an EBS snapshot (or the delta between two
 * snapshots of one lineage) through the EBS direct APIs into a sparse raw
 * file or a block device.  Static, -fPIC, internal to provider-ec2.
 *
 * Full copy: ListSnapshotBlocks (all pages), then N workers, each with its
 * own Pallet_aws_client, GetSnapshotBlock (SHA-256 verified by pallet_aws)
 * and pwrite at BlockIndex * BlockSize.  Blocks not listed are zero on the
 * target: a fresh file is ftruncate'd (holes), any other target gets
 * fallocate(PUNCH_HOLE) / BLKZEROOUT over the unlisted ranges.
 * Delta copy: ListChangedBlocks(prev, snap); a block without
 * SecondBlockToken is zero in snap and is zeroed on the target.
 *
 * Journal: a small file (default TARGET.journal) holding a header and a
 * bitmap of the blocks done; the target is fdatasync'd before the bitmap
 * is written, so a restart (even after kill -9) fetches only what is left.
 * It is removed after a successful copy unless keep_journal is set. */
#ifndef PALLET_EBS_COPY_H
#define PALLET_EBS_COPY_H

#include <stddef.h>
#include <stdint.h>
#include "pallet-aws.h"

#define PALLET_EBS_COPY_DEFAULT_WORKERS 8
#define PALLET_EBS_COPY_MAX_WORKERS     256
#define PALLET_EBS_COPY_DEFAULT_RPS     950 /* per-snapshot limit is 1,000/s */
#define PALLET_EBS_BLOCK_SIZE           524288

/* done/total in bytes of blocks to fetch (journal-skipped ones count as done). */
typedef void (*Pallet_ebs_copy_progress_fn) (void *opaque, uint64_t done, uint64_t total);

struct Pallet_ebs_copy_opts {
  const struct Pallet_aws_config *aws;  /* each worker makes its own client */
  const char *snapshot_id;              /* the snapshot to copy (required) */
  const char *prev_snapshot_id;         /* NULL: full copy; else the delta prev -> snap */
  const char *target;                   /* file or block device path */
  const char *journal;                  /* NULL: TARGET.journal */
  int workers;                          /* 0: 8 */
  double max_rps;                       /* GetSnapshotBlock/s, 0: 950 */
  int target_is_zero;                   /* the caller knows the target reads as zeros */
  int keep_journal;                     /* keep it after success */
  int journal_sync_blocks;              /* sync the journal every N blocks (0: 256) and ~1 s */
  Pallet_ebs_copy_progress_fn progress; /* called from the calling thread */
  Pallet_aws_cancel_fn cancelled;       /* polled from the calling thread, ~100 ms */
  Pallet_aws_log_fn log;                /* calling thread only */
  void *opaque;
};

struct Pallet_ebs_copy_result {
  uint64_t volume_bytes;
  uint32_t block_size;
  uint64_t blocks_listed;  /* listed by the List call (full) or changed (delta) */
  uint64_t blocks_fetched; /* GetSnapshotBlock calls that succeeded in this run */
  uint64_t blocks_skipped; /* already done according to the journal */
  uint64_t blocks_zeroed;  /* delta blocks without SecondBlockToken, all-zero blocks */
  uint64_t ranges_zeroed;  /* unlisted ranges punched/zeroed (full copy) */
  uint64_t bytes_written;  /* data bytes pwritten */
  double seconds;
  int status; /* enum pallet_status */
};

/* 0 on success, -1 with *errmsg (malloc'd; thing, problem, fix). */
int Pallet_ebs_copy (const struct Pallet_ebs_copy_opts *opts, struct Pallet_ebs_copy_result *res,
                     char **errmsg);

/* ---- Exposed for unit tests ---- */

/* Calls fn(start_block, nblocks) for every maximal run of blocks in
 * [0, total) that is not in the ascending, unique list idx[0..n).
 * Returns the number of runs, or -1 if fn returned non-zero. */
int Pallet_ebs_copy_gaps (const uint64_t *idx, size_t n, uint64_t total,
                          int (*fn) (void *opaque, uint64_t start, uint64_t count), void *opaque);

/* Makes [off, off+len) read as zeros on fd: PUNCH_HOLE for files (writes
 * zeros if the filesystem cannot punch), BLKZEROOUT for block devices.
 * 0 or -errno. */
int Pallet_ebs_copy_zero (int fd, int is_blockdev, uint64_t off, uint64_t len);

struct Pallet_ebs_journal;
/* Opens or creates path for (snap, prev, nblocks, block_size).  An existing
 * journal for anything else is discarded (*resumed = 0).  NULL + errno. */
struct Pallet_ebs_journal *Pallet_ebs_journal_open (const char *path, const char *snap,
                                                    const char *prev, uint64_t nblocks,
                                                    uint32_t block_size, int *resumed);
int Pallet_ebs_journal_test (const struct Pallet_ebs_journal *j, uint64_t block);
void Pallet_ebs_journal_set (struct Pallet_ebs_journal *j, uint64_t block);
uint64_t Pallet_ebs_journal_count (const struct Pallet_ebs_journal *j);
int Pallet_ebs_journal_zeroed (const struct Pallet_ebs_journal *j);
void Pallet_ebs_journal_set_zeroed (struct Pallet_ebs_journal *j);
/* Thread-safe with _set.  Snapshots the bitmap, fdatasync's data_fd (if
 * >= 0) so every block in the snapshot is durable, then writes header +
 * bitmap and fsyncs the journal.  0 or -errno. */
int Pallet_ebs_journal_sync (struct Pallet_ebs_journal *j, int data_fd);
/* Removes the journal file and frees j. */
void Pallet_ebs_journal_remove (struct Pallet_ebs_journal *j);
void Pallet_ebs_journal_close (struct Pallet_ebs_journal *j);

#endif
