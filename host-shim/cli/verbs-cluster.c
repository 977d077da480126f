/* SPDX-License-Identifier: Apache-2.0 */
/* pallet archive plan NAME, pallet delete plan|provider|mapping NAME:
 * kubectl-mtv's verbs that change a cluster's Forklift objects, through
 * host-shim/kube (the cluster of --kubeconfig, $KUBECONFIG, the Pod's
 * service account or ~/.kube/config, in kubectl's order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet/host.h"
#include "cli-verbs.h"
#include "verbs-common.h"
#ifdef HAVE_PALLET_KUBE
#include "pallet-kube.h"
#endif

#define FORKLIFT_PATH "/apis/forklift.konveyor.io/v1beta1/namespaces/"

/* The Forklift resources, as their REST collections. */
static const struct {
  const char *word, *plural, *kind;
} forklift[] = {
  { "plan", "plans", "Plan" },
  { "plans", "plans", "Plan" },
  { "provider", "providers", "Provider" },
  { "providers", "providers", "Provider" },
  { "networkmap", "networkmaps", "NetworkMap" },
  { "storagemap", "storagemaps", "StorageMap" },
  { "mapping", NULL, "NetworkMap or StorageMap" },
  { "mappings", NULL, "NetworkMap or StorageMap" },
};

static int
which (const char *word)
{
  for (size_t i = 0; word && i < sizeof forklift / sizeof forklift[0]; i++)
    if (!strcmp (word, forklift[i].word))
      return (int) i;
  return -1;
}

#ifdef HAVE_PALLET_KUBE
struct cluster {
  struct Pallet_kube_target t;
  struct Pallet_kube *k;
  char ns[254];
};

static int
connect (struct vcommon *c, struct cluster *cl)
{
  char *err = NULL;
  memset (cl, 0, sizeof *cl);
  if (Pallet_kube_resolve (c->kubeconfig, NULL, &cl->t, &err) != PALLET_OK) {
    fprintf (stderr, "pallet %s: needs a cluster: %s\n", c->verb, err ? err : "none found");
    free (err);
    return PALLET_EXIT_USAGE;
  }
  struct Pallet_kube_config cfg;
  Pallet_kube_target_config (&cl->t, &cfg);
  if (!(cl->k = Pallet_kube_new (&cfg, &err))) {
    fprintf (stderr, "pallet %s: %s: %s\n", c->verb, cl->t.source ? cl->t.source : "cluster",
             err ? err : "cannot use it");
    free (err);
    Pallet_kube_target_free (&cl->t);
    return PALLET_EXIT_INPUT;
  }
  snprintf (cl->ns, sizeof cl->ns, "%s",
            c->ns              ? c->ns
            : cl->t.namespace_ ? cl->t.namespace_
                               : "default");
  return 0;
}

static void
disconnect (struct cluster *cl)
{
  Pallet_kube_free (cl->k);
  Pallet_kube_target_free (&cl->t);
}

/* One request on NS/PLURAL/NAME; prints the outcome. */
static int
request (struct vcommon *c, struct cluster *cl, const char *method, const char *plural,
         const char *kind, const char *name, const char *body, int quiet_404)
{
  char path[1024], *err = NULL;
  snprintf (path, sizeof path, FORKLIFT_PATH "%s/%s/%s", cl->ns, plural, name);
  int st = Pallet_kube_request (cl->k, method, path, NULL,
                                body ? "application/merge-patch+json" : NULL, body, NULL, &err);
  if (st != PALLET_OK && !(quiet_404 && st == PALLET_E_NOT_FOUND))
    fprintf (stderr, "pallet %s: %s %s/%s: %s\n", c->verb, kind, cl->ns, name,
             st == PALLET_E_NOT_FOUND ? "not found in the cluster (check the name and -n)"
             : err                    ? err
                                      : "failed");
  free (err);
  return st;
}

static int
act (struct vcommon *c, int archive, int r, const char *name)
{
  struct cluster cl;
  int rc = connect (c, &cl);
  if (rc)
    return rc;
  int st;
  if (archive)
    st = request (c, &cl, "PATCH", "plans", "Plan", name, "{\"spec\":{\"archived\":true}}", 0);
  else if (forklift[r].plural)
    st = request (c, &cl, "DELETE", forklift[r].plural, forklift[r].kind, name, NULL, 0);
  else {
    /* A mapping: the NetworkMap or the StorageMap of that name. */
    int a = request (c, &cl, "DELETE", "networkmaps", "NetworkMap", name, NULL, 1);
    int b = request (c, &cl, "DELETE", "storagemaps", "StorageMap", name, NULL, 1);
    st = a == PALLET_OK || b == PALLET_OK ? PALLET_OK : a != PALLET_E_NOT_FOUND ? a : b;
    if (a == PALLET_E_NOT_FOUND && b == PALLET_E_NOT_FOUND)
      fprintf (stderr, "pallet delete: no NetworkMap or StorageMap %s/%s in the cluster\n", cl.ns,
               name);
  }
  if (st == PALLET_OK)
    printf ("%s %s/%s %s\n", archive ? "plan" : forklift[r].word, cl.ns, name,
            archive ? "archived" : "deleted");
  disconnect (&cl);
  return st == PALLET_OK ? 0 : st == PALLET_E_NOT_FOUND ? PALLET_EXIT_INPUT : PALLET_EXIT_VM_FAILED;
}
#endif

#ifdef HAVE_PALLET_KUBE
json_t *
Pallet_vc_cluster_set (struct vcommon *c)
{
  static const char *const plurals[] = { "plans", "providers", "networkmaps", "storagemaps" };
  static const char *const kinds[] = { "Plan", "Provider", "NetworkMap", "StorageMap" };
  struct cluster cl;
  if (connect (c, &cl) != 0)
    return NULL;
  json_t *items = json_array (), *set = NULL;
  char *err = NULL;
  for (size_t i = 0; i < sizeof plurals / sizeof plurals[0]; i++) {
    char path[512];
    snprintf (path, sizeof path, FORKLIFT_PATH "%s/%s", cl.ns, plurals[i]);
    size_t before = json_array_size (items);
    if (Pallet_kube_list (cl.k, path, NULL, 500, items, &err) != PALLET_OK) {
      fprintf (stderr, "pallet %s: %s\n", c->verb, err ? err : "cannot list");
      free (err);
      goto out;
    }
    /* A list's items carry no kind or apiVersion: the list's are theirs. */
    for (size_t j = before; j < json_array_size (items); j++) {
      json_t *o = json_array_get (items, j);
      json_object_set_new (o, "apiVersion", json_string ("forklift.konveyor.io/v1beta1"));
      json_object_set_new (o, "kind", json_string (kinds[i]));
    }
  }
  /* The shape of pallet_plan_read's resource set. */
  set = json_pack ("{s:[s],s:[]}", "files", cl.t.source ? cl.t.source : "cluster", "resources");
  size_t i;
  json_t *o;
  json_array_foreach (items, i, o)
    json_array_append_new (json_object_get (set, "resources"),
                           json_pack ("{s:s,s:i,s:s,s:O}", "file", "cluster", "document",
                                      (int) i + 1, "path", "", "object", o));
out:
  json_decref (items);
  disconnect (&cl);
  return set;
}
#endif

static int
cluster_verb (int argc, char **argv, const char *verb, int archive)
{
  struct vcommon c = { .verb = verb };
  int rc = Pallet_vc_parse (&c, argc, argv, NULL, NULL, NULL);
  free (c.files);
  if (rc)
    return rc < 0 ? 0 : rc;
  static const char *const words[] = { "plan",       "provider",   "mapping",
                                       "networkmap", "storagemap", NULL };
  const char *res = optind < argc ? argv[optind] : NULL;
  int r = which (res);
  if (r < 0 || (archive && strcmp (forklift[r].plural ? forklift[r].plural : "", "plans"))) {
    const char *near = res ? Pallet_vc_nearest (res, words) : NULL;
    if (archive)
      return Pallet_vc_usage (&c, "write 'pallet archive plan NAME'%s%s%s", res ? " (got '" : "",
                              res ? res : "", res ? "')" : "");
    return near ? Pallet_vc_usage (&c, "unknown resource '%s'; did you mean '%s'?", res, near)
                : Pallet_vc_usage (&c, "give what to delete: plan, provider or mapping NAME");
  }
  if (optind + 2 != argc)
    return optind + 2 < argc ? Pallet_vc_usage (&c, "unexpected argument '%s'", argv[optind + 2])
                             : Pallet_vc_usage (&c, "give the %s's NAME", forklift[r].word);
#ifdef HAVE_PALLET_KUBE
  return act (&c, archive, r, argv[optind + 1]);
#else
  fprintf (stderr,
           "pallet %s: needs a cluster, and this pallet was built without its Kubernetes "
           "client (host-shim/kube)\n",
           verb);
  return PALLET_EXIT_USAGE;
#endif
}

int
Pallet_cli_archive (int argc, char **argv)
{
  return cluster_verb (argc, argv, "archive", 1);
}

int
Pallet_cli_delete (int argc, char **argv)
{
  return cluster_verb (argc, argv, "delete", 0);
}
