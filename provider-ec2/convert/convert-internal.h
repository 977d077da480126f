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

/* virt-customize's command line for the overlays (FORMAT) with the
 * first-boot and run scripts of O; the strings are borrowed, free only the
 * array.  NULL with *MESSAGE set when a script is not a readable file
 * (NULL *MESSAGE: out of memory). */
char **Pallet_convert_customize_argv (const char *prog, char *const *overlays, size_t n,
                                      const char *format, const struct Pallet_convert_options *o,
                                      char **message);

/* The index of the first error rule TEXT matches (rules earlier in the
 * table are more specific); (size_t) -1 if none. */
size_t Pallet_convert_error_rule (const char *text);

#endif
