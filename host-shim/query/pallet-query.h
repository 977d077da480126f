/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query: kubectl-mtv's inventory query language, in C.
 *
 *   [where EXPR] [order by FIELD [asc|desc] {, FIELD [asc|desc]}] [limit N]
 *
 * EXPR: or / and / not, parentheses, = != <> < <= > >=, like / ilike (SQL
 * % and _), ~= / !~ (POSIX extended regex), [not] in ('a', 'b'),
 * [not] between A and B, is [not] null.  Operands are 'strings' ('' is a
 * quote), numbers (with optional SI suffix: K M G T P, Ki Mi Gi Ti Pi),
 * true, false, null, and fields: dotted paths into the item, with [N]
 * array indexes (disks[0].size).  Keywords are case-insensitive.  See
 * README.md for the semantics of missing fields and mixed types.
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

/* 1 if item satisfies the where clause (always 1 without one), else 0. */
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

void pallet_query_free (struct pallet_query *q);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_QUERY_H */
