/* libpallet-host internals shared between its source files. */
#ifndef PALLET_HOST_INTERNAL_H
#define PALLET_HOST_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <signal.h>

#include "pallet/host.h"

#define PALLET_HIDDEN __attribute__((visibility ("hidden")))

struct pallet_module {
  void *dl;                       /* dlopen handle */
  char *path;
  uint64_t declared_size;         /* provider's struct_size */
  struct pallet_provider vt;      /* zeroed copy, min(sizes) bytes */
  pthread_mutex_t serialize;      /* SERIALIZE_ALL: one call at a time */
};

/* Sets the thread's last error (printf style). */
PALLET_HIDDEN void pallet__seterr (const char *fmt, ...)
  __attribute__((format (printf, 1, 2)));

/* Copies min(struct_size, sizeof dst) of src into a zeroed dst. */
PALLET_HIDDEN void pallet__vtable_copy (struct pallet_provider *dst,
                                        const void *src, uint64_t struct_size);

/* The host services table handed to every provider. */
PALLET_HIDDEN extern const struct pallet_host pallet__host;

/* Cancellation: 0 none, 1 cancel, 2 cancel even rollbacks. */
PALLET_HIDDEN extern volatile sig_atomic_t pallet__cancel_level;

/* Host log line (not tied to a call). */
PALLET_HIDDEN void pallet__log (int level, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Progress sink for the driver: set by pallet_migrate. */
typedef void (pallet__progress_fn) (void *opaque, const char *vm,
                                    const char *step, uint64_t done,
                                    uint64_t total, const char *unit);
struct pallet_session {
  struct pallet_module *m;
  void *handle;
  char *state_dir;
  char *work_dir;
  pallet__progress_fn *progress;
  void *progress_opaque;
  pthread_mutex_t lock;           /* SERIALIZE_PER_HANDLE */
};

/* Per-call flag: this call is a rollback cleanup (cancel level 2 only). */
PALLET_HIDDEN int pallet__session_call_ex (struct pallet_session *s, int op,
                                           const char *vm, const char *input,
                                           int rollback,
                                           struct pallet_call_result *r);

#endif
