/* SPDX-License-Identifier: Apache-2.0 */
/* kubectl-mtv's documented query examples (tests/kubectl-mtv/examples.tsv)
 * against a fixed inventory: each must compile, select the expected rows
 * in the expected order, and name only fields the inventory has.
 *
 *   test-mtv-examples DIR      (DIR holds examples.tsv and the inventories)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pallet-query.h"

/* The names of the rows, comma-separated (malloc'd). */
static char *
names (const json_t *rows)
{
  size_t i, len = 1;
  json_t *r;
  json_array_foreach ((json_t *) rows, i, r) {
    const char *n = json_string_value (json_object_get (r, "name"));
    len += (n ? strlen (n) : 6) + 1;
  }
  char *out = calloc (1, len);
  json_array_foreach ((json_t *) rows, i, r) {
    const char *n = json_string_value (json_object_get (r, "name"));
    if (i)
      strcat (out, ",");
    strcat (out, n ? n : "(none)");
  }
  return out;
}

static int
check (const char *query, const char *want, const json_t *inv, int lineno)
{
  char *err = NULL;
  struct pallet_query *q = pallet_query_compile (query, &err);
  if (!q) {
    printf ("line %d: FAIL: does not compile: %s\n%s\n", lineno, query, err);
    free (err);
    return 1;
  }
  json_t *rows = pallet_query_apply (q, inv, &err);
  char *got = rows ? names (rows) : strdup ("(apply failed)");
  int bad = strcmp (got, want) != 0;
  if (bad)
    printf ("line %d: FAIL: %s\n  want: %s\n  got:  %s\n", lineno, query, want, got);
  if (pallet_query_check_fields (q, &err) != 0) {
    printf ("line %d: FAIL: %s\n  %s\n", lineno, query, err);
    bad = 1;
  }
  if (!bad)
    printf ("ok: %s\n", query);
  free (err);
  free (got);
  json_decref (rows);
  pallet_query_free (q);
  return bad;
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: test-mtv-examples DIR\n");
    return 2;
  }
  char path[8192], line[4096];
  snprintf (path, sizeof path, "%s/examples.tsv", argv[1]);
  FILE *fp = fopen (path, "r");
  if (!fp) {
    perror (path);
    return 2;
  }
  json_t *inv = NULL;
  int failed = 0, n = 0, lineno = 0;
  while (fgets (line, sizeof line, fp)) {
    ++lineno;
    line[strcspn (line, "\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    if (line[0] == '@') {
      json_error_t je;
      snprintf (path, sizeof path, "%s/%s", argv[1], line + 1);
      json_decref (inv);
      if (!(inv = json_load_file (path, 0, &je))) {
        printf ("%s: %s\n", path, je.text);
        return 2;
      }
      continue;
    }
    char *tab = strchr (line, '\t');
    if (!tab || !inv) {
      printf ("line %d: want QUERY<TAB>NAMES after an @inventory line\n", lineno);
      return 2;
    }
    *tab = '\0';
    failed += check (line, tab + 1, inv, lineno);
    ++n;
  }
  fclose (fp);
  json_decref (inv);
  printf ("%d of %d documented examples give the expected rows\n", n - failed, n);
  return failed || n < 50 ? 1 : 0;
}
