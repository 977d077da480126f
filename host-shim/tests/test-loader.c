/* SPDX-License-Identifier: Apache-2.0 */
/* Loader tests: one per failure, plus old and new minors.
 * argv[1]: fixture dir, argv[2]: the build's providers dir. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "pallet/host.h"

static const char *fixdir, *provdir;

static char *
fx (const char *name)
{
  static char buf[4096];
  snprintf (buf, sizeof buf, "%s/%s", fixdir, name);
  return buf;
}

/* Loads path expecting failure with status, and a message holding each
 * of the NULL-terminated substrings. */
static void
expect_fail (const char *path, int status, ...)
{
  struct pallet_module *m = NULL;
  int r = pallet_module_load (path, 0, &m);
  CU_ASSERT_EQUAL (r, status);
  CU_ASSERT_PTR_NULL (m);
  const char *msg = pallet_last_error ();
  va_list ap;
  va_start (ap, status);
  for (const char *s; (s = va_arg (ap, const char *)) != NULL;) {
    if (strstr (msg, s) == NULL)
      fprintf (stderr, "\nmessage \"%s\" lacks \"%s\"\n", msg, s);
    CU_ASSERT_PTR_NOT_NULL (strstr (msg, s));
  }
  va_end (ap);
  if (m)
    pallet_module_free (m);
}

static void
test_missing_file (void)
{
  expect_fail (fx ("does-not-exist.so"), PALLET_E_NOT_FOUND, "does-not-exist.so", "not found",
               NULL);
}

static void
test_missing_name (void)
{
  setenv ("PALLET_PROVIDER_PATH", fixdir, 1);
  expect_fail ("nosuchprovider", PALLET_E_NOT_FOUND, "pallet-provider-nosuchprovider.so", fixdir,
               "PALLET_PROVIDER_PATH", NULL);
  expect_fail ("Bad/../name", PALLET_E_NOT_FOUND, "Bad/../name", NULL);
  expect_fail ("UPPER", PALLET_E_NOT_FOUND, "not valid", "[a-z0-9-]+", NULL);
}

static void
test_not_elf (void)
{
  expect_fail (fx ("not-elf.so"), PALLET_E_IO, "not-elf.so", "not a shared object", NULL);
}

static void
test_relocatable (void)
{
  expect_fail (fx ("relocatable.so"), PALLET_E_IO, "relocatable.so",
               "cannot be loaded as a shared object", NULL);
}

static void
test_no_entry (void)
{
  expect_fail (fx ("no-entry.so"), PALLET_E_ABI, "no-entry.so", "pallet_provider_entry",
               "PALLET_PROVIDER_DEFINE", NULL);
}

static void
test_null_entry (void)
{
  expect_fail (fx ("null-entry.so"), PALLET_E_ABI, "null-entry.so", "returned NULL", NULL);
}

static void
test_major (void)
{
  expect_fail (fx ("major2.so"), PALLET_E_ABI, "major2.so", "ABI major 2", "major 1", NULL);
}

static void
test_small_size (void)
{
  expect_fail (fx ("small-size.so"), PALLET_E_ABI, "small-size.so", "struct_size 8", "header",
               NULL);
}

static void
test_no_transfer (void)
{
  char want[4200];
  snprintf (want, sizeof want, "provider %s must have a .transfer callback", fx ("no-transfer.so"));
  expect_fail (fx ("no-transfer.so"), PALLET_E_ABI, want, NULL);
}

static void
test_bad_name (void)
{
  expect_fail (fx ("bad-name.so"), PALLET_E_ABI, "bad-name.so", "Bad_Name", "[a-z0-9-]+", NULL);
}

static void
test_old_minor (void)
{
  /* Strictly, a vtable smaller than ABI 1.0's is refused, naming both
   * sizes ... */
  char want[64];
  snprintf (want, sizeof want, "%zu bytes of the ABI 1.0 vtable",
            (size_t) PALLET_PROVIDER_SIZE_1_0);
  expect_fail (fx ("old-minor.so"), PALLET_E_ABI, "old-minor.so", "struct_size 104", want,
               "PALLET_PROVIDER_DEFINE", NULL);
  /* ... and leniently, every slot past struct_size reads as NULL although
   * the fixture's static vtable sets them. */
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load (fx ("old-minor.so"), PALLET_LOAD_LENIENT, &m),
                         PALLET_OK);
  const struct pallet_provider *v = pallet_module_vtable (m);
  CU_ASSERT_EQUAL (pallet_module_struct_size (m), offsetof (struct pallet_provider, convert));
  CU_ASSERT_STRING_EQUAL (v->name, "oldminor");
  CU_ASSERT_PTR_NOT_NULL (v->transfer);
  CU_ASSERT_PTR_NOT_NULL (v->prepare_source);
  CU_ASSERT_PTR_NULL (v->convert);
  CU_ASSERT_PTR_NULL (v->build_vm);
  CU_ASSERT_PTR_NULL (v->cleanup);

  /* The host's defaults for the missing optional ops. */
  struct pallet_session *s = pallet_session_open (m, "{}", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_CONVERT, "vm", "{}", &r), PALLET_OK);
  CU_ASSERT_TRUE (r.skipped);
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_BUILD_VM, "vm", "{}", &r),
                   PALLET_E_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "build_vm"));
  pallet_call_result_free (&r);
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "vm", "{}", &r), PALLET_OK);
  CU_ASSERT_FALSE (r.skipped);
  pallet_call_result_free (&r);
  pallet_session_close (s);
  pallet_module_free (m);
}

static void
test_new_minor (void)
{
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load (fx ("new-minor.so"), 0, &m), PALLET_OK);
  const struct pallet_provider *v = pallet_module_vtable (m);
  CU_ASSERT_EQUAL (v->abi_minor, 99);
  CU_ASSERT_EQUAL (v->struct_size, pallet_module_struct_size (m));
  CU_ASSERT_TRUE (pallet_module_struct_size (m) > sizeof (struct pallet_provider));
  CU_ASSERT_PTR_NOT_NULL (v->cleanup);
  pallet_module_free (m);
}

static char hook_log[4096];

static char *
read_hook_log (void)
{
  static char buf[256];
  FILE *fp = fopen (hook_log, "r");
  size_t n = fp ? fread (buf, 1, sizeof buf - 1, fp) : 0;
  buf[n] = '\0';
  if (fp)
    fclose (fp);
  return buf;
}

static void
test_load_unload (void)
{
  snprintf (hook_log, sizeof hook_log, "%s/hooks.log", fixdir);
  remove (hook_log);
  setenv ("PALLET_FIXTURE_HOOK_LOG", hook_log, 1);
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load (fx ("hooks.so"), 0, &m), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (read_hook_log (), "load\n");
  struct pallet_session *s = pallet_session_open (m, "{}", NULL);
  CU_ASSERT_PTR_NOT_NULL (s);
  pallet_session_close (s);
  CU_ASSERT_STRING_EQUAL (read_hook_log (), "load\n");
  pallet_module_free (m);
  CU_ASSERT_STRING_EQUAL (read_hook_log (), "load\nunload\n");

  /* A failing load() refuses the provider, and unload() is not called. */
  remove (hook_log);
  setenv ("PALLET_FIXTURE_LOAD_FAILS", "1", 1);
  expect_fail (fx ("hooks.so"), PALLET_E_NOMEM, "hooks.so", "load() returned PALLET_E_NOMEM", NULL);
  unsetenv ("PALLET_FIXTURE_LOAD_FAILS");
  CU_ASSERT_STRING_EQUAL (read_hook_log (), "load\n");
  unsetenv ("PALLET_FIXTURE_HOOK_LOG");
}

/* Opens a session of the hooks fixture with config; NULL expected when
 * want is non-NULL, and the error must hold want. */
static void
expect_settings (struct pallet_module *m, const char *config, const char *want)
{
  struct pallet_session *s = pallet_session_open (m, config, NULL);
  if (want == NULL) {
    CU_ASSERT_PTR_NOT_NULL (s);
    if (s == NULL)
      fprintf (stderr, "\n%s refused: %s\n", config, pallet_last_error ());
  }
  else {
    CU_ASSERT_PTR_NULL (s);
    if (strstr (pallet_last_error (), want) == NULL)
      fprintf (stderr, "\nmessage \"%s\" lacks \"%s\"\n", pallet_last_error (), want);
    CU_ASSERT_PTR_NOT_NULL (strstr (pallet_last_error (), want));
  }
  pallet_session_close (s);
}

static void
test_settings (void)
{
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load (fx ("hooks.so"), 0, &m), PALLET_OK);
  expect_settings (m, "{}", NULL);
  expect_settings (m, "not json", NULL); /* open() reports that */
  expect_settings (m,
                   "{\"settings\": {\"target-az\": \"a\", "
                   "\"max-attempts\": \"7\", \"dry-run\": true, "
                   "\"vms\": [1]}, \"secret\": {\"anything\": \"x\"}}",
                   NULL);
  expect_settings (m,
                   "{\"settings\": {\"max-attempts\": 7, "
                   "\"dry-run\": \"false\"}}",
                   NULL);
  expect_settings (m, "{\"settings\": {\"taget-az\": \"a\"}}",
                   "unknown setting 'taget-az' for provider hooks; did you "
                   "mean 'target-az'?");
  expect_settings (m,
                   "{\"provider\": {\"spec\": {\"settings\": "
                   "{\"target-regoin\": \"a\"}}}}",
                   "did you mean 'target-region'? (in the Provider's "
                   "spec.settings");
  /* Nothing near: no suggestion, but where to look. */
  expect_settings (m, "{\"settings\": {\"colour\": \"blue\"}}",
                   "unknown setting 'colour' for provider hooks (in "
                   "config.settings; `pallet providers --dump hooks`");
  expect_settings (m, "{\"settings\": {\"max-attempts\": \"many\"}}",
                   "setting 'max-attempts' for provider hooks (in "
                   "config.settings) must be a int");
  expect_settings (m, "{\"settings\": {\"dry-run\": 1}}", "must be a bool");
  expect_settings (m, "{\"settings\": {\"target-az\": 1}}", "must be a string: the zone");

  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  pallet_module_dump (m, fp);
  fclose (fp);
  CU_ASSERT_PTR_NOT_NULL (strstr (buf, "\nhas_load=1\nhas_unload=1\n"
                                       "settings=described\n"
                                       "setting.target-az.type=string\n"
                                       "setting.target-az.default=\n"
                                       "setting.target-az.help=the zone\n"));
  CU_ASSERT_PTR_NOT_NULL (strstr (buf, "\nsetting.max-attempts.type=int\n"
                                       "setting.max-attempts.default=5\n"));
  free (buf);
  pallet_module_free (m);

  /* A description without help is refused at load. */
  expect_fail (fx ("bad-settings.so"), PALLET_E_ABI, "bad-settings.so",
               ".settings[0] ('region') needs a name, a PALLET_SETTING_* "
               "type and a help line",
               NULL);
}

static void
test_error_code_agreement (void)
{
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load (fx ("hooks.so"), 0, &m), PALLET_OK);
  struct pallet_session *s = pallet_session_open (m, "{}", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (s);
  struct pallet_call_result r;
  /* error(INVALID) then return FAILED: the status stands, the message
   * says whose bug it is. */
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_VALIDATE, "vm-1", "{}", &r), PALLET_E_FAILED);
  CU_ASSERT_PTR_NOT_NULL (r.error && strstr (r.error, "vm.id is missing"));
  CU_ASSERT_PTR_NOT_NULL (r.error
                          && strstr (r.error, "provider bug: "
                                              "host->error was given PALLET_E_INVALID but the op "
                                              "returned PALLET_E_FAILED"));
  pallet_call_result_free (&r);
  /* pallet_fail: one code on both channels, no note. */
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "vm-1", "{}", &r),
                   PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (r.error
                          && strstr (r.error, "instance i-1: not "
                                              "found"));
  CU_ASSERT_PTR_NULL (r.error ? strstr (r.error, "provider bug") : NULL);
  pallet_call_result_free (&r);
  pallet_session_close (s);
  pallet_module_free (m);
}

static void
test_old_providers_by_name (void)
{
  /* Built by abi/tests: from the frozen 1.0 header, and in C++. */
  setenv ("PALLET_PROVIDER_PATH", provdir, 1);
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load ("abi10", 0, &m), PALLET_OK);
  const struct pallet_provider *v = pallet_module_vtable (m);
  CU_ASSERT_EQUAL (v->abi_minor, 0);
  CU_ASSERT_EQUAL (pallet_module_struct_size (m), PALLET_PROVIDER_SIZE_1_0);
  CU_ASSERT_PTR_NULL (v->load);
  CU_ASSERT_PTR_NULL (v->unload);
  CU_ASSERT_PTR_NULL (v->settings);
  /* Undescribed: any setting reaches open(). */
  struct pallet_session *s = pallet_session_open (m, "{\"settings\": {\"anything\": 1}}", NULL);
  CU_ASSERT_PTR_NOT_NULL (s);
  struct pallet_call_result r;
  CU_ASSERT_EQUAL (pallet_session_call (s, PALLET_OP_TRANSFER, "vm-1",
                                        "{\"plan\": {}, \"vm\": {\"id\": "
                                        "\"vm-1\"}, \"state\": {}}",
                                        &r),
                   PALLET_OK);
  CU_ASSERT_PTR_NOT_NULL (r.state && strstr (r.state, "transferred"));
  pallet_call_result_free (&r);
  pallet_session_close (s);
  pallet_module_free (m);

  m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load ("cxx", 0, &m), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (pallet_module_vtable (m)->name, "cxx");
  CU_ASSERT_PTR_NOT_NULL (pallet_module_vtable (m)->settings);
  pallet_module_free (m);
}

static void
test_null_provider_by_name (void)
{
  setenv ("PALLET_PROVIDER_PATH", provdir, 1);
  char *p = pallet_provider_find ("null");
  CU_ASSERT_PTR_NOT_NULL_FATAL (p);
  CU_ASSERT_PTR_NOT_NULL (strstr (p, "/pallet-provider-null.so"));
  free (p);
  /* An earlier path entry wins; missing entries are skipped. */
  char path[8192];
  snprintf (path, sizeof path, "/nonexistent:%s:%s", provdir, fixdir);
  setenv ("PALLET_PROVIDER_PATH", path, 1);
  struct pallet_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL (pallet_module_load ("null", 0, &m), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (pallet_module_vtable (m)->name, "null");
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  pallet_module_dump (m, fp);
  fclose (fp);
  CU_ASSERT_PTR_NOT_NULL (strstr (buf, "\nabi_major=1\n"));
  CU_ASSERT_PTR_NOT_NULL (strstr (buf, "\nname=null\n"));
  CU_ASSERT_PTR_NOT_NULL (strstr (buf, "\nhas_transfer=1\n"));
  free (buf);
  pallet_module_free (m);
}

int
main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf (stderr, "usage: %s FIXTURE_DIR PROVIDER_DIR\n", argv[0]);
    return 2;
  }
  fixdir = argv[1];
  provdir = argv[2];
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 1;
  CU_pSuite s = CU_add_suite ("loader", NULL, NULL);
  CU_add_test (s, "missing file", test_missing_file);
  CU_add_test (s, "missing name", test_missing_name);
  CU_add_test (s, "not ELF", test_not_elf);
  CU_add_test (s, "ELF but not a shared object", test_relocatable);
  CU_add_test (s, "no entry symbol", test_no_entry);
  CU_add_test (s, "entry returns NULL", test_null_entry);
  CU_add_test (s, "wrong major", test_major);
  CU_add_test (s, "struct_size too small", test_small_size);
  CU_add_test (s, "missing required op", test_no_transfer);
  CU_add_test (s, "bad name", test_bad_name);
  CU_add_test (s, "old minor reads missing ops as NULL", test_old_minor);
  CU_add_test (s, "new minor extra slots ignored", test_new_minor);
  CU_add_test (s, "null provider by name", test_null_provider_by_name);
  CU_add_test (s, "load and unload hooks", test_load_unload);
  CU_add_test (s, "settings checked against the description", test_settings);
  CU_add_test (s, "error code and returned status agree", test_error_code_agreement);
  CU_add_test (s, "ABI 1.0 and C++ providers load", test_old_providers_by_name);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned failed = CU_get_number_of_failures ();
  unsigned run = CU_get_number_of_tests_run ();
  CU_cleanup_registry ();
  return failed == 0 && run == 17 ? 0 : 1;
}
