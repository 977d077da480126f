/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-plan: Forklift resources (YAML or JSON) to the normalized plan.
 *
 * Input files hold Forklift forklift.konveyor.io/v1beta1 Plan, NetworkMap,
 * StorageMap and Provider objects and core/v1 Secrets, as YAML (several
 * documents separated by ---) or JSON (one or more concatenated values),
 * or a v1 List of them.  See README.md for the normalized shape.
 *
 * Every function returns a new jansson reference (json_decref it) or NULL
 * with *errmsg set to a malloc'd message (free it) when errmsg is not NULL.
 * Messages name the file, the document and the field:
 *   plan.yaml: document 2 (Plan "p1"): spec.vms[3].id: expected a string,
 *   got a mapping
 * They never contain secret values.
 */
#ifndef PALLET_PLAN_H
#define PALLET_PLAN_H

#include <stddef.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reads files into a resource set:
 *   { "files": ["a.yaml", ...],
 *     "resources": [ { "file": "a.yaml", "document": 1, "path": "",
 *                      "object": { <the Kubernetes object> } }, ... ] }
 * "document" is 1-based; "path" is "items[N]" for an item of a List.
 * A path of "-" reads standard input.  A file is JSON when its name ends
 * in .json, or it does not end in .yaml/.yml and starts with '{' or '[';
 * otherwise YAML.  Empty documents are skipped. */
json_t *pallet_plan_read (const char *const *paths, size_t n, char **errmsg);

/* Parses one in-memory text (name is used in messages) into a resource
 * set, as pallet_plan_read does for a file. */
json_t *pallet_plan_read_buffer (const char *name, const char *text, size_t len, char **errmsg);

/* Builds the normalized plan from a resource set.  plan_name ("name" or
 * "namespace/name") chooses a Plan; it may be NULL when the set holds
 * exactly one.  References (providers, secrets, maps) must resolve inside
 * the set; a missing destination Provider, or one named "host", means
 * the local cluster. */
json_t *pallet_plan_normalize (const json_t *resources, const char *plan_name, char **errmsg);

/* Unknown fields (not in Forklift's CRD schemas) and fields pallet does
 * not support yet become warnings instead of errors. */
#define PALLET_PLAN_LENIENT 1u

/* pallet_plan_normalize with flags (PALLET_PLAN_LENIENT).  Every object
 * of the set is checked against Forklift's CRD schemas: an unknown field
 * is an error naming it, its path and the nearest valid name ("did you
 * mean targetNamespace?").  Warnings (strings with the same location
 * prefix as errors) are appended to warnings when it is not NULL.
 * Added with the schema checks; pallet_plan_normalize is this with
 * flags 0 and no warnings. */
json_t *pallet_plan_normalize_ext (const json_t *resources, const char *plan_name, unsigned flags,
                                   json_t *warnings, char **errmsg);

/* pallet_plan_read + pallet_plan_normalize. */
json_t *pallet_plan_load (const char *const *paths, size_t n, const char *plan_name, char **errmsg);

/* The config a provider's open() receives, for which = "source" or
 * "destination" of a normalized plan:
 *   { "provider": <the Provider object: apiVersion, kind, metadata, spec>,
 *     "secret": { <Secret data, base64-decoded, merged with stringData> },
 *     "settings": { <Provider spec.settings> } }
 * The result holds secret values: never log or store it. */
json_t *pallet_plan_provider_config (const json_t *resources, const json_t *plan, const char *which,
                                     char **errmsg);

#ifdef __cplusplus
}
#endif

#endif /* PALLET_PLAN_H */
