/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for pallet-plan.  argv[1] is the fixtures directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet-plan.h"

static const char *fixtures = "tests/fixtures";

static char *
fixture (const char *name)
{
  char *p = NULL;
  if (asprintf (&p, "%s/%s", fixtures, name) < 0)
    abort ();
  return p;
}

/* Loads fixture files and normalizes. */
static json_t *
load_fixtures (const char *plan_name, char **err, size_t n, ...)
{
  const char *paths[8];
  char *owned[8];
  va_list ap;
  json_t *plan;

  va_start (ap, n);
  for (size_t i = 0; i < n; ++i)
    paths[i] = owned[i] = fixture (va_arg (ap, const char *));
  va_end (ap);
  plan = pallet_plan_load (paths, n, plan_name, err);
  for (size_t i = 0; i < n; ++i)
    free (owned[i]);
  return plan;
}

#define SEQ(obj, key) json_object_get ((obj), (key))
static const char *
s_at (const json_t *v, const char *path)
{
  /* path: dotted keys, a number selects an array index. */
  char buf[256], *save = NULL, *tok;
  snprintf (buf, sizeof buf, "%s", path);
  for (tok = strtok_r (buf, ".", &save); tok && v; tok = strtok_r (NULL, ".", &save))
    v = json_is_array (v) ? json_array_get (v, (size_t) atoi (tok)) : json_object_get (v, tok);
  return json_string_value (v);
}

static const json_t *
at (const json_t *v, const char *path)
{
  char buf[256], *save = NULL, *tok;
  snprintf (buf, sizeof buf, "%s", path);
  for (tok = strtok_r (buf, ".", &save); tok && v; tok = strtok_r (NULL, ".", &save))
    v = json_is_array (v) ? json_array_get (v, (size_t) atoi (tok)) : json_object_get (v, tok);
  return v;
}

#define CHECK_STR(v, path, want)                                                            \
  do {                                                                                      \
    const char *got_ = s_at ((v), (path));                                                  \
    if (!got_ || strcmp (got_, (want)))                                                     \
      fprintf (stderr, "\n  %s: want %s got %s\n", (path), (want), got_ ? got_ : "(none)"); \
    CU_ASSERT_PTR_NOT_NULL (got_);                                                          \
    if (got_)                                                                               \
      CU_ASSERT_STRING_EQUAL (got_, (want));                                                \
  } while (0)

static void
test_valid_yaml (void)
{
  char *err = NULL;
  json_t *plan = load_fixtures (NULL, &err, 1, "ec2-plan.yaml");

  if (!plan)
    fprintf (stderr, "\n  %s\n", err);
  CU_ASSERT_PTR_NULL (err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "name", "ec2-plan");
  CHECK_STR (plan, "namespace", "openshift-mtv");
  CHECK_STR (plan, "type", "cold");
  CHECK_STR (plan, "targetNamespace", "vms");
  CHECK_STR (plan, "targetPowerState", "on");
  CU_ASSERT (json_is_false (SEQ (plan, "skipGuestConversion")));
  /* A derived uid: a UUID string, the same on every load. */
  const char *uid = s_at (plan, "uid");
  CU_ASSERT_PTR_NOT_NULL_FATAL (uid);
  CU_ASSERT_EQUAL (strlen (uid), 36);
  CU_ASSERT_EQUAL (uid[14], '5');
  /* spec is kept as written. */
  CU_ASSERT (json_is_false (at (plan, "spec.warm")));
  CHECK_STR (plan, "spec.provider.source.name", "ec2-source");
  /* vms: id and name (null when absent), index, and the rest as written. */
  CU_ASSERT_EQUAL (json_array_size (SEQ (plan, "vms")), 3);
  CHECK_STR (plan, "vms.0.id", "i-0123456789abcdef0");
  CU_ASSERT (json_is_null (at (plan, "vms.0.name")));
  CHECK_STR (plan, "vms.0.targetName", "web-server");
  CU_ASSERT_EQUAL (json_integer_value (at (plan, "vms.0.index")), 0);
  CU_ASSERT (json_is_null (at (plan, "vms.1.id")));
  CHECK_STR (plan, "vms.1.name", "db-server");
  CU_ASSERT_PTR_NULL (at (plan, "vms.1.targetName"));
  CU_ASSERT_EQUAL (json_integer_value (at (plan, "vms.1.index")), 1);
  CHECK_STR (plan, "vms.2.name", "cache");
  CHECK_STR (plan, "vms.2.targetPowerState", "off");
  CU_ASSERT_EQUAL (json_integer_value (at (plan, "vms.2.index")), 2);
  /* Maps as written. */
  CU_ASSERT_EQUAL (json_array_size (SEQ (plan, "networkMap")), 2);
  CHECK_STR (plan, "networkMap.0.source.id", "subnet-0a1b2c3d4e5f67890");
  CHECK_STR (plan, "networkMap.0.destination.type", "pod");
  CHECK_STR (plan, "networkMap.1.destination.name", "vlan100");
  CU_ASSERT_EQUAL (json_array_size (SEQ (plan, "storageMap")), 2);
  CHECK_STR (plan, "storageMap.0.source.name", "gp3");
  CHECK_STR (plan, "storageMap.0.destination.volumeMode", "Block");
  CHECK_STR (plan, "storageMap.1.destination.storageClass", "io2-csi");
  /* Providers. */
  CHECK_STR (plan, "source.name", "ec2-source");
  CHECK_STR (plan, "source.namespace", "openshift-mtv");
  CHECK_STR (plan, "source.type", "ec2");
  CHECK_STR (plan, "source.url", "https://ec2.us-east-1.amazonaws.com");
  CHECK_STR (plan, "source.settings.region", "us-east-1");
  CHECK_STR (plan, "source.settings.target-az", "us-east-1a");
  CHECK_STR (plan, "source.secretRef.name", "ec2-credentials");
  CHECK_STR (plan, "source.secretRef.namespace", "openshift-mtv");
  CU_ASSERT (json_is_false (at (plan, "source.host")));
  CHECK_STR (plan, "destination.type", "openshift");
  CHECK_STR (plan, "destination.name", "host");
  CU_ASSERT (json_is_true (at (plan, "destination.host")));
  /* No secret value anywhere in the plan. */
  char *text = json_dumps (plan, JSON_COMPACT);
  CU_ASSERT_PTR_NULL (strstr (text, "AKIAIOSFODNN7EXAMPLE"));
  CU_ASSERT_PTR_NULL (strstr (text, "wJalrXUtnFEMI"));
  CU_ASSERT_PTR_NULL (strstr (text, "QUtJQUlPU0ZPRE5ON0VYQU1QTEU"));
  CU_ASSERT_PTR_NULL (strstr (text, "rotated"));
  free (text);

  json_t *again = load_fixtures (NULL, &err, 1, "ec2-plan.yaml");
  CU_ASSERT (json_equal (plan, again));
  json_decref (again);
  json_decref (plan);
}

/* JSON, a v1 List, and split files give exactly the YAML's plan. */
static void
test_equivalent_inputs (void)
{
  char *err = NULL;
  json_t *yaml = load_fixtures (NULL, &err, 1, "ec2-plan.yaml");
  json_t *json = load_fixtures (NULL, &err, 1, "ec2-plan.json");
  json_t *list = load_fixtures (NULL, &err, 1, "ec2-list.yaml");
  json_t *split = load_fixtures ("ec2-plan", &err, 2, "ec2-plan-only.yaml", "ec2-providers.yaml");

  CU_ASSERT_PTR_NULL (err);
  free (err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (yaml);
  CU_ASSERT_PTR_NOT_NULL_FATAL (json);
  CU_ASSERT_PTR_NOT_NULL_FATAL (list);
  CU_ASSERT_PTR_NOT_NULL_FATAL (split);
  CU_ASSERT (json_equal (yaml, json));
  CU_ASSERT (json_equal (yaml, list));
  CU_ASSERT (json_equal (yaml, split));
  json_decref (yaml);
  json_decref (json);
  json_decref (list);
  json_decref (split);
}

static void
test_provider_config (void)
{
  char *err = NULL, *path = fixture ("ec2-plan.yaml");
  const char *paths[] = { path };
  json_t *set = pallet_plan_read (paths, 1, &err);
  json_t *plan, *cfg;

  free (path);
  CU_ASSERT_PTR_NOT_NULL_FATAL (set);
  plan = pallet_plan_normalize (set, "openshift-mtv/ec2-plan", &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);

  cfg = pallet_plan_provider_config (set, plan, "source", &err);
  CU_ASSERT_PTR_NULL (err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (cfg);
  CHECK_STR (cfg, "provider.kind", "Provider");
  CHECK_STR (cfg, "provider.apiVersion", "forklift.konveyor.io/v1beta1");
  CHECK_STR (cfg, "provider.metadata.name", "ec2-source");
  CHECK_STR (cfg, "provider.spec.type", "ec2");
  CHECK_STR (cfg, "secret.accessKeyId", "AKIAIOSFODNN7EXAMPLE");
  CHECK_STR (cfg, "secret.secretAccessKey", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  CHECK_STR (cfg, "secret.sessionNote", "rotated 2026-01");
  CU_ASSERT_EQUAL (json_object_size (SEQ (cfg, "secret")), 3);
  CHECK_STR (cfg, "settings.region", "us-east-1");
  CHECK_STR (cfg, "settings.target-az", "us-east-1a");
  json_decref (cfg);

  cfg = pallet_plan_provider_config (set, plan, "destination", &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (cfg);
  CHECK_STR (cfg, "provider.spec.type", "openshift");
  CHECK_STR (cfg, "provider.metadata.name", "host");
  CU_ASSERT_EQUAL (json_object_size (SEQ (cfg, "secret")), 0);
  CU_ASSERT_EQUAL (json_object_size (SEQ (cfg, "settings")), 0);
  json_decref (cfg);

  cfg = pallet_plan_provider_config (set, plan, "sideways", &err);
  CU_ASSERT_PTR_NULL (cfg);
  CU_ASSERT_STRING_EQUAL (err, "plan: provider config: which is \"sideways\"; "
                               "use \"source\" or \"destination\"");
  free (err);
  json_decref (plan);
  json_decref (set);
}

/* stringData wins over data; data decodes to exact bytes. */
static void
test_secret_merge (void)
{
  static const char text[] =
      "apiVersion: forklift.konveyor.io/v1beta1\n"
      "kind: Provider\n"
      "metadata: {name: src}\n"
      "spec: {type: ec2, secret: {name: creds}}\n"
      "---\n"
      "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
      "data:\n  a: YQ==\n  ab: YWI=\n  abc: YWJj\n  empty: ''\n  k: b2xk\n"
      "  wrapped: |\n    YWJj\n    ZGVm\n"
      "stringData: {k: new}\n"
      "---\n"
      "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
      "metadata: {name: p}\n"
      "spec: {provider: {source: {name: src}}, vms: [{id: i-1}], warm: true}\n";
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer ("s.yaml", text, strlen (text), &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (set);
  json_t *plan = pallet_plan_normalize (set, NULL, &err);
  if (!plan)
    fprintf (stderr, "\n  %s\n", err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "type", "warm");
  CHECK_STR (plan, "namespace", "default");
  CHECK_STR (plan, "targetNamespace", "default");
  CU_ASSERT (json_is_null (SEQ (plan, "targetPowerState")));
  CU_ASSERT_EQUAL (json_array_size (SEQ (plan, "networkMap")), 0);
  CU_ASSERT_EQUAL (json_array_size (SEQ (plan, "storageMap")), 0);
  CHECK_STR (plan, "source.url", "");
  CHECK_STR (plan, "destination.name", "host");
  json_t *cfg = pallet_plan_provider_config (set, plan, "source", &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (cfg);
  json_t *want = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "a", "a", "ab", "ab", "abc", "abc",
                            "empty", "", "k", "new", "wrapped", "abcdef");
  CU_ASSERT (json_equal (SEQ (cfg, "secret"), want));
  json_decref (want);
  json_decref (cfg);
  json_decref (plan);
  json_decref (set);
}

/* ---- errors ---- */

#define PROVIDERS                                                 \
  "apiVersion: forklift.konveyor.io/v1beta1\n"                    \
  "kind: Provider\n"                                              \
  "metadata: {name: ec2-source, namespace: openshift-mtv}\n"      \
  "spec:\n"                                                       \
  "  type: ec2\n"                                                 \
  "  secret: {name: ec2-credentials, namespace: openshift-mtv}\n" \
  "  settings: {region: us-east-1, target-az: us-east-1a}\n"      \
  "---\n"                                                         \
  "apiVersion: v1\n"                                              \
  "kind: Secret\n"                                                \
  "metadata: {name: ec2-credentials, namespace: openshift-mtv}\n" \
  "data:\n"                                                       \
  "  accessKeyId: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=\n"                 \
  "  secretAccessKey: " SECRET_B64 "\n"                           \
  "---\n"
#define SECRET_B64 "d0phbHJYVXRuRkVNSS9LN01ERU5HL2JQeFJmaUNZRVhBTVBMRUtFWQ=="

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

/* The Plan, document 5 after PROVIDERS NETMAP STORMAP. */
#define PLAN(name, extra, vms)                             \
  "apiVersion: forklift.konveyor.io/v1beta1\n"             \
  "kind: Plan\n"                                           \
  "metadata: {name: " name ", namespace: openshift-mtv}\n" \
  "spec:\n"                                                \
  "  provider:\n"                                          \
  "    source: {name: ec2-source}\n"                       \
  "  map:\n"                                               \
  "    network: {name: net}\n"                             \
  "    storage: {name: stor}\n" extra "  vms:\n" vms
#define VMS_OK "  - {id: i-1}\n"

/* Reads text as name and normalizes; the error must be exactly want. */
static void
expect_error_as (const char *name, const char *text, const char *plan_name, const char *want)
{
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer (name, text, strlen (text), &err);
  json_t *plan = set ? pallet_plan_normalize (set, plan_name, &err) : NULL;

  CU_ASSERT_PTR_NULL (plan);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (strcmp (err, want) != 0)
    fprintf (stderr, "\n  want: %s\n  got:  %s\n", want, err);
  CU_ASSERT_STRING_EQUAL (err, want);
  /* Never a secret in a message. */
  CU_ASSERT_PTR_NULL (strstr (err, SECRET_B64));
  CU_ASSERT_PTR_NULL (strstr (err, "wJalrXUtnFEMI"));
  free (err);
  json_decref (plan);
  json_decref (set);
}

static void
expect_error (const char *text, const char *want)
{
  expect_error_as ("plan.yaml", text, NULL, want);
}

#define AT_PLAN "plan.yaml: document 5 (Plan \"p1\"): "

static void
test_plan_type_errors (void)
{
  /* The baseline is valid: every error below comes from one change. */
  {
    static const char ok[] = PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "", VMS_OK);
    char *err = NULL;
    json_t *set = pallet_plan_read_buffer ("plan.yaml", ok, strlen (ok), &err);
    json_t *plan = pallet_plan_normalize (set, NULL, &err);
    if (!plan)
      fprintf (stderr, "\n  baseline: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL (plan);
    json_decref (plan);
    json_decref (set);
  }
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "",
                          VMS_OK "  - {name: b}\n  - {id: i-3}\n"
                                 "  - {id: {nested: 1}}\n"),
                AT_PLAN "spec.vms[3].id: expected a string, got a mapping");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "", "    {id: i-1}\n"),
                AT_PLAN "spec.vms: expected a sequence, got a mapping");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "", "    []\n"),
                AT_PLAN "spec.vms: the plan has no VMs; add at least one "
                        "entry with an id or a name");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "", "  - {targetName: x}\n"),
                AT_PLAN "spec.vms[0]: a VM needs an id or a name; add one");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "", VMS_OK "  - i-2\n"),
                AT_PLAN "spec.vms[1]: expected a mapping with an id or a "
                        "name, got a string");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "", VMS_OK "  - {id: i-2, targetName: [a]}\n"),
                AT_PLAN "spec.vms[1].targetName: expected a string, got a "
                        "sequence");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "", VMS_OK "  - {id: i-1}\n"),
                AT_PLAN "spec.vms[1]: VM \"i-1\" is listed twice (also "
                        "spec.vms[0]); remove one");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "  targetNamespace: 5\n", VMS_OK),
                AT_PLAN "spec.targetNamespace: expected a string, got an "
                        "integer");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "  targetPowerState: maybe\n", VMS_OK),
                AT_PLAN "spec.targetPowerState: 'maybe' is not one of on, "
                        "off, auto");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "  targetPowerState: true\n", VMS_OK),
                AT_PLAN "spec.targetPowerState: expected a string, got a "
                        "boolean");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: live\n", VMS_OK),
                AT_PLAN "spec.type: live migration is not supported by "
                        "pallet; use cold or warm");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: hot\n", VMS_OK),
                AT_PLAN "spec.type: 'hot' is not one of cold, warm, live, "
                        "conversion");
  /* 'yes' is a string in YAML 1.2, not a boolean. */
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  warm: yes\n", VMS_OK),
                AT_PLAN "spec.warm: expected a boolean, got a string");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "  skipGuestConversion: 1.5\n", VMS_OK),
                AT_PLAN "spec.skipGuestConversion: expected a boolean, got a "
                        "float");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP (STOR_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                                      "metadata: {name: p1, namespace: openshift-mtv}\n"
                                      "spec: {vms: [{id: i-1}], provider: {}}\n",
                AT_PLAN "spec.provider.source: required field is missing; "
                        "add a mapping");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP (STOR_OK) "apiVersion: forklift.konveyor.io/v1alpha1\nkind: Plan\n"
                                      "metadata: {name: p1}\nspec: {}\n",
                AT_PLAN "apiVersion: expected forklift.konveyor.io/v1beta1 "
                        "for a Plan, got 'forklift.konveyor.io/v1alpha1'");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP (STOR_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                                      "metadata: {name: [p1]}\nspec: {}\n",
                "plan.yaml: document 5 (Plan \"\"): metadata.name: expected "
                "a string, got a sequence");
  expect_error ("- a\n- b\n", "plan.yaml: document 1: expected a mapping (a Kubernetes "
                              "object with apiVersion and kind), got a sequence");
  expect_error ("apiVersion: v1\nmetadata: {name: x}\n",
                "plan.yaml: document 1 (object \"x\"): kind: required field "
                "is missing; every Kubernetes object has a kind");
}

static void
test_map_errors (void)
{
  expect_error (PROVIDERS NETMAP ("  - {source: {id: s}, destination: {type: bridge}}\n")
                    STORMAP (STOR_OK) PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 3 (NetworkMap \"net\"): spec.map[0]."
                "destination.type: 'bridge' is not one of pod, multus, "
                "ignored");
  expect_error (PROVIDERS NETMAP (NET_OK "  - {source: {id: s}, destination: "
                                         "{type: multus}}\n") STORMAP (STOR_OK)
                    PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 3 (NetworkMap \"net\"): spec.map[1]."
                "destination.name: required field is missing; add a string");
  expect_error (PROVIDERS NETMAP ("  - {source: {type: x}, destination: {type: pod}}\n")
                    STORMAP (STOR_OK) PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 3 (NetworkMap \"net\"): spec.map[0]."
                "source: needs an id or a name; add one");
  expect_error (PROVIDERS NETMAP ("  - {source: {id: 7}, destination: {type: pod}}\n")
                    STORMAP (STOR_OK) PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 3 (NetworkMap \"net\"): spec.map[0]."
                "source.id: expected a string, got an integer");
  expect_error (PROVIDERS NETMAP ("  - pod\n") STORMAP (STOR_OK) PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 3 (NetworkMap \"net\"): spec.map[0]: "
                "expected a mapping with source and destination, got a "
                "string");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP ("  - {source: {name: gp3}, destination: {}}\n")
                    PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 4 (StorageMap \"stor\"): spec.map[0]."
                "destination.storageClass: required field is missing; add a "
                "string");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP ("  - {source: {name: gp3}, destination: "
                                                   "{storageClass: sc, accessMode: RWO}}\n")
                    PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 4 (StorageMap \"stor\"): spec.map[0]."
                "destination.accessMode: 'RWO' is not one of ReadWriteOnce, "
                "ReadWriteMany, ReadOnlyMany");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK "  - {source: {name: io2}, destination: "
                                                           "{storageClass: sc, volumeMode: raw}}\n")
                    PLAN ("p1", "", VMS_OK),
                "plan.yaml: document 4 (StorageMap \"stor\"): spec.map[1]."
                "destination.volumeMode: 'raw' is not one of Filesystem, "
                "Block");
  expect_error (
      PROVIDERS NETMAP (NET_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: StorageMap\n"
                                "metadata: {name: stor}\nspec: {map: {a: 1}}\n---\n" PLAN ("p1", "",
                                                                                           VMS_OK),
      "plan.yaml: document 4 (StorageMap \"stor\"): spec.map: "
      "expected a sequence, got a mapping");
}

/* spec.customizationScripts: the ConfigMap's scripts reach the provider
 * in the normalized plan, with the annotations; a missing one fails. */
static void
test_customization_scripts (void)
{
  static const char text[] = PROVIDERS NETMAP (NET_OK)
      STORMAP (STOR_OK) "apiVersion: v1\nkind: ConfigMap\n"
                        "metadata: {name: scripts, namespace: openshift-mtv}\n"
                        "data:\n"
                        "  10_linux_firstboot_marker.sh: |\n"
                        "    echo hello\n"
                        "---\n" PLAN ("p1", "  customizationScripts: {name: scripts}\n", VMS_OK);
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer ("plan.yaml", text, strlen (text), &err);
  json_t *plan = set ? pallet_plan_normalize (set, NULL, &err) : NULL;

  if (!plan)
    fprintf (stderr, "\n  %s\n", err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "customizationScripts.name", "scripts");
  CHECK_STR (plan, "customizationScripts.namespace", "openshift-mtv");
  const char *body = json_string_value (
      json_object_get (at (plan, "customizationScripts.scripts"), "10_linux_firstboot_marker.sh"));
  CU_ASSERT (body && !strcmp (body, "echo hello\n"));
  CU_ASSERT (json_is_object (at (plan, "annotations")));
  json_decref (plan);
  json_decref (set);

  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
                    PLAN ("p1", "  customizationScripts: {name: nope}\n", VMS_OK),
                AT_PLAN "spec.customizationScripts: ConfigMap \"nope\" in namespace "
                        "\"openshift-mtv\" was not found in plan.yaml; add it to the "
                        "files or fix the reference");
}

static void
test_missing_refs (void)
{
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (
                    STOR_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                             "metadata: {name: p1, namespace: openshift-mtv}\n"
                             "spec: {vms: [{id: i-1}], provider: {source: {name: nope}}}\n",
                AT_PLAN "spec.provider.source: Provider \"nope\" in namespace "
                        "\"openshift-mtv\" was not found in plan.yaml; add it to the "
                        "files or fix the reference");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP (STOR_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                                      "metadata: {name: p1, namespace: openshift-mtv}\n"
                                      "spec: {vms: [{id: i-1}], provider: {source: {name: "
                                      "ec2-source, namespace: other}}}\n",
                AT_PLAN "spec.provider.source: Provider \"ec2-source\" in "
                        "namespace \"other\" was not found in plan.yaml; add it to "
                        "the files or fix the reference");
  expect_error (PROVIDERS NETMAP (NET_OK)
                    STORMAP (STOR_OK) "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                                      "metadata: {name: p1, namespace: openshift-mtv}\n"
                                      "spec: {vms: [{id: i-1}], provider: {source: {name: "
                                      "ec2-source}, destination: {name: kubevirt-2}}}\n",
                AT_PLAN "spec.provider.destination: Provider \"kubevirt-2\" "
                        "in namespace \"openshift-mtv\" was not found in plan.yaml; "
                        "add it to the files or fix the reference");
  expect_error_as ("plan.yaml",
                   PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN (
                       "p1", "", VMS_OK) "  - {id: i-2}\n"
                                         "---\n"
                                         "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                                         "metadata: {name: p2, namespace: openshift-mtv}\n"
                                         "spec: {vms: [{id: i-1}], provider: {source: {name: "
                                         "ec2-source}}, map: {network: {name: gone}}}\n",
                   "p2",
                   "plan.yaml: document 6 (Plan \"p2\"): spec.map.network: "
                   "NetworkMap \"gone\" in namespace \"openshift-mtv\" was not "
                   "found in plan.yaml; add it to the files or fix the "
                   "reference");
  /* Also chosen by name: */
  expect_error_as ("plan.yaml",
                   PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN (
                       "p1", "", VMS_OK) "---\n"
                                         "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                                         "metadata: {name: p2, namespace: openshift-mtv}\n"
                                         "spec: {vms: [{id: i-1}], provider: {source: {name: "
                                         "ec2-source}}, map: {storage: {name: gone}}}\n",
                   "p2",
                   "plan.yaml: document 6 (Plan \"p2\"): spec.map.storage: "
                   "StorageMap \"gone\" in namespace \"openshift-mtv\" was "
                   "not found in plan.yaml; add it to the files or fix the "
                   "reference");
  /* A missing Secret is reported at the Provider. */
  expect_error ("apiVersion: forklift.konveyor.io/v1beta1\nkind: Provider\n"
                "metadata: {name: ec2-source, namespace: openshift-mtv}\n"
                "spec: {type: ec2, secret: {name: creds}}\n---\n"
                "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                "metadata: {name: p1, namespace: openshift-mtv}\n"
                "spec: {vms: [{id: i-1}], provider: {source: {name: "
                "ec2-source}}}\n",
                "plan.yaml: document 1 (Provider \"ec2-source\"): "
                "spec.secret: Secret \"creds\" in namespace \"openshift-mtv\" "
                "was not found in plan.yaml; add it to the files or fix the "
                "reference");

  /* Across files: the message lists the whole file set. */
  char *err = NULL, *p1 = fixture ("ec2-plan-only.yaml");
  const char *paths[] = { p1 };
  json_t *plan = pallet_plan_load (paths, 1, NULL, &err);
  CU_ASSERT_PTR_NULL (plan);
  char *want = NULL;
  CU_ASSERT (asprintf (&want,
                       "%s: document 3 (Plan \"ec2-plan\"): "
                       "spec.provider.source: Provider \"ec2-source\" in "
                       "namespace \"openshift-mtv\" was not found in %s; "
                       "add it to the files or fix the reference",
                       p1, p1)
             > 0);
  CU_ASSERT_STRING_EQUAL (err, want);
  free (want);
  free (err);
  free (p1);
}

static void
test_secret_errors (void)
{
  expect_error ("apiVersion: forklift.konveyor.io/v1beta1\nkind: Provider\n"
                "metadata: {name: src}\n"
                "spec: {type: ec2, secret: {name: creds}}\n---\n"
                "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
                "data: {accessKeyId: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=, "
                "secretAccessKey: 'd0phbHJYVXRuRkVNSS9LN01ERU5HL2JQeFJmaUNZRV"
                "hBTVBMRUtFWQ=!'}\n---\n"
                "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                "metadata: {name: p}\n"
                "spec: {vms: [{id: i-1}], provider: {source: {name: src}}}\n",
                "plan.yaml: document 2 (Secret \"creds\"): "
                "data.secretAccessKey: not valid base64; encode the value "
                "with 'base64 -w0' or put it in stringData");
  expect_error ("apiVersion: forklift.konveyor.io/v1beta1\nkind: Provider\n"
                "metadata: {name: src}\n"
                "spec: {type: ec2, secret: {name: creds}}\n---\n"
                "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
                "stringData: {accessKeyId: 12}\n---\n"
                "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                "metadata: {name: p}\n"
                "spec: {vms: [{id: i-1}], provider: {source: {name: src}}}\n",
                "plan.yaml: document 2 (Secret \"creds\"): "
                "stringData.accessKeyId: expected a string, got an integer");
  expect_error ("apiVersion: forklift.konveyor.io/v1beta1\nkind: Provider\n"
                "metadata: {name: src}\nspec: {url: x}\n---\n"
                "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\n"
                "metadata: {name: p}\n"
                "spec: {vms: [{id: i-1}], provider: {source: {name: src}}}\n",
                "plan.yaml: document 1 (Provider \"src\"): spec.type: "
                "required field is missing; add a string");
}

static void
test_multiple_plans (void)
{
  static const char two[] = PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK)
      PLAN ("p1", "", VMS_OK) "---\n" PLAN ("p2", "  type: warm\n", VMS_OK);
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer ("plan.yaml", two, strlen (two), &err);
  json_t *plan;

  CU_ASSERT_PTR_NOT_NULL_FATAL (set);
  plan = pallet_plan_normalize (set, NULL, &err);
  CU_ASSERT_PTR_NULL (plan);
  CU_ASSERT_STRING_EQUAL (err, "plan: plan.yaml hold 2 Plans "
                               "(openshift-mtv/p1, openshift-mtv/p2); choose one "
                               "by name");
  free (err);
  err = NULL;
  plan = pallet_plan_normalize (set, "p2", &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "name", "p2");
  CHECK_STR (plan, "type", "warm");
  json_decref (plan);
  plan = pallet_plan_normalize (set, "openshift-mtv/p1", &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "name", "p1");
  CHECK_STR (plan, "type", "cold");
  json_decref (plan);
  plan = pallet_plan_normalize (set, "other/p1", &err);
  CU_ASSERT_PTR_NULL (plan);
  CU_ASSERT_STRING_EQUAL (err, "plan: no Plan named \"other/p1\" in "
                               "plan.yaml (found: openshift-mtv/p1, "
                               "openshift-mtv/p2); check the name");
  free (err);
  json_decref (set);

  expect_error (PROVIDERS, "plan: no Plan (apiVersion "
                           "forklift.konveyor.io/v1beta1, kind Plan) in plan.yaml; add "
                           "one");
}

/* ---- YAML and JSON reading ---- */

static void
test_yaml_scalars (void)
{
  static const char text[] = "a: 1\nb: \"1\"\nc: 1.5\nd: true\ne: 'true'\nf: null\ng: ~\nh:\n"
                             "i: on\nj: 0x1F\nk: 0o17\nl: ''\nm: |\n  text\nn: 1e3\no: .inf\n"
                             "p: 123456789012345678901234\nq: !!str 5\nr: yes\ns: -7\nt: False\n"
                             "u: 010\nv: +12\nw: .5\nx: 1.\ny: 12:30\nz: \"a\\u00e9\\tb\"\n"
                             "anchored: &A {k: [1, two]}\nalias: *A\n";
  static const char want[] = "{\"a\":1,\"b\":\"1\",\"c\":1.5,\"d\":true,\"e\":\"true\",\"f\":null,"
                             "\"g\":null,\"h\":null,\"i\":\"on\",\"j\":31,\"k\":15,\"l\":\"\","
                             "\"m\":\"text\\n\",\"n\":1000.0,\"o\":\".inf\","
                             "\"p\":1.2345678901234568e23,\"q\":\"5\",\"r\":\"yes\",\"s\":-7,"
                             "\"t\":false,\"u\":10,\"v\":12,\"w\":0.5,\"x\":1.0,\"y\":\"12:30\","
                             "\"z\":\"a\\u00e9\\tb\",\"anchored\":{\"k\":[1,\"two\"]},"
                             "\"alias\":{\"k\":[1,\"two\"]}}";
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer ("s.yaml", text, strlen (text), &err);
  json_t *expect = json_loads (want, 0, NULL);

  if (!set)
    fprintf (stderr, "\n  %s\n", err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (set);
  CU_ASSERT_PTR_NOT_NULL_FATAL (expect);
  json_t *obj = json_object_get (json_array_get (json_object_get (set, "resources"), 0), "object");
  if (!json_equal (obj, expect)) {
    char *g = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf (stderr, "\n  got: %s\n", g);
    free (g);
  }
  CU_ASSERT (json_equal (obj, expect));
  /* Integers stay integers, floats floats. */
  CU_ASSERT (json_is_integer (json_object_get (obj, "a")));
  CU_ASSERT (json_is_real (json_object_get (obj, "n")));
  json_decref (expect);
  json_decref (set);
}

static void
expect_read_error (const char *name, const char *text, const char *want)
{
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer (name, text, strlen (text), &err);

  CU_ASSERT_PTR_NULL (set);
  json_decref (set);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  if (strcmp (err, want) != 0)
    fprintf (stderr, "\n  want: %s\n  got:  %s\n", want, err);
  CU_ASSERT_STRING_EQUAL (err, want);
  free (err);
}

static void
test_read_errors (void)
{
  /* libyaml's own message, with line and column. */
  expect_read_error ("broken.yaml",
                     "kind: Plan\nspec:\n  vms: [a, b\n"
                     "  type: cold\n",
                     "broken.yaml: line 4 column 7: did not find expected "
                     "',' or ']' while parsing a flow sequence (line 3 "
                     "column 8); fix the YAML syntax");
  expect_read_error ("broken.yaml", "a: b: c\n",
                     "broken.yaml: line 1 column 5: mapping values are not "
                     "allowed in this context; fix the YAML syntax");
  expect_read_error ("tabs.yaml", "a:\n\tb: 1\n",
                     "tabs.yaml: line 2 column 1: found character that cannot "
                     "start any token while scanning for the next token "
                     "(line 2 column 1); fix the YAML syntax");
  expect_read_error ("dup.yaml",
                     "kind: Plan\nmetadata: {name: a}\n"
                     "kind: Plan\n",
                     "dup.yaml: line 3 column 1: duplicate key 'kind' in a "
                     "mapping; keep only one");
  expect_read_error ("alias.yaml", "a: *nope\n",
                     "alias.yaml: line 1 column 4: alias *nope refers to no "
                     "earlier anchor &nope; define the anchor first");
  expect_read_error ("key.yaml", "? [a]\n: 1\n",
                     "key.yaml: line 1 column 3: a sequence as a mapping key "
                     "is not supported; use a plain string key");
  expect_read_error ("tag.yaml", "a: !!int abc\n",
                     "tag.yaml: line 1 column 4: 'abc' does not fit its tag "
                     "tag:yaml.org,2002:int");
  expect_read_error ("bad.json", "{\n  \"kind\": \"Plan\",\n}\n",
                     "bad.json: line 3 column 1: string or '}' expected near "
                     "'}'; fix the JSON syntax");
  expect_read_error ("bad.json", "{\"a\": 1}\n{\"a\": 1, \"a\": 2}\n",
                     "bad.json: line 2 column 12: duplicate object key near "
                     "'\"a\"'; fix the JSON syntax");
  expect_read_error ("x.yaml", "kind: Plan\n---\n- 1\n",
                     "x.yaml: document 2: expected a mapping (a Kubernetes "
                     "object with apiVersion and kind), got a sequence");
  expect_read_error ("l.yaml", "apiVersion: v1\nkind: List\nitems:\n- 5\n",
                     "l.yaml: document 1 items[0]: expected a mapping (a "
                     "Kubernetes object with apiVersion and kind), got an "
                     "integer");

  char *err = NULL;
  const char *paths[] = { "/nonexistent/plan.yaml" };
  CU_ASSERT_PTR_NULL (pallet_plan_read (paths, 1, &err));
  CU_ASSERT_STRING_EQUAL (err, "/nonexistent/plan.yaml: cannot open: No such "
                               "file or directory; check the path");
  free (err);
  CU_ASSERT_PTR_NULL (pallet_plan_read (paths, 0, &err));
  CU_ASSERT_PTR_NOT_NULL (err ? strstr (err, "no input files") : NULL);
  free (err);
}

/* Hostile input: bounded, never a crash. */
static void
test_hostile_yaml (void)
{
  size_t n = 100000;
  char *text = malloc (n + 1), *err = NULL;
  json_t *set;

  memset (text, '[', n);
  text[n] = '\0';
  set = pallet_plan_read_buffer ("deep.yaml", text, n, &err);
  CU_ASSERT_PTR_NULL (set);
  CU_ASSERT_STRING_EQUAL (err, "deep.yaml: line 1 column 257: nesting is "
                               "deeper than 256 levels; flatten the document");
  free (err);
  free (text);

  /* Billion laughs: aliases are shared and their expansion is capped. */
  static const char laughs[] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
  err = NULL;
  set = pallet_plan_read_buffer ("laughs.yaml", laughs, strlen (laughs), &err);
  CU_ASSERT_PTR_NULL (set);
  CU_ASSERT_PTR_NOT_NULL (err ? strstr (err, "aliases expand to more than "
                                             "1000000 nodes")
                              : NULL);
  free (err);
  json_decref (set);

  /* Multi-document JSON and empty YAML documents. */
  static const char multi[] = "{\"kind\":\"A\"}\n  {\"kind\":\"B\"}";
  set = pallet_plan_read_buffer ("m.json", multi, strlen (multi), &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (set);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (set, "resources")), 2);
  CU_ASSERT_EQUAL (json_integer_value (json_object_get (
                       json_array_get (json_object_get (set, "resources"), 1), "document")),
                   2);
  json_decref (set);
  static const char empties[] = "---\n---\nkind: A\n---\n";
  set = pallet_plan_read_buffer ("e.yaml", empties, strlen (empties), &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (set);
  CU_ASSERT_EQUAL (json_array_size (json_object_get (set, "resources")), 1);
  CU_ASSERT_EQUAL (json_integer_value (json_object_get (
                       json_array_get (json_object_get (set, "resources"), 0), "document")),
                   2);
  json_decref (set);
}

/* A Forklift Migration's spec.cutover becomes the plan's "cutover". */
#define MIGRATION(plan, extra)                       \
  "---\n"                                            \
  "apiVersion: forklift.konveyor.io/v1beta1\n"       \
  "kind: Migration\n"                                \
  "metadata: {name: m1, namespace: openshift-mtv}\n" \
  "spec:\n"                                          \
  "  plan: {name: " plan ", namespace: openshift-mtv}\n" extra

static json_t *
normalize_text (const char *text)
{
  char *err = NULL;
  json_t *set = pallet_plan_read_buffer ("plan.yaml", text, strlen (text), &err);
  json_t *plan = set ? pallet_plan_normalize (set, NULL, &err) : NULL;
  if (!plan)
    fprintf (stderr, "\n  %s\n", err ? err : "?");
  free (err);
  json_decref (set);
  return plan;
}

static void
test_migration_cutover (void)
{
  static const char none[] =
      PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK);
  json_t *plan = normalize_text (none);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CU_ASSERT (json_is_null (SEQ (plan, "cutover")));
  json_decref (plan);

  static const char with[] =
      PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK)
          MIGRATION ("p1", "  cutover: \"2026-11-25T02:00:00Z\"\n");
  plan = normalize_text (with);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "cutover", "2026-11-25T02:00:00Z");
  json_decref (plan);

  /* Another plan's Migration does not count. */
  static const char other[] =
      PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK)
          MIGRATION ("p2", "  cutover: \"2026-11-25T02:00:00Z\"\n");
  plan = normalize_text (other);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CU_ASSERT (json_is_null (SEQ (plan, "cutover")));
  json_decref (plan);

  /* Offsets and fractions are RFC 3339 too. */
  static const char offs[] =
      PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK)
          MIGRATION ("p1", "  cutover: \"2026-11-25T03:00:00.5+01:00\"\n");
  plan = normalize_text (offs);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plan);
  CHECK_STR (plan, "cutover", "2026-11-25T03:00:00.5+01:00");
  json_decref (plan);

  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK)
                    MIGRATION ("p1", "  cutover: tomorrow\n"),
                "plan.yaml: document 6 (Migration \"m1\"): spec.cutover: "
                "'tomorrow' is not an RFC 3339 time; write it as "
                "2026-11-25T02:00:00Z");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK)
                    MIGRATION ("p1", "  cutover: \"2026-13-25T02:00:00Z\"\n"),
                "plan.yaml: document 6 (Migration \"m1\"): spec.cutover: "
                "'2026-13-25T02:00:00Z' is not an RFC 3339 time; write it as "
                "2026-11-25T02:00:00Z");
  expect_error (PROVIDERS NETMAP (NET_OK) STORMAP (STOR_OK) PLAN ("p1", "  type: warm\n", VMS_OK)
                    MIGRATION ("p1", "  cutover: 12\n"),
                "plan.yaml: document 6 (Migration \"m1\"): spec.cutover: "
                "expected a string, got an integer");
}

int
main (int argc, char **argv)
{
  CU_pSuite s;
  unsigned failed;

  if (argc > 1)
    fixtures = argv[1];
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("plan", NULL, NULL);
  CU_add_test (s, "valid_yaml", test_valid_yaml);
  CU_add_test (s, "equivalent_inputs", test_equivalent_inputs);
  CU_add_test (s, "provider_config", test_provider_config);
  CU_add_test (s, "secret_merge", test_secret_merge);
  CU_add_test (s, "plan_type_errors", test_plan_type_errors);
  CU_add_test (s, "map_errors", test_map_errors);
  CU_add_test (s, "missing_refs", test_missing_refs);
  CU_add_test (s, "customization_scripts", test_customization_scripts);
  CU_add_test (s, "secret_errors", test_secret_errors);
  CU_add_test (s, "multiple_plans", test_multiple_plans);
  CU_add_test (s, "yaml_scalars", test_yaml_scalars);
  CU_add_test (s, "read_errors", test_read_errors);
  CU_add_test (s, "hostile_yaml", test_hostile_yaml);
  CU_add_test (s, "migration_cutover", test_migration_cutover);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures () + CU_get_number_of_suites_failed ();
  CU_cleanup_registry ();
  return failed ? 1 : 0;
}
