/* SPDX-License-Identifier: Apache-2.0 */
/* Retry classification and backoff, after the AWS SDKs' "standard" mode:
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
#include <string.h>
#include "aws-internal.h"

static const char *const throttle_codes[] = { "Throttling",
                                              "ThrottlingException",
                                              "ThrottledException",
                                              "RequestThrottledException",
                                              "TooManyRequestsException",
                                              "ProvisionedThroughputExceededException",
                                              "TransactionInProgressException",
                                              "RequestLimitExceeded",
                                              "BandwidthLimitExceeded",
                                              "LimitExceededException",
                                              "RequestThrottled",
                                              "SlowDown",
                                              "PriorRequestNotComplete",
                                              "EC2ThrottledException",
                                              NULL };

static const char *const transient_codes[] = { "RequestTimeout",
                                               "RequestTimeoutException",
                                               "InternalError",
                                               "InternalFailure",
                                               "InternalServerError",
                                               "InternalServerException",
                                               "ServiceUnavailable",
                                               "ServiceUnavailableException",
                                               "Unavailable",
                                               "IDPCommunicationError",
                                               NULL };

static const char *const auth_codes[] = { "AuthFailure",
                                          "InvalidClientTokenId",
                                          "SignatureDoesNotMatch",
                                          "UnrecognizedClientException",
                                          "IncompleteSignature",
                                          "MissingAuthenticationToken",
                                          "InvalidAccessKeyId",
                                          "ExpiredToken",
                                          "ExpiredTokenException",
                                          "RequestExpired",
                                          "OptInRequired",
                                          "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
                                          NULL };

static bool
in_list (const char *const *list, const char *code)
{
  if (!code || !*code)
    return false;
  for (size_t i = 0; list[i]; i++)
    if (strcmp (list[i], code) == 0)
      return true;
  return false;
}

bool
Pallet_aws_is_throttle_code (const char *code)
{
  return in_list (throttle_codes, code);
}
bool
Pallet_aws_is_transient_code (const char *code)
{
  return in_list (transient_codes, code);
}
bool
Pallet_aws_is_auth_code (const char *code)
{
  return in_list (auth_codes, code);
}

enum Pallet_aws_retry_kind
Pallet_aws_classify (CURLcode cc, long http_status, const char *code)
{
  switch (cc) {
  case CURLE_OK: break;
  case CURLE_OPERATION_TIMEDOUT: return PALLET_AWS_RETRY_TIMEOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR: /* a reset during the handshake */
    return PALLET_AWS_RETRY_TRANSIENT;
  default: return PALLET_AWS_NO_RETRY; /* TLS verification, bad URL, too large... */
  }
  if (Pallet_aws_is_throttle_code (code) || http_status == 429)
    return PALLET_AWS_RETRY_THROTTLE;
  if (Pallet_aws_is_transient_code (code))
    return PALLET_AWS_RETRY_TRANSIENT;
  if (http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504)
    return PALLET_AWS_RETRY_TRANSIENT;
  return PALLET_AWS_NO_RETRY;
}

long
Pallet_aws_backoff_ms (int attempt, long base_ms, long max_ms, double rnd)
{
  if (attempt < 0)
    attempt = 0;
  long cap = base_ms;
  for (int i = 0; i < attempt && cap < max_ms; i++)
    cap *= 2;
  if (cap > max_ms)
    cap = max_ms;
  if (rnd < 0)
    rnd = 0;
  if (rnd >= 1)
    rnd = 0.999999;
  return (long) (rnd * (double) cap);
}

bool
Pallet_aws_quota_acquire (struct Pallet_aws_quota *q, enum Pallet_aws_retry_kind k, int *taken)
{
  *taken = 0;
  if (q->disabled)
    return true;
  int cost = k == PALLET_AWS_RETRY_TIMEOUT ? PALLET_AWS_TIMEOUT_COST : PALLET_AWS_RETRY_COST;
  if (q->tokens < cost)
    return false;
  q->tokens -= cost;
  *taken = cost;
  return true;
}

/* On success: give back what the retries took, or 1 token if none. */
void
Pallet_aws_quota_release (struct Pallet_aws_quota *q, int taken)
{
  if (q->disabled)
    return;
  q->tokens += taken > 0 ? taken : 1;
  if (q->tokens > q->max)
    q->tokens = q->max;
}

int
Pallet_aws_status_of_code (const char *code, long http_status)
{
  if (code && *code) {
    if (Pallet_aws_is_auth_code (code) || strcmp (code, "UnauthorizedOperation") == 0
        || strcmp (code, "AccessDenied") == 0 || strcmp (code, "AccessDeniedException") == 0)
      return PALLET_E_AUTH;
    if (Pallet_aws_is_throttle_code (code) || Pallet_aws_is_transient_code (code))
      return PALLET_E_TRANSIENT;
    size_t l = strlen (code);
    if ((l >= 8 && strcmp (code + l - 8, "NotFound") == 0)
        || strcmp (code, "ResourceNotFoundException") == 0)
      return PALLET_E_NOT_FOUND;
    if (strcmp (code, "IdempotentParameterMismatch") == 0 || strcmp (code, "ConflictException") == 0
        || strstr (code, "IncorrectState") || strstr (code, "InvalidState")
        || strcmp (code, "IncorrectInstanceState") == 0)
      return PALLET_E_CONFLICT;
    if (strncmp (code, "InvalidParameter", 16) == 0 || strcmp (code, "MissingParameter") == 0
        || strcmp (code, "ValidationException") == 0 || strcmp (code, "InvalidAction") == 0
        || strncmp (code, "Invalid", 7) == 0 || strcmp (code, "UnknownParameter") == 0)
      return PALLET_E_INVALID;
    return PALLET_E_FAILED;
  }
  if (http_status == 401 || http_status == 403)
    return PALLET_E_AUTH;
  if (http_status == 404)
    return PALLET_E_NOT_FOUND;
  if (http_status == 429 || http_status >= 500)
    return PALLET_E_TRANSIENT;
  return PALLET_E_FAILED;
}
