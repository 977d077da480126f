/* SPDX-License-Identifier: Apache-2.0 */
/* The mock host: a struct pallet_host whose services record what the
 * provider does with them, so the checks can judge it afterwards. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

double
pc_elapsed_ms (const struct timespec *since)
{
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  return (double) (now.tv_sec - since->tv_sec) * 1000.0
         + (double) (now.tv_nsec - since->tv_nsec) / 1e6;
}

unsigned pc_stale_uses;
char pc_state_dir[PC_DIR_MAX], pc_work_dir[PC_DIR_MAX];
static pthread_mutex_t stale_lock = PTHREAD_MUTEX_INITIALIZER;

/* The provider owns nothing we give it; a bad pointer means it kept a
 * call past its end or invented one.  Like the real host, every service
 * takes the call's lock: providers may call them from their own threads. */
static struct pc_call *
get (struct pallet_call *call)
{
  struct pc_call *c = (struct pc_call *) call;
  if (call == NULL)
    return NULL;
  if (c->magic == PC_CALL_ENDED) {
    pthread_mutex_lock (&stale_lock);
    pc_stale_uses++;
    pthread_mutex_unlock (&stale_lock);
    return NULL;
  }
  if (c->magic != PC_CALL_MAGIC)
    return NULL;
  return c;
}

/* Appends under the call's lock, at most PC_MAX_RECORDS entries. */
static void
record (struct pc_call *c, json_t *list, json_t *entry)
{
  pthread_mutex_lock (&c->lock);
  if (json_array_size (list) < PC_MAX_RECORDS)
    json_array_append (list, entry);
  pthread_mutex_unlock (&c->lock);
  json_decref (entry);
}

static void
mh_log (struct pallet_call *call, int level, const char *fmt, ...)
{
  struct pc_call *c = get (call);
  char *msg = NULL;
  va_list ap;
  if (c == NULL || fmt == NULL)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    return;
  if (pc.verbose)
    fprintf (stderr, "  [provider log %d] %s: %s\n", level, c->op, msg);
  record (c, c->logs, pc_text (msg));
  free (msg);
}

static void
mh_progress (struct pallet_call *call, const char *vm, const char *step, uint64_t done,
             uint64_t total, const char *unit)
{
  struct pc_call *c = get (call);
  if (c == NULL)
    return;
  record (c, c->progress,
          json_pack ("[s s I I s]", vm ? vm : "", step ? step : c->op, (json_int_t) done,
                     (json_int_t) total, unit ? unit : ""));
}

static int
mh_cancelled (struct pallet_call *call)
{
  struct pc_call *c = get (call);
  int r = 0;
  if (c == NULL)
    return 0;
  pthread_mutex_lock (&c->lock);
  c->cancel_polls++;
  if (c->cancel && pc_elapsed_ms (&c->start) >= (double) c->cancel_after_ms)
    r = 1;
  pthread_mutex_unlock (&c->lock);
  return r;
}

static void
mh_error (struct pallet_call *call, int code, const char *fmt, ...)
{
  struct pc_call *c = get (call);
  char *msg = NULL;
  va_list ap;
  if (c == NULL)
    return;
  if (fmt != NULL) {
    va_start (ap, fmt);
    if (vasprintf (&msg, fmt, ap) < 0)
      msg = NULL;
    va_end (ap);
  }
  if (msg)
    record (c, c->logs, pc_text (msg));
  pthread_mutex_lock (&c->lock);
  c->error_called = true;
  c->error_code = code;
  free (c->error_msg);
  c->error_msg = msg;
  pthread_mutex_unlock (&c->lock);
  if (pc.verbose)
    fprintf (stderr, "  [provider error %d] %s: %s\n", code, c->op, msg ? msg : "(null)");
}

static int
mh_emit (struct pallet_call *call, int kind, const char *json)
{
  struct pc_call *c = get (call);
  json_t *rec, *value = NULL;
  json_error_t err;
  int r = 0;
  if (c == NULL)
    return -1;
  if (json == NULL)
    rec = json_pack ("{si ss}", "kind", kind, "invalid", "the text is NULL");
  else {
    /* Strings only: text is what crosses the boundary. */
    value = json_loads (json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (value == NULL) {
      char *why = NULL;
      if (asprintf (&why, "%s (line %d, column %d)", err.text, err.line, err.column) < 0)
        why = NULL;
      rec = json_pack ("{si ss}", "kind", kind, "invalid", why ? why : "not valid JSON");
      free (why);
    }
    else
      rec = json_pack ("{si so}", "kind", kind, "value", value);
  }
  if (rec == NULL || json_object_get (rec, "invalid"))
    r = -1;
  pthread_mutex_lock (&c->lock);
  if (rec)
    json_array_append_new (c->emits, rec);
  pthread_mutex_unlock (&c->lock);
  return r;
}

static void
mh_retry_after (struct pallet_call *call, uint32_t ms)
{
  struct pc_call *c = get (call);
  if (c == NULL)
    return;
  pthread_mutex_lock (&c->lock);
  c->retry_called = true;
  c->retry_ms = ms;
  pthread_mutex_unlock (&c->lock);
}

/* As the real host: the directories exist only in sessions that migrate
 * or clean up; validate and inventory on their own get NULL. */
static const char *
mh_get_param (struct pallet_call *call, const char *key)
{
  struct pc_call *c = get (call);
  if (c == NULL || key == NULL)
    return NULL;
  if (strcmp (key, "host.name") == 0)
    return "pallet-conformance";
  if (strcmp (key, "host.version") == 0)
    return PALLET_CONFORMANCE_VERSION;
  if (strcmp (key, "state.dir") == 0)
    return c->dirs && pc_state_dir[0] ? pc_state_dir : NULL;
  if (strcmp (key, "work.dir") == 0)
    return c->dirs && pc_work_dir[0] ? pc_work_dir : NULL;
  return NULL;
}

const struct pallet_host pc_host = {
  .abi_major = PALLET_ABI_MAJOR,
  .abi_minor = PALLET_ABI_MINOR,
  .struct_size = sizeof (struct pallet_host),
  .log = mh_log,
  .progress = mh_progress,
  .cancelled = mh_cancelled,
  .error = mh_error,
  .emit = mh_emit,
  .retry_after = mh_retry_after,
  .get_param = mh_get_param,
};

void
pc_call_init (struct pc_call *c, const char *op)
{
  memset (c, 0, sizeof *c);
  c->call.host = &pc_host;
  c->call._host_private = c;
  c->magic = PC_CALL_MAGIC;
  c->op = op;
  pthread_mutex_init (&c->lock, NULL);
  c->emits = json_array ();
  c->progress = json_array ();
  c->logs = json_array ();
  clock_gettime (CLOCK_MONOTONIC, &c->start);
}

void
pc_call_free (struct pc_call *c)
{
  free (c->error_msg);
  json_decref (c->emits);
  json_decref (c->progress);
  json_decref (c->logs);
  pthread_mutex_destroy (&c->lock);
  c->magic = 0;
}

/* Ended calls stay reachable from here (the child exits without freeing
 * them; memcheck need not call them lost). */
static struct pc_call *ended;

void
pc_call_end (struct pc_call *c)
{
  pc_call_free (c);
  c->magic = PC_CALL_ENDED;
  pthread_mutex_lock (&stale_lock);
  c->next_ended = ended;
  ended = c;
  pthread_mutex_unlock (&stale_lock);
}

/* A JSON string of s, with bytes that are not UTF-8 replaced. */
json_t *
pc_text (const char *s)
{
  json_t *j;
  char *copy;
  if (s == NULL)
    return json_string ("");
  if ((j = json_string (s)) != NULL)
    return j;
  copy = strdup (s);
  if (copy == NULL)
    return json_string ("");
  for (char *p = copy; *p; p++)
    if ((unsigned char) *p >= 0x80)
      *p = '?';
  j = json_string (copy);
  free (copy);
  return j;
}

json_t *
pc_call_report (struct pc_call *c, int status)
{
  json_t *r = json_object ();
  json_object_set_new (r, "status", json_integer (status));
  json_object_set_new (r, "elapsed_ms", json_real (pc_elapsed_ms (&c->start)));
  if (c->error_called)
    json_object_set_new (
        r, "error",
        json_pack ("{si so}", "code", c->error_code, "message", pc_text (c->error_msg)));
  else
    json_object_set_new (r, "error", json_null ());
  json_object_set_new (r, "retry_after",
                       c->retry_called ? json_integer (c->retry_ms) : json_null ());
  json_object_set (r, "emits", c->emits);
  json_object_set_new (r, "cancel_polls", json_integer (c->cancel_polls));
  json_object_set (r, "progress", c->progress);
  json_object_set (r, "logs", c->logs);
  return r;
}
