/* SPDX-License-Identifier: Apache-2.0 */
/* DNS-1123 labels, subdomains, label keys and values. */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "pallet-k8sname.h"

#define MAXL PALLET_K8S_DNS1123_LABEL_MAX

static char *
label (const char *in, const char *seed, const char *const *taken, size_t n, int *changed)
{
  char *out = NULL;
  CU_ASSERT_EQUAL_FATAL (Pallet_k8s_dns1123_label (in, seed, taken, n, MAXL, &out, changed), 0);
  CU_ASSERT_TRUE (Pallet_k8s_is_dns1123_label (out));
  return out;
}

static void
test_sanitise (void)
{
  int changed = -1;
  char *s = label ("web-01", NULL, NULL, 0, &changed);
  CU_ASSERT_STRING_EQUAL (s, "web-01");
  CU_ASSERT_EQUAL (changed, 0);
  free (s);
  s = label ("--DC0_H0_VM0  (copy)--", NULL, NULL, 0, &changed);
  CU_ASSERT_STRING_EQUAL (s, "dc0-h0-vm0-copy");
  CU_ASSERT_EQUAL (changed, 1);
  free (s);
  s = label ("\xc3\xa9t\xc3\xa9\n", NULL, NULL, 0, NULL);
  CU_ASSERT_STRING_EQUAL (s, "t");
  free (s);
}

static void
test_long_and_empty (void)
{
  char in[200];
  memset (in, 'a', sizeof in - 1);
  in[sizeof in - 1] = '\0';
  char *s = label (in, NULL, NULL, 0, NULL);
  CU_ASSERT_EQUAL (strlen (s), MAXL);
  free (s);
  s = label ("___", "seed", NULL, 0, NULL);
  CU_ASSERT_EQUAL (strncmp (s, "vm-", 3), 0);
  CU_ASSERT_EQUAL (strlen (s), 9);
  free (s);
}

static void
test_taken_gets_stable_suffix (void)
{
  const char *taken[] = { "web" };
  char *a = label ("web", "vm-1", taken, 1, NULL);
  char *b = label ("web", "vm-1", taken, 1, NULL);
  char *c = label ("web", "vm-2", taken, 1, NULL);
  CU_ASSERT_STRING_EQUAL (a, b);
  CU_ASSERT_STRING_NOT_EQUAL (a, c);
  CU_ASSERT_EQUAL (strncmp (a, "web-", 4), 0);
  free (a);
  free (b);
  free (c);
}

static void
test_bad_arguments (void)
{
  char *out = (char *) 1;
  CU_ASSERT_EQUAL (Pallet_k8s_dns1123_label (NULL, NULL, NULL, 0, MAXL, &out, NULL), -1);
  CU_ASSERT_EQUAL (Pallet_k8s_dns1123_label ("x", NULL, NULL, 0, 8, &out, NULL), -1);
  CU_ASSERT_EQUAL (Pallet_k8s_dns1123_label ("x", NULL, NULL, 0, 64, &out, NULL), -1);
}

static void
test_predicates (void)
{
  CU_ASSERT_FALSE (Pallet_k8s_is_dns1123_label (""));
  CU_ASSERT_FALSE (Pallet_k8s_is_dns1123_label ("-a"));
  CU_ASSERT_FALSE (Pallet_k8s_is_dns1123_label ("a.b"));
  CU_ASSERT_FALSE (Pallet_k8s_is_dns1123_label (NULL));
  CU_ASSERT_TRUE (Pallet_k8s_is_dns1123_subdomain ("local-path.storage.io"));
  CU_ASSERT_FALSE (Pallet_k8s_is_dns1123_subdomain ("Local"));
  CU_ASSERT_TRUE (Pallet_k8s_is_label_value (""));
  CU_ASSERT_TRUE (Pallet_k8s_is_label_value ("DC0_H0.vm-0"));
  CU_ASSERT_FALSE (Pallet_k8s_is_label_value ("_x"));
  CU_ASSERT_TRUE (Pallet_k8s_is_label_key ("forklift.konveyor.io/disk-source"));
  CU_ASSERT_TRUE (Pallet_k8s_is_label_key ("vmID"));
  CU_ASSERT_FALSE (Pallet_k8s_is_label_key ("Forklift.io/x"));
  CU_ASSERT_FALSE (Pallet_k8s_is_label_key ("a/"));
}

int
main (void)
{
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 1;
  CU_pSuite s = CU_add_suite ("k8sname", NULL, NULL);
  CU_add_test (s, "sanitise", test_sanitise);
  CU_add_test (s, "long and empty", test_long_and_empty);
  CU_add_test (s, "taken gets a stable suffix", test_taken_gets_stable_suffix);
  CU_add_test (s, "bad arguments", test_bad_arguments);
  CU_add_test (s, "predicates", test_predicates);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned f = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  return f ? 1 : 0;
}
