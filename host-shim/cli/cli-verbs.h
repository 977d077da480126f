/* SPDX-License-Identifier: Apache-2.0 */
/* Verbs of the pallet CLI that parse their own options (argv[0] is the
 * verb).  Each returns the process exit status. */
#ifndef PALLET_CLI_VERBS_H
#define PALLET_CLI_VERBS_H

int Pallet_cli_lint_manifests (int argc, char **argv);
int Pallet_cli_doctor (int argc, char **argv);
/* kubectl-mtv's verbs (verbs-*.c). */
int Pallet_cli_get (int argc, char **argv);
int Pallet_cli_describe (int argc, char **argv);
int Pallet_cli_inventory (int argc, char **argv);
int Pallet_cli_create (int argc, char **argv);
int Pallet_cli_archive (int argc, char **argv);
int Pallet_cli_delete (int argc, char **argv);

/* The verb table: the verbs above by name (NULL-terminated). */
struct Pallet_cli_verb {
  const char *name;
  int (*run) (int argc, char **argv);
};
extern const struct Pallet_cli_verb Pallet_cli_verbs[];

/* The verb named argv[i] where i is the first argument that is not -v,
 * --verbose or --debug (those are applied), or NULL. */
const struct Pallet_cli_verb *Pallet_cli_find_verb (int argc, char **argv, int *at);

/* Every verb's name, for did-you-mean (NULL-terminated). */
extern const char *const Pallet_cli_verb_names[];

#endif
