/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-conformance: internal declarations shared by its source files. */
#ifndef PALLET_CONFORMANCE_H
#define PALLET_CONFORMANCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include <pallet/provider.h>

/* ---- the run: provider, fixture, options (main.c) ---- */

struct pc_fixture {
  json_t *config;          /* open()'s config object */
  char *config_text;       /* the same, as text */
  json_t *plan;            /* normalized plan */
  json_t *vms;             /* array of vms[] entries */
  char **count_argv;       /* NULL-terminated, or NULL: no counter */
  json_t *inventory_kinds; /* array of strings */
  long cancel_at_ms;       /* cancelled() turns true this long into a call */
  unsigned call_timeout_s; /* a call taking longer is a hang */
  unsigned max_pending;    /* PENDING calls per step before giving up */
  unsigned max_retry_ms;   /* longest retry-after honoured as-is */
  bool live_backend;       /* idempotency: the backend moves on between
                                 two calls (see checks-flow.c) */
};

struct pc_ctx {
  const char *path;                  /* the provider file */
  void *dl;                          /* dlopen handle */
  const struct pallet_provider *raw; /* what the entry point returned */
  struct pallet_provider vt;         /* min(struct_size) bytes of it, zero-filled */
  struct pc_fixture fx;
  bool verbose;
  bool have_fixture;
};

extern struct pc_ctx pc;

/* Whether a check runs in this invocation (--only). */
bool pc_selected (const char *check);

/* ---- failures: every failure names its check and the rule ---- */

/* Records a failure of check: rule is the contract rule it breaks, the
 * detail what was seen and how to fix it.  Rendered by pc_end_check. */
void pc_fail (const char *check, const char *rule, const char *file, unsigned line, const char *fmt,
              ...) __attribute__ ((format (printf, 5, 6)));
#define PC_FAIL(check, rule, ...) pc_fail ((check), (rule), __FILE__, __LINE__, __VA_ARGS__)
void pc_note (const char *check, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* A failure with one root cause (key) that several checks may meet: the
 * first check to meet it fails with it; the others are blocked by it (SKIP,
 * naming that check).  Returns true the first time. */
bool pc_root_cause (const char *check, const char *key, const char *rule, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* The check that reported a root cause whose key starts with prefix, or
 * NULL; pc_blocked_by marks check as blocked by it. */
const char *pc_root_cause_seen (const char *prefix);
void pc_blocked_by (const char *check, const char *first);
/* The check could not look (SKIP with this reason, unless it failed). */
void pc_skip (const char *check, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
unsigned pc_failures (const char *check);
const char *pc_current_check (void);
void pc_begin_check (const char *check);
/* Prints the check's one line; returns 0 passed, 1 failed, 2 skipped. */
int pc_end_check (const char *check, const char *proves);
void pc_report_free (void);

/* ---- the mock host (host.c) ---- */

#define PC_CALL_MAGIC  0x70616c6cU
#define PC_CALL_ENDED  0x656e6465U /* a call that returned; kept readable */
#define PC_MAX_RECORDS 4096        /* progress and log entries kept per call */

/* One op call as the mock host sees it.  call must stay first. */
struct pc_call {
  struct pallet_call call;
  uint32_t magic;
  const char *op;
  pthread_mutex_t lock; /* providers may call services from threads */
  bool cancel;          /* cancelled() answers 1 after cancel_after_ms */
  long cancel_after_ms;
  struct timespec start;
  unsigned cancel_polls;
  bool error_called;
  int error_code;
  char *error_msg;
  bool retry_called;
  uint32_t retry_ms;
  unsigned foreign;           /* services called with a bad call pointer */
  bool dirs;                  /* state.dir and work.dir are set (pipeline
                                 calls, as in pallet migrate and cleanup) */
  json_t *emits;              /* [{kind, value} | {kind, invalid}] */
  json_t *progress;           /* [[vm, step, done, total, unit]] */
  json_t *logs;               /* [text] of log and error messages */
  struct pc_call *next_ended; /* the calls this child has ended */
};

/* Services called with a call pointer whose call had returned. */
extern unsigned pc_stale_uses;
/* The suite's private state.dir and work.dir (main.c). */
#define PC_DIR_MAX 4096
extern char pc_state_dir[PC_DIR_MAX], pc_work_dir[PC_DIR_MAX];

extern const struct pallet_host pc_host;

void pc_call_init (struct pc_call *c, const char *op);
void pc_call_free (struct pc_call *c);
/* Ends a heap-allocated call: its memory stays (never reused in this
 * child), so a later service call with it is seen as stale. */
void pc_call_end (struct pc_call *c);
/* The call's report: status, error, retry-after, emits, elapsed. */
json_t *pc_call_report (struct pc_call *c, int status);
json_t *pc_text (const char *s);
double pc_elapsed_ms (const struct timespec *since);

/* ---- ops and calls (call.c) ---- */

enum pc_op {
  PC_OP_OPEN,
  PC_OP_VALIDATE,
  PC_OP_INVENTORY,
  PC_OP_PREPARE_SOURCE,
  PC_OP_TRANSFER,
  PC_OP_CONVERT,
  PC_OP_BUILD_VM,
  PC_OP_CLEANUP,
  PC_OP_COUNT
};
extern const char *const pc_op_names[PC_OP_COUNT];
bool pc_op_present (enum pc_op op);
/* The op's function (every op but open has this signature), or NULL. */
pallet_validate_fn *pc_op_fn (enum pc_op op);
bool pc_op_per_vm (enum pc_op op);

/* One call request: run in a forked child with its own session. */
struct pc_req {
  enum pc_op op;
  const char *input; /* input_json, or config for PC_OP_OPEN */
  bool cancel;
  long cancel_after_ms;
  unsigned timeout_s; /* 0: the fixture's call timeout */
  bool dirs;          /* get_param gives state.dir and work.dir */
};

/* Runs one call in a forked child (open, op, close) and returns its report:
 *   {"status": n, "error": {...}|null, "retry_after": ms|null,
 *    "emits": [...], "elapsed_ms": x, "cancel_polls": n}
 * or, when the child went wrong, {"crash": "why"} / {"hang": "why"}.
 * {"absent": true} if the op is NULL; {"open_failed": "why"} if the session
 * could not be opened.  Never NULL. */
json_t *pc_invoke (const struct pc_req *req);
/* A short description of a report for messages. */
char *pc_describe (const json_t *report);
/* The report's status, or -1 if the call did not return. */
int pc_status_of (const json_t *report);
const char *pc_status_name (int status);

/* Per-VM input text for vm with state (NULL: {}) and migrationUID, with
 * the options the real host sends for op. */
char *pc_vm_input_ex (const json_t *vm, const json_t *state, const char *uid, enum pc_op op,
                      bool rollback, bool succeeded);
/* The same for validate (the step a standalone call is for). */
char *pc_vm_input (const json_t *vm, const json_t *state, const char *uid);
/* The last state a report emitted, borrowed, or NULL. */
json_t *pc_report_state (const json_t *report);

/* A read-only copy of text, preceded by an inaccessible page: a provider
 * that writes to it or frees it faults, and the child exits with
 * PC_EXIT_WROTE / PC_EXIT_FREED (pc_guard_inputs installs the handler).
 * Never freed: the child exits. */
#define PC_EXIT_WROTE 90
#define PC_EXIT_FREED 91
const char *pc_ro_copy (const char *text);
void pc_guard_inputs (void);

/* Runs fn(arg) in a forked child; fn returns the report to send back.
 * Crashes and hangs become {"crash"} / {"hang"} reports. */
json_t *pc_in_child (json_t *(*fn) (void *), void *arg, unsigned timeout_s);

/* The fixture's resource counter: NULL if there is none (*why NULL) or it
 * failed (*why set, malloc'd). */
json_t *pc_count (char **why);

/* ---- ELF (elf.c) ---- */

/* Names of the defined GLOBAL/WEAK FUNC/OBJECT symbols in the file's
 * .dynsym, as a JSON array; NULL with *why set on error. */
json_t *pc_elf_exports (const char *path, char **why);

/* ---- JSON Schema subset (schema.c) ---- */

/* Checks that schema uses only the supported subset. */
bool pc_schema_check (const json_t *schema, char **why);
/* 1 if instance matches schema, 0 if not (*why says where and why). */
bool pc_schema_validate (const json_t *schema, const json_t *instance, char **why);
/* The documented schema called name ("state", "result", ...), borrowed. */
const json_t *pc_schema_get (const char *name);
bool pc_schemas_load (const char *dir, char **why);
void pc_schemas_free (void);

/* ---- checks (checks-*.c) ---- */

void pc_check_abi_exports (void);
void pc_check_abi_major (void);
void pc_check_abi_vtable (void);
void pc_check_bad_input (void);
void pc_check_leaks (void);
void pc_check_idempotency (void);
void pc_check_pending (void);
void pc_check_cancel (void);
void pc_check_cleanup (void);
void pc_check_outputs (void);
void pc_check_threads (void);
void pc_check_host_inputs (void);
void pc_check_resume (void);
void pc_check_findings (void);
void pc_check_progress (void);
void pc_check_stdout (void);
void pc_check_secrets (void);
void pc_check_manifests (void);
void pc_check_capabilities (void);

/* The manifest validator: argv[0] of pallet-lint-manifests (main.c). */
extern const char *pc_lint_manifests;

#endif /* PALLET_CONFORMANCE_H */
