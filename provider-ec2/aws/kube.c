/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny Kubernetes API reader: GET lists with bearer-token auth, paged
 * with limit/continue, parsed by jansson (the same parser reads a saved
 * `kubectl get -o json` file). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pallet/provider.h>
#include "pallet-kube.h"

#define KUBE_DEFAULT_TIMEOUT_MS 60000
#define KUBE_DEFAULT_MAX        (64u << 20)
#define KUBE_MAX_PAGES          10000
#define KUBE_ATTEMPTS           3

struct Pallet_kube {
  CURL *curl;
  char *url;  /* without trailing '/' */
  char *auth; /* "Authorization: Bearer ..." or NULL; wiped at free */
  char *ca_file;
  size_t max;
};

struct body {
  char *data;
  size_t len, max;
  int too_large;
};

static void
set_err (char **errmsg, const char *fmt, ...)
{
  va_list ap;
  if (!errmsg)
    return;
  va_start (ap, fmt);
  if (vasprintf (errmsg, fmt, ap) < 0)
    *errmsg = NULL;
  va_end (ap);
}

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

struct Pallet_kube *
Pallet_kube_new (const struct Pallet_kube_config *cfg, char **errmsg)
{
  if (errmsg)
    *errmsg = NULL;
  const char *u = cfg ? cfg->api_url : NULL;
  if (!u || (strncmp (u, "https://", 8) && strncmp (u, "http://", 7))) {
    set_err (errmsg,
             "setting kube-api-url \"%s\" is not an https:// URL; set it to the "
             "cluster's API server, e.g. https://api.cluster.example:6443 "
             "(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')",
             u ? u : "");
    return NULL;
  }
  struct Pallet_kube *k = calloc (1, sizeof *k);
  if (!k)
    goto oom;
  k->url = strdup (u);
  if (!k->url)
    goto oom;
  for (size_t l = strlen (k->url); l > 0 && k->url[l - 1] == '/'; l--)
    k->url[l - 1] = '\0';
  if (cfg->token && *cfg->token) {
    if (strpbrk (cfg->token, "\r\n")) {
      set_err (errmsg, "the Secret's kubeToken contains a line break; store the bearer "
                       "token alone (no trailing newline)");
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
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
  curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
  if (k->ca_file)
    curl_easy_setopt (h, CURLOPT_CAINFO, k->ca_file);
  else if (cfg->ca_pem && *cfg->ca_pem) {
    struct curl_blob ca = { (void *) cfg->ca_pem, strlen (cfg->ca_pem), CURL_BLOB_COPY };
    if (curl_easy_setopt (h, CURLOPT_CAINFO_BLOB, &ca) != CURLE_OK) {
      set_err (errmsg, "this libcurl cannot take CA certificates from memory "
                       "(CURLOPT_CAINFO_BLOB) for the Kubernetes API client");
      Pallet_kube_free (k);
      return NULL;
    }
  }
  curl_easy_setopt (h, CURLOPT_USERAGENT, "pallet-kube/0.1");
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
  free (k);
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

/* The GET with the Accept (and Authorization) headers; the header list is
   wiped and freed before this returns. */
static int
perform_get (struct Pallet_kube *k, const char *url, struct body *b, char *errbuf, CURLcode *ccp,
             char **errmsg)
{
  struct curl_slist *hl = NULL, *t;
  if (!(t = curl_slist_append (hl, "Accept: application/json"))) {
    set_err (errmsg, "out of memory");
    return PALLET_E_NOMEM;
  }
  hl = t;
  if (k->auth) {
    if (!(t = curl_slist_append (hl, k->auth))) {
      curl_slist_free_all (hl);
      set_err (errmsg, "out of memory");
      return PALLET_E_NOMEM;
    }
    hl = t;
  }
  curl_easy_setopt (k->curl, CURLOPT_URL, url);
  curl_easy_setopt (k->curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt (k->curl, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt (k->curl, CURLOPT_WRITEDATA, b);
  curl_easy_setopt (k->curl, CURLOPT_ERRORBUFFER, errbuf);
  *ccp = curl_easy_perform (k->curl);
  curl_easy_setopt (k->curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt (k->curl, CURLOPT_ERRORBUFFER, NULL);
  /* The list holds a copy of the Authorization line: wipe it. */
  for (t = hl; t; t = t->next)
    OPENSSL_cleanse (t->data, strlen (t->data));
  curl_slist_free_all (hl);
  return PALLET_OK;
}

/* The status of a page: transport, size and HTTP errors, each with its fix. */
static int
page_status (const struct Pallet_kube *k, CURLcode cc, const char *errbuf, long status, json_t *j,
             int too_large, char **errmsg)
{
  int st = PALLET_OK;
  if (too_large) {
    set_err (errmsg,
             "Kubernetes API %s: a page is larger than %zu bytes; lower the page "
             "size or raise max-response-bytes",
             k->url, k->max);
    st = PALLET_E_FAILED;
  }
  else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE
           || cc == CURLE_SSL_CERTPROBLEM) {
    set_err (errmsg,
             "Kubernetes API %s failed TLS verification (%s); put the cluster's CA "
             "(PEM) in the Secret's kube-ca.crt, or set kube-insecure-skip-verify: true "
             "(not recommended)",
             k->url, errbuf[0] ? errbuf : curl_easy_strerror (cc));
    st = PALLET_E_FAILED;
  }
  else if (cc != CURLE_OK) {
    set_err (errmsg,
             "Kubernetes API %s is unreachable: %s; check kube-api-url and the "
             "network path to the API server",
             k->url, errbuf[0] ? errbuf : curl_easy_strerror (cc));
    st = cc == CURLE_OPERATION_TIMEDOUT ? PALLET_E_TIMEOUT : PALLET_E_TRANSIENT;
  }
  else if (status == 401) {
    set_err (errmsg, "Kubernetes API %s rejected the bearer token (HTTP 401 %s); %s", k->url,
             *status_message (j) ? status_message (j) : "Unauthorized",
             k->auth ? "set the Secret's kubeToken to a valid token of a service account "
                       "that may list persistentvolumeclaims in the target namespace"
                     : "the Secret has no kubeToken: add a bearer token of a service account that "
                       "may list persistentvolumeclaims in the target namespace");
    st = PALLET_E_AUTH;
  }
  else if (status == 403) {
    set_err (errmsg,
             "Kubernetes API %s: forbidden (HTTP 403: %s); give the kubeToken's "
             "service account get/list on persistentvolumeclaims in the target namespace",
             k->url, status_message (j));
    st = PALLET_E_AUTH;
  }
  else if (status == 404) {
    set_err (errmsg,
             "Kubernetes API %s: not found (HTTP 404: %s); check kube-api-url and "
             "that the plan's targetNamespace exists",
             k->url, status_message (j));
    st = PALLET_E_NOT_FOUND;
  }
  else if (status == 410) {
    set_err (errmsg,
             "Kubernetes API %s: the list's continue token expired (HTTP 410); "
             "run the step again",
             k->url);
    st = PALLET_E_TRANSIENT;
  }
  else if (status == 429 || status >= 500) {
    set_err (errmsg, "Kubernetes API %s answered HTTP %ld (%s); retry later", k->url, status,
             status_message (j));
    st = PALLET_E_TRANSIENT;
  }
  else if (status < 200 || status >= 300) {
    set_err (errmsg, "Kubernetes API %s answered HTTP %ld (%s)", k->url, status,
             status_message (j));
    st = PALLET_E_FAILED;
  }
  else if (!j) {
    set_err (errmsg,
             "Kubernetes API %s returned a body that is not JSON; check that "
             "kube-api-url is the API server",
             k->url);
    st = PALLET_E_FAILED;
  }
  return st;
}

static int
one_page (struct Pallet_kube *k, const char *url, json_t **doc, char **errmsg)
{
  struct body b = { NULL, 0, k->max, 0 };
  char errbuf[CURL_ERROR_SIZE] = "";
  CURLcode cc = CURLE_OK;
  *doc = NULL;
  int st = perform_get (k, url, &b, errbuf, &cc, errmsg);
  if (st != PALLET_OK)
    return st;
  long status = 0;
  curl_easy_getinfo (k->curl, CURLINFO_RESPONSE_CODE, &status);
  json_t *j = b.data ? json_loadb (b.data, b.len, 0, NULL) : NULL;
  st = page_status (k, cc, errbuf, status, j, b.too_large, errmsg);
  free (b.data);
  if (st == PALLET_OK)
    *doc = j;
  else
    json_decref (j);
  return st;
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
    char *sel = label_selector ? curl_easy_escape (k->curl, label_selector, 0) : NULL;
    char *ce = cont ? curl_easy_escape (k->curl, cont, 0) : NULL;
    char *url = NULL;
    if (asprintf (&url, "%s%s?limit=%d%s%s%s%s", k->url, path, limit > 0 ? limit : 500,
                  sel ? "&labelSelector=" : "", sel ? sel : "", ce ? "&continue=" : "",
                  ce ? ce : "")
        < 0)
      url = NULL;
    curl_free (sel);
    curl_free (ce);
    if (!url) {
      set_err (errmsg, "out of memory");
      st = PALLET_E_NOMEM;
      break;
    }
    json_t *doc = NULL;
    /* A dropped connection or a busy API server: try the page again. */
    for (int attempt = 1; attempt <= KUBE_ATTEMPTS; attempt++) {
      st = one_page (k, url, &doc, errmsg);
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
