/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-provider-stress: calls every host service from threads it starts,
 * to prove the real host's services are thread-safe.
 *
 * Settings: "threads" (8), "items" (2000 per thread).  inventory emits
 * {"id":"t<T>-<I>","t":T,"n":I} items; validate emits as many findings;
 * transfer emits state and retry-afters and returns OK.  Every thread
 * also reports progress, logs, and sets errors that the op's OK return
 * supersedes.  The input "query", when present, must be a string: the
 * provider fails on a null one, as a provider written from the op page
 * would. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pallet/provider.h>

struct stress {
  int threads, items;
};

struct job {
  struct pallet_call *call;
  int t, items, kind;
  int failed;
};

static void *
stress_open (struct pallet_call *call, const char *config)
{
  json_t *c = json_loads (config, 0, NULL);
  json_t *s = json_object_get (c, "settings");
  struct stress *h = calloc (1, sizeof *h);
  if (h) {
    h->threads = (int) json_integer_value (json_object_get (s, "threads"));
    h->items = (int) json_integer_value (json_object_get (s, "items"));
    if (h->threads <= 0 || h->threads > 64)
      h->threads = 8;
    if (h->items <= 0)
      h->items = 2000;
  }
  else
    pallet_error (call, PALLET_E_NOMEM, "out of memory");
  json_decref (c);
  return h;
}

static void
stress_close (void *h)
{
  free (h);
}

static void *
worker (void *arg)
{
  struct job *j = arg;
  char buf[160];
  for (int i = 0; i < j->items; i++) {
    if (j->kind == PALLET_EMIT_STATE)
      snprintf (buf, sizeof buf, "{\"thread\":%d,\"done\":%d}", j->t, i);
    else
      snprintf (buf, sizeof buf,
                "{\"id\":\"t%d-%d\",\"t\":%d,\"n\":%d,"
                "\"field\":\"vm.id\",\"severity\":\"Warning\"}",
                j->t, i, j->t, i);
    if (pallet_emit (j->call, j->kind, buf) != 0)
      j->failed = 1;
    if (i % 100 == 0) {
      pallet_progress (j->call, NULL, NULL, (uint64_t) i, (uint64_t) j->items, "items");
      pallet_log (j->call, PALLET_LOG_DEBUG, "thread %d at %d", j->t, i);
      pallet_error (j->call, PALLET_E_TRANSIENT,
                    "thread %d: a passing "
                    "error at %d",
                    j->t, i);
      pallet_retry_after (j->call, (uint32_t) i);
      (void) pallet_cancelled (j->call);
      (void) j->call->host->get_param (j->call, "work.dir");
    }
  }
  return NULL;
}

/* Runs the threads; PALLET_OK if every emit was accepted. */
static int
fan_out (struct stress *h, struct pallet_call *call, int kind)
{
  pthread_t th[64];
  struct job jobs[64];
  int started = 0, failed = 0;
  for (int t = 0; t < h->threads; t++) {
    jobs[t] = (struct job){ call, t, h->items, kind, 0 };
    if (pthread_create (&th[t], NULL, worker, &jobs[t]) == 0)
      started++;
    else
      break;
  }
  for (int t = 0; t < started; t++) {
    pthread_join (th[t], NULL);
    failed |= jobs[t].failed;
  }
  if (started < h->threads) {
    pallet_error (call, PALLET_E_NOMEM, "cannot start threads");
    return PALLET_E_NOMEM;
  }
  if (failed) {
    pallet_error (call, PALLET_E_IO, "the host refused an emit");
    return PALLET_E_IO;
  }
  return PALLET_OK;
}

static int
stress_inventory (void *handle, struct pallet_call *call, const char *input)
{
  json_t *in = json_loads (input, 0, NULL);
  json_t *q = json_object_get (in, "query");
  int bad = q != NULL && !json_is_string (q);
  json_decref (in);
  if (bad) {
    pallet_error (call, PALLET_E_INVALID,
                  "input: \"query\" must be a string "
                  "or absent");
    return PALLET_E_INVALID;
  }
  return fan_out (handle, call, PALLET_EMIT_ITEM);
}

static int
stress_validate (void *handle, struct pallet_call *call, const char *input)
{
  (void) input;
  return fan_out (handle, call, PALLET_EMIT_ITEM);
}

static int
stress_transfer (void *handle, struct pallet_call *call, const char *input)
{
  (void) input;
  return fan_out (handle, call, PALLET_EMIT_STATE);
}

static int
stress_ok (void *handle, struct pallet_call *call, const char *input)
{
  (void) handle;
  (void) call;
  (void) input;
  return PALLET_OK;
}

PALLET_PROVIDER_DEFINE (stress_provider, .name = "stress", .version = "1.0.0",
                        .description = "calls every host service from 8 threads (host tests)",
                        .thread_model = PALLET_THREAD_MODEL_PARALLEL, .cancel_bound_ms = 100,
                        .capabilities = PALLET_CAP_COLD_MIGRATION | PALLET_CAP_COPY,
                        .open = stress_open, .close = stress_close, .validate = stress_validate,
                        .inventory = stress_inventory, .transfer = stress_transfer,
                        .build_vm = stress_ok, .cleanup = stress_ok);
