/* SPDX-License-Identifier: Apache-2.0 */
/* libpallet-host: load a Pallet provider and drive it.
 *
 * The host side of abi/pallet/provider.h.  Everything public is prefixed
 * pallet_.  JSON crosses this API as UTF-8 text, like the provider ABI.
 *
 * Errors: functions that fail return a pallet_status (or NULL) and leave a
 * message naming the thing, the problem and the fix in a thread-local
 * buffer read with pallet_last_error().
 */
#ifndef PALLET_HOST_H
#define PALLET_HOST_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include <pallet/provider.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes of the pallet CLI (and of pallet_migrate()). */
enum pallet_exit {
  PALLET_EXIT_OK = 0,        /* everything succeeded */
  PALLET_EXIT_VM_FAILED = 1, /* at least one VM (or validation) failed */
  PALLET_EXIT_USAGE = 2,     /* bad command line */
  PALLET_EXIT_LOAD = 3,      /* provider not found, not loadable, ABI error */
  PALLET_EXIT_CANCELLED = 4, /* cancelled (signal or `pallet cancel`) */
  PALLET_EXIT_INPUT = 5,     /* plan/config/state unreadable or invalid */
  PALLET_EXIT_LOCKED = 6     /* another `pallet` holds the state dir */
};

/* --- status codes ------------------------------------------------------ */

/* A sentence for a status ("bad input (JSON, plan, config)"). */
const char *pallet_strerror (int status);
/* The enum name ("PALLET_E_INVALID"), or "PALLET_E_UNKNOWN". */
const char *pallet_status_name (int status);
/* The status named by "PALLET_E_INVALID" or "INVALID"; -1 if none. */
int pallet_status_from_name (const char *name);

/* The last error message of this thread ("" if none).  The buffer is
 * thread-local, and every function of this API that can fail clears it
 * on entry (the getters -- pallet_strerror(), pallet_module_path(), ... --
 * and pallet_last_error() itself do not), so a message read after a
 * failed call is that call's, never an older one's.  Added in 0.2. */
const char *pallet_last_error (void);

/* Whose fault the last error of this thread is, so a caller can tell,
 * say, a bad query (PALLET_E_INVALID from the host, the caller's input)
 * from a provider that returned PALLET_E_INVALID.  Cleared with the
 * message.  Added in 0.2. */
enum pallet_error_origin {
  PALLET_ORIGIN_NONE = 0,    /* no error */
  PALLET_ORIGIN_HOST = 1,    /* the host refused the call or its input
                                 (bad options, query, plan, config file),
                                 or failed itself (I/O, memory) */
  PALLET_ORIGIN_PROVIDER = 2 /* the provider's status and message, or the
                                 provider broke the ABI contract */
};
int pallet_last_error_origin (void);

/* --- logging ------------------------------------------------------------ */

/* Log lines at or below level are reported (as PALLET_EVENT_LOG events);
 * the rest are dropped before they are formatted.  Default WARNING; the
 * CLI's -v is INFO, --debug is DEBUG.  Set it before starting threads. */
void pallet_set_log_level (int level);
int pallet_get_log_level (void);

/* --- events -------------------------------------------------------------- */

/* The library never prints.  What it has to say -- log lines, progress,
 * step changes, findings, inventory items, results -- it reports as
 * events to a callback the caller gives it: in the options of
 * pallet_migrate(), pallet_cleanup_plan(), pallet_validate_plan() and
 * pallet_inventory(), or process-wide with pallet_set_event_handler() for
 * what happens outside them (loader warnings, pallet_session_call()).
 * Rendering (text, JSON lines, YAML, progress bars) is the caller's. */
enum pallet_event_type {
  PALLET_EVENT_LOG = 1,      /* a log line: level, message (vm, step) */
  PALLET_EVENT_PROGRESS = 2, /* a provider's progress: vm, step, done,
                                 total, unit */
  PALLET_EVENT_STEP = 3,     /* a VM's step or state changed: vm, name,
                                 what, step, status, message */
  PALLET_EVENT_FINDING = 4,  /* validate: one finding of vm (json) */
  PALLET_EVENT_ITEM = 5,     /* inventory: one item (json) */
  PALLET_EVENT_RESULT = 6    /* validate: one VM's verdict (what
                                 "validated", code a pallet_status);
                                 migrate/cleanup: the plan's summary (what
                                 "summary", code an enum pallet_exit) */
};

/* One event.  Every pointer in it is owned by the library and valid only
 * until the callback returns: copy what you keep.  Fields that do not
 * apply to the type are NULL / 0.  Events may gain fields at the end:
 * read a field only if its offset is below struct_size. */
struct pallet_event {
  uint64_t struct_size; /* sizeof (struct pallet_event) of the library */
  int type;             /* enum pallet_event_type */
  int level;            /* LOG: PALLET_LOG_ERROR..PALLET_LOG_DEBUG */
  /* The event's name, the "event" member of json: STEP events are
   * "step", "retry", "resume", "restart", "skip", "failed", "done",
   * "cancelled", "rollback", "cleanup", "manifests", "precopy",
   * "downtime"; the others "log", "progress", "finding", "item",
   * "validated", "summary". */
  const char *what;
  const char *vm;       /* the VM's id (its key in the plan), or NULL */
  const char *name;     /* the VM's display name, or NULL */
  const char *step;     /* op name ("transfer"), or NULL */
  const char *status;   /* STEP: "started", "done", "skipped",
                                 "failed", a status name...; RESULT:
                                 validated's status name */
  const char *message;  /* LOG: the line; else an explanation, or NULL */
  int code;             /* RESULT: see enum pallet_event_type */
  uint64_t done, total; /* PROGRESS: total 0 means unknown */
  const char *unit;     /* PROGRESS: "bytes", ... (never NULL there) */
  /* The whole event as one JSON object -- exactly what `pallet ... -o
   * json` prints as a line -- or, for ITEM and FINDING, the item or
   * finding itself.  NULL only for LOG. */
  const char *json;
};

/* The library calls it from its own threads, never two at once for one
 * options struct (nor for the process-wide handler): no locking needed
 * inside, but do not call back into the run that reports. */
typedef void (pallet_event_fn) (const struct pallet_event *ev, void *opaque);

/* The process-wide handler for events outside a call that has its own
 * (NULL: such events are dropped).  Set it before starting threads. */
void pallet_set_event_handler (pallet_event_fn *fn, void *opaque);

/* "error", "warning", "info", "debug". */
const char *pallet_log_level_name (int level);

/* --- providers ---------------------------------------------------------- */

/* A loaded provider: the dlopen handle and a zeroed copy of its vtable. */
struct pallet_module;

#define PALLET_LOAD_LENIENT 1u /* skip the required-op check (for --dump) */

/* Resolves NAME (searched as pallet-provider-NAME.so in
 * $PALLET_PROVIDER_PATH, then the install dir) or a PATH (anything with a
 * '/').  Returns a malloc'd path, or NULL (pallet_last_error says where it
 * looked). */
char *pallet_provider_find (const char *name_or_path);

/* Calls fn once per provider file found on the search path (earlier
 * directories hide later ones of the same name).  Returns the count. */
int pallet_provider_list (void (*fn) (const char *name, const char *path, void *opaque),
                          void *opaque);

/* Loads a provider.  Returns PALLET_OK, PALLET_E_NOT_FOUND, PALLET_E_IO
 * (not loadable) or PALLET_E_ABI; *out is set only on success. */
int pallet_module_load (const char *name_or_path, unsigned flags, struct pallet_module **out);
void pallet_module_free (struct pallet_module *m);

/* The host's copy of the vtable: fields past the provider's struct_size
 * read as NULL / 0. */
const struct pallet_provider *pallet_module_vtable (const struct pallet_module *m);
const char *pallet_module_path (const struct pallet_module *m);
/* The struct_size the provider declared (not ours). */
uint64_t pallet_module_struct_size (const struct pallet_module *m);

/* key=value lines, like nbdkit --dump-plugin, as one malloc'd text (the
 * caller frees it), or NULL (pallet_last_error) if out of memory.  A
 * library never writes to a stream of its own accord: this is the form
 * to use.  Added in 0.2. */
char *pallet_module_dump_text (const struct pallet_module *m);
/* The same text written to fp (kept for callers of 0.1). */
void pallet_module_dump (const struct pallet_module *m, FILE *fp);

/* --- sessions and op calls --------------------------------------------- */

enum pallet_op {
  PALLET_OP_VALIDATE = 0,
  PALLET_OP_INVENTORY = 1,
  PALLET_OP_PREPARE_SOURCE = 2,
  PALLET_OP_TRANSFER = 3,
  PALLET_OP_CONVERT = 4,
  PALLET_OP_BUILD_VM = 5,
  PALLET_OP_CLEANUP = 6,
  PALLET_OP_LAST = 7
};

/* "transfer", ...; NULL if out of range. */
const char *pallet_op_name (int op);
/* -1 if unknown. */
int pallet_op_from_name (const char *name);

/* What one op call produced.  Every string is malloc'd JSON text. */
struct pallet_call_result {
  int status;   /* enum pallet_status */
  char *error;  /* message, set whenever status is an error */
  char *state;  /* last PALLET_EMIT_STATE, or NULL */
  char **items; /* PALLET_EMIT_ITEM texts, in order */
  size_t n_items;
  char *result; /* last PALLET_EMIT_RESULT, or NULL */
  uint32_t retry_after_ms;
  int has_retry_after;
  int skipped; /* optional op absent: the host's default ran */
};
void pallet_call_result_free (struct pallet_call_result *r);

/* Per-session host parameters visible to providers via get_param.
 * Versioned like the options structs (struct_size first: start from
 * PALLET_SESSION_PARAMS_INIT); a struct without a plausible struct_size
 * is refused.  struct_size added in 0.2. */
struct pallet_session_params {
  uint64_t struct_size;  /* first, always */
  const char *state_dir; /* "state.dir" */
  const char *work_dir;  /* "work.dir" */
};

#define PALLET_SESSION_PARAMS_INIT                       \
  {                                                      \
    .struct_size = sizeof (struct pallet_session_params) \
  }

struct pallet_session;

/* Calls the provider's open() with config_json; p may be NULL.  NULL on
 * failure (pallet_last_error, pallet_last_error_origin). */
struct pallet_session *pallet_session_open (struct pallet_module *m, const char *config_json,
                                            const struct pallet_session_params *p);
void pallet_session_close (struct pallet_session *s);

/* Calls one op through the host's wrapper: makes the struct pallet_call,
 * serializes calls per the thread model, records the error (supplying one
 * if the provider did not), checks every emitted text is JSON and that
 * PENDING came with a retry-after (else PALLET_E_ABI), and applies the
 * defaults of NULL optional ops.  vm labels log lines and progress (may
 * be NULL); they go to the pallet_set_event_handler() handler.  The host
 * services a provider gets may be called from any thread while the op
 * runs (each call has its own lock).  Returns r->status. */
int pallet_session_call (struct pallet_session *s, int op, const char *vm, const char *input_json,
                         struct pallet_call_result *r);

/* Options of pallet_session_call_ex(); versioned like
 * pallet_migrate_options (struct_size first, fields appended only).
 * Added in 0.2. */
struct pallet_call_options {
  uint64_t struct_size;         /* first, always */
  const char *vm;               /* labels log lines and progress; or NULL */
  pallet_event_fn *on_event;    /* this call's LOG and PROGRESS events; NULL:
                                 the pallet_set_event_handler() handler */
  void *opaque;                 /* passed to on_event */
  struct pallet_cancel *cancel; /* this call's cancel token, or NULL */
  int rollback;                 /* a rollback call: only a second trigger
                                 (or pallet_cancel()) stops it */
};

#define PALLET_CALL_OPTIONS_INIT                       \
  {                                                    \
    .struct_size = sizeof (struct pallet_call_options) \
  }
void pallet_call_options_init (struct pallet_call_options *o);

/* pallet_session_call() with per-call options (opts may be NULL): its own
 * event callback and its own cancel token.  Returns r->status; on a
 * failure the message is in r->error and in pallet_last_error().  A bad
 * opts (struct_size) is PALLET_E_INVALID with nothing called.  Added in
 * 0.2. */
int pallet_session_call_ex (struct pallet_session *s, int op, const char *input_json,
                            const struct pallet_call_options *opts, struct pallet_call_result *r);

/* --- cancellation ------------------------------------------------------- */

/* A cancel token cancels only the calls and runs it is given to (the
 * cancel field of the options structs), so a controller running several
 * plans stops one and leaves the others alone.  A call or run is
 * cancelled when its token, or the process-wide flag below, is raised.
 * Added in 0.2. */
struct pallet_cancel;

/* A new, lowered token; NULL (pallet_last_error) if out of memory. */
struct pallet_cancel *pallet_cancel_new (void);
/* Raises the token: the first trigger cancels (host->cancelled() turns
 * true in the calls it was given to, runs roll their VMs back), a second
 * one also cancels those rollbacks.  Thread-safe and async-signal-safe
 * (one lock-free atomic); NULL is ignored. */
void pallet_cancel_trigger (struct pallet_cancel *c);
/* 0 lowered, 1 triggered once, 2 twice (or more). */
int pallet_cancel_level (const struct pallet_cancel *c);
/* Frees the token; no call or run may still be using it. */
void pallet_cancel_free (struct pallet_cancel *c);

/* The process-wide flag, for a CLI's SIGINT: async-signal-safe, makes
 * every host->cancelled() return non-zero.
 * A second call also cancels rollback cleanups. */
void pallet_cancel (void);
int pallet_cancel_requested (void);
/* Clears the flag (tests, long-lived callers). */
void pallet_cancel_reset (void);
/* Installs SIGINT/SIGTERM handlers that call pallet_cancel(). */
void pallet_install_signal_handlers (void);

/* --- the driver --------------------------------------------------------- */

/* Options of pallet_migrate(), pallet_cleanup_plan() and
 * pallet_validate_plan().  Versioned like providers: the caller sets
 * struct_size = sizeof (struct pallet_migrate_options) (the INIT macro or
 * pallet_migrate_options_init() do), the library reads only the fields
 * that struct_size covers and takes the rest as 0, so a program built
 * against an older, smaller struct keeps working.  Pointers are borrowed
 * for the duration of the call. */
struct pallet_migrate_options {
  uint64_t struct_size;    /* first, always */
  const char *state_dir;   /* NULL: ./.pallet-state/<plan name> */
  unsigned max_in_flight;  /* VMs at once; 0 means 1 */
  unsigned max_attempts;   /* retryable errors per step; 0 means 5 */
  unsigned backoff_ms;     /* first backoff; 0 means 500 */
  unsigned backoff_max_ms; /* backoff cap; 0 means 30000 */
  /* Where build_vm's manifests go, one sub-directory per VM; NULL:
   * <state dir>/manifests. */
  const char *output_dir;
  pallet_event_fn *on_event; /* NULL: events dropped */
  void *opaque;              /* passed to on_event */
  /* Added in 0.2: this run's cancel token, or NULL.  Triggering it
   * cancels this run only; the run never raises the process-wide flag. */
  struct pallet_cancel *cancel;
  /* Added-in: ABI 1.1, cluster mode (docs/host-guide.md "Cluster mode"): apply
   * build_vm's objects to the cluster stage by stage, wait for the copy
   * and conversion Pods, then start the VM; roll the cluster back on
   * failure.  0: write manifests only. */
  int apply;
  const char *kubeconfig;   /* NULL: $KUBECONFIG, in-cluster, ~/.kube/config */
  const char *kube_context; /* NULL: the kubeconfig's current-context */
  const char *namespace_;   /* -n; NULL: the plan's targetNamespace */
  /* The destination Provider's config (pallet_plan_provider_config
   * "destination": provider, secret, settings), or NULL: a remote
   * destination (spec.url) is reached with its Secret's token and cacert,
   * the host destination through kubeconfig.  Holds secrets. */
  const char *destination_json;
  unsigned wait_timeout_s; /* each Pod wait; 0 means 3600 */
  /* Added-in: ABI 1.1.  Without --apply, run each VM's PreHook/PostHook
   * (Forklift Hook) command as a local process instead of only writing
   * its Pod with the manifests. */
  int run_hooks_locally;
};

#define PALLET_MIGRATE_OPTIONS_INIT                       \
  {                                                       \
    .struct_size = sizeof (struct pallet_migrate_options) \
  }
/* Added-in: ABI 1.1.  The size of the ABI 1.0 struct (up to cancel). */
#define PALLET_MIGRATE_OPTIONS_SIZE_1_0 \
  (offsetof (struct pallet_migrate_options, cancel) + sizeof (struct pallet_cancel *))
/* Added-in: ABI 1.1.  Zeroes the size bytes of o and sets struct_size to
 * size: the caller's sizeof, so a library newer than the caller's header
 * never writes past the caller's struct. */
void pallet_migrate_options_init_size (struct pallet_migrate_options *o, size_t size);
/* Zeroes o and sets its struct_size.  A macro since ABI 1.1 (like zlib's
 * deflateInit), so the size is the caller's; the function of that name
 * stays for ABI 1.0 programs and initialises the 1.0 fields only.
 * Bindings that cannot expand macros (cgo) call
 * pallet_migrate_options_init_size(). */
void pallet_migrate_options_init (struct pallet_migrate_options *o);
#define pallet_migrate_options_init(o) pallet_migrate_options_init_size ((o), sizeof *(o))

/* The default state dir of a plan: ./.pallet-state/<name> (malloc'd). */
char *pallet_default_state_dir (const char *plan_name);

/* Runs every VM of the normalized plan through validate, prepare_source,
 * transfer, convert, build_vm and cleanup, persisting each VM's progress
 * in the state dir, resuming where a previous run stopped.  Reports STEP,
 * PROGRESS and LOG events while it runs and one RESULT ("summary") at the
 * end.  Returns an enum pallet_exit.  opts may be NULL (all defaults). */
int pallet_migrate (struct pallet_module *m, const char *config_json, const char *plan_json,
                    const struct pallet_migrate_options *opts);

/* Runs cleanup (rollback) for every VM with a state file.  enum pallet_exit. */
int pallet_cleanup_plan (struct pallet_module *m, const char *config_json, const char *plan_json,
                         const struct pallet_migrate_options *opts);

/* Validates the plan (the validate op for every VM): per VM, one FINDING
 * event per finding, then one RESULT event ("validated").  enum
 * pallet_exit. */
int pallet_validate_plan (struct pallet_module *m, const char *config_json, const char *plan_json,
                          const struct pallet_migrate_options *opts);

/* Writes the cancel marker that a running pallet_migrate() on state_dir
 * polls (twice a second); the run that sees it cancels itself only (its
 * own token, not the process-wide flag) and removes it.  A run starting
 * finds a marker written in the PALLET_CANCEL_MARKER_FRESH_S seconds
 * before it took the state dir's lock and honours it (a request sent
 * just as the run starts is not lost); an older one is a leftover (from
 * a `pallet cancel` with nothing running, or a crashed run) and is
 * removed.  PALLET_OK, PALLET_E_NOT_FOUND (no state dir) or PALLET_E_IO. */
#define PALLET_CANCEL_MARKER_FRESH_S 10
int pallet_request_cancel (const char *state_dir);

/* Writes the cutover marker (<state dir>/cutover, mode 0600, atomically)
 * that a running or later pallet_migrate() on state_dir polls: warm VMs get
 * options.cutover = true from then on (from the time at, an RFC 3339 text,
 * when it is not NULL).  PALLET_OK, PALLET_E_INVALID (bad at),
 * PALLET_E_NOT_FOUND (no state dir) or PALLET_E_IO.  Added in 0.1. */
int pallet_request_cutover (const char *state_dir, const char *at);

/* Parses an RFC 3339 time (2026-11-25T02:00:00Z, fractions and +HH:MM
 * offsets allowed) into seconds since the epoch.  0, or -1 if malformed. */
int pallet_parse_time (const char *text, int64_t *out);

/* A malloc'd JSON text: {"plan": <plan.json of the dir>, "vms": [<each VM
 * state file>]}, or NULL (pallet_last_error) if the dir has no state. */
char *pallet_state_read (const char *state_dir);

/* --- inventory ----------------------------------------------------------- */

/* Options of pallet_inventory(); versioned like pallet_migrate_options. */
struct pallet_inventory_options {
  uint64_t struct_size;      /* first, always */
  const char *kind;          /* "instances", ...: the provider's kinds */
  const char *query;         /* [where E] [order by F] [limit N]; NULL or
                                 "": everything (sent as absent) */
  pallet_event_fn *on_event; /* ITEM events, and LOG / PROGRESS */
  void *opaque;
  struct pallet_cancel *cancel; /* Added in 0.2: this call's token, or NULL */
};

#define PALLET_INVENTORY_OPTIONS_INIT                       \
  {                                                         \
    .struct_size = sizeof (struct pallet_inventory_options) \
  }
void pallet_inventory_options_init (struct pallet_inventory_options *o);

/* Lists the source objects of one kind: calls the provider's inventory
 * op and reports each item that matches the query as one ITEM event.
 * The query is applied by the host unless the provider declares
 * PALLET_CAP_INVENTORY_QUERY (then it is pushed down whole).  Items
 * stream: without "order by" each is reported as the provider emits it,
 * and nothing is kept; with "order by ... limit N" the host keeps the N
 * first in a bounded heap; with "order by" and no limit it keeps the
 * matching items until the call ends.  Returns PALLET_OK, PALLET_E_INVALID
 * (bad query or options: nothing was called), or the provider's status;
 * pallet_last_error() says why. */
int pallet_inventory (struct pallet_session *s, const struct pallet_inventory_options *opts);

/* Library version, "0.1.0". */
const char *pallet_host_version (void);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_HOST_H */
