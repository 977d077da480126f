/* SPDX-License-Identifier: BSD-3-Clause */
/* A provider built from the frozen ABI 1.0 header (abi/tests/abi-1.0/),
 * as nbdkit keeps old plugins: the guide's 1.0 SYNOPSIS provider, never
 * edited, so its binary has the 1.0 vtable (struct_size 128, abi_minor 0)
 * and proves a 1.1 host still loads, drives and passes it. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pallet/provider.h>

/* Per-session data.  open() returns it; every other op receives it. */
struct skeleton {
  int unused;
};

static pallet_open_fn skeleton_open;
static pallet_close_fn skeleton_close;
static pallet_validate_fn skeleton_validate;
static pallet_inventory_fn skeleton_inventory;
static pallet_transfer_fn skeleton_transfer;
static pallet_cleanup_fn skeleton_cleanup;

/* Parses input_json and unpacks it with fmt (json_unpack), or reports
 * why it cannot and returns NULL. */
static json_t *
parse (struct pallet_call *call, const char *input_json, const char *what,
       const char *fmt, ...)
{
  json_error_t err;
  json_t *in = json_loads (input_json, 0, &err);
  va_list ap;
  int r = -1;

  if (in) {
    va_start (ap, fmt);
    r = json_vunpack_ex (in, &err, 0, fmt, ap);
    va_end (ap);
  }
  if (r == -1) {
    pallet_error (call, PALLET_E_INVALID, "%s: %s; pass %s",
                  in ? "input" : "input is not JSON", err.text, what);
    json_decref (in);
    return NULL;
  }
  return in;
}

/* Every per-VM op gets {"plan": {}, "vm": {"id": ...}, "state": {}, ...}. */
#define VM_INPUT "{s:{}, s:{s:s}, s:{}}", "plan", "vm", "id", &id, "state"

static void *
skeleton_open (struct pallet_call *call, const char *config_json)
{
  json_t *cfg = parse (call, config_json, "{\"provider\", \"secret\", "
                       "\"settings\"} objects", "{s?{}, s?{}, s?{}}",
                       "provider", "secret", "settings");
  struct skeleton *h;

  if (cfg == NULL)
    return NULL;
  json_decref (cfg);            /* a real provider keeps what it needs */
  h = calloc (1, sizeof *h);
  if (h == NULL)
    pallet_error (call, PALLET_E_NOMEM, "out of memory");
  return h;
}

static void
skeleton_close (void *handle)
{
  free (handle);
}

/* No findings: every VM can be migrated. */
static int
skeleton_validate (void *handle, struct pallet_call *call,
                   const char *input_json)
{
  const char *id;
  json_t *in = parse (call, input_json, "a per-VM op input", VM_INPUT);

  (void) handle;
  json_decref (in);
  return in ? PALLET_OK : PALLET_E_INVALID;
}

/* One record per object of the requested kind. */
static int
skeleton_inventory (void *handle, struct pallet_call *call,
                    const char *input_json)
{
  const char *kind, *query;
  int r = PALLET_OK;
  json_t *in = parse (call, input_json, "{\"kind\": \"instances\"}",
                      "{s:s, s?s}", "kind", &kind, "query", &query);

  (void) handle;
  if (in == NULL)
    return PALLET_E_INVALID;
  if (strcmp (kind, "instances") != 0) {
    pallet_error (call, PALLET_E_UNSUPPORTED,
                  "kind '%.40s' is unknown; known kinds: instances", kind);
    r = PALLET_E_UNSUPPORTED;
  }
  else if (pallet_emit (call, PALLET_EMIT_ITEM, "{\"id\":\"vm-1\","
                        "\"name\":\"demo\",\"powerState\":\"Off\"}") == -1)
    r = PALLET_E_FAILED;        /* the host has recorded why */
  json_decref (in);
  return r;
}

/* Nothing to copy.  The new state says so, and a repeated call emits
 * the same state again: transfer is idempotent. */
static int
skeleton_transfer (void *handle, struct pallet_call *call,
                   const char *input_json)
{
  const char *id;
  int r = PALLET_OK;
  json_t *in = parse (call, input_json, "a per-VM op input", VM_INPUT);

  (void) handle;
  if (in == NULL)
    return PALLET_E_INVALID;
  if (pallet_cancelled (call))
    r = PALLET_E_CANCELLED;
  else {
    pallet_progress (call, id, "transfer", 0, 0, "bytes");
    if (pallet_emit (call, PALLET_EMIT_STATE, "{\"transferred\":true}") == -1)
      r = PALLET_E_FAILED;
  }
  json_decref (in);
  return r;
}

/* Nothing was created, so nothing to remove, whatever the state. */
static int
skeleton_cleanup (void *handle, struct pallet_call *call,
                  const char *input_json)
{
  const char *id;
  json_t *in = parse (call, input_json, "a per-VM op input", VM_INPUT);

  (void) handle;
  json_decref (in);
  return in ? PALLET_OK : PALLET_E_INVALID;
}

PALLET_PROVIDER_DEFINE (skeleton,
  .name = "abi10",
  .version = "1.0",
  .description = "built from the ABI 1.0 header",
  .thread_model = PALLET_THREAD_MODEL_SERIALIZE_ALL,
  .cancel_bound_ms = 1000,
  .capabilities = PALLET_CAP_COLD_MIGRATION,
  .open = skeleton_open,
  .close = skeleton_close,
  .validate = skeleton_validate,
  .inventory = skeleton_inventory,
  .transfer = skeleton_transfer,
  .cleanup = skeleton_cleanup);
