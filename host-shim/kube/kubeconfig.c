/* SPDX-License-Identifier: Apache-2.0 */
/* Where the cluster is: a kubeconfig file (read with the plan library's
 * libyaml reader), or the service account of the Pod we run in. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pallet/provider.h>
#include "kube-internal.h"
#include "pallet-plan.h"

#define set_err Pallet_kube_set_err
#define SA_DIR  "/var/run/secrets/kubernetes.io/serviceaccount"

static void
wipe_free (char *s)
{
  if (s) {
    OPENSSL_cleanse (s, strlen (s));
    free (s);
  }
}

void
Pallet_kube_target_free (struct Pallet_kube_target *t)
{
  if (!t)
    return;
  wipe_free (t->token);
  wipe_free (t->client_key_pem);
  free (t->api_url);
  free (t->ca_file);
  free (t->ca_pem);
  free (t->client_cert_pem);
  free (t->namespace_);
  free (t->context);
  free (t->source);
  memset (t, 0, sizeof *t);
}

void
Pallet_kube_target_config (const struct Pallet_kube_target *t, struct Pallet_kube_config *c)
{
  memset (c, 0, sizeof *c);
  c->api_url = t->api_url;
  c->token = t->token;
  c->ca_file = t->ca_file;
  c->ca_pem = t->ca_pem;
  c->insecure = t->insecure;
  c->client_cert_pem = t->client_cert_pem;
  c->client_key_pem = t->client_key_pem;
  c->url_source = c->token_source = c->ca_source = t->source;
}

/* A whole small file, NUL-terminated, trailing newlines cut; NULL with errno. */
static char *
slurp (const char *path)
{
  FILE *f = fopen (path, "re");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *n = realloc (buf, cap = len + 4096 + 1);
      if (!n)
        break;
      buf = n;
    }
    size_t r = fread (buf + len, 1, 4096, f);
    len += r;
    if (r < 4096)
      break;
  }
  fclose (f);
  if (!buf)
    return NULL;
  buf[len] = '\0';
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    buf[--len] = '\0';
  return buf;
}

/* base64 (certificate-authority-data and friends) to text. */
static char *
unbase64 (const char *b64)
{
  size_t n = strlen (b64);
  unsigned char *out = malloc (n / 4 * 3 + 4);
  if (!out)
    return NULL;
  int r = EVP_DecodeBlock (out, (const unsigned char *) b64, (int) n);
  if (r < 0 || n % 4) {
    free (out);
    return NULL;
  }
  /* EVP_DecodeBlock counts the padding as zero bytes. */
  while (n > 0 && b64[n - 1] == '=' && r > 0) {
    n--;
    r--;
  }
  out[r] = '\0';
  return (char *) out;
}

static const json_t *
named (const json_t *cfg, const char *list, const char *name, const char *member)
{
  size_t i;
  const json_t *e;
  json_array_foreach (json_object_get (cfg, list), i, e) {
    const char *n = json_string_value (json_object_get (e, "name"));
    if (n && name && !strcmp (n, name))
      return json_object_get (e, member);
  }
  return NULL;
}

/* A path in a kubeconfig, relative to the file's directory. */
static char *
rel_path (const char *kubeconfig, const char *p)
{
  char *r = NULL;
  if (p[0] == '/')
    return strdup (p);
  const char *slash = strrchr (kubeconfig, '/');
  if (asprintf (&r, "%.*s%s", slash ? (int) (slash - kubeconfig + 1) : 0, kubeconfig, p) < 0)
    r = NULL;
  return r;
}

/* data (base64) or file: the text of a credential field pair. */
static int
data_or_file (const char *kc, const json_t *o, const char *field, char **out, char **errmsg)
{
  char key[64];
  snprintf (key, sizeof key, "%s-data", field);
  const char *d = json_string_value (json_object_get (o, key));
  const char *f = json_string_value (json_object_get (o, field));
  *out = NULL;
  if (d && *d) {
    if (!(*out = unbase64 (d))) {
      set_err (errmsg, "kubeconfig %s: %s is not base64; write it as `base64 -w0 FILE`", kc, key);
      return -1;
    }
  }
  else if (f && *f) {
    char *p = rel_path (kc, f);
    *out = p ? slurp (p) : NULL;
    if (!*out) {
      set_err (errmsg, "kubeconfig %s: %s %s: cannot read: %s", kc, field, p ? p : f,
               strerror (errno));
      free (p);
      return -1;
    }
    free (p);
  }
  return 0;
}

static int
read_user (const char *path, const char *uname, const json_t *user, struct Pallet_kube_target *t,
           char **errmsg)
{
  if (json_object_get (user, "exec") || json_object_get (user, "auth-provider")) {
    set_err (errmsg,
             "kubeconfig %s: user \"%s\" gets its credentials from %s, which pallet does not "
             "run; use a user with a token (e.g. a service account's: kubectl create token SA)",
             path, uname, json_object_get (user, "exec") ? "an exec plugin" : "an auth-provider");
    return -1;
  }
  const char *tok = json_string_value (json_object_get (user, "token"));
  const char *tf = json_string_value (json_object_get (user, "tokenFile"));
  if (tok && *tok)
    t->token = strdup (tok);
  else if (tf && *tf) {
    char *p = rel_path (path, tf);
    t->token = p ? slurp (p) : NULL;
    if (!t->token) {
      set_err (errmsg, "kubeconfig %s: user \"%s\": tokenFile %s: cannot read: %s", path, uname,
               p ? p : tf, strerror (errno));
      free (p);
      return -1;
    }
    free (p);
  }
  if (data_or_file (path, user, "client-certificate", &t->client_cert_pem, errmsg) != 0
      || data_or_file (path, user, "client-key", &t->client_key_pem, errmsg) != 0)
    return -1;
  return 0;
}

static int
read_cluster (const char *path, const char *cname, const json_t *cl, struct Pallet_kube_target *t,
              char **errmsg)
{
  const char *server = json_string_value (json_object_get (cl, "server"));
  if (!server || !*server) {
    set_err (errmsg, "kubeconfig %s: cluster \"%s\" has no server: set clusters[].cluster.server",
             path, cname);
    return -1;
  }
  t->api_url = strdup (server);
  t->insecure = json_is_true (json_object_get (cl, "insecure-skip-tls-verify"));
  const char *caf = json_string_value (json_object_get (cl, "certificate-authority"));
  if (json_string_value (json_object_get (cl, "certificate-authority-data")))
    return data_or_file (path, cl, "certificate-authority", &t->ca_pem, errmsg);
  if (caf && *caf && !(t->ca_file = rel_path (path, caf))) {
    set_err (errmsg, "out of memory");
    return -1;
  }
  return 0;
}

static int
from_kubeconfig (const char *path, const json_t *cfg, const char *context,
                 struct Pallet_kube_target *t, char **errmsg)
{
  const char *cur = json_string_value (json_object_get (cfg, "current-context"));
  const char *ctxname = context && *context ? context : cur;
  if (!ctxname || !*ctxname) {
    set_err (errmsg, "kubeconfig %s has no current-context: pass --context NAME", path);
    return -1;
  }
  const json_t *ctx = named (cfg, "contexts", ctxname, "context");
  if (!json_is_object (ctx)) {
    set_err (errmsg,
             "kubeconfig %s has no context \"%s\"; see `kubectl config get-contexts "
             "--kubeconfig %s`",
             path, ctxname, path);
    return -1;
  }
  const char *cname = json_string_value (json_object_get (ctx, "cluster"));
  const char *uname = json_string_value (json_object_get (ctx, "user"));
  const char *ns = json_string_value (json_object_get (ctx, "namespace"));
  const json_t *cl = named (cfg, "clusters", cname, "cluster");
  const json_t *user = named (cfg, "users", uname, "user");
  if (!json_is_object (cl)) {
    set_err (errmsg, "kubeconfig %s: context \"%s\" names cluster \"%s\", which is not in clusters",
             path, ctxname, cname ? cname : "");
    return -1;
  }
  if (uname && *uname && !json_is_object (user)) {
    set_err (errmsg, "kubeconfig %s: context \"%s\" names user \"%s\", which is not in users", path,
             ctxname, uname);
    return -1;
  }
  t->context = strdup (ctxname);
  if (ns && *ns)
    t->namespace_ = strdup (ns);
  if (asprintf (&t->source, "kubeconfig %s (context %s)", path, ctxname) < 0)
    t->source = NULL;
  if (read_cluster (path, cname, cl, t, errmsg) != 0
      || (user && read_user (path, uname, user, t, errmsg) != 0))
    return -1;
  return 0;
}

int
Pallet_kube_load_kubeconfig (const char *path, const char *context, struct Pallet_kube_target *t,
                             char **errmsg)
{
  memset (t, 0, sizeof *t);
  if (errmsg)
    *errmsg = NULL;
  if (access (path, R_OK) != 0) {
    set_err (errmsg, "kubeconfig %s: cannot read: %s; pass --kubeconfig FILE", path,
             strerror (errno));
    return PALLET_E_NOT_FOUND;
  }
  char *err = NULL;
  const char *paths[] = { path };
  json_t *set = pallet_plan_read (paths, 1, &err);
  const json_t *cfg =
      json_object_get (json_array_get (json_object_get (set, "resources"), 0), "object");
  const char *kind = json_string_value (json_object_get (cfg, "kind"));
  int st = PALLET_OK;
  if (!cfg) {
    set_err (errmsg, "kubeconfig %s: %s", path, err ? err : "empty");
    st = PALLET_E_INVALID;
  }
  else if (kind && strcmp (kind, "Config")) {
    set_err (errmsg, "kubeconfig %s is a %s, not a kubeconfig (kind: Config)", path, kind);
    st = PALLET_E_INVALID;
  }
  else if (from_kubeconfig (path, cfg, context, t, errmsg) != 0) {
    st = PALLET_E_INVALID;
    Pallet_kube_target_free (t);
  }
  free (err);
  json_decref (set);
  return st;
}

int
Pallet_kube_load_in_cluster (const char *dir, struct Pallet_kube_target *t, char **errmsg)
{
  memset (t, 0, sizeof *t);
  if (errmsg)
    *errmsg = NULL;
  if (!dir)
    dir = getenv ("PALLET_KUBE_SERVICEACCOUNT_DIR");
  if (!dir || !*dir)
    dir = SA_DIR;
  const char *host = getenv ("KUBERNETES_SERVICE_HOST");
  const char *port = getenv ("KUBERNETES_SERVICE_PORT");
  if (!host || !*host) {
    set_err (errmsg, "not in a Pod: KUBERNETES_SERVICE_HOST is not set; pass --kubeconfig FILE");
    return PALLET_E_NOT_FOUND;
  }
  char *tp = NULL, *cp = NULL, *np = NULL;
  if (asprintf (&tp, "%s/token", dir) < 0 || asprintf (&cp, "%s/ca.crt", dir) < 0
      || asprintf (&np, "%s/namespace", dir) < 0) {
    set_err (errmsg, "out of memory");
    return PALLET_E_NOMEM;
  }
  int st = PALLET_OK;
  t->token = slurp (tp);
  if (!t->token) {
    set_err (errmsg,
             "in-cluster service account: %s: cannot read: %s; mount the service account "
             "token (automountServiceAccountToken) or pass --kubeconfig FILE",
             tp, strerror (errno));
    st = PALLET_E_NOT_FOUND;
  }
  else {
    t->namespace_ = slurp (np);
    if (access (cp, R_OK) == 0)
      t->ca_file = strdup (cp);
    /* An IPv6 service address needs brackets in a URL. */
    int v6 = strchr (host, ':') != NULL;
    if (asprintf (&t->api_url, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
                  port && *port ? port : "443")
        < 0)
      t->api_url = NULL;
    if (asprintf (&t->source, "the in-cluster service account (%s)", dir) < 0)
      t->source = NULL;
  }
  free (tp);
  free (cp);
  free (np);
  if (st != PALLET_OK)
    Pallet_kube_target_free (t);
  return st;
}

int
Pallet_kube_resolve (const char *kubeconfig, const char *context, struct Pallet_kube_target *t,
                     char **errmsg)
{
  if (kubeconfig && *kubeconfig)
    return Pallet_kube_load_kubeconfig (kubeconfig, context, t, errmsg);
  const char *env = getenv ("KUBECONFIG");
  if (env && *env) {
    char *copy = strdup (env), *save = NULL;
    for (char *p = copy ? strtok_r (copy, ":", &save) : NULL; p; p = strtok_r (NULL, ":", &save))
      if (access (p, F_OK) == 0) {
        int st = Pallet_kube_load_kubeconfig (p, context, t, errmsg);
        free (copy);
        return st;
      }
    free (copy);
    if (errmsg)
      set_err (errmsg, "KUBECONFIG=%s: no such file; fix KUBECONFIG or pass --kubeconfig FILE",
               env);
    return PALLET_E_NOT_FOUND;
  }
  const char *host = getenv ("KUBERNETES_SERVICE_HOST");
  if (host && *host && !(context && *context))
    return Pallet_kube_load_in_cluster (NULL, t, errmsg);
  const char *home = getenv ("HOME");
  char *p = NULL;
  if (home && asprintf (&p, "%s/.kube/config", home) >= 0 && access (p, F_OK) == 0) {
    int st = Pallet_kube_load_kubeconfig (p, context, t, errmsg);
    free (p);
    return st;
  }
  free (p);
  memset (t, 0, sizeof *t);
  if (errmsg)
    set_err (errmsg, "no cluster to talk to: pass --kubeconfig FILE (or set KUBECONFIG), or run "
                     "in a Pod with a service account");
  return PALLET_E_NOT_FOUND;
}
