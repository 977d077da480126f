/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of pallet_plan; not installed. */
#ifndef PALLET_PLAN_INTERNAL_H
#define PALLET_PLAN_INTERNAL_H

#include <jansson.h>

/* Sets *errmsg (if errmsg and not already set) to a formatted message. */
void Pallet_plan_set_error (char **errmsg, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* "a mapping", "a sequence", "a string", ... in YAML's words. */
const char *Pallet_plan_type_name (const json_t *v);

/* "plan.yaml: document 2 (Plan "p1")" for an entry of a resource set
 * (malloc'd, or NULL when out of memory). */
char *Pallet_plan_where (const json_t *entry);

/* The closest key of props to word (edit distance, case-insensitive), or
 * NULL when none is close enough to be a typo of it. */
const char *Pallet_plan_nearest (const char *word, const json_t *props);

/* The built-in schemas: {"Plan": {"apiVersion", "schema"}, ...}. */
json_t *Pallet_plan_schemas (void);

/* The schema node of a dotted path such as "spec.vms[].id", or NULL. */
const json_t *Pallet_plan_schema_at (const json_t *schema, const char *path);

/* Checks every Forklift object and Secret of the set against the
 * schemas.  Pass 1 (before the semantic checks, so a misspelt field is
 * blamed rather than the "missing" one): unknown fields and kinds.  Pass
 * 2: types, enums, and the fields pallet does not implement.  Returns 0,
 * or -1 with *errmsg; under PALLET_PLAN_LENIENT unknown and refused
 * fields are appended to warnings (strings) instead. */
int Pallet_plan_check_schema (const json_t *set, int pass, unsigned flags, json_t *warnings,
                              char **errmsg);

/* What pallet does with each spec field of the Forklift CRDs. */
struct Pallet_plan_field {
  const char *kind, *path, *status, *neutral, *what;
};
extern const struct Pallet_plan_field Pallet_plan_fields[];

void Pallet_plan_check_refused (int *failed, const json_t *entry, const json_t *schema,
                                unsigned flags, json_t *warnings, char **errmsg);

#endif
