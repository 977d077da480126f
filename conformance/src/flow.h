/* SPDX-License-Identifier: Apache-2.0 */
/* Pipeline helpers shared by the checks. */
#ifndef PALLET_CONFORMANCE_FLOW_H
#define PALLET_CONFORMANCE_FLOW_H

#include "conformance.h"

/* The per-VM steps, in the host's order. */
extern const enum pc_op pc_steps[];
extern const size_t pc_nsteps;

/* Called with each report of pc_drive and the input that produced it;
 * returns false to stop driving. */
typedef bool (*pc_hook) (enum pc_op op, json_t *report, const char *input, void *arg);

/* A fresh migrationUID, so runs never adopt each other's resources. */
char *pc_new_uid (const char *check, unsigned k);
const json_t *pc_vm (size_t i);
char *pc_inventory_input (size_t kind_index);

/* Calls op until it stops returning PALLET_PENDING (at most max_pending
 * times), following retry-after.  Per-VM input is built from vm, *state
 * and uid unless fixed_input is given; *state follows the emitted states.
 * Returns the last report. */
json_t *pc_drive (enum pc_op op, const json_t *vm, json_t **state, const char *uid,
                  const char *fixed_input, pc_hook hook, void *arg);
/* Drives cleanup with options.rollback and options.succeeded. */
json_t *pc_drive_cleanup (const json_t *vm, json_t **state, const char *uid, bool rollback,
                          bool succeeded, pc_hook hook, void *arg);
/* The end of a migration of vm 0: after success a tidy-up, then (always)
 * a rollback, so a check leaves nothing behind.  The last report. */
json_t *pc_finish (json_t **state, const char *uid, bool succeeded, pc_hook hook, void *arg);
/* True if the step's last report is PALLET_OK (or the op is absent);
 * otherwise records a failure of check. */
bool pc_step_done (const char *check, const char *rule, enum pc_op op, const json_t *report);
/* Runs steps [0, upto) to completion; false (failure recorded) if one
 * did not complete. */
bool pc_run_pipeline (const char *check, const json_t *vm, json_t **state, const char *uid,
                      size_t upto, pc_hook hook, void *arg);

/* Whether open() accepts the fixture's config (probed once); if not,
 * records one failure of check. */
bool pc_session_ok (const char *check);

/* The counter now (NULL without count_command; a failure is recorded
 * when it does not work). */
json_t *pc_baseline (const char *check);
/* Compares the counter with before; records a failure of rule if not equal. */
bool pc_counts_equal (const char *check, const char *rule, const json_t *before, const char *when);

/* The rule a provider breaks when it writes to or frees an input. */
#define R_OWNED                                                 \
  "the host owns input_json and config_json: read them, never " \
  "write to them or free them"

/* True if the call returned; otherwise records a failure of check: an
 * input abuse, or a crash or hang on valid input, each a root cause
 * reported once. */
bool pc_returned (const char *check, enum pc_op op, const json_t *r, const char *ctx);
/* The values of the report's PALLET_EMIT_ITEM emits (a new array). */
json_t *pc_items (const json_t *report);
/* Every op path a host takes: inventory of every kind, the pipeline, the
 * tidy-up after it, the rollback; each call's report goes to hook. */
void pc_walk (const char *check, pc_hook hook, void *arg);

#endif
