/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-provider-hello: the teaching example of docs/provider-guide.md.
 *
 * A source of N pretend VMs ("hello-1" ...), small enough to read in one
 * sitting, that keeps the whole contract and uses what ABI 1.1 offers:
 * a settings description (the host refuses unknown settings for us),
 * pallet_fail() (the message and the status cannot disagree) and JSON
 * built with jansson, never by pasting strings.  It is not the host's
 * test double: that is provider-null, with its knobs for breaking things.
 *
 * Build against an installed Pallet, or a build tree (the uninstalled
 * .pc files in BUILD/packaging/uninstalled):
 *   cc -std=c11 -Wall -Wextra -Werror -fPIC -shared -Wl,--no-undefined \
 *      -o pallet-provider-hello.so hello.c \
 *      $(pkg-config --cflags --libs pallet-provider jansson)
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pallet/provider.h>

/* The settings, as `pallet providers --dump hello` shows them. */
static const struct pallet_setting hello_settings[] = {
  { "vm-count", PALLET_SETTING_INT, "2", "how many VMs the source has" },
  { "greeting", PALLET_SETTING_STRING, "hello", "the prefix of the VMs' names" },
  { NULL, 0, NULL, NULL }
};

/* Per-session data: what open() read from the settings. */
struct hello {
  long vm_count;
  char *greeting;
};

/* Emits obj (and drops our reference): json_dumps, emit, free.  -1 if the
 * host refused the text (it recorded why) or we ran out of memory. */
static int
emit_json (struct pallet_call *call, int kind, json_t *obj)
{
  char *text = obj ? json_dumps (obj, JSON_COMPACT) : NULL;
  int r = text ? pallet_emit (call, kind, text) : -1;
  free (text);
  json_decref (obj);
  return r;
}

/* A Kubernetes map holds strings, so "3" and 3 both count; the host has
 * already checked that it is one or the other. */
static long
int_setting (const json_t *v, long dflt)
{
  if (json_is_integer (v))
    return (long) json_integer_value (v);
  return json_is_string (v) ? strtol (json_string_value (v), NULL, 10) : dflt;
}

static void *
hello_open (struct pallet_call *call, const char *config_json)
{
  json_error_t err;
  json_t *cfg = json_loads (config_json, 0, &err), *settings = NULL;
  if (cfg == NULL || json_unpack_ex (cfg, &err, 0, "{s?o}", "settings", &settings) == -1
      || (settings && !json_is_object (settings))) {
    pallet_fail (call, PALLET_E_INVALID,
                 "config: %s; pass {\"settings\": "
                 "{\"vm-count\": \"2\"}}",
                 cfg ? "settings must be an object" : err.text);
    json_decref (cfg);
    return NULL;
  }
  const char *greeting = json_string_value (json_object_get (settings, "greeting"));
  struct hello *h = calloc (1, sizeof *h);
  if (h)
    h->greeting = strdup (greeting ? greeting : "hello");
  if (h)
    h->vm_count = int_setting (json_object_get (settings, "vm-count"), 2);
  json_decref (cfg);
  if (h == NULL || h->greeting == NULL) {
    free (h);
    pallet_fail (call, PALLET_E_NOMEM, "out of memory");
    return NULL;
  }
  if (h->vm_count < 0 || h->vm_count > 1000) {
    pallet_fail (call, PALLET_E_INVALID,
                 "setting vm-count is %ld; use 0 "
                 "to 1000",
                 h->vm_count);
    free (h->greeting);
    free (h);
    return NULL;
  }
  return h;
}

static void
hello_close (void *handle)
{
  struct hello *h = handle;
  free (h->greeting);
  free (h);
}

/* Parses a per-VM input ({"plan": {}, "vm": {"id": ...}, "state": {},
 * "options": {}?}) into *in (to json_decref) and *id; PALLET_OK, or the
 * status after reporting why not. */
static int
parse_vm_input (struct pallet_call *call, const char *input_json, json_t **in, const char **id)
{
  json_error_t err;
  *in = json_loads (input_json, 0, &err);
  if (*in == NULL
      || json_unpack_ex (*in, &err, 0, "{s:{}, s:{s:s}, s:{}}", "plan", "vm", "id", id, "state")
             == -1)
    return pallet_fail (call, PALLET_E_INVALID,
                        "input: %s; pass "
                        "{\"plan\": {}, \"vm\": {\"id\": ...}, "
                        "\"state\": {}}",
                        err.text);
  return PALLET_OK;
}

/* Finds the VM of a per-VM input: its number (1..vm_count), or 0 after
 * reporting why not. */
static long
find_vm (struct hello *h, struct pallet_call *call, const char *input_json, json_t **in,
         int *status)
{
  const char *id;
  if ((*status = parse_vm_input (call, input_json, in, &id)) != PALLET_OK)
    return 0;
  char *end;
  long n = strncmp (id, "vm-", 3) == 0 ? strtol (id + 3, &end, 10) : 0;
  if (n < 1 || n > h->vm_count || *end != '\0') {
    *status = pallet_fail (call, PALLET_E_NOT_FOUND,
                           "VM '%.40s' is not in "
                           "the source: it has vm-1 to vm-%ld (setting "
                           "vm-count)",
                           id, h->vm_count);
    return 0;
  }
  return n;
}

static int
hello_validate (void *handle, struct pallet_call *call, const char *input_json)
{
  json_t *in;
  int status = PALLET_OK;
  find_vm (handle, call, input_json, &in, &status);
  json_decref (in);
  return status;
}

/* One item per VM.  Without PALLET_CAP_INVENTORY_QUERY the host applies
 * the query itself, so "query" (absent, "" or null) is ignored here. */
static int
hello_inventory (void *handle, struct pallet_call *call, const char *input_json)
{
  struct hello *h = handle;
  json_error_t err;
  const char *kind;
  json_t *query = NULL;
  json_t *in = json_loads (input_json, 0, &err);
  if (in == NULL || json_unpack_ex (in, &err, 0, "{s:s, s?o}", "kind", &kind, "query", &query)
      || (query && !json_is_string (query) && !json_is_null (query))) {
    json_decref (in);
    return pallet_fail (call, PALLET_E_INVALID,
                        "input: %s; pass "
                        "{\"kind\": \"instances\", \"query\": \"...\"}",
                        in ? "query must be a string" : err.text);
  }
  int r = PALLET_OK;
  if (strcmp (kind, "instances") != 0)
    r = pallet_fail (call, PALLET_E_UNSUPPORTED,
                     "kind '%.40s' is unknown; "
                     "known kinds: instances",
                     kind);
  for (long i = 1; r == PALLET_OK && i <= h->vm_count; i++) {
    char id[32];
    snprintf (id, sizeof id, "vm-%ld", i);
    json_t *item = json_pack ("{s:s, s:s++, s:s}", "id", id, "name", h->greeting, "-", id + 3,
                              "powerState", "Off");
    if (emit_json (call, PALLET_EMIT_ITEM, item) == -1)
      r = PALLET_E_FAILED; /* the host has recorded why */
  }
  json_decref (in);
  return r;
}

/* Nothing to copy: the new state says so, and a repeated call emits the
 * same state again, so transfer is idempotent. */
static int
hello_transfer (void *handle, struct pallet_call *call, const char *input_json)
{
  json_t *in;
  int status = PALLET_OK;
  long n = find_vm (handle, call, input_json, &in, &status);
  if (n > 0 && pallet_cancelled (call))
    status = pallet_fail (call, PALLET_E_CANCELLED, "transfer: cancelled");
  else if (n > 0) {
    pallet_progress (call, NULL, "transfer", 1, 1, "volumes");
    if (emit_json (call, PALLET_EMIT_STATE,
                   json_pack ("{s:b, s:I}", "transferred", 1, "vm", (json_int_t) n))
        == -1)
      status = PALLET_E_FAILED;
  }
  json_decref (in);
  return status;
}

/* Nothing was created, so nothing to remove, whatever the state. */
static int
hello_cleanup (void *handle, struct pallet_call *call, const char *input_json)
{
  json_t *in;
  const char *id;
  int status = parse_vm_input (call, input_json, &in, &id);
  (void) handle;
  json_decref (in);
  return status;
}

PALLET_PROVIDER_DEFINE (hello_provider, .name = "hello", .version = "1.1",
                        .description = "the teaching example: N pretend VMs, nothing copied",
                        .thread_model = PALLET_THREAD_MODEL_SERIALIZE_ALL, .cancel_bound_ms = 1000,
                        .capabilities = PALLET_CAP_COLD_MIGRATION, .open = hello_open,
                        .close = hello_close, .validate = hello_validate,
                        .inventory = hello_inventory, .transfer = hello_transfer,
                        .cleanup = hello_cleanup, .settings = hello_settings);
