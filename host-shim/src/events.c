/* SPDX-License-Identifier: Apache-2.0 */
/* Events: the library's only way to say anything (it never prints). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct Pallet_sink global = {
  .mu = PTHREAD_MUTEX_INITIALIZER,
};
static _Thread_local struct Pallet_sink *current;

void
pallet_set_event_handler (pallet_event_fn *fn, void *opaque)
{
  pthread_mutex_lock (&global.mu);
  global.fn = fn;
  global.opaque = opaque;
  pthread_mutex_unlock (&global.mu);
}

const char *
pallet_log_level_name (int level)
{
  switch (level) {
  case PALLET_LOG_ERROR: return "error";
  case PALLET_LOG_WARNING: return "warning";
  case PALLET_LOG_INFO: return "info";
  default: return "debug";
  }
}

void
Pallet_sink_init (struct Pallet_sink *k, pallet_event_fn *fn, void *opaque)
{
  k->fn = fn;
  k->opaque = opaque;
  pthread_mutex_init (&k->mu, NULL);
}

void
Pallet_sink_destroy (struct Pallet_sink *k)
{
  pthread_mutex_destroy (&k->mu);
}

void
Pallet_sink_emit (struct Pallet_sink *k, struct pallet_event *ev, json_t *j)
{
  if (k == NULL)
    k = &global;
  /* Nobody listens: spare the serialization. */
  pthread_mutex_lock (&k->mu);
  if (k->fn == NULL) {
    pthread_mutex_unlock (&k->mu);
    return;
  }
  ev->struct_size = sizeof *ev;
  char *text = NULL;
  if (j) {
    if (ev->what == NULL)
      ev->what = json_string_value (json_object_get (j, "event"));
    text = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY);
    ev->json = text;
  }
  if (j == NULL || text)
    k->fn (ev, k->opaque);
  pthread_mutex_unlock (&k->mu);
  free (text);
}

void
Pallet_sink_set_current (struct Pallet_sink *k)
{
  current = k;
}

struct Pallet_sink *
Pallet_sink_current (void)
{
  return current;
}

void
Pallet_log_line (struct Pallet_sink *k, int level, const char *vm, const char *step,
                 const char *line)
{
  struct pallet_event ev = {
    .type = PALLET_EVENT_LOG, .level = level, .what = "log", .vm = vm, .step = step, .message = line
  };
  Pallet_sink_emit (k, &ev, NULL);
}

void
Pallet_log (int level, const char *fmt, ...)
{
  if (level > pallet_get_log_level ())
    return;
  char buf[4096];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  Pallet_log_line (current, level, NULL, NULL, buf);
}

int
Pallet_options_copy (void *dst, size_t dst_size, const void *src, const char *what)
{
  memset (dst, 0, dst_size);
  if (src == NULL) {
    *(uint64_t *) dst = dst_size;
    return 0;
  }
  uint64_t n = *(const uint64_t *) src;
  /* Options structs stay small: a huge size is garbage, and reading that
   * far past the caller's struct could fault. */
  if (n < sizeof (uint64_t) || n > 4096) {
    Pallet_seterr ("%s: struct_size %llu is not the size of an options "
                   "struct: set it to sizeof (struct %s) (the _INIT macro "
                   "does)",
                   what, (unsigned long long) n, what);
    return -1;
  }
  for (uint64_t i = dst_size; i < n; i++)
    if (((const unsigned char *) src)[i] != 0) {
      Pallet_seterr ("%s: struct_size %llu is larger than this library's "
                     "%zu and sets fields it does not know: link a newer "
                     "libpallet-host",
                     what, (unsigned long long) n, dst_size);
      return -1;
    }
  memcpy (dst, src, n < dst_size ? n : dst_size);
  *(uint64_t *) dst = dst_size;
  return 0;
}

void
pallet_migrate_options_init_size (struct pallet_migrate_options *o, size_t size)
{
  if (size < sizeof (uint64_t))
    return; /* not even struct_size fits */
  /* A size the calls refuse (garbage) is left for them to report. */
  if (size <= 4096)
    memset (o, 0, size);
  o->struct_size = size;
}

/* The ABI 1.0 symbol: its callers' struct ends after cancel, whatever
 * this library's header says; newer callers get the macro. */
void (pallet_migrate_options_init) (struct pallet_migrate_options *o)
{
  pallet_migrate_options_init_size (o, PALLET_MIGRATE_OPTIONS_SIZE_1_0);
}

void
pallet_inventory_options_init (struct pallet_inventory_options *o)
{
  memset (o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}
