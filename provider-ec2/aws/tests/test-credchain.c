/* SPDX-License-Identifier: Apache-2.0 */
/* Integration: every credential source of the chain against the local
 * endpoint (tests/endpoint: STS AssumeRole / AssumeRoleWithWebIdentity,
 * IMDSv2, the container endpoint, SSO), each one's failure paths, the
 * refresh of temporary credentials and the "nothing found" message.
 * Usage: test-credchain PYTHON3 ENDPOINT_SCRIPT
 * Runs with a temporary HOME and a scrubbed AWS_* environment. */
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
#include <curl/curl.h>
#include <openssl/sha.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"

extern char **environ;

#define SRC_KEY    "AKIAPALLETSOURCE0001"
#define SRC_SECRET "pallet/source/secret/key/0000000000000001"
#define TGT_KEY    "AKIAPALLETTARGET0002"
#define TGT_SECRET "pallet/target/secret/key/0000000000000002"
#define ROLE(n)    "arn:aws:iam::111111111111:role/" n

static const char *python, *script;
static pid_t ep_pid;
static char url[64], home[256];
static struct Pallet_aws_buf logbuf;

static void
log_cb (void *opaque, int level, const char *msg)
{
  (void) opaque;
  Pallet_aws_buf_printf (&logbuf, "%d %s\n", level, msg);
}

static int
start_endpoint (void)
{
  int fds[2];
  if (pipe (fds) < 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, fds[1], 1);
  posix_spawn_file_actions_addclose (&fa, fds[0]);
  char *argv[] = { (char *) python, (char *) script, "--port", "0", NULL };
  int r = posix_spawn (&ep_pid, python, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (fds[1]);
  char line[128];
  size_t len = 0;
  while (r == 0 && len < sizeof line - 1 && read (fds[0], line + len, 1) == 1 && line[len] != '\n')
    len++;
  line[len] = '\0';
  close (fds[0]);
  int port;
  if (r != 0 || sscanf (line, "PORT=%d", &port) != 1) {
    fprintf (stderr, "pallet-endpoint did not start (got \"%s\")\n", line);
    return -1;
  }
  snprintf (url, sizeof url, "http://127.0.0.1:%d", port);
  return 0;
}

static size_t
ctl_write (char *p, size_t s, size_t n, void *ud)
{
  Pallet_aws_buf_add (ud, p, s * n);
  return s * n;
}

static json_t *
control (const char *method, const char *path, const char *body)
{
  CURL *h = curl_easy_init ();
  struct Pallet_aws_buf out = { 0 };
  char u[512];
  snprintf (u, sizeof u, "%s%s", url, path);
  curl_easy_setopt (h, CURLOPT_URL, u);
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, ctl_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &out);
  CURLcode cc = curl_easy_perform (h);
  curl_easy_cleanup (h);
  json_t *j = cc == CURLE_OK && out.data ? json_loadb (out.data, out.len, 0, NULL) : NULL;
  Pallet_aws_buf_free (&out);
  return j;
}

static void
knobs (const char *json)
{
  json_decref (control ("POST", "/_pallet/credentials", json));
}

static int
calls (const char *action)
{
  char p[256];
  snprintf (p, sizeof p, "/_pallet/calls?action=%s", action);
  json_t *j = control ("GET", p, NULL);
  int n = (int) json_integer_value (json_object_get (j, "count"));
  json_decref (j);
  return n;
}

static void
write_file (const char *rel, const char *text)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", home, rel);
  FILE *f = fopen (path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL (f);
  fputs (text, f);
  fclose (f);
}

/* No AWS_* at all, the endpoint for every service, fresh shared files. */
static void
reset (void)
{
  for (;;) {
    char **e = environ;
    while (*e && strncmp (*e, "AWS_", 4) != 0)
      e++;
    if (!*e)
      break;
    char name[256];
    snprintf (name, sizeof name, "%.*s", (int) strcspn (*e, "="), *e);
    unsetenv (name);
  }
  setenv ("HOME", home, 1);
  setenv ("AWS_ENDPOINT_URL", url, 1);
  setenv ("AWS_REGION", "us-east-1", 1);
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  write_file (".aws/credentials", "");
  write_file (".aws/config", "");
  knobs ("{\"imdsMode\": \"ok\", \"containerMode\": \"ok\", \"duration\": 3600, "
         "\"imdsRole\": \"arn:aws:iam::111111111111:role/pallet-instance\"}");
}

static struct Pallet_aws_client *
client (char **err)
{
  struct Pallet_aws_config cfg = { .log = log_cb, .backoff_base_ms = 5, .backoff_max_ms = 20 };
  *err = NULL;
  return Pallet_aws_client_new (&cfg, err);
}

/* A client must come up from source, and GetCallerIdentity with it must
 * say arn_part. */
static void
expect_ok (const char *source, const char *arn_part)
{
  char *err;
  struct Pallet_aws_client *c = client (&err);
  if (!c)
    fprintf (stderr, "  unexpected error: %s\n", err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (c);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_credentials_source (c), source);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  const char *arn = Pallet_aws_json_str (id, "Arn");
  CU_ASSERT_PTR_NOT_NULL (arn && strstr (arn, arn_part));
  if (!arn || !strstr (arn, arn_part))
    fprintf (stderr, "  arn %s, want %s (%s)\n", arn ? arn : "(none)", arn_part,
             Pallet_aws_errmsg (c));
  json_decref (id);
  Pallet_aws_client_free (c);
}

/* Client creation must fail with an error containing every part. */
static void
expect_err (const char *part1, const char *part2)
{
  char *err;
  struct Pallet_aws_client *c = client (&err);
  CU_ASSERT_PTR_NULL (c);
  Pallet_aws_client_free (c);
  bool ok = err && strstr (err, part1) && (!part2 || strstr (err, part2));
  CU_ASSERT_TRUE (ok);
  if (!ok)
    fprintf (stderr, "  error \"%s\", want \"%s\" and \"%s\"\n", err ? err : "(none)", part1,
             part2 ? part2 : "");
  /* Secrets never appear in an error. */
  CU_ASSERT_TRUE (!err || !strstr (err, SRC_SECRET));
  free (err);
}

static char *
jwt (const char *aud, long exp_offset)
{
  char payload[256], b64[512], *s = NULL;
  snprintf (payload, sizeof payload,
            "{\"sub\":\"system:serviceaccount:pallet:m\",\"aud\":\"%s\","
            "\"exp\":%lld}",
            aud, (long long) time (NULL) + exp_offset);
  int n = EVP_EncodeBlock ((unsigned char *) b64, (unsigned char *) payload, strlen (payload));
  for (int i = 0; i < n; i++) /* base64url */
    b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  Pallet_aws_strf (&s, "eyJhbGciOiJSUzI1NiJ9.%s.c2ln", b64);
  return s;
}

static void
test_web_identity (void)
{
  char tf[512];
  snprintf (tf, sizeof tf, "%s/token", home);
  reset ();
  char *t = jwt ("sts.amazonaws.com", 3600);
  write_file ("token", t);
  free (t);
  setenv ("AWS_WEB_IDENTITY_TOKEN_FILE", tf, 1);
  setenv ("AWS_ROLE_ARN", ROLE ("pallet-irsa"), 1);
  setenv ("AWS_ROLE_SESSION_NAME", "pallet-pod", 1);
  int before = calls ("AssumeRoleWithWebIdentity");
  expect_ok ("web-identity", "assumed-role/pallet-irsa/pallet-pod");
  CU_ASSERT_EQUAL (calls ("AssumeRoleWithWebIdentity"), before + 1);
  /* It comes before the profile. */
  write_file (".aws/credentials", "[default]\naws_access_key_id = " TGT_KEY
                                  "\naws_secret_access_key = " TGT_SECRET "\n");
  expect_ok ("web-identity", "assumed-role/pallet-irsa/");
  /* Failures: wrong audience, expired, a role that does not trust it,
   * a missing file, half the settings. */
  t = jwt ("other", 3600);
  write_file ("token", t);
  free (t);
  expect_err ("InvalidIdentityToken", "pallet-irsa");
  t = jwt ("sts.amazonaws.com", -10);
  write_file ("token", t);
  free (t);
  expect_err ("ExpiredTokenException", NULL);
  t = jwt ("sts.amazonaws.com", 3600);
  write_file ("token", t);
  free (t);
  setenv ("AWS_ROLE_ARN", ROLE ("pallet-migrator"), 1);
  expect_err ("AccessDenied", "AssumeRoleWithWebIdentity");
  setenv ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
  expect_err ("cannot read the web identity token file /nonexistent/token", NULL);
  unsetenv ("AWS_ROLE_ARN");
  expect_err ("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not", NULL);
}

static void
test_assume_role (void)
{
  reset ();
  write_file (".aws/credentials",
              "[src]\naws_access_key_id = " TGT_KEY "\naws_secret_access_key = " TGT_SECRET "\n");
  write_file (
      ".aws/config",
      "[profile mig]\nrole_arn = " ROLE (
          "pallet-migrator") "\nsource_profile = src\n"
                             "role_session_name = pallet-mig\n"
                             "[profile ext]\nrole_arn = arn:aws:iam::222222222222:role/pallet-external\n"
                             "source_profile = src\nexternal_id = pallet-ext-0001\n"
                             "[profile noext]\nrole_arn = arn:aws:iam::222222222222:role/pallet-external\n"
                             "source_profile = src\n"
                             "[profile chained]\nrole_arn = " ROLE (
                                 "pallet-external") "\n"
                                                    "source_profile = mig\nexternal_id = pallet-ext-0001\n"
                                                    "[profile denied]\nrole_arn = " ROLE (
                                                        "pallet-denied") "\nsource_profile = src\n"
                                                                         "[profile mfa]\nrole_arn = " ROLE (
                                                                             "pallet-migrator") "\nsource_profile = src\n"
                                                                                                "mfa_serial = arn:aws:iam::222222222222:mfa/me\n"
                                                                                                "[profile loop1]\nrole_arn = " ROLE (
                                                                                                    "pallet-migrator") "\nsource_profile = loop2\n"
                                                                                                                       "[profile loop2]\nrole_arn = " ROLE (
                                                                                                                           "pallet-migrator") "\nsource_profile = loop1\n"
                                                                                                                                              "[profile short]\nrole_arn = " ROLE (
                                                                                                                                                  "pallet-migrator") "\nsource_profile = src\n"
                                                                                                                                                                     "duration_seconds = 60\n"
                                                                                                                                                                     "[profile envsrc]\nrole_arn = " ROLE (
                                                                                                                                                                         "pallet-migrator") "\n"
                                                                                                                                                                                            "credential_source = Environment\n"
                                                                                                                                                                                            "[profile nosrc]\nrole_arn = " ROLE (
                                                                                                                                                                                                "pallet-migrator") "\n"
                                                                                                                                                                                                                   "[profile badsrc]\nrole_arn = " ROLE (
                                                                                                                                                                                                                       "pallet-migrator") "\n"
                                                                                                                                                                                                                                          "credential_source = Somewhere\n");
  setenv ("AWS_PROFILE", "mig", 1);
  expect_ok ("profile:mig assume-role", "assumed-role/pallet-migrator/pallet-mig");
  setenv ("AWS_PROFILE", "ext", 1);
  expect_ok ("profile:ext assume-role", "222222222222:assumed-role/pallet-external/");
  setenv ("AWS_PROFILE", "chained", 1);
  expect_ok ("profile:chained assume-role", "assumed-role/pallet-external/");
  setenv ("AWS_PROFILE", "noext", 1);
  expect_err ("AccessDenied", "ExternalId");
  setenv ("AWS_PROFILE", "denied", 1);
  expect_err ("cannot assume role " ROLE ("pallet-denied"), "AccessDenied");
  setenv ("AWS_PROFILE", "mfa", 1);
  expect_err ("needs an MFA code (mfa_serial)", "cannot prompt");
  CU_ASSERT_EQUAL (calls ("AssumeRole") > 0, 1);
  setenv ("AWS_PROFILE", "loop1", 1);
  expect_err ("source_profile chain longer than", NULL);
  setenv ("AWS_PROFILE", "short", 1);
  expect_err ("ValidationError", "durationSeconds");
  setenv ("AWS_PROFILE", "nosrc", 1);
  expect_err ("give exactly one", NULL);
  setenv ("AWS_PROFILE", "badsrc", 1);
  expect_err ("credential_source \"Somewhere\" is not one of", NULL);
  setenv ("AWS_PROFILE", "envsrc", 1);
  expect_err ("credential_source Environment", NULL);
}

static void
test_refresh (void)
{
  reset ();
  write_file (".aws/credentials",
              "[src]\naws_access_key_id = " TGT_KEY "\naws_secret_access_key = " TGT_SECRET "\n");
  /* 900 s: inside the 15-minute refresh window from the start, so every
   * request refreshes first. */
  write_file (".aws/config",
              "[profile mig]\nrole_arn = " ROLE (
                  "pallet-migrator") "\nsource_profile = src\nduration_seconds = 900\n");
  setenv ("AWS_PROFILE", "mig", 1);
  char *err;
  int before = calls ("AssumeRole");
  struct Pallet_aws_client *c = client (&err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (c);
  char first[64];
  snprintf (first, sizeof first, "%s", Pallet_aws_access_key_id (c));
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  CU_ASSERT_EQUAL (calls ("AssumeRole"), before + 3);
  CU_ASSERT_STRING_NOT_EQUAL (Pallet_aws_access_key_id (c), first);
  /* The refresh fails (the source profile is gone) but the old keys are
   * still valid: a warning, and the call goes on. */
  write_file (".aws/credentials", "");
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  CU_ASSERT_PTR_NOT_NULL (logbuf.data && strstr (logbuf.data, "could not be refreshed"));
  Pallet_aws_client_free (c);
}

/* credential_process output: KEY and SECRET, expiring in 10 minutes (inside
 * the refresh window, so every request runs the process again). */
static void
rot_creds (const char *key, const char *secret)
{
  char when[32], text[256];
  time_t t = time (NULL) + 600;
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf (text, sizeof text,
            "{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", "
            "\"SessionToken\": \"t\", \"Expiration\": \"%s\"}",
            key, secret, when);
  write_file ("rot.json", text);
}

/* A refresh that keeps the access key id but changes the secret: the
 * signing key is cached by key id, so each request must sign with the
 * secret it refreshed to, never with a key derived from the one before. */
static void
test_refresh_same_key_id (void)
{
  reset ();
  char cfg[600];
  snprintf (cfg, sizeof cfg, "[profile rot]\ncredential_process = /bin/cat %s/rot.json\n", home);
  write_file (".aws/config", cfg);
  setenv ("AWS_PROFILE", "rot", 1);
  rot_creds (SRC_KEY, SRC_SECRET);
  char *err;
  struct Pallet_aws_client *c = client (&err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (c);
  json_t *id = NULL;
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  id = NULL;
  rot_creds (SRC_KEY, "not/the/secret/of/" SRC_KEY);
  CU_ASSERT_NOT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_last_error (c)->code, "SignatureDoesNotMatch");
  json_decref (id);
  id = NULL;
  rot_creds (SRC_KEY, SRC_SECRET);
  CU_ASSERT_EQUAL (Pallet_aws_sts_get_caller_identity (c, &id), 0);
  json_decref (id);
  Pallet_aws_client_free (c);
}

static void
test_process (void)
{
  reset ();
  write_file (".aws/config",
              "[profile p]\ncredential_process = /usr/bin/printf '{\"Version\": 1, "
              "\"AccessKeyId\": \"" SRC_KEY "\", \"SecretAccessKey\": \"" SRC_SECRET "\"}'\n"
              "[profile false]\ncredential_process = /bin/false\n"
              "[profile stderr]\ncredential_process = /bin/sh -c \"echo 'login required' >&2; "
              "exit 3\"\n"
              "[profile notjson]\ncredential_process = /usr/bin/printf 'not json'\n"
              "[profile v2]\ncredential_process = /usr/bin/printf '{\"Version\": 2}'\n"
              "[profile expired]\ncredential_process = /usr/bin/printf '{\"Version\": 1, "
              "\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"S\", \"Expiration\": "
              "\"2001-01-01T00:00:00Z\"}'\n"
              "[profile missing]\ncredential_process = /nonexistent/helper --x\n"
              "[profile quote]\ncredential_process = /usr/bin/printf 'unclosed\n");
  setenv ("AWS_PROFILE", "p", 1);
  expect_ok ("profile:p credential_process", "user/pallet-source");
  setenv ("AWS_PROFILE", "false", 1);
  expect_err ("credential_process /bin/false exited with status 1", NULL);
  setenv ("AWS_PROFILE", "stderr", 1);
  expect_err ("exited with status 3: login required", NULL);
  setenv ("AWS_PROFILE", "notjson", 1);
  expect_err ("not a JSON object", NULL);
  setenv ("AWS_PROFILE", "v2", 1);
  expect_err ("\"Version\": 1", NULL);
  setenv ("AWS_PROFILE", "expired", 1);
  expect_err ("expired at 2001-01-01T00:00:00Z", NULL);
  setenv ("AWS_PROFILE", "missing", 1);
  expect_err ("cannot run credential_process /nonexistent/helper", NULL);
  setenv ("AWS_PROFILE", "quote", 1);
  expect_err ("unclosed ' quote", NULL);
}

static void
test_split (void)
{
  char *err = NULL;
  char **a =
      Pallet_aws_split_command ("  a \"b c\" 'd e' f\\ g \"h\\\"i\" \"j\\k\" '' x'y'\"z\"", &err);
  const char *want[] = { "a", "b c", "d e", "f g", "h\"i", "j\\k", "", "xyz", NULL };
  CU_ASSERT_PTR_NOT_NULL_FATAL (a);
  for (size_t i = 0; want[i] || a[i]; i++) {
    CU_ASSERT_TRUE (want[i] && a[i] && strcmp (want[i], a[i]) == 0);
    if (!want[i] || !a[i])
      break;
  }
  Pallet_aws_argv_free (a);
  CU_ASSERT_PTR_NULL (Pallet_aws_split_command ("   ", &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "empty"));
  free (err);
  err = NULL;
  CU_ASSERT_PTR_NULL (Pallet_aws_split_command ("a \"b", &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "unclosed \" quote"));
  free (err);
  err = NULL;
  CU_ASSERT_PTR_NULL (Pallet_aws_split_command ("a\\", &err));
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "lone backslash"));
  free (err);
}

static void
sso_cache (const char *key, const char *token, long exp_offset)
{
  unsigned char md[SHA_DIGEST_LENGTH];
  char hex[41], rel[128], text[512], when[32];
  SHA1 ((const unsigned char *) key, strlen (key), md);
  Pallet_aws_hex (md, sizeof md, hex);
  time_t t = time (NULL) + exp_offset;
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime (&t));
  snprintf (rel, sizeof rel, ".aws/sso/cache/%s.json", hex);
  snprintf (text, sizeof text, "{\"accessToken\": \"%s\", \"expiresAt\": \"%s\"}", token, when);
  write_file (rel, text);
}

static void
test_sso (void)
{
  reset ();
  setenv ("AWS_ENDPOINT_URL_SSO", url, 1);
  write_file (".aws/config", "[profile s]\nsso_session = corp\nsso_account_id = 111111111111\n"
                             "sso_role_name = pallet-migrator\n"
                             "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
                             "sso_region = us-east-1\n"
                             "[profile legacy]\nsso_start_url = https://old.awsapps.com/start\n"
                             "sso_region = us-east-1\nsso_account_id = 111111111111\n"
                             "sso_role_name = pallet-migrator\n"
                             "[profile half]\nsso_session = corp\n");
  setenv ("AWS_PROFILE", "s", 1);
  expect_err ("the SSO token", "is missing");
  sso_cache ("corp", "pallet-sso-access-token-0001", 3600);
  expect_ok ("profile:s sso", "assumed-role/pallet-migrator/sso");
  setenv ("AWS_PROFILE", "legacy", 1);
  sso_cache ("https://old.awsapps.com/start", "pallet-sso-access-token-0001", 3600);
  expect_ok ("profile:legacy sso", "assumed-role/pallet-migrator/sso");
  sso_cache ("https://old.awsapps.com/start", "pallet-sso-access-token-0001", -60);
  expect_err ("has expired", "aws sso login --profile legacy");
  setenv ("AWS_PROFILE", "s", 1);
  sso_cache ("corp", "revoked-token", 3600);
  expect_err ("SSO GetRoleCredentials for role pallet-migrator", "HTTP 401");
  setenv ("AWS_PROFILE", "half", 1);
  expect_err ("SSO needs sso_start_url", NULL);
}

static void
test_container (void)
{
  char full[128], tf[512];
  snprintf (full, sizeof full, "%s/v1/credentials", url);
  snprintf (tf, sizeof tf, "%s/pod-token", home);
  reset ();
  write_file ("pod-token", "pallet-pod-identity-token-0001\n");
  setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
  setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf, 1);
  expect_ok ("container:pod-identity", "assumed-role/pallet-migrator/eks-pod-identity");
  unsetenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pallet-pod-identity-token-0001", 1);
  expect_ok ("container:pod-identity", "eks-pod-identity");
  setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
  expect_err ("answered HTTP 401 (token refused)", NULL);
  setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pallet-pod-identity-token-0001", 1);
  knobs ("{\"containerMode\": \"malformed\"}");
  expect_err ("container credentials endpoint", "not a JSON object");
  knobs ("{\"containerMode\": \"expired\"}");
  expect_err ("expired at", NULL);
  knobs ("{\"containerMode\": \"denied\"}");
  expect_err ("HTTP 403", NULL);
  setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds", 1);
  expect_err ("plain http is only allowed to loopback", NULL);
}

static void
test_imds (void)
{
  reset ();
  unsetenv ("AWS_EC2_METADATA_DISABLED");
  setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
  int before = calls ("/latest/api/token");
  expect_ok ("imds", "assumed-role/pallet-instance/");
  CU_ASSERT_EQUAL (calls ("/latest/api/token"), before + 1); /* IMDSv2 session */
  knobs ("{\"imdsRole\": null}");
  expect_err ("no IAM role attached", NULL);
  knobs ("{\"imdsRole\": \"arn:aws:iam::111111111111:role/pallet-instance\", "
         "\"imdsMode\": \"malformed\"}");
  expect_err ("EC2 instance metadata", "not a JSON object");
  knobs ("{\"imdsMode\": \"expired\"}");
  expect_err ("expired at", NULL);
  knobs ("{\"imdsMode\": \"down\"}");
  expect_err ("IMDSv2 token request failed", "HTTP 503");
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  expect_err ("EC2 instance metadata: AWS_EC2_METADATA_DISABLED=true", NULL);
  /* credential_source Ec2InstanceMetadata with IMDS disabled. */
  write_file (".aws/config", "[profile i]\nrole_arn = " ROLE (
                                 "pallet-migrator") "\ncredential_source = Ec2InstanceMetadata\n");
  setenv ("AWS_PROFILE", "i", 1);
  expect_err ("AWS_EC2_METADATA_DISABLED=true; unset one", NULL);
  unsetenv ("AWS_EC2_METADATA_DISABLED");
  knobs ("{\"imdsMode\": \"ok\"}");
  expect_ok ("profile:i assume-role", "assumed-role/pallet-migrator/");
}

static void
test_nothing_found (void)
{
  reset ();
  char *err;
  struct Pallet_aws_client *c = client (&err);
  CU_ASSERT_PTR_NULL_FATAL (c);
  const char *order[] = { "no AWS credentials found; tried in order: provider Secret",
                          "environment: AWS_ACCESS_KEY_ID not set",
                          "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set",
                          "profile \"default\": not found in",
                          "container endpoint: AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "EC2 instance metadata: AWS_EC2_METADATA_DISABLED=true",
                          NULL };
  const char *at = err;
  for (size_t i = 0; order[i]; i++) {
    const char *p = at ? strstr (at, order[i]) : NULL;
    CU_ASSERT_PTR_NOT_NULL (p);
    if (!p)
      fprintf (stderr, "  missing (in order) \"%s\" in: %s\n", order[i], err);
    at = p ? p : at;
  }
  free (err);
  /* The default IMDS address is tried and skipped when nothing answers
   * there properly (a closed port stands in for "not on EC2"). */
  reset ();
  unsetenv ("AWS_EC2_METADATA_DISABLED");
  write_file (".aws/config", "[profile x]\nregion = us-east-1\n");
  setenv ("AWS_PROFILE", "x", 1);
  setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9", 1);
  expect_err ("EC2 instance metadata", "127.0.0.1:9");
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
  if (argc != 3) {
    fprintf (stderr, "usage: %s PYTHON3 ENDPOINT_SCRIPT\n", argv[0]);
    return 2;
  }
  python = argv[1];
  script = argv[2];
  snprintf (home, sizeof home, "/tmp/pallet-credchain-XXXXXX");
  if (!mkdtemp (home))
    return 1;
  char d[512];
  snprintf (d, sizeof d, "%s/.aws", home);
  mkdir (d, 0700);
  snprintf (d, sizeof d, "%s/.aws/sso", home);
  mkdir (d, 0700);
  snprintf (d, sizeof d, "%s/.aws/sso/cache", home);
  mkdir (d, 0700);
  curl_global_init (CURL_GLOBAL_DEFAULT);
  if (start_endpoint () < 0)
    return 1;
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("credchain", NULL, NULL);
  CU_add_test (s, "credential_process command split", test_split);
  CU_add_test (s, "web identity (IRSA)", test_web_identity);
  CU_add_test (s, "assume-role profiles", test_assume_role);
  CU_add_test (s, "refresh before expiry", test_refresh);
  CU_add_test (s, "refresh to another secret, same key id", test_refresh_same_key_id);
  CU_add_test (s, "credential_process", test_process);
  CU_add_test (s, "SSO token cache", test_sso);
  CU_add_test (s, "container endpoint (Pod Identity)", test_container);
  CU_add_test (s, "IMDSv2", test_imds);
  CU_add_test (s, "nothing found: every source and why", test_nothing_found);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  if (ep_pid > 0) {
    kill (ep_pid, SIGTERM);
    waitpid (ep_pid, NULL, 0);
  }
  Pallet_aws_buf_free (&logbuf);
  curl_global_cleanup ();
  nftw (home, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return fails ? 1 : 0;
}
