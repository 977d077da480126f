/* SPDX-License-Identifier: Apache-2.0 */
/* Credential chain, region and endpoint resolution, the INI reader.
 * Runs with a temporary HOME and a scrubbed AWS_* environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>
#include <sys/stat.h>
#include <CUnit/Basic.h>
#include "aws-internal.h"

static char home[256];

static const char *const aws_env[] = { "AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_EC2",
                                       "AWS_ENDPOINT_URL_EBS",
                                       "AWS_ENDPOINT_URL_STS",
                                       "AWS_MAX_ATTEMPTS",
                                       "AWS_ENDPOINT_URL_KMS",
                                       "AWS_USE_FIPS_ENDPOINT",
                                       "AWS_USE_DUALSTACK_ENDPOINT",
                                       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                                       "AWS_CA_BUNDLE",
                                       NULL };

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

static void
reset (void)
{
  for (size_t i = 0; aws_env[i]; i++)
    unsetenv (aws_env[i]);
  setenv ("HOME", home, 1);
  /* This host may answer at 169.254.169.254: the IMDS tests set their own. */
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  char path[512];
  snprintf (path, sizeof path, "%s/.aws/credentials", home);
  unlink (path);
  snprintf (path, sizeof path, "%s/.aws/config", home);
  unlink (path);
}

static int
resolve (const struct Pallet_aws_config *cfg, struct Pallet_aws_resolved *r, char **err)
{
  *err = NULL;
  return Pallet_aws_resolve (cfg, r, err);
}

static void
test_explicit_and_env (void)
{
  struct Pallet_aws_resolved r;
  char *err;
  reset ();
  setenv ("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  setenv ("AWS_SESSION_TOKEN", "envtoken", 1);
  setenv ("AWS_REGION", "eu-west-1", 1);
  struct Pallet_aws_config cfg = { .access_key_id = "AKIDCFG",
                                   .secret_access_key = "cfgsecret",
                                   .region = "us-west-2" };
  CU_ASSERT_EQUAL_FATAL (resolve (&cfg, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDCFG");
  CU_ASSERT_STRING_EQUAL (r.secret_access_key, "cfgsecret");
  CU_ASSERT_PTR_NULL (r.session_token); /* not mixed with the env's */
  CU_ASSERT_STRING_EQUAL (r.region, "us-west-2");
  CU_ASSERT_STRING_EQUAL (r.cred_source, "config");
  Pallet_aws_resolved_free (&r);

  struct Pallet_aws_config none = { 0 };
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDENV");
  CU_ASSERT_STRING_EQUAL (r.session_token, "envtoken");
  CU_ASSERT_STRING_EQUAL (r.region, "eu-west-1");
  CU_ASSERT_STRING_EQUAL (r.cred_source, "env");
  Pallet_aws_resolved_free (&r);

  /* Only one half: an error naming both fields, never the secret. */
  struct Pallet_aws_config half = { .secret_access_key = "onlysecret" };
  CU_ASSERT_EQUAL (resolve (&half, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "accessKeyId"));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "secretAccessKey"));
  CU_ASSERT_PTR_NULL (strstr (err, "onlysecret"));
  free (err);
  unsetenv ("AWS_SECRET_ACCESS_KEY");
  CU_ASSERT_EQUAL (resolve (&none, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "AWS_SECRET_ACCESS_KEY"));
  free (err);

  /* Forklift Secret field names. */
  json_t *secret = json_pack ("{s:s,s:s,s:s,s:s}", "accessKeyId", "AKIDSEC", "secretAccessKey",
                              "s3cr3t", "sessionToken", "tok", "region", "ap-south-1");
  struct Pallet_aws_config fc = { 0 };
  Pallet_aws_config_from_secret (&fc, secret);
  CU_ASSERT_EQUAL_FATAL (resolve (&fc, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDSEC");
  CU_ASSERT_STRING_EQUAL (r.session_token, "tok");
  CU_ASSERT_STRING_EQUAL (r.region, "ap-south-1");
  Pallet_aws_resolved_free (&r);
  json_decref (secret);
}

static void
test_profiles (void)
{
  struct Pallet_aws_resolved r;
  char *err;
  struct Pallet_aws_config none = { 0 };
  reset ();
  write_file (".aws/credentials", "# comment\n"
                                  "[default]\n"
                                  "aws_access_key_id = AKIDDEFAULT\n"
                                  "aws_secret_access_key=defaultsecret\n"
                                  "\n"
                                  "[other]\n"
                                  "  ; indented comment\n"
                                  "aws_access_key_id = AKIDOTHER\n"
                                  "aws_secret_access_key = othersecret\n"
                                  "aws_session_token = othertoken\n"
                                  "s3 =\n"
                                  "  max_concurrent_requests = 20\n");
  write_file (".aws/config", "[default]\n"
                             "region = us-east-2\n"
                             "[profile   other]\n"
                             "region = ca-central-1\n"
                             "region = eu-north-1\n"
                             "[profile cfgonly]\n"
                             "aws_access_key_id = AKIDCFGONLY\n"
                             "aws_secret_access_key = cfgonlysecret\n"
                             "region = sa-east-1\n");
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDDEFAULT");
  CU_ASSERT_STRING_EQUAL (r.secret_access_key, "defaultsecret");
  CU_ASSERT_STRING_EQUAL (r.region, "us-east-2");
  CU_ASSERT_STRING_EQUAL (r.cred_source, "profile:default");
  Pallet_aws_resolved_free (&r);

  setenv ("AWS_PROFILE", "other", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDOTHER");
  CU_ASSERT_STRING_EQUAL (r.session_token, "othertoken");
  CU_ASSERT_STRING_EQUAL (r.region, "eu-north-1"); /* the last one wins */
  Pallet_aws_resolved_free (&r);

  /* Region order: config, AWS_REGION, AWS_DEFAULT_REGION, profile. */
  setenv ("AWS_DEFAULT_REGION", "ap-east-1", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.region, "ap-east-1");
  Pallet_aws_resolved_free (&r);
  setenv ("AWS_REGION", "me-south-1", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.region, "me-south-1");
  Pallet_aws_resolved_free (&r);
  unsetenv ("AWS_REGION");
  unsetenv ("AWS_DEFAULT_REGION");

  /* The profile named in the config wins over AWS_PROFILE. */
  struct Pallet_aws_config p = { .profile = "cfgonly" };
  CU_ASSERT_EQUAL_FATAL (resolve (&p, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDCFGONLY");
  CU_ASSERT_STRING_EQUAL (r.region, "sa-east-1");
  CU_ASSERT_STRING_EQUAL (r.cred_source, "profile:cfgonly");
  Pallet_aws_resolved_free (&r);

  /* AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE move the files. */
  write_file ("alt-creds", "[other]\naws_access_key_id=AKIDALT\naws_secret_access_key=alt\n");
  write_file ("alt-config", "[profile other]\nregion=af-south-1\n");
  char path[512];
  snprintf (path, sizeof path, "%s/alt-creds", home);
  setenv ("AWS_SHARED_CREDENTIALS_FILE", path, 1);
  snprintf (path, sizeof path, "%s/alt-config", home);
  setenv ("AWS_CONFIG_FILE", path, 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.access_key_id, "AKIDALT");
  CU_ASSERT_STRING_EQUAL (r.region, "af-south-1");
  Pallet_aws_resolved_free (&r);

  /* Missing profile and missing credentials: errors that say what to do. */
  setenv ("AWS_PROFILE", "nosuch", 1);
  CU_ASSERT_EQUAL (resolve (&none, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "\"nosuch\""));
  free (err);
  reset ();
  CU_ASSERT_EQUAL (resolve (&none, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "no AWS credentials"));
  if (err && !strstr (err, "no AWS credentials"))
    fprintf (stderr, "got: %s\n", err);
  free (err);
  /* Credentials but no region anywhere. */
  setenv ("AWS_ACCESS_KEY_ID", "A", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "B", 1);
  CU_ASSERT_EQUAL (resolve (&none, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "no AWS region"));
  free (err);
  struct Pallet_aws_config badr = { .region = "us-east-1/../x" };
  CU_ASSERT_EQUAL (resolve (&badr, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "not a region name"));
  free (err);
}

static void
test_endpoints (void)
{
  struct Pallet_aws_resolved r;
  char *err;
  reset ();
  setenv ("AWS_ACCESS_KEY_ID", "A", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "B", 1);
  struct Pallet_aws_config cfg = { .region = "us-east-1" };
  CU_ASSERT_EQUAL_FATAL (resolve (&cfg, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "https://ec2.us-east-1.amazonaws.com");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EBS], "https://ebs.us-east-1.amazonaws.com");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_STS], "https://sts.us-east-1.amazonaws.com");
  Pallet_aws_resolved_free (&r);
  cfg.region = "cn-north-1";
  CU_ASSERT_EQUAL_FATAL (resolve (&cfg, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "https://ec2.cn-north-1.amazonaws.com.cn");
  Pallet_aws_resolved_free (&r);

  setenv ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/", 1);
  setenv ("AWS_ENDPOINT_URL_EBS", "http://127.0.0.1:9001", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&cfg, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "http://127.0.0.1:9000");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_STS], "http://127.0.0.1:9000");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EBS], "http://127.0.0.1:9001");
  Pallet_aws_resolved_free (&r);

  /* The config beats the environment; its per-service one beats its own
   * general one. */
  cfg.endpoint_url = "https://all.example";
  cfg.sts_endpoint = "https://sts.example";
  CU_ASSERT_EQUAL_FATAL (resolve (&cfg, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "https://all.example");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EBS], "https://all.example");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_STS], "https://sts.example");
  Pallet_aws_resolved_free (&r);

  cfg.ec2_endpoint = "ftp://x";
  CU_ASSERT_EQUAL (resolve (&cfg, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, "https://"));
  free (err);

  /* Through the client: getters, never the secret. */
  unsetenv ("AWS_ENDPOINT_URL");
  unsetenv ("AWS_ENDPOINT_URL_EBS");
  setenv ("AWS_MAX_ATTEMPTS", "7", 1);
  struct Pallet_aws_config cc = { .region = "eu-central-1",
                                  .access_key_id = "AKIDCLIENT",
                                  .secret_access_key = "clientsecret" };
  struct Pallet_aws_client *c = Pallet_aws_client_new (&cc, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (c);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_region (c), "eu-central-1");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_access_key_id (c), "AKIDCLIENT");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_credentials_source (c), "config");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_endpoint (c, PALLET_AWS_EBS),
                          "https://ebs.eu-central-1.amazonaws.com");
  CU_ASSERT_EQUAL (c->max_attempts, 7);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_errmsg (c), "no error");
  Pallet_aws_client_free (c);
  unsetenv ("AWS_MAX_ATTEMPTS");
  c = Pallet_aws_client_new (&cc, &err);
  CU_ASSERT_EQUAL (c->max_attempts, PALLET_AWS_DEFAULT_MAX_ATTEMPTS);
  Pallet_aws_client_free (c);
  struct Pallet_aws_config nocred = { .region = "x" };
  unsetenv ("AWS_ACCESS_KEY_ID");
  CU_ASSERT_PTR_NULL (Pallet_aws_client_new (&nocred, &err));
  CU_ASSERT_PTR_NOT_NULL (err);
  free (err);
}

static void
test_ini (void)
{
  reset ();
  write_file ("t.ini", "[a]\nk=1\n[ b ]\nk = two words \n[a]\nj=3\n[profile c]\nk=4\n");
  char path[512];
  snprintf (path, sizeof path, "%s/t.ini", home);
  bool found;
  char *v = Pallet_aws_ini_get (path, "a", "k", &found);
  CU_ASSERT_TRUE (found);
  CU_ASSERT_STRING_EQUAL (v, "1");
  free (v);
  v = Pallet_aws_ini_get (path, "a", "j", NULL); /* a section split in two */
  CU_ASSERT_STRING_EQUAL (v, "3");
  free (v);
  v = Pallet_aws_ini_get (path, "b", "k", NULL);
  CU_ASSERT_STRING_EQUAL (v, "two words");
  free (v);
  v = Pallet_aws_ini_get (path, "profile c", "k", NULL);
  CU_ASSERT_STRING_EQUAL (v, "4");
  free (v);
  CU_ASSERT_PTR_NULL (Pallet_aws_ini_get (path, "c", "k", &found));
  CU_ASSERT_FALSE (found);
  CU_ASSERT_PTR_NULL (Pallet_aws_ini_get (path, "a", "missing", NULL));
  CU_ASSERT_PTR_NULL (Pallet_aws_ini_get ("/nonexistent/file", "a", "k", NULL));
  CU_ASSERT_PTR_NULL (Pallet_aws_ini_get (NULL, "a", "k", NULL));
}

/* Profile endpoint_url and services sections, FIPS / dual-stack host
 * names, AWS_CA_BUNDLE / ca_bundle. */
static void
test_profile_endpoints (void)
{
  struct Pallet_aws_resolved r;
  char *err;
  reset ();
  setenv ("AWS_ACCESS_KEY_ID", "A", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "B", 1);
  write_file (".aws/config", "[default]\nregion = us-east-1\nservices = local\n"
                             "endpoint_url = http://127.0.0.1:7000\nca_bundle = /etc/prof-ca.pem\n"
                             "[services local]\nec2 =\n  endpoint_url = http://127.0.0.1:7001\n"
                             "ebs =\n  endpoint_url = http://127.0.0.1:7002\n"
                             "[profile fips]\nregion = us-west-2\nuse_fips_endpoint = true\n"
                             "[profile both]\nregion = us-west-2\nuse_fips_endpoint = true\n"
                             "use_dualstack_endpoint = true\n"
                             "[profile bad]\nregion = us-west-2\nuse_fips_endpoint = yes\n");
  struct Pallet_aws_config none = { 0 };
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "http://127.0.0.1:7001");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EBS], "http://127.0.0.1:7002");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_STS], "http://127.0.0.1:7000");
  CU_ASSERT_STRING_EQUAL (r.ca_bundle, "/etc/prof-ca.pem");
  Pallet_aws_resolved_free (&r);
  /* The environment beats the profile; AWS_CA_BUNDLE beats ca_bundle. */
  setenv ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:7100", 1);
  setenv ("AWS_CA_BUNDLE", "/etc/env-ca.pem", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "http://127.0.0.1:7100");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EBS], "http://127.0.0.1:7002");
  CU_ASSERT_STRING_EQUAL (r.ca_bundle, "/etc/env-ca.pem");
  Pallet_aws_resolved_free (&r);
  setenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "https://ec2.us-east-1.amazonaws.com");
  Pallet_aws_resolved_free (&r);
  unsetenv ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  unsetenv ("AWS_ENDPOINT_URL_EC2");

  setenv ("AWS_PROFILE", "fips", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "https://ec2-fips.us-west-2.amazonaws.com");
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_STS], "https://sts-fips.us-west-2.amazonaws.com");
  Pallet_aws_resolved_free (&r);
  setenv ("AWS_PROFILE", "both", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EBS], "https://ebs-fips.us-west-2.api.aws");
  Pallet_aws_resolved_free (&r);
  setenv ("AWS_USE_FIPS_ENDPOINT", "false", 1); /* env beats the profile */
  CU_ASSERT_EQUAL_FATAL (resolve (&none, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_KMS], "https://kms.us-west-2.api.aws");
  Pallet_aws_resolved_free (&r);
  unsetenv ("AWS_USE_FIPS_ENDPOINT");
  setenv ("AWS_PROFILE", "bad", 1);
  CU_ASSERT_EQUAL (resolve (&none, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (
      err && strstr (err, "use_fips_endpoint is \"yes\"; it must be true or false"));
  free (err);
  /* An explicit endpoint wins over the flags. */
  struct Pallet_aws_config ep = { .endpoint_url = "https://vpce.example" };
  setenv ("AWS_PROFILE", "fips", 1);
  CU_ASSERT_EQUAL_FATAL (resolve (&ep, &r, &err), 0);
  CU_ASSERT_STRING_EQUAL (r.endpoint[PALLET_AWS_EC2], "https://vpce.example");
  Pallet_aws_resolved_free (&r);
}

/* The strict reader: what it refuses, with file and line. */
static void
test_ini_strict (void)
{
  static const struct {
    const char *text, *why;
  } bad[] = {
    { "[a]\nk=1\nnoequals\n", "line 3: not \"key = value\"" },
    { "k = 1\n", "line 1: a setting before the first [section]" },
    { "[a\nk=1\n", "line 1: a section header needs a closing" },
    { "[a]\nk = v\n  sub = x\n", "line 3: an indented setting" },
    { "[a]\n= v\n", "line 2: a setting with no name" },
  };
  char path[512];
  snprintf (path, sizeof path, "%s/s.ini", home);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file ("s.ini", bad[i].text);
    struct Pallet_aws_ini *ini = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL (Pallet_aws_ini_load (path, &ini, &err), -1);
    CU_ASSERT_PTR_NOT_NULL (err && strstr (err, bad[i].why) && strstr (err, path));
    if (!err || !strstr (err, bad[i].why))
      fprintf (stderr, "  got \"%s\", want \"%s\"\n", err ? err : "(none)", bad[i].why);
    free (err);
    Pallet_aws_ini_free (ini);
  }
  /* A 1,500-byte session token (Debian's libinih stops at 200), an inline
   * " ; x" kept as botocore keeps it, a BOM, sub-keys. */
  char big[1700];
  memset (big, 'T', 1500);
  big[1500] = '\0';
  char text[2000];
  snprintf (text, sizeof text, "\xef\xbb\xbf[a]\ntok = %s\nr = us-east-1 ; c\ns3 =\n  x = 1\n",
            big);
  write_file ("s.ini", text);
  struct Pallet_aws_ini *ini = NULL;
  CU_ASSERT_EQUAL_FATAL (Pallet_aws_ini_load (path, &ini, NULL), 0);
  CU_ASSERT_EQUAL (strlen (Pallet_aws_ini_value (ini, "a", "tok")), 1500);
  CU_ASSERT_STRING_EQUAL (Pallet_aws_ini_value (ini, "a", "r"), "us-east-1 ; c");
  CU_ASSERT_STRING_EQUAL (Pallet_aws_ini_sub (ini, "a", "s3", "x"), "1");
  CU_ASSERT_PTR_NULL (Pallet_aws_ini_value (ini, "a", "s3"));
  Pallet_aws_ini_free (ini);
  /* A broken config file fails resolution, naming it. */
  reset ();
  setenv ("AWS_ACCESS_KEY_ID", "A", 1);
  setenv ("AWS_SECRET_ACCESS_KEY", "B", 1);
  setenv ("AWS_REGION", "us-east-1", 1);
  write_file (".aws/config", "[default]\nregion\n");
  struct Pallet_aws_resolved r;
  char *err;
  struct Pallet_aws_config none = { 0 };
  CU_ASSERT_EQUAL (resolve (&none, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL (err && strstr (err, ".aws/config, line 2"));
  free (err);
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
main (void)
{
  snprintf (home, sizeof home, "/tmp/pallet-aws-creds-XXXXXX");
  if (!mkdtemp (home))
    return 2;
  char aws[300];
  snprintf (aws, sizeof aws, "%s/.aws", home);
  mkdir (aws, 0700);
  CU_initialize_registry ();
  CU_pSuite s = CU_add_suite ("creds", NULL, NULL);
  CU_add_test (s, "explicit config and environment", test_explicit_and_env);
  CU_add_test (s, "shared files and profiles", test_profiles);
  CU_add_test (s, "endpoints", test_endpoints);
  CU_add_test (s, "INI reader", test_ini);
  CU_add_test (s, "profile endpoints, FIPS, dual-stack, CA bundle", test_profile_endpoints);
  CU_add_test (s, "strict INI reader", test_ini_strict);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  unsigned fails = CU_get_number_of_failures ();
  CU_cleanup_registry ();
  nftw (home, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  return fails ? 1 : 0;
}
