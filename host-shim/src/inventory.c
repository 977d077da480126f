/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_inventory(): the inventory op with the query applied by the host,
 * streaming items to the caller as the provider emits them. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#ifdef HAVE_PALLET_QUERY
#include "pallet-query.h"
#endif

struct held {
  json_t *item;
  size_t index; /* emit order: ties keep it */
};

struct inv {
  struct Pallet_sink *sink;
  const struct pallet_query *q; /* NULL: pass everything through */
  long long limit;              /* -1: none */
  int ordered;
  size_t seen, reported;
  struct held *held; /* ordered: a max-heap when limit >= 0 */
  size_t n_held, cap_held;
};

static void
report (struct inv *s, const char *text, json_t *j)
{
  char *shown = NULL;
#ifdef HAVE_PALLET_QUERY
  /* A select clause shows only the fields it names. */
  if (s->q && j && pallet_query_has_select (s->q)) {
    json_t *p = pallet_query_project (s->q, j);
    shown = p ? json_dumps (p, JSON_COMPACT) : NULL;
    json_decref (p);
    if (shown)
      text = shown;
  }
#else
  (void) j;
#endif
  struct pallet_event ev = { .type = PALLET_EVENT_ITEM, .what = "item", .json = text };
  Pallet_sink_emit (s->sink, &ev, NULL);
  s->reported++;
  free (shown);
}

#ifdef HAVE_PALLET_QUERY
/* <0 if a goes before b in the output. */
static int
cmp_held (const struct inv *s, const struct held *a, const struct held *b)
{
  int r = pallet_query_compare (s->q, a->item, b->item);
  if (r)
    return r;
  return a->index < b->index ? -1 : a->index > b->index;
}

static int
cmp_held_r (const void *x, const void *y, void *arg)
{
  return cmp_held (arg, x, y);
}

static void
swap (struct held *a, struct held *b)
{
  struct held t = *a;
  *a = *b;
  *b = t;
}

/* The heap's top is the item that would come last: the one to evict. */
static void
sift_up (struct inv *s, size_t i)
{
  while (i > 0 && cmp_held (s, &s->held[(i - 1) / 2], &s->held[i]) < 0) {
    swap (&s->held[(i - 1) / 2], &s->held[i]);
    i = (i - 1) / 2;
  }
}

static void
sift_down (struct inv *s, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->n_held && cmp_held (s, &s->held[l], &s->held[m]) > 0)
      m = l;
    if (r < s->n_held && cmp_held (s, &s->held[r], &s->held[m]) > 0)
      m = r;
    if (m == i)
      return;
    swap (&s->held[i], &s->held[m]);
    i = m;
  }
}

/* Keeps j for the ordered output: all of them without a limit, the limit
 * first in a bounded heap with one. */
static int
hold (struct inv *s, json_t *j)
{
  struct held h = { j, s->seen };
  if (s->limit >= 0 && s->n_held == (size_t) s->limit) {
    if (s->n_held == 0 || cmp_held (s, &h, &s->held[0]) >= 0)
      return 0;
    json_decref (s->held[0].item);
    s->held[0] = h;
    json_incref (j);
    sift_down (s, 0);
    return 0;
  }
  if (s->n_held == s->cap_held) {
    size_t cap = s->cap_held ? s->cap_held * 2 : 64;
    struct held *n = realloc (s->held, cap * sizeof *n);
    if (n == NULL)
      return -1;
    s->held = n;
    s->cap_held = cap;
  }
  s->held[s->n_held++] = h;
  json_incref (j);
  if (s->limit >= 0)
    sift_up (s, s->n_held - 1);
  return 0;
}
#endif

/* Runs under the call's lock, for each item the provider emits. */
static int
on_item (void *opaque, const char *text, json_t *j)
{
  struct inv *s = opaque;
  s->seen++;
#ifdef HAVE_PALLET_QUERY
  if (s->q && !pallet_query_match (s->q, j))
    return 0;
  if (s->ordered)
    return hold (s, j);
#else
  (void) j;
#endif
  if (s->limit < 0 || s->reported < (unsigned long long) s->limit)
    report (s, text, j);
  return 0;
}

/* The ordered output, once the op has returned OK. */
static void
flush_held (struct inv *s)
{
#ifdef HAVE_PALLET_QUERY
  if (s->n_held > 1)
    qsort_r (s->held, s->n_held, sizeof *s->held, cmp_held_r, s);
#endif
  for (size_t i = 0; i < s->n_held; i++) {
    char *t = json_dumps (s->held[i].item, JSON_COMPACT | JSON_ENCODE_ANY);
    if (t)
      report (s, t, s->held[i].item);
    free (t);
  }
}

static char *
inventory_input (const struct pallet_inventory_options *o)
{
  json_t *in = json_pack ("{s:s}", "kind", o->kind);
  /* Absent, never null: providers unpack "query" as a string. */
  if (in && o->query && *o->query)
    json_object_set_new (in, "query", json_string (o->query));
  char *text = in ? json_dumps (in, JSON_COMPACT) : NULL;
  json_decref (in);
  return text;
}

static int
run_inventory (struct pallet_session *s, const struct pallet_inventory_options *o, struct inv *st)
{
  char *input = inventory_input (o);
  if (input == NULL) {
    Pallet_seterr ("inventory: out of memory");
    return PALLET_E_NOMEM;
  }
  struct Pallet_call_opts co = {
    .sink = st->sink, .item = on_item, .item_opaque = st, .cancel = o->cancel
  };
  struct pallet_call_result r;
  int status = Pallet_call_op (s, PALLET_OP_INVENTORY, NULL, input, &co, &r);
  free (input);
  if (status == PALLET_OK) {
    flush_held (st);
#ifdef HAVE_PALLET_QUERY
    /* A field no item had is a typo, not an empty result. */
    char *ferr = NULL;
    if (st->q && pallet_query_check_fields (st->q, &ferr) != 0) {
      Pallet_seterr ("%s", ferr ? ferr : "query: unknown field");
      Pallet_set_origin (PALLET_ORIGIN_HOST);
      status = PALLET_E_INVALID;
    }
    free (ferr);
#endif
  }
  else {
    Pallet_seterr ("inventory %s: %s", o->kind, r.error ? r.error : pallet_strerror (status));
    Pallet_set_origin (PALLET_ORIGIN_PROVIDER);
  }
  pallet_call_result_free (&r);
  return status;
}

int
pallet_inventory (struct pallet_session *s, const struct pallet_inventory_options *opts)
{
  Pallet_clearerr ();
  struct pallet_inventory_options o;
  if (Pallet_options_copy (&o, sizeof o, opts, "pallet_inventory_options") != 0)
    return PALLET_E_INVALID;
  if (s == NULL || o.kind == NULL || *o.kind == '\0') {
    Pallet_seterr ("inventory: no kind given: set the kind of object to "
                   "list (e.g. \"instances\")");
    return PALLET_E_INVALID;
  }
  struct Pallet_sink sink;
  Pallet_sink_init (&sink, o.on_event, o.opaque);
  struct inv st = { .sink = &sink, .limit = -1 };
  int pushed = (pallet_module_vtable (s->m)->capabilities & PALLET_CAP_INVENTORY_QUERY) != 0;
  int status;
#ifdef HAVE_PALLET_QUERY
  char *qerr = NULL;
  struct pallet_query *q = pallet_query_compile (o.query, &qerr);
  if (q == NULL) {
    Pallet_seterr ("%s", qerr ? qerr : "query: cannot compile");
    free (qerr);
    Pallet_sink_destroy (&sink);
    return PALLET_E_INVALID;
  }
  if (!pushed) {
    st.q = q;
    st.limit = pallet_query_limit (q);
    st.ordered = pallet_query_has_order (q);
  }
#else
  if (o.query && *o.query && !pushed) {
    Pallet_seterr ("query '%s': this libpallet-host was built without query "
                   "support (PALLET_WITH_QUERY=OFF)",
                   o.query);
    Pallet_sink_destroy (&sink);
    return PALLET_E_INVALID;
  }
#endif
  struct Pallet_sink *outer = Pallet_sink_current ();
  Pallet_sink_set_current (&sink);
  status = run_inventory (s, &o, &st);
  Pallet_sink_set_current (outer);
  for (size_t i = 0; i < st.n_held; i++)
    json_decref (st.held[i].item);
  free (st.held);
#ifdef HAVE_PALLET_QUERY
  pallet_query_free (q);
#endif
  Pallet_sink_destroy (&sink);
  return status;
}
