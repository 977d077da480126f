/* SPDX-License-Identifier: Apache-2.0 */
/* threads: calls from several threads, as far as the declared thread model
 * allows, give what the same calls give one at a time.
 *   SERIALIZE_ALL:        one shared session, calls from several threads,
 *                         never two at once (the suite holds a lock);
 *   SERIALIZE_PER_HANDLE: one session per thread, calls at once;
 *   PARALLEL:             one shared session, calls at once.
 * Only ops that change nothing in the world run: validate, inventory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"

#define THREADS 4
#define ROUNDS  3

struct tcase {
  enum pc_op op;
  char *input;
  json_t *expect; /* {"status", "emits"} of the serial call */
};

struct tshared {
  struct tcase cases[8];
  size_t ncases;
  void *handle;         /* shared session (not PER_HANDLE) */
  pthread_mutex_t lock; /* SERIALIZE_ALL */
};

struct tthread {
  struct tshared *sh;
  unsigned idx;
  json_t *problems;
};

static json_t *
call_once (void *h, enum pc_op op, const char *input)
{
  struct pc_call c;
  json_t *r;
  int st;
  pc_call_init (&c, pc_op_names[op]);
  st = pc_op_fn (op) (h, &c.call, input);
  r = json_pack ("{si sO}", "status", st, "emits", c.emits);
  pc_call_free (&c);
  return r;
}

static void *
worker (void *arg)
{
  struct tthread *t = arg;
  struct tshared *sh = t->sh;
  void *h = sh->handle;
  int model = pc.vt.thread_model;

  if (model == PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE) {
    struct pc_call c;
    pc_call_init (&c, "open");
    h = pc.vt.open (&c.call, pc.fx.config_text);
    pc_call_free (&c);
    if (h == NULL) {
      json_array_append_new (t->problems, json_string ("open on a worker thread failed"));
      return NULL;
    }
  }
  for (unsigned round = 0; round < ROUNDS; round++)
    for (size_t k = 0; k < sh->ncases; k++) {
      /* Each thread starts at a different case, so different ops overlap. */
      struct tcase *tc = &sh->cases[(k + t->idx) % sh->ncases];
      json_t *r;
      if (model == PALLET_THREAD_MODEL_SERIALIZE_ALL)
        pthread_mutex_lock (&sh->lock);
      r = call_once (h, tc->op, tc->input);
      if (model == PALLET_THREAD_MODEL_SERIALIZE_ALL)
        pthread_mutex_unlock (&sh->lock);
      if (!json_equal (r, tc->expect)) {
        char *a = json_dumps (tc->expect, JSON_COMPACT);
        char *b = json_dumps (r, JSON_COMPACT);
        char *msg = NULL;
        if (asprintf (&msg,
                      "%s on thread %u: %.200s; called alone it gave "
                      "%.200s",
                      pc_op_names[tc->op], t->idx, b ? b : "?", a ? a : "?")
            >= 0)
          json_array_append_new (t->problems, pc_text (msg));
        free (msg);
        free (a);
        free (b);
      }
      json_decref (r);
    }
  if (model == PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE)
    pc.vt.close (h);
  return NULL;
}

static json_t *
threads_child (void *arg)
{
  struct tshared sh;
  struct tthread th[THREADS];
  pthread_t tid[THREADS];
  struct pc_call c;
  json_t *problems = json_array ();
  (void) arg;

  memset (&sh, 0, sizeof sh);
  pthread_mutex_init (&sh.lock, NULL);
  if (pc_op_present (PC_OP_VALIDATE))
    for (size_t i = 0; i < json_array_size (pc.fx.vms) && sh.ncases < 4; i++) {
      sh.cases[sh.ncases].op = PC_OP_VALIDATE;
      sh.cases[sh.ncases++].input = pc_vm_input (pc_vm (i), NULL, "conformance-threads");
    }
  if (pc_op_present (PC_OP_INVENTORY))
    for (size_t k = 0; k < json_array_size (pc.fx.inventory_kinds) && sh.ncases < 8; k++) {
      sh.cases[sh.ncases].op = PC_OP_INVENTORY;
      sh.cases[sh.ncases++].input = pc_inventory_input (k);
    }

  pc_call_init (&c, "open");
  sh.handle = pc.vt.open (&c.call, pc.fx.config_text);
  if (sh.handle == NULL) {
    json_t *r = json_pack ("{so}", "open_failed", pc_text (c.error_msg ? c.error_msg : "NULL"));
    pc_call_free (&c);
    for (size_t k = 0; k < sh.ncases; k++)
      free (sh.cases[k].input);
    json_decref (problems);
    return r;
  }
  pc_call_free (&c);
  /* What each call gives alone. */
  for (size_t k = 0; k < sh.ncases; k++)
    sh.cases[k].expect = call_once (sh.handle, sh.cases[k].op, sh.cases[k].input);
  if (pc.vt.thread_model == PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE) {
    pc.vt.close (sh.handle);
    sh.handle = NULL;
  }
  for (unsigned i = 0; i < THREADS; i++) {
    th[i] = (struct tthread){ .sh = &sh, .idx = i, .problems = json_array () };
    if (pthread_create (&tid[i], NULL, worker, &th[i]) != 0) {
      json_array_append_new (problems, json_string ("pthread_create failed"));
      json_decref (th[i].problems);
      th[i].problems = NULL;
    }
  }
  for (unsigned i = 0; i < THREADS; i++)
    if (th[i].problems) {
      pthread_join (tid[i], NULL);
      json_array_extend (problems, th[i].problems);
      json_decref (th[i].problems);
    }
  if (sh.handle)
    pc.vt.close (sh.handle);
  for (size_t k = 0; k < sh.ncases; k++) {
    free (sh.cases[k].input);
    json_decref (sh.cases[k].expect);
  }
  pthread_mutex_destroy (&sh.lock);
  return json_pack ("{so si}", "problems", problems, "cases", (int) sh.ncases);
}

void
pc_check_threads (void)
{
  static const char *const models[] = { "SERIALIZE_ALL", "SERIALIZE_PER_HANDLE", "PARALLEL" };
  static const char rule[] = "calls from several threads, as the declared "
                             "thread model allows, behave as the same calls made one at a time";
  json_t *r, *p;
  size_t i;

  if (pc.vt.thread_model < 0 || pc.vt.thread_model > 2) {
    PC_FAIL ("threads", "thread_model is one of enum pallet_thread_model",
             "thread_model is %d: cannot tell which calls may overlap", pc.vt.thread_model);
    return;
  }
  if (!pc_op_present (PC_OP_OPEN)) {
    PC_FAIL ("threads", "the provider has ops to call", "open or close is NULL");
    return;
  }
  r = pc_in_child (threads_child, NULL, 0);
  const char *first = pc_root_cause_seen ("crash:");
  if (first == NULL)
    first = pc_root_cause_seen ("input:");
  if (json_object_get (r, "problems") == NULL && first && !json_object_get (r, "open_failed"))
    pc_blocked_by ("threads", first);
  else if ((p = json_object_get (r, "problems")) == NULL) {
    char *d = pc_describe (r);
    PC_FAIL ("threads",
             json_object_get (r, "open_failed") ? "open accepts the fixture's config" : rule,
             "%d threads (%s) calling validate and inventory: %s", THREADS,
             models[pc.vt.thread_model], d ? d : "?");
    free (d);
  }
  else {
    for (i = 0; i < json_array_size (p) && i < 5; i++)
      PC_FAIL ("threads", rule, "%s: %s", models[pc.vt.thread_model],
               json_string_value (json_array_get (p, i)));
    if (json_array_size (p) > 5)
      pc_note ("threads", "%zu more differences", json_array_size (p) - 5);
    if (json_integer_value (json_object_get (r, "cases")) == 0)
      pc_note ("threads", "neither validate nor inventory is present");
  }
  json_decref (r);
}
