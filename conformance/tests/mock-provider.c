/* A mock provider for pallet-conformance's own tests.
 *
 * Built once as a good provider (no MOCK_* macro) and once per defect with
 * exactly one MOCK_* macro defined, each breaking exactly one rule:
 *   MOCK_LEAK        leaks memory when the input is bad
 *   MOCK_CRASH       crashes when the input is not the expected shape
 *   MOCK_MAJOR       entry point ignores the host's ABI major
 *   MOCK_NO_INVENTORY  a required op (inventory) is NULL
 *   MOCK_DUP         transfer creates a new resource on every call
 *   MOCK_NOCANCEL    transfer's copy never polls cancelled()
 *   MOCK_NORETRY     transfer returns PALLET_PENDING without a retry-after
 *   MOCK_BADJSON     inventory emits text that is not JSON
 *   MOCK_EXPORTS     exports two extra symbols (built without the version
 *                    script)
 *
 * Its "cloud" is a JSON file, config settings.cloud, holding
 * {"resources": [names]}; the fixtures' count_command is ["cat", file]. */
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <pallet/provider.h>

#define COPY_STEPS 15
#define COPY_STEP_MS 20
#define CANCEL_BOUND_MS 200

struct mock {
  char *cloud;                /* the resource file, or NULL */
};

static pthread_mutex_t cloud_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the cloud file ---- */

static json_t *
cloud_read (const struct mock *m)
{
  json_t *c = m->cloud ? json_load_file (m->cloud, 0, NULL) : NULL;
  if (!json_is_array (json_object_get (c, "resources"))) {
    json_decref (c);
    c = json_pack ("{s[]}", "resources");
  }
  return c;
}

static int
cloud_write (const struct mock *m, json_t *c)
{
  char *tmp = NULL;
  int r = -1;
  if (m->cloud == NULL)
    return 0;
  if (asprintf (&tmp, "%s.tmp", m->cloud) < 0)
    return -1;
  if (json_dump_file (c, tmp, JSON_COMPACT) == 0 && rename (tmp, m->cloud) == 0)
    r = 0;
  free (tmp);
  return r;
}

/* Adds name unless it exists; returns -1 on I/O error. */
static int
cloud_add (const struct mock *m, const char *name)
{
  json_t *c, *list, *e;
  size_t i;
  int r;
  pthread_mutex_lock (&cloud_lock);
  c = cloud_read (m);
  list = json_object_get (c, "resources");
  json_array_foreach (list, i, e)
    if (strcmp (json_string_value (e), name) == 0)
      break;
  if (i == json_array_size (list))
    json_array_append_new (list, json_string (name));
  r = cloud_write (m, c);
  json_decref (c);
  pthread_mutex_unlock (&cloud_lock);
  return r;
}

static size_t
cloud_count (const struct mock *m)
{
  size_t n;
  json_t *c;
  pthread_mutex_lock (&cloud_lock);
  c = cloud_read (m);
  n = json_array_size (json_object_get (c, "resources"));
  json_decref (c);
  pthread_mutex_unlock (&cloud_lock);
  return n;
}

/* Removes every resource whose name starts with prefix; returns them. */
static json_t *
cloud_remove (const struct mock *m, const char *prefix)
{
  json_t *c, *list, *keep = json_array (), *gone = json_array (), *e;
  size_t i;
  pthread_mutex_lock (&cloud_lock);
  c = cloud_read (m);
  list = json_object_get (c, "resources");
  json_array_foreach (list, i, e)
    json_array_append (strncmp (json_string_value (e), prefix,
                                strlen (prefix)) == 0 ? gone : keep, e);
  json_object_set_new (c, "resources", keep);
  if (json_array_size (gone))
    cloud_write (m, c);
  json_decref (c);
  pthread_mutex_unlock (&cloud_lock);
  return gone;
}

/* ---- input ---- */

static int
bad (struct pallet_call *call, const char *op, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
static int
bad (struct pallet_call *call, const char *op, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
#ifdef MOCK_LEAK
  /* The defect: a copy of the message, never freed. */
  char *copy = strdup (msg);
  if (copy)
    copy[0] = msg[0];
#endif
  pallet_error (call, PALLET_E_INVALID, "mock: %s: %s; pass the documented "
                "input object", op, msg);
  return PALLET_E_INVALID;
}

/* Inputs are small; refusing big ones early keeps a 10 MiB string from
 * costing a full parse. */
#define MAX_INPUT (1u << 20)
static bool
too_big (struct pallet_call *call, const char *op, const char *input)
{
  size_t n = strnlen (input, MAX_INPUT + 1);
  if (n <= MAX_INPUT)
    return false;
  bad (call, op, "input is over %u bytes", MAX_INPUT);
  return true;
}

struct vm_input {
  json_t *root;
  const char *vm_id;
  const char *vm_name;
  const char *uid;
  json_t *state;
};

static int
parse_vm (struct pallet_call *call, const char *op, const char *input,
          struct vm_input *in)
{
  json_error_t err;
  json_t *vm, *opts;
  memset (in, 0, sizeof *in);
  if (too_big (call, op, input))
    return PALLET_E_INVALID;
  in->root = json_loads (input, 0, &err);
#ifdef MOCK_CRASH
  /* The defect: trusts the input's shape. */
  in->vm_id = json_string_value (json_object_get (json_object_get (in->root, "vm"), "id"));
  if (strlen (in->vm_id) == 0)
    return bad (call, op, "empty vm.id");
#endif
  if (in->root == NULL)
    return bad (call, op, "input is not JSON: %s", err.text);
  if (!json_is_object (in->root))
    return json_decref (in->root), bad (call, op, "input is not an object");
  vm = json_object_get (in->root, "vm");
  in->state = json_object_get (in->root, "state");
  opts = json_object_get (in->root, "options");
  in->vm_id = json_string_value (json_object_get (vm, "id"));
  in->vm_name = json_string_value (json_object_get (vm, "name"));
  in->uid = json_string_value (json_object_get (opts, "migrationUID"));
  if (!json_is_object (json_object_get (in->root, "plan"))
      || !json_is_object (vm) || in->vm_id == NULL
      || !json_is_object (in->state)
      || (opts && !json_is_object (opts))) {
    json_decref (in->root);
    return bad (call, op, "\"plan\", \"vm\" (with \"id\") and \"state\" must "
                "be objects");
  }
  if (in->uid == NULL)
    in->uid = "none";
  if (in->vm_name == NULL)
    in->vm_name = in->vm_id;
  return PALLET_OK;
}

static int
emit_obj (struct pallet_call *call, int kind, json_t *obj)
{
  char *s = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
  int r = s ? pallet_emit (call, kind, s) : -1;
  free (s);
  json_decref (obj);
  return r;
}

/* The new state: the old one plus key = value. */
static int
emit_state (struct pallet_call *call, const json_t *old, const char *key,
            json_t *value)
{
  json_t *st = json_deep_copy (old);
  json_object_set_new (st, key, value);
  return emit_obj (call, PALLET_EMIT_STATE, st);
}

/* ---- ops ---- */

static void *
mock_open (struct pallet_call *call, const char *config_json)
{
  json_error_t err;
  json_t *cfg, *settings, *cloud;
  struct mock *m;
  if (too_big (call, "open", config_json))
    return NULL;
  cfg = json_loads (config_json, 0, &err);
  if (cfg == NULL) {
    bad (call, "open", "config is not JSON: %s", err.text);
    return NULL;
  }
  settings = json_object_get (cfg, "settings");
  cloud = json_object_get (settings, "cloud");
  if (!json_is_object (cfg) || (settings && !json_is_object (settings))
      || (cloud && !json_is_string (cloud))) {
    json_decref (cfg);
    bad (call, "open", "config must be an object whose \"settings\" is an "
         "object");
    return NULL;
  }
  m = calloc (1, sizeof *m);
  if (m && cloud)
    m->cloud = strdup (json_string_value (cloud));
  json_decref (cfg);
  if (m == NULL)
    pallet_error (call, PALLET_E_NOMEM, "mock: open: out of memory");
  return m;
}

static void
mock_close (void *handle)
{
  struct mock *m = handle;
  free (m->cloud);
  free (m);
}

static int
mock_validate (void *handle, struct pallet_call *call, const char *input)
{
  struct vm_input in;
  int r = parse_vm (call, "validate", input, &in);
  (void) handle;
  if (r != PALLET_OK)
    return r;
  emit_obj (call, PALLET_EMIT_ITEM,
            json_pack ("{ss ss ss ss}", "category", "Advisory", "type",
                       "MockNote", "message", "mock: the VM can be migrated",
                       "vm", in.vm_id));
  emit_obj (call, PALLET_EMIT_RESULT,
            json_pack ("{ss si}", "summary", "1 finding", "count", 1));
  json_decref (in.root);
  return PALLET_OK;
}

#ifdef MOCK_NO_INVENTORY
__attribute__ ((unused))
#endif
static int
mock_inventory (void *handle, struct pallet_call *call, const char *input)
{
  json_error_t err;
  json_t *root, *query;
  const char *kind;
  (void) handle;
  if (too_big (call, "inventory", input))
    return PALLET_E_INVALID;
  root = json_loads (input, 0, &err);
  if (root == NULL)
    return bad (call, "inventory", "input is not JSON: %s", err.text);
  kind = json_string_value (json_object_get (root, "kind"));
  query = json_object_get (root, "query");
  if (!json_is_object (root) || kind == NULL
      || (query && !json_is_string (query) && !json_is_null (query))) {
    json_decref (root);
    return bad (call, "inventory", "input must be {\"kind\": string, "
                "\"query\": string}");
  }
  if (strcmp (kind, "instances") != 0) {
    pallet_error (call, PALLET_E_UNSUPPORTED, "mock: inventory: kind \"%.40s\" "
                  "is not known; use \"instances\"", kind);
    json_decref (root);
    return PALLET_E_UNSUPPORTED;
  }
  emit_obj (call, PALLET_EMIT_ITEM,
            json_pack ("{ss ss ss}", "id", "vm-conformance-1", "name",
                       "conformance-1", "kind", "instances"));
#ifdef MOCK_BADJSON
  pallet_emit (call, PALLET_EMIT_ITEM, "{\"id\":\"vm-2\",\"name\":\"two\",}");
#else
  emit_obj (call, PALLET_EMIT_ITEM,
            json_pack ("{ss ss ss}", "id", "vm-2", "name", "two", "kind",
                       "instances"));
#endif
  json_decref (root);
  return PALLET_OK;
}

static int
mock_prepare_source (void *handle, struct pallet_call *call, const char *input)
{
  struct vm_input in;
  int r = parse_vm (call, "prepare_source", input, &in);
  (void) handle;
  if (r != PALLET_OK)
    return r;
  if (pallet_cancelled (call))
    r = PALLET_E_CANCELLED;
  else
    emit_state (call, in.state, "prepared", json_true ());
  json_decref (in.root);
  return r;
}

static int
copy_blocks (struct pallet_call *call)
{
  for (int i = 0; i < COPY_STEPS; i++) {
#ifndef MOCK_NOCANCEL
    if (pallet_cancelled (call))
      return PALLET_E_CANCELLED;
#endif
    usleep (COPY_STEP_MS * 1000);
    pallet_progress (call, "vm", "transfer", (uint64_t) i + 1, COPY_STEPS,
                     "blocks");
  }
  return PALLET_OK;
}

static int
mock_transfer (void *handle, struct pallet_call *call, const char *input)
{
  struct mock *m = handle;
  struct vm_input in;
  char *snap = NULL;
  int r = parse_vm (call, "transfer", input, &in);
  if (r != PALLET_OK)
    return r;
  if (json_is_true (json_object_get (in.state, "transferred"))) {
    emit_obj (call, PALLET_EMIT_STATE, json_deep_copy (in.state));
    json_decref (in.root);
    return PALLET_OK;
  }
#ifndef MOCK_NOCANCEL
  if (pallet_cancelled (call)) {
    json_decref (in.root);
    return PALLET_E_CANCELLED;
  }
#endif
  if (json_object_get (in.state, "snapshot") == NULL) {
    /* Create the snapshot (tagged by VM and migration), adopt it if there. */
#ifdef MOCK_DUP
    r = asprintf (&snap, "snap-%s-%s-%zu", in.vm_id, in.uid, cloud_count (m));
#else
    (void) cloud_count;
    r = asprintf (&snap, "snap-%s-%s", in.vm_id, in.uid);
#endif
    if (r < 0 || cloud_add (m, snap) == -1) {
      pallet_error (call, PALLET_E_IO, "mock: transfer: cannot write %s",
                    m->cloud);
      free (snap);
      json_decref (in.root);
      return PALLET_E_IO;
    }
    emit_state (call, in.state, "snapshot", json_string (snap));
    free (snap);
#ifndef MOCK_NORETRY
    pallet_retry_after (call, 10);
#endif
    json_decref (in.root);
    return PALLET_PENDING;
  }
  r = copy_blocks (call);
  if (r == PALLET_OK)
    emit_state (call, in.state, "transferred", json_true ());
  json_decref (in.root);
  return r;
}

static int
mock_convert (void *handle, struct pallet_call *call, const char *input)
{
  struct vm_input in;
  int r = parse_vm (call, "convert", input, &in);
  (void) handle;
  if (r != PALLET_OK)
    return r;
  emit_state (call, in.state, "converted", json_true ());
  json_decref (in.root);
  return PALLET_OK;
}

static int
mock_build_vm (void *handle, struct pallet_call *call, const char *input)
{
  struct vm_input in;
  int r = parse_vm (call, "build_vm", input, &in);
  (void) handle;
  if (r != PALLET_OK)
    return r;
  emit_obj (call, PALLET_EMIT_ITEM,
            json_pack ("{ss ss s{ss ss} s{}}", "apiVersion", "kubevirt.io/v1",
                       "kind", "VirtualMachine", "metadata", "name",
                       "conformance-1", "namespace", "default", "spec"));
  emit_state (call, in.state, "built", json_true ());
  json_decref (in.root);
  return PALLET_OK;
}

static int
mock_cleanup (void *handle, struct pallet_call *call, const char *input)
{
  struct mock *m = handle;
  struct vm_input in;
  char *prefix = NULL;
  json_t *gone, *e;
  size_t i;
  int r = parse_vm (call, "cleanup", input, &in);
  if (r != PALLET_OK)
    return r;
  /* By tag (name prefix), not only from the state. */
  if (asprintf (&prefix, "snap-%s-%s", in.vm_id, in.uid) < 0) {
    json_decref (in.root);
    pallet_error (call, PALLET_E_NOMEM, "mock: cleanup: out of memory");
    return PALLET_E_NOMEM;
  }
  gone = cloud_remove (m, prefix);
  json_array_foreach (gone, i, e)
    emit_obj (call, PALLET_EMIT_ITEM,
              json_pack ("{ss sO ss}", "kind", "snapshot", "id", e,
                         "action", "deleted"));
  json_decref (gone);
  free (prefix);
  json_decref (in.root);
  return PALLET_OK;
}

#ifdef MOCK_EXPORTS
/* The defect: helpers left visible. */
PALLET_EXPORT int mock_debug_level = 1;
PALLET_EXPORT int mock_helper (void);
PALLET_EXPORT int
mock_helper (void)
{
  return mock_debug_level;
}
#endif

#ifdef MOCK_NO_INVENTORY
#define INVENTORY NULL
#else
#define INVENTORY mock_inventory
#endif

#define MOCK_FIELDS                                                 \
  .name = "mock", .version = "1.0",                                 \
  .description = "pallet-conformance's test provider",              \
  .thread_model = PALLET_THREAD_MODEL_PARALLEL,                     \
  .cancel_bound_ms = CANCEL_BOUND_MS,                               \
  .capabilities = PALLET_CAP_COLD_MIGRATION,                        \
  .open = mock_open, .close = mock_close,                           \
  .validate = mock_validate, .inventory = INVENTORY,                \
  .prepare_source = mock_prepare_source,                            \
  .transfer = mock_transfer, .convert = mock_convert,               \
  .build_vm = mock_build_vm, .cleanup = mock_cleanup

#ifdef MOCK_MAJOR
/* The defect: an entry point that answers any major. */
static const struct pallet_provider mock = {
  .abi_major = PALLET_ABI_MAJOR, .abi_minor = PALLET_ABI_MINOR,
  .struct_size = sizeof (struct pallet_provider), MOCK_FIELDS
};
PALLET_EXPORT const struct pallet_provider *
pallet_provider_entry (uint32_t host_abi_major, const struct pallet_host *host);
PALLET_EXPORT const struct pallet_provider *
pallet_provider_entry (uint32_t host_abi_major, const struct pallet_host *host)
{
  (void) host_abi_major; (void) host;
  return &mock;
}
#else
PALLET_PROVIDER_DEFINE (mock, MOCK_FIELDS);
#endif
