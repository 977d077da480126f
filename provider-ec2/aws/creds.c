/* SPDX-License-Identifier: Apache-2.0 */
/* Credentials, region and endpoint resolution, as the AWS CLI/SDKs do it.
 * The explicit keys (the provider Secret) and the environment come first;
 * the rest of the chain (web identity, profile, container, IMDS) is in
 * credsrc.c.  When no source has credentials the error lists each one in
 * order and why it was skipped. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "aws-internal.h"

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

static void
set_err (char **errmsg, const char *fmt, const char *a, const char *b)
{
  if (!errmsg)
    return;
  free (*errmsg);
  size_t l = strlen (fmt) + (a ? strlen (a) : 0) + (b ? strlen (b) : 0) + 1;
  *errmsg = malloc (l);
  if (*errmsg)
    snprintf (*errmsg, l, fmt, a ? a : "", b ? b : "");
}

static const char *const svc_upper[PALLET_AWS_NSERVICES] = { "EC2", "STS", "EBS", "KMS" };
static const char *const svc_lower[PALLET_AWS_NSERVICES] = { "ec2", "sts", "ebs", "kms" };

/* The profile's view of the config file. */
struct profile_files {
  const char *profile;
  bool explicit_profile;
  struct Pallet_aws_ini *conf;
  char conf_section[300];
};

static const char *
conf_value (const struct profile_files *pf, const char *key)
{
  const char *v = Pallet_aws_ini_value (pf->conf, pf->conf_section, key);
  if (!v && strcmp (pf->profile, "default") == 0)
    v = Pallet_aws_ini_value (pf->conf, "profile default", key);
  return v;
}

/* true/false settings (AWS_USE_FIPS_ENDPOINT or use_fips_endpoint...). */
static int
flag (const struct profile_files *pf, const char *envname, const char *key, bool *out,
      char **errmsg)
{
  const char *v = env (envname);
  const char *where = envname;
  if (!v) {
    v = conf_value (pf, key);
    where = key;
  }
  *out = false;
  if (!v)
    return 0;
  if (strcasecmp (v, "true") == 0)
    *out = true;
  else if (strcasecmp (v, "false") != 0) {
    Pallet_aws_strf (errmsg, "%s is \"%s\"; it must be true or false", where, v);
    return -1;
  }
  return 0;
}

/* Configured endpoints, as the SDKs order them: AWS_ENDPOINT_URL_<SVC>,
 * AWS_ENDPOINT_URL, the profile's services section, the profile's
 * endpoint_url; none if AWS_IGNORE_CONFIGURED_ENDPOINT_URLS. */
static const char *
configured_endpoint (const struct profile_files *pf, int svc)
{
  char envname[64];
  const char *ign = env ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  if (!ign)
    ign = conf_value (pf, "ignore_configured_endpoint_urls");
  if (ign && strcasecmp (ign, "true") == 0)
    return NULL;
  snprintf (envname, sizeof envname, "AWS_ENDPOINT_URL_%s", svc_upper[svc]);
  if (env (envname))
    return env (envname);
  if (env ("AWS_ENDPOINT_URL"))
    return env ("AWS_ENDPOINT_URL");
  const char *services = conf_value (pf, "services");
  if (services) {
    char sec[300];
    snprintf (sec, sizeof sec, "services %s", services);
    const char *v = Pallet_aws_ini_sub (pf->conf, sec, svc_lower[svc], "endpoint_url");
    if (v && *v)
      return v;
  }
  return conf_value (pf, "endpoint_url");
}

static char *
resolve_endpoint (const struct Pallet_aws_config *cfg, const struct profile_files *pf, int svc,
                  const char *region, bool fips, bool dualstack)
{
  const char *own[PALLET_AWS_NSERVICES] = { cfg->ec2_endpoint, cfg->sts_endpoint, cfg->ebs_endpoint,
                                            cfg->kms_endpoint };
  const char *e = own[svc] && *own[svc]                     ? own[svc]
                  : cfg->endpoint_url && *cfg->endpoint_url ? cfg->endpoint_url
                                                            : configured_endpoint (pf, svc);
  char *s = NULL;
  if (e) {
    s = strdup (e);
    if (s) { /* "https://host/" -> "https://host" */
      size_t l = strlen (s);
      while (l > 0 && s[l - 1] == '/')
        s[--l] = '\0';
    }
    return s;
  }
  /* The partition's endpoint variants (botocore endpoints.json). */
  bool cn = strncmp (region, "cn-", 3) == 0;
  const char *suffix = dualstack ? (cn ? "api.amazonwebservices.com.cn" : "api.aws")
                                 : (cn ? "amazonaws.com.cn" : "amazonaws.com");
  Pallet_aws_strf (&s, "https://%s%s.%s.%s", svc_lower[svc], fips ? "-fips" : "", region, suffix);
  return s;
}

/* The keys: the configuration, else the environment, else the chain. */
static int
resolve_creds (const struct Pallet_aws_config *cfg, const struct Pallet_aws_chain_spec *spec,
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
    return r->access_key_id && r->secret_access_key && r->cred_source ? 0 : -2;
  }
  /* 2. environment */
  if (env ("AWS_ACCESS_KEY_ID") || env ("AWS_SECRET_ACCESS_KEY")) {
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
    return r->access_key_id && r->secret_access_key && r->cred_source ? 0 : -2;
  }
  /* 3.. web identity, profile, container, instance metadata */
  struct Pallet_aws_buf tried = { 0 };
  Pallet_aws_buf_puts (&tried, "provider Secret: no accessKeyId/secretAccessKey; environment: "
                               "AWS_ACCESS_KEY_ID not set");
  struct Pallet_aws_creds k;
  int rc = Pallet_aws_creds_chain (spec, &k, &tried, errmsg);
  if (rc == 1)
    Pallet_aws_strf (errmsg,
                     "no AWS credentials found; tried in order: %s.  Set accessKeyId and "
                     "secretAccessKey in the provider Secret, or AWS_ACCESS_KEY_ID/"
                     "AWS_SECRET_ACCESS_KEY, or configure one of these sources",
                     Pallet_aws_buf_str (&tried) ? tried.data : "");
  Pallet_aws_buf_free (&tried);
  if (rc != 0)
    return rc == 1 ? -1 : rc;
  r->access_key_id = k.access_key_id;
  r->secret_access_key = k.secret_access_key;
  r->session_token = k.session_token;
  r->cred_source = k.source;
  r->expiration = k.expiration;
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
    r->region = dup_or_null (conf_value (pf, "region"));
  if (!r->region || !*r->region) {
    const char *f = Pallet_aws_ini_file (pf->conf);
    set_err (errmsg,
             "no AWS region: set region in the provider Secret, or AWS_REGION, or "
             "region in profile \"%s\" of %s",
             pf->profile, f ? f : "~/.aws/config");
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
resolve_endpoints (const struct Pallet_aws_config *cfg, const struct profile_files *pf,
                   struct Pallet_aws_resolved *r, char **errmsg)
{
  bool fips, dualstack;
  if (flag (pf, "AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint", &fips, errmsg) < 0
      || flag (pf, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint", &dualstack, errmsg) < 0)
    return -1;
  for (int s = 0; s < PALLET_AWS_NSERVICES; s++) {
    r->endpoint[s] = resolve_endpoint (cfg, pf, s, r->region, fips, dualstack);
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

static void
spec_free (struct Pallet_aws_chain_spec *s)
{
  if (!s)
    return;
  free (s->profile);
  free (s->region);
  free (s->sts_endpoint);
  free (s->ca_bundle);
  free (s);
}

/* What the chain needs, kept for refreshes. */
static struct Pallet_aws_chain_spec *
make_spec (const struct Pallet_aws_config *cfg, const struct profile_files *pf,
           const struct Pallet_aws_resolved *r)
{
  struct Pallet_aws_chain_spec *s = calloc (1, sizeof *s);
  if (!s)
    return NULL;
  s->profile = strdup (pf->profile);
  s->profile_explicit = pf->explicit_profile;
  s->region = dup_or_null (r->region);
  s->sts_endpoint = dup_or_null (r->endpoint[PALLET_AWS_STS]);
  s->ca_bundle = dup_or_null (cfg->ca_bundle && *cfg->ca_bundle ? cfg->ca_bundle : r->ca_bundle);
  s->insecure = cfg->insecure;
  if (!s->profile || (r->region && !s->region)) {
    spec_free (s);
    return NULL;
  }
  return s;
}

static int
load_config (const struct Pallet_aws_config *cfg, struct profile_files *pf, char **errmsg)
{
  const char *ep = env ("AWS_PROFILE");
  pf->profile = cfg->profile && *cfg->profile ? cfg->profile : ep ? ep : "default";
  pf->explicit_profile = (cfg->profile && *cfg->profile) || ep;
  if (strcmp (pf->profile, "default") == 0)
    snprintf (pf->conf_section, sizeof pf->conf_section, "default");
  else
    snprintf (pf->conf_section, sizeof pf->conf_section, "profile %s", pf->profile);
  char *file = NULL;
  if (env ("AWS_CONFIG_FILE"))
    file = strdup (env ("AWS_CONFIG_FILE"));
  else if (env ("HOME"))
    Pallet_aws_strf (&file, "%s/.aws/config", env ("HOME"));
  int rc = Pallet_aws_ini_load (file, &pf->conf, errmsg);
  free (file);
  return rc;
}

/* Region and endpoints first (the STS calls of the chain need them), but
 * a missing region is reported only after the credentials, as before. */
int
Pallet_aws_resolve (const struct Pallet_aws_config *cfg, struct Pallet_aws_resolved *r,
                    char **errmsg)
{
  memset (r, 0, sizeof *r);
  if (errmsg)
    *errmsg = NULL;
  struct profile_files pf = { 0 };
  char *region_err = NULL;
  int rc = load_config (cfg, &pf, errmsg);
  int region_rc = rc == 0 ? resolve_region (cfg, &pf, r, &region_err) : 0;
  if (rc == 0 && region_rc == 0)
    rc = resolve_endpoints (cfg, &pf, r, errmsg);
  /* The config's CA (file or PEM, the Secret's ca.crt) beats AWS_CA_BUNDLE. */
  if (rc == 0 && !(cfg->ca_bundle && *cfg->ca_bundle) && !(cfg->ca_pem && *cfg->ca_pem)) {
    const char *ca = env ("AWS_CA_BUNDLE") ? env ("AWS_CA_BUNDLE") : conf_value (&pf, "ca_bundle");
    if (ca && !(r->ca_bundle = strdup (ca)))
      rc = -2;
  }
  if (rc == 0 && !(r->spec = make_spec (cfg, &pf, r)))
    rc = -2;
  if (rc == 0)
    rc = resolve_creds (cfg, r->spec, r, errmsg);
  if (rc == 0 && region_rc != 0) {
    rc = region_rc;
    if (errmsg) {
      free (*errmsg);
      *errmsg = region_err;
      region_err = NULL;
    }
  }
  free (region_err);
  if (rc == 0 && !r->expiration) { /* static keys: nothing to refresh */
    spec_free (r->spec);
    r->spec = NULL;
  }
  if (rc == -2)
    set_err (errmsg, "out of memory resolving AWS credentials%s%s", NULL, NULL);
  Pallet_aws_ini_free (pf.conf);
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
  free (r->ca_bundle);
  spec_free (r->spec);
  memset (r, 0, sizeof *r);
}

#define REFRESH_WINDOW_S (15 * 60)

int
Pallet_aws_creds_refresh (struct Pallet_aws_client *c)
{
  struct Pallet_aws_resolved *r = &c->r;
  time_t now = time (NULL);
  if (!r->spec || !r->expiration || now < r->expiration - REFRESH_WINDOW_S)
    return 0;
  struct Pallet_aws_creds k;
  struct Pallet_aws_buf tried = { 0 };
  char *err = NULL;
  int rc = Pallet_aws_creds_chain (r->spec, &k, &tried, &err);
  Pallet_aws_buf_free (&tried);
  if (rc == 0) {
    free (r->access_key_id);
    free_secret (&r->secret_access_key);
    free_secret (&r->session_token);
    free (r->cred_source);
    r->access_key_id = k.access_key_id;
    r->secret_access_key = k.secret_access_key;
    r->session_token = k.session_token;
    r->cred_source = k.source;
    r->expiration = k.expiration;
    /* The old secret's signing key goes with it, now. */
    Pallet_aws_sigv4_key_free (c->key_cache);
    c->key_cache = NULL;
    Pallet_aws_log (c, PALLET_LOG_DEBUG, "AWS credentials refreshed from %s (access key id %s)",
                    r->cred_source, r->access_key_id);
    return 0;
  }
  const char *why = rc == 1 ? "no credential source is configured any more"
                    : err   ? err
                            : "out of memory";
  if (now < r->expiration) {
    Pallet_aws_log (c, PALLET_LOG_WARNING,
                    "AWS credentials from %s expire in %lld s and could not be refreshed: %s",
                    r->cred_source, (long long) (r->expiration - now), why);
    free (err);
    return 0;
  }
  Pallet_aws_set_error (
      c, PALLET_E_AUTH, 0, 0, PALLET_AWS_STS, "RefreshCredentials", "ExpiredToken", why, NULL,
      "AWS credentials from %s have expired and could not be refreshed: %s", r->cred_source, why);
  free (err);
  return -1;
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
