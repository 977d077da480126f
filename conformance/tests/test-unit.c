/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of pallet-conformance's own pieces: the JSON Schema subset
 * validator, the documented schemas, the ELF export reader.
 * argv: GOOD.so EXPORTS.so SCHEMA_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "conformance.h"

struct pc_ctx pc;
static const char *good_so, *exports_so, *schema_dir;

static json_t *
J (const char *text)
{
  json_t *j = json_loads (text, JSON_DECODE_ANY, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (j);
  return j;
}

/* 1 if instance matches schema; the reason must name the path on a miss. */
static int
valid (const char *schema, const char *instance, const char *path_in_why)
{
  json_t *s = J (schema), *v = J (instance);
  char *why = NULL;
  int ok;
  CU_ASSERT_TRUE (pc_schema_check (s, &why));
  free (why);
  ok = pc_schema_validate (s, v, &why);
  if (!ok) {
    CU_ASSERT_PTR_NOT_NULL (why);
    if (why && path_in_why)
      CU_ASSERT_PTR_NOT_NULL (strstr (why, path_in_why));
  }
  else
    CU_ASSERT_PTR_NULL (why);
  free (why);
  json_decref (s);
  json_decref (v);
  return ok;
}

static void
test_type (void)
{
  CU_ASSERT_TRUE (valid ("{\"type\":\"object\"}", "{}", NULL));
  CU_ASSERT_FALSE (valid ("{\"type\":\"object\"}", "[]", "top level"));
  CU_ASSERT_TRUE (valid ("{\"type\":[\"string\",\"null\"]}", "null", NULL));
  CU_ASSERT_FALSE (valid ("{\"type\":[\"string\",\"null\"]}", "1", NULL));
  CU_ASSERT_TRUE (valid ("{\"type\":\"integer\"}", "3", NULL));
  CU_ASSERT_TRUE (valid ("{\"type\":\"integer\"}", "3.0", NULL));
  CU_ASSERT_FALSE (valid ("{\"type\":\"integer\"}", "3.5", NULL));
  CU_ASSERT_TRUE (valid ("{\"type\":\"number\"}", "3", NULL));
  CU_ASSERT_FALSE (valid ("{\"type\":\"boolean\"}", "0", NULL));
}

static void
test_object (void)
{
  const char *s = "{\"type\":\"object\",\"required\":[\"a\"],"
                  "\"properties\":{\"a\":{\"type\":\"string\"},"
                  "\"m\":{\"type\":\"object\",\"properties\":{\"n\":{\"minimum\":2}}}},"
                  "\"additionalProperties\":false}";
  CU_ASSERT_TRUE (valid (s, "{\"a\":\"x\"}", NULL));
  CU_ASSERT_FALSE (valid (s, "{}", "\"a\" is missing"));
  CU_ASSERT_FALSE (valid (s, "{\"a\":1}", "/a"));
  CU_ASSERT_FALSE (valid (s, "{\"a\":\"x\",\"b\":1}", "\"b\" is not allowed"));
  CU_ASSERT_FALSE (valid (s, "{\"a\":\"x\",\"m\":{\"n\":1}}", "/m/n"));
  CU_ASSERT_TRUE (valid (s, "{\"a\":\"x\",\"m\":{\"n\":2}}", NULL));
  CU_ASSERT_TRUE (
      valid ("{\"additionalProperties\":{\"type\":\"string\"}}", "{\"k\":\"v\"}", NULL));
  CU_ASSERT_FALSE (valid ("{\"additionalProperties\":{\"type\":\"string\"}}", "{\"k\":1}", "/k"));
}

static void
test_items_enum_pattern (void)
{
  CU_ASSERT_TRUE (valid ("{\"items\":{\"enum\":[1,\"a\"]}}", "[1,\"a\",1]", NULL));
  CU_ASSERT_FALSE (valid ("{\"items\":{\"enum\":[1,\"a\"]}}", "[1,2]", "/1"));
  CU_ASSERT_TRUE (valid ("{\"pattern\":\"^[a-z]+$\"}", "\"abc\"", NULL));
  CU_ASSERT_FALSE (valid ("{\"pattern\":\"^[a-z]+$\"}", "\"aBc\"", "pattern"));
  /* pattern and minimum only constrain their own types. */
  CU_ASSERT_TRUE (valid ("{\"pattern\":\"^a$\",\"minimum\":5}", "[]", NULL));
  CU_ASSERT_FALSE (valid ("{\"minimum\":5}", "4.5", "minimum"));
}

static void
test_subset_enforced (void)
{
  const char *bad[] = {
    "{\"minLength\":1}",    "{\"type\":\"float\"}",
    "{\"pattern\":\"(\"}",  "{\"properties\":{\"a\":{\"oneOf\":[]}}}",
    "{\"required\":\"a\"}", "[]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *s = J (bad[i]);
    char *why = NULL;
    CU_ASSERT_FALSE (pc_schema_check (s, &why));
    CU_ASSERT_PTR_NOT_NULL (why);
    free (why);
    json_decref (s);
  }
}

/* The program's built-in copies are the files in docs/schemas. */
static void
test_embedded_match_files (void)
{
  const char *names[] = { "validate-finding", "inventory-item", "state",
                          "build-vm-item",    "cleanup-item",   "result" };
  json_t *emb[6];
  char *why = NULL;
  CU_ASSERT_TRUE_FATAL (pc_schemas_load (NULL, &why));
  for (size_t i = 0; i < 6; i++)
    emb[i] = json_incref ((json_t *) pc_schema_get (names[i]));
  CU_ASSERT_TRUE_FATAL (pc_schemas_load (schema_dir, &why));
  for (size_t i = 0; i < 6; i++) {
    CU_ASSERT_PTR_NOT_NULL (emb[i]);
    CU_ASSERT_TRUE (json_equal (emb[i], (json_t *) pc_schema_get (names[i])));
    json_decref (emb[i]);
  }
  CU_ASSERT_FALSE (pc_schemas_load ("/nonexistent", &why));
  CU_ASSERT_PTR_NOT_NULL (why);
  free (why);
}

static int
doc_valid (const char *name, const char *instance)
{
  json_t *v = J (instance);
  char *why = NULL;
  int ok = pc_schema_validate (pc_schema_get (name), v, &why);
  free (why);
  json_decref (v);
  return ok;
}

static void
test_documented_schemas (void)
{
  char *why = NULL;
  CU_ASSERT_TRUE_FATAL (pc_schemas_load (NULL, &why));
  CU_ASSERT_TRUE (doc_valid (
      "build-vm-item", "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
                       "\"metadata\":{\"name\":\"web-1\",\"namespace\":\"demo\"},\"spec\":{}}"));
  CU_ASSERT_TRUE (
      doc_valid ("build-vm-item",
                 "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"}}"));
  CU_ASSERT_FALSE (doc_valid ("build-vm-item",
                              "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\"}"));
  CU_ASSERT_FALSE (doc_valid ("build-vm-item",
                              "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
                              "\"metadata\":{\"name\":\"Web_1\"}}"));
  CU_ASSERT_TRUE (doc_valid (
      "validate-finding", "{\"category\":\"Critical\",\"type\":\"VMNotFound\",\"message\":\"m\"}"));
  CU_ASSERT_FALSE (doc_valid ("validate-finding", "{\"category\":\"Fatal\",\"message\":\"m\"}"));
  CU_ASSERT_FALSE (doc_valid ("validate-finding", "{\"category\":\"Error\"}"));
  CU_ASSERT_TRUE (doc_valid ("inventory-item", "{\"id\":\"i-1\",\"x\":[1]}"));
  CU_ASSERT_FALSE (doc_valid ("inventory-item", "{\"id\":\"\"}"));
  CU_ASSERT_TRUE (doc_valid (
      "cleanup-item", "{\"kind\":\"snapshot\",\"id\":\"snap-1\",\"action\":\"already-gone\"}"));
  CU_ASSERT_FALSE (doc_valid ("cleanup-item", "{\"kind\":\"snapshot\",\"id\":\"snap-1\"}"));
  CU_ASSERT_TRUE (doc_valid ("state", "{\"anything\":[1,{}]}"));
  CU_ASSERT_FALSE (doc_valid ("state", "[]"));
  CU_ASSERT_TRUE (doc_valid ("result", "{\"count\":2}"));
  CU_ASSERT_FALSE (doc_valid ("result", "{\"count\":-1}"));
  pc_schemas_free ();
}

static void
test_elf (void)
{
  char *why = NULL, tmpl[] = "/tmp/pc-elf-XXXXXX";
  json_t *n = pc_elf_exports (good_so, &why), *e;
  size_t i;
  int seen = 0;
  CU_ASSERT_PTR_NULL (why);
  CU_ASSERT_EQUAL_FATAL (json_array_size (n), 1);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_array_get (n, 0)), "pallet_provider_entry");
  json_decref (n);

  n = pc_elf_exports (exports_so, &why);
  CU_ASSERT_PTR_NOT_NULL_FATAL (n);
  json_array_foreach (n, i, e)
    seen |= (strcmp (json_string_value (e), "mock_helper") == 0)
            | (strcmp (json_string_value (e), "mock_debug_level") == 0) << 1
            | (strcmp (json_string_value (e), "pallet_provider_entry") == 0) << 2;
  CU_ASSERT_EQUAL (seen, 7);
  json_decref (n);

  /* Not ELF, missing, truncated: an error, never a crash. */
  CU_ASSERT_PTR_NULL (pc_elf_exports (schema_dir, &why));
  CU_ASSERT_PTR_NOT_NULL (why);
  free (why);
  CU_ASSERT_PTR_NULL (pc_elf_exports ("/nonexistent.so", &why));
  CU_ASSERT_PTR_NOT_NULL (why);
  free (why);
  {
    FILE *in = fopen (good_so, "rb");
    char buf[256];
    size_t got;
    int fd = mkstemp (tmpl);
    CU_ASSERT_FATAL (in != NULL && fd != -1);
    got = fread (buf, 1, sizeof buf, in);
    fclose (in);
    CU_ASSERT_EQUAL (write (fd, buf, got), (ssize_t) got);
    close (fd);
    CU_ASSERT_PTR_NULL (pc_elf_exports (tmpl, &why));
    CU_ASSERT_PTR_NOT_NULL (why);
    free (why);
    unlink (tmpl);
  }
}

int
main (int argc, char **argv)
{
  CU_pSuite s;
  unsigned failed;
  if (argc != 4) {
    fprintf (stderr, "usage: %s GOOD.so EXPORTS.so SCHEMA_DIR\n", argv[0]);
    return 2;
  }
  good_so = argv[1];
  exports_so = argv[2];
  schema_dir = argv[3];
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("conformance-unit", NULL, NULL);
  CU_add_test (s, "schema type", test_type);
  CU_add_test (s, "schema object keywords", test_object);
  CU_add_test (s, "schema items, enum, pattern, minimum", test_items_enum_pattern);
  CU_add_test (s, "schema subset enforced", test_subset_enforced);
  CU_add_test (s, "embedded schemas match docs/schemas", test_embedded_match_files);
  CU_add_test (s, "documented schemas", test_documented_schemas);
  CU_add_test (s, "ELF export reader", test_elf);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  pc_schemas_free ();
  return failed ? 1 : 0;
}
