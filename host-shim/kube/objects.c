/* SPDX-License-Identifier: Apache-2.0 */
/* Objects: REST paths from apiVersion and kind, create-or-get, server-side
 * apply, get, merge patch, delete, Pod logs and a Pod's outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pallet/provider.h>
#include "kube-internal.h"

#define set_err Pallet_kube_set_err

/* The kinds Pallet creates or reads.  Discovery would find any; a fixed
 * table keeps a misspelt kind an error instead of a guessed path. */
static const struct {
  const char *group, *kind, *resource;
  int namespaced;
} kinds[] = {
  { "", "Pod", "pods", 1 },
  { "", "PersistentVolumeClaim", "persistentvolumeclaims", 1 },
  { "", "PersistentVolume", "persistentvolumes", 0 },
  { "", "Secret", "secrets", 1 },
  { "", "ConfigMap", "configmaps", 1 },
  { "", "ServiceAccount", "serviceaccounts", 1 },
  { "", "Namespace", "namespaces", 0 },
  { "", "Event", "events", 1 },
  { "", "Node", "nodes", 0 },
  { "storage.k8s.io", "StorageClass", "storageclasses", 0 },
  { "kubevirt.io", "VirtualMachine", "virtualmachines", 1 },
  { "kubevirt.io", "VirtualMachineInstance", "virtualmachineinstances", 1 },
  { "cdi.kubevirt.io", "DataVolume", "datavolumes", 1 },
  { "k8s.cni.cncf.io", "NetworkAttachmentDefinition", "network-attachment-definitions", 1 },
};

static int
find_kind (const char *api_version, const char *kind)
{
  if (!api_version || !kind)
    return -1;
  const char *slash = strchr (api_version, '/');
  size_t gl = slash ? (size_t) (slash - api_version) : 0;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp (kinds[i].kind, kind) && strlen (kinds[i].group) == gl
        && !strncmp (kinds[i].group, api_version, gl))
      return (int) i;
  return -1;
}

int
Pallet_kube_namespaced (const char *api_version, const char *kind)
{
  int i = find_kind (api_version, kind);
  return i < 0 ? -1 : kinds[i].namespaced;
}

char *
Pallet_kube_path (const char *api_version, const char *kind, const char *ns, const char *name,
                  char **errmsg)
{
  int i = find_kind (api_version, kind);
  if (i < 0) {
    set_err (errmsg,
             "Kubernetes object of apiVersion \"%s\" kind \"%s\": not a kind this client "
             "knows (Pod, PersistentVolumeClaim, PersistentVolume, Secret, ConfigMap, "
             "VirtualMachine, DataVolume, ...); check the manifest's apiVersion and kind",
             api_version ? api_version : "", kind ? kind : "");
    return NULL;
  }
  if (kinds[i].namespaced && (!ns || !*ns)) {
    set_err (errmsg, "%s %s: no namespace; set metadata.namespace or pass one", kind,
             name ? name : "");
    return NULL;
  }
  char *p = NULL;
  if (asprintf (&p, "%s%s%s%s%s%s%s", *kinds[i].group ? "/apis/" : "/api/", api_version,
                kinds[i].namespaced ? "/namespaces/" : "", kinds[i].namespaced ? ns : "", "/",
                kinds[i].resource, "")
      < 0)
    p = NULL;
  if (p && name) {
    char *q = NULL;
    if (asprintf (&q, "%s/%s", p, name) < 0)
      q = NULL;
    free (p);
    p = q;
  }
  if (!p)
    set_err (errmsg, "out of memory");
  return p;
}

static const char *
meta_str (const json_t *obj, const char *key)
{
  return json_string_value (json_object_get (json_object_get (obj, "metadata"), key));
}

/* The object's path (collection or object) and namespace. */
static char *
obj_path (const json_t *obj, const char *ns, int with_name, char **errmsg)
{
  const char *av = json_string_value (json_object_get (obj, "apiVersion"));
  const char *kind = json_string_value (json_object_get (obj, "kind"));
  const char *name = meta_str (obj, "name");
  const char *ons = meta_str (obj, "namespace");
  if (!name || !*name) {
    set_err (errmsg, "%s without metadata.name: give every object a name", kind ? kind : "object");
    return NULL;
  }
  return Pallet_kube_path (av, kind, ons && *ons ? ons : ns, with_name ? name : NULL, errmsg);
}

/* obj with metadata.namespace set to ns when it has none (namespaced). */
static json_t *
with_namespace (const json_t *obj, const char *ns)
{
  json_t *c = json_deep_copy (obj);
  json_t *md = json_object_get (c, "metadata");
  if (c && json_is_object (md) && !meta_str (c, "namespace") && ns
      && Pallet_kube_namespaced (json_string_value (json_object_get (c, "apiVersion")),
                                 json_string_value (json_object_get (c, "kind")))
             == 1)
    json_object_set_new (md, "namespace", json_string (ns));
  return c;
}

int
Pallet_kube_create_or_get (struct Pallet_kube *k, const json_t *obj, const char *ns, json_t **live,
                           int *created, char **errmsg)
{
  if (created)
    *created = 0;
  if (live)
    *live = NULL;
  char *coll = obj_path (obj, ns, 0, errmsg);
  if (!coll)
    return PALLET_E_INVALID;
  json_t *c = with_namespace (obj, ns);
  char *body = c ? json_dumps (c, JSON_COMPACT) : NULL;
  json_decref (c);
  int st = body
               ? Pallet_kube_request (k, "POST", coll, NULL, "application/json", body, live, errmsg)
               : PALLET_E_NOMEM;
  free (body);
  free (coll);
  if (st == PALLET_OK && created)
    *created = 1;
  if (st == PALLET_E_CONFLICT) {
    /* AlreadyExists: an earlier run made it (or someone else did). */
    free (*errmsg);
    *errmsg = NULL;
    char *p = obj_path (obj, ns, 1, errmsg);
    st = p ? Pallet_kube_request (k, "GET", p, NULL, NULL, NULL, live, errmsg) : PALLET_E_INVALID;
    free (p);
  }
  return st;
}

int
Pallet_kube_apply (struct Pallet_kube *k, const json_t *obj, const char *ns,
                   const char *field_manager, json_t **live, char **errmsg)
{
  char *p = obj_path (obj, ns, 1, errmsg);
  if (!p)
    return PALLET_E_INVALID;
  char *fm = Pallet_kube_escape (k, field_manager ? field_manager : "pallet");
  char *q = NULL;
  if (!fm || asprintf (&q, "fieldManager=%s&force=true", fm) < 0)
    q = NULL;
  json_t *c = with_namespace (obj, ns);
  /* JSON is YAML: the apply body needs no YAML emitter. */
  char *body = c ? json_dumps (c, JSON_COMPACT) : NULL;
  json_decref (c);
  int st = q && body ? Pallet_kube_request (k, "PATCH", p, q, "application/apply-patch+yaml", body,
                                            live, errmsg)
                     : PALLET_E_NOMEM;
  free (body);
  free (q);
  free (fm);
  free (p);
  return st;
}

int
Pallet_kube_get (struct Pallet_kube *k, const char *api_version, const char *kind, const char *ns,
                 const char *name, json_t **live, char **errmsg)
{
  char *p = Pallet_kube_path (api_version, kind, ns, name, errmsg);
  if (!p)
    return PALLET_E_INVALID;
  int st = Pallet_kube_request (k, "GET", p, NULL, NULL, NULL, live, errmsg);
  free (p);
  return st;
}

int
Pallet_kube_patch (struct Pallet_kube *k, const char *api_version, const char *kind, const char *ns,
                   const char *name, const json_t *patch, json_t **live, char **errmsg)
{
  char *p = Pallet_kube_path (api_version, kind, ns, name, errmsg);
  if (!p)
    return PALLET_E_INVALID;
  char *body = json_dumps (patch, JSON_COMPACT);
  int st = body ? Pallet_kube_request (k, "PATCH", p, NULL, "application/merge-patch+json", body,
                                       live, errmsg)
                : PALLET_E_NOMEM;
  free (body);
  free (p);
  return st;
}

int
Pallet_kube_delete (struct Pallet_kube *k, const char *api_version, const char *kind,
                    const char *ns, const char *name, char **errmsg)
{
  char *p = Pallet_kube_path (api_version, kind, ns, name, errmsg);
  if (!p)
    return PALLET_E_INVALID;
  int st = Pallet_kube_request (
      k, "DELETE", p, NULL, "application/json",
      "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Background\"}",
      NULL, errmsg);
  free (p);
  return st;
}

int
Pallet_kube_pod_log (struct Pallet_kube *k, const char *ns, const char *name, const char *container,
                     int tail_lines, char **text, char **errmsg)
{
  *text = NULL;
  char *p = Pallet_kube_path ("v1", "Pod", ns, name, errmsg), *path = NULL, *q = NULL;
  char *ce = container ? Pallet_kube_escape (k, container) : NULL;
  if (!p)
    return PALLET_E_INVALID;
  int st = PALLET_E_NOMEM;
  if (asprintf (&path, "%s/log", p) >= 0
      && asprintf (&q, "tailLines=%d%s%s", tail_lines > 0 ? tail_lines : 20,
                   ce ? "&container=" : "", ce ? ce : "")
             >= 0) {
    struct Pallet_kube_req rq = { "GET", path, q, NULL, NULL, 1 };
    st = Pallet_kube_do (k, &rq, NULL, text, errmsg);
  }
  else
    q = NULL;
  free (ce);
  free (q);
  free (path);
  free (p);
  return st;
}

/* Prefers a terminated container that failed, then a waiting one with a
 * reason, then any terminated one. */
static int
container_rank (const json_t *cs)
{
  const json_t *s = json_object_get (cs, "state");
  const json_t *t = json_object_get (s, "terminated"), *w = json_object_get (s, "waiting");
  if (t && json_integer_value (json_object_get (t, "exitCode")) != 0)
    return 3;
  if (w && json_object_get (w, "reason"))
    return 2;
  return t ? 1 : 0;
}

static void
scan_statuses (const json_t *arr, const json_t **best, int *rank)
{
  size_t i;
  const json_t *cs;
  json_array_foreach (arr, i, cs) {
    int r = container_rank (cs);
    if (r > *rank) {
      *rank = r;
      *best = cs;
    }
  }
}

void
Pallet_kube_pod_state (const json_t *pod, struct Pallet_kube_pod_state *st)
{
  memset (st, 0, sizeof *st);
  st->exit_code = -1;
  const json_t *s = json_object_get (pod, "status");
  st->phase = json_string_value (json_object_get (s, "phase"));
  if (!st->phase)
    st->phase = "";
  const json_t *best = NULL;
  int rank = 0;
  scan_statuses (json_object_get (s, "initContainerStatuses"), &best, &rank);
  scan_statuses (json_object_get (s, "containerStatuses"), &best, &rank);
  if (!best)
    best = json_array_get (json_object_get (s, "containerStatuses"), 0);
  st->reason = json_string_value (json_object_get (s, "reason"));
  st->message = json_string_value (json_object_get (s, "message"));
  if (!best)
    return;
  st->container = json_string_value (json_object_get (best, "name"));
  st->restarts = (int) json_integer_value (json_object_get (best, "restartCount"));
  const json_t *cst = json_object_get (best, "state");
  const json_t *t = json_object_get (cst, "terminated"), *w = json_object_get (cst, "waiting");
  const json_t *d = t ? t : w;
  if (t)
    st->exit_code = (int) json_integer_value (json_object_get (t, "exitCode"));
  if (d && json_object_get (d, "reason")) {
    st->reason = json_string_value (json_object_get (d, "reason"));
    st->message = json_string_value (json_object_get (d, "message"));
  }
}
