/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query: kubectl-mtv's inventory query language (TSL), in C.
 *
 *   [select EXPR [as NAME] {, ...}] [where] EXPR
 *   [order|sort by EXPR [asc|desc] {, ...}] [limit N]
 *
 * EXPR: or / and / not, parentheses, = == != <> < <= > >=, like / ilike
 * (SQL % and _), ~= / ~! (regex; !~ too), [not] in ['a', 'b'] (or
 * ('a', 'b')), [not] between A and B, is [not] null, + - * / %,
 * len(x), sum(x), any(cond), all(cond).  Values are 'strings' ("" and ``
 * too), numbers (with optional SI suffix: K M G T P, Ki Mi Gi Ti Pi),
 * dates, true, false, null, and fields: dotted paths into the item with
 * [N], [*] and [key] suffixes (disks[*].size, label[kubernetes.io/x]).
 * Keywords are case-insensitive.  See README.md for the semantics.
 */
#ifndef PALLET_QUERY_H
#define PALLET_QUERY_H

#include <stddef.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parentheses and 'not' nest at most this deep; deeper is an error. */
#define PALLET_QUERY_MAX_DEPTH 64

struct pallet_query;

/* Compiles text (NULL or "" matches everything).  On error returns NULL
 * and, if errmsg, sets *errmsg to a malloc'd message with the 1-based
 * column and a caret line:
 *   query: column 14: expected a value after '=', got the end of the query ...
 *     where name =
 *                 ^
 */
struct pallet_query *pallet_query_compile (const char *text, char **errmsg);

/* 1 if item satisfies the where clause (always 1 without one), else 0.
 * It also notes which of the query's fields the item has (for
 * pallet_query_check_fields), so calls on one query must not run at the
 * same time in several threads. */
int pallet_query_match (const struct pallet_query *q, const json_t *item);

/* A new array of the matching items of array (a JSON array), ordered by
 * the order by keys (stable) and cut to limit.  Items are shared (their
 * reference counts are raised), not copied.  NULL if array is not an
 * array (errmsg set) or on out-of-memory. */
json_t *pallet_query_apply (const struct pallet_query *q, const json_t *array, char **errmsg);

/* The limit clause, or -1 without one. */
long long pallet_query_limit (const struct pallet_query *q);

/* 1 if the query has an order by clause. */
int pallet_query_has_order (const struct pallet_query *q);

/* The order by keys' verdict on two items: <0 if a sorts first, >0 if b
 * does, 0 if the keys tie (the caller breaks ties, e.g. by input order). */
int pallet_query_compare (const struct pallet_query *q, const json_t *a, const json_t *b);

/* 1 if the query has a where clause. */
int pallet_query_has_where (const struct pallet_query *q);

/* 1 if the query has a select clause. */
int pallet_query_has_select (const struct pallet_query *q);

/* The item as the select clause shows it: a new object holding each
 * selected value under its alias, or item itself (a new reference)
 * without a select clause. */
json_t *pallet_query_project (const struct pallet_query *q, json_t *item);

/* After the items went through pallet_query_match: 0 if every field the
 * query names was in at least one item (or there were no items), else -1
 * and, if errmsg, a malloc'd message naming the field, its column and the
 * nearest key the items had ("did you mean 'name'?"). */
int pallet_query_check_fields (const struct pallet_query *q, char **errmsg);

void pallet_query_free (struct pallet_query *q);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_QUERY_H */
