/* SPDX-License-Identifier: Apache-2.0 */
/* Status codes, last-error buffer and logging. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

/* Generated from PALLET_STATUS_LIST, the header's one list of codes. */
#define STATUS_TEXT(name, num, text) [num] = text,
#define STATUS_NAME(name, num, text) [num] = "PALLET_" #name,
static const char *const status_text[PALLET_E_LAST] = { PALLET_STATUS_LIST (STATUS_TEXT) };
static const char *const status_names[PALLET_E_LAST] = { PALLET_STATUS_LIST (STATUS_NAME) };

const char *
pallet_strerror (int status)
{
  if (status < 0 || status >= PALLET_E_LAST || status_text[status] == NULL)
    return "unknown status code";
  return status_text[status];
}

const char *
pallet_status_name (int status)
{
  if (status < 0 || status >= PALLET_E_LAST || status_names[status] == NULL)
    return "PALLET_E_UNKNOWN";
  return status_names[status];
}

int
pallet_status_from_name (const char *name)
{
  if (name == NULL)
    return -1;
  for (int s = 0; s < PALLET_E_LAST; s++) {
    const char *full = pallet_status_name (s);
    if (strcasecmp (name, full) == 0 || strcasecmp (name, full + strlen ("PALLET_")) == 0
        || (strncmp (full, "PALLET_E_", 9) == 0 && strcasecmp (name, full + 9) == 0))
      return s;
  }
  return -1;
}

static _Thread_local char last_error[2048];
static _Thread_local int last_origin;

void
Pallet_seterr (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (last_error, sizeof last_error, fmt, ap);
  va_end (ap);
  last_origin = PALLET_ORIGIN_HOST;
}

void
Pallet_set_origin (int origin)
{
  last_origin = origin;
}

int
pallet_last_error_origin (void)
{
  return last_error[0] ? last_origin : PALLET_ORIGIN_NONE;
}

void
Pallet_clearerr (void)
{
  last_error[0] = '\0';
  last_origin = PALLET_ORIGIN_NONE;
}

const char *
pallet_last_error (void)
{
  return last_error;
}

static int log_level = PALLET_LOG_WARNING;

void
pallet_set_log_level (int level)
{
  log_level = level;
}

int
pallet_get_log_level (void)
{
  return log_level;
}

void
Pallet_error_code_check (const char *provider, const char *op, const char *vm, int returned,
                         int recorded, char **message)
{
  if (recorded < 0 || returned == recorded || returned == PALLET_OK || returned == PALLET_PENDING
      || *message == NULL)
    return;
  char *msg;
  if (asprintf (&msg,
                "%s (provider bug: host->error was given %s but the "
                "op returned %s; return the code you report, e.g. with "
                "pallet_fail())",
                *message, pallet_status_name (recorded), pallet_status_name (returned))
      < 0)
    return;
  Pallet_log (PALLET_LOG_WARNING,
              "provider %s: %s%s%s: host->error was "
              "given %s but the op returned %s",
              provider, op, vm ? " " : "", vm ? vm : "", pallet_status_name (recorded),
              pallet_status_name (returned));
  free (*message);
  *message = msg;
}

const char *
pallet_host_version (void)
{
  return PALLET_HOST_VERSION;
}
