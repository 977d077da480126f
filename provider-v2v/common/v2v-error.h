/* SPDX-License-Identifier: Apache-2.0 */
/* The error convention of provider-v2v's sub-libraries: a function that
 * fails returns a pallet_status and, when ERR is not NULL, hands back a
 * malloc'd message for the caller to pass on (a library never prints). */
#ifndef PALLET_V2V_ERROR_H
#define PALLET_V2V_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int Pallet_v2v_failf (char **err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static inline int
Pallet_v2v_failf (char **err, int code, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (err)
    *err = strdup (buf);
  return code;
}

#endif
