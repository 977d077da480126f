/* Status codes, last-error buffer and logging. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

/* A switch with no default: -Wswitch flags a code added to the enum
 * but not here. */
const char *
pallet_strerror (int status)
{
  switch ((enum pallet_status) status) {
  case PALLET_OK: return "success";
  case PALLET_PENDING: return "in progress; call again after the retry-after";
  case PALLET_E_INVALID: return "bad input (JSON, plan or config)";
  case PALLET_E_UNSUPPORTED: return "operation or feature not supported";
  case PALLET_E_NOT_FOUND: return "a named object does not exist";
  case PALLET_E_AUTH: return "credentials rejected or not permitted";
  case PALLET_E_TRANSIENT: return "transient failure (throttling, network, 5xx)";
  case PALLET_E_TIMEOUT: return "a wait ran out of time";
  case PALLET_E_FAILED: return "the operation failed";
  case PALLET_E_CANCELLED: return "cancelled";
  case PALLET_E_NOMEM: return "out of memory";
  case PALLET_E_IO: return "local I/O error";
  case PALLET_E_CONFLICT: return "state conflicts with the world";
  case PALLET_E_ABI: return "ABI mismatch or provider contract broken";
  case PALLET_E_LAST: break;
  }
  return "unknown status code";
}

const char *
pallet_status_name (int status)
{
  switch ((enum pallet_status) status) {
  case PALLET_OK: return "PALLET_OK";
  case PALLET_PENDING: return "PALLET_PENDING";
  case PALLET_E_INVALID: return "PALLET_E_INVALID";
  case PALLET_E_UNSUPPORTED: return "PALLET_E_UNSUPPORTED";
  case PALLET_E_NOT_FOUND: return "PALLET_E_NOT_FOUND";
  case PALLET_E_AUTH: return "PALLET_E_AUTH";
  case PALLET_E_TRANSIENT: return "PALLET_E_TRANSIENT";
  case PALLET_E_TIMEOUT: return "PALLET_E_TIMEOUT";
  case PALLET_E_FAILED: return "PALLET_E_FAILED";
  case PALLET_E_CANCELLED: return "PALLET_E_CANCELLED";
  case PALLET_E_NOMEM: return "PALLET_E_NOMEM";
  case PALLET_E_IO: return "PALLET_E_IO";
  case PALLET_E_CONFLICT: return "PALLET_E_CONFLICT";
  case PALLET_E_ABI: return "PALLET_E_ABI";
  case PALLET_E_LAST: break;
  }
  return "PALLET_E_UNKNOWN";
}

int
pallet_status_from_name (const char *name)
{
  if (name == NULL)
    return -1;
  for (int s = 0; s < PALLET_E_LAST; s++) {
    const char *full = pallet_status_name (s);
    if (strcasecmp (name, full) == 0
        || strcasecmp (name, full + strlen ("PALLET_")) == 0
        || (strncmp (full, "PALLET_E_", 9) == 0
            && strcasecmp (name, full + 9) == 0))
      return s;
  }
  return -1;
}

static _Thread_local char last_error[2048];

void
Pallet_seterr (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (last_error, sizeof last_error, fmt, ap);
  va_end (ap);
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

const char *
pallet_host_version (void)
{
  return PALLET_HOST_VERSION;
}
