/* SPDX-License-Identifier: Apache-2.0 */
/* TLS: verification is on by default, a CA bundle makes a private CA work,
 * and only an explicit insecure skips the check.
 * Usage: test-tls PYTHON3 TLS_SERVER_SCRIPT OPENSSL */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ftw.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"
#include "pallet-kube.h"

extern char **environ;

static const char *python, *server, *openssl;
static char dir[64] = "/tmp/pallet-aws-tls-XXXXXX";
static char cert[128], key[128], url[64];
static pid_t srv_pid;

static int
run (char **argv)
{
  pid_t pid;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0)
    return -1;
  int st;
  waitpid (pid, &st, 0);
  return WIFEXITED (st) ? WEXITSTATUS (st) : -1;
}

static int
start_server (void)
{
  int fds[2];
  if (pipe (fds) < 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  posix_spawn_file_actions_addclose (&fa, fds[0]);
  char *argv[] = { (char *) python, (char *) server, cert, key, NULL };
  int r = posix_spawn (&srv_pid, python, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (fds[1]);
  if (r != 0)
    return -1;
  char line[64];
  size_t len = 0;
  while (len < sizeof line - 1 && read (fds[0], line + len, 1) == 1 && line[len] != '\n')
    len++;
  line[len] = '\0';
  close (fds[0]);
  int port;
  if (sscanf (line, "PORT=%d", &port) != 1)
    return -1;
  snprintf (url, sizeof url, "https://127.0.0.1:%d", port);
  return 0;
}

static struct Pallet_aws_client *
client (const char *ca, int insecure)
{
  struct Pallet_aws_config cfg = {
    .access_key_id = "AKIDTLS",
    .secret_access_key = "tls-secret",
    .region = "us-east-1",
    .endpoint_url = url,
    .ca_bundle = ca,
    .insecure = insecure,
    .max_attempts = 3,
    .backoff_base_ms = 1,
  };
  return Pallet_aws_client_new (&cfg, NULL);
}

static void
test_verify_default (void)
{
  struct Pallet_aws_client *c = client (NULL, 0);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), -1);
  const struct Pallet_aws_error *e = Pallet_aws_last_error (c);
  CU_ASSERT_STRING_EQUAL (e->code, "TLSVerificationFailed");
  /* Not retried: a retried TLS failure would use all 3 attempts.  (On a
   * loaded machine, under valgrind, the first attempt can meet a transient
   * error before the handshake; the TLS failure must still end the loop.) */
  CU_ASSERT (e->attempts >= 1 && e->attempts < 3);
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, "ca_bundle"));
  CU_ASSERT_PTR_NOT_NULL (strstr (e->text, url));
  printf ("\n  %s\n", e->text);
  Pallet_aws_client_free (c);
}

static void
test_ca_bundle (void)
{
  struct Pallet_aws_client *c = client (cert, 0);
  json_t *id = NULL;
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (id, "Account"), "333333333333");
  json_decref (id);
  Pallet_aws_client_free (c);
  /* A bundle that does not exist is an error, not a silent fallback. */
  c = client ("/nonexistent/ca.pem", 0);
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "TLSVerificationFailed");
  Pallet_aws_client_free (c);
}

static char *
read_pem (const char *file)
{
  FILE *f = fopen (file, "r");
  char *pem = f ? calloc (1, 65536) : NULL;
  if (pem)
    fread (pem, 1, 65535, f);
  if (f)
    fclose (f);
  return pem;
}

/* The Secret's ca.crt: the PEM in memory (CURLOPT_CAINFO_BLOB, no temp
 * file); a PEM that is not this server's CA still fails verification. */
static void
test_ca_pem (void)
{
  char *pem = read_pem (cert);
  CU_ASSERT_PTR_NOT_NULL_FATAL (pem);
  struct Pallet_aws_config cfg = {
    .access_key_id = "AKIDTLS",
    .secret_access_key = "tls-secret",
    .region = "us-east-1",
    .endpoint_url = url,
    .ca_pem = pem,
    .max_attempts = 3,
    .backoff_base_ms = 1,
  };
  struct Pallet_aws_client *c = Pallet_aws_client_new (&cfg, NULL);
  json_t *id = NULL;
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_json_str (id, "Account"), "333333333333");
  json_decref (id);
  Pallet_aws_client_free (c);
  /* Another CA: the certificate's first line kept, its body changed. */
  char *body = strchr (pem, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL (body);
  body[10] = body[10] == 'A' ? 'B' : 'A';
  c = Pallet_aws_client_new (&cfg, NULL);
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), -1);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "TLSVerificationFailed");
  Pallet_aws_client_free (c);
  free (pem);
}

static void
test_insecure (void)
{
  struct Pallet_aws_client *c = client (NULL, 1);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  Pallet_aws_client_free (c);
}

/* ---- the Kubernetes reader over TLS ---- */

static int
kube_list (const char *ca, int insecure, const char *token, json_t *items, char **err)
{
  struct Pallet_kube_config kc = {
    .api_url = url, .token = token, .ca_file = ca, .insecure = insecure
  };
  struct Pallet_kube *k = Pallet_kube_new (&kc, err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (k);
  int st = Pallet_kube_list (k, "/api/v1/namespaces/vms/persistentvolumeclaims", "vmID=i-1", 1,
                             items, err);
  Pallet_kube_free (k);
  return st;
}

static void
test_kube_tls (void)
{
  json_t *items = json_array ();
  char *err = NULL;
  /* Verified by default: names kube-ca.crt. */
  CU_ASSERT_EQUAL (kube_list (NULL, 0, "kube-tls-token", items, &err), PALLET_E_FAILED);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "kube-ca.crt"));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "TLS verification"));
  free (err);
  err = NULL;
  /* The CA: two pages, followed through continue. */
  CU_ASSERT_EQUAL (kube_list (cert, 0, "kube-tls-token", items, &err), PALLET_OK);
  CU_ASSERT_PTR_NULL (err);
  CU_ASSERT_EQUAL (json_array_size (items), 2);
  CU_ASSERT_STRING_EQUAL (json_string_value (json_object_get (
                              json_object_get (json_array_get (items, 1), "metadata"), "name")),
                          "pvc-1");
  json_array_clear (items);
  /* The Secret's kube-ca.crt in memory. */
  char *pem = read_pem (cert);
  struct Pallet_kube_config kc = { .api_url = url, .token = "kube-tls-token", .ca_pem = pem };
  struct Pallet_kube *k = Pallet_kube_new (&kc, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (k);
  CU_ASSERT_EQUAL (Pallet_kube_list (k, "/api/v1/namespaces/vms/persistentvolumeclaims", "vmID=i-1",
                                     1, items, &err),
                   PALLET_OK);
  CU_ASSERT_EQUAL (json_array_size (items), 2);
  Pallet_kube_free (k);
  free (pem);
  json_array_clear (items);
  CU_ASSERT_EQUAL (kube_list (NULL, 1, "kube-tls-token", items, &err), PALLET_OK);
  CU_ASSERT_EQUAL (json_array_size (items), 2);
  /* A wrong token: AUTH, names kubeToken and the verb, never shows the token. */
  CU_ASSERT_EQUAL (kube_list (cert, 0, "wrong-token-5f5f", items, &err), PALLET_E_AUTH);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "kubeToken")
                          && strstr (err, "list persistentvolumeclaims in namespace vms"));
  CU_ASSERT_PTR_NULL (err && strstr (err, "wrong-token-5f5f") ? "leak" : NULL);
  printf ("\n  %s\n", err ? err : "");
  free (err);
  err = NULL;
  CU_ASSERT_EQUAL (kube_list (cert, 0, NULL, items, &err), PALLET_E_AUTH);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "no token was sent") && strstr (err, "kubeToken"));
  free (err);
  err = NULL;
  /* Bad config is refused before any request. */
  struct Pallet_kube_config bad = { .api_url = "ftp://x", .token = "t" };
  CU_ASSERT_PTR_NULL (Pallet_kube_new (&bad, &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "kube-api-url"));
  free (err);
  err = NULL;
  struct Pallet_kube_config nl = { .api_url = url, .token = "a\nb" };
  CU_ASSERT_PTR_NULL (Pallet_kube_new (&nl, &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "line break"));
  free (err);
  /* A List document is checked. */
  json_t *doc = json_pack ("{s:[i]}", "items", 1);
  err = NULL;
  CU_ASSERT_EQUAL (Pallet_kube_list_items (doc, items, NULL, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err);
  free (err);
  json_decref (doc);
  json_decref (items);
}

static int
rm_cb (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb;
  (void) flag;
  (void) ftw;
  return remove (p);
}

int
main (int argc, char **argv)
{
  if (argc < 4) {
    fprintf (stderr, "usage: %s PYTHON3 TLS_SERVER_SCRIPT OPENSSL\n", argv[0]);
    return 2;
  }
  python = argv[1];
  server = argv[2];
  openssl = argv[3];
  if (!mkdtemp (dir))
    return 1;
  snprintf (cert, sizeof cert, "%s/cert.pem", dir);
  snprintf (key, sizeof key, "%s/key.pem", dir);
  char *gen[] = { (char *) openssl,
                  "req",
                  "-x509",
                  "-newkey",
                  "rsa:2048",
                  "-nodes",
                  "-keyout",
                  key,
                  "-out",
                  cert,
                  "-days",
                  "1",
                  "-subj",
                  "/CN=127.0.0.1",
                  "-addext",
                  "subjectAltName=IP:127.0.0.1",
                  NULL };
  int ok = run (gen) == 0 && start_server () == 0;
  if (!ok)
    fprintf (stderr, "FAIL: cannot make a certificate with %s or start %s\n", openssl, server);
  unsigned fails = 1;
  if (ok) {
    CU_initialize_registry ();
    CU_pSuite s = CU_add_suite ("tls", NULL, NULL);
    CU_add_test (s, "verification on by default", test_verify_default);
    CU_add_test (s, "CA bundle", test_ca_bundle);
    CU_add_test (s, "CA in memory", test_ca_pem);
    CU_add_test (s, "insecure only when asked", test_insecure);
    CU_add_test (s, "Kubernetes reader: TLS, paging, token", test_kube_tls);
    CU_basic_set_mode (CU_BRM_VERBOSE);
    CU_basic_run_tests ();
    fails = CU_get_number_of_failures ();
    CU_cleanup_registry ();
  }
  if (srv_pid > 0) {
    kill (srv_pid, SIGTERM);
    waitpid (srv_pid, NULL, 0);
  }
  nftw (dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  return fails ? 1 : 0;
}
