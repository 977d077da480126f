/* SPDX-License-Identifier: Apache-2.0 */
/* Credentials, region and endpoint resolution, as the AWS CLI/SDKs do it
 * (minus IMDS, SSO and credential_process, which a migration tool does
 * not need).  The shared files are INI; the reader here is deliberately
 * tiny: [section], key = value, '#'/';' comment lines. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "aws-internal.h"

static char *
trim (char *s)
{
  while (isspace ((unsigned char) *s))
    s++;
  size_t l = strlen (s);
  while (l > 0 && isspace ((unsigned char) s[l - 1]))
    s[--l] = '\0';
  return s;
}

char *
Pallet_aws_ini_get (const char *file, const char *section, const char *key, bool *found_section)
{
  if (found_section)
    *found_section = false;
  if (!file)
    return NULL;
  FILE *f = fopen (file, "r");
  if (!f)
    return NULL;
  char *line = NULL, *result = NULL;
  size_t cap = 0;
  bool in_section = false;
  while (getline (&line, &cap, f) >= 0) {
    char *s = trim (line);
    if (*s == '#' || *s == ';' || *s == '\0')
      continue;
    if (*s == '[') {
      char *e = strrchr (s, ']');
      if (!e)
        continue;
      *e = '\0';
      /* "[profile  x]" and "[ x ]" are both spelt with free spaces. */
      char *name = trim (s + 1);
      char norm[256];
      if (strncmp (name, "profile", 7) == 0 && isspace ((unsigned char) name[7]))
        snprintf (norm, sizeof norm, "profile %s", trim (name + 8));
      else
        snprintf (norm, sizeof norm, "%s", name);
      in_section = strcmp (norm, section) == 0;
      if (in_section && found_section)
        *found_section = true;
      continue;
    }
    if (!in_section || isspace ((unsigned char) line[0]))
      continue; /* nested sub-properties are not needed */
    char *eq = strchr (s, '=');
    if (!eq)
      continue;
    *eq = '\0';
    if (strcmp (trim (s), key) == 0) { /* the last one wins, as in botocore */
      free (result);
      result = strdup (trim (eq + 1));
    }
  }
  if (line)
    OPENSSL_cleanse (line, cap);
  free (line);
  fclose (f);
  return result;
}

static const char *
env (const char *name)
{
  const char *v = getenv (name);
  return v && *v ? v : NULL;
}

static char *
dup_or_null (const char *s)
{
  return s && *s ? strdup (s) : NULL;
}

static char *
home_file (const char *envname, const char *rel)
{
  const char *p = env (envname);
  if (p)
    return strdup (p);
  const char *home = env ("HOME");
  if (!home)
    return NULL;
  size_t l = strlen (home) + strlen (rel) + 2;
  char *s = malloc (l);
  if (s)
    snprintf (s, l, "%s/%s", home, rel);
  return s;
}

static void
set_err (char **errmsg, const char *fmt, const char *a, const char *b)
{
  if (!errmsg)
    return;
  size_t l = strlen (fmt) + (a ? strlen (a) : 0) + (b ? strlen (b) : 0) + 1;
  *errmsg = malloc (l);
  if (*errmsg)
    snprintf (*errmsg, l, fmt, a ? a : "", b ? b : "");
}

static const char *const svc_upper[PALLET_AWS_NSERVICES] = { "EC2", "STS", "EBS", "KMS" };
static const char *const svc_lower[PALLET_AWS_NSERVICES] = { "ec2", "sts", "ebs", "kms" };

static char *
resolve_endpoint (const struct Pallet_aws_config *cfg, int svc, const char *region)
{
  const char *own[PALLET_AWS_NSERVICES] = { cfg->ec2_endpoint, cfg->sts_endpoint, cfg->ebs_endpoint,
                                            cfg->kms_endpoint };
  char envname[64];
  snprintf (envname, sizeof envname, "AWS_ENDPOINT_URL_%s", svc_upper[svc]);
  const char *e = own[svc] && *own[svc]                     ? own[svc]
                  : cfg->endpoint_url && *cfg->endpoint_url ? cfg->endpoint_url
                  : env (envname)                           ? env (envname)
                                                            : env ("AWS_ENDPOINT_URL");
  char *s;
  if (e) {
    s = strdup (e);
    if (s) { /* "https://host/" -> "https://host" */
      size_t l = strlen (s);
      while (l > 0 && s[l - 1] == '/')
        s[--l] = '\0';
    }
    return s;
  }
  const char *suffix = strncmp (region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
  size_t l = strlen (region) + strlen (suffix) + 32;
  s = malloc (l);
  if (s)
    snprintf (s, l, "https://%s.%s.%s", svc_lower[svc], region, suffix);
  return s;
}

/* The files and sections a profile is looked up in. */
struct profile_files {
  const char *profile;
  char *cred_file, *conf_file;
  char conf_section[300];
};

/* 3. shared credentials file, then the config file */
static int
creds_from_files (const struct profile_files *pf, struct Pallet_aws_resolved *r, char **errmsg)
{
  const char *profile = pf->profile;
  const char *files[2] = { pf->cred_file, pf->conf_file };
  const char *sections[2] = { profile, pf->conf_section };
  bool any_section = false;
  for (int i = 0; i < 2 && !r->access_key_id; i++) {
    bool found = false;
    char *k = Pallet_aws_ini_get (files[i], sections[i], "aws_access_key_id", &found);
    any_section |= found;
    if (!k)
      continue;
    char *s = Pallet_aws_ini_get (files[i], sections[i], "aws_secret_access_key", NULL);
    if (!s) {
      set_err (errmsg,
               "AWS credentials: profile \"%s\" in %s has aws_access_key_id but "
               "no aws_secret_access_key; add it",
               profile, files[i]);
      free (k);
      return -1;
    }
    r->access_key_id = k;
    r->secret_access_key = s;
    r->session_token = Pallet_aws_ini_get (files[i], sections[i], "aws_session_token", NULL);
    size_t l = strlen (profile) + 16;
    r->cred_source = malloc (l);
    if (r->cred_source)
      snprintf (r->cred_source, l, "profile:%s", profile);
  }
  if (!r->access_key_id) {
    const char *cred_file = pf->cred_file;
    if (!any_section && strcmp (profile, "default") != 0)
      set_err (errmsg,
               "AWS credentials: profile \"%s\" not found in %s or the AWS config "
               "file; fix AWS_PROFILE or add the profile",
               profile, cred_file ? cred_file : "~/.aws/credentials");
    else
      set_err (errmsg,
               "no AWS credentials found: set accessKeyId and secretAccessKey in "
               "the provider Secret, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or "
               "profile \"%s\" in %s",
               profile, cred_file ? cred_file : "~/.aws/credentials");
    return -1;
  }
  return 0;
}

/* The keys: the configuration, else the environment, else the profile. */
static int
resolve_creds (const struct Pallet_aws_config *cfg, const struct profile_files *pf,
               struct Pallet_aws_resolved *r, char **errmsg)
{
  bool have_cfg_key = cfg->access_key_id && *cfg->access_key_id;
  bool have_cfg_secret = cfg->secret_access_key && *cfg->secret_access_key;

  /* 1. explicit configuration (the Forklift Secret) */
  if (have_cfg_key != have_cfg_secret) {
    set_err (errmsg,
             "AWS credentials: only one of accessKeyId and secretAccessKey is set; "
             "provide both in the provider Secret, or neither to use the environment%s%s",
             NULL, NULL);
    return -1;
  }
  if (have_cfg_key) {
    r->access_key_id = strdup (cfg->access_key_id);
    r->secret_access_key = strdup (cfg->secret_access_key);
    r->session_token = dup_or_null (cfg->session_token);
    r->cred_source = strdup ("config");
  }
  /* 2. environment */
  else if (env ("AWS_ACCESS_KEY_ID") || env ("AWS_SECRET_ACCESS_KEY")) {
    if (!env ("AWS_ACCESS_KEY_ID") || !env ("AWS_SECRET_ACCESS_KEY")) {
      set_err (errmsg,
               "AWS credentials: only one of AWS_ACCESS_KEY_ID and "
               "AWS_SECRET_ACCESS_KEY is set in the environment; set both or unset both%s%s",
               NULL, NULL);
      return -1;
    }
    r->access_key_id = strdup (env ("AWS_ACCESS_KEY_ID"));
    r->secret_access_key = strdup (env ("AWS_SECRET_ACCESS_KEY"));
    r->session_token = dup_or_null (env ("AWS_SESSION_TOKEN"));
    r->cred_source = strdup ("env");
  }
  else if (creds_from_files (pf, r, errmsg) < 0)
    return -1;
  if (!r->access_key_id || !r->secret_access_key || !r->cred_source)
    return -2;
  return 0;
}

/* The region: the configuration, the environment, else the profile. */
static int
resolve_region (const struct Pallet_aws_config *cfg, const struct profile_files *pf,
                struct Pallet_aws_resolved *r, char **errmsg)
{
  if (cfg->region && *cfg->region)
    r->region = strdup (cfg->region);
  else if (env ("AWS_REGION"))
    r->region = strdup (env ("AWS_REGION"));
  else if (env ("AWS_DEFAULT_REGION"))
    r->region = strdup (env ("AWS_DEFAULT_REGION"));
  else
    r->region = Pallet_aws_ini_get (pf->conf_file, pf->conf_section, "region", NULL);
  if (!r->region || !*r->region) {
    set_err (errmsg,
             "no AWS region: set region in the provider Secret, or AWS_REGION, or "
             "region in profile \"%s\" of %s",
             pf->profile, pf->conf_file ? pf->conf_file : "~/.aws/config");
    return -1;
  }
  for (const char *p = r->region; *p; p++)
    if (!(isalnum ((unsigned char) *p) || *p == '-')) {
      set_err (errmsg,
               "AWS region \"%s\" is not a region name (like us-east-1); fix the "
               "region setting%s",
               r->region, NULL);
      return -1;
    }
  return 0;
}

static int
resolve_endpoints (const struct Pallet_aws_config *cfg, struct Pallet_aws_resolved *r,
                   char **errmsg)
{
  for (int s = 0; s < PALLET_AWS_NSERVICES; s++) {
    r->endpoint[s] = resolve_endpoint (cfg, s, r->region);
    if (!r->endpoint[s])
      return -2;
    if (strncmp (r->endpoint[s], "https://", 8) != 0
        && strncmp (r->endpoint[s], "http://", 7) != 0) {
      set_err (errmsg,
               "AWS endpoint \"%s\" must start with https:// or http://; fix the "
               "endpoint setting or AWS_ENDPOINT_URL%s",
               r->endpoint[s], NULL);
      return -1;
    }
  }
  return 0;
}

/* Helpers return 0, -1 (error set) or -2 (out of memory). */
int
Pallet_aws_resolve (const struct Pallet_aws_config *cfg, struct Pallet_aws_resolved *r,
                    char **errmsg)
{
  memset (r, 0, sizeof *r);
  if (errmsg)
    *errmsg = NULL;
  struct profile_files pf;
  pf.profile = cfg->profile && *cfg->profile ? cfg->profile
               : env ("AWS_PROFILE")         ? env ("AWS_PROFILE")
                                             : "default";
  pf.cred_file = home_file ("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
  pf.conf_file = home_file ("AWS_CONFIG_FILE", ".aws/config");
  if (strcmp (pf.profile, "default") == 0)
    snprintf (pf.conf_section, sizeof pf.conf_section, "default");
  else
    snprintf (pf.conf_section, sizeof pf.conf_section, "profile %s", pf.profile);

  int rc = resolve_creds (cfg, &pf, r, errmsg);
  if (rc == 0)
    rc = resolve_region (cfg, &pf, r, errmsg);
  if (rc == 0)
    rc = resolve_endpoints (cfg, r, errmsg);
  if (rc == -2)
    set_err (errmsg, "out of memory resolving AWS credentials%s%s", NULL, NULL);
  free (pf.cred_file);
  free (pf.conf_file);
  if (rc == 0)
    return 0;
  Pallet_aws_resolved_free (r);
  return -1;
}

static void
free_secret (char **s)
{
  if (*s) {
    OPENSSL_cleanse (*s, strlen (*s));
    free (*s);
    *s = NULL;
  }
}

void
Pallet_aws_resolved_free (struct Pallet_aws_resolved *r)
{
  free (r->access_key_id);
  free_secret (&r->secret_access_key);
  free_secret (&r->session_token);
  free (r->region);
  for (int i = 0; i < PALLET_AWS_NSERVICES; i++)
    free (r->endpoint[i]);
  free (r->cred_source);
  memset (r, 0, sizeof *r);
}

void
Pallet_aws_config_from_secret (struct Pallet_aws_config *cfg, const json_t *secret)
{
  const char *v;
  if ((v = json_string_value (json_object_get (secret, "accessKeyId"))) && *v)
    cfg->access_key_id = v;
  if ((v = json_string_value (json_object_get (secret, "secretAccessKey"))) && *v)
    cfg->secret_access_key = v;
  if ((v = json_string_value (json_object_get (secret, "sessionToken"))) && *v)
    cfg->session_token = v;
  if ((v = json_string_value (json_object_get (secret, "region"))) && *v)
    cfg->region = v;
}
