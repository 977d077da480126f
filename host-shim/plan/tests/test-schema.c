/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-plan's schema checks: unknown fields against Forklift's CRDs,
 * refused fields, --lenient, and the field table kept in step with the
 * vendored CRDs and docs/ec2-user-guide.md (argv[1]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet-plan.h"
#include "plan-internal.h"

static const char *guide = "docs/ec2-user-guide.md";

#define PROVIDERS                                                                                \
  "apiVersion: forklift.konveyor.io/v1beta1\n"                                                   \
  "kind: Provider\n"                                                                             \
  "metadata: {name: ec2-source, namespace: openshift-mtv}\n"                                     \
  "spec:\n"                                                                                      \
  "  type: ec2\n" PROVIDER_EXTRA "  secret: {name: ec2-credentials, namespace: openshift-mtv}\n" \
  "---\n"                                                                                        \
  "apiVersion: v1\n"                                                                             \
  "kind: Secret\n"                                                                               \
  "metadata: {name: ec2-credentials, namespace: openshift-mtv}\n"                                \
  "stringData: {accessKeyId: AKIAEXAMPLE}\n" SECRET_EXTRA "---\n"
#define PROVIDER_EXTRA ""
#define SECRET_EXTRA   ""

#define NETMAP(entries)                               \
  "apiVersion: forklift.konveyor.io/v1beta1\n"        \
  "kind: NetworkMap\n"                                \
  "metadata: {name: net, namespace: openshift-mtv}\n" \
  "spec:\n"                                           \
  "  map:\n" entries "---\n"
#define NET_OK "  - {source: {id: subnet-1}, destination: {type: pod}}\n"
#define STORMAP(entries)                               \
  "apiVersion: forklift.konveyor.io/v1beta1\n"         \
  "kind: StorageMap\n"                                 \
  "metadata: {name: stor, namespace: openshift-mtv}\n" \
  "spec:\n"                                            \
  "  map:\n" entries "---\n"
#define STOR_OK "  - {source: {name: gp3}, destination: {storageClass: sc}}\n"
#define PLAN(extra, vms)                             \
  "apiVersion: forklift.konveyor.io/v1beta1\n"       \
  "kind: Plan\n"                                     \
  "metadata: {name: p1, namespace: openshift-mtv}\n" \
  "spec:\n"                                          \
  "  provider:\n"                                    \
  "    source: {name: ec2-source}\n"                 \
  "  map:\n"                                         \
  "    network: {name: net}\n"                       \
  "    storage: {name: stor}\n" extra "  vms:\n" vms
#define VMS_OK  "  - {id: i-1}\n"
#define ALL(x)  PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN (x, VMS_OK)
#define AT_PLAN "plan.yaml: document 5 (Plan \"p1\"): "

/* Normalizes text with flags; returns the plan, *err and *warnings. */
static json_t *
run (const char *text, unsigned flags, char **err, json_t **warnings)
{
  json_t *set = pallet_plan_read_buffer ("plan.yaml", text, strlen (text), err);
  json_t *plan = NULL;

  *warnings = json_array ();
  if (set)
    plan = pallet_plan_normalize_ext (set, NULL, flags, *warnings, err);
  json_decref (set);
  return plan;
}

static void
expect_error (const char *text, const char *want)
{
  char *err = NULL;
  json_t *w, *plan = run (text, 0, &err, &w);

  CU_ASSERT_PTR_NULL (plan);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (strcmp (err, want))
    fprintf (stderr, "\n  want: %s\n  got:  %s\n", want, err);
  CU_ASSERT_STRING_EQUAL (err, want);
  free (err);
  json_decref (plan);
  json_decref (w);
}

/* Lenient: loads, with exactly one warning, want. */
static void
expect_warning (const char *text, const char *want)
{
  char *err = NULL;
  json_t *w, *plan = run (text, PALLET_PLAN_LENIENT, &err, &w);

  if (err)
    fprintf (stderr, "\n  unexpected error: %s\n", err);
  CU_ASSERT_PTR_NOT_NULL (plan);
  CU_ASSERT_EQUAL (json_array_size (w), 1);
  if (!json_string_value (json_array_get (w, 0))
      || strcmp (json_string_value (json_array_get (w, 0)), want))
    fprintf (stderr, "\n  want warning: %s\n  got: %s\n", want,
             json_string_value (json_array_get (w, 0)));
  CU_ASSERT_STRING_EQUAL (json_string_value (json_array_get (w, 0)), want);
  free (err);
  json_decref (plan);
  json_decref (w);
}

static void
test_typos (void)
{
  expect_error (ALL ("  targetNamespce: vms\n"),
                AT_PLAN "spec.targetNamespce: unknown field \"targetNamespce\"; did you mean "
                        "targetNamespace?");
  expect_error (ALL ("  skipGuestConvertion: true\n"),
                AT_PLAN "spec.skipGuestConvertion: unknown field \"skipGuestConvertion\"; did "
                        "you mean skipGuestConversion?");
  expect_error (ALL ("  tagetPowerState: on\n"),
                AT_PLAN "spec.tagetPowerState: unknown field \"tagetPowerState\"; did you mean "
                        "targetPowerState?");
  /* Inside a VM, a map entry, the metadata, a Secret and a Provider. */
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("", "  - {id: i-1, targtName: a}\n"),
                AT_PLAN "spec.vms[0].targtName: unknown field \"targtName\"; did you mean "
                        "targetName?");
  expect_error (PROVIDERS NETMAP ("  - {source: {id: subnet-1}, destination: {typ: pod}}\n")
                    STORMAP (STOR_OK) PLAN ("", VMS_OK),
                "plan.yaml: document 3 (NetworkMap \"net\"): spec.map[0].destination.typ: "
                "unknown field \"typ\"; did you mean type?");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (
                    STOR_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                             "metadata: {name: p1, namespace: openshift-mtv, lables: {a: b}}\n"
                             "spec: {provider: {source: {name: ec2-source}}, vms: [{id: i-1}]}\n",
                AT_PLAN "metadata.lables: unknown field \"lables\"; did you mean labels?");
#undef SECRET_EXTRA
#define SECRET_EXTRA "strinData: {a: b}\n"
  expect_error (ALL (""), "plan.yaml: document 2 (Secret \"ec2-credentials\"): strinData: "
                          "unknown field \"strinData\"; did you mean stringData?");
#undef SECRET_EXTRA
#define SECRET_EXTRA ""
#undef PROVIDER_EXTRA
#define PROVIDER_EXTRA "  endpoint: https://x\n"
  expect_error (ALL (""), "plan.yaml: document 1 (Provider \"ec2-source\"): spec.endpoint: "
                          "unknown field \"endpoint\"; remove it (spec takes no such field)");
#undef PROVIDER_EXTRA
#define PROVIDER_EXTRA ""
  /* A top-level typo. */
  expect_error (ALL ("") "stauts: {}\n",
                AT_PLAN "stauts: unknown field \"stauts\"; did you mean status?");
}

static void
test_types_and_enums (void)
{
  expect_error (ALL ("  pvcNameTemplate: 5\n"),
                AT_PLAN "spec.pvcNameTemplate: expected a string, got an integer");
  expect_error (ALL ("  targetLabels: {a: 1}\n"),
                AT_PLAN "spec.targetLabels.a: expected a string, got an integer");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP ("  - {source: {name: gp3}, destination: {storageClass: sc, "
                             "accessMode: ReadWriteOncePod}}\n") PLAN ("", VMS_OK),
                "plan.yaml: document 4 (StorageMap \"stor\"): spec.map[0].destination.accessMode: "
                "'ReadWriteOncePod' is not one of ReadWriteOnce, ReadWriteMany, ReadOnlyMany");
  /* Types are errors under --lenient too. */
  char *err = NULL;
  json_t *w, *plan = run (ALL ("  archived: yes\n"), PALLET_PLAN_LENIENT, &err, &w);
  CU_ASSERT_PTR_NULL (plan);
  CU_ASSERT_PTR_NOT_NULL (err);
  if (err)
    CU_ASSERT_STRING_EQUAL (err, AT_PLAN "spec.archived: expected a boolean, got a string");
  free (err);
  json_decref (w);
}

static void
test_lenient (void)
{
  char *err = NULL;
  json_t *w, *plan;

  expect_warning (ALL ("  targetNamespce: vms\n"),
                  AT_PLAN "spec.targetNamespce: unknown field \"targetNamespce\"; did you mean "
                          "targetNamespace?");
  /* Several warnings, and the field really is dropped. */
  plan =
      run (ALL ("  targetNamespce: vms\n  tagetPowerState: on\n"), PALLET_PLAN_LENIENT, &err, &w);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CU_ASSERT_EQUAL (json_array_size (w), 2);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (plan, "targetNamespace")),
                          "openshift-mtv");
  json_decref (plan);
  json_decref (w);
}

static void
test_refused (void)
{
  expect_error (ALL ("  installLegacyDrivers: true\n"),
                AT_PLAN "spec.installLegacyDrivers: not supported yet: spec.installLegacyDrivers "
                        "(installs legacy Windows drivers); remove it, or pass --lenient to go on "
                        "without it");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("", "  - {id: i-1}\n  - {id: i-2, luks: {name: keys}}\n"),
                AT_PLAN "spec.vms[1].luks: not supported yet: spec.vms[1].luks (LUKS keys to open "
                        "encrypted disks); remove it, or pass --lenient to go on without it");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP ("  - {source: {name: gp3}, destination: {storageClass: sc, "
                             "volumeMode: Filesystem}}\n") PLAN ("", VMS_OK),
                "plan.yaml: document 4 (StorageMap \"stor\"): spec.map[0].destination.volumeMode: "
                "not supported yet: spec.map[0].destination.volumeMode (Filesystem: disk images "
                "on a file system; pallet writes disks as Block devices); remove it, or pass "
                "--lenient to go on without it");
  expect_warning (ALL ("  installLegacyDrivers: true\n"),
                  AT_PLAN "spec.installLegacyDrivers: not supported yet: "
                          "spec.installLegacyDrivers (installs legacy Windows drivers); remove it");

  /* Neutral values pass: the CRD default, false, empty. */
  char *err = NULL;
  json_t *w, *plan = run (PROVIDERS NETMAP (NET_OK)
                              STORMAP ("  - {source: {name: gp3}, destination: {storageClass: sc, "
                                       "volumeMode: Block}}\n")
                                  PLAN ("  installLegacyDrivers: false\n"
                                        "  migrateSharedDisks: true\n"
                                        "  xfsCompatibility: false\n"
                                        "  convertorLabels: {}\n",
                                        "  - {id: i-1, deleteVmOnFailMigration: "
                                        "true}\n"),
                          0, &err, &w);
  if (err)
    fprintf (stderr, "\n  %s\n", err);
  CU_ASSERT_PTR_NOT_NULL (plan);
  CU_ASSERT_EQUAL (json_array_size (w), 0);
  json_decref (plan);
  json_decref (w);
  free (err);
  expect_error (ALL ("  migrateSharedDisks: false\n"),
                AT_PLAN "spec.migrateSharedDisks: not supported yet: spec.migrateSharedDisks "
                        "(false leaves shared (multi-attach) disks out of the migration); remove "
                        "it, or pass --lenient to go on without it");
}

static void
test_kinds (void)
{
  expect_error (ALL ("") "---\napiVersion: forklift.konveyor.io/v1beta1\nkind: Plna\n"
                         "metadata: {name: x}\n",
                "plan.yaml: document 6 (Plna \"x\"): kind: Plna is not a Forklift kind pallet "
                "reads (did you mean Plan?); pallet reads Plan, Provider, NetworkMap, StorageMap, "
                "Migration and Hook");
  expect_error (ALL ("") "---\napiVersion: forklift.konveyor.io/v1beta1\nkind: Migration\n"
                         "metadata: {name: m}\nspec: {plan: {name: p1}, cancle: []}\n",
                "plan.yaml: document 6 (Migration \"m\"): spec.cancle: unknown field "
                "\"cancle\"; did you mean cancel?");
  /* Another API's kind is left alone, with a warning. */
  char *err = NULL;
  json_t *w,
      *plan =
          run (ALL ("") "---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
                        "metadata: {name: vlan}\nspec: {config: '{}'}\n",
               0, &err, &w);
  CU_ASSERT_PTR_NOT_NULL (plan);
  CU_ASSERT_EQUAL (json_array_size (w), 1);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_array_get (w, 0)),
                          "plan.yaml: document 6 (NetworkAttachmentDefinition \"vlan\"): kind "
                          "NetworkAttachmentDefinition (apiVersion k8s.cni.cncf.io/v1) is not "
                          "read by pallet; ignored");
  json_decref (plan);
  json_decref (w);
  free (err);
}

/* Every spec path of the schema (objects and leaves), "[]" for items. */
static void
schema_paths (const json_t *node, const char *path, json_t *out)
{
  const json_t *props = json_object_get (node, "properties"), *sub;
  const char *key;

  if (json_is_object (json_object_get (node, "items"))) {
    char p[300];
    snprintf (p, sizeof p, "%s[]", path);
    json_object_set_new (out, path, json_true ());
    node = json_object_get (node, "items");
    props = json_object_get (node, "properties");
    path = p;
    json_object_foreach ((json_t *) props, key, sub) {
      char q[400];
      snprintf (q, sizeof q, "%s.%s", path, key);
      schema_paths (sub, q, out);
    }
    return;
  }
  json_object_set_new (out, path, json_true ());
  json_object_foreach ((json_t *) props, key, sub) {
    char q[400];
    snprintf (q, sizeof q, "%s.%s", path, key);
    schema_paths (sub, q, out);
  }
}

static const struct Pallet_plan_field *
row_for (const char *kind, const char *path)
{
  for (const struct Pallet_plan_field *f = Pallet_plan_fields; f->kind; ++f)
    if (!strcmp (f->kind, kind) && !strcmp (f->path, path))
      return f;
  return NULL;
}

/* Every CRD spec field is in the table itself or through an ancestor row
 * (spec.targetAffinity covers the whole Kubernetes Affinity); every row
 * is a field of the CRD. */
static void
test_table_covers_crds (void)
{
  json_t *kinds = Pallet_plan_schemas ();
  static const char *const crds[] = { "Plan",      "Provider", "NetworkMap", "StorageMap",
                                      "Migration", "Hook",     NULL };

  CU_ASSERT_PTR_NOT_NULL_FATAL (kinds);
  for (size_t k = 0; crds[k]; ++k) {
    const json_t *schema = json_object_get (json_object_get (kinds, crds[k]), "schema");
    json_t *paths = json_object ();
    const char *p;
    const json_t *v;

    schema_paths (json_object_get (json_object_get (schema, "properties"), "spec"), "spec", paths);
    CU_ASSERT (json_object_size (paths) > 1);
    json_object_foreach (paths, p, v) {
      char buf[400];
      int covered = 0;
      if (!strcmp (p, "spec"))
        continue;
      snprintf (buf, sizeof buf, "%s", p);
      for (;;) {
        if (row_for (crds[k], buf)) {
          covered = 1;
          break;
        }
        char *dot = strrchr (buf, '.');
        if (!dot)
          break;
        *dot = '\0';
        size_t n = strlen (buf);
        if (n > 2 && !strcmp (buf + n - 2, "[]"))
          buf[n - 2] = '\0';
      }
      if (!covered)
        fprintf (stderr, "\n  %s %s: not in the field table\n", crds[k], p);
      CU_ASSERT (covered);
    }
    for (const struct Pallet_plan_field *f = Pallet_plan_fields; f->kind; ++f) {
      if (strcmp (f->kind, crds[k]))
        continue;
      if (!Pallet_plan_schema_at (schema, f->path))
        fprintf (stderr, "\n  %s %s: in the table but not in the CRD\n", f->kind, f->path);
      CU_ASSERT_PTR_NOT_NULL (Pallet_plan_schema_at (schema, f->path));
      CU_ASSERT (!strcmp (f->status, "honoured") || !strcmp (f->status, "refused")
                 || !strcmp (f->status, "partial"));
    }
    json_decref (paths);
  }
  json_decref (kinds);
}

/* The guide's table rows "| Kind | `path` | status | ... |" are exactly
 * the code's rows, with the same statuses. */
static void
test_table_matches_guide (void)
{
  FILE *fp = fopen (guide, "r");
  char line[1024];
  size_t rows = 0, want = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL (fp);
  while (fgets (line, sizeof line, fp)) {
    char kind[64], path[256], status[64];
    char padded[80];
    if (sscanf (line, "| %63[A-Za-z] | `%255[^`]` | %63[a-z] |", kind, path, status) != 3)
      continue;
    snprintf (padded, sizeof padded, " %s ", kind);
    if (!strstr (" Plan Provider NetworkMap StorageMap Migration Hook ", padded))
      continue;
    const struct Pallet_plan_field *f = row_for (kind, path);
    if (!f)
      fprintf (stderr, "\n  guide row %s %s: not in the code's table\n", kind, path);
    else if (strcmp (f->status, status))
      fprintf (stderr, "\n  guide row %s %s: %s, the code says %s\n", kind, path, status,
               f->status);
    CU_ASSERT (f && !strcmp (f->status, status));
    ++rows;
  }
  fclose (fp);
  for (const struct Pallet_plan_field *f = Pallet_plan_fields; f->kind; ++f)
    ++want;
  if (rows != want)
    fprintf (stderr, "\n  the guide has %zu field rows, the code %zu\n", rows, want);
  CU_ASSERT_EQUAL (rows, want);
}

int
main (int argc, char **argv)
{
  CU_pSuite s;
  unsigned failed;

  if (argc > 1)
    guide = argv[1];
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("schema", NULL, NULL);
  CU_add_test (s, "typos", test_typos);
  CU_add_test (s, "types_and_enums", test_types_and_enums);
  CU_add_test (s, "lenient", test_lenient);
  CU_add_test (s, "refused", test_refused);
  CU_add_test (s, "kinds", test_kinds);
  CU_add_test (s, "table_covers_crds", test_table_covers_crds);
  CU_add_test (s, "table_matches_guide", test_table_matches_guide);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures () + CU_get_number_of_suites_failed ();
  CU_cleanup_registry ();
  return failed ? 1 : 0;
}
