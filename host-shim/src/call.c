/* SPDX-License-Identifier: Apache-2.0 */
/* The host services table and the one wrapper every op call goes through.
 * Providers may call the services from any thread while an op runs, so
 * everything a service changes in the call's result is under the call's
 * own lock. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

_Atomic int Pallet_cancel_level;

/* What the host keeps about one op call; pub is what the provider sees. */
struct call_ctx {
  struct pallet_call pub;
  struct pallet_session *s;
  const char *op;
  const char *vm;
  struct pallet_call_result *r;
  int error_set;
  int error_code;  /* host->error's code, for the ABI 1.1 check */
  char *violation; /* first contract breach seen */
  int rollback;
  struct Pallet_sink *sink; /* progress and log lines; NULL: global */
  const struct pallet_cancel *cancel, *cancel2;
  Pallet_item_fn *item; /* stream items instead of collecting */
  void *item_opaque;
  size_t items_cap;
  pthread_mutex_t mu; /* r, error_set, violation, items_cap */
};

static struct call_ctx *
ctx_of (struct pallet_call *call)
{
  return call ? (struct call_ctx *) call->_host_private : NULL;
}

static const char *
provider_name (const struct call_ctx *c)
{
  return c->s && c->s->m->vt.name ? c->s->m->vt.name : "?";
}

static void
host_log (struct pallet_call *call, int level, const char *fmt, ...)
{
  if (level > pallet_get_log_level () || fmt == NULL)
    return;
  struct call_ctx *c = ctx_of (call);
  char buf[4096];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (c == NULL) {
    Pallet_log (level, "%s", buf);
    return;
  }
  char line[4400];
  snprintf (line, sizeof line, "provider %s: %s%s%s: %s", provider_name (c), c->op,
            c->vm ? " " : "", c->vm ? c->vm : "", buf);
  Pallet_log_line (c->sink, level, c->vm, c->op, line);
}

static void
host_progress (struct pallet_call *call, const char *vm, const char *step, uint64_t done,
               uint64_t total, const char *unit)
{
  struct call_ctx *c = ctx_of (call);
  if (c == NULL)
    return;
  if (vm == NULL)
    vm = c->vm ? c->vm : "";
  if (step == NULL)
    step = c->op;
  if (unit == NULL)
    unit = "";
  struct pallet_event ev = { .type = PALLET_EVENT_PROGRESS,
                             .vm = vm,
                             .step = step,
                             .done = done,
                             .total = total,
                             .unit = unit };
  json_t *j = json_pack ("{s:s,s:s,s:s,s:I,s:I,s:s}", "event", "progress", "vm", vm, "step", step,
                         "done", (json_int_t) done, "total", (json_int_t) total, "unit", unit);
  if (j)
    Pallet_sink_emit (c->sink, &ev, j);
  json_decref (j);
}

static int
host_cancelled (struct pallet_call *call)
{
  struct call_ctx *c = ctx_of (call);
  int level = c ? Pallet_cancel_seen (c->cancel, c->cancel2) : Pallet_cancel_level;
  if (c && c->rollback)
    return level >= 2;
  return level >= 1;
}

static void
host_error (struct pallet_call *call, int code, const char *fmt, ...)
{
  struct call_ctx *c = ctx_of (call);
  if (c == NULL || fmt == NULL)
    return;
  char buf[4096];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  char *msg;
  if (asprintf (&msg, "provider %s: %s%s%s: %s", provider_name (c), c->op, c->vm ? " " : "",
                c->vm ? c->vm : "", buf)
      < 0)
    return;
  /* Before the hand-over: another thread's error may free msg after it. */
  if (PALLET_LOG_DEBUG <= pallet_get_log_level ()) {
    char line[4400];
    snprintf (line, sizeof line, "%s (%s)", msg, pallet_status_name (code));
    Pallet_log_line (c->sink, PALLET_LOG_DEBUG, c->vm, c->op, line);
  }
  pthread_mutex_lock (&c->mu);
  free (c->r->error);
  c->r->error = msg;
  c->error_set = 1;
  c->error_code = code;
  pthread_mutex_unlock (&c->mu);
}

static void violation (struct call_ctx *c, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
violation (struct call_ctx *c, const char *fmt, ...)
{
  char buf[2048], *msg;
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (asprintf (&msg, "provider %s: %s%s%s broke the ABI contract: %s", provider_name (c), c->op,
                c->vm ? " " : "", c->vm ? c->vm : "", buf)
      < 0)
    return;
  pthread_mutex_lock (&c->mu);
  if (c->violation == NULL) {
    c->violation = msg;
    msg = NULL;
  }
  pthread_mutex_unlock (&c->mu);
  free (msg);
}

/* Appends to r->items with a doubling capacity (under c->mu). */
static int
append_item (struct call_ctx *c, const char *text)
{
  struct pallet_call_result *r = c->r;
  if (r->n_items == c->items_cap) {
    size_t cap = c->items_cap ? c->items_cap * 2 : 16;
    char **items = realloc (r->items, cap * sizeof *items);
    if (items == NULL)
      return -1;
    r->items = items;
    c->items_cap = cap;
  }
  char *copy = strdup (text);
  if (copy == NULL)
    return -1;
  r->items[r->n_items++] = copy;
  return 0;
}

/* Replaces *slot with a copy of text (under c->mu). */
static int
replace (struct call_ctx *c, char **slot, const char *text)
{
  char *copy = strdup (text);
  if (copy == NULL)
    return -1;
  pthread_mutex_lock (&c->mu);
  free (*slot);
  *slot = copy;
  pthread_mutex_unlock (&c->mu);
  return 0;
}

static int
host_emit (struct pallet_call *call, int kind, const char *text)
{
  struct call_ctx *c = ctx_of (call);
  if (c == NULL)
    return -1;
  if (text == NULL) {
    violation (c, "emit() was given NULL; pass a JSON text");
    return -1;
  }
  json_error_t err;
  json_t *j = json_loads (text, JSON_DECODE_ANY, &err);
  if (j == NULL) {
    violation (c,
               "emit() text is not valid JSON (line %d column %d: %s); "
               "build it with a JSON library",
               err.line, err.column, err.text);
    return -1;
  }
  int rc = 0;
  switch (kind) {
  case PALLET_EMIT_STATE:
    if (!json_is_object (j)) {
      violation (c, "emit(PALLET_EMIT_STATE) must be a JSON object");
      rc = -1;
    }
    else
      rc = replace (c, &c->r->state, text);
    break;
  case PALLET_EMIT_ITEM:
    pthread_mutex_lock (&c->mu);
    rc = c->item ? c->item (c->item_opaque, text, j) : append_item (c, text);
    pthread_mutex_unlock (&c->mu);
    break;
  case PALLET_EMIT_RESULT: rc = replace (c, &c->r->result, text); break;
  default: violation (c, "emit() kind %d is not a PALLET_EMIT_* value", kind); rc = -1;
  }
  json_decref (j);
  return rc;
}

static void
host_retry_after (struct pallet_call *call, uint32_t ms)
{
  struct call_ctx *c = ctx_of (call);
  if (c == NULL)
    return;
  pthread_mutex_lock (&c->mu);
  c->r->retry_after_ms = ms;
  c->r->has_retry_after = 1;
  pthread_mutex_unlock (&c->mu);
}

static const char *
host_get_param (struct pallet_call *call, const char *key)
{
  struct call_ctx *c = ctx_of (call);
  if (key == NULL)
    return NULL;
  if (strcmp (key, "host.version") == 0)
    return PALLET_HOST_VERSION;
  if (strcmp (key, "host.name") == 0)
    return "pallet";
  if (c == NULL || c->s == NULL)
    return NULL;
  if (strcmp (key, "state.dir") == 0)
    return c->s->state_dir;
  if (strcmp (key, "work.dir") == 0)
    return c->s->work_dir;
  if (strcmp (key, "cluster.apply") == 0 && c->s->cluster)
    return c->s->cluster_applies ? "true" : "false";
  if (strncmp (key, "cluster.", 8) == 0 && c->s->cluster)
    return Pallet_cluster_param (c->s->cluster, key + 8);
  return NULL;
}

const struct pallet_host Pallet_host = {
  .abi_major = PALLET_ABI_MAJOR,
  .abi_minor = PALLET_ABI_MINOR,
  .struct_size = sizeof (struct pallet_host),
  .log = host_log,
  .progress = host_progress,
  .cancelled = host_cancelled,
  .error = host_error,
  .emit = host_emit,
  .retry_after = host_retry_after,
  .get_param = host_get_param,
};

#define OP_NAME(name, NAME) [PALLET_OP_##NAME] = #name,
static const char *op_names[PALLET_OP_LAST] = { PALLET_OP_LIST (OP_NAME) };

const char *
pallet_op_name (int op)
{
  return op >= 0 && op < PALLET_OP_LAST ? op_names[op] : NULL;
}

int
pallet_op_from_name (const char *name)
{
  for (int i = 0; name && i < PALLET_OP_LAST; i++)
    if (strcmp (name, op_names[i]) == 0)
      return i;
  return -1;
}

void
pallet_call_result_free (struct pallet_call_result *r)
{
  if (r == NULL)
    return;
  free (r->error);
  free (r->state);
  for (size_t i = 0; i < r->n_items; i++)
    free (r->items[i]);
  free (r->items);
  free (r->result);
  memset (r, 0, sizeof *r);
}

static void
lock (struct pallet_session *s)
{
  if (s->m->vt.thread_model != PALLET_THREAD_MODEL_PARALLEL)
    pthread_mutex_lock (
        s->m->vt.thread_model == PALLET_THREAD_MODEL_SERIALIZE_ALL ? &s->m->serialize : &s->lock);
}

static void
unlock (struct pallet_session *s)
{
  if (s->m->vt.thread_model != PALLET_THREAD_MODEL_PARALLEL)
    pthread_mutex_unlock (
        s->m->vt.thread_model == PALLET_THREAD_MODEL_SERIALIZE_ALL ? &s->m->serialize : &s->lock);
}

struct pallet_session *
pallet_session_open (struct pallet_module *m, const char *config_json,
                     const struct pallet_session_params *p)
{
  Pallet_clearerr ();
  struct pallet_session_params params = PALLET_SESSION_PARAMS_INIT;
  if (p && Pallet_options_copy (&params, sizeof params, p, "pallet_session_params") != 0)
    return NULL;
  p = &params;
  if (Pallet_settings_check (m, config_json) != PALLET_OK)
    return NULL;
  struct pallet_session *s = calloc (1, sizeof *s);
  if (s == NULL) {
    Pallet_seterr ("out of memory");
    return NULL;
  }
  s->m = m;
  pthread_mutex_init (&s->lock, NULL);
  if (p && p->state_dir)
    s->state_dir = strdup (p->state_dir);
  if (p && p->work_dir)
    s->work_dir = strdup (p->work_dir);
  if (m->vt.open == NULL) {
    Pallet_seterr ("provider %s has no .open callback", m->path);
    pallet_session_close (s);
    return NULL;
  }
  struct pallet_call_result r = { 0 };
  struct call_ctx c = {
    .pub = { .host = &Pallet_host }, .s = s, .op = "open", .r = &r, .sink = Pallet_sink_current ()
  };
  c.pub._host_private = &c;
  pthread_mutex_init (&c.mu, NULL);
  lock (s);
  s->handle = m->vt.open (&c.pub, config_json ? config_json : "{}");
  unlock (s);
  pthread_mutex_destroy (&c.mu);
  if (s->handle == NULL) {
    if (r.error)
      Pallet_seterr ("%s", r.error);
    else
      Pallet_seterr ("provider %s: open failed without an error message; "
                     "check the provider config",
                     m->vt.name);
    Pallet_set_origin (PALLET_ORIGIN_PROVIDER);
  }
  free (c.violation);
  pallet_call_result_free (&r);
  if (s->handle == NULL) {
    pallet_session_close (s);
    return NULL;
  }
  return s;
}

void
pallet_session_close (struct pallet_session *s)
{
  if (s == NULL)
    return;
  if (s->handle && s->m->vt.close) {
    lock (s);
    s->m->vt.close (s->handle);
    unlock (s);
  }
  pthread_mutex_destroy (&s->lock);
  free (s->state_dir);
  free (s->work_dir);
  free (s);
}

static void *
op_fn (const struct pallet_provider *v, int op)
{
  switch (op) {
  case PALLET_OP_VALIDATE: return (void *) v->validate;
  case PALLET_OP_INVENTORY: return (void *) v->inventory;
  case PALLET_OP_PREPARE_SOURCE: return (void *) v->prepare_source;
  case PALLET_OP_TRANSFER: return (void *) v->transfer;
  case PALLET_OP_CONVERT: return (void *) v->convert;
  case PALLET_OP_BUILD_VM: return (void *) v->build_vm;
  case PALLET_OP_CLEANUP: return (void *) v->cleanup;
  }
  return NULL;
}

int
Pallet_call_op (struct pallet_session *s, int op, const char *vm, const char *input,
                const struct Pallet_call_opts *co, struct pallet_call_result *r)
{
  static const struct Pallet_call_opts none = { 0 };
  if (co == NULL)
    co = &none;
  memset (r, 0, sizeof *r);
  const char *name = pallet_op_name (op);
  if (name == NULL) {
    r->status = PALLET_E_INVALID;
    if (asprintf (&r->error, "op %d is not a pallet_op", op) < 0)
      r->error = NULL;
    return r->status;
  }
  pallet_validate_fn *fn = (pallet_validate_fn *) op_fn (&s->m->vt, op);
  if (fn == NULL) {
    /* The host's defaults for absent optional ops. */
    switch (op) {
    case PALLET_OP_PREPARE_SOURCE:
    case PALLET_OP_CONVERT:
      r->status = PALLET_OK;
      r->skipped = 1;
      return r->status;
    default:
      r->status = PALLET_E_UNSUPPORTED;
      if (asprintf (&r->error,
                    "provider %s does not implement %s: use a "
                    "provider with a .%s callback",
                    s->m->vt.name, name, name)
          < 0)
        r->error = NULL;
      return r->status;
    }
  }
  struct call_ctx c = { .pub = { .host = &Pallet_host },
                        .s = s,
                        .op = name,
                        .vm = vm,
                        .r = r,
                        .rollback = co->rollback,
                        .sink = co->sink ? co->sink : s->sink,
                        .item = co->item,
                        .item_opaque = co->item_opaque,
                        .cancel = co->cancel,
                        .cancel2 = co->cancel2 };
  c.pub._host_private = &c;
  pthread_mutex_init (&c.mu, NULL);
  lock (s);
  int status = fn (s->handle, &c.pub, input ? input : "{}");
  unlock (s);
  if (status < 0 || status >= PALLET_E_LAST)
    violation (&c,
               "returned %d, which is not a pallet_status; return "
               "PALLET_OK, PALLET_PENDING or a PALLET_E_* code",
               status);
  else if (status == PALLET_PENDING && !r->has_retry_after)
    violation (&c, "returned PALLET_PENDING without a retry-after; call "
                   "pallet_retry_after(call, ms) before returning PENDING");
  /* The op has returned: threads it started may no longer call in, so
   * the result is ours alone from here (violation() above still locks). */
  pthread_mutex_destroy (&c.mu);
  if (c.violation) {
    free (r->error);
    r->error = c.violation;
    r->status = PALLET_E_ABI;
    return r->status;
  }
  r->status = status;
  if (status == PALLET_OK || status == PALLET_PENDING) {
    free (r->error);
    r->error = NULL;
  }
  else if (!c.error_set) {
    if (asprintf (&r->error,
                  "provider %s: %s%s%s returned %s (%s) without "
                  "an error message",
                  s->m->vt.name, name, vm ? " " : "", vm ? vm : "", pallet_status_name (status),
                  pallet_strerror (status))
        < 0)
      r->error = NULL;
  }
  else
    Pallet_error_code_check (s->m->vt.name, name, vm, status, c.error_code, &r->error);
  return r->status;
}

int
pallet_session_call (struct pallet_session *s, int op, const char *vm, const char *input_json,
                     struct pallet_call_result *r)
{
  struct pallet_call_options o = PALLET_CALL_OPTIONS_INIT;
  o.vm = vm;
  return pallet_session_call_ex (s, op, input_json, &o, r);
}

void
pallet_call_options_init (struct pallet_call_options *o)
{
  memset (o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}

int
pallet_session_call_ex (struct pallet_session *s, int op, const char *input_json,
                        const struct pallet_call_options *opts, struct pallet_call_result *r)
{
  Pallet_clearerr ();
  struct pallet_call_options o = PALLET_CALL_OPTIONS_INIT;
  if (opts && Pallet_options_copy (&o, sizeof o, opts, "pallet_call_options") != 0) {
    memset (r, 0, sizeof *r);
    r->status = PALLET_E_INVALID;
    r->error = strdup (pallet_last_error ());
    return r->status;
  }
  struct Pallet_sink sink;
  struct Pallet_call_opts co = { .rollback = o.rollback, .cancel = o.cancel };
  if (o.on_event) {
    Pallet_sink_init (&sink, o.on_event, o.opaque);
    co.sink = &sink;
  }
  int rc = Pallet_call_op (s, op, o.vm, input_json, &co, r);
  if (o.on_event)
    Pallet_sink_destroy (&sink);
  if (rc != PALLET_OK && rc != PALLET_PENDING && r->error) {
    Pallet_seterr ("%s", r->error);
    /* Only an op number out of range is refused before the provider. */
    if (pallet_op_name (op) != NULL)
      Pallet_set_origin (PALLET_ORIGIN_PROVIDER);
  }
  return rc;
}

struct pallet_cancel *
pallet_cancel_new (void)
{
  Pallet_clearerr ();
  struct pallet_cancel *c = calloc (1, sizeof *c);
  if (c == NULL)
    Pallet_seterr ("pallet_cancel_new: out of memory");
  else
    atomic_init (&c->level, 0);
  return c;
}

static void
raise_level (_Atomic int *p)
{
  int level = atomic_load (p);
  while (level < 2 && !atomic_compare_exchange_weak (p, &level, level + 1))
    ;
}

void
pallet_cancel_trigger (struct pallet_cancel *c)
{
  if (c)
    raise_level (&c->level);
}

int
pallet_cancel_level (const struct pallet_cancel *c)
{
  return c ? atomic_load (&c->level) : 0;
}

void
pallet_cancel_free (struct pallet_cancel *c)
{
  free (c);
}

int
Pallet_cancel_seen (const struct pallet_cancel *a, const struct pallet_cancel *b)
{
  int level = atomic_load (&Pallet_cancel_level);
  int la = pallet_cancel_level (a), lb = pallet_cancel_level (b);
  if (la > level)
    level = la;
  return lb > level ? lb : level;
}

void
pallet_cancel (void)
{
  raise_level (&Pallet_cancel_level);
}

int
pallet_cancel_requested (void)
{
  return Pallet_cancel_level > 0;
}

void
pallet_cancel_reset (void)
{
  Pallet_cancel_level = 0;
}

static void
on_signal (int sig)
{
  (void) sig;
  pallet_cancel ();
}

void
pallet_install_signal_handlers (void)
{
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
}
