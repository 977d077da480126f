/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query: unknown fields.  Items stream past one at a time, so the
 * query cannot know the fields up front; it notes, for each field it
 * names, whether any item had it, and where the path stopped when none
 * did, so that a typo is an error naming the nearest real key instead of
 * an empty result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query-internal.h"

#define MAX_CANDIDATES 64

struct field_stat {
  int seen;      /* some item had it (or it was under an empty array) */
  size_t depth;  /* deepest segment that was missing, + 1 */
  json_t *cands; /* keys of the object where it was missing */
};

struct field_track {
  size_t items;
  struct field_stat s[];
};

int
Pallet_query_fields_add (struct pallet_query *q, struct node *field)
{
  struct node **nf = realloc (q->fields, (q->nfields + 1) * sizeof *nf);
  if (!nf)
    return -1;
  q->fields = nf;
  field->field_id = q->nfields;
  q->fields[q->nfields++] = field;
  return 0;
}

int
Pallet_query_fields_finish (struct pallet_query *q)
{
  q->track = calloc (1, sizeof *q->track + q->nfields * sizeof q->track->s[0]);
  return q->track ? 0 : -1;
}

void
Pallet_query_fields_free (struct pallet_query *q)
{
  if (q->track)
    for (size_t i = 0; i < q->nfields; ++i)
      json_decref (q->track->s[i].cands);
  free (q->track);
  free (q->fields);
}

static void
note_missing (struct field_stat *st, size_t depth, const json_t *obj)
{
  if (depth + 1 < st->depth || (st->cands && depth + 1 == st->depth))
    return;
  json_decref (st->cands);
  st->depth = depth + 1;
  st->cands = json_array ();
  const char *k;
  json_t *v;
  json_object_foreach ((json_t *) obj, k, v) {
    if (json_array_size (st->cands) >= MAX_CANDIDATES)
      break;
    json_array_append_new (st->cands, json_string (k));
  }
}

/* 1 if the rest of the path from segment i exists in v. */
static int
probe (const struct node *n, size_t i, const json_t *v, struct field_stat *st)
{
  for (; i < n->nsegs; ++i) {
    const struct path_seg *s = &n->segs[i];
    if (json_is_null (v))
      return 0; /* a null parent tells nothing either way */
    if (s->kind == SEG_ALL || (s->kind == SEG_KEY && json_is_array (v) && i > 0)) {
      size_t k, from = s->kind == SEG_ALL ? i + 1 : i;
      json_t *e;
      if (!json_is_array (v))
        return 0;
      if (json_array_size (v) == 0)
        return 1;
      json_array_foreach ((json_t *) v, k, e)
        if (probe (n, from, e, st))
          return 1;
      return 0;
    }
    if (s->kind == SEG_INDEX) {
      if (!json_is_array (v))
        return 0;
      if (s->index >= json_array_size (v))
        return 1;
      v = json_array_get (v, s->index);
      continue;
    }
    if (!json_is_object (v))
      return 0;
    const json_t *r = json_object_get (v, s->key);
    if (!r) {
      /* A key with dots (a tag key): the joined segments. */
      size_t len = 0;
      for (size_t m = i; m < n->nsegs && n->segs[m].kind == SEG_KEY; ++m) {
        len += strlen (n->segs[m].key) + 1;
        char *key = malloc (len);
        if (!key)
          break;
        key[0] = '\0';
        for (size_t t = i; t <= m; ++t) {
          if (t > i)
            strcat (key, ".");
          strcat (key, n->segs[t].key);
        }
        r = json_object_get (v, key);
        free (key);
        if (r) {
          i = m;
          break;
        }
      }
    }
    if (!r) {
      note_missing (st, i, v);
      return 0;
    }
    v = r;
  }
  return 1;
}

void
Pallet_query_fields_observe (const struct pallet_query *q, const json_t *item)
{
  if (!q->track)
    return;
  q->track->items++;
  for (size_t i = 0; i < q->nfields; ++i) {
    struct field_stat *st = &q->track->s[i];
    if (!st->seen && probe (q->fields[i], 0, item, st)) {
      st->seen = 1;
      json_decref (st->cands);
      st->cands = NULL;
    }
  }
}

/* Levenshtein distance, ignoring ASCII case (keys are short). */
static size_t
distance (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  if (la > 64 || lb > 64)
    return (size_t) -1;
  size_t row[65];
  for (size_t j = 0; j <= lb; ++j)
    row[j] = j;
  for (size_t i = 1; i <= la; ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; ++j) {
      size_t cur = row[j];
      size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
      size_t best = prev + cost;
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

/* "did you mean 'X'?" or "keys there: a, b, c". */
static char *
suggest (const char *missing, const json_t *cands, const char *prefix, size_t prefix_len)
{
  const char *best = NULL;
  size_t bd = (size_t) -1, i;
  json_t *c;
  json_array_foreach ((json_t *) cands, i, c) {
    size_t d = distance (missing, json_string_value (c));
    if (d < bd) {
      bd = d;
      best = json_string_value (c);
    }
  }
  size_t limit = strlen (missing) / 3 + 1;
  char *out = NULL;
  if (best && (bd <= limit || strcasecmp (best, missing) == 0)) {
    if (asprintf (&out, "did you mean '%.*s%s'?", (int) prefix_len, prefix, best) < 0)
      out = NULL;
    return out;
  }
  size_t cap = 256, len = 0;
  out = malloc (cap);
  if (!out)
    return NULL;
  len = (size_t) snprintf (out, cap, "the items have %s", json_array_size (cands) ? "" : "none");
  json_array_foreach ((json_t *) cands, i, c) {
    const char *s = json_string_value (c);
    if (len + strlen (s) + 8 >= cap || i >= 20) {
      strcpy (out + len, ", ...");
      break;
    }
    len += (size_t) snprintf (out + len, cap - len, "%s%s", i ? ", " : "", s);
  }
  return out;
}

int
pallet_query_check_fields (const struct pallet_query *q, char **errmsg)
{
  if (errmsg)
    *errmsg = NULL;
  if (!q || !q->track || q->track->items == 0)
    return 0;
  for (size_t i = 0; i < q->nfields; ++i) {
    const struct field_stat *st = &q->track->s[i];
    const struct node *n = q->fields[i];
    if (st->seen)
      continue;
    char *msg = NULL, *hint = NULL;
    size_t d = st->depth ? st->depth - 1 : 0;
    const char *missing = d < n->nsegs && n->segs[d].key ? n->segs[d].key : "";
    /* The path up to the missing key, as written: "State." for State.Nmae. */
    size_t prefix_len = 0;
    if (d > 0 && n->segs[d].key) {
      const char *at = strstr (n->text, missing);
      prefix_len = at && (size_t) (at - n->text) < n->text_len ? (size_t) (at - n->text) : 0;
    }
    if (st->cands)
      hint = suggest (missing, st->cands, n->text, prefix_len);
    if (asprintf (&msg,
                  "unknown field '%.*s': none of the %zu item(s) has it%s%s; run the "
                  "inventory with -o json to see the fields",
                  (int) n->text_len, n->text, q->track->items, hint ? "; " : "", hint ? hint : "")
        < 0)
      msg = NULL;
    free (hint);
    if (errmsg)
      *errmsg = msg ? Pallet_query_caret (q->text, n->pos, msg) : strdup ("query: out of memory");
    free (msg);
    return -1;
  }
  return 0;
}
