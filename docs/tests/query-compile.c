/* SPDX-License-Identifier: Apache-2.0 */
/* query-compile: compiles each argument as an inventory query and reports
 * the first one that does not parse.  Used by docs-query-examples. */
#include <stdio.h>
#include <stdlib.h>

#include "pallet-query.h"

int
main (int argc, char **argv)
{
  int failed = 0;

  for (int i = 1; i < argc; i++) {
    char *err = NULL;
    struct pallet_query *q = pallet_query_compile (argv[i], &err);

    if (q == NULL) {
      printf ("FAIL: %s\n%s\n", argv[i], err ? err : "(no message)");
      failed = 1;
    }
    else
      printf ("ok: %s\n", argv[i]);
    pallet_query_free (q);
    free (err);
  }
  return failed;
}
