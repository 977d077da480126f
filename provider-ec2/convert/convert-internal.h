/* SPDX-License-Identifier: Apache-2.0 */
/* Internal helpers shared by the pallet_convert sources. */
#ifndef PALLET_CONVERT_INTERNAL_H
#define PALLET_CONVERT_INTERNAL_H

#include <stddef.h>
#include "pallet-convert.h"

/* "a, b and c" style list of disk paths ("(no disks)" when empty).
 * NULL on ENOMEM. */
char *Pallet_convert_join_disks (const char *const *disks, size_t ndisks);

/* A copy of TEXT with each run of whitespace made one space, trimmed,
 * cut to at most MAX bytes (with "..." appended).  NULL on ENOMEM. */
char *Pallet_convert_condense (const char *text, size_t max);

/* Frees a NULL-terminated array of strings (libguestfs returns them). */
void Pallet_convert_free_strings (char **v);

/* Sets *MESSAGE from a printf format and returns ERR.  ENOMEM leaves
 * *MESSAGE NULL. */
enum Pallet_convert_error Pallet_convert_fail (char **message, enum Pallet_convert_error err,
                                               const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
