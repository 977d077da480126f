/* SPDX-License-Identifier: Apache-2.0 */
/* Retry classification, backoff bounds, the retry quota, status mapping. */
#include <stdio.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"

static void
test_classify (void)
{
  const char *throttle[] = {
    "Throttling",
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
  };
  for (size_t i = 0; i < sizeof throttle / sizeof *throttle; i++) {
    CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 400, throttle[i]), PALLET_AWS_RETRY_THROTTLE);
    CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 503, throttle[i]), PALLET_AWS_RETRY_THROTTLE);
  }
  const char *transient[] = { "RequestTimeout", "RequestTimeoutException", "InternalError" };
  for (size_t i = 0; i < 3; i++)
    CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 400, transient[i]), PALLET_AWS_RETRY_TRANSIENT);
  long st[] = { 500, 502, 503, 504 };
  for (size_t i = 0; i < 4; i++) {
    CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, st[i], NULL), PALLET_AWS_RETRY_TRANSIENT);
    CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, st[i], "Whatever"), PALLET_AWS_RETRY_TRANSIENT);
  }
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 429, NULL), PALLET_AWS_RETRY_THROTTLE);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 400, "InvalidParameterValue"),
                   PALLET_AWS_NO_RETRY);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 401, "AuthFailure"), PALLET_AWS_NO_RETRY);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 403, "SignatureDoesNotMatch"),
                   PALLET_AWS_NO_RETRY);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OK, 501, NULL), PALLET_AWS_NO_RETRY);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_OPERATION_TIMEDOUT, 0, NULL),
                   PALLET_AWS_RETRY_TIMEOUT);
  CURLcode resets[] = { CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING,
                        CURLE_COULDNT_CONNECT, CURLE_PARTIAL_FILE };
  for (size_t i = 0; i < 5; i++)
    CU_ASSERT_EQUAL (Pallet_aws_classify (resets[i], 0, NULL), PALLET_AWS_RETRY_TRANSIENT);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_PEER_FAILED_VERIFICATION, 0, NULL),
                   PALLET_AWS_NO_RETRY);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_URL_MALFORMAT, 0, NULL), PALLET_AWS_NO_RETRY);
  CU_ASSERT_EQUAL (Pallet_aws_classify (CURLE_WRITE_ERROR, 200, NULL), PALLET_AWS_NO_RETRY);
}

static void
test_backoff (void)
{
  const long base = 1000, max = 20000;
  for (int a = 0; a < 40; a++) {
    long cap = base;
    for (int i = 0; i < a && cap < max; i++)
      cap *= 2;
    if (cap > max)
      cap = max;
    CU_ASSERT_EQUAL (Pallet_aws_backoff_ms (a, base, max, 0.0), 0);
    long hi = Pallet_aws_backoff_ms (a, base, max, 0.999999);
    CU_ASSERT_TRUE (hi <= cap && hi >= cap - 1);
    CU_ASSERT_EQUAL (Pallet_aws_backoff_ms (a, base, max, 0.5), cap / 2);
    /* Full jitter: every draw within [0, cap]. */
    double sum = 0;
    for (int k = 0; k < 200; k++) {
      long d = Pallet_aws_backoff_ms (a, base, max, Pallet_aws_random ());
      CU_ASSERT_TRUE (d >= 0 && d <= cap);
      sum += (double) d;
    }
    /* Mean near cap/2: rules out a constant or a non-jittered delay. */
    CU_ASSERT_TRUE (sum / 200 > cap * 0.3 && sum / 200 < cap * 0.7);
  }
  CU_ASSERT_EQUAL (Pallet_aws_backoff_ms (0, 100, 20000, 0.5), 50);
  CU_ASSERT_EQUAL (Pallet_aws_backoff_ms (3, 100, 20000, 0.5), 400);
  CU_ASSERT_EQUAL (Pallet_aws_backoff_ms (30, 100, 20000, 0.5), 10000);
  CU_ASSERT_EQUAL (Pallet_aws_backoff_ms (-1, 100, 20000, 2.0), 99);
}

static void
test_quota (void)
{
  struct Pallet_aws_quota q = { 500, 500, false };
  int taken, n = 0, total = 0;
  while (Pallet_aws_quota_acquire (&q, PALLET_AWS_RETRY_THROTTLE, &taken)) {
    CU_ASSERT_EQUAL (taken, PALLET_AWS_RETRY_COST);
    total += taken;
    n++;
  }
  CU_ASSERT_EQUAL (n, 100);
  CU_ASSERT_EQUAL (q.tokens, 0);
  CU_ASSERT_EQUAL (taken, 0);
  Pallet_aws_quota_release (&q, 5); /* a retried call succeeded */
  CU_ASSERT_EQUAL (q.tokens, 5);
  CU_ASSERT_FALSE (Pallet_aws_quota_acquire (&q, PALLET_AWS_RETRY_TIMEOUT, &taken));
  CU_ASSERT_TRUE (Pallet_aws_quota_acquire (&q, PALLET_AWS_RETRY_TRANSIENT, &taken));
  for (int i = 0; i < 1000; i++)
    Pallet_aws_quota_release (&q, 0); /* first-try successes: +1 each */
  CU_ASSERT_EQUAL (q.tokens, 500);    /* capped */
  CU_ASSERT_TRUE (Pallet_aws_quota_acquire (&q, PALLET_AWS_RETRY_TIMEOUT, &taken));
  CU_ASSERT_EQUAL (taken, PALLET_AWS_TIMEOUT_COST);
  struct Pallet_aws_quota off = { 0, 0, true };
  CU_ASSERT_TRUE (Pallet_aws_quota_acquire (&off, PALLET_AWS_RETRY_THROTTLE, &taken));
  (void) total;
}

static void
test_status (void)
{
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("AuthFailure", 401), PALLET_E_AUTH);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("InvalidClientTokenId", 403), PALLET_E_AUTH);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("SignatureDoesNotMatch", 403), PALLET_E_AUTH);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("UnrecognizedClientException", 403), PALLET_E_AUTH);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("UnauthorizedOperation", 403), PALLET_E_AUTH);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("InvalidSnapshot.NotFound", 400), PALLET_E_NOT_FOUND);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("InvalidVolume.NotFound", 400), PALLET_E_NOT_FOUND);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("ResourceNotFoundException", 404),
                   PALLET_E_NOT_FOUND);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("IncorrectInstanceState", 400), PALLET_E_CONFLICT);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("IdempotentParameterMismatch", 400),
                   PALLET_E_CONFLICT);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("InvalidParameterValue", 400), PALLET_E_INVALID);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("ValidationException", 400), PALLET_E_INVALID);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("RequestLimitExceeded", 503), PALLET_E_TRANSIENT);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("SnapshotCreationPerVolumeRateExceeded", 400),
                   PALLET_E_FAILED);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code (NULL, 503), PALLET_E_TRANSIENT);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code (NULL, 404), PALLET_E_NOT_FOUND);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code ("", 403), PALLET_E_AUTH);
  CU_ASSERT_EQUAL (Pallet_aws_status_of_code (NULL, 400), PALLET_E_FAILED);
}

int
main (void)
{
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("retry", NULL, NULL);
  CU_add_test (s, "classification", test_classify);
  CU_add_test (s, "full-jitter backoff bounds", test_backoff);
  CU_add_test (s, "retry quota", test_quota);
  CU_add_test (s, "status of AWS codes", test_status);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  return fails ? 1 : 0;
}
