/* SPDX-License-Identifier: Apache-2.0 */
/* See shim.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <pallet-plan.h>
#include "shim.h"
#include "_cgo_export.h"

static void
keep_error (struct palletgo_err *e)
{
  if (e) {
    e->message = strdup (pallet_last_error ());
    e->origin = pallet_last_error_origin ();
  }
}

static void
trampoline (const struct pallet_event *ev, void *opaque)
{
  palletgoEvent ((struct pallet_event *) ev, (uintptr_t) opaque);
}

int
palletgo_load (const char *name, unsigned flags, struct pallet_module **out, struct palletgo_err *e)
{
  int rc = pallet_module_load (name, flags, out);
  if (rc != PALLET_OK)
    keep_error (e);
  return rc;
}

struct pallet_session *
palletgo_open (struct pallet_module *m, const char *config, const char *state_dir,
               const char *work_dir, struct palletgo_err *e)
{
  struct pallet_session_params p = { sizeof p, state_dir, work_dir };
  struct pallet_session *s = pallet_session_open (m, config, &p);
  if (s == NULL)
    keep_error (e);
  return s;
}

int
palletgo_call (struct pallet_session *s, int op, const char *vm, const char *input,
               struct pallet_cancel *cancel, uintptr_t handle, struct pallet_call_result *r,
               int *origin)
{
  struct pallet_call_options o = PALLET_CALL_OPTIONS_INIT;
  o.vm = vm;
  o.cancel = cancel;
  if (handle) {
    o.on_event = trampoline;
    o.opaque = (void *) handle;
  }
  int rc = pallet_session_call_ex (s, op, input, &o, r);
  *origin = pallet_last_error_origin ();
  return rc;
}

int
palletgo_inventory (struct pallet_session *s, const char *kind, const char *query,
                    struct pallet_cancel *cancel, uintptr_t handle, struct palletgo_err *e)
{
  struct pallet_inventory_options io = PALLET_INVENTORY_OPTIONS_INIT;
  io.cancel = cancel;
  io.kind = kind;
  io.query = query;
  io.on_event = trampoline;
  io.opaque = (void *) handle;
  int rc = pallet_inventory (s, &io);
  if (rc != PALLET_OK)
    keep_error (e);
  return rc;
}

int
palletgo_run (int mode, struct pallet_module *m, const char *config, const char *plan,
              struct pallet_migrate_options *o, uintptr_t handle, struct palletgo_err *e)
{
  o->on_event = trampoline;
  o->opaque = (void *) handle;
  int rc = mode == PALLETGO_MIGRATE   ? pallet_migrate (m, config, plan, o)
           : mode == PALLETGO_CLEANUP ? pallet_cleanup_plan (m, config, plan, o)
                                      : pallet_validate_plan (m, config, plan, o);
  if (rc != PALLET_EXIT_OK)
    keep_error (e);
  return rc;
}

void
palletgo_global_handler (int on)
{
  pallet_set_event_handler (on ? trampoline : NULL, NULL);
}

char *
palletgo_dump (const struct pallet_module *m)
{
  return pallet_module_dump_text (m);
}

int
palletgo_plan_load (const char *const *paths, size_t n, const char *plan_name, char **plan,
                    char **config, char **errmsg)
{
  *plan = *config = *errmsg = NULL;
  json_t *res = pallet_plan_read (paths, n, errmsg);
  json_t *p = res ? pallet_plan_normalize (res, plan_name, errmsg) : NULL;
  json_t *c = p ? pallet_plan_provider_config (res, p, "source", errmsg) : NULL;
  if (c) {
    *plan = json_dumps (p, JSON_COMPACT);
    *config = json_dumps (c, JSON_COMPACT);
  }
  json_decref (res);
  json_decref (p);
  json_decref (c);
  if (c && (*plan == NULL || *config == NULL)) {
    free (*plan);
    free (*config);
    *plan = *config = NULL;
    *errmsg = strdup ("out of memory serializing the plan");
  }
  return *plan ? 0 : -1;
}

char *
palletgo_cstr_at (char **v, size_t i)
{
  return v[i];
}

void
palletgo_free_secret (char *text)
{
  if (text)
    explicit_bzero (text, strlen (text));
  free (text);
}
