/* SPDX-License-Identifier: Apache-2.0 */
/* DNS-1123 label sanitiser, label values and VM naming. */

#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet-ec2-manifest.h"

#define MAXL PALLET_EC2_DNS1123_LABEL_MAX

/* Sanitises in with no taken names; checks the result is a label. */
static char *
clean (const char *in, const char *seed, int *changed)
{
  char *out = NULL;

  CU_ASSERT_EQUAL_FATAL (Pallet_ec2_dns1123_label (in, seed, NULL, 0, MAXL, &out, changed), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL (out);
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label (out));
  return out;
}

static void
test_valid_unchanged (void)
{
  int changed = -1;
  char *s = clean ("web-01", NULL, &changed);

  CU_ASSERT_STRING_EQUAL (s, "web-01");
  CU_ASSERT_EQUAL (changed, 0);
  free (s);
}

static void
test_lowercase_and_punctuation (void)
{
  int changed = 0;
  char *s = clean ("My_Web.Server 01", NULL, &changed);

  CU_ASSERT_STRING_EQUAL (s, "my-web-server-01");
  CU_ASSERT_EQUAL (changed, 1);
  free (s);
}

static void
test_shell_metacharacters (void)
{
  char *s = clean ("a;rm -rf /`$(reboot)`\n|&>x<'\"\t", NULL, NULL);

  CU_ASSERT_STRING_EQUAL (s, "a-rm-rf-reboot-x");
  free (s);
  s = clean ("--leading--and--trailing--", NULL, NULL);
  CU_ASSERT_STRING_EQUAL (s, "leading-and-trailing");
  free (s);
}

static void
test_non_ascii (void)
{
  char *s = clean ("\xc3\x9c"
                   "n"
                   "\xc3\xaf"
                   "c"
                   "\xc3\xb8"
                   "d"
                   "\xc3\xa9"
                   "-VM",
                   NULL, NULL);

  CU_ASSERT_STRING_EQUAL (s, "n-c-d-vm");
  free (s);
}

static void
test_very_long (void)
{
  char in[301], *s;

  memset (in, 'A', 300);
  in[300] = '\0';
  s = clean (in, NULL, NULL);
  CU_ASSERT_EQUAL (strlen (s), 63);
  CU_ASSERT_EQUAL (strspn (s, "a"), 63);
  free (s);

  /* A cut that lands after a dash must not end the label with it. */
  memset (in, 'b', 62);
  strcpy (in + 62, "-cdef");
  s = clean (in, NULL, NULL);
  CU_ASSERT_EQUAL (strlen (s), 62);
  CU_ASSERT_EQUAL (s[61], 'b');
  free (s);
}

static void
test_empty_gets_hash (void)
{
  char *a = clean ("\xe6\x97\xa5\xe6\x9c\xac", "i-1", NULL);
  char *b = clean ("\xe6\x97\xa5\xe6\x9c\xac", "i-1", NULL);
  char *c = clean ("\xe6\x97\xa5\xe6\x9c\xac", "i-2", NULL);
  char *d = clean ("", "i-1", NULL);

  CU_ASSERT_EQUAL (strncmp (a, "vm-", 3), 0);
  CU_ASSERT_EQUAL (strlen (a), 9);
  CU_ASSERT_STRING_EQUAL (a, b);     /* deterministic */
  CU_ASSERT_STRING_NOT_EQUAL (a, c); /* seeded */
  CU_ASSERT_STRING_EQUAL (a, d);
  free (a);
  free (b);
  free (c);
  free (d);
}

static void
test_collision_hash_suffix (void)
{
  const char *taken[] = { "web", "other" };
  char *a = NULL, *b = NULL, *a2 = NULL;
  int changed = 0;

  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label ("Web", "i-1", taken, 2, MAXL, &a, &changed), 0);
  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label ("web", "i-2", taken, 2, MAXL, &b, NULL), 0);
  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label ("Web", "i-1", taken, 2, MAXL, &a2, NULL), 0);
  CU_ASSERT_EQUAL (changed, 1);
  CU_ASSERT_EQUAL (strncmp (a, "web-", 4), 0);
  CU_ASSERT_EQUAL (strlen (a), 10);
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label (a));
  CU_ASSERT_STRING_NOT_EQUAL (a, b);
  CU_ASSERT_STRING_EQUAL (a, a2);
  CU_ASSERT_STRING_NOT_EQUAL (a, "web");
  free (a);
  free (b);
  free (a2);
}

static void
test_collision_at_max_length (void)
{
  char in[64], *out = NULL;
  const char *taken[1];

  memset (in, 'z', 63);
  in[63] = '\0';
  taken[0] = in;
  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label (in, "seed", taken, 1, MAXL, &out, NULL), 0);
  CU_ASSERT_EQUAL (strlen (out), 63);
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label (out));
  CU_ASSERT_STRING_NOT_EQUAL (out, in);
  free (out);
}

static void
test_bad_arguments (void)
{
  char *out = (char *) 1;

  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label (NULL, NULL, NULL, 0, MAXL, &out, NULL), -1);
  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label ("x", NULL, NULL, 0, 64, &out, NULL), -1);
  CU_ASSERT_EQUAL (Pallet_ec2_dns1123_label ("x", NULL, NULL, 0, 3, &out, NULL), -1);
}

static void
test_predicates (void)
{
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label ("a"));
  CU_ASSERT_TRUE (Pallet_ec2_is_dns1123_label ("0-a"));
  CU_ASSERT_FALSE (Pallet_ec2_is_dns1123_label (""));
  CU_ASSERT_FALSE (Pallet_ec2_is_dns1123_label ("-a"));
  CU_ASSERT_FALSE (Pallet_ec2_is_dns1123_label ("a-"));
  CU_ASSERT_FALSE (Pallet_ec2_is_dns1123_label ("A"));
  CU_ASSERT_FALSE (Pallet_ec2_is_dns1123_label ("a.b"));
  CU_ASSERT_FALSE (Pallet_ec2_is_dns1123_label (NULL));
  CU_ASSERT_TRUE (Pallet_ec2_is_label_value (""));
  CU_ASSERT_TRUE (Pallet_ec2_is_label_value ("i-0abc_D.1"));
  CU_ASSERT_FALSE (Pallet_ec2_is_label_value ("a b"));
  CU_ASSERT_FALSE (Pallet_ec2_is_label_value ("-a"));
  CU_ASSERT_FALSE (Pallet_ec2_is_label_value (
      "0123456789012345678901234567890123456789012345678901234567890123"));
}

/* Pallet_ec2_vm_name on a plan built from text. */
static char *
vm_name (const char *plan_text, const char *vm_text, const char *state_text, json_t *notes)
{
  json_t *plan = json_loads (plan_text, 0, NULL);
  json_t *vm = json_loads (vm_text, 0, NULL);
  json_t *state = json_loads (state_text, 0, NULL);
  char *name = NULL, *err = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CU_ASSERT_PTR_NOT_NULL_FATAL (vm);
  CU_ASSERT_PTR_NOT_NULL_FATAL (state);
  CU_ASSERT_EQUAL (Pallet_ec2_vm_name (plan, vm, state, notes, &name, &err), 0);
  CU_ASSERT_PTR_NULL (err);
  free (err);
  json_decref (plan);
  json_decref (vm);
  json_decref (state);
  return name;
}

static void
test_vm_name_sources (void)
{
  json_t *notes = json_array ();
  char *n;

  n = vm_name ("{\"vms\":[]}", "{\"id\":\"i-1\",\"targetName\":\"db-1\"}",
               "{\"instance\":{\"instanceId\":\"i-1\",\"name\":\"Web\"}}", notes);
  CU_ASSERT_STRING_EQUAL (n, "db-1");
  CU_ASSERT_EQUAL (json_array_size (notes), 0);
  free (n);

  n = vm_name ("{\"vms\":[]}", "{\"id\":\"i-1\"}",
               "{\"instance\":{\"instanceId\":\"i-1\","
               "\"tags\":{\"Name\":\"Web Server\"}}}",
               notes);
  CU_ASSERT_STRING_EQUAL (n, "web-server");
  CU_ASSERT_EQUAL (json_array_size (notes), 1);
  CU_ASSERT_PTR_NOT_NULL (strstr (json_string_value (json_array_get (notes, 0)), "\"Web Server\""));
  free (n);

  n = vm_name ("{\"vms\":[]}", "{\"id\":\"i-0abc\"}", "{\"instance\":{\"instanceId\":\"i-0abc\"}}",
               notes);
  CU_ASSERT_STRING_EQUAL (n, "i-0abc");
  free (n);

  /* A Name with nothing usable falls back to the instance id. */
  n = vm_name ("{\"vms\":[]}", "{\"id\":\"i-0abc\"}",
               "{\"instance\":{\"instanceId\":\"i-0abc\","
               "\"name\":\"\xe6\x97\xa5\xe6\x9c\xac\"}}",
               notes);
  CU_ASSERT_STRING_EQUAL (n, "i-0abc");
  free (n);
  json_decref (notes);
}

static void
test_vm_name_plan_collision (void)
{
  const char *plan = "{\"vms\":[{\"id\":\"i-1\",\"name\":\"Web\"},"
                     "{\"id\":\"i-2\",\"name\":\"web\"},{\"id\":\"i-3\",\"name\":\"db\"}]}";
  char *a = vm_name (plan, "{\"id\":\"i-1\"}",
                     "{\"instance\":{\"instanceId\":\"i-1\",\"name\":\"Web\"}}", NULL);
  char *b = vm_name (plan, "{\"id\":\"i-2\"}",
                     "{\"instance\":{\"instanceId\":\"i-2\",\"name\":\"web\"}}", NULL);
  char *c = vm_name (plan, "{\"id\":\"i-3\"}",
                     "{\"instance\":{\"instanceId\":\"i-3\",\"name\":\"db\"}}", NULL);

  CU_ASSERT_EQUAL (strncmp (a, "web-", 4), 0);
  CU_ASSERT_EQUAL (strncmp (b, "web-", 4), 0);
  CU_ASSERT_STRING_NOT_EQUAL (a, b);
  CU_ASSERT_STRING_EQUAL (c, "db");
  free (a);
  free (b);
  free (c);
}

static void
test_vm_name_aws_tags_and_self (void)
{
  /* Tags as DescribeInstances returns them. */
  char *n = vm_name ("{\"vms\":[]}", "{\"id\":\"i-9\"}",
                     "{\"instance\":{\"instanceId\":\"i-9\",\"tags\":["
                     "{\"Key\":\"env\",\"Value\":\"x\"},"
                     "{\"Key\":\"Name\",\"Value\":\"App_1\"}]}}",
                     NULL);

  CU_ASSERT_STRING_EQUAL (n, "app-1");
  free (n);
  /* The plan lists this VM by name only, or by index: not a collision
   * with itself. */
  n = vm_name ("{\"vms\":[{\"name\":\"app\"}]}", "{\"name\":\"app\"}",
               "{\"instance\":{\"instanceId\":\"i-9\",\"name\":\"app\"}}", NULL);
  CU_ASSERT_STRING_EQUAL (n, "app");
  free (n);
  n = vm_name ("{\"vms\":[{\"name\":\"other\",\"index\":0},"
               "{\"name\":\"app\",\"index\":1}]}",
               "{\"name\":\"app\",\"index\":1}",
               "{\"instance\":{\"instanceId\":\"i-9\",\"name\":\"app\"}}", NULL);
  CU_ASSERT_STRING_EQUAL (n, "app");
  free (n);
}

static void
test_vm_name_missing_id (void)
{
  json_t *plan = json_object (), *vm = json_object (), *state = json_object ();
  char *name = NULL, *err = NULL;

  CU_ASSERT_NOT_EQUAL (Pallet_ec2_vm_name (plan, vm, state, NULL, &name, &err), 0);
  CU_ASSERT_PTR_NULL (name);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "instanceId is missing"));
  free (err);
  json_decref (plan);
  json_decref (vm);
  json_decref (state);
}

/* Two instances given by id whose Name tags (sourceName, looked up by
 * validate) clean up alike get distinct names, each VM's advisory names
 * both, and a recorded state.targetName is kept (resumes). */
static void
test_vm_name_same_tag (void)
{
  static const char plan[] = "{\"vms\":[{\"id\":\"i-0a\",\"index\":0,\"sourceName\":\"Web\"},"
                             "{\"id\":\"i-0b\",\"index\":1,\"sourceName\":\"web!\"}]}";
  json_t *na = json_array (), *nb = json_array ();
  char *a = vm_name (plan, "{\"id\":\"i-0a\",\"index\":0}",
                     "{\"instance\":{\"instanceId\":\"i-0a\",\"name\":\"Web\"}}", na);
  char *b = vm_name (plan, "{\"id\":\"i-0b\",\"index\":1}",
                     "{\"instance\":{\"instanceId\":\"i-0b\",\"name\":\"web!\"}}", nb);

  CU_ASSERT_PTR_NOT_NULL_FATAL (a);
  CU_ASSERT_PTR_NOT_NULL_FATAL (b);
  CU_ASSERT_STRING_NOT_EQUAL (a, b);
  CU_ASSERT_EQUAL (strncmp (a, "web-", 4), 0);
  CU_ASSERT_EQUAL (strncmp (b, "web-", 4), 0);
  CU_ASSERT (Pallet_ec2_is_dns1123_label (a) && Pallet_ec2_is_dns1123_label (b));
  int seen = 0;
  size_t i;
  json_t *n;
  json_array_foreach (na, i, n)
    seen |= strstr (json_string_value (n), "VMs i-0a and i-0b would both be named \"web\"") != NULL;
  CU_ASSERT (seen);
  seen = 0;
  json_array_foreach (nb, i, n)
    seen |= strstr (json_string_value (n), "VMs i-0b and i-0a would both be named \"web\"") != NULL;
  CU_ASSERT (seen);

  /* Deterministic: the same inputs give the same name. */
  char *a2 = vm_name (plan, "{\"id\":\"i-0a\",\"index\":0}",
                      "{\"instance\":{\"instanceId\":\"i-0a\",\"name\":\"Web\"}}", NULL);
  CU_ASSERT_STRING_EQUAL (a, a2);
  /* Later steps (without sourceName) keep what validate recorded. */
  char *state = NULL;
  CU_ASSERT_FATAL (asprintf (&state,
                             "{\"targetName\":\"%s\",\"instance\":{\"instanceId\":\"i-0a\","
                             "\"name\":\"Web\"}}",
                             a)
                   > 0);
  char *a3 = vm_name ("{\"vms\":[{\"id\":\"i-0a\",\"index\":0},{\"id\":\"i-0b\",\"index\":1}]}",
                      "{\"id\":\"i-0a\",\"index\":0}", state, NULL);
  CU_ASSERT_STRING_EQUAL (a, a3);
  free (state);
  free (a);
  free (a2);
  free (a3);
  free (b);
  json_decref (na);
  json_decref (nb);
}

int
main (void)
{
  CU_pSuite s;
  unsigned fails;

  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("ec2-dns1123", NULL, NULL);
  CU_add_test (s, "valid label unchanged", test_valid_unchanged);
  CU_add_test (s, "lower-case and punctuation", test_lowercase_and_punctuation);
  CU_add_test (s, "shell metacharacters", test_shell_metacharacters);
  CU_add_test (s, "non-ASCII", test_non_ascii);
  CU_add_test (s, "very long", test_very_long);
  CU_add_test (s, "empty gets a hash", test_empty_gets_hash);
  CU_add_test (s, "collision gets a hash suffix", test_collision_hash_suffix);
  CU_add_test (s, "same Name tag, distinct names", test_vm_name_same_tag);
  CU_add_test (s, "collision at max length", test_collision_at_max_length);
  CU_add_test (s, "bad arguments", test_bad_arguments);
  CU_add_test (s, "predicates", test_predicates);
  CU_add_test (s, "vm name sources", test_vm_name_sources);
  CU_add_test (s, "vm name plan collision", test_vm_name_plan_collision);
  CU_add_test (s, "vm name AWS tags, self", test_vm_name_aws_tags_and_self);
  CU_add_test (s, "vm name missing id", test_vm_name_missing_id);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  fails = CU_get_number_of_failures () + CU_get_number_of_tests_failed ();
  CU_cleanup_registry ();
  return fails ? 1 : 0;
}
