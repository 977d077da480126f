/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes API transport: one libcurl handle per client, bearer
 * token auth, JSON bodies parsed by jansson, errors that name the verb and
 * resource that failed; lists paged with limit/continue (the same parser
 * reads a saved `kubectl get -o json` file). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pallet/provider.h>
#include "kube-internal.h"

#define KUBE_DEFAULT_TIMEOUT_MS 60000
#define KUBE_DEFAULT_MAX        (64u << 20)
#define KUBE_MAX_PAGES          10000
#define KUBE_ATTEMPTS           3

struct Pallet_kube {
  CURL *curl;
  char *url;  /* without trailing '/' */
  char *auth; /* "Authorization: Bearer ..." or NULL; wiped at free */
  char *ca_file;
  char *url_source, *token_source, *ca_source;
  size_t max;
};

struct body {
  char *data;
  size_t len, max;
  int too_large;
};

void
Pallet_kube_set_err (char **errmsg, const char *fmt, ...)
{
  va_list ap;
  if (!errmsg)
    return;
  va_start (ap, fmt);
  if (vasprintf (errmsg, fmt, ap) < 0)
    *errmsg = NULL;
  va_end (ap);
}
#define set_err Pallet_kube_set_err

static size_t
write_cb (char *p, size_t size, size_t n, void *ud)
{
  struct body *b = ud;
  size_t len = size * n;
  if (b->len + len > b->max) {
    b->too_large = 1;
    return 0;
  }
  char *d = realloc (b->data, b->len + len + 1);
  if (!d)
    return 0;
  memcpy (d + b->len, p, len);
  b->len += len;
  d[b->len] = '\0';
  b->data = d;
  return len;
}

static int
set_blob (CURL *h, CURLoption opt, const char *pem)
{
  struct curl_blob b = { (void *) pem, strlen (pem), CURL_BLOB_COPY };
  return curl_easy_setopt (h, opt, &b) == CURLE_OK ? 0 : -1;
}

/* TLS: verification, the CA, the client certificate. */
static int
setup_tls (struct Pallet_kube *k, const struct Pallet_kube_config *cfg, char **errmsg)
{
  CURL *h = k->curl;
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
  if (k->ca_file)
    curl_easy_setopt (h, CURLOPT_CAINFO, k->ca_file);
  else if (cfg->ca_pem && *cfg->ca_pem && set_blob (h, CURLOPT_CAINFO_BLOB, cfg->ca_pem) != 0) {
    set_err (errmsg, "this libcurl cannot take CA certificates from memory "
                     "(CURLOPT_CAINFO_BLOB) for the Kubernetes API client");
    return -1;
  }
  if (cfg->client_cert_pem && cfg->client_key_pem
      && (set_blob (h, CURLOPT_SSLCERT_BLOB, cfg->client_cert_pem) != 0
          || set_blob (h, CURLOPT_SSLKEY_BLOB, cfg->client_key_pem) != 0)) {
    set_err (errmsg, "this libcurl cannot take a client certificate from memory "
                     "(CURLOPT_SSLCERT_BLOB) for the Kubernetes API client");
    return -1;
  }
  curl_easy_setopt (h, CURLOPT_SSLCERTTYPE, "PEM");
  return 0;
}

static int
copy_sources (struct Pallet_kube *k, const struct Pallet_kube_config *cfg)
{
  k->url_source = strdup (cfg->url_source ? cfg->url_source : "setting kube-api-url");
  k->token_source = strdup (cfg->token_source ? cfg->token_source : "the Secret's kubeToken");
  k->ca_source = strdup (cfg->ca_source ? cfg->ca_source : "the Secret's kube-ca.crt");
  return k->url_source && k->token_source && k->ca_source ? 0 : -1;
}

struct Pallet_kube *
Pallet_kube_new (const struct Pallet_kube_config *cfg, char **errmsg)
{
  if (errmsg)
    *errmsg = NULL;
  const char *u = cfg ? cfg->api_url : NULL;
  if (!u || (strncmp (u, "https://", 8) && strncmp (u, "http://", 7))) {
    set_err (errmsg,
             "%s \"%s\" is not an https:// URL; set it to the cluster's API server, e.g. "
             "https://api.cluster.example:6443 "
             "(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')",
             cfg && cfg->url_source ? cfg->url_source : "setting kube-api-url", u ? u : "");
    return NULL;
  }
  struct Pallet_kube *k = calloc (1, sizeof *k);
  if (!k || !(k->url = strdup (u)) || copy_sources (k, cfg) != 0)
    goto oom;
  for (size_t l = strlen (k->url); l > 0 && k->url[l - 1] == '/'; l--)
    k->url[l - 1] = '\0';
  if (cfg->token && *cfg->token) {
    if (strpbrk (cfg->token, "\r\n")) {
      set_err (errmsg,
               "the bearer token (%s) contains a line break; store the token alone "
               "(no trailing newline)",
               k->token_source);
      Pallet_kube_free (k);
      return NULL;
    }
    if (asprintf (&k->auth, "Authorization: Bearer %s", cfg->token) < 0) {
      k->auth = NULL;
      goto oom;
    }
  }
  if (cfg->ca_file && !(k->ca_file = strdup (cfg->ca_file)))
    goto oom;
  k->max = cfg->max_response_bytes ? cfg->max_response_bytes : KUBE_DEFAULT_MAX;
  k->curl = curl_easy_init ();
  if (!k->curl) {
    set_err (errmsg, "cannot create a libcurl handle for the Kubernetes API client");
    Pallet_kube_free (k);
    return NULL;
  }
  CURL *h = k->curl;
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L); /* never send the token elsewhere */
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt (h, CURLOPT_TIMEOUT_MS,
                    cfg->timeout_ms > 0 ? cfg->timeout_ms : (long) KUBE_DEFAULT_TIMEOUT_MS);
  if (setup_tls (k, cfg, errmsg) != 0) {
    Pallet_kube_free (k);
    return NULL;
  }
  curl_easy_setopt (h, CURLOPT_USERAGENT, "pallet-kube/0.2");
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, write_cb);
  return k;
oom:
  set_err (errmsg, "out of memory creating the Kubernetes API client");
  Pallet_kube_free (k);
  return NULL;
}

void
Pallet_kube_free (struct Pallet_kube *k)
{
  if (!k)
    return;
  if (k->curl)
    curl_easy_cleanup (k->curl);
  if (k->auth) {
    OPENSSL_cleanse (k->auth, strlen (k->auth));
    free (k->auth);
  }
  free (k->url);
  free (k->ca_file);
  free (k->url_source);
  free (k->token_source);
  free (k->ca_source);
  free (k);
}

const char *
Pallet_kube_url (const struct Pallet_kube *k)
{
  return k->url;
}

int
Pallet_kube_list_items (const json_t *doc, json_t *items, const char **next, char **errmsg)
{
  if (next)
    *next = NULL;
  const json_t *arr = json_object_get (doc, "items");
  if (!json_is_object (doc) || !json_is_array (arr)) {
    set_err (errmsg, "not a Kubernetes List: expected an object with an \"items\" array "
                     "(the output of kubectl get ... -o json)");
    return -1;
  }
  size_t i;
  json_t *it;
  json_array_foreach (arr, i, it) {
    if (!json_is_object (it) || !json_is_object (json_object_get (it, "metadata"))) {
      set_err (errmsg, "item %zu of the List is not an object with metadata", i);
      return -1;
    }
    json_array_append (items, it);
  }
  const char *c =
      json_string_value (json_object_get (json_object_get (doc, "metadata"), "continue"));
  if (next && c && *c)
    *next = c;
  return 0;
}

/* The API's own message from a Status body, or "". */
static const char *
status_message (const json_t *j)
{
  const char *m = json_string_value (json_object_get (j, "message"));
  return m ? m : "";
}

/* One request on the handle; the header list (holding the token) is
 * wiped and freed before this returns. */
static int
perform (struct Pallet_kube *k, const struct Pallet_kube_req *rq, const char *url, struct body *b,
         char *errbuf, CURLcode *ccp, char **errmsg)
{
  struct curl_slist *hl = NULL, *t;
  char ct[128];
  snprintf (ct, sizeof ct, "Content-Type: %s", rq->content_type ? rq->content_type : "");
  const char *lines[] = { rq->text ? "Accept: */*" : "Accept: application/json",
                          rq->body ? ct : NULL, k->auth };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    if (!lines[i])
      continue;
    if (!(t = curl_slist_append (hl, lines[i]))) {
      curl_slist_free_all (hl);
      set_err (errmsg, "out of memory");
      return PALLET_E_NOMEM;
    }
    hl = t;
  }
  CURL *h = k->curl;
  curl_easy_setopt (h, CURLOPT_URL, url);
  curl_easy_setopt (h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, strcmp (rq->method, "GET") ? rq->method : NULL);
  if (rq->body) {
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, rq->body);
    curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE, (long) strlen (rq->body));
  }
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, b);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, errbuf);
  *ccp = curl_easy_perform (h);
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt (h, CURLOPT_POSTFIELDS, NULL);
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, NULL);
  /* The list holds a copy of the Authorization line: wipe it. */
  for (t = hl; t; t = t->next)
    OPENSSL_cleanse (t->data, strlen (t->data));
  curl_slist_free_all (hl);
  return PALLET_OK;
}

/* "create pods in namespace vms", from the method and the path. */
static void
what_of (const struct Pallet_kube_req *rq, char *out, size_t n)
{
  const char *m = rq->method, *p = rq->path;
  /* /api/v1[/namespaces/NS]/RES[/NAME[/SUB]] or /apis/G/V/... */
  int skip = !strncmp (p, "/apis/", 6) ? 3 : !strncmp (p, "/api/", 5) ? 2 : 0;
  char segs[6][96] = { "" };
  int nseg = 0;
  for (int i = 0; *p && nseg < 6;) {
    while (*p == '/')
      p++;
    size_t l = strcspn (p, "/?");
    if (l == 0)
      break;
    if (i++ >= skip)
      snprintf (segs[nseg++], sizeof segs[0], "%.*s", (int) (l < 95 ? l : 95), p);
    p += l;
  }
  int o = !strcmp (segs[0], "namespaces") && segs[2][0] ? 2 : 0;
  const char *ns = o ? segs[1] : "", *res = segs[o], *name = segs[o + 1], *sub = segs[o + 2];
  const char *verb = !strcmp (m, "POST")     ? "create"
                     : !strcmp (m, "PATCH")  ? "patch"
                     : !strcmp (m, "PUT")    ? "update"
                     : !strcmp (m, "DELETE") ? "delete"
                     : name[0]               ? "get"
                                             : "list";
  if (snprintf (out, n, "%s %s%s%s%s%s", verb, res, sub[0] ? "/" : "", sub,
                ns[0] ? " in namespace " : "", ns)
      < 0)
    out[0] = '\0';
}

/* The status of a response: transport, size and HTTP errors, each with its fix. */
static int
http_status (const struct Pallet_kube *k, const struct Pallet_kube_req *rq, CURLcode cc,
             const char *errbuf, long status, json_t *j, int too_large, char **errmsg)
{
  char what[640];
  what_of (rq, what, sizeof what);
  const char *sm = status_message (j);
  if (too_large) {
    set_err (errmsg, "Kubernetes API %s (%s): a response is larger than %zu bytes", k->url, what,
             k->max);
    return PALLET_E_FAILED;
  }
  if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE
      || cc == CURLE_SSL_CERTPROBLEM) {
    set_err (errmsg,
             "Kubernetes API %s failed TLS verification (%s); put the cluster's CA (PEM) in "
             "%s, or turn verification off there (insecure-skip-tls-verify; not recommended)",
             k->url, errbuf[0] ? errbuf : curl_easy_strerror (cc), k->ca_source);
    return PALLET_E_FAILED;
  }
  if (cc != CURLE_OK) {
    set_err (errmsg,
             "Kubernetes API %s is unreachable: cannot connect (%s); check %s and the network "
             "path to the API server",
             k->url, errbuf[0] ? errbuf : curl_easy_strerror (cc), k->url_source);
    return cc == CURLE_OPERATION_TIMEDOUT ? PALLET_E_TIMEOUT : PALLET_E_TRANSIENT;
  }
  if (status == 401) {
    set_err (errmsg,
             "Kubernetes API %s: unauthorised to %s (HTTP 401 %s): %s; set %s to a valid bearer "
             "token of an account that may %s",
             k->url, what, *sm ? sm : "Unauthorized",
             k->auth ? "the server rejected the token" : "no token was sent", k->token_source,
             what);
    return PALLET_E_AUTH;
  }
  if (status == 403) {
    set_err (errmsg,
             "Kubernetes API %s: forbidden to %s (HTTP 403: %s); give the account of %s the "
             "right to %s",
             k->url, what, sm, k->token_source, what);
    return PALLET_E_AUTH;
  }
  if (status == 404) {
    set_err (errmsg, "Kubernetes API %s: not found: %s (HTTP 404: %s)", k->url, what, sm);
    return PALLET_E_NOT_FOUND;
  }
  if (status == 409) {
    set_err (errmsg, "Kubernetes API %s: conflict: %s (HTTP 409: %s)", k->url, what, sm);
    return PALLET_E_CONFLICT;
  }
  if (status == 410) {
    set_err (errmsg, "Kubernetes API %s: %s: expired (HTTP 410: %s); run the step again", k->url,
             what, sm);
    return PALLET_E_TRANSIENT;
  }
  if (status == 429 || status >= 500) {
    set_err (errmsg, "Kubernetes API %s answered HTTP %ld to %s (%s); retry later", k->url, status,
             what, sm);
    return PALLET_E_TRANSIENT;
  }
  if (status < 200 || status >= 300) {
    set_err (errmsg, "Kubernetes API %s refused to %s: HTTP %ld (%s)", k->url, what, status, sm);
    return status == 400 || status == 422 ? PALLET_E_INVALID : PALLET_E_FAILED;
  }
  if (!j && !rq->text) {
    set_err (errmsg, "Kubernetes API %s returned a body that is not JSON to %s; check %s", k->url,
             what, k->url_source);
    return PALLET_E_FAILED;
  }
  return PALLET_OK;
}

static int
once (struct Pallet_kube *k, const struct Pallet_kube_req *rq, const char *url, json_t **doc,
      char **text, char **errmsg)
{
  struct body b = { NULL, 0, k->max, 0 };
  char errbuf[CURL_ERROR_SIZE] = "";
  CURLcode cc = CURLE_OK;
  *doc = NULL;
  int st = perform (k, rq, url, &b, errbuf, &cc, errmsg);
  if (st != PALLET_OK)
    return st;
  long status = 0;
  curl_easy_getinfo (k->curl, CURLINFO_RESPONSE_CODE, &status);
  json_t *j = b.data ? json_loadb (b.data, b.len, 0, NULL) : NULL;
  st = http_status (k, rq, cc, errbuf, status, j, b.too_large, errmsg);
  if (st == PALLET_OK && rq->text && text) {
    *text = b.data ? b.data : strdup ("");
    b.data = NULL;
  }
  free (b.data);
  if (st == PALLET_OK)
    *doc = j;
  else
    json_decref (j);
  return st;
}

int
Pallet_kube_do (struct Pallet_kube *k, const struct Pallet_kube_req *rq, json_t **out, char **text,
                char **errmsg)
{
  if (errmsg)
    *errmsg = NULL;
  if (out)
    *out = NULL;
  char *url = NULL;
  if (asprintf (&url, "%s%s%s%s", k->url, rq->path, rq->query && *rq->query ? "?" : "",
                rq->query ? rq->query : "")
      < 0) {
    set_err (errmsg, "out of memory");
    return PALLET_E_NOMEM;
  }
  int st = PALLET_OK;
  json_t *doc = NULL;
  /* A dropped connection or a busy API server: try again. */
  for (int attempt = 1; attempt <= KUBE_ATTEMPTS; attempt++) {
    st = once (k, rq, url, &doc, text, errmsg);
    if ((st != PALLET_E_TRANSIENT && st != PALLET_E_TIMEOUT) || attempt == KUBE_ATTEMPTS)
      break;
    if (errmsg) {
      free (*errmsg);
      *errmsg = NULL;
    }
    struct timespec ts = { 0, 250000000L * attempt };
    nanosleep (&ts, NULL);
  }
  free (url);
  if (out)
    *out = doc;
  else
    json_decref (doc);
  return st;
}

int
Pallet_kube_request (struct Pallet_kube *k, const char *method, const char *path, const char *query,
                     const char *content_type, const char *body, json_t **out, char **errmsg)
{
  struct Pallet_kube_req rq = { method, path, query, content_type, body, 0 };
  return Pallet_kube_do (k, &rq, out, NULL, errmsg);
}

char *
Pallet_kube_escape (struct Pallet_kube *k, const char *s)
{
  char *e = curl_easy_escape (k->curl, s, 0);
  char *r = e ? strdup (e) : NULL;
  curl_free (e);
  return r;
}

int
Pallet_kube_list (struct Pallet_kube *k, const char *path, const char *label_selector, int limit,
                  json_t *items, char **errmsg)
{
  if (errmsg)
    *errmsg = NULL;
  char *cont = NULL;
  int st = PALLET_OK;
  for (int page = 0; page < KUBE_MAX_PAGES; page++) {
    char *sel = label_selector ? Pallet_kube_escape (k, label_selector) : NULL;
    char *ce = cont ? Pallet_kube_escape (k, cont) : NULL;
    char *q = NULL;
    if (asprintf (&q, "limit=%d%s%s%s%s", limit > 0 ? limit : 500, sel ? "&labelSelector=" : "",
                  sel ? sel : "", ce ? "&continue=" : "", ce ? ce : "")
        < 0)
      q = NULL;
    free (sel);
    free (ce);
    if (!q) {
      set_err (errmsg, "out of memory");
      st = PALLET_E_NOMEM;
      break;
    }
    json_t *doc = NULL;
    st = Pallet_kube_request (k, "GET", path, q, NULL, NULL, &doc, errmsg);
    free (q);
    if (st != PALLET_OK)
      break;
    const char *next = NULL;
    char *perr = NULL;
    if (Pallet_kube_list_items (doc, items, &next, &perr) < 0) {
      set_err (errmsg, "Kubernetes API %s%s: %s", k->url, path, perr ? perr : "bad list");
      free (perr);
      json_decref (doc);
      st = PALLET_E_FAILED;
      break;
    }
    if (next && cont && !strcmp (next, cont)) {
      set_err (errmsg, "Kubernetes API %s%s returned the same continue token twice", k->url, path);
      json_decref (doc);
      st = PALLET_E_FAILED;
      break;
    }
    free (cont);
    cont = next ? strdup (next) : NULL;
    json_decref (doc);
    if (!cont)
      break;
  }
  free (cont);
  return st;
}
