/* SPDX-License-Identifier: Apache-2.0 */
/* Between the credential sources (credsrc.c, credproc.c). */
#ifndef PALLET_AWS_CREDSRC_H
#define PALLET_AWS_CREDSRC_H

#include "aws-internal.h"

/* The JSON a credential source returns.  kind "process": the
 * credential_process protocol (Version 1, SessionToken); "http": the
 * container and instance-metadata endpoints (Token; Code if present must
 * be "Success").  0, -1 (*errmsg says what is wrong, never a value), -2. */
int Pallet_aws_creds_from_json (const char *text, size_t len, const char *kind,
                                struct Pallet_aws_creds *out, char **errmsg);
int Pallet_aws_process_creds (const char *profile, const char *cmd, struct Pallet_aws_creds *out,
                              char **errmsg);

#endif
