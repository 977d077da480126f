/* Status names and the op-call wrapper, driven through provider-null.
 * argv[1]: fixture dir, argv[2]: the build's providers dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet/host.h"

static const char *provdir;

static void
test_status_names (void)
{
  for (int s = 0; s < PALLET_E_LAST; s++) {
    const char *n = pallet_status_name (s);
    CU_ASSERT_PTR_NOT_NULL (strstr (n, "PALLET_"));
    CU_ASSERT_STRING_NOT_EQUAL (n, "PALLET_E_UNKNOWN");
    CU_ASSERT_STRING_NOT_EQUAL (pallet_strerror (s), "unknown status code");
    CU_ASSERT_EQUAL (pallet_status_from_name (n), s);
    for (int t = 0; t < s; t++)
      CU_ASSERT_STRING_NOT_EQUAL (n, pallet_status_name (t));
  }
  CU_ASSERT_STRING_EQUAL (pallet_status_name (PALLET_E_INVALID), "PALLET_E_INVALID");
  CU_ASSERT_STRING_EQUAL (pallet_status_name (PALLET_E_LAST), "PALLET_E_UNKNOWN");
  CU_ASSERT_STRING_EQUAL (pallet_status_name (-1), "PALLET_E_UNKNOWN");
  CU_ASSERT_STRING_EQUAL (pallet_strerror (999), "unknown status code");
  CU_ASSERT_EQUAL (pallet_status_from_name ("transient"), PALLET_E_TRANSIENT);
  CU_ASSERT_EQUAL (pallet_status_from_name ("nope"), -1);
  for (int op = 0; op < PALLET_OP_LAST; op++)
    CU_ASSERT_EQUAL (pallet_op_from_name (pallet_op_name (op)), op);
  CU_ASSERT_PTR_NULL (pallet_op_name (PALLET_OP_LAST));
}

/* Opens provider-null with settings text. */
static struct pallet_module *mod;

static struct pallet_session *
open_null (const char *settings)
{
  char config[4096];
  snprintf (config, sizeof config, "{\"settings\": %s}", settings);
  struct pallet_session_params p = { "/state/dir", "/work/dir" };
  return pallet_session_open (mod, config, &p);
}

static const char input[] =
  "{\"plan\":{\"name\":\"p\"},\"vm\":{\"id\":\"vm-1\",\"name\":\"one\"},"
  "\"state\":{},\"options\":{}}";

static void
test_pending_then_ok (void)
{
  struct pallet_session *s = open_null ("{\"pending\": {\"transfer\": 1}, "
                                        "\"retry_after_ms\": 250}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r),
                   PALLET_PENDING);
  CU_ASSERT_TRUE (r.has_retry_after);
  CU_ASSERT_EQUAL (r.retry_after_ms, 250);
  CU_ASSERT_PTR_NULL (r.error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.state);
  /* Feed the state back, as the driver does. */
  char next[4096];
  snprintf (next, sizeof next, "{\"plan\":{},\"vm\":{\"id\":\"vm-1\"},\"state\":%s,"
            "\"options\":{}}", r.state);
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", next, &r),
                   PALLET_OK);
  json_t *st = json_loads (r.state, 0, NULL);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (st, "transfer")),
                          "done");
  json_decref (st);
  pallet_call_result_free (&r);
  pallet_session_close (s);
}

static void
test_silent_error (void)
{
  struct pallet_session *s = open_null ("{\"misbehave\": {\"build_vm\": "
                                        "\"silent-error\"}}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_BUILD_VM, "one", input, &r),
                   PALLET_E_FAILED);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.error);
  CU_ASSERT_PTR_NOT_NULL (strstr (r.error, "provider null"));
  CU_ASSERT_PTR_NOT_NULL (strstr (r.error, "build_vm"));
  CU_ASSERT_PTR_NOT_NULL (strstr (r.error, "PALLET_E_FAILED"));
  pallet_call_result_free (&r);
  pallet_session_close (s);
}

static void
test_pending_without_retry (void)
{
  struct pallet_session *s = open_null ("{\"misbehave\": {\"transfer\": "
                                        "\"pending-no-retry\"}}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r),
                   PALLET_E_ABI);
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "retry-after"));
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "transfer"));
  pallet_call_result_free (&r);
  pallet_session_close (s);
}

static void
test_bad_json (void)
{
  struct pallet_session *s = open_null ("{\"misbehave\": {\"convert\": "
                                        "\"bad-json\"}}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_CONVERT, "one", input, &r),
                   PALLET_E_ABI);
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "not valid JSON"));
  CU_ASSERT_PTR_NULL (r.state);
  pallet_call_result_free (&r);
  pallet_session_close (s);
}

static void
test_error_and_items (void)
{
  struct pallet_session *s = open_null ("{\"vms\": [{\"id\": \"vm-2\"}]}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_VALIDATE, "one", input, &r),
                   PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "vm-1"));
  CU_ASSERT_EQUAL (r.n_items, 1);
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_INVENTORY, NULL,
                                        "{\"kind\":\"instances\"}", &r),
                   PALLET_OK);
  CU_ASSERT_EQUAL (r.n_items, 1);
  CU_ASSERT_PTR_NOT_NULL (r.n_items && strstr (r.items[0], "vm-2"));
  pallet_call_result_free (&r);
  pallet_session_close (s);
}

static void
test_cancel (void)
{
  struct pallet_session *s = open_null ("{\"delay_ms\": 5000}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  pallet_cancel ();
  CU_ASSERT_TRUE (pallet_cancel_requested ());
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r),
                   PALLET_E_CANCELLED);
  pallet_call_result_free (&r);
  pallet_cancel_reset ();
  CU_ASSERT_FALSE (pallet_cancel_requested ());
  pallet_session_close (s);
}

static void
test_open_fails (void)
{
  struct pallet_session *s = pallet_session_open (mod, "[not an object", NULL);
  CU_ASSERT_PTR_NULL (s);
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "provider null"));
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "open"));
}

int
main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf (stderr, "usage: %s FIXTURE_DIR PROVIDER_DIR\n", argv[0]);
    return 2;
  }
  provdir = argv[1 + 1];
  char path[4096];
  snprintf (path, sizeof path, "%s/pallet-provider-null.so", provdir);
  if (pallet_module_load (path, 0, &mod) != PALLET_OK) {
    fprintf (stderr, "%s\n", pallet_last_error ());
    return 1;
  }
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 1;
  CU_pSuite s = CU_add_suite ("call", NULL, NULL);
  CU_add_test (s, "status names", test_status_names);
  CU_add_test (s, "pending then ok", test_pending_then_ok);
  CU_add_test (s, "error without message", test_silent_error);
  CU_add_test (s, "pending without retry-after", test_pending_without_retry);
  CU_add_test (s, "emit of bad JSON", test_bad_json);
  CU_add_test (s, "error and items", test_error_and_items);
  CU_add_test (s, "cancel", test_cancel);
  CU_add_test (s, "open fails", test_open_fails);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned failed = CU_get_number_of_failures ();
  unsigned run = CU_get_number_of_tests_run ();
  CU_cleanup_registry ();
  pallet_module_free (mod);
  return failed == 0 && run == 8 ? 0 : 1;
}
