/* SPDX-License-Identifier: Apache-2.0 */
/* Verbs of the pallet CLI that parse their own options (argv[0] is the
 * verb).  Each returns the process exit status. */
#ifndef PALLET_CLI_VERBS_H
#define PALLET_CLI_VERBS_H

int Pallet_cli_lint_manifests (int argc, char **argv);
int Pallet_cli_doctor (int argc, char **argv);

#endif
