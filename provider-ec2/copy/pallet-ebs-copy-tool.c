/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-ebs-copy: copy an EBS snapshot (or a delta) into a raw file or a
 * block device.  Credentials, region and endpoint come from the standard
 * AWS environment (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_ENDPOINT_URL...).
 * Prints the result as one JSON object on stdout. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pallet-ebs-copy.h"

static void
usage (FILE *f)
{
  fprintf (
      f,
      "usage: pallet-ebs-copy --snapshot SNAP [--prev SNAP] --target PATH\n"
      "         [--journal PATH] [--workers N] [--max-rps R] [--target-is-zero]\n"
      "         [--keep-journal] [--journal-sync-blocks N] [--max-attempts N] [--backoff-base-ms MS]\n"
      "         [--progress] [--verbose]\n");
}

static void
progress (void *opaque, uint64_t done, uint64_t total)
{
  (void) opaque;
  fprintf (stderr, "progress %llu/%llu\n", (unsigned long long) done, (unsigned long long) total);
}

static void
logmsg (void *opaque, int level, const char *msg)
{
  (void) opaque;
  (void) level;
  fprintf (stderr, "pallet-ebs-copy: %s\n", msg);
}

int
main (int argc, char **argv)
{
  static const struct option lo[] = { { "snapshot", 1, 0, 's' },
                                      { "prev", 1, 0, 'p' },
                                      { "target", 1, 0, 't' },
                                      { "journal", 1, 0, 'j' },
                                      { "workers", 1, 0, 'w' },
                                      { "max-rps", 1, 0, 'r' },
                                      { "target-is-zero", 0, 0, 'z' },
                                      { "keep-journal", 0, 0, 'k' },
                                      { "journal-sync-blocks", 1, 0, 'J' },
                                      { "max-attempts", 1, 0, 'a' },
                                      { "backoff-base-ms", 1, 0, 'b' },
                                      { "progress", 0, 0, 'P' },
                                      { "verbose", 0, 0, 'v' },
                                      { "help", 0, 0, 'h' },
                                      { 0, 0, 0, 0 } };
  struct Pallet_aws_config cfg = { 0 };
  struct Pallet_ebs_copy_opts o = { .aws = &cfg };
  int ch;
  while ((ch = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (ch) {
    case 's': o.snapshot_id = optarg; break;
    case 'p': o.prev_snapshot_id = optarg; break;
    case 't': o.target = optarg; break;
    case 'j': o.journal = optarg; break;
    case 'w': o.workers = atoi (optarg); break;
    case 'r': o.max_rps = atof (optarg); break;
    case 'z': o.target_is_zero = 1; break;
    case 'k': o.keep_journal = 1; break;
    case 'J': o.journal_sync_blocks = atoi (optarg); break;
    case 'a': cfg.max_attempts = atoi (optarg); break;
    case 'b': cfg.backoff_base_ms = atol (optarg); break;
    case 'P': o.progress = progress; break;
    case 'v': o.log = logmsg; break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 2;
    }
  }
  if (!o.snapshot_id || !o.target || optind != argc) {
    usage (stderr);
    return 2;
  }
  struct Pallet_ebs_copy_result r;
  char *err = NULL;
  int rc = Pallet_ebs_copy (&o, &r, &err);
  json_t *j = json_pack (
      "{s:s, s:s?, s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "snapshot",
      o.snapshot_id, "prev", o.prev_snapshot_id, "target", o.target, "volumeBytes",
      (json_int_t) r.volume_bytes, "blockSize", (int) r.block_size, "blocksListed",
      (json_int_t) r.blocks_listed, "blocksFetched", (json_int_t) r.blocks_fetched, "blocksSkipped",
      (json_int_t) r.blocks_skipped, "blocksZeroed", (json_int_t) r.blocks_zeroed, "rangesZeroed",
      (json_int_t) r.ranges_zeroed, "bytesWritten", (json_int_t) r.bytes_written, "seconds",
      r.seconds, "MiBps", r.seconds > 0 ? (double) r.bytes_written / 1048576.0 / r.seconds : 0.0);
  if (rc < 0)
    json_object_set_new (j, "error", json_string (err ? err : "unknown error"));
  char *s = json_dumps (j, JSON_COMPACT);
  puts (s ? s : "{}");
  free (s);
  json_decref (j);
  if (rc < 0)
    fprintf (stderr, "pallet-ebs-copy: %s\n", err ? err : "failed");
  free (err);
  return rc < 0 ? 1 : 0;
}
