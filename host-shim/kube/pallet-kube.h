/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_kube: a small Kubernetes API client over libcurl + jansson, for
 * the host's cluster mode (`pallet migrate --apply`) and the EC2
 * provider's conversion-only plans (PVCs made by someone else).  A static
 * library; nothing of it is exported from the programs and modules that
 * link it.
 *
 * The bearer token is sent only in the Authorization header; it is never
 * logged, never put in an error message, and wiped when freed.  TLS is
 * verified (the given CA, else the system's) unless insecure is set.
 * Functions return a pallet_status and, on error, a malloc'd *errmsg that
 * names the URL, the verb and resource, the problem and the fix. */
#ifndef PALLET_KUBE_H
#define PALLET_KUBE_H

#include <stddef.h>
#include <jansson.h>

struct Pallet_kube_config {
  const char *api_url;       /* "https://api.cluster:6443" (http:// allowed for tests) */
  const char *token;         /* bearer token, or NULL */
  const char *ca_file;       /* PEM CA bundle file, or NULL: system CAs */
  const char *ca_pem;        /* PEM CAs in memory (instead of ca_file), or NULL */
  int insecure;              /* skip TLS verification */
  long timeout_ms;           /* 0: 60 s per request */
  size_t max_response_bytes; /* 0: 64 MiB per response */
  /* Client certificate and key (PEM, in memory), or NULL. */
  const char *client_cert_pem, *client_key_pem;
  /* Where each came from, for the fixes in error messages; NULL: the EC2
   * provider's settings ("setting kube-api-url", "the Secret's kubeToken",
   * "the Secret's kube-ca.crt"). */
  const char *url_source, *token_source, *ca_source;
};

struct Pallet_kube;

/* NULL with *errmsg (malloc'd) on bad config or out of memory. */
struct Pallet_kube *Pallet_kube_new (const struct Pallet_kube_config *cfg, char **errmsg);
void Pallet_kube_free (struct Pallet_kube *k);
/* The API server's URL (no trailing '/'). */
const char *Pallet_kube_url (const struct Pallet_kube *k);

/* GETs path (e.g. "/api/v1/namespaces/NS/persistentvolumeclaims") with
 * ?labelSelector=..&limit=.. and follows metadata.continue; appends every
 * item (object) to items. */
int Pallet_kube_list (struct Pallet_kube *k, const char *path, const char *label_selector,
                      int limit, json_t *items, char **errmsg);

/* Appends the items of a List document (the JSON of `kubectl get ... -o
 * json`, or one page of the API) to items; *next (if next) is its
 * metadata.continue or NULL (borrowed from doc).  Returns 0, or -1 with
 * *errmsg (malloc'd) when doc is not a List of objects. */
int Pallet_kube_list_items (const json_t *doc, json_t *items, const char **next, char **errmsg);

/* The PVCs of namespace ns for a conversion-only plan: from list_file
 * (the JSON of `kubectl get pvc -n NS -o json`; the message names the
 * setting pvc-list-file) when it is set, else from the API through k, one
 * list per label selector in selectors (NULL-terminated; a selector
 * cannot OR two keys) or, with none, every PVC of the namespace.  Appends
 * them to items (a PVC matching two selectors appears twice). */
int Pallet_kube_list_pvcs (struct Pallet_kube *k, const char *list_file, const char *ns,
                           const char *const *selectors, json_t *items, char **errmsg);

/* The same from the API at kc (a client opened and closed for the call). */
int Pallet_kube_list_pvcs_api (const struct Pallet_kube_config *kc, const char *ns,
                               const char *const *selectors, json_t *items, char **msg);

/* One request: method ("GET", "POST", "PATCH", "PUT", "DELETE"), path,
 * query (already escaped, without '?', or NULL), body (or NULL) of
 * content_type.  Retries transport errors, 429 and 5xx a few times.
 * *out (if out) is the JSON response of a 2xx.  HTTP 404 is
 * PALLET_E_NOT_FOUND, 409 PALLET_E_CONFLICT, 401/403 PALLET_E_AUTH. */
int Pallet_kube_request (struct Pallet_kube *k, const char *method, const char *path,
                         const char *query, const char *content_type, const char *body,
                         json_t **out, char **errmsg);

/* --- objects ------------------------------------------------------------ */

/* The REST path of an object's collection (name NULL) or of the object,
 * from apiVersion and kind ("v1"/"Pod" -> /api/v1/namespaces/NS/pods).
 * ns is ignored for cluster-scoped kinds.  NULL with *errmsg for a kind
 * this client does not know. */
char *Pallet_kube_path (const char *api_version, const char *kind, const char *ns, const char *name,
                        char **errmsg);
/* Whether kind is namespaced (1), cluster-scoped (0) or unknown (-1). */
int Pallet_kube_namespaced (const char *api_version, const char *kind);

/* Creates obj (metadata.namespace, else ns); if it exists already, GETs
 * it instead.  *live (if live) is the object in the cluster, *created
 * (if created) 1 when this call made it. */
int Pallet_kube_create_or_get (struct Pallet_kube *k, const json_t *obj, const char *ns,
                               json_t **live, int *created, char **errmsg);
/* Server-side apply (PATCH application/apply-patch+yaml,
 * fieldManager=field_manager, force): creates or updates obj. */
int Pallet_kube_apply (struct Pallet_kube *k, const json_t *obj, const char *ns,
                       const char *field_manager, json_t **live, char **errmsg);
int Pallet_kube_get (struct Pallet_kube *k, const char *api_version, const char *kind,
                     const char *ns, const char *name, json_t **live, char **errmsg);
/* JSON merge patch (application/merge-patch+json). */
int Pallet_kube_patch (struct Pallet_kube *k, const char *api_version, const char *kind,
                       const char *ns, const char *name, const json_t *patch, json_t **live,
                       char **errmsg);
/* Deletes with propagationPolicy Background; an object already gone is
 * PALLET_E_NOT_FOUND. */
int Pallet_kube_delete (struct Pallet_kube *k, const char *api_version, const char *kind,
                        const char *ns, const char *name, char **errmsg);
/* The last tail_lines lines of a Pod's container log (container NULL: the
 * only one), as text in *text (malloc'd). */
int Pallet_kube_pod_log (struct Pallet_kube *k, const char *ns, const char *name,
                         const char *container, int tail_lines, char **text, char **errmsg);

/* A Pod's outcome so far, from its status (pointers borrowed from pod). */
struct Pallet_kube_pod_state {
  const char *phase;     /* Pending, Running, Succeeded, Failed, Unknown ("" if none) */
  const char *container; /* the container the rest is about, or NULL */
  const char *reason;    /* waiting/terminated reason (ErrImagePull, Error, ...) or NULL */
  const char *message;   /* its message, or NULL */
  int exit_code;         /* terminated exit code, or -1 */
  int restarts;
};
void Pallet_kube_pod_state (const json_t *pod, struct Pallet_kube_pod_state *st);

/* --- where the cluster is --------------------------------------------- */

/* A resolved cluster: everything Pallet_kube_new needs, plus the
 * default namespace.  Strings malloc'd; Pallet_kube_target_free wipes the
 * token and key. */
struct Pallet_kube_target {
  char *api_url, *token, *ca_file, *ca_pem, *client_cert_pem, *client_key_pem;
  char *namespace_; /* the context's (or the service account's) namespace, or NULL */
  char *context;    /* the kubeconfig context used, or NULL */
  char *source;     /* "kubeconfig FILE (context C)", "in-cluster service account", ... */
  int insecure;
};
void Pallet_kube_target_free (struct Pallet_kube_target *t);
/* The config for Pallet_kube_new (pointers borrowed from t). */
void Pallet_kube_target_config (const struct Pallet_kube_target *t, struct Pallet_kube_config *c);

/* Reads a kubeconfig file (YAML or JSON): context (NULL: current-context)
 * -> cluster (server, certificate-authority(-data),
 * insecure-skip-tls-verify) and user (token, tokenFile,
 * client-certificate(-data), client-key(-data)); relative paths are
 * relative to the file.  exec and auth-provider users are refused. */
int Pallet_kube_load_kubeconfig (const char *path, const char *context,
                                 struct Pallet_kube_target *t, char **errmsg);
/* The service account of a Pod: DIR/token, DIR/ca.crt, DIR/namespace and
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.  dir NULL:
 * $PALLET_KUBE_SERVICEACCOUNT_DIR, else
 * /var/run/secrets/kubernetes.io/serviceaccount. */
int Pallet_kube_load_in_cluster (const char *dir, struct Pallet_kube_target *t, char **errmsg);
/* kubectl's order: kubeconfig (if given), else $KUBECONFIG (its first
 * file that exists), else the in-cluster service account when
 * $KUBERNETES_SERVICE_HOST is set, else ~/.kube/config. */
int Pallet_kube_resolve (const char *kubeconfig, const char *context, struct Pallet_kube_target *t,
                         char **errmsg);

#endif
