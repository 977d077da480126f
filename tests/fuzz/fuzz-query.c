/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the inventory query language (compile, then apply to
 * a small fixed inventory so the evaluator runs too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pallet-query.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static json_t *inventory;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (!inventory)
    inventory = json_loads (
        "[{\"name\":\"web-1\",\"cpus\":2,\"memory\":4294967296,\"powerState\":\"on\","
        "\"disks\":[{\"size\":8589934592,\"type\":\"gp3\"}],\"tags\":{\"env\":\"prod\"}},"
        "{\"name\":\"db\",\"cpus\":8.5,\"memory\":null,\"disks\":[],\"ok\":true},"
        "{\"name\":\"\\u00e9t\\u00e9\",\"cpus\":\"4\",\"disks\":{\"x\":1}},"
        "{}, 3, \"s\", null]",
        0, NULL);
  /* The query is a C string: stop at the first NUL like the CLI would. */
  char *text = malloc (size + 1);
  if (!text)
    return 0;
  memcpy (text, data, size);
  text[size] = '\0';
  char *err = NULL;
  struct pallet_query *q = pallet_query_compile (text, &err);
  if (q) {
    json_t *r = pallet_query_apply (q, inventory, &err);
    json_decref (r);
    (void) pallet_query_limit (q);
    (void) pallet_query_has_where (q);
    pallet_query_free (q);
  }
  free (err);
  free (text);
  return 0;
}
