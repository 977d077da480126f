/* SPDX-License-Identifier: Apache-2.0 */
/* The table of verbs that parse their own options. */
#include <string.h>

#include "pallet/host.h"
#include "cli-verbs.h"

const struct Pallet_cli_verb Pallet_cli_verbs[] = {
  { "lint-manifests", Pallet_cli_lint_manifests },
  { "doctor", Pallet_cli_doctor },
  { "get", Pallet_cli_get },
  { "describe", Pallet_cli_describe },
  { "inventory", Pallet_cli_inventory },
  { "create", Pallet_cli_create },
  { "archive", Pallet_cli_archive },
  { "delete", Pallet_cli_delete },
  { NULL, NULL },
};

const char *const Pallet_cli_verb_names[] = {
  "providers", "validate",       "inventory", "migrate",  "status", "cancel",  "cutover",
  "cleanup",   "version",        "get",       "describe", "create", "archive", "delete",
  "doctor",    "lint-manifests", NULL,
};

const struct Pallet_cli_verb *
Pallet_cli_find_verb (int argc, char **argv, int *at)
{
  int i = 1;
  for (; i < argc; i++) {
    if (!strcmp (argv[i], "-v") || !strcmp (argv[i], "--verbose")) {
      if (pallet_get_log_level () < PALLET_LOG_INFO)
        pallet_set_log_level (PALLET_LOG_INFO);
    }
    else if (!strcmp (argv[i], "--debug"))
      pallet_set_log_level (PALLET_LOG_DEBUG);
    else
      break;
  }
  for (const struct Pallet_cli_verb *v = Pallet_cli_verbs; i < argc && v->name; v++)
    if (!strcmp (argv[i], v->name)) {
      *at = i;
      return v;
    }
  return NULL;
}
