/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query: evaluation of a compiled query against JSON items, with
 * TSL's semantics: an operator whose left side is an array applies to each
 * element, any()/all() reduce the result, [*] and a key after an array
 * traverse every element. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query-internal.h"

static json_t *walk (const struct node *n, size_t i, const json_t *v);

/* Every element of the array v through the rest of the path, flattened. */
static json_t *
walk_all (const struct node *n, size_t i, const json_t *v)
{
  json_t *out = json_array ();
  size_t k;
  json_t *e;
  json_array_foreach ((json_t *) v, k, e) {
    json_t *r = walk (n, i, e);
    if (r == NULL || json_is_null (r))
      ;
    else if (json_is_array (r))
      json_array_extend (out, r);
    else
      json_array_append (out, r);
    json_decref (r);
  }
  return out;
}

/* A key missing from an object may be a key with dots in it, as tag keys
 * are (label.kubernetes.io/cluster): try the next segments joined. */
static json_t *
dotted_key (const struct node *n, size_t *i, const json_t *v)
{
  size_t len = strlen (n->segs[*i].key);
  char *k = strdup (n->segs[*i].key);
  for (size_t j = *i + 1; k && j < n->nsegs && n->segs[j].kind == SEG_KEY; ++j) {
    size_t add = strlen (n->segs[j].key);
    char *nk = realloc (k, len + add + 2);
    if (!nk)
      break;
    k = nk;
    k[len] = '.';
    memcpy (k + len + 1, n->segs[j].key, add + 1);
    len += add + 1;
    json_t *r = json_object_get (v, k);
    if (r) {
      free (k);
      *i = j;
      return r;
    }
  }
  free (k);
  return NULL;
}

static json_t *
walk (const struct node *n, size_t i, const json_t *v)
{
  for (; v && i < n->nsegs; ++i) {
    const struct path_seg *s = &n->segs[i];
    if (s->kind == SEG_ALL)
      return json_is_array (v) ? walk_all (n, i + 1, v) : NULL;
    if (s->kind == SEG_INDEX) {
      v = json_is_array (v) ? json_array_get (v, s->index) : NULL;
      continue;
    }
    if (json_is_array (v) && i > 0)
      return walk_all (n, i, v); /* implicit [*] */
    if (!json_is_object (v))
      return NULL;
    const json_t *r = json_object_get (v, s->key);
    v = r ? r : dotted_key (n, &i, v);
  }
  return v ? json_incref ((json_t *) v) : NULL;
}

json_t *
Pallet_query_resolve (const struct node *n, const json_t *item)
{
  return walk (n, 0, item);
}

static int
is_null (const json_t *v)
{
  return v == NULL || json_is_null (v);
}

/* -1, 0, 1, or 2 when the values cannot be compared. */
static int
compare (const json_t *a, const json_t *b)
{
  if (json_is_number (a) && json_is_number (b)) {
    if (json_is_integer (a) && json_is_integer (b)) {
      json_int_t x = json_integer_value (a), y = json_integer_value (b);
      return x < y ? -1 : x > y;
    }
    double x = json_number_value (a), y = json_number_value (b);
    return x < y ? -1 : x > y;
  }
  if (json_is_string (a) && json_is_string (b)) {
    int r = strcmp (json_string_value (a), json_string_value (b));
    return r < 0 ? -1 : r > 0;
  }
  if (json_is_boolean (a) && json_is_boolean (b))
    return json_is_true (a) - json_is_true (b);
  return 2;
}

static int
equal (const json_t *a, const json_t *b)
{
  return compare (a, b) == 0 || json_equal ((json_t *) a, (json_t *) b);
}

/* SQL LIKE: % any run, _ one character (a UTF-8 character).  Iterative
 * with one backtrack point, so it cannot recurse. */
static int
like (const char *s, const char *pat, int fold)
{
  const char *star_p = NULL, *star_s = NULL;

#define CONT(c) (((unsigned char) (c) &0xC0) == 0x80)
#define EQ(x, y) \
  (fold ? tolower ((unsigned char) (x)) == tolower ((unsigned char) (y)) : (x) == (y))
  while (*s) {
    if (*pat == '%') {
      star_p = ++pat;
      star_s = s;
    }
    else if (*pat == '_') {
      ++pat;
      ++s;
      while (CONT (*s))
        ++s;
    }
    else if (*pat && EQ (*pat, *s)) {
      ++pat;
      ++s;
    }
    else if (star_p) {
      pat = star_p;
      s = ++star_s;
      while (CONT (*s))
        s = ++star_s;
    }
    else
      return 0;
  }
  while (*pat == '%')
    ++pat;
  return *pat == '\0';
#undef CONT
#undef EQ
}

static int
in_list (const struct node *n, const json_t *a, const json_t *list)
{
  int r = 0;
  if (!json_is_array (list))
    return 0;
  /* A missing or null value is only in a list holding null, and never
   * 'not in' a list (SQL's unknown is false). */
  if (is_null (a)) {
    for (size_t i = 0; i < json_array_size (list) && !r; ++i)
      r = json_is_null (json_array_get (list, i));
    return n->negate ? 0 : r;
  }
  for (size_t i = 0; i < json_array_size (list) && !r; ++i)
    r = equal (a, json_array_get (list, i));
  return r != n->negate;
}

static int
between (const struct node *n, const json_t *a, const json_t *b, const json_t *c)
{
  if (is_null (a) || is_null (b) || is_null (c))
    return 0;
  int lo = compare (a, b), hi = compare (a, c);
  if (lo == 2 || hi == 2)
    return 0; /* mixed types: neither in nor out */
  return (lo >= 0 && hi <= 0) != n->negate;
}

static int
cmp (const struct node *n, const json_t *a, const json_t *b)
{
  int r;
  switch (n->op) {
  case OP_EQ:
    if (is_null (a) || is_null (b))
      return is_null (a) && is_null (b);
    return equal (a, b);
  case OP_NE:
    if (is_null (a) || is_null (b))
      return !(is_null (a) && is_null (b));
    return !equal (a, b);
  case OP_LIKE:
  case OP_ILIKE:
    if (!json_is_string (a) || !json_is_string (b))
      return 0;
    return like (json_string_value (a), json_string_value (b), n->op == OP_ILIKE) != n->negate;
  case OP_MATCH:
    if (!json_is_string (a))
      return 0;
    return (regexec (&n->re, json_string_value (a), 0, NULL, 0) == 0) != n->negate;
  default:
    if (is_null (a) || is_null (b))
      return 0;
    r = compare (a, b);
    if (r == 2)
      return 0;
    return n->op == OP_LT ? r < 0 : n->op == OP_LE ? r <= 0 : n->op == OP_GT ? r > 0 : r >= 0;
  }
}

static int
pred (const struct node *n, const json_t *a, const json_t *b, const json_t *c)
{
  return n->kind == N_IN        ? in_list (n, a, b)
         : n->kind == N_BETWEEN ? between (n, a, b, c)
                                : cmp (n, a, b);
}

/* The predicate n with left value a: per element when a is an array. */
static json_t *
map_pred (const struct node *n, const json_t *a, const json_t *b, const json_t *c)
{
  if (!json_is_array (a))
    return json_boolean (pred (n, a, b, c));
  json_t *out = json_array ();
  size_t i;
  json_t *e;
  json_array_foreach ((json_t *) a, i, e)
    json_array_append_new (out, json_boolean (pred (n, e, b, c)));
  return out;
}

static json_t *
arith (int op, const json_t *a, const json_t *b)
{
  if (!json_is_number (a) || !json_is_number (b))
    return NULL;
  if (json_is_integer (a) && json_is_integer (b) && op != '/') {
    json_int_t x = json_integer_value (a), y = json_integer_value (b), r;
    if (op == '%' && y == 0)
      return NULL;
    if (op == '+'   ? __builtin_add_overflow (x, y, &r)
        : op == '-' ? __builtin_sub_overflow (x, y, &r)
        : op == '*' ? __builtin_mul_overflow (x, y, &r)
                    : (r = (y == -1 ? 0 : x % y), 0))
      return json_real (op == '+'   ? (double) x + (double) y
                        : op == '-' ? (double) x - (double) y
                                    : (double) x * (double) y);
    return json_integer (r);
  }
  double x = json_number_value (a), y = json_number_value (b);
  if ((op == '/' || op == '%') && y == 0)
    return NULL;
  double r = op == '+'   ? x + y
             : op == '-' ? x - y
             : op == '*' ? x * y
             : op == '/' ? x / y
                         : fmod (x, y);
  return isfinite (r) ? json_real (r) : NULL;
}

static json_t *
value_arith (const struct node *n, const json_t *item)
{
  json_t *a = Pallet_query_value (n->kids[0], item), *b = Pallet_query_value (n->kids[1], item);
  json_t *r;
  int op = n->op;
  if (json_is_array (a)) {
    size_t i;
    json_t *e;
    r = json_array ();
    json_array_foreach (a, i, e) {
      json_t *x = arith (op, e, b);
      json_array_append_new (r, x ? x : json_null ());
    }
  }
  else
    r = arith (op, a, b);
  json_decref (a);
  json_decref (b);
  return r;
}

static json_t *
value_func (const struct node *n, const json_t *item)
{
  json_t *v = Pallet_query_value (n->kids[0], item), *r = NULL;
  size_t i;
  json_t *e;
  switch (n->kind) {
  case N_LEN:
    r = is_null (v)          ? json_integer (0)
        : json_is_array (v)  ? json_integer ((json_int_t) json_array_size (v))
        : json_is_string (v) ? json_integer ((json_int_t) json_string_length (v))
        : json_is_object (v) ? json_integer ((json_int_t) json_object_size (v))
                             : NULL;
    break;
  case N_SUM:
    if (json_is_number (v))
      r = json_incref (v);
    else if (json_is_array (v)) {
      json_int_t si = 0;
      double sd = 0;
      int real = 0;
      json_array_foreach (v, i, e) {
        if (json_is_integer (e) && !real
            && !__builtin_add_overflow (si, json_integer_value (e), &si))
          ;
        else if (json_is_number (e)) {
          if (!real)
            sd = (double) si;
          real = 1;
          sd += json_number_value (e);
        }
      }
      r = real ? json_real (sd) : json_integer (si);
    }
    break;
  default: { /* any, all */
    int want_all = n->kind == N_ALL, res = want_all;
    if (json_is_array (v)) {
      json_array_foreach (v, i, e)
        if (json_is_true (e) != want_all) {
          res = !want_all;
          break;
        }
    }
    else
      res = json_is_true (v);
    r = json_boolean (res);
  }
  }
  json_decref (v);
  return r;
}

static int
has_wildcard (const struct node *f)
{
  for (size_t i = 0; f->kind == N_FIELD && i < f->nsegs; ++i)
    if (f->segs[i].kind == SEG_ALL)
      return 1;
  return 0;
}

static json_t *
value_pred (const struct node *n, const json_t *item)
{
  json_t *a = Pallet_query_value (n->kids[0], item), *r;
  if (n->kind == N_NULL && json_is_array (a) && has_wildcard (n->kids[0])) {
    /* disks[*].x is null: per element, as TSL does. */
    size_t i;
    json_t *e;
    r = json_array ();
    json_array_foreach (a, i, e)
      json_array_append_new (r, json_boolean (is_null (e) != n->negate));
  }
  else if (n->kind == N_NULL)
    r = json_boolean (is_null (a) != n->negate);
  else {
    json_t *b = Pallet_query_value (n->kids[1], item);
    json_t *c = n->nkids > 2 ? Pallet_query_value (n->kids[2], item) : NULL;
    r = map_pred (n, a, b, c);
    json_decref (b);
    json_decref (c);
  }
  json_decref (a);
  return r;
}

json_t *
Pallet_query_value (const struct node *n, const json_t *item)
{
  json_t *v;
  size_t i;
  json_t *e;
  switch (n->kind) {
  case N_LIT: return json_incref (n->lit);
  case N_FIELD: return Pallet_query_resolve (n, item);
  case N_NEG: {
    json_t *zero = json_integer (0);
    v = Pallet_query_value (n->kids[0], item);
    json_t *r = NULL;
    if (json_is_array (v)) {
      r = json_array ();
      json_array_foreach (v, i, e) {
        json_t *x = arith ('-', zero, e);
        json_array_append_new (r, x ? x : json_null ());
      }
    }
    else
      r = arith ('-', zero, v);
    json_decref (zero);
    json_decref (v);
    return r;
  }
  case N_ARITH: return value_arith (n, item);
  case N_LEN:
  case N_SUM:
  case N_ANY:
  case N_ALL: return value_func (n, item);
  case N_CMP:
  case N_IN:
  case N_BETWEEN:
  case N_NULL: return value_pred (n, item);
  case N_NOT:
    v = Pallet_query_value (n->kids[0], item);
    if (json_is_array (v)) {
      json_t *r = json_array ();
      json_array_foreach (v, i, e)
        json_array_append_new (r, json_boolean (!json_is_true (e)));
      json_decref (v);
      return r;
    }
    {
      int t = json_is_true (v);
      json_decref (v);
      return json_boolean (!t);
    }
  case N_AND:
  case N_OR:
    for (i = 0; i < n->nkids; ++i) {
      v = Pallet_query_value (n->kids[i], item);
      int t = json_is_true (v);
      json_decref (v);
      if (t != (n->kind == N_AND))
        return json_boolean (n->kind == N_OR);
    }
    return json_boolean (n->kind == N_AND);
  }
  return NULL;
}

int
pallet_query_match (const struct pallet_query *q, const json_t *item)
{
  if (!q)
    return 1;
  Pallet_query_fields_observe (q, item);
  if (!q->where)
    return 1;
  json_t *v = Pallet_query_value (q->where, item);
  int r = json_is_true (v);
  json_decref (v);
  return r;
}

/* Sort rank of a value's type: missing/null < false/true < numbers <
 * strings < arrays < objects. */
static int
rank (const json_t *v)
{
  if (is_null (v))
    return 0;
  if (json_is_boolean (v))
    return 1;
  if (json_is_number (v))
    return 2;
  if (json_is_string (v))
    return 3;
  if (json_is_array (v))
    return 4;
  return 5;
}

int
pallet_query_compare (const struct pallet_query *q, const json_t *a, const json_t *b)
{
  for (size_t i = 0; q && i < q->nkeys; ++i) {
    const struct node *k = q->keys[i].alias ? q->keys[i].alias : q->keys[i].expr;
    json_t *va = Pallet_query_value (k, a), *vb = Pallet_query_value (k, b);
    int ra = rank (va), rb = rank (vb), r;

    if (ra != rb)
      r = ra < rb ? -1 : 1;
    else {
      r = compare (va, vb);
      if (r == 2)
        r = 0;
    }
    json_decref (va);
    json_decref (vb);
    if (r)
      return q->keys[i].desc ? -r : r;
  }
  return 0;
}

json_t *
pallet_query_project (const struct pallet_query *q, json_t *item)
{
  if (!q || q->nsel == 0)
    return json_incref (item);
  json_t *out = json_object ();
  for (size_t i = 0; out && i < q->nsel; ++i) {
    json_t *v = Pallet_query_value (q->sel[i].expr, item);
    json_object_set_new (out, q->sel[i].alias, v ? v : json_null ());
  }
  return out;
}

struct sort_ent {
  json_t *item;
  size_t index;
};

static int
cmp_ents (const void *x, const void *y, void *arg)
{
  const struct sort_ent *a = x, *b = y;
  int r = pallet_query_compare (arg, a->item, b->item);
  if (r)
    return r;
  /* Stable: fall back to the input order. */
  return a->index < b->index ? -1 : a->index > b->index;
}

json_t *
pallet_query_apply (const struct pallet_query *q, const json_t *array, char **errmsg)
{
  size_t n, m = 0, i;
  struct sort_ent *ents;
  json_t *out;

  if (errmsg)
    *errmsg = NULL;
  if (!json_is_array (array)) {
    if (errmsg)
      *errmsg = strdup ("query: the items to filter must be a JSON array");
    return NULL;
  }
  n = json_array_size (array);
  ents = malloc ((n ? n : 1) * sizeof *ents);
  out = json_array ();
  if (!ents || !out)
    goto oom;
  for (i = 0; i < n; ++i) {
    json_t *item = json_array_get (array, i);
    if (pallet_query_match (q, item)) {
      ents[m].item = item;
      ents[m].index = i;
      ++m;
    }
  }
  if (q && q->nkeys && m > 1)
    qsort_r (ents, m, sizeof *ents, cmp_ents, (void *) q);
  if (q && q->limit >= 0 && (unsigned long long) q->limit < m)
    m = (size_t) q->limit;
  for (i = 0; i < m; ++i)
    if (json_array_append_new (out, pallet_query_project (q, ents[i].item)) == -1)
      goto oom;
  free (ents);
  return out;

oom:
  free (ents);
  json_decref (out);
  if (errmsg)
    *errmsg = strdup ("query: out of memory");
  return NULL;
}
