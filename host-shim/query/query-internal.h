/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query internals shared by the parser (query.c), the evaluator
 * (eval.c) and the field checker (fields.c). */
#ifndef PALLET_QUERY_INTERNAL_H
#define PALLET_QUERY_INTERNAL_H

#include <regex.h>
#include <stddef.h>

#include "pallet-query.h"

enum seg_kind { SEG_KEY, SEG_INDEX, SEG_ALL };

struct path_seg {
  char *key; /* SEG_KEY */
  size_t index;
  int kind;
};

enum node_kind {
  N_LIT,   /* lit: a literal, or the list of 'in' */
  N_FIELD, /* segs */
  N_NEG,
  N_ARITH, /* op: the token kind of + - * / % */
  N_LEN,
  N_SUM,
  N_ANY,
  N_ALL,
  N_CMP, /* op: OP_*; negate for ~! and not like */
  N_IN,
  N_BETWEEN,
  N_NULL,
  N_NOT,
  N_AND,
  N_OR
};

enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_LIKE, OP_ILIKE, OP_MATCH };

struct node {
  enum node_kind kind;
  int op;
  int negate;
  size_t pos; /* byte offset in the query, for messages */
  struct node **kids;
  size_t nkids;
  json_t *lit;
  struct path_seg *segs;
  size_t nsegs;
  const char *text; /* N_FIELD: the path as written (in the query text) */
  size_t text_len;
  size_t field_id;
  regex_t re;
  int has_re;
};

struct order_key {
  struct node *expr;
  int desc;
  const struct node *alias; /* the select expression it names, or NULL */
};

struct sel_item {
  struct node *expr;
  char *alias;
};

struct field_track; /* fields.c */

struct pallet_query {
  struct node *where;
  struct order_key *keys;
  size_t nkeys;
  struct sel_item *sel;
  size_t nsel;
  long long limit;
  char *text;           /* a copy, for field messages */
  struct node **fields; /* every N_FIELD, in query order */
  size_t nfields;
  struct field_track *track; /* what the items showed of each field */
};

/* "query: column N: msg" and the caret lines; malloc'd (NULL: no memory). */
char *Pallet_query_caret (const char *text, size_t pos, const char *msg);

/* The value of a field for item: a new reference, or NULL if missing. */
json_t *Pallet_query_resolve (const struct node *n, const json_t *item);

/* The value of any node for item: a new reference, or NULL for null. */
json_t *Pallet_query_value (const struct node *n, const json_t *item);

int Pallet_query_fields_add (struct pallet_query *q, struct node *field);
int Pallet_query_fields_finish (struct pallet_query *q);
void Pallet_query_fields_observe (const struct pallet_query *q, const json_t *item);
void Pallet_query_fields_free (struct pallet_query *q);

#endif
