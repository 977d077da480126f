/* SPDX-License-Identifier: Apache-2.0 */
/* pallet lint-manifests: validate manifests against the bundled upstream
 * KubeVirt / Kubernetes core/v1 / CDI schemas, by running the validator
 * (a Python program on Debian's python3-jsonschema) installed with pallet. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pallet/host.h"
#include "cli-verbs.h"

#ifndef PALLET_PYTHON3
#define PALLET_PYTHON3 "/usr/bin/python3"
#endif

static const char lint_help[] =
    "Usage: pallet lint-manifests [--strict] [--allow-null] [-q] [--schema-dir DIR]\n"
    "                             DIR|FILE...\n"
    "Validates Kubernetes manifests (JSON or YAML; a DIR: every *.json, *.yaml,\n"
    "*.yml below it, e.g. what `pallet migrate --output-dir` wrote) against the\n"
    "upstream KubeVirt, Kubernetes core/v1 and CDI OpenAPI schemas bundled with\n"
    "pallet, before you `kubectl apply` them.  No cluster and no kubectl needed.\n"
    "  --strict      refuse fields the schema does not declare, and duplicate\n"
    "                keys (what the API server's fieldValidation=Strict refuses)\n"
    "  --allow-null  treat fields whose value is null as absent\n"
    "  -q            print nothing for valid documents\n"
    "  --list-kinds  the apiVersion/kind pairs it can validate\n"
    "Exit status: 0 all valid, 1 at least one invalid, 2 could not validate\n"
    "(unreadable file, parse error, no schema for a kind, schemas missing).\n"
    "Validator: $PALLET_LINT_MANIFESTS, else " PALLET_LINT_INSTALLED "\n"
    "(a build tree's pallet uses the copy in its source tree).\n";

/* True when this pallet is the one in its build tree, not an installed
 * copy: then the validator and schemas of the source tree are the ones
 * that match it. */
static int
running_from_build_tree (void)
{
  char self[PATH_MAX], build[PATH_MAX];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return 0;
  self[n] = '\0';
  char *slash = strrchr (self, '/');
  if (slash == NULL)
    return 0;
  *slash = '\0';
  if (realpath (PALLET_CLI_BUILD_DIR, build) == NULL)
    return 0;
  return strcmp (self, build) == 0;
}

static const char *
validator_path (void)
{
  const char *env = getenv ("PALLET_LINT_MANIFESTS");
  if (env != NULL && *env != '\0')
    return env;
  if (running_from_build_tree ())
    return PALLET_LINT_SOURCE;
  return PALLET_LINT_INSTALLED;
}

int
Pallet_cli_lint_manifests (int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--") == 0)
      break;
    if (strcmp (argv[i], "-h") == 0 || strcmp (argv[i], "--help") == 0) {
      fputs (lint_help, stdout);
      return PALLET_EXIT_OK;
    }
  }
  const char *validator = validator_path ();
  if (access (validator, R_OK) != 0) {
    fprintf (stderr,
             "pallet lint-manifests: the validator %s: %s; fix: "
             "reinstall pallet (or set PALLET_LINT_MANIFESTS to "
             "host-shim/lint/pallet-lint-manifests of a source tree)\n",
             validator, strerror (errno));
    return PALLET_EXIT_USAGE;
  }
  if (access (PALLET_PYTHON3, X_OK) != 0) {
    fprintf (stderr,
             "pallet lint-manifests: %s: %s; fix: apt-get install "
             "python3 python3-jsonschema python3-yaml\n",
             PALLET_PYTHON3, strerror (errno));
    return PALLET_EXIT_USAGE;
  }
  /* python3 VALIDATOR ARGS... NULL: the verb's own argv[0] is replaced. */
  char **args = calloc ((size_t) argc + 2, sizeof *args);
  if (args == NULL) {
    perror ("pallet lint-manifests");
    return PALLET_EXIT_USAGE;
  }
  args[0] = (char *) PALLET_PYTHON3;
  args[1] = (char *) validator;
  for (int i = 1; i < argc; i++)
    args[i + 1] = argv[i];
  fflush (NULL);
  execv (PALLET_PYTHON3, args);
  fprintf (stderr, "pallet lint-manifests: cannot run %s %s: %s\n", PALLET_PYTHON3, validator,
           strerror (errno));
  free (args);
  return PALLET_EXIT_USAGE;
}
