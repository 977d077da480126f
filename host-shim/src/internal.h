/* SPDX-License-Identifier: Apache-2.0 */
/* libpallet-host internals shared between its source files.  Public names
 * are pallet_*, shared internals Pallet_* (curl's curl_/Curl_ tiers). */
#ifndef PALLET_HOST_INTERNAL_H
#define PALLET_HOST_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>

#include <jansson.h>

#include "pallet/host.h"

#define PALLET_HIDDEN __attribute__ ((visibility ("hidden")))

struct pallet_module {
  void *dl; /* dlopen handle */
  char *path;
  uint64_t declared_size;    /* provider's struct_size */
  struct pallet_provider vt; /* zeroed copy, min(sizes) bytes */
  pthread_mutex_t serialize; /* SERIALIZE_ALL: one call at a time */
};

/* Sets the thread's last error (printf style). */
PALLET_HIDDEN void Pallet_seterr (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Copies min(struct_size, sizeof dst) of src into a zeroed dst. */
PALLET_HIDDEN void Pallet_vtable_copy (struct pallet_provider *dst, const void *src,
                                       uint64_t struct_size);

/* The host services table handed to every provider. */
PALLET_HIDDEN extern const struct pallet_host Pallet_host;

/* Cancellation: 0 none, 1 cancel, 2 cancel even rollbacks. */
/* Atomic: signal handlers, the cancel-marker monitor and provider threads
 * touch it at once (a lock-free atomic int is async-signal-safe). */
PALLET_HIDDEN extern _Atomic int Pallet_cancel_level;

struct pallet_cancel {
  _Atomic int level;
};

/* The cancel level a call or run sees: the highest of the process-wide
 * flag and the tokens given (either may be NULL). */
PALLET_HIDDEN int Pallet_cancel_seen (const struct pallet_cancel *a, const struct pallet_cancel *b);

/* Clears the thread's last error (each public call that can fail does,
 * on entry). */
PALLET_HIDDEN void Pallet_clearerr (void);
/* Marks the thread's last error (just set) as the provider's. */
PALLET_HIDDEN void Pallet_set_origin (int origin);

/* --- events (events.c) --------------------------------------------------- */

/* Where one run's events go: the caller's callback behind a lock, so the
 * callback is never entered twice at once. */
struct Pallet_sink {
  pallet_event_fn *fn;
  void *opaque;
  pthread_mutex_t mu;
};

PALLET_HIDDEN void Pallet_sink_init (struct Pallet_sink *k, pallet_event_fn *fn, void *opaque);
PALLET_HIDDEN void Pallet_sink_destroy (struct Pallet_sink *k);
/* Fills ev->struct_size, and ev->json from j when j is not NULL (ev->what
 * from j's "event" when unset), then calls the sink under its lock.  k
 * NULL: the process-wide handler. */
PALLET_HIDDEN void Pallet_sink_emit (struct Pallet_sink *k, struct pallet_event *ev, json_t *j);

/* The sink of the run on this thread (driver and inventory set it on
 * their threads), so host log lines reach the run's caller. */
PALLET_HIDDEN void Pallet_sink_set_current (struct Pallet_sink *k);
PALLET_HIDDEN struct Pallet_sink *Pallet_sink_current (void);

/* Host log line: to the current sink, else the process-wide handler. */
PALLET_HIDDEN void Pallet_log (int level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
/* Reports an already formatted line (level already checked). */
PALLET_HIDDEN void Pallet_log_line (struct Pallet_sink *k, int level, const char *vm,
                                    const char *step, const char *line);

/* Reads a caller's versioned options struct into a zeroed copy of ours.
 * -1 (error set) if its struct_size is too small to hold struct_size
 * itself, or larger than ours with non-zero bytes past our end. */
PALLET_HIDDEN int Pallet_options_copy (void *dst, size_t dst_size, const void *src,
                                       const char *what);

/* --- sessions and calls (call.c) ---------------------------------------- */

/* Called under the call's lock for each PALLET_EMIT_ITEM when set: the
 * item is then not collected in the result.  text is the provider's,
 * j its parse (borrowed).  Non-zero: the host refuses the emit. */
typedef int (Pallet_item_fn) (void *opaque, const char *text, json_t *j);

struct Pallet_cluster;

struct pallet_session {
  struct pallet_module *m;
  void *handle;
  char *state_dir;
  char *work_dir;
  /* Cluster mode: the API the driver applies to (get_param's cluster.*
   * keys), or NULL.  Borrowed from the driver, which outlives the calls. */
  const struct Pallet_cluster *cluster;
  int cluster_applies;      /* the host applies build_vm's objects (--apply) */
  struct Pallet_sink *sink; /* progress and log lines; NULL: global */
  pthread_mutex_t lock;     /* SERIALIZE_PER_HANDLE */
};

/* What one call adds to pallet_session_call: a rollback flag (cancel
 * level 2 only stops it), its own event sink and an item stream. */
/* get_param's cluster.KEY (apply.c), or NULL. */
PALLET_HIDDEN const char *Pallet_cluster_param (const struct Pallet_cluster *c, const char *key);

struct Pallet_call_opts {
  int rollback;
  struct Pallet_sink *sink; /* this call's events; NULL: the session's */
  Pallet_item_fn *item;
  void *item_opaque;
  /* The call's tokens (a run's own and its caller's), either NULL. */
  const struct pallet_cancel *cancel, *cancel2;
};

PALLET_HIDDEN int Pallet_call_op (struct pallet_session *s, int op, const char *vm,
                                  const char *input, const struct Pallet_call_opts *co,
                                  struct pallet_call_result *r);

/* The ABI 1.1 check that host->error's code (recorded, -1 if none) is the
 * error status the op returned.  If not, logs a warning and appends a
 * "provider bug" note to *message (malloc'd, replaced). */
PALLET_HIDDEN void Pallet_error_code_check (const char *provider, const char *op, const char *vm,
                                            int returned, int recorded, char **message);

/* The ABI 1.1 settings check: PALLET_OK, or PALLET_E_INVALID with the
 * thread's last error naming the setting (and the nearest valid one). */
PALLET_HIDDEN int Pallet_settings_check (const struct pallet_module *m, const char *config_json);

#endif
