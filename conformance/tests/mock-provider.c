/* SPDX-License-Identifier: Apache-2.0 */
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
 *   MOCK_LEAK_TRANSFER   leaks only on transfer's copy path
 *   MOCK_LEAK_CLEANUP    leaks only in cleanup
 *   MOCK_WRITE_INPUT     prepare_source writes into its input text
 *   MOCK_FREE_INPUT      convert frees its input text
 *   MOCK_NULL_QUERY      inventory crashes on a null or absent query
 *   MOCK_NULL_DIR        inventory crashes when work.dir is NULL
 *   MOCK_OPT_FIELD       validate crashes when options.step is absent
 *   MOCK_CRITICAL_OK     validate returns PALLET_OK with a Critical finding
 *   MOCK_RESUME_REDO     transfer, resumed after it completed, copies again
 *                        into a new volume
 *   MOCK_STALE_CALL      transfer keeps its call pointer and uses it in the
 *                        next call
 *   MOCK_DROP_RECORD     the tidy-up forgets the volumes it kept, and the
 *                        rollback finds volumes only through the state
 *   MOCK_EARLY_ROLLBACK  the rollback returns after the snapshots, before
 *                        the volumes
 *   MOCK_CANCEL_ONCE     transfer's copy polls cancelled() once, at the start
 *   MOCK_PROGRESS_BACK   transfer's progress goes backwards
 *   MOCK_BAD_MANIFEST    build_vm's VirtualMachine has no spec.template
 *   MOCK_SECRET_STATE    transfer writes the secret key into its state
 *   MOCK_STDOUT          convert prints to stdout
 *   MOCK_QUERY_IGNORED   declares PALLET_CAP_INVENTORY_QUERY, ignores the query
 *
 * Good, it is a provider that keeps its target volumes on a successful
 * tidy-up (docs/ops/cleanup.md), pushes inventory queries down (with the
 * host's query library), and calls every host service from threads of its
 * own during validate.
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
#include <pallet-query.h>

/* The copy is long against the cancel bound, and the bound long against a
 * 20 ms poll: a mock that polls passes even on a loaded machine (a 100 ms
 * bound failed there on scheduling latency alone), one that does not is
 * still caught (cancelled a third into the copy, it returns 530 ms
 * later). */
#define COPY_STEPS      40
#define COPY_STEP_MS    20
#define CANCEL_BOUND_MS 300
#define SERVICE_THREADS 4

struct mock {
  char *cloud;                   /* the resource file, or NULL */
  char *secret;                  /* config.secret.secretAccessKey, or NULL */
  struct pallet_call *last_call; /* MOCK_STALE_CALL */
};

static pthread_mutex_t cloud_lock = PTHREAD_MUTEX_INITIALIZER;

#if defined(MOCK_LEAK_TRANSFER) || defined(MOCK_LEAK_CLEANUP)
char *volatile mock_lost; /* what the leaks lose: the last one */
#endif

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
    json_array_append (strncmp (json_string_value (e), prefix, strlen (prefix)) == 0 ? gone : keep,
                       e);
  json_object_set_new (c, "resources", keep);
  if (json_array_size (gone))
    cloud_write (m, c);
  json_decref (c);
  pthread_mutex_unlock (&cloud_lock);
  return gone;
}

/* ---- input ---- */

static int bad (struct pallet_call *call, const char *op, const char *fmt, ...)
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
  pallet_error (call, PALLET_E_INVALID,
                "mock: %s: %s; pass the documented "
                "input object",
                op, msg);
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
parse_vm (struct pallet_call *call, const char *op, const char *input, struct vm_input *in)
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
  if (!json_is_object (json_object_get (in->root, "plan")) || !json_is_object (vm)
      || in->vm_id == NULL || !json_is_object (in->state) || (opts && !json_is_object (opts))) {
    json_decref (in->root);
    return bad (call, op,
                "\"plan\", \"vm\" (with \"id\") and \"state\" must "
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
emit_state (struct pallet_call *call, const json_t *old, const char *key, json_t *value)
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
    bad (call, "open",
         "config must be an object whose \"settings\" is an "
         "object");
    return NULL;
  }
  m = calloc (1, sizeof *m);
  if (m && cloud)
    m->cloud = strdup (json_string_value (cloud));
  if (m && json_is_string (json_object_get (json_object_get (cfg, "secret"), "secretAccessKey")))
    m->secret = strdup (
        json_string_value (json_object_get (json_object_get (cfg, "secret"), "secretAccessKey")));
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
  free (m->secret);
  free (m);
}

/* Every host service from threads of the provider's own, during the
 * call (the guide allows it); joined before the call returns. */
static void *
service_thread (void *arg)
{
  struct pallet_call *call = arg;
  char step[32];
  snprintf (step, sizeof step, "validate-%p", (void *) &step);
  for (uint64_t i = 1; i <= 3; i++) {
    pallet_log (call, PALLET_LOG_DEBUG, "mock: thread check %llu", (unsigned long long) i);
    pallet_progress (call, "vm", step, i, 3, "checks");
    (void) pallet_cancelled (call);
    (void) call->host->get_param (call, "host.name");
    (void) call->host->get_param (call, "work.dir");
  }
  pallet_emit (call, PALLET_EMIT_ITEM,
               "{\"category\":\"Advisory\","
               "\"type\":\"MockThreadNote\",\"message\":\"mock: checked on a "
               "thread\"}");
  return NULL;
}

static void
services_from_threads (struct pallet_call *call)
{
  pthread_t t[SERVICE_THREADS];
  int made[SERVICE_THREADS];
  for (int i = 0; i < SERVICE_THREADS; i++)
    made[i] = pthread_create (&t[i], NULL, service_thread, call) == 0;
  for (int i = 0; i < SERVICE_THREADS; i++)
    if (made[i])
      pthread_join (t[i], NULL);
}

static int
mock_validate (void *handle, struct pallet_call *call, const char *input)
{
  struct vm_input in;
  int r = parse_vm (call, "validate", input, &in);
  (void) handle;
  if (r != PALLET_OK)
    return r;
#ifdef MOCK_OPT_FIELD
  /* The defect: options.step is optional, read as if it were always there. */
  if (strlen (json_string_value (json_object_get (json_object_get (in.root, "options"), "step")))
      == 0)
    r = PALLET_E_INVALID;
#endif
  if (pallet_cancelled (call)) {
    json_decref (in.root);
    return PALLET_E_CANCELLED;
  }
  services_from_threads (call);
  emit_obj (call, PALLET_EMIT_ITEM,
            json_pack ("{ss ss ss ss}", "category",
#ifdef MOCK_CRITICAL_OK
                       "Critical",
#else
                       "Advisory",
#endif
                       "type", "MockNote", "message", "mock: the VM can be migrated", "vm",
                       in.vm_id));
  emit_obj (call, PALLET_EMIT_RESULT, json_pack ("{ss si}", "summary", "1 finding", "count", 1));
  json_decref (in.root);
  return r;
}

static json_t *
inventory_all (void)
{
  return json_pack ("[{ss ss ss ss} {ss ss ss ss} {ss ss ss ss}]", "id", "vm-conformance-1", "name",
                    "conformance-1", "kind", "instances", "powerState", "On", "id", "vm-2", "name",
                    "two", "kind", "instances", "powerState", "Off", "id", "vm-3", "name", "alpha",
                    "kind", "instances", "powerState", "On");
}

/* Push-down (PALLET_CAP_INVENTORY_QUERY): the provider applies the query. */
static int
inventory_emit (struct pallet_call *call, const char *query)
{
  char *err = NULL;
  struct pallet_query *q = pallet_query_compile (query, &err);
  json_t *all = inventory_all (), *items, *e;
  size_t i;
  if (q == NULL) {
    pallet_error (call, PALLET_E_INVALID, "mock: inventory: %s", err);
    free (err);
    json_decref (all);
    return PALLET_E_INVALID;
  }
#ifdef MOCK_QUERY_IGNORED
  /* The defect: the capability is declared, the query is not applied. */
  items = json_incref (all);
#else
  items = pallet_query_apply (q, all, NULL);
#endif
  json_array_foreach (items, i, e) {
#ifdef MOCK_BADJSON
    if (strcmp (json_string_value (json_object_get (e, "id")), "vm-2") == 0) {
      pallet_emit (call, PALLET_EMIT_ITEM, "{\"id\":\"vm-2\",\"name\":\"two\",}");
      continue;
    }
#endif
    emit_obj (call, PALLET_EMIT_ITEM, json_incref (e));
  }
  json_decref (items);
  json_decref (all);
  pallet_query_free (q);
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
  int r;
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
    return bad (call, "inventory",
                "input must be {\"kind\": string, "
                "\"query\": string}");
  }
  if (strcmp (kind, "instances") != 0) {
    pallet_error (call, PALLET_E_UNSUPPORTED,
                  "mock: inventory: kind \"%.40s\" "
                  "is not known; use \"instances\"",
                  kind);
    json_decref (root);
    return PALLET_E_UNSUPPORTED;
  }
#ifdef MOCK_NULL_QUERY
  /* The defect: the query is optional, read as if it were a string. */
  if (strlen (json_string_value (query)) > 4096)
    query = NULL;
#endif
#ifdef MOCK_NULL_DIR
  /* The defect: work.dir exists only in a migration. */
  if (strlen (call->host->get_param (call, "work.dir")) == 0)
    query = NULL;
#endif
  r = inventory_emit (call, json_string_value (query));
  json_decref (root);
  return r;
}

static int
mock_prepare_source (void *handle, struct pallet_call *call, const char *input)
{
  struct vm_input in;
  int r = parse_vm (call, "prepare_source", input, &in);
  (void) handle;
  if (r != PALLET_OK)
    return r;
#ifdef MOCK_WRITE_INPUT
  /* The defect: "parses" the host's text in place. */
  ((char *) input)[0] = '{';
#endif
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
#ifdef MOCK_CANCEL_ONCE
  /* The defect: cancelled() polled once, before the copy. */
  if (pallet_cancelled (call))
    return PALLET_E_CANCELLED;
#endif
  for (int i = 0; i < COPY_STEPS; i++) {
#if !defined(MOCK_NOCANCEL) && !defined(MOCK_CANCEL_ONCE)
    if (pallet_cancelled (call))
      return PALLET_E_CANCELLED;
#endif
    usleep (COPY_STEP_MS * 1000);
#ifdef MOCK_PROGRESS_BACK
    /* The defect: a retried block counted as progress lost. */
    if (i == 7)
      pallet_progress (call, "vm", "transfer", 3, COPY_STEPS, "blocks");
#endif
    pallet_progress (call, "vm", "transfer", (uint64_t) i + 1, COPY_STEPS, "blocks");
  }
#ifdef MOCK_LEAK_TRANSFER
  /* The defect: the copy's block map, never freed (the pointer escapes,
   * so the compiler keeps the allocation). */
  mock_lost = malloc (64);
#endif
  return PALLET_OK;
}

/* Transfer's first call: the snapshot and the target volume, named by VM
 * and migration (adopted when they exist), then PENDING. */
static int
transfer_start (struct mock *m, struct pallet_call *call, struct vm_input *in)
{
  char *snap = NULL, *vol = NULL;
  int r;
#ifdef MOCK_DUP
  r = asprintf (&snap, "snap-%s-%s-%zu", in->vm_id, in->uid, cloud_count (m));
#else
  (void) cloud_count;
  r = asprintf (&snap, "snap-%s-%s", in->vm_id, in->uid);
#endif
  if (r < 0 || asprintf (&vol, "vol-%s-%s", in->vm_id, in->uid) < 0 || cloud_add (m, snap) == -1
      || cloud_add (m, vol) == -1) {
    pallet_error (call, PALLET_E_IO, "mock: transfer: cannot write %s", m->cloud);
    free (snap);
    free (vol);
    return PALLET_E_IO;
  }
  json_t *st = json_deep_copy (in->state);
  json_object_set_new (st, "snapshot", json_string (snap));
  json_object_set_new (st, "volumes", json_pack ("[s]", vol));
#ifdef MOCK_SECRET_STATE
  /* The defect: the credentials kept in the state "for the next call". */
  if (m->secret)
    json_object_set_new (st, "auth", json_string (m->secret));
#endif
  emit_obj (call, PALLET_EMIT_STATE, st);
  free (snap);
  free (vol);
#ifndef MOCK_NORETRY
  pallet_retry_after (call, 10);
#endif
#ifdef MOCK_STALE_CALL
  m->last_call = call;
#endif
  return PALLET_PENDING;
}

static int
mock_transfer (void *handle, struct pallet_call *call, const char *input)
{
  struct mock *m = handle;
  struct vm_input in;
  int r = parse_vm (call, "transfer", input, &in);
  if (r != PALLET_OK)
    return r;
#ifdef MOCK_STALE_CALL
  /* The defect: the previous call's pointer, used in this call. */
  if (m->last_call)
    pallet_progress (m->last_call, "vm", "transfer", 0, 0, "blocks");
#endif
  if (json_is_true (json_object_get (in.state, "transferred"))) {
#ifdef MOCK_RESUME_REDO
    /* The defect: a resumed transfer copies again, into a new volume. */
    char name[160];
    snprintf (name, sizeof name, "vol-%s-%s-again-%zu", in.vm_id, in.uid, cloud_count (m));
    cloud_add (m, name);
#endif
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
  if (json_object_get (in.state, "snapshot") == NULL)
    r = transfer_start (m, call, &in);
  else if ((r = copy_blocks (call)) == PALLET_OK)
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
#ifdef MOCK_STDOUT
  /* The defect: a progress line printed, not reported. */
  printf ("mock: converting %s\n", in.vm_id);
#endif
  emit_state (call, in.state, "converted", json_true ());
  json_decref (in.root);
#ifdef MOCK_FREE_INPUT
  /* The defect: frees what the host owns. */
  free ((char *) input);
#endif
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
            json_pack ("{ss ss s{ss ss} s{ss so}}", "apiVersion", "kubevirt.io/v1", "kind",
                       "VirtualMachine", "metadata", "name", "conformance-1", "namespace",
                       "default", "spec", "runStrategy", "Halted", "template",
#ifdef MOCK_BAD_MANIFEST
                       /* The defect: "template" is "spec.template". */
                       json_pack ("{s{}}", "domain")
#else
                       json_pack ("{s{s{s{} s{s{ss}}} s[]}}", "spec", "domain", "devices",
                                  "resources", "requests", "memory", "1Gi", "volumes")
#endif
                           ));
  emit_state (call, in.state, "built", json_true ());
  json_decref (in.root);
  return PALLET_OK;
}

/* Deletes what starts with prefix; emits an item per resource. */
static void
delete_prefix (struct mock *m, struct pallet_call *call, const char *kind, const char *prefix)
{
  json_t *gone = cloud_remove (m, prefix), *e;
  size_t i;
  json_array_foreach (gone, i, e)
    emit_obj (call, PALLET_EMIT_ITEM,
              json_pack ("{ss sO ss}", "kind", kind, "id", e, "action", "deleted"));
  json_decref (gone);
}

/* The volumes: kept by a tidy-up (the new VM's disks), deleted by a
 * rollback, found by tag (name prefix), not only from the state. */
static void
cleanup_volumes (struct mock *m, struct pallet_call *call, struct vm_input *in, const char *prefix,
                 bool rollback)
{
  json_t *st = json_deep_copy (in->state), *vols = json_object_get (st, "volumes"), *v;
  size_t i;
  if (rollback) {
#ifdef MOCK_DROP_RECORD
    /* The defect: the rollback trusts the state alone ... */
    json_array_foreach (vols, i, v) {
      json_t *g = cloud_remove (m, json_string_value (v));
      json_decref (g);
    }
    (void) prefix;
#else
    delete_prefix (m, call, "volume", prefix);
#endif
  }
  else
    json_array_foreach (vols, i, v)
      emit_obj (call, PALLET_EMIT_ITEM,
                json_pack ("{ss sO ss ss}", "kind", "volume", "id", v, "action", "kept", "reason",
                           "the migrated VM's "
                           "disk"));
#ifdef MOCK_DROP_RECORD
  /* ... and the tidy-up forgets the volumes it kept. */
  if (!rollback)
    json_object_del (st, "volumes");
#endif
  json_object_set_new (st, "step", json_string ("cleanup"));
  emit_obj (call, PALLET_EMIT_STATE, st);
}

static int
mock_cleanup (void *handle, struct pallet_call *call, const char *input)
{
  struct mock *m = handle;
  struct vm_input in;
  char *snaps = NULL, *vols = NULL;
  int r = parse_vm (call, "cleanup", input, &in);
  bool rollback;
  if (r != PALLET_OK)
    return r;
  rollback = json_is_true (json_object_get (json_object_get (in.root, "options"), "rollback"));
  if (asprintf (&snaps, "snap-%s-%s", in.vm_id, in.uid) < 0
      || asprintf (&vols, "vol-%s-%s", in.vm_id, in.uid) < 0) {
    json_decref (in.root);
    pallet_error (call, PALLET_E_NOMEM, "mock: cleanup: out of memory");
    return PALLET_E_NOMEM;
  }
  delete_prefix (m, call, "snapshot", snaps);
#ifdef MOCK_EARLY_ROLLBACK
  /* The defect: the rollback is "done" once the snapshots are gone. */
  if (rollback)
    goto out;
#endif
  cleanup_volumes (m, call, &in, vols, rollback);
#ifdef MOCK_EARLY_ROLLBACK
out:
#endif
#ifdef MOCK_LEAK_CLEANUP
  mock_lost = vols;
#else
  free (vols);
#endif
  free (snaps);
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

#define MOCK_FIELDS                                                                          \
  .name = "mock", .version = "1.0", .description = "pallet-conformance's test provider",     \
  .thread_model = PALLET_THREAD_MODEL_PARALLEL, .cancel_bound_ms = CANCEL_BOUND_MS,          \
  .capabilities = PALLET_CAP_COLD_MIGRATION | PALLET_CAP_INVENTORY_QUERY, .open = mock_open, \
  .close = mock_close, .validate = mock_validate, .inventory = INVENTORY,                    \
  .prepare_source = mock_prepare_source, .transfer = mock_transfer, .convert = mock_convert, \
  .build_vm = mock_build_vm, .cleanup = mock_cleanup

#ifdef MOCK_MAJOR
/* The defect: an entry point that answers any major. */
static const struct pallet_provider mock = { .abi_major = PALLET_ABI_MAJOR,
                                             .abi_minor = PALLET_ABI_MINOR,
                                             .struct_size = sizeof (struct pallet_provider),
                                             MOCK_FIELDS };
PALLET_EXPORT const struct pallet_provider *pallet_provider_entry (uint32_t host_abi_major,
                                                                   const struct pallet_host *host);
PALLET_EXPORT const struct pallet_provider *
pallet_provider_entry (uint32_t host_abi_major, const struct pallet_host *host)
{
  (void) host_abi_major;
  (void) host;
  return &mock;
}
#else
PALLET_PROVIDER_DEFINE (mock, MOCK_FIELDS);
#endif
