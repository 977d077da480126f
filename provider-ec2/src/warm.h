/* SPDX-License-Identifier: Apache-2.0 */
/* provider-ec2: warm migration (warm.c) and the snapshot helpers it shares
 * with the cold transfer (transfer.c) and the copy mode (copy_mode.c). */
#ifndef PALLET_EC2_WARM_H
#define PALLET_EC2_WARM_H

#include "ec2.h"
#include "pallet-ebs-copy.h"

/* Pallet's own tag: the warm round a snapshot belongs to ("0", "1", ...). */
#define EC2_TAG_ROUND "forklift.konveyor.io/warm-round"

#define EC2_WARM_NEEDS_COPY                                                            \
  "warm migration needs transfer-mode copy (the changed blocks are read with the EBS " \
  "direct APIs); set spec.settings.transfer-mode: copy on the Provider, or use plan type: cold"

/* 1 if the plan's type is "warm". */
int ec2_plan_is_warm (const json_t *plan);

/* This migration's snapshots of the VM (of one warm round, or any when
 * round is NULL) into vols[].<id_key>, matched by source volume. */
int ec2_snapshots_find (struct ec2 *s, const struct ec2_input *in, json_t *vols, const char *id_key,
                        const char *round);
/* CreateSnapshots for the instance, tagged (and with the round tag). */
int ec2_snapshots_create (struct ec2 *s, const struct ec2_input *in, json_t *vols,
                          const char *id_key, const char *round);
/* One DescribeSnapshots for vols[].<id_key>; *done once all completed. */
int ec2_snapshots_wait (struct ec2 *s, struct Pallet_aws_client *c, const struct ec2_input *in,
                        json_t *vols, const char *id_key, const char *state_key, const char *what,
                        int *done);

/* Copies volume i of the VM into its raw file (v.localPath, decided here on
 * first use): snap in full when prev is NULL, else the delta prev -> snap.
 * step labels the progress.  Returns a pallet status (error reported). */
int ec2_copy_one (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *v, size_t i,
                  const char *snap, const char *prev, const char *step,
                  struct Pallet_ebs_copy_result *res);

/* The warm transfer: precopy rounds, then (options.cutover) the stop, the
 * final delta and state.transferred.  Emits nothing itself: the caller
 * emits state. */
int ec2_warm_transfer (struct ec2 *s, const struct ec2_input *in, json_t *state, json_t *vols);

#endif
