/* SPDX-License-Identifier: Apache-2.0 */
/* The credential sources after the explicit and environment keys, in the
 * order of the AWS SDK for Go v2 (config.resolveCredentialChain):
 * web identity from the environment, the shared profile (assume-role with
 * source_profile / credential_source / web_identity_token_file, static
 * keys, SSO, credential_process), the container endpoint (EKS Pod
 * Identity, ECS), then EC2 instance metadata (IMDSv2).  A source that is
 * configured and fails stops the chain with its own error, as in the
 * SDKs; a source that is not configured is skipped and said why. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "aws-internal.h"
#include "credsrc.h"

#define IMDS_DEFAULT         "http://169.254.169.254"
#define CONTAINER_HOST       "http://169.254.170.2"
#define MAX_PROFILE_DEPTH    10
#define STS_TIMEOUT_MS       30000
#define WEB_IDENTITY_TRIES   3
#define MAX_TOKEN_FILE_BYTES (64 * 1024)

struct chain {
  const struct Pallet_aws_chain_spec *spec;
  struct Pallet_aws_ini *cred, *conf;
  struct Pallet_aws_buf *tried;
  char **errmsg;
};

void
Pallet_aws_strf (char **out, const char *fmt, ...)
{
  if (!out)
    return;
  free (*out);
  *out = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (out, fmt, ap) < 0)
    *out = NULL;
  va_end (ap);
}

static const char *
env (const char *name)
{
  const char *v = getenv (name);
  return v && *v ? v : NULL;
}

static void
skipped (struct chain *ch, const char *source, const char *why)
{
  Pallet_aws_buf_printf (ch->tried, "%s%s: %s", ch->tried->len ? "; " : "", source, why);
}

static void
cleanse_str (char *s)
{
  if (s)
    OPENSSL_cleanse (s, strlen (s));
}

void
Pallet_aws_creds_free (struct Pallet_aws_creds *k)
{
  free (k->access_key_id);
  cleanse_str (k->secret_access_key);
  free (k->secret_access_key);
  cleanse_str (k->session_token);
  free (k->session_token);
  free (k->source);
  memset (k, 0, sizeof *k);
}

time_t
Pallet_aws_parse_time (const char *s)
{
  struct tm tm = { 0 };
  int n = 0;
  if (!s
      || sscanf (s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                 &tm.tm_min, &tm.tm_sec, &n)
             != 6)
    return -1;
  const char *p = s + n;
  if (*p == '.')
    for (p++; isdigit ((unsigned char) *p); p++)
      ;
  if (!(strcmp (p, "Z") == 0 || strcmp (p, "+00:00") == 0 || strcmp (p, "UTC") == 0))
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm (&tm);
}

/* Wipes the secret strings jansson holds before they are freed. */
static void
json_cleanse (json_t *j)
{
  const char *k;
  json_t *v;
  if (json_is_object (j))
    json_object_foreach (j, k, v)
      json_cleanse (v);
  else if (json_is_string (j))
    OPENSSL_cleanse ((char *) json_string_value (j), json_string_length (j));
}

static int
creds_from_obj (const json_t *o, const char *id_k, const char *secret_k, const char *token_k,
                const char *exp_k, struct Pallet_aws_creds *out, char **errmsg)
{
  const char *id = json_string_value (json_object_get (o, id_k));
  const char *sec = json_string_value (json_object_get (o, secret_k));
  const char *tok = json_string_value (json_object_get (o, token_k));
  json_t *exp = json_object_get (o, exp_k);
  if (!id || !*id || !sec || !*sec) {
    Pallet_aws_strf (errmsg, "the response has no %s or no %s", id_k, secret_k);
    return -1;
  }
  out->expiration = 0;
  if (json_is_string (exp)) {
    out->expiration = Pallet_aws_parse_time (json_string_value (exp));
    if (out->expiration < 0) {
      Pallet_aws_strf (errmsg, "%s \"%s\" is not an ISO 8601 UTC time", exp_k,
                       json_string_value (exp));
      return -1;
    }
  }
  else if (json_is_integer (exp)) /* SSO: milliseconds since the epoch */
    out->expiration = (time_t) (json_integer_value (exp) / 1000);
  else if (exp && !json_is_null (exp)) {
    Pallet_aws_strf (errmsg, "%s is not a time", exp_k);
    return -1;
  }
  if (out->expiration && out->expiration <= time (NULL)) {
    Pallet_aws_strf (errmsg, "the credentials it returned expired at %s",
                     json_string_value (exp) ? json_string_value (exp) : "(past)");
    return -1;
  }
  out->access_key_id = strdup (id);
  out->secret_access_key = strdup (sec);
  out->session_token = tok && *tok ? strdup (tok) : NULL;
  if (!out->access_key_id || !out->secret_access_key || (tok && *tok && !out->session_token))
    return -2;
  return 0;
}

int
Pallet_aws_creds_from_json (const char *text, size_t len, const char *kind,
                            struct Pallet_aws_creds *out, char **errmsg)
{
  json_error_t je;
  json_t *o = text ? json_loadb (text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
  int rc = -1;
  if (!json_is_object (o)) {
    Pallet_aws_strf (errmsg, "its output is not a JSON object (%s)", o ? "not an object" : je.text);
    goto out;
  }
  if (strcmp (kind, "process") == 0) {
    json_t *v = json_object_get (o, "Version");
    if (!json_is_integer (v) || json_integer_value (v) != 1) {
      Pallet_aws_strf (errmsg, "its JSON needs \"Version\": 1 (the only version of the "
                               "credential_process protocol)");
      goto out;
    }
    rc = creds_from_obj (o, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", out,
                         errmsg);
  }
  else {
    const char *code = json_string_value (json_object_get (o, "Code"));
    if (code && strcmp (code, "Success") != 0) {
      Pallet_aws_strf (errmsg, "it answered Code \"%s\"", code);
      goto out;
    }
    rc = creds_from_obj (o, "AccessKeyId", "SecretAccessKey", "Token", "Expiration", out, errmsg);
  }
out:
  json_cleanse (o);
  json_decref (o);
  if (rc < 0)
    Pallet_aws_creds_free (out);
  return rc;
}

/* ---- plain HTTP for the metadata, container, STS web identity and SSO calls ---- */

struct http_resp {
  struct Pallet_aws_buf body;
  long status;
  CURLcode cc;
};

static size_t
http_write (char *p, size_t size, size_t n, void *ud)
{
  struct Pallet_aws_buf *b = ud;
  if (b->len + size * n > (1u << 20))
    return 0;
  Pallet_aws_buf_add (b, p, size * n);
  return b->oom ? 0 : size * n;
}

static void
http_do (const struct chain *ch, const char *method, const char *url, struct curl_slist *hdrs,
         const char *body, long timeout_ms, struct http_resp *r)
{
  memset (r, 0, sizeof *r);
  CURL *h = curl_easy_init ();
  if (!h) {
    r->cc = CURLE_OUT_OF_MEMORY;
    return;
  }
  curl_easy_setopt (h, CURLOPT_URL, url);
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt (h, CURLOPT_NOPROXY, "*"); /* link-local and loopback services */
  if (strncmp (url, "https://", 8) == 0)
    curl_easy_setopt (h, CURLOPT_NOPROXY, "");
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
  curl_easy_setopt (h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, ch->spec->insecure ? 0L : 1L);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, ch->spec->insecure ? 0L : 2L);
  if (ch->spec->ca_bundle)
    curl_easy_setopt (h, CURLOPT_CAINFO, ch->spec->ca_bundle);
  curl_easy_setopt (h, CURLOPT_USERAGENT, "pallet-aws/0.1");
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
  }
  else if (strcmp (method, "PUT") == 0) {
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, http_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &r->body);
  r->cc = curl_easy_perform (h);
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_cleanup (h);
}

static void
http_resp_free (struct http_resp *r)
{
  if (r->body.data)
    OPENSSL_cleanse (r->body.data, r->body.cap);
  Pallet_aws_buf_free (&r->body);
}

/* Reads a small token file (web identity, container authorization). */
static char *
read_token_file (const char *path, const char *what, char **errmsg)
{
  FILE *f = fopen (path, "re");
  if (!f) {
    Pallet_aws_strf (errmsg, "cannot read %s %s: %s; check the path and the mount", what, path,
                     strerror (errno));
    return NULL;
  }
  char *buf = malloc (MAX_TOKEN_FILE_BYTES + 1);
  size_t n = buf ? fread (buf, 1, MAX_TOKEN_FILE_BYTES + 1, f) : 0;
  fclose (f);
  if (!buf || n > MAX_TOKEN_FILE_BYTES) {
    Pallet_aws_strf (errmsg, "%s %s is larger than 64 KiB; it is not a token", what, path);
    free (buf);
    return NULL;
  }
  buf[n] = '\0';
  while (n > 0 && isspace ((unsigned char) buf[n - 1]))
    buf[--n] = '\0';
  if (n == 0) {
    Pallet_aws_strf (errmsg, "%s %s is empty", what, path);
    free (buf);
    return NULL;
  }
  return buf;
}

/* ---- STS ---- */

/* Credentials of an STS <XResult><Credentials> document; -1 with the
 * AWS error code and message in *errmsg. */
static int
sts_parse (const char *action, const char *role, struct http_resp *r, struct Pallet_aws_creds *out,
           char **errmsg)
{
  const char *body = Pallet_aws_buf_str (&r->body);
  if (r->status != 200) {
    char *code = NULL, *msg = NULL, *rid = NULL;
    if (body && Pallet_aws_xml_error (body, r->body.len, &code, &msg, &rid) == 0)
      Pallet_aws_strf (errmsg, "STS %s for role %s was refused: %s: %s (request id %s)", action,
                       role, code, msg ? msg : "", rid ? rid : "");
    else
      Pallet_aws_strf (errmsg, "STS %s for role %s failed with HTTP %ld", action, role, r->status);
    free (code);
    free (msg);
    free (rid);
    return -1;
  }
  json_t *rest = NULL;
  char root[64], err[256];
  int stopped = 0;
  if (!body
      || Pallet_aws_xml_convert (body, r->body.len, NULL, NULL, NULL, &rest, root, err, sizeof err,
                                 &stopped)
             < 0) {
    Pallet_aws_strf (errmsg, "STS %s for role %s: the response is not XML", action, role);
    return -1;
  }
  char result[96];
  snprintf (result, sizeof result, "%sResult", action);
  json_t *c = json_object_get (json_object_get (rest, result), "Credentials");
  char *inner = NULL;
  int rc = creds_from_obj (c, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", out,
                           &inner);
  if (rc == -1)
    Pallet_aws_strf (errmsg, "STS %s for role %s: %s", action, role, inner);
  free (inner);
  json_cleanse (rest);
  json_decref (rest);
  return rc;
}

static char *
session_name (const char *given)
{
  char *s = NULL;
  if (given)
    return strdup (given);
  Pallet_aws_strf (&s, "pallet-%lld", (long long) time (NULL));
  return s;
}

static int
sts_post (const struct chain *ch, const char *action, struct Pallet_aws_params *p, const char *role,
          struct Pallet_aws_creds *out, char **errmsg)
{
  char *body = Pallet_aws_params_encode (p);
  if (!body)
    return -2;
  struct curl_slist *h =
      curl_slist_append (NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
  int rc = -1;
  for (int attempt = 1; attempt <= WEB_IDENTITY_TRIES; attempt++) {
    struct http_resp r;
    http_do (ch, "POST", ch->spec->sts_endpoint, h, body, STS_TIMEOUT_MS, &r);
    bool transient = r.cc != CURLE_OK || r.status >= 500
                     || (r.body.data && strstr (r.body.data, "IDPCommunicationError"));
    if (r.cc != CURLE_OK)
      Pallet_aws_strf (errmsg, "STS %s at %s: %s; check sts_endpoint and the network", action,
                       ch->spec->sts_endpoint, curl_easy_strerror (r.cc));
    else
      rc = sts_parse (action, role, &r, out, errmsg);
    http_resp_free (&r);
    if (rc != -1 || !transient)
      break;
    struct timespec ts = { 0, 200000000L * attempt };
    nanosleep (&ts, NULL);
  }
  curl_slist_free_all (h);
  OPENSSL_cleanse (body, strlen (body));
  free (body);
  return rc;
}

/* AssumeRoleWithWebIdentity is not signed: the token is the proof. */
static int
web_identity (const struct chain *ch, const char *token_file, const char *role, const char *session,
              struct Pallet_aws_creds *out, char **errmsg)
{
  char *token = read_token_file (token_file, "the web identity token file", errmsg);
  if (!token)
    return -1;
  char *name = session_name (session);
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int rc = -2;
  if (p && name && Pallet_aws_params_add (p, "Action", "AssumeRoleWithWebIdentity") == 0
      && Pallet_aws_params_add (p, "Version", PALLET_AWS_STS_VERSION) == 0
      && Pallet_aws_params_add (p, "RoleArn", role) == 0
      && Pallet_aws_params_add (p, "RoleSessionName", name) == 0
      && Pallet_aws_params_add (p, "WebIdentityToken", token) == 0)
    rc = sts_post (ch, "AssumeRoleWithWebIdentity", p, role, out, errmsg);
  Pallet_aws_params_free (p);
  cleanse_str (token);
  free (token);
  free (name);
  return rc;
}

/* AssumeRole, signed with the source credentials, through a client of
 * their own (retries, clock skew and error classification included). */
static int
assume_role (const struct chain *ch, const char *profile, const struct Pallet_aws_creds *src,
             const char *role, struct Pallet_aws_creds *out, char **errmsg)
{
  const char *conf = Pallet_aws_ini_file (ch->conf);
  char section[300];
  snprintf (section, sizeof section, strcmp (profile, "default") == 0 ? "%s" : "profile %s",
            profile);
  const char *ext = Pallet_aws_ini_value (ch->conf, section, "external_id");
  const char *sess = Pallet_aws_ini_value (ch->conf, section, "role_session_name");
  const char *dur = Pallet_aws_ini_value (ch->conf, section, "duration_seconds");
  (void) conf;
  struct Pallet_aws_config cfg = {
    .access_key_id = src->access_key_id,
    .secret_access_key = src->secret_access_key,
    .session_token = src->session_token,
    .region = ch->spec->region ? ch->spec->region : "us-east-1",
    .sts_endpoint = ch->spec->sts_endpoint,
    .ca_bundle = ch->spec->ca_bundle,
    .insecure = ch->spec->insecure,
    .max_attempts = 3,
    .backoff_base_ms = 200,
  };
  struct Pallet_aws_client *c = Pallet_aws_client_new (&cfg, errmsg);
  if (!c)
    return -1;
  char *name = session_name (sess);
  struct Pallet_aws_params *p = Pallet_aws_params_new ();
  int rc = -2;
  json_t *rest = NULL;
  if (!p || !name || Pallet_aws_params_add (p, "RoleArn", role) < 0
      || Pallet_aws_params_add (p, "RoleSessionName", name) < 0
      || (ext && Pallet_aws_params_add (p, "ExternalId", ext) < 0)
      || (dur && Pallet_aws_params_add (p, "DurationSeconds", dur) < 0))
    goto out;
  if (Pallet_aws_query (c, PALLET_AWS_STS, "AssumeRole", p, NULL, NULL, NULL, &rest) < 0) {
    Pallet_aws_strf (errmsg, "profile \"%s\": cannot assume role %s: %s", profile, role,
                     Pallet_aws_errmsg (c));
    rc = -1;
    goto out;
  }
  char *inner = NULL;
  rc = creds_from_obj (json_object_get (json_object_get (rest, "AssumeRoleResult"), "Credentials"),
                       "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", out, &inner);
  if (rc == -1)
    Pallet_aws_strf (errmsg, "profile \"%s\": STS AssumeRole for role %s: %s", profile, role,
                     inner);
  free (inner);
out:
  json_cleanse (rest);
  json_decref (rest);
  Pallet_aws_params_free (p);
  free (name);
  Pallet_aws_client_free (c);
  return rc;
}

/* ---- container (EKS Pod Identity, ECS) and instance metadata ---- */

static bool
allowed_http_host (const char *url)
{
  static const char *const ok[] = { "http://127.",
                                    "http://localhost:",
                                    "http://localhost/",
                                    "http://[::1]",
                                    "http://169.254.170.2:",
                                    "http://169.254.170.2/",
                                    "http://169.254.170.23:",
                                    "http://169.254.170.23/",
                                    "http://[fd00:ec2::23]",
                                    NULL };
  for (size_t i = 0; ok[i]; i++)
    if (strncmp (url, ok[i], strlen (ok[i])) == 0)
      return true;
  return false;
}

static int
container_creds (struct chain *ch, struct Pallet_aws_creds *out, bool required)
{
  const char *rel = env ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = env ("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  char *url = NULL, *token = NULL;
  if (!rel && !full) {
    if (required) {
      Pallet_aws_strf (ch->errmsg,
                       "credential_source EcsContainer: neither AWS_CONTAINER_CREDENTIALS_"
                       "RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
      return -1;
    }
    skipped (ch, "container endpoint",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI and _RELATIVE_URI not set");
    return 1;
  }
  if (rel)
    Pallet_aws_strf (&url, "%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
  else if (strncmp (full, "https://", 8) != 0 && !allowed_http_host (full)) {
    Pallet_aws_strf (ch->errmsg,
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: plain http is only allowed to "
                     "loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23; use https",
                     full);
    return -1;
  }
  else
    url = strdup (full);
  const char *tf = env ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  if (tf && !(token = read_token_file (tf, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", ch->errmsg))) {
    free (url);
    return -1;
  }
  if (!tf && env ("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
    token = strdup (env ("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
  if (token && strpbrk (token, "\r\n")) {
    Pallet_aws_strf (ch->errmsg, "the container authorization token has a line break; fix %s",
                     tf ? tf : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    cleanse_str (token);
    free (token);
    free (url);
    return -1;
  }
  struct curl_slist *h = curl_slist_append (NULL, "Accept: application/json");
  char *auth = NULL;
  if (token)
    Pallet_aws_strf (&auth, "Authorization: %s", token);
  if (auth)
    h = curl_slist_append (h, auth);
  struct http_resp r;
  http_do (ch, "GET", url, h, NULL, 5000, &r);
  int rc = -1;
  char *inner = NULL;
  if (r.cc != CURLE_OK)
    Pallet_aws_strf (ch->errmsg, "container credentials endpoint %s: %s", url,
                     curl_easy_strerror (r.cc));
  else if (r.status != 200)
    Pallet_aws_strf (ch->errmsg,
                     "container credentials endpoint %s answered HTTP %ld%s; check the Pod "
                     "Identity association or task role",
                     url, r.status, r.status == 401 || r.status == 403 ? " (token refused)" : "");
  else if ((rc = Pallet_aws_creds_from_json (r.body.data, r.body.len, "http", out, &inner)) == -1)
    Pallet_aws_strf (ch->errmsg, "container credentials endpoint %s: %s", url, inner);
  if (rc == 0 && !(out->source = strdup (full ? "container:pod-identity" : "container:ecs")))
    rc = -2;
  free (inner);
  http_resp_free (&r);
  curl_slist_free_all (h);
  if (auth)
    cleanse_str (auth);
  free (auth);
  cleanse_str (token);
  free (token);
  free (url);
  return rc;
}

static bool
is_true (const char *v)
{
  return v && strcasecmp (v, "true") == 0;
}

/* IMDSv2: PUT a session token, GET the role name, GET its credentials. */
static int
imds_fetch (struct chain *ch, const char *base, struct Pallet_aws_creds *out, bool required)
{
  char *url = NULL, *tokhdr = NULL, *role = NULL, *inner = NULL;
  struct curl_slist *h = curl_slist_append (NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
  struct http_resp r;
  int rc = -1;
  Pallet_aws_strf (&url, "%s/latest/api/token", base);
  http_do (ch, "PUT", url, h, NULL, 1000, &r);
  curl_slist_free_all (h);
  h = NULL;
  if ((r.cc != CURLE_OK || r.status != 200 || !r.body.len) && !required) {
    char why[300];
    if (r.cc != CURLE_OK)
      snprintf (why, sizeof why, "no instance metadata service at %s (%s)", base,
                curl_easy_strerror (r.cc));
    else
      snprintf (why, sizeof why, "%s refused the IMDSv2 token request (HTTP %ld)", base, r.status);
    skipped (ch, "EC2 instance metadata", why);
    rc = 1;
    goto out;
  }
  if (r.cc != CURLE_OK || r.status != 200 || !r.body.len) {
    Pallet_aws_strf (ch->errmsg,
                     "EC2 instance metadata %s: the IMDSv2 token request failed (%s HTTP %ld); "
                     "check the instance's metadata options (HttpTokens, hop limit)",
                     base, r.cc != CURLE_OK ? curl_easy_strerror (r.cc) : "", r.status);
    goto out;
  }
  Pallet_aws_strf (&tokhdr, "X-aws-ec2-metadata-token: %s", Pallet_aws_buf_str (&r.body));
  http_resp_free (&r);
  h = curl_slist_append (NULL, tokhdr);
  Pallet_aws_strf (&url, "%s/latest/meta-data/iam/security-credentials/", base);
  http_do (ch, "GET", url, h, NULL, 1000, &r);
  if (r.cc != CURLE_OK || r.status != 200 || !r.body.len) {
    Pallet_aws_strf (ch->errmsg,
                     "EC2 instance metadata %s: no IAM role attached to this instance (HTTP "
                     "%ld); attach an instance profile or use another credential source",
                     base, r.status);
    goto out;
  }
  role = strdup (Pallet_aws_buf_str (&r.body));
  if (role)
    role[strcspn (role, "\r\n")] = '\0';
  http_resp_free (&r);
  Pallet_aws_strf (&url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
  http_do (ch, "GET", url, h, NULL, 1000, &r);
  if (r.cc != CURLE_OK || r.status != 200)
    Pallet_aws_strf (ch->errmsg, "EC2 instance metadata %s: credentials of role %s: HTTP %ld %s",
                     base, role, r.status, r.cc != CURLE_OK ? curl_easy_strerror (r.cc) : "");
  else if ((rc = Pallet_aws_creds_from_json (r.body.data, r.body.len, "http", out, &inner)) == -1)
    Pallet_aws_strf (ch->errmsg, "EC2 instance metadata %s, role %s: %s", base, role, inner);
  if (rc == 0 && !(out->source = strdup ("imds")))
    rc = -2;
out:
  http_resp_free (&r);
  curl_slist_free_all (h);
  if (tokhdr)
    cleanse_str (tokhdr);
  free (tokhdr);
  free (url);
  free (role);
  free (inner);
  return rc;
}

static int
imds_creds (struct chain *ch, struct Pallet_aws_creds *out, bool required)
{
  if (is_true (env ("AWS_EC2_METADATA_DISABLED"))) {
    if (required) {
      Pallet_aws_strf (ch->errmsg, "credential_source Ec2InstanceMetadata, but "
                                   "AWS_EC2_METADATA_DISABLED=true; unset one of them");
      return -1;
    }
    skipped (ch, "EC2 instance metadata", "AWS_EC2_METADATA_DISABLED=true");
    return 1;
  }
  const char *ep = env ("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  char *base = strdup (ep ? ep : IMDS_DEFAULT);
  if (!base)
    return -2;
  size_t l = strlen (base);
  while (l > 0 && base[l - 1] == '/')
    base[--l] = '\0';
  /* An endpoint the user set must work; the default one may be absent. */
  int rc = imds_fetch (ch, base, out, required || ep);
  free (base);
  return rc;
}

/* ---- SSO token cache (read only) ---- */

static int
sso_creds (struct chain *ch, const char *profile, const char *section, struct Pallet_aws_creds *out)
{
  const char *sess = Pallet_aws_ini_value (ch->conf, section, "sso_session");
  char sess_sec[300];
  snprintf (sess_sec, sizeof sess_sec, "sso-session %s", sess ? sess : "");
  const char *start = sess ? Pallet_aws_ini_value (ch->conf, sess_sec, "sso_start_url")
                           : Pallet_aws_ini_value (ch->conf, section, "sso_start_url");
  const char *region = sess ? Pallet_aws_ini_value (ch->conf, sess_sec, "sso_region")
                            : Pallet_aws_ini_value (ch->conf, section, "sso_region");
  const char *account = Pallet_aws_ini_value (ch->conf, section, "sso_account_id");
  const char *role = Pallet_aws_ini_value (ch->conf, section, "sso_role_name");
  if (!start || !region || !account || !role) {
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\": SSO needs sso_start_url, sso_region (in the profile or its "
                     "[sso-session %s]), sso_account_id and sso_role_name; add the missing ones",
                     profile, sess ? sess : "NAME");
    return -1;
  }
  /* The CLI names the cache file after the SHA-1 of the session name
   * (or of the start URL for a legacy profile). */
  const char *key = sess ? sess : start;
  unsigned char md[SHA_DIGEST_LENGTH];
  char hex[2 * SHA_DIGEST_LENGTH + 1], *path = NULL, *inner = NULL;
  SHA1 ((const unsigned char *) key, strlen (key), md);
  Pallet_aws_hex (md, sizeof md, hex);
  Pallet_aws_strf (&path, "%s/.aws/sso/cache/%s.json", env ("HOME") ? env ("HOME") : "", hex);
  json_error_t je;
  json_t *cache = path ? json_load_file (path, JSON_REJECT_DUPLICATES, &je) : NULL;
  const char *tok = json_string_value (json_object_get (cache, "accessToken"));
  time_t exp = Pallet_aws_parse_time (json_string_value (json_object_get (cache, "expiresAt")));
  int rc = -1;
  struct curl_slist *h = NULL;
  char *hdr = NULL, *url = NULL;
  struct http_resp r = { 0 };
  if (!tok || exp < 0 || exp <= time (NULL)) {
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\": the SSO token %s %s; run \"aws sso login --profile %s\" "
                     "(Pallet reads the token cache, it does not log in)",
                     profile, path,
                     !cache            ? "is missing"
                     : !tok || exp < 0 ? "is malformed"
                                       : "has expired",
                     profile);
    goto out;
  }
  const char *ep = env ("AWS_ENDPOINT_URL_SSO");
  if (ep)
    Pallet_aws_strf (&url, "%s/federation/credentials?account_id=%s&role_name=%s", ep, account,
                     role);
  else
    Pallet_aws_strf (&url,
                     "https://portal.sso.%s.amazonaws.com/federation/credentials?account_id=%s&"
                     "role_name=%s",
                     region, account, role);
  Pallet_aws_strf (&hdr, "x-amz-sso_bearer_token: %s", tok);
  h = curl_slist_append (NULL, hdr);
  http_do (ch, "GET", url, h, NULL, STS_TIMEOUT_MS, &r);
  json_t *o = NULL;
  if (r.cc != CURLE_OK || r.status != 200)
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\": SSO GetRoleCredentials for role %s in account %s: %s HTTP "
                     "%ld; run \"aws sso login --profile %s\" or check the role assignment",
                     profile, role, account, r.cc != CURLE_OK ? curl_easy_strerror (r.cc) : "",
                     r.status, profile);
  else if (!(o = json_loadb (r.body.data, r.body.len, 0, &je)))
    Pallet_aws_strf (ch->errmsg, "profile \"%s\": SSO GetRoleCredentials: not JSON", profile);
  else if ((rc = creds_from_obj (json_object_get (o, "roleCredentials"), "accessKeyId",
                                 "secretAccessKey", "sessionToken", "expiration", out, &inner))
           == -1)
    Pallet_aws_strf (ch->errmsg, "profile \"%s\": SSO GetRoleCredentials: %s", profile, inner);
  json_cleanse (o);
  json_decref (o);
out:
  http_resp_free (&r);
  curl_slist_free_all (h);
  if (hdr)
    cleanse_str (hdr);
  free (hdr);
  free (url);
  free (path);
  free (inner);
  json_cleanse (cache);
  json_decref (cache);
  return rc;
}

/* ---- the shared profile ---- */

struct prof {
  const char *name;
  char section[300]; /* in the config file */
};

static void
prof_init (struct prof *p, const char *name)
{
  p->name = name;
  snprintf (p->section, sizeof p->section, strcmp (name, "default") == 0 ? "%s" : "profile %s",
            name);
}

/* The credentials file wins over the config file, as in botocore. */
static const char *
pval (const struct chain *ch, const struct prof *p, const char *key)
{
  const char *v = Pallet_aws_ini_value (ch->cred, p->name, key);
  if (!v)
    v = Pallet_aws_ini_value (ch->conf, p->section, key);
  if (!v && strcmp (p->name, "default") == 0)
    v = Pallet_aws_ini_value (ch->conf, "profile default", key);
  return v;
}

static bool
prof_exists (const struct chain *ch, const struct prof *p)
{
  return Pallet_aws_ini_has_section (ch->cred, p->name)
         || Pallet_aws_ini_has_section (ch->conf, p->section)
         || (strcmp (p->name, "default") == 0
             && Pallet_aws_ini_has_section (ch->conf, "profile default"));
}

static int
set_source (struct Pallet_aws_creds *out, const char *profile, const char *how)
{
  free (out->source);
  out->source = NULL;
  Pallet_aws_strf (&out->source, "profile:%s%s%s", profile, how ? " " : "", how ? how : "");
  return out->source ? 0 : -2;
}

static int
static_keys (struct chain *ch, const struct prof *p, struct Pallet_aws_creds *out)
{
  const char *id = pval (ch, p, "aws_access_key_id");
  const char *sec = pval (ch, p, "aws_secret_access_key");
  const char *tok = pval (ch, p, "aws_session_token");
  if (!id && !sec)
    return 1;
  if (!id || !sec) {
    Pallet_aws_strf (ch->errmsg, "AWS credentials: profile \"%s\" has %s but no %s; add it (in %s)",
                     p->name, id ? "aws_access_key_id" : "aws_secret_access_key",
                     id ? "aws_secret_access_key" : "aws_access_key_id",
                     Pallet_aws_ini_file (ch->cred) ? Pallet_aws_ini_file (ch->cred)
                                                    : "~/.aws/credentials");
    return -1;
  }
  out->access_key_id = strdup (id);
  out->secret_access_key = strdup (sec);
  out->session_token = tok ? strdup (tok) : NULL;
  out->expiration = 0;
  if (!out->access_key_id || !out->secret_access_key || (tok && !out->session_token))
    return -2;
  return set_source (out, p->name, NULL);
}

static int profile_creds (struct chain *ch, const char *name, int depth,
                          struct Pallet_aws_creds *out);

static int
credential_source (struct chain *ch, const struct prof *p, const char *cs,
                   struct Pallet_aws_creds *out)
{
  if (strcmp (cs, "Environment") == 0) {
    const char *id = env ("AWS_ACCESS_KEY_ID"), *sec = env ("AWS_SECRET_ACCESS_KEY");
    if (!id || !sec) {
      Pallet_aws_strf (ch->errmsg,
                       "profile \"%s\": credential_source Environment, but AWS_ACCESS_KEY_ID "
                       "and AWS_SECRET_ACCESS_KEY are not both set",
                       p->name);
      return -1;
    }
    out->access_key_id = strdup (id);
    out->secret_access_key = strdup (sec);
    out->session_token = env ("AWS_SESSION_TOKEN") ? strdup (env ("AWS_SESSION_TOKEN")) : NULL;
    return out->access_key_id && out->secret_access_key ? 0 : -2;
  }
  if (strcmp (cs, "Ec2InstanceMetadata") == 0)
    return imds_creds (ch, out, true);
  if (strcmp (cs, "EcsContainer") == 0)
    return container_creds (ch, out, true);
  Pallet_aws_strf (ch->errmsg,
                   "profile \"%s\": credential_source \"%s\" is not one of Environment, "
                   "Ec2InstanceMetadata, EcsContainer",
                   p->name, cs);
  return -1;
}

/* role_arn: the source credentials, then AssumeRole with them. */
static int
role_profile (struct chain *ch, const struct prof *p, const char *role, int depth,
              struct Pallet_aws_creds *out)
{
  const char *src = pval (ch, p, "source_profile");
  const char *cs = pval (ch, p, "credential_source");
  const char *wit = pval (ch, p, "web_identity_token_file");
  if (pval (ch, p, "mfa_serial")) {
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\": role %s needs an MFA code (mfa_serial), and Pallet runs "
                     "unattended and cannot prompt for one; use a role without MFA for the "
                     "migration, or get temporary credentials first (aws sts get-session-token "
                     "--serial-number ... --token-code ...) and pass those",
                     p->name, role);
    return -1;
  }
  if (!!src + !!cs + !!wit != 1) {
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\" has role_arn and %s of source_profile, credential_source and "
                     "web_identity_token_file; give exactly one",
                     p->name, !!src + !!cs + !!wit ? "more than one" : "none");
    return -1;
  }
  if (wit) {
    int rc = web_identity (ch, wit, role, pval (ch, p, "role_session_name"), out, ch->errmsg);
    return rc == 0 ? set_source (out, p->name, "web-identity") : rc;
  }
  struct Pallet_aws_creds base = { 0 };
  int rc;
  if (cs)
    rc = credential_source (ch, p, cs, &base);
  else if (strcmp (src, p->name) == 0) /* its own static keys are the source */
    rc = static_keys (ch, p, &base);
  else
    rc = profile_creds (ch, src, depth + 1, &base);
  if (rc == 1)
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\": source_profile \"%s\" has no credentials; add them or fix "
                     "source_profile",
                     p->name, src);
  if (rc == 0)
    rc = assume_role (ch, p->name, &base, role, out, ch->errmsg);
  Pallet_aws_creds_free (&base);
  if (rc == 1)
    rc = -1;
  return rc == 0 ? set_source (out, p->name, "assume-role") : rc;
}

/* 0, 1 (the profile does not exist or has no credential settings), -1, -2. */
static int
profile_creds (struct chain *ch, const char *name, int depth, struct Pallet_aws_creds *out)
{
  struct prof p;
  prof_init (&p, name);
  if (depth > MAX_PROFILE_DEPTH) {
    Pallet_aws_strf (ch->errmsg,
                     "profile \"%s\": source_profile chain longer than %d (a loop?); fix "
                     "source_profile",
                     name, MAX_PROFILE_DEPTH);
    return -1;
  }
  if (!prof_exists (ch, &p))
    return 1;
  const char *role = pval (ch, &p, "role_arn");
  if (role)
    return role_profile (ch, &p, role, depth, out);
  int rc = static_keys (ch, &p, out);
  if (rc != 1)
    return rc;
  if (pval (ch, &p, "sso_session") || pval (ch, &p, "sso_start_url")) {
    rc = sso_creds (ch, name, p.section, out);
    return rc == 0 ? set_source (out, name, "sso") : rc;
  }
  const char *proc = pval (ch, &p, "credential_process");
  if (proc) {
    rc = Pallet_aws_process_creds (name, proc, out, ch->errmsg);
    return rc == 0 ? set_source (out, name, "credential_process") : rc;
  }
  return 1;
}

static int
web_identity_env (struct chain *ch, struct Pallet_aws_creds *out)
{
  const char *tf = env ("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env ("AWS_ROLE_ARN");
  if (!tf && !role) {
    skipped (ch, "web identity", "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set");
    return 1;
  }
  if (!tf || !role) {
    Pallet_aws_strf (ch->errmsg,
                     "web identity (IRSA): %s is set but %s is not; set both (the service "
                     "account's role annotation and its projected token)",
                     tf ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                     tf ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
    return -1;
  }
  int rc = web_identity (ch, tf, role, env ("AWS_ROLE_SESSION_NAME"), out, ch->errmsg);
  if (rc == 0 && !(out->source = strdup ("web-identity")))
    rc = -2;
  return rc;
}

static int
shared_profile (struct chain *ch, struct Pallet_aws_creds *out)
{
  const char *name = ch->spec->profile;
  int rc = profile_creds (ch, name, 0, out);
  if (rc != 1)
    return rc;
  const char *cf = Pallet_aws_ini_file (ch->cred), *kf = Pallet_aws_ini_file (ch->conf);
  struct prof p;
  prof_init (&p, name);
  if (ch->spec->profile_explicit && !prof_exists (ch, &p)) {
    Pallet_aws_strf (ch->errmsg,
                     "AWS credentials: profile \"%s\" not found in %s or %s; fix AWS_PROFILE "
                     "or add the profile",
                     name, cf ? cf : "~/.aws/credentials", kf ? kf : "~/.aws/config");
    return -1;
  }
  char why[1200];
  snprintf (why, sizeof why, "%s in %s or %s",
            prof_exists (ch, &p) ? "has no credential settings" : "not found",
            cf ? cf : "~/.aws/credentials", kf ? kf : "~/.aws/config");
  char what[300];
  snprintf (what, sizeof what, "profile \"%s\"", name);
  skipped (ch, what, why);
  return 1;
}

int
Pallet_aws_creds_chain (const struct Pallet_aws_chain_spec *spec, struct Pallet_aws_creds *out,
                        struct Pallet_aws_buf *tried, char **errmsg)
{
  memset (out, 0, sizeof *out);
  struct chain ch = { .spec = spec, .tried = tried, .errmsg = errmsg };
  char *cf = NULL, *kf = NULL;
  const char *home = env ("HOME");
  if (env ("AWS_SHARED_CREDENTIALS_FILE"))
    cf = strdup (env ("AWS_SHARED_CREDENTIALS_FILE"));
  else if (home)
    Pallet_aws_strf (&cf, "%s/.aws/credentials", home);
  if (env ("AWS_CONFIG_FILE"))
    kf = strdup (env ("AWS_CONFIG_FILE"));
  else if (home)
    Pallet_aws_strf (&kf, "%s/.aws/config", home);
  int rc = Pallet_aws_ini_load (cf, &ch.cred, errmsg);
  if (rc == 0)
    rc = Pallet_aws_ini_load (kf, &ch.conf, errmsg);
  if (rc == 0)
    rc = web_identity_env (&ch, out);
  if (rc == 1)
    rc = shared_profile (&ch, out);
  if (rc == 1)
    rc = container_creds (&ch, out, false);
  if (rc == 1)
    rc = imds_creds (&ch, out, false);
  if (rc != 0)
    Pallet_aws_creds_free (out);
  Pallet_aws_ini_free (ch.cred);
  Pallet_aws_ini_free (ch.conf);
  free (cf);
  free (kf);
  return rc;
}
