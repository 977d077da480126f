/* SPDX-License-Identifier: Apache-2.0 */
/* Status names and the op-call wrapper, driven through provider-null.
 * argv[1]: fixture dir, argv[2]: the build's providers dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

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
  struct pallet_session_params p = { sizeof p, "/state/dir", "/work/dir" };
  return pallet_session_open (mod, config, &p);
}

static const char input[] = "{\"plan\":{\"name\":\"p\"},\"vm\":{\"id\":\"vm-1\",\"name\":\"one\"},"
                            "\"state\":{},\"options\":{}}";

static void
test_pending_then_ok (void)
{
  struct pallet_session *s = open_null ("{\"pending\": {\"transfer\": 1}, "
                                        "\"retry_after_ms\": 250}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r), PALLET_PENDING);
  CU_ASSERT_TRUE (r.has_retry_after);
  CU_ASSERT_EQUAL (r.retry_after_ms, 250);
  CU_ASSERT_PTR_NULL (r.error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (r.state);
  /* Feed the state back, as the driver does. */
  char next[4096];
  snprintf (next, sizeof next,
            "{\"plan\":{},\"vm\":{\"id\":\"vm-1\"},\"state\":%s,"
            "\"options\":{}}",
            r.state);
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", next, &r), PALLET_OK);
  json_t *st = json_loads (r.state, 0, NULL);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (st, "transfer")), "done");
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
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_BUILD_VM, "one", input, &r), PALLET_E_FAILED);
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
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r), PALLET_E_ABI);
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
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_CONVERT, "one", input, &r), PALLET_E_ABI);
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
  CU_ASSERT_EQUAL (
      pallet_session_call (s, PALLET_OP_INVENTORY, NULL, "{\"kind\":\"instances\"}", &r),
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

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct slow_call {
  struct pallet_session *s;
  struct pallet_cancel *cancel;
  int status;
  double took;
};

static void *
slow_transfer (void *arg)
{
  struct slow_call *sc = arg;
  struct pallet_call_options o = PALLET_CALL_OPTIONS_INIT;
  o.vm = "one";
  o.cancel = sc->cancel;
  struct pallet_call_result r;
  double t0 = now_s ();
  sc->status = pallet_session_call_ex (sc->s, PALLET_OP_TRANSFER, input, &o, &r);
  sc->took = now_s () - t0;
  pallet_call_result_free (&r);
  return NULL;
}

/* A token cancels the call it was given to, and only that one: a second
 * call running at the same time (no token) runs its full 600 ms. */
static void
test_cancel_token (void)
{
  struct pallet_cancel *tok = pallet_cancel_new ();
  CU_ASSERT_PTR_NOT_NULL_FATAL (tok);
  CU_ASSERT_EQUAL (pallet_cancel_level (tok), 0);
  struct pallet_session *s1 = open_null ("{\"delay_ms\": 600}");
  struct pallet_session *s2 = open_null ("{\"delay_ms\": 600}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s1);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s2);
  struct slow_call a = { s1, tok, -1, 0 }, b = { s2, NULL, -1, 0 };
  pthread_t ta, tb;
  pthread_create (&ta, NULL, slow_transfer, &a);
  pthread_create (&tb, NULL, slow_transfer, &b);
  struct timespec ts = { 0, 100 * 1000000L };
  nanosleep (&ts, NULL);
  pallet_cancel_trigger (tok);
  pthread_join (ta, NULL);
  pthread_join (tb, NULL);
  CU_ASSERT_EQUAL (a.status, PALLET_E_CANCELLED);
  CU_ASSERT (a.took < 0.5);
  CU_ASSERT_EQUAL (b.status, PALLET_OK);
  CU_ASSERT (b.took >= 0.55);
  CU_ASSERT_FALSE (pallet_cancel_requested ());
  CU_ASSERT_EQUAL (pallet_cancel_level (tok), 1);
  pallet_cancel_trigger (tok);
  pallet_cancel_trigger (tok);
  CU_ASSERT_EQUAL (pallet_cancel_level (tok), 2);
  pallet_cancel_trigger (NULL);
  CU_ASSERT_EQUAL (pallet_cancel_level (NULL), 0);
  pallet_cancel_free (tok);
  pallet_session_close (s1);
  pallet_session_close (s2);
}

static void
count_events (const struct pallet_event *ev, void *opaque)
{
  if (ev->type == PALLET_EVENT_PROGRESS && strcmp (ev->step, "transfer") == 0)
    ++*(int *) opaque;
}

/* The per-call callback gets the call's progress (not the global handler);
 * a bad struct_size is refused before the provider is called. */
static void
test_call_ex_events (void)
{
  struct pallet_session *s = open_null ("{}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  int n = 0;
  struct pallet_call_options o;
  pallet_call_options_init (&o);
  o.vm = "labelled";
  o.on_event = count_events;
  o.opaque = &n;
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call_ex (s, PALLET_OP_TRANSFER, input, &o, &r), PALLET_OK);
  pallet_call_result_free (&r);
  CU_ASSERT (n >= 1);
  o.struct_size = 4;
  CU_ASSERT_EQUAL (pallet_session_call_ex (s, PALLET_OP_TRANSFER, input, &o, &r), PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "pallet_call_options"));
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "pallet_call_options"));
  pallet_call_result_free (&r);
  pallet_session_close (s);
}

/* A failed call's message does not outlive the next successful call. */
static void
test_last_error_cleared (void)
{
  CU_ASSERT_PTR_NULL (pallet_session_open (mod, "[not an object", NULL));
  CU_ASSERT_STRING_NOT_EQUAL (pallet_last_error (), "");
  struct pallet_session *s = open_null ("{}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  CU_ASSERT_STRING_EQUAL (pallet_last_error (), "");
  CU_ASSERT_EQUAL (pallet_module_load ("/nonexistent/x.so", 0, &(struct pallet_module *){ NULL }),
                   PALLET_E_NOT_FOUND);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r), PALLET_OK);
  pallet_call_result_free (&r);
  CU_ASSERT_STRING_EQUAL (pallet_last_error (), "");
  pallet_session_close (s);
}

/* The origin tells the host's refusals from the provider's failures, and
 * both from success. */
static void
test_error_origin (void)
{
  struct pallet_session *s = open_null ("{\"fail_at\": \"transfer\", "
                                        "\"fail_code\": \"INVALID\"}");
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  CU_ASSERT_EQUAL (pallet_last_error_origin (), PALLET_ORIGIN_NONE);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "one", input, &r), PALLET_E_INVALID);
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_last_error_origin (), PALLET_ORIGIN_PROVIDER);
  CU_ASSERT_EQUAL (pallet_session_call (s, 99, "one", input, &r), PALLET_E_INVALID);
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_last_error_origin (), PALLET_ORIGIN_HOST);
  struct pallet_inventory_options io = PALLET_INVENTORY_OPTIONS_INIT;
  io.kind = "instances";
  io.query = "where cpus >>= 4";
  CU_ASSERT_EQUAL (pallet_inventory (s, &io), PALLET_E_INVALID);
  CU_ASSERT_EQUAL (pallet_last_error_origin (), PALLET_ORIGIN_HOST);
  pallet_session_close (s);
}

/* Session params are versioned: a struct_size that is not one is
 * refused, naming the struct. */
static void
test_session_params_size (void)
{
  struct pallet_session_params p = { 3, "/s", "/w" };
  CU_ASSERT_PTR_NULL (pallet_session_open (mod, "{}", &p));
  CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), "pallet_session_params"));
  struct pallet_session_params ok = PALLET_SESSION_PARAMS_INIT;
  ok.state_dir = "/s";
  struct pallet_session *s = pallet_session_open (mod, "{}", &ok);
  CU_ASSERT_PTR_NOT_NULL (s);
  pallet_session_close (s);
}

/* The dump as a string: the same text as the stream form. */
static void
test_dump_text (void)
{
  char *text = pallet_module_dump_text (mod);
  CU_ASSERT_PTR_NOT_NULL_FATAL (text);
  CU_ASSERT_PTR_NOT_NULL (strstr (text, "\nname=null\n"));
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL (fp);
  pallet_module_dump (mod, fp);
  fclose (fp);
  CU_ASSERT_STRING_EQUAL (text, buf);
  free (buf);
  free (text);
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
  CU_add_test (s, "cancel token", test_cancel_token);
  CU_add_test (s, "call_ex events", test_call_ex_events);
  CU_add_test (s, "last error cleared", test_last_error_cleared);
  CU_add_test (s, "error origin", test_error_origin);
  CU_add_test (s, "session params size", test_session_params_size);
  CU_add_test (s, "dump text", test_dump_text);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned failed = CU_get_number_of_failures ();
  unsigned run = CU_get_number_of_tests_run ();
  CU_cleanup_registry ();
  pallet_module_free (mod);
  return failed == 0 && run == 14 ? 0 : 1;
}
