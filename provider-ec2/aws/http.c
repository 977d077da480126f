/* SPDX-License-Identifier: Apache-2.0 */
/* The client: one CURL easy handle (connections are reused), SigV4 on
 * every attempt, retries with full-jitter backoff and the SDK retry quota,
 * errors that name the service, action, region and request id. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include "aws-internal.h"

static const char *const svc_names[PALLET_AWS_NSERVICES] = { "ec2", "sts", "ebs", "kms" };

const char *
Pallet_aws_service_name (enum Pallet_aws_service svc)
{
  return (unsigned) svc < PALLET_AWS_NSERVICES ? svc_names[svc] : "aws";
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_inited;
static void
curl_init_once (void)
{
  curl_inited = curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* The provider is dlclose'd: give back what curl_global_init took, or it is
 * lost with the unloaded module (and LeakSanitizer rightly says so). */
__attribute__ ((destructor)) static void
curl_fini (void)
{
  if (curl_inited)
    curl_global_cleanup ();
}

void
Pallet_aws_log (struct Pallet_aws_client *c, int level, const char *fmt, ...)
{
  if (!c || !c->cfg.log)
    return;
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->cfg.log (c->cfg.log_opaque, level, msg);
}

static void
clear_error (struct Pallet_aws_client *c)
{
  for (size_t i = 0; i < sizeof c->err_strings / sizeof c->err_strings[0]; i++) {
    free (c->err_strings[i]);
    c->err_strings[i] = NULL;
  }
  memset (&c->err, 0, sizeof c->err);
  c->err.code = c->err.message = c->err.request_id = c->err.action = c->err.text = "";
  c->err.service = "";
  c->err.region = c->r.region ? c->r.region : "";
}

static const char *
keep (struct Pallet_aws_client *c, int slot, const char *s)
{
  c->err_strings[slot] = strdup (s ? s : "");
  return c->err_strings[slot] ? c->err_strings[slot] : "";
}

/* The fix to suggest for an error status. */
static const char *
hint (int status)
{
  switch (status) {
  case PALLET_E_NOT_FOUND: return "check that the resource exists in this account and region";
  case PALLET_E_INVALID: return "check the request's parameters";
  case PALLET_E_TRANSIENT:
    return "the service is throttling or unavailable; retry later "
           "or lower the concurrency";
  case PALLET_E_TIMEOUT:
    return "check network access to the endpoint (proxy, firewall) "
           "or raise the timeout";
  case PALLET_E_CONFLICT:
    return "the resource is in a state that does not allow this; "
           "wait for it or check who else changes it";
  case PALLET_E_CANCELLED: return "the operation was cancelled; run it again to resume";
  default: return "see the AWS message above";
  }
}

void
Pallet_aws_set_error (struct Pallet_aws_client *c, int status, long http_status, int attempts,
                      enum Pallet_aws_service svc, const char *action, const char *code,
                      const char *message, const char *request_id, const char *fmt, ...)
{
  clear_error (c);
  c->err.status = status;
  c->err.http_status = http_status;
  c->err.attempts = attempts;
  c->err.service = Pallet_aws_service_name (svc);
  c->err.action = keep (c, 0, action);
  c->err.code = keep (c, 1, code);
  c->err.message = keep (c, 2, message);
  c->err.request_id = keep (c, 3, request_id);
  c->err.region = keep (c, 4, c->r.region);

  struct Pallet_aws_buf b = { 0 };
  if (fmt) {
    va_list ap;
    char tmp[1024];
    va_start (ap, fmt);
    vsnprintf (tmp, sizeof tmp, fmt, ap);
    va_end (ap);
    Pallet_aws_buf_puts (&b, tmp);
  }
  else if (status == PALLET_E_AUTH && Pallet_aws_is_auth_code (code)) {
    Pallet_aws_buf_printf (&b,
                           "AWS %s (region %s, endpoint %s) rejected the credentials of "
                           "access key id %s on %s: %s: %s (request id %s); check that "
                           "accessKeyId and secretAccessKey are right and the key is active, "
                           "that the sessionToken (if any) has not expired, that the region "
                           "is right and that this machine's clock is correct",
                           c->err.service, c->err.region,
                           c->r.endpoint[svc < PALLET_AWS_NSERVICES ? svc : 0],
                           c->r.access_key_id ? c->r.access_key_id : "(none)", c->err.action,
                           c->err.code, c->err.message[0] ? c->err.message : "(no message)",
                           c->err.request_id[0] ? c->err.request_id : "unknown");
  }
  else if (status == PALLET_E_AUTH) {
    Pallet_aws_buf_printf (&b,
                           "AWS %s %s in region %s was denied for access key id %s: "
                           "%s: %s (request id %s); grant the IAM permission %s:%s to this "
                           "identity",
                           c->err.service, c->err.action, c->err.region,
                           c->r.access_key_id ? c->r.access_key_id : "(none)", c->err.code,
                           c->err.message, c->err.request_id[0] ? c->err.request_id : "unknown",
                           c->err.service, c->err.action);
  }
  else {
    Pallet_aws_buf_printf (&b, "AWS %s %s in region %s failed", c->err.service, c->err.action,
                           c->err.region);
    if (attempts > 1)
      Pallet_aws_buf_printf (&b, " after %d attempts", attempts);
    Pallet_aws_buf_printf (&b, ": %s%s%s", c->err.code, c->err.code[0] ? ": " : "",
                           c->err.message[0] ? c->err.message : "(no message)");
    if (http_status)
      Pallet_aws_buf_printf (&b, " (HTTP %ld", http_status);
    else
      Pallet_aws_buf_printf (&b, " (no HTTP response");
    Pallet_aws_buf_printf (&b, ", request id %s); %s",
                           c->err.request_id[0] ? c->err.request_id : "unknown", hint (status));
  }
  const char *t = Pallet_aws_buf_str (&b);
  c->err.text = keep (c, 5, t ? t : "out of memory formatting an AWS error");
  Pallet_aws_buf_free (&b);
  Pallet_aws_log (c, PALLET_LOG_DEBUG, "error: %s", c->err.text);
}

const struct Pallet_aws_error *
Pallet_aws_last_error (const struct Pallet_aws_client *c)
{
  return &c->err;
}

const char *
Pallet_aws_errmsg (const struct Pallet_aws_client *c)
{
  return c->err.text && c->err.text[0] ? c->err.text : "no error";
}

const char *
Pallet_aws_region (const struct Pallet_aws_client *c)
{
  return c->r.region;
}
const char *
Pallet_aws_access_key_id (const struct Pallet_aws_client *c)
{
  return c->r.access_key_id;
}
const char *
Pallet_aws_credentials_source (const struct Pallet_aws_client *c)
{
  return c->r.cred_source;
}

void
Pallet_aws_credentials (const struct Pallet_aws_client *c, const char **access_key_id,
                        const char **secret_access_key, const char **session_token)
{
  *access_key_id = c->r.access_key_id;
  *secret_access_key = c->r.secret_access_key;
  *session_token = c->r.session_token && *c->r.session_token ? c->r.session_token : NULL;
}

const char *
Pallet_aws_endpoint (const struct Pallet_aws_client *c, enum Pallet_aws_service svc)
{
  return (unsigned) svc < PALLET_AWS_NSERVICES ? c->r.endpoint[svc] : NULL;
}

/* ---- curl callbacks ---- */

static size_t
write_cb (char *p, size_t size, size_t n, void *ud)
{
  struct Pallet_aws_resp *r = ud;
  size_t len = size * n;
  if (r->sink && r->status >= 200 && r->status < 300) {
    if (r->sink_len + len > r->sink_size) {
      r->too_large = true;
      return 0;
    }
    memcpy (r->sink + r->sink_len, p, len);
    r->sink_len += len;
    if (r->sink_md && !EVP_DigestUpdate (r->sink_md, p, len))
      return 0;
    return len;
  }
  if (r->body.len + len > r->cap) {
    r->too_large = true;
    return 0;
  }
  Pallet_aws_buf_add (&r->body, p, len);
  return r->body.oom ? 0 : len;
}

static void
copy_header (char *dst, size_t dstlen, const char *v, size_t l)
{
  while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
    l--;
  while (l > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    l--;
  }
  if (l >= dstlen)
    l = dstlen - 1;
  memcpy (dst, v, l);
  dst[l] = '\0';
}

static size_t
header_cb (char *p, size_t size, size_t n, void *ud)
{
  struct Pallet_aws_resp *r = ud;
  size_t len = size * n;
  if (len > 5 && strncmp (p, "HTTP/", 5) == 0) {
    /* A new response (after a 1xx): forget the previous headers. */
    const char *sp = memchr (p, ' ', len);
    r->status = sp ? strtol (sp + 1, NULL, 10) : 0;
    r->request_id[0] = r->checksum[0] = r->checksum_alg[0] = '\0';
    r->error_type[0] = r->content_type[0] = r->date[0] = '\0';
    return len;
  }
  const char *colon = memchr (p, ':', len);
  if (!colon)
    return len;
  size_t nl = (size_t) (colon - p);
  const char *v = colon + 1;
  size_t vl = len - nl - 1;
#define H(name, field)                                       \
  if (nl == strlen (name) && strncasecmp (p, name, nl) == 0) \
  copy_header (r->field, sizeof r->field, v, vl)
  H ("x-amzn-requestid", request_id);
  else H ("x-amz-request-id", request_id);
  else H ("x-amz-checksum", checksum);
  else H ("x-amz-checksum-algorithm", checksum_alg);
  else H ("x-amzn-errortype", error_type);
  else H ("content-type", content_type);
  else H ("date", date);
#undef H
  return len;
}

static int
progress_cb (void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
  (void) a;
  (void) b;
  (void) c2;
  (void) d;
  struct Pallet_aws_client *c = ud;
  return c->cfg.cancelled && c->cfg.cancelled (c->cfg.cancel_opaque) ? 1 : 0;
}

/* ---- client lifecycle ---- */

struct Pallet_aws_client *
Pallet_aws_client_new (const struct Pallet_aws_config *cfg, char **errmsg)
{
  static const struct Pallet_aws_config empty;
  if (!cfg)
    cfg = &empty;
  if (errmsg)
    *errmsg = NULL;
  pthread_once (&curl_once, curl_init_once);
  struct Pallet_aws_client *c = calloc (1, sizeof *c);
  if (!c) {
    if (errmsg)
      *errmsg = strdup ("out of memory creating the AWS client");
    return NULL;
  }
  c->cfg = *cfg;
  /* Only the callbacks and numbers of cfg are kept; strings are resolved. */
  c->cfg.access_key_id = c->cfg.secret_access_key = c->cfg.session_token = NULL;
  c->cfg.profile = c->cfg.region = c->cfg.endpoint_url = NULL;
  c->cfg.ec2_endpoint = c->cfg.ebs_endpoint = c->cfg.sts_endpoint = c->cfg.ca_bundle = NULL;
  c->cfg.kms_endpoint = c->cfg.ca_pem = NULL;
  if (Pallet_aws_resolve (cfg, &c->r, errmsg) < 0) {
    free (c);
    return NULL;
  }
  clear_error (c);
  if (cfg->ca_bundle && *cfg->ca_bundle)
    c->ca_bundle = strdup (cfg->ca_bundle);
  else if (c->r.ca_bundle) /* AWS_CA_BUNDLE or the profile's ca_bundle */
    c->ca_bundle = strdup (c->r.ca_bundle);

  c->max_attempts = cfg->max_attempts;
  const char *ma = getenv ("AWS_MAX_ATTEMPTS");
  if (c->max_attempts <= 0 && ma && atoi (ma) > 0)
    c->max_attempts = atoi (ma);
  if (c->max_attempts <= 0)
    c->max_attempts = PALLET_AWS_DEFAULT_MAX_ATTEMPTS;
  c->backoff_base_ms =
      cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : PALLET_AWS_DEFAULT_BACKOFF_BASE_MS;
  c->backoff_max_ms =
      cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : PALLET_AWS_DEFAULT_BACKOFF_MAX_MS;
  if (c->cfg.max_response_bytes == 0)
    c->cfg.max_response_bytes = PALLET_AWS_DEFAULT_MAX_RESPONSE;
  c->quota.tokens = c->quota.max = PALLET_AWS_RETRY_QUOTA_INITIAL;
  c->quota.disabled = cfg->no_retry_quota != 0;
  c->clock_offset = cfg->clock_skew_s;

  c->curl = curl_easy_init ();
  if (!c->curl) {
    if (errmsg)
      *errmsg = strdup ("cannot create a libcurl handle for the AWS client");
    Pallet_aws_client_free (c);
    return NULL;
  }
  CURL *h = c->curl;
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt (h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT_MS,
                    cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
                                                : (long) PALLET_AWS_DEFAULT_CONNECT_TIMEOUT_MS);
  curl_easy_setopt (h, CURLOPT_TIMEOUT_MS,
                    cfg->timeout_ms > 0 ? cfg->timeout_ms : (long) PALLET_AWS_DEFAULT_TIMEOUT_MS);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT,
                    cfg->low_speed_limit > 0 ? cfg->low_speed_limit
                                             : (long) PALLET_AWS_DEFAULT_LOW_SPEED_LIMIT);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME,
                    cfg->low_speed_time_s > 0 ? cfg->low_speed_time_s
                                              : (long) PALLET_AWS_DEFAULT_LOW_SPEED_TIME_S);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
  if (c->ca_bundle)
    curl_easy_setopt (h, CURLOPT_CAINFO, c->ca_bundle);
  else if (cfg->ca_pem && *cfg->ca_pem) {
    /* curl copies the PEM: no file to write, none left behind on a crash. */
    struct curl_blob ca = { (void *) cfg->ca_pem, strlen (cfg->ca_pem), CURL_BLOB_COPY };
    if (curl_easy_setopt (h, CURLOPT_CAINFO_BLOB, &ca) != CURLE_OK) {
      if (errmsg)
        *errmsg = strdup ("this libcurl cannot take CA certificates from memory "
                          "(CURLOPT_CAINFO_BLOB); give the CA as a file (ca-bundle)");
      Pallet_aws_client_free (c);
      return NULL;
    }
  }
  curl_easy_setopt (h, CURLOPT_USERAGENT, "pallet-aws/0.1");
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (h, CURLOPT_XFERINFOFUNCTION, progress_cb);
  curl_easy_setopt (h, CURLOPT_XFERINFODATA, c);
  curl_easy_setopt (h, CURLOPT_NOPROGRESS, 0L);
  /* 256 KiB reads: a 512 KiB EBS block in two recv calls and callbacks,
   * not 32 (the default is 16 KiB). */
  curl_easy_setopt (h, CURLOPT_BUFFERSIZE, 256L * 1024);
  if (cfg->insecure)
    Pallet_aws_log (c, PALLET_LOG_WARNING, "TLS certificate verification is OFF (insecure)");
  Pallet_aws_log (c, PALLET_LOG_DEBUG,
                  "AWS client: region %s, credentials from %s "
                  "(access key id %s), ec2 %s, ebs %s, sts %s, max attempts %d",
                  c->r.region, c->r.cred_source, c->r.access_key_id, c->r.endpoint[0],
                  c->r.endpoint[2], c->r.endpoint[1], c->max_attempts);
  return c;
}

void
Pallet_aws_client_set_callbacks (struct Pallet_aws_client *c, Pallet_aws_log_fn log,
                                 void *log_opaque, Pallet_aws_cancel_fn cancelled,
                                 void *cancel_opaque)
{
  c->cfg.log = log;
  c->cfg.log_opaque = log_opaque;
  c->cfg.cancelled = cancelled;
  c->cfg.cancel_opaque = cancel_opaque;
}

void
Pallet_aws_client_free (struct Pallet_aws_client *c)
{
  if (!c)
    return;
  if (c->curl)
    curl_easy_cleanup (c->curl);
  clear_error (c);
  Pallet_aws_resolved_free (&c->r);
  Pallet_aws_sigv4_key_free (c->key_cache);
  EVP_MD_CTX_free (c->sink_md);
  free (c->ca_bundle);
  free (c);
}

/* ---- one request, with retries ---- */

static long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
cancelled (struct Pallet_aws_client *c)
{
  return c->cfg.cancelled && c->cfg.cancelled (c->cfg.cancel_opaque);
}

/* Sleeps ms, polling the cancel callback.  false if cancelled. */
static bool
sleep_ms (struct Pallet_aws_client *c, long ms)
{
  long end = now_ms () + ms;
  for (;;) {
    if (cancelled (c))
      return false;
    long left = end - now_ms ();
    if (left <= 0)
      return true;
    if (left > 50)
      left = 50;
    struct timespec ts = { 0, left * 1000000L };
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
      ;
  }
}

/* Splits "scheme://host[:port][/base]" into the Host header and base. */
static void
split_endpoint (const char *ep, char *host, size_t hostlen, const char **base)
{
  const char *p = strstr (ep, "://");
  p = p ? p + 3 : ep;
  const char *slash = strchr (p, '/');
  size_t l = slash ? (size_t) (slash - p) : strlen (p);
  if (l >= hostlen)
    l = hostlen - 1;
  memcpy (host, p, l);
  host[l] = '\0';
  *base = slash ? slash : "";
}

/* AWS error code/message from an error body (XML or JSON). */
static void
parse_error_body (struct Pallet_aws_resp *r, char **code, char **message)
{
  char *rid = NULL;
  *code = *message = NULL;
  const char *b = r->body.data ? r->body.data : "";
  size_t bl = r->body.len;
  size_t skip = strspn (b, " \t\r\n");
  if (bl > skip && b[skip] == '<') {
    if (Pallet_aws_xml_error (b, bl, code, message, &rid) == 0) {
      /* The body's request id is authoritative for Query errors. */
      if (rid && *rid)
        snprintf (r->request_id, sizeof r->request_id, "%s", rid);
      free (rid);
    }
    return;
  }
  if (r->error_type[0]) { /* "ValidationException:http://..." */
    size_t l = strcspn (r->error_type, ":");
    *code = strndup (r->error_type, l);
  }
  if (bl > skip && b[skip] == '{') {
    json_t *j = json_loadb (b, bl, 0, NULL);
    const char *m = json_string_value (json_object_get (j, "Message"));
    if (!m)
      m = json_string_value (json_object_get (j, "message"));
    if (m)
      *message = strdup (m);
    if (!*code) {
      const char *t = json_string_value (json_object_get (j, "__type"));
      if (!t)
        t = json_string_value (json_object_get (j, "code"));
      if (t) {
        const char *hash = strrchr (t, '#');
        *code = strdup (hash ? hash + 1 : t);
      }
    }
    json_decref (j);
  }
}

static bool
is_skew_error (const char *code)
{
  static const char *const codes[] = { "RequestTimeTooSkewed",
                                       "RequestExpired",
                                       "RequestInTheFuture",
                                       "InvalidSignatureException",
                                       "SignatureDoesNotMatch",
                                       "AuthFailure",
                                       NULL };
  for (size_t i = 0; codes[i]; i++)
    if (strcmp (code, codes[i]) == 0)
      return true;
  return false;
}

/* One request as it is sent: the parts fixed for every attempt (Host, the
 * encoded path and URL, the payload hash) and the last attempt's outcome. */
struct send {
  struct Pallet_aws_client *c;
  const struct Pallet_aws_request *req;
  const char *svc, *ep;
  char host[512];
  struct Pallet_aws_buf path, url;
  char payload_hash[65];
  int attempt;
  /* the attempt's outcome */
  CURLcode cc;
  long status, elapsed;
  char errbuf[CURL_ERROR_SIZE];
  char code[64], msg[256];
  enum Pallet_aws_retry_kind kind;
  int fstatus;
};

/* The URL (base + path, encoded once, slashes kept) and the payload hash. */
static int
build_request (struct send *x)
{
  struct Pallet_aws_client *c = x->c;
  const struct Pallet_aws_request *req = x->req;
  const char *base;
  split_endpoint (x->ep, x->host, sizeof x->host, &base);
  Pallet_aws_buf_puts (&x->path, base);
  Pallet_aws_buf_puts (&x->path, req->path);
  const char *scheme_end = strstr (x->ep, "://");
  Pallet_aws_buf_printf (&x->url, "%.*s", (int) (scheme_end ? scheme_end - x->ep + 3 : 0), x->ep);
  Pallet_aws_buf_puts (&x->url, x->host);
  if (x->path.data)
    Pallet_aws_uri_encode (&x->url, x->path.data, x->path.len, true);
  if (req->query && *req->query)
    Pallet_aws_buf_printf (&x->url, "?%s", req->query);
  if (!Pallet_aws_buf_str (&x->path) || !Pallet_aws_buf_str (&x->url)) {
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, 0, req->svc, req->action, NULL, NULL, NULL,
                          "out of memory building an AWS request");
    return -1;
  }
  Pallet_aws_sha256_hex (req->body ? req->body : "", req->body ? req->body_len : 0,
                         x->payload_hash);
  return 0;
}

/* Signs this attempt (at the current, skew-corrected time) and returns its
 * header list, or NULL with the client error set. */
static struct curl_slist *
sign_request (struct send *x)
{
  struct Pallet_aws_client *c = x->c;
  const struct Pallet_aws_request *req = x->req;
  char amz_date[17];
  time_t t = time (NULL) + c->clock_offset;
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
  struct Pallet_aws_hdr sh[4];
  size_t nsh = 0;
  sh[nsh++] = (struct Pallet_aws_hdr){ "host", x->host };
  if (req->content_type)
    sh[nsh++] = (struct Pallet_aws_hdr){ "content-type", req->content_type };
  if (req->target)
    sh[nsh++] = (struct Pallet_aws_hdr){ "x-amz-target", req->target };
  struct Pallet_aws_sigv4_in in = {
    .method = req->method,
    .path = x->path.data,
    .query = req->query,
    .headers = sh,
    .nheaders = nsh,
    .payload_hash = x->payload_hash,
    .access_key_id = c->r.access_key_id,
    .secret_access_key = c->r.secret_access_key,
    .session_token = c->r.session_token,
    .region = c->r.region,
    .service = x->svc,
    .amz_date = amz_date,
    .normalize_path = true,
    .key_cache = &c->key_cache,
  };
  struct Pallet_aws_sigv4_out sig;
  if (Pallet_aws_sigv4_sign (&in, &sig) < 0) {
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, x->attempt, req->svc, req->action, NULL, NULL, NULL,
                          "cannot sign the AWS %s %s request (out of memory)", x->svc, req->action);
    return NULL;
  }
  struct curl_slist *hl = NULL, *tmp;
  struct Pallet_aws_buf hb = { 0 };
  bool hl_ok = true;
#define ADDH(...)                                                            \
  do {                                                                       \
    hb.len = 0;                                                              \
    Pallet_aws_buf_printf (&hb, __VA_ARGS__);                                \
    tmp = Pallet_aws_buf_str (&hb) ? curl_slist_append (hl, hb.data) : NULL; \
    if (tmp)                                                                 \
      hl = tmp;                                                              \
    else                                                                     \
      hl_ok = false;                                                         \
  } while (0)
  ADDH ("Host: %s", x->host);
  ADDH ("X-Amz-Date: %s", amz_date);
  if (c->r.session_token)
    ADDH ("X-Amz-Security-Token: %s", c->r.session_token);
  if (req->content_type)
    ADDH ("Content-Type: %s", req->content_type);
  if (req->accept)
    ADDH ("Accept: %s", req->accept);
  if (req->target)
    ADDH ("X-Amz-Target: %s", req->target);
  ADDH ("Authorization: %s", sig.authorization);
  ADDH ("Expect:");
#undef ADDH
  if (hb.data)
    OPENSSL_cleanse (hb.data, hb.cap);
  Pallet_aws_buf_free (&hb);
  Pallet_aws_sigv4_out_free (&sig);
  if (!hl_ok) {
    curl_slist_free_all (hl);
    Pallet_aws_set_error (c, PALLET_E_NOMEM, 0, x->attempt, req->svc, req->action, NULL, NULL, NULL,
                          "out of memory building AWS request headers");
    return NULL;
  }
  return hl;
}

/* One HTTP exchange into a fresh resp; sets x->cc, status and elapsed. */
static void
perform_request (struct send *x, struct curl_slist *hl, struct Pallet_aws_resp *resp)
{
  struct Pallet_aws_client *c = x->c;
  const struct Pallet_aws_request *req = x->req;
  CURL *h = c->curl;
  Pallet_aws_buf_free (&resp->body);
  memset (resp, 0, sizeof *resp);
  resp->cap = c->cfg.max_response_bytes;
  resp->sink = req->sink;
  resp->sink_size = req->sink_size;
  if (req->sink && req->sink_sha256) {
    if (!c->sink_md)
      c->sink_md = EVP_MD_CTX_new ();
    if (c->sink_md && EVP_DigestInit_ex (c->sink_md, EVP_sha256 (), NULL))
      resp->sink_md = c->sink_md; /* else the check hashes the sink itself */
  }

  curl_easy_setopt (h, CURLOPT_URL, x->url.data);
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, hl);
  if (strcmp (req->method, "POST") == 0) {
    curl_easy_setopt (h, CURLOPT_POST, 1L);
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (req->body ? req->body_len : 0));
  }
  else
    curl_easy_setopt (h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, resp);
  x->errbuf[0] = '\0';
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, x->errbuf);

  long t0 = now_ms ();
  x->cc = curl_easy_perform (h);
  x->elapsed = now_ms () - t0;
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, NULL);
  x->status = 0;
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->cc != CURLE_OK && !resp->too_large)
    x->status = 0; /* a reset mid-body is no response */
  resp->status = x->status;
}

/* What the attempt's outcome means: 1 success, 0 a failure (x->kind says
 * whether it may be retried, x->fstatus its status), -1 a final failure
 * with the client error set. */
static int
classify_response (struct send *x, struct Pallet_aws_resp *resp)
{
  struct Pallet_aws_client *c = x->c;
  const struct Pallet_aws_request *req = x->req;
  long status = x->status;
  x->code[0] = x->msg[0] = '\0';
  x->kind = PALLET_AWS_NO_RETRY;
  x->fstatus = PALLET_E_FAILED;

  if (x->cc == CURLE_ABORTED_BY_CALLBACK) {
    Pallet_aws_set_error (c, PALLET_E_CANCELLED, 0, x->attempt, req->svc, req->action, "Cancelled",
                          "cancelled during the transfer", NULL, NULL);
    return -1;
  }
  if (resp->too_large) {
    Pallet_aws_set_error (c, PALLET_E_FAILED, status, x->attempt, req->svc, req->action,
                          "ResponseTooLarge", NULL, resp->request_id,
                          "AWS %s %s in region %s: the response is larger than the %zu-byte "
                          "limit; raise the provider setting max-response-bytes or narrow the "
                          "request (filters, MaxResults)",
                          x->svc, req->action, c->r.region,
                          resp->sink && status / 100 == 2 ? resp->sink_size : resp->cap);
    return -1;
  }
  if (x->cc != CURLE_OK) {
    CURLcode cc = x->cc;
    x->kind = Pallet_aws_classify (cc, 0, NULL);
    snprintf (x->code, sizeof x->code, "%s",
              cc == CURLE_OPERATION_TIMEDOUT ? "RequestTimeout" : "NetworkError");
    snprintf (x->msg, sizeof x->msg, "%s (%s)", x->errbuf[0] ? x->errbuf : curl_easy_strerror (cc),
              x->ep);
    x->fstatus = cc == CURLE_OPERATION_TIMEDOUT   ? PALLET_E_TIMEOUT
                 : x->kind != PALLET_AWS_NO_RETRY ? PALLET_E_TRANSIENT
                                                  : PALLET_E_FAILED;
    if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE
        || cc == CURLE_SSL_CERTPROBLEM) {
      Pallet_aws_set_error (c, PALLET_E_FAILED, 0, x->attempt, req->svc, req->action,
                            "TLSVerificationFailed", x->msg, NULL,
                            "AWS %s endpoint %s failed TLS verification: %s; fix the "
                            "endpoint URL or give the CA that signed its certificate "
                            "(ca_bundle, the Secret's ca.crt); insecure skips the check "
                            "and is not recommended",
                            x->svc, x->ep, x->msg);
      return -1;
    }
  }
  else if (status < 200 || status >= 300) {
    char *code = NULL, *message = NULL;
    parse_error_body (resp, &code, &message);
    x->kind = Pallet_aws_classify (CURLE_OK, status, code);
    snprintf (x->code, sizeof x->code, "%s", code ? code : "");
    snprintf (x->msg, sizeof x->msg, "%s", message ? message : "");
    if (!code && !message)
      snprintf (x->msg, sizeof x->msg, "HTTP %ld with no AWS error in the body", status);
    x->fstatus = Pallet_aws_status_of_code (code, status);
    free (code);
    free (message);
  }
  else if (req->check) {
    int r = req->check (c, resp, req->check_opaque, x->code, sizeof x->code, x->msg, sizeof x->msg);
    if (r != 0) /* r > 0: retryable, permanent once attempts run out */
      x->kind = r > 0 ? PALLET_AWS_RETRY_TRANSIENT : PALLET_AWS_NO_RETRY;
  }

  Pallet_aws_log (c, PALLET_LOG_DEBUG,
                  "%s %s attempt %d/%d: %s%ld request-id %s%s%s "
                  "%ld ms, %zu bytes",
                  x->svc, req->action, x->attempt, c->max_attempts,
                  x->cc == CURLE_OK ? "HTTP " : "no response, curl ",
                  x->cc == CURLE_OK ? status : (long) x->cc,
                  resp->request_id[0] ? resp->request_id : "-", x->code[0] ? " code " : "", x->code,
                  x->elapsed, resp->sink && status / 100 == 2 ? resp->sink_len : resp->body.len);
  return x->cc == CURLE_OK && status >= 200 && status < 300 && !x->code[0] ? 1 : 0;
}

/* Refused for clock skew: learns the offset from the response's Date, so
 * the next attempt signs with the service's time.  true if it did. */
static bool
fix_clock_skew (struct send *x, struct Pallet_aws_resp *resp)
{
  struct Pallet_aws_client *c = x->c;
  if (!is_skew_error (x->code) || !resp->date[0] || x->attempt >= c->max_attempts)
    return false;
  time_t server = curl_getdate (resp->date, NULL);
  long off = server > 0 ? (long) (server - time (NULL)) : 0;
  if (server <= 0 || (off - c->clock_offset <= 240 && c->clock_offset - off <= 240))
    return false;
  Pallet_aws_log (c, PALLET_LOG_WARNING,
                  "%s %s: the local clock is %ld s off the "
                  "service's (%s); signing with the service's time from now on; fix "
                  "this machine's clock (NTP)",
                  x->svc, x->req->action, -off, x->code);
  c->clock_offset = off;
  return true;
}

/* After a failed attempt: 0 to try again (after the backoff), -1 with the
 * client error set when it is final, out of quota or cancelled. */
static int
backoff (struct send *x, struct Pallet_aws_resp *resp, int *taken_total)
{
  struct Pallet_aws_client *c = x->c;
  const struct Pallet_aws_request *req = x->req;
  if (x->kind == PALLET_AWS_NO_RETRY || x->attempt == c->max_attempts) {
    Pallet_aws_set_error (c, x->fstatus, x->status, x->attempt, req->svc, req->action, x->code,
                          x->msg, resp->request_id, NULL);
    return -1;
  }
  int taken;
  if (!Pallet_aws_quota_acquire (&c->quota, x->kind, &taken)) {
    Pallet_aws_set_error (c, x->fstatus, x->status, x->attempt, req->svc, req->action, x->code,
                          x->msg, resp->request_id, NULL);
    Pallet_aws_log (c, PALLET_LOG_WARNING,
                    "%s %s: the client's retry quota is used up; "
                    "not retrying",
                    x->svc, req->action);
    return -1;
  }
  *taken_total += taken;
  long delay = Pallet_aws_backoff_ms (x->attempt - 1, c->backoff_base_ms, c->backoff_max_ms,
                                      Pallet_aws_random ());
  Pallet_aws_log (c, PALLET_LOG_DEBUG, "%s %s: retrying in %ld ms (%s)", x->svc, req->action, delay,
                  x->code[0] ? x->code : "error");
  if (!sleep_ms (c, delay)) {
    Pallet_aws_set_error (c, PALLET_E_CANCELLED, x->status, x->attempt, req->svc, req->action,
                          "Cancelled", "cancelled while waiting to retry", resp->request_id, NULL);
    return -1;
  }
  return 0;
}

int
Pallet_aws_send (struct Pallet_aws_client *c, const struct Pallet_aws_request *req,
                 struct Pallet_aws_resp *resp)
{
  struct send x = {
    .c = c, .req = req, .svc = Pallet_aws_service_name (req->svc), .ep = c->r.endpoint[req->svc]
  };
  int taken_total = 0, ret = -1;
  bool skew_fixed = false;

  clear_error (c);
  if (Pallet_aws_creds_refresh (c) < 0 || build_request (&x) < 0)
    goto out;
  for (x.attempt = 1; x.attempt <= c->max_attempts; x.attempt++) {
    if (cancelled (c)) {
      Pallet_aws_set_error (c, PALLET_E_CANCELLED, 0, x.attempt - 1, req->svc, req->action,
                            "Cancelled", "cancelled before the request was sent", NULL, NULL);
      goto out;
    }
    struct curl_slist *hl = sign_request (&x);
    if (!hl)
      goto out;
    perform_request (&x, hl, resp);
    curl_slist_free_all (hl);
    int r = classify_response (&x, resp);
    if (r < 0)
      goto out;
    if (r > 0) {
      Pallet_aws_quota_release (&c->quota, taken_total);
      ret = 0;
      goto out;
    }
    if (!skew_fixed && fix_clock_skew (&x, resp)) {
      skew_fixed = true;
      continue;
    }
    if (backoff (&x, resp, &taken_total) < 0)
      goto out;
  }
out:
  if (ret < 0)
    Pallet_aws_buf_free (&resp->body);
  Pallet_aws_buf_free (&x.path);
  Pallet_aws_buf_free (&x.url);
  return ret;
}
