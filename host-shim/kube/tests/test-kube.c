/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_kube: kubeconfig and service-account loading, paths and Pod
 * outcomes (unit); with --endpoint SCRIPT, the client against the local
 * Kubernetes API (tests/kube-endpoint), its results checked with kubectl. */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include <pallet/provider.h>
#include "pallet-kube.h"

extern char **environ;
static char tmp[] = "/tmp/pallet-kube-test-XXXXXX";
static const char *endpoint_script;
static pid_t ep_pid = -1;
static char ep_kubeconfig[1100];

static void
write_file (const char *name, const char *text)
{
  char p[512];
  snprintf (p, sizeof p, "%s/%s", tmp, name);
  FILE *f = fopen (p, "w");
  fputs (text, f);
  fclose (f);
}

static char *
path_of (const char *name)
{
  static char p[512];
  snprintf (p, sizeof p, "%s/%s", tmp, name);
  return p;
}

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

static const char *kc_yaml =
    "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
    "clusters:\n"
    "- name: c1\n  cluster:\n    server: https://127.0.0.1:6443\n"
    "    certificate-authority-data: " CA_B64 "\n"
    "- name: c2\n  cluster:\n    server: https://10.0.0.2:443\n"
    "    certificate-authority: ca2.crt\n    insecure-skip-tls-verify: true\n"
    "users:\n"
    "- name: u1\n  user:\n    token: tok-abc-123\n"
    "- name: u2\n  user:\n    tokenFile: tok2\n"
    "- name: u3\n  user:\n    exec:\n      command: aws\n"
    "contexts:\n"
    "- name: dev\n  context: {cluster: c1, user: u1, namespace: vms}\n"
    "- name: other\n  context: {cluster: c2, user: u2}\n"
    "- name: execy\n  context: {cluster: c1, user: u3}\n"
    "- name: broken\n  context: {cluster: nope, user: u1}\n";

static void
test_kubeconfig (void)
{
  write_file ("kc.yaml", kc_yaml);
  write_file ("tok2", "tok-from-file\n");
  struct Pallet_kube_target t;
  char *err = NULL;
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("kc.yaml"), NULL, &t, &err), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (t.api_url, "https://127.0.0.1:6443");
  CU_ASSERT_STRING_EQUAL (t.token, "tok-abc-123");
  CU_ASSERT_STRING_EQUAL (t.namespace_, "vms");
  CU_ASSERT_STRING_EQUAL (t.context, "dev");
  CU_ASSERT_PTR_NOT_NULL (t.ca_pem && strstr (t.ca_pem, "BEGIN CERTIFICATE"));
  CU_ASSERT_EQUAL (t.insecure, 0);
  CU_ASSERT_PTR_NULL (t.ca_file);
  struct Pallet_kube_config c;
  Pallet_kube_target_config (&t, &c);
  CU_ASSERT_PTR_EQUAL (c.token, t.token);
  Pallet_kube_target_free (&t);

  /* --context; tokenFile and certificate-authority relative to the file;
   * insecure only when set. */
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("kc.yaml"), "other", &t, &err), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (t.token, "tok-from-file");
  CU_ASSERT_STRING_EQUAL (t.ca_file, path_of ("ca2.crt"));
  CU_ASSERT_EQUAL (t.insecure, 1);
  CU_ASSERT_PTR_NULL (t.namespace_);
  CU_ASSERT_PTR_NOT_NULL (strstr (t.source, "context other"));
  Pallet_kube_target_free (&t);

  /* Errors name the thing and the fix, never the token. */
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("kc.yaml"), "nope", &t, &err),
                   PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "no context \"nope\""));
  free (err);
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("kc.yaml"), "execy", &t, &err),
                   PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "exec plugin"));
  free (err);
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("kc.yaml"), "broken", &t, &err),
                   PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "cluster \"nope\"") && !strstr (err, "tok-abc"));
  free (err);
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("missing"), NULL, &t, &err),
                   PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "--kubeconfig"));
  free (err);
  write_file ("notkc.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n");
  CU_ASSERT_EQUAL (Pallet_kube_load_kubeconfig (path_of ("notkc.yaml"), NULL, &t, &err),
                   PALLET_E_INVALID);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "not a kubeconfig"));
  free (err);

  /* KUBECONFIG: its first file that exists. */
  char env[1100];
  snprintf (env, sizeof env, "%s/missing:%s/kc.yaml", tmp, tmp);
  setenv ("KUBECONFIG", env, 1);
  CU_ASSERT_EQUAL (Pallet_kube_resolve (NULL, "other", &t, &err), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (t.api_url, "https://10.0.0.2:443");
  Pallet_kube_target_free (&t);
  setenv ("KUBECONFIG", path_of ("missing"), 1);
  CU_ASSERT_EQUAL (Pallet_kube_resolve (NULL, NULL, &t, &err), PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "KUBECONFIG"));
  free (err);
  unsetenv ("KUBECONFIG");
}

static void
test_in_cluster (void)
{
  char dir[600];
  snprintf (dir, sizeof dir, "%s/sa", tmp);
  mkdir (dir, 0700);
  write_file ("sa/token", "sa-token-xyz\n");
  write_file ("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
  write_file ("sa/namespace", "migrations");
  struct Pallet_kube_target t;
  char *err = NULL;
  unsetenv ("KUBECONFIG");
  unsetenv ("KUBERNETES_SERVICE_HOST");
  CU_ASSERT_EQUAL (Pallet_kube_load_in_cluster (dir, &t, &err), PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "KUBERNETES_SERVICE_HOST"));
  free (err);
  setenv ("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv ("KUBERNETES_SERVICE_PORT", "443", 1);
  setenv ("PALLET_KUBE_SERVICEACCOUNT_DIR", dir, 1);
  setenv ("HOME", tmp, 1);
  CU_ASSERT_EQUAL (Pallet_kube_resolve (NULL, NULL, &t, &err), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (t.api_url, "https://10.96.0.1:443");
  CU_ASSERT_STRING_EQUAL (t.token, "sa-token-xyz");
  CU_ASSERT_STRING_EQUAL (t.namespace_, "migrations");
  CU_ASSERT_PTR_NOT_NULL (t.ca_file && strstr (t.ca_file, "/sa/ca.crt"));
  Pallet_kube_target_free (&t);
  setenv ("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  CU_ASSERT_EQUAL (Pallet_kube_load_in_cluster (NULL, &t, &err), PALLET_OK);
  CU_ASSERT_STRING_EQUAL (t.api_url, "https://[fd00::1]:443");
  Pallet_kube_target_free (&t);
  write_file ("sa/token", "");
  unlink (path_of ("sa/token"));
  CU_ASSERT_EQUAL (Pallet_kube_load_in_cluster (NULL, &t, &err), PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "sa/token"));
  free (err);
  unsetenv ("KUBERNETES_SERVICE_HOST");
  unsetenv ("PALLET_KUBE_SERVICEACCOUNT_DIR");
  /* Nothing at all: says what to pass. */
  CU_ASSERT_EQUAL (Pallet_kube_resolve (NULL, NULL, &t, &err), PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "--kubeconfig"));
  free (err);
}

static void
test_paths (void)
{
  char *err = NULL, *p;
  p = Pallet_kube_path ("v1", "Pod", "vms", "x", &err);
  CU_ASSERT_STRING_EQUAL (p, "/api/v1/namespaces/vms/pods/x");
  free (p);
  p = Pallet_kube_path ("v1", "PersistentVolume", "vms", NULL, &err);
  CU_ASSERT_STRING_EQUAL (p, "/api/v1/persistentvolumes");
  free (p);
  p = Pallet_kube_path ("kubevirt.io/v1", "VirtualMachine", "vms", "vm1", &err);
  CU_ASSERT_STRING_EQUAL (p, "/apis/kubevirt.io/v1/namespaces/vms/virtualmachines/vm1");
  free (p);
  CU_ASSERT_PTR_NULL (Pallet_kube_path ("v1", "Widget", "vms", "x", &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "\"Widget\""));
  free (err);
  CU_ASSERT_PTR_NULL (Pallet_kube_path ("v1", "Pod", NULL, "x", &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "no namespace"));
  free (err);
  CU_ASSERT_EQUAL (Pallet_kube_namespaced ("v1", "PersistentVolume"), 0);
  CU_ASSERT_EQUAL (Pallet_kube_namespaced ("storage.k8s.io/v1", "StorageClass"), 0);
  CU_ASSERT_EQUAL (Pallet_kube_namespaced ("kubevirt.io/v1", "Pod"), -1);
}

static void
test_pod_state (void)
{
  json_t *pod =
      json_loads ("{\"status\":{\"phase\":\"Failed\",\"containerStatuses\":["
                  "{\"name\":\"ok\",\"restartCount\":0,\"state\":{\"terminated\":{\"exitCode\":0,"
                  "\"reason\":\"Completed\"}}},"
                  "{\"name\":\"conv\",\"restartCount\":2,\"state\":{\"terminated\":{\"exitCode\":3,"
                  "\"reason\":\"Error\",\"message\":\"no root\"}}}]}}",
                  0, NULL);
  struct Pallet_kube_pod_state st;
  Pallet_kube_pod_state (pod, &st);
  CU_ASSERT_STRING_EQUAL (st.phase, "Failed");
  CU_ASSERT_STRING_EQUAL (st.container, "conv");
  CU_ASSERT_STRING_EQUAL (st.reason, "Error");
  CU_ASSERT_STRING_EQUAL (st.message, "no root");
  CU_ASSERT_EQUAL (st.exit_code, 3);
  CU_ASSERT_EQUAL (st.restarts, 2);
  json_decref (pod);
  pod = json_loads ("{\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"c\","
                    "\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\",\"message\":\"m\"}}}]}}",
                    0, NULL);
  Pallet_kube_pod_state (pod, &st);
  CU_ASSERT_STRING_EQUAL (st.reason, "ErrImagePull");
  CU_ASSERT_EQUAL (st.exit_code, -1);
  json_decref (pod);
  pod = json_loads ("{}", 0, NULL);
  Pallet_kube_pod_state (pod, &st);
  CU_ASSERT_STRING_EQUAL (st.phase, "");
  CU_ASSERT_PTR_NULL (st.reason);
  json_decref (pod);
}

/* --- against the local endpoint --------------------------------------- */

static int
start_endpoint (void)
{
  int fds[2];
  if (pipe (fds) != 0)
    return -1;
  char state[600], kc[600];
  snprintf (state, sizeof state, "%s/ep", tmp);
  snprintf (kc, sizeof kc, "%s/ep-kubeconfig", tmp);
  char *argv[] = { "/usr/bin/python3",
                   (char *) endpoint_script,
                   "--port",
                   "0",
                   "--state-dir",
                   state,
                   "--kubeconfig",
                   kc,
                   "--image",
                   "debian=host",
                   "--readonly-token",
                   "ro-token-777",
                   NULL };
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  posix_spawn_file_actions_addclose (&fa, fds[0]);
  int r = posix_spawn (&ep_pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (fds[1]);
  if (r != 0)
    return -1;
  FILE *f = fdopen (fds[0], "r");
  char line[1024];
  int ok = 0;
  while (f && fgets (line, sizeof line, f))
    if (!strncmp (line, "KUBECONFIG=", 11)) {
      line[strcspn (line, "\n")] = '\0';
      snprintf (ep_kubeconfig, sizeof ep_kubeconfig, "%s", line + 11);
      ok = 1;
      break;
    }
  if (f)
    fclose (f);
  return ok ? 0 : -1;
}

/* kubectl get WHAT -o jsonpath=... as text (malloc'd). */
static char *
kubectl_get (const char *ns, const char *what, const char *jsonpath)
{
  char env[1200], jp[256];
  snprintf (env, sizeof env, "KUBECONFIG=%s", ep_kubeconfig);
  snprintf (jp, sizeof jp, "jsonpath=%s", jsonpath);
  char *argv[] = { "/usr/bin/kubectl", "get", "-n", (char *) ns, (char *) what, "-o", jp, NULL };
  char *envp[] = { env, "HOME=/nonexistent", NULL };
  int fds[2];
  char *buf = calloc (1, 4096);
  if (pipe (fds) != 0)
    return buf;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 2);
  posix_spawn_file_actions_addclose (&fa, fds[0]);
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy (&fa);
  close (fds[1]);
  size_t n = 0;
  ssize_t got;
  while (r == 0 && n < 4095 && (got = read (fds[0], buf + n, 4095 - n)) > 0)
    n += (size_t) got;
  close (fds[0]);
  if (r == 0)
    waitpid (pid, NULL, 0);
  return buf;
}

static int
rm_one (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb;
  (void) flag;
  (void) ftw;
  return remove (p);
}

static struct Pallet_kube *
connect_with (const char *token, char **err)
{
  struct Pallet_kube_target t;
  if (Pallet_kube_load_kubeconfig (ep_kubeconfig, NULL, &t, err) != PALLET_OK)
    return NULL;
  struct Pallet_kube_config c;
  Pallet_kube_target_config (&t, &c);
  if (token)
    c.token = token;
  struct Pallet_kube *k = Pallet_kube_new (&c, err);
  Pallet_kube_target_free (&t);
  return k;
}

static void
test_endpoint_objects (void)
{
  char *err = NULL;
  struct Pallet_kube *k = connect_with (NULL, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (k);
  json_t *ns = json_loads ("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                           "\"metadata\":{\"name\":\"kt\"}}",
                           0, NULL);
  int created = 0;
  CU_ASSERT_EQUAL (Pallet_kube_create_or_get (k, ns, NULL, NULL, &created, &err), PALLET_OK);
  CU_ASSERT_EQUAL (created, 1);
  json_decref (ns);
  json_t *cm = json_loads ("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                           "\"c1\",\"labels\":{\"migration\":\"m-1\"}},\"data\":{\"a\":\"1\"}}",
                           0, NULL);
  json_t *live = NULL;
  CU_ASSERT_EQUAL (Pallet_kube_create_or_get (k, cm, "kt", &live, &created, &err), PALLET_OK);
  CU_ASSERT_EQUAL (created, 1);
  const char *uid = json_string_value (json_object_get (json_object_get (live, "metadata"), "uid"));
  char *uid1 = uid ? strdup (uid) : NULL;
  json_decref (live);
  /* Again: the same object, not a new one. */
  CU_ASSERT_EQUAL (Pallet_kube_create_or_get (k, cm, "kt", &live, &created, &err), PALLET_OK);
  CU_ASSERT_EQUAL (created, 0);
  uid = json_string_value (json_object_get (json_object_get (live, "metadata"), "uid"));
  CU_ASSERT_PTR_NOT_NULL (uid1 && uid && !strcmp (uid, uid1));
  json_decref (live);
  free (uid1);
  /* Server-side apply, merge patch: seen by kubectl. */
  json_object_set_new (json_object_get (cm, "data"), "b", json_string ("2"));
  CU_ASSERT_EQUAL (Pallet_kube_apply (k, cm, "kt", "pallet", NULL, &err), PALLET_OK);
  json_t *patch = json_loads ("{\"data\":{\"c\":\"3\"}}", 0, NULL);
  CU_ASSERT_EQUAL (Pallet_kube_patch (k, "v1", "ConfigMap", "kt", "c1", patch, NULL, &err),
                   PALLET_OK);
  json_decref (patch);
  char *got = kubectl_get ("kt", "configmap/c1", "{.data.a}{.data.b}{.data.c}");
  CU_ASSERT_STRING_EQUAL (got, "123");
  free (got);
  /* List by label, get, delete, gone. */
  json_t *items = json_array ();
  CU_ASSERT_EQUAL (
      Pallet_kube_list (k, "/api/v1/namespaces/kt/configmaps", "migration=m-1", 0, items, &err),
      PALLET_OK);
  CU_ASSERT_EQUAL (json_array_size (items), 1);
  json_array_clear (items);
  CU_ASSERT_EQUAL (
      Pallet_kube_list (k, "/api/v1/namespaces/kt/configmaps", "migration=other", 0, items, &err),
      PALLET_OK);
  CU_ASSERT_EQUAL (json_array_size (items), 0);
  json_decref (items);
  CU_ASSERT_EQUAL (Pallet_kube_delete (k, "v1", "ConfigMap", "kt", "c1", &err), PALLET_OK);
  CU_ASSERT_EQUAL (Pallet_kube_delete (k, "v1", "ConfigMap", "kt", "c1", &err), PALLET_E_NOT_FOUND);
  free (err);
  err = NULL;
  CU_ASSERT_EQUAL (Pallet_kube_get (k, "v1", "ConfigMap", "kt", "c1", &live, &err),
                   PALLET_E_NOT_FOUND);
  free (err);
  err = NULL;
  got = kubectl_get ("kt", "configmaps", "{.items[*].metadata.name}");
  CU_ASSERT_STRING_EQUAL (got, "");
  free (got);
  /* A missing namespace is NOT_FOUND naming it. */
  CU_ASSERT_EQUAL (Pallet_kube_get (k, "v1", "Namespace", NULL, "nope", &live, &err),
                   PALLET_E_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "nope"));
  free (err);
  json_decref (cm);
  Pallet_kube_free (k);
}

static void
test_endpoint_pod (void)
{
  char *err = NULL;
  struct Pallet_kube *k = connect_with (NULL, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (k);
  json_t *pod = json_loads (
      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\"},\"spec\":{"
      "\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\",\"image\":\"debian\","
      "\"command\":[\"/bin/sh\",\"-c\",\"echo one; echo two; echo three; exit 3\"]}]}}",
      0, NULL);
  CU_ASSERT_EQUAL (Pallet_kube_create_or_get (k, pod, "kt", NULL, NULL, &err), PALLET_OK);
  json_decref (pod);
  struct Pallet_kube_pod_state st = { 0 };
  json_t *live = NULL;
  for (int i = 0; i < 300; i++) {
    json_decref (live);
    live = NULL;
    if (Pallet_kube_get (k, "v1", "Pod", "kt", "p1", &live, &err) != PALLET_OK)
      break;
    Pallet_kube_pod_state (live, &st);
    if (!strcmp (st.phase, "Failed") || !strcmp (st.phase, "Succeeded"))
      break;
    struct timespec ts = { 0, 100000000L };
    nanosleep (&ts, NULL);
  }
  CU_ASSERT_STRING_EQUAL (st.phase, "Failed");
  CU_ASSERT_EQUAL (st.exit_code, 3);
  CU_ASSERT_PTR_NOT_NULL (st.reason && !strcmp (st.reason, "Error"));
  json_decref (live);
  char *log = NULL;
  CU_ASSERT_EQUAL (Pallet_kube_pod_log (k, "kt", "p1", NULL, 2, &log, &err), PALLET_OK);
  CU_ASSERT_PTR_NOT_NULL (log && !strcmp (log, "two\nthree\n"));
  free (log);
  CU_ASSERT_EQUAL (Pallet_kube_delete (k, "v1", "Pod", "kt", "p1", &err), PALLET_OK);
  Pallet_kube_free (k);
}

static void
test_endpoint_auth (void)
{
  char *err = NULL;
  /* A read-only token: the 403 says which verb on which resource. */
  struct Pallet_kube *k = connect_with ("ro-token-777", &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (k);
  json_t *cm = json_loads ("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                           "\"c2\"}}",
                           0, NULL);
  CU_ASSERT_EQUAL (Pallet_kube_create_or_get (k, cm, "kt", NULL, NULL, &err), PALLET_E_AUTH);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "forbidden to create configmaps in namespace kt")
                          && !strstr (err, "ro-token-777"));
  free (err);
  Pallet_kube_free (k);
  /* A wrong token: 401, unauthorised, the token never shown. */
  k = connect_with ("wrong-token-5f5f", &err);
  CU_ASSERT_EQUAL (Pallet_kube_get (k, "v1", "Namespace", NULL, "kt", NULL, &err), PALLET_E_AUTH);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "unauthorised to get namespaces")
                          && strstr (err, "rejected the token") && !strstr (err, "5f5f"));
  free (err);
  Pallet_kube_free (k);
  /* Nobody listening: cannot connect, retried, transient. */
  struct Pallet_kube_config c = { .api_url = "https://127.0.0.1:9",
                                  .token = "t-1",
                                  .url_source = "the test's URL" };
  k = Pallet_kube_new (&c, &err);
  CU_ASSERT_EQUAL (Pallet_kube_get (k, "v1", "Namespace", NULL, "kt", NULL, &err),
                   PALLET_E_TRANSIENT);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "cannot connect") && strstr (err, "the test's URL"));
  free (err);
  Pallet_kube_free (k);
  json_decref (cm);
}

int
main (int argc, char **argv)
{
  if (argc >= 3 && !strcmp (argv[1], "--endpoint"))
    endpoint_script = argv[2];
  if (!mkdtemp (tmp))
    return 1;
  if (CU_initialize_registry () != CUE_SUCCESS)
    return 1;
  CU_pSuite s = CU_add_suite ("kube", NULL, NULL);
  if (endpoint_script) {
    if (start_endpoint () != 0) {
      fprintf (stderr, "cannot start %s\n", endpoint_script);
      return 1;
    }
    CU_add_test (s, "objects: create-or-get, apply, patch, list, delete", test_endpoint_objects);
    CU_add_test (s, "a failing Pod: phase, exit code, reason, log tail", test_endpoint_pod);
    CU_add_test (s, "401, 403 and unreachable name the verb and the fix", test_endpoint_auth);
  }
  else {
    CU_add_test (s, "kubeconfig: contexts, CA, tokens, errors", test_kubeconfig);
    CU_add_test (s, "in-cluster service account and resolve order", test_in_cluster);
    CU_add_test (s, "paths", test_paths);
    CU_add_test (s, "Pod outcome", test_pod_state);
  }
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  if (ep_pid > 0) {
    kill (ep_pid, SIGTERM);
    waitpid (ep_pid, NULL, 0);
  }
  if (nftw (tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fails++;
  return fails ? 1 : 0;
}
