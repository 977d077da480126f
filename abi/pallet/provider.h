/* SPDX-License-Identifier: BSD-3-Clause */
/* Pallet provider ABI.
 *
 * A provider is a shared object that exports exactly one symbol,
 * pallet_provider_entry(), emitted by PALLET_PROVIDER_DEFINE().  The host
 * passes its services in (struct pallet_host) and receives a const vtable
 * (struct pallet_provider).  JSON crosses the boundary as UTF-8 text only.
 *
 * ABI rules (see docs/provider-guide.md for the full contract):
 *  - Both structs start with abi_major, abi_minor, struct_size.
 *  - Fields are only ever appended, in groups marked "Added in ABI 1.N".
 *    Slots are never reordered, retyped or removed; a changed signature gets
 *    a new slot (foo_v2) and the old one stays.
 *  - The host refuses any abi_major but its own and accepts any abi_minor.
 *    It copies min(struct_size) into a zeroed vtable, so an older provider's
 *    missing fields read as NULL / 0 and a newer provider's extra fields are
 *    ignored.
 *  - Status codes are never renumbered; a retired code becomes
 *    PALLET_E_OBSOLETE<n>.
 *
 * ABI 1.1 (each addition is marked Added-in: ABI 1.1): the X-macro lists
 * PALLET_STATUS_LIST, PALLET_OP_LIST and PALLET_CAP_LIST; extern "C" in
 * PALLET_PROVIDER_DEFINE; the load, unload and settings slots;
 * PALLET_HANDLE_NOT_NEEDED; pallet_fail().  A 1.0 provider binary loads
 * unchanged: the new slots lie past its struct_size and read as NULL.
 */
#ifndef PALLET_PROVIDER_H
#define PALLET_PROVIDER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PALLET_ABI_MAJOR 1
#define PALLET_ABI_MINOR 1

/* The one symbol a provider exports. */
#define PALLET_PROVIDER_ENTRY_SYMBOL "pallet_provider_entry"

/* Status codes.  Never renumbered.  Keep docs/status-codes.md in step:
 * a test checks that the docs and this list name the same codes.
 *
 * Added-in: ABI 1.1: the list itself.  X (NAME, number, description)
 * once per code; the enum, the host's pallet_strerror() and
 * pallet_status_name() and the tools' tables are all generated from it,
 * so a new code is added here only, before PALLET_E_LAST. */
#define PALLET_STATUS_LIST(X)                                        \
  X (OK, 0, "success")                                               \
  X (PENDING, 1, "in progress; call again after the retry-after")    \
  X (E_INVALID, 2, "bad input (JSON, plan or config)")               \
  X (E_UNSUPPORTED, 3, "operation or feature not supported")         \
  X (E_NOT_FOUND, 4, "a named object does not exist")                \
  X (E_AUTH, 5, "credentials rejected or not permitted")             \
  X (E_TRANSIENT, 6, "transient failure (throttling, network, 5xx)") \
  X (E_TIMEOUT, 7, "a wait ran out of time")                         \
  X (E_FAILED, 8, "the operation failed")                            \
  X (E_CANCELLED, 9, "cancelled")                                    \
  X (E_NOMEM, 10, "out of memory")                                   \
  X (E_IO, 11, "local I/O error")                                    \
  X (E_CONFLICT, 12, "state conflicts with the world")               \
  X (E_ABI, 13, "ABI mismatch or provider contract broken")

/* PALLET_OK = 0, PALLET_PENDING = 1, ... as in the list above:
 *   OK          step done; new state emitted
 *   PENDING     progress made or waiting; call again after the emitted
 *               retry-after
 *   E_INVALID   bad input (JSON, plan, config): permanent
 *   E_UNSUPPORTED, E_NOT_FOUND, E_AUTH, E_FAILED, E_CONFLICT: permanent
 *   E_TRANSIENT (throttling, network, 5xx), E_TIMEOUT: retryable
 *   E_CANCELLED the host asked to cancel
 *   E_ABI       ABI mismatch or contract broken (host) */
#define PALLET__STATUS_ENUM(name, num, text) PALLET_##name = num,
enum pallet_status {
  PALLET_STATUS_LIST (PALLET__STATUS_ENUM) PALLET_E_LAST =
      14 /* one past the last code; not a status */
};
#undef PALLET__STATUS_ENUM

/* Retryable codes: the host may call the same op again, with backoff. */
#define PALLET_STATUS_IS_RETRYABLE(s) \
  ((s) == PALLET_PENDING || (s) == PALLET_E_TRANSIENT || (s) == PALLET_E_TIMEOUT)

/* How much concurrency a provider tolerates.  The host may lower it, never
 * raise it.  0 is the safe default. */
enum pallet_thread_model {
  PALLET_THREAD_MODEL_SERIALIZE_ALL = 0,        /* one call at a time, all */
  PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE = 1, /* one call at a time per handle */
  PALLET_THREAD_MODEL_PARALLEL = 2              /* any calls at any time */
};

/* Capability bits (struct pallet_provider.capabilities). */
#define PALLET_CAP_COLD_MIGRATION   (UINT64_C (1) << 0)
#define PALLET_CAP_WARM_MIGRATION   (UINT64_C (1) << 1)
#define PALLET_CAP_ZERO_COPY        (UINT64_C (1) << 2) /* volumes re-created in place */
#define PALLET_CAP_COPY             (UINT64_C (1) << 3) /* blocks copied to any storage */
#define PALLET_CAP_CROSS_ACCOUNT    (UINT64_C (1) << 4)
#define PALLET_CAP_CROSS_REGION     (UINT64_C (1) << 5)
#define PALLET_CAP_GUEST_CONVERSION (UINT64_C (1) << 6)
#define PALLET_CAP_INVENTORY_QUERY  (UINT64_C (1) << 7) /* pushes queries down */

/* Added-in: ABI 1.1.  X (NAME, "name") once per capability bit, in bit
 * order: the name is what `pallet providers --dump` prints. */
#define PALLET_CAP_LIST(X)                 \
  X (COLD_MIGRATION, "cold_migration")     \
  X (WARM_MIGRATION, "warm_migration")     \
  X (ZERO_COPY, "zero_copy")               \
  X (COPY, "copy")                         \
  X (CROSS_ACCOUNT, "cross_account")       \
  X (CROSS_REGION, "cross_region")         \
  X (GUEST_CONVERSION, "guest_conversion") \
  X (INVENTORY_QUERY, "inventory_query")

/* Added-in: ABI 1.1.  X (name, NAME) once per op the host calls with a
 * struct pallet_call and input JSON, in the order of the host's
 * enum pallet_op (PALLET_OP_VALIDATE = 0, ...). */
#define PALLET_OP_LIST(X)            \
  X (validate, VALIDATE)             \
  X (inventory, INVENTORY)           \
  X (prepare_source, PREPARE_SOURCE) \
  X (transfer, TRANSFER)             \
  X (convert, CONVERT)               \
  X (build_vm, BUILD_VM)             \
  X (cleanup, CLEANUP)

/* Log levels for host->log. */
enum pallet_log_level {
  PALLET_LOG_ERROR = 0,
  PALLET_LOG_WARNING = 1,
  PALLET_LOG_INFO = 2,
  PALLET_LOG_DEBUG = 3
};

/* What host->emit receives. */
enum pallet_emit_kind {
  PALLET_EMIT_STATE = 1, /* the VM's new state object; replaces the old one */
  PALLET_EMIT_ITEM = 2,  /* one output item, appended: an inventory record,
                             a validation finding, a manifest, a removed
                             resource */
  PALLET_EMIT_RESULT = 3 /* the op's summary object; the last one wins */
};

#if defined(__GNUC__) || defined(__clang__)
#define PALLET_PRINTF(fmt, args) __attribute__ ((format (printf, fmt, args)))
#define PALLET_EXPORT            __attribute__ ((visibility ("default")))
#else
#define PALLET_PRINTF(fmt, args)
#define PALLET_EXPORT
#endif

/* Added-in: ABI 1.1.  What open() may return when the provider keeps no
 * per-session data (nbdkit's NBDKIT_HANDLE_NOT_NEEDED): any non-NULL
 * pointer means success, and this one is never dereferenced.  close() and
 * the ops receive it back unchanged. */
#define PALLET_HANDLE_NOT_NEEDED ((void *) &pallet_handle_not_needed_)
static const char pallet_handle_not_needed_
#if defined(__GNUC__) || defined(__clang__)
    __attribute__ ((unused))
#endif
    = 0;

/* One op call.  The host creates it, passes it to exactly one op call and
 * destroys it afterwards: never keep it past the call.  Providers reach the
 * host's services through call->host. */
struct pallet_call {
  const struct pallet_host *host;
  void *_host_private; /* the host's; never touch */
};

/* The host's services.  Versioned like the vtable: append only. */
struct pallet_host {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint64_t struct_size;

  /* Added in ABI 1.0 */
  void (*log) (struct pallet_call *call, int level, const char *fmt, ...) PALLET_PRINTF (3, 4);
  /* Progress of one step of one VM.  unit is "bytes", "volumes", ... */
  void (*progress) (struct pallet_call *call, const char *vm, const char *step, uint64_t done,
                    uint64_t total, const char *unit);
  /* Non-zero once the host wants the call to stop.  Long waits and copies
   * poll it and return PALLET_E_CANCELLED. */
  int (*cancelled) (struct pallet_call *call);
  /* Records the error message of this call (the last one wins).  code is a
   * pallet_status.  The op still returns its status. */
  void (*error) (struct pallet_call *call, int code, const char *fmt, ...) PALLET_PRINTF (3, 4);
  /* Hands the host one JSON text (UTF-8, NUL-terminated), which it copies.
   * Returns 0, or -1 if the text is not valid JSON (the host records why). */
  int (*emit) (struct pallet_call *call, int kind, const char *json);
  /* With PALLET_PENDING: how long the host should wait before calling again. */
  void (*retry_after) (struct pallet_call *call, uint32_t milliseconds);
  /* Host parameters: "host.version", "host.name", "state.dir", "work.dir".
   * NULL if unknown.  Valid for the call. */
  const char *(*get_param) (struct pallet_call *call, const char *key);
  /* Added in ABI 1.1: append here. */
};

/* The ops.  A typedef per op so providers get signature checks:
 *   static pallet_transfer_fn myprov_transfer;
 *
 * open() returns a session handle that every other op receives, or NULL
 * after calling host->error().  close() frees it.
 *
 * Per-VM ops (validate, prepare_source, transfer, convert, build_vm,
 * cleanup) receive input_json:
 *   { "plan": {...}, "vm": {...}, "state": {...}, "options": {...} }
 * "state" is the last state the op emitted for this VM ({} at first); it is
 * owned by the host and valid only for the call.  Each op is idempotent: a
 * repeated call with the same input, or after a crash, never duplicates a
 * resource.  It returns PALLET_OK (done; new state emitted), PALLET_PENDING
 * (call again after retry-after; new state may be emitted) or an error.
 *
 * inventory receives { "kind": "instances", "query": "where ..." } and emits
 * one PALLET_EMIT_ITEM per object.
 */
typedef void *(pallet_open_fn) (struct pallet_call *call, const char *config_json);
typedef void (pallet_close_fn) (void *handle);
/* Added-in: ABI 1.1.  load() runs once per load of the shared object,
 * after the host accepted the vtable and before any open(); unload() once,
 * after the last close() and just before dlclose().  They are for
 * process-wide setup and teardown (curl_global_init/curl_global_cleanup).
 * load() returns PALLET_OK, or a status: the host then refuses the
 * provider, naming load() and the status, and does not call unload(). */
typedef int (pallet_load_fn) (void);
typedef void (pallet_unload_fn) (void);

typedef int (pallet_validate_fn) (void *handle, struct pallet_call *call, const char *input_json);
typedef int (pallet_inventory_fn) (void *handle, struct pallet_call *call, const char *input_json);
typedef int (pallet_prepare_source_fn) (void *handle, struct pallet_call *call,
                                        const char *input_json);
typedef int (pallet_transfer_fn) (void *handle, struct pallet_call *call, const char *input_json);
typedef int (pallet_convert_fn) (void *handle, struct pallet_call *call, const char *input_json);
typedef int (pallet_build_vm_fn) (void *handle, struct pallet_call *call, const char *input_json);
typedef int (pallet_cleanup_fn) (void *handle, struct pallet_call *call, const char *input_json);

/* Added-in: ABI 1.1.  The type of a described setting (struct
 * pallet_setting).  The host checks a setting's JSON value against it. */
enum pallet_setting_type {
  PALLET_SETTING_STRING = 0, /* a JSON string */
  PALLET_SETTING_BOOL = 1,   /* true/false, or the string "true"/"false" */
  PALLET_SETTING_INT = 2,    /* an integer, or a string of decimal digits */
  PALLET_SETTING_JSON = 3    /* any JSON value (objects, arrays ...) */
};

/* Added-in: ABI 1.1.  One setting the provider reads from config.settings
 * or config.provider.spec.settings (a Forklift Provider's spec.settings).
 * A provider lists all of them in .settings, ended by an entry whose name
 * is NULL; the host then refuses any other setting, suggesting the nearest
 * valid name, and `pallet providers --dump` prints the list.  This layout
 * never changes within major 1: a richer description gets a new slot. */
struct pallet_setting {
  const char *name;          /* [A-Za-z0-9._-]+, e.g. "target-az" */
  int type;                  /* enum pallet_setting_type */
  const char *default_value; /* as text; NULL: none (unset means unset) */
  const char *help;          /* one line: what it does, what values */
};

/* The vtable.  Required: open, close, validate, inventory, transfer, cleanup.
 * Optional, with the host's default when NULL:
 *   prepare_source: nothing to prepare (PALLET_OK, state unchanged);
 *   convert:        no guest conversion (the step is recorded as skipped);
 *   build_vm:       PALLET_E_UNSUPPORTED. */
struct pallet_provider {
  uint32_t abi_major;   /* stamped by PALLET_PROVIDER_DEFINE */
  uint32_t abi_minor;   /* stamped by PALLET_PROVIDER_DEFINE */
  uint64_t struct_size; /* stamped by PALLET_PROVIDER_DEFINE */

  /* Added in ABI 1.0 */
  const char *name;    /* [a-z0-9-]+, e.g. "ec2" */
  const char *version; /* the provider's own version */
  const char *description;
  int thread_model;         /* enum pallet_thread_model */
  uint32_t cancel_bound_ms; /* a cancelled call returns within this */
  uint64_t capabilities;    /* PALLET_CAP_* */

  pallet_open_fn *open;
  pallet_close_fn *close;
  pallet_validate_fn *validate;
  pallet_inventory_fn *inventory;
  pallet_prepare_source_fn *prepare_source;
  pallet_transfer_fn *transfer;
  pallet_convert_fn *convert;
  pallet_build_vm_fn *build_vm;
  pallet_cleanup_fn *cleanup;

  /* Added in ABI 1.1 */
  pallet_load_fn *load;     /* Added-in: ABI 1.1; optional */
  pallet_unload_fn *unload; /* Added-in: ABI 1.1; optional */
  /* Added-in: ABI 1.1; optional.  NULL: the settings are not described
   * and the host checks none (as for every 1.0 provider). */
  const struct pallet_setting *settings;
  /* Added in ABI 1.2: append here. */
};

/* Added-in: ABI 1.1.  The size of the ABI 1.0 vtable: the host refuses a
 * provider whose struct_size is smaller. */
#define PALLET_PROVIDER_SIZE_1_0 offsetof (struct pallet_provider, load)

/* The entry point.  Returns NULL if host_abi_major is not the provider's. */
typedef const struct pallet_provider *(pallet_provider_entry_fn) (uint32_t host_abi_major,
                                                                  const struct pallet_host *host);

/* Defines the provider's vtable and its entry point:
 *
 *   PALLET_PROVIDER_DEFINE (null_provider,
 *     .name = "null", .version = "1.0", .open = null_open, ...);
 *
 * It stamps abi_major, abi_minor and struct_size from this header, so
 * authors never write them.  Added-in: ABI 1.1: the entry point has C
 * linkage in C++ too (extern "C"), so a provider written in C++ exports the
 * unmangled symbol.  (C++ needs g++ 8 or clang 6 for designated
 * initializers in this order; C++20 makes them standard.) */
#ifdef __cplusplus
#define PALLET__EXTERN_C extern "C"
#else
#define PALLET__EXTERN_C
#endif
/* C++ (unlike C) warns under -Wextra about slots a designated initializer
 * leaves out; leaving optional slots out is the point. */
#if defined(__cplusplus) && (defined(__GNUC__) || defined(__clang__))
#define PALLET__CXX_INIT_BEGIN    \
  _Pragma ("GCC diagnostic push") \
      _Pragma ("GCC diagnostic ignored \"-Wmissing-field-initializers\"")
#define PALLET__CXX_INIT_END _Pragma ("GCC diagnostic pop")
#else
#define PALLET__CXX_INIT_BEGIN
#define PALLET__CXX_INIT_END
#endif
#define PALLET_PROVIDER_DEFINE(var, ...)                                                           \
  PALLET__CXX_INIT_BEGIN                                                                           \
  static const struct pallet_provider var = { .abi_major = PALLET_ABI_MAJOR,                       \
                                              .abi_minor = PALLET_ABI_MINOR,                       \
                                              .struct_size = sizeof (struct pallet_provider),      \
                                              __VA_ARGS__ };                                       \
  PALLET__CXX_INIT_END                                                                             \
  PALLET__EXTERN_C PALLET_EXPORT const struct pallet_provider *pallet_provider_entry (             \
      uint32_t host_abi_major, const struct pallet_host *host);                                    \
  PALLET__EXTERN_C PALLET_EXPORT const struct pallet_provider *pallet_provider_entry (             \
      uint32_t host_abi_major, const struct pallet_host *host)                                     \
  {                                                                                                \
    if (host_abi_major != PALLET_ABI_MAJOR || host == NULL || host->abi_major != PALLET_ABI_MAJOR) \
      return NULL;                                                                                 \
    return &var;                                                                                   \
  }                                                                                                \
  struct pallet__provider_define_needs_semicolon

/* Convenience wrappers for the host's services. */
#define pallet_log(call, level, ...)  ((call)->host->log ((call), (level), __VA_ARGS__))
#define pallet_error(call, code, ...) ((call)->host->error ((call), (code), __VA_ARGS__))
#define pallet_emit(call, kind, json) ((call)->host->emit ((call), (kind), (json)))
#define pallet_cancelled(call)        ((call)->host->cancelled (call))
#define pallet_retry_after(call, ms)  ((call)->host->retry_after ((call), (ms)))
#define pallet_progress(call, vm, step, done, total, unit) \
  ((call)->host->progress ((call), (vm), (step), (done), (total), (unit)))

/* Added-in: ABI 1.1.  Records the error message (host->error with code)
 * and returns code, so the two cannot disagree:
 *   return pallet_fail (call, PALLET_E_NOT_FOUND, "instance %s: ...", id);
 * The host reports an op whose returned status is not the code it gave
 * host->error as a provider bug.  Messages are cut at 4 KiB, as the
 * host's own. */
static inline int pallet_fail (struct pallet_call *call, int code, const char *fmt, ...)
    PALLET_PRINTF (3, 4);
static inline int
pallet_fail (struct pallet_call *call, int code, const char *fmt, ...)
{
  char msg[4096];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  call->host->error (call, code, "%s", msg);
  return code;
}

/* Layout pinned: these never change within major 1. */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(offsetof (struct pallet_provider, abi_major) == 0, "abi_major");
_Static_assert(offsetof (struct pallet_provider, abi_minor) == 4, "abi_minor");
_Static_assert(offsetof (struct pallet_provider, struct_size) == 8, "struct_size");
_Static_assert(offsetof (struct pallet_host, abi_major) == 0, "host abi_major");
_Static_assert(offsetof (struct pallet_host, abi_minor) == 4, "host abi_minor");
_Static_assert(offsetof (struct pallet_host, struct_size) == 8, "host struct_size");
/* On LP64 (x86_64, aarch64, ppc64le, s390x) every 1.0 slot is pinned. */
#if defined(__LP64__)
_Static_assert(offsetof (struct pallet_provider, name) == 16, "name");
_Static_assert(offsetof (struct pallet_provider, thread_model) == 40, "thread_model");
_Static_assert(offsetof (struct pallet_provider, cancel_bound_ms) == 44, "cancel_bound_ms");
_Static_assert(offsetof (struct pallet_provider, capabilities) == 48, "capabilities");
_Static_assert(offsetof (struct pallet_provider, open) == 56, "open");
_Static_assert(offsetof (struct pallet_provider, validate) == 72, "validate");
_Static_assert(offsetof (struct pallet_provider, transfer) == 96, "transfer");
_Static_assert(offsetof (struct pallet_provider, cleanup) == 120, "cleanup");
_Static_assert(offsetof (struct pallet_provider, load) == 128, "ABI 1.0 vtable size");
_Static_assert(offsetof (struct pallet_provider, unload) == 136, "unload");
_Static_assert(offsetof (struct pallet_provider, settings) == 144, "settings");
_Static_assert(sizeof (struct pallet_provider) == 152, "ABI 1.1 vtable size");
_Static_assert(sizeof (struct pallet_setting) == 32, "setting layout");
_Static_assert(offsetof (struct pallet_host, log) == 16, "host log");
_Static_assert(offsetof (struct pallet_host, emit) == 48, "host emit");
_Static_assert(offsetof (struct pallet_host, get_param) == 64, "host get_param");
_Static_assert(sizeof (struct pallet_host) == 72, "ABI 1.0 host size");
#endif
#endif

#ifdef __cplusplus
}
#endif

#endif /* PALLET_PROVIDER_H */
