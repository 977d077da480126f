/* SPDX-License-Identifier: Apache-2.0 */
/* C side of the Go binding: trampolines that turn a cgo.Handle (an
 * integer, never a Go pointer) into the opaque of a libpallet-host
 * callback, and helpers that read the thread-local error in the same C
 * call as the failure. */
#ifndef PALLET_GO_SHIM_H
#define PALLET_GO_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include <pallet/host.h>

enum { PALLETGO_MIGRATE = 0, PALLETGO_CLEANUP = 1, PALLETGO_VALIDATE = 2 };

/* Copies of the strings the caller must free (free (NULL) is fine). */
struct palletgo_err {
  char *message;
  int origin; /* pallet_last_error_origin() */
};

int palletgo_load (const char *name, unsigned flags, struct pallet_module **out,
                   struct palletgo_err *e);
struct pallet_session *palletgo_open (struct pallet_module *m, const char *config,
                                      const char *state_dir, const char *work_dir,
                                      struct palletgo_err *e);
/* handle 0: the call's events go to the process-wide handler. */
int palletgo_call (struct pallet_session *s, int op, const char *vm, const char *input,
                   struct pallet_cancel *cancel, uintptr_t handle, struct pallet_call_result *r,
                   int *origin);
int palletgo_inventory (struct pallet_session *s, const char *kind, const char *query,
                        struct pallet_cancel *cancel, uintptr_t handle, struct palletgo_err *e);
int palletgo_run (int mode, struct pallet_module *m, const char *config, const char *plan,
                  struct pallet_migrate_options *o, uintptr_t handle, struct palletgo_err *e);
/* on: route the process-wide handler to Go; off: drop those events. */
void palletgo_global_handler (int on);
/* pallet_module_dump's text, malloc'd. */
char *palletgo_dump (const struct pallet_module *m);
/* pallet_plan_load + pallet_plan_provider_config (source) as JSON texts. */
int palletgo_plan_load (const char *const *paths, size_t n, const char *plan_name, char **plan,
                        char **config, char **errmsg);
char *palletgo_cstr_at (char **v, size_t i);
/* Zeroes a text that held secrets, then frees it. */
void palletgo_free_secret (char *text);

#endif
