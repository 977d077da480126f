/* SPDX-License-Identifier: Apache-2.0 */
/* pallet get plan|provider|mapping|inventory, pallet describe
 * plan|provider|mapping|vm, pallet inventory: kubectl-mtv's read verbs,
 * over Forklift YAML (-f) and Pallet's state dirs instead of a cluster. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pallet/host.h"
#include "cli-verbs.h"
#include "render.h"
#include "verbs-common.h"
#ifdef HAVE_PALLET_PLAN
#include "pallet-plan.h"
#endif

/* --kubeconfig (and no -f): read the cluster instead of files. */
static int
have_cluster (const struct vcommon *c)
{
#ifdef HAVE_PALLET_KUBE
  return c->kubeconfig && c->nfiles == 0;
#else
  (void) c;
  return 0;
#endif
}

static json_t *
load_set (struct vcommon *c)
{
#ifdef HAVE_PALLET_KUBE
  if (have_cluster (c))
    return Pallet_vc_cluster_set (c);
#endif
  return c->nfiles ? Pallet_vc_load (c) : NULL;
}

enum res { R_PLAN, R_PROVIDER, R_MAPPING, R_INVENTORY, R_VM, R_NONE };

static const char *const res_names[] = { "plan", "provider", "mapping", "inventory", "vm", NULL };

static enum res
resource (const char *w)
{
  static const struct {
    const char *word;
    enum res r;
  } words[] = {
    { "plan", R_PLAN },
    { "plans", R_PLAN },
    { "provider", R_PROVIDER },
    { "providers", R_PROVIDER },
    { "mapping", R_MAPPING },
    { "mappings", R_MAPPING },
    { "map", R_MAPPING },
    { "maps", R_MAPPING },
    { "networkmap", R_MAPPING },
    { "storagemap", R_MAPPING },
    { "inventory", R_INVENTORY },
    { "inv", R_INVENTORY },
    { "vm", R_VM },
    { "vms", R_VM },
  };
  for (size_t i = 0; w && i < sizeof words / sizeof words[0]; ++i)
    if (strcmp (w, words[i].word) == 0)
      return words[i].r;
  return R_NONE;
}

/* "unknown resource" with the nearest one, for the resources allowed. */
static int
bad_resource (struct vcommon *c, const char *w, const char *const *allowed)
{
  const char *near = w ? Pallet_vc_nearest (w, allowed) : NULL;
  char list[128] = "";
  for (size_t i = 0; allowed[i]; ++i)
    snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "", allowed[i]);
  if (!w)
    return Pallet_vc_usage (c, "give what to %s: %s", c->verb, list);
  if (near)
    return Pallet_vc_usage (c, "unknown resource '%s'; did you mean '%s'? (%s)", w, near, list);
  return Pallet_vc_usage (c, "unknown resource '%s'; expected %s", w, list);
}

/* ---- state dirs ---- */

static char *
state_dir_of (const struct vcommon *c, const char *plan_name)
{
  return c->state_dir ? strdup (c->state_dir) : pallet_default_state_dir (plan_name);
}

/* The state document of a plan ({"plan", "vms"}), or NULL if none. */
static json_t *
plan_state (const struct vcommon *c, const char *plan_name)
{
  char *dir = state_dir_of (c, plan_name);
  char *text = dir ? pallet_state_read (dir) : NULL;
  free (dir);
  json_t *j = text ? json_loads (text, 0, NULL) : NULL;
  free (text);
  return j;
}

/* "2 succeeded, 1 failed" from a state document, or "not started". */
static char *
status_summary (const json_t *state)
{
  if (!state)
    return strdup ("not started");
  json_t *counts = json_object ();
  size_t i;
  json_t *v;
  json_array_foreach (json_object_get (state, "vms"), i, v) {
    const char *s = json_string_value (json_object_get (v, "status"));
    s = s ? s : "pending";
    json_object_set_new (counts, s,
                         json_integer (json_integer_value (json_object_get (counts, s)) + 1));
  }
  char buf[256] = "";
  const char *k;
  json_object_foreach (counts, k, v)
    snprintf (buf + strlen (buf), sizeof buf - strlen (buf), "%s%lld %s", *buf ? ", " : "",
              (long long) json_integer_value (v), k);
  json_decref (counts);
  return strdup (*buf ? buf : "no VMs");
}

static json_t *
row (const char *const *cells)
{
  json_t *r = json_array ();
  for (size_t i = 0; cells[i]; ++i)
    json_array_append_new (r, json_string (cells[i]));
  return r;
}

/* Every plan with a state dir under the default state root. */
static json_t *
states_on_disk (const struct vcommon *c)
{
  json_t *out = json_array ();
  if (c->state_dir) {
    char *text = pallet_state_read (c->state_dir);
    json_t *j = text ? json_loads (text, 0, NULL) : NULL;
    free (text);
    if (j)
      json_array_append_new (out, j);
    return out;
  }
  char *one = pallet_default_state_dir ("x");
  if (!one)
    return out;
  char *root = dirname (one);
  DIR *d = opendir (root);
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", root, e->d_name);
    char *text = pallet_state_read (path);
    json_t *j = text ? json_loads (text, 0, NULL) : NULL;
    free (text);
    if (j && (!c->ns || !strcmp (Pallet_vc_str (j, "plan.namespace", ""), c->ns)))
      json_array_append_new (out, j);
    else
      json_decref (j);
  }
  if (d)
    closedir (d);
  free (one);
  return out;
}

/* ---- get ---- */

static int
get_plans (struct vcommon *c, const json_t *set, const char *name)
{
  static const char *const hf[] = { "NAME", "NAMESPACE", "SOURCE", "TARGET-NAMESPACE",
                                    "TYPE", "VMS",       "STATUS", NULL };
  static const char *const hs[] = { "NAME", "PROVIDER", "VMS", "STATUS", "LAST-RUN", NULL };
  const char *const *h = hf;
  json_t *rows = json_array (), *objs;
  size_t i;
  json_t *o;
  if (set) {
    objs = Pallet_vc_objects (c, set, "Plan", NULL, name);
    json_array_foreach (objs, i, o) {
      json_t *st = plan_state (c, Pallet_vc_name (o));
      char *sum = status_summary (st), nvms[32];
      snprintf (nvms, sizeof nvms, "%zu",
                json_array_size (json_object_get (json_object_get (o, "spec"), "vms")));
      const char *cells[] = { Pallet_vc_name (o),
                              Pallet_vc_namespace (o),
                              Pallet_vc_str (o, "spec.provider.source.name", "-"),
                              Pallet_vc_str (o, "spec.targetNamespace", "-"),
                              json_is_true (json_object_get (json_object_get (o, "spec"), "warm"))
                                  ? "warm"
                                  : Pallet_vc_str (o, "spec.type", "cold"),
                              nvms,
                              sum,
                              NULL };
      json_array_append_new (rows, row (cells));
      free (sum);
      json_decref (st);
    }
  }
  else {
    /* The state dirs: what pallet status reads. */
    h = hs;
    objs = states_on_disk (c);
    json_array_foreach (objs, i, o) {
      const json_t *p = json_object_get (o, "plan");
      if (name && strcmp (Pallet_vc_str (p, "name", ""), name))
        continue;
      char *sum = status_summary (o), nvms[32];
      snprintf (nvms, sizeof nvms, "%zu", json_array_size (json_object_get (o, "vms")));
      const char *cells[] = { Pallet_vc_str (p, "name", "-"),
                              Pallet_vc_str (p, "provider", "-"),
                              nvms,
                              sum,
                              Pallet_vc_str (p, "timestamps.lastRun", "-"),
                              NULL };
      json_array_append_new (rows, row (cells));
      free (sum);
    }
  }
  int rc = 0;
  if (name && json_array_size (rows) == 0) {
    fprintf (stderr, "pallet get: no plan named '%s'%s\n", name,
             set ? (have_cluster (c) ? " in the cluster" : " in the -f files")
                 : " has a state dir (give the plan's files with -f)");
    rc = PALLET_EXIT_INPUT;
  }
  else if (c->fmt == CLI_TABLE)
    Pallet_render_table (h, rows);
  else if (Pallet_vc_print (c, objs, set != NULL) != 0)
    rc = PALLET_EXIT_INPUT;
  json_decref (rows);
  json_decref (objs);
  return rc;
}

static int
get_objects (struct vcommon *c, const json_t *set, enum res r, const char *name)
{
  static const char *const hp[] = { "NAME", "NAMESPACE", "TYPE", "URL", "SECRET", NULL };
  static const char *const hm[] = { "NAME",        "NAMESPACE", "KIND", "SOURCE",
                                    "DESTINATION", "PAIRS",     NULL };
  json_t *objs = r == R_PROVIDER ? Pallet_vc_objects (c, set, "Provider", NULL, name)
                                 : Pallet_vc_objects (c, set, "NetworkMap", "StorageMap", name);
  json_t *rows = json_array ();
  size_t i;
  json_t *o;
  json_array_foreach (objs, i, o) {
    if (r == R_PROVIDER) {
      const char *cells[] = { Pallet_vc_name (o),
                              Pallet_vc_namespace (o),
                              Pallet_vc_str (o, "spec.type", "-"),
                              Pallet_vc_str (o, "spec.url", "-"),
                              Pallet_vc_str (o, "spec.secret.name", "-"),
                              NULL };
      json_array_append_new (rows, row (cells));
    }
    else {
      char n[32];
      snprintf (n, sizeof n, "%zu",
                json_array_size (json_object_get (json_object_get (o, "spec"), "map")));
      const char *cells[] = { Pallet_vc_name (o),
                              Pallet_vc_namespace (o),
                              strcmp (Pallet_vc_str (o, "kind", ""), "NetworkMap") ? "storage"
                                                                                   : "network",
                              Pallet_vc_str (o, "spec.provider.source.name", "-"),
                              Pallet_vc_str (o, "spec.provider.destination.name", "host"),
                              n,
                              NULL };
      json_array_append_new (rows, row (cells));
    }
  }
  int rc = 0;
  if (name && json_array_size (objs) == 0) {
    fprintf (stderr, "pallet get: no %s named '%s' in %s\n", res_names[r], name,
             have_cluster (c) ? "the cluster" : "the -f files");
    rc = PALLET_EXIT_INPUT;
  }
  else if (c->fmt == CLI_TABLE)
    Pallet_render_table (r == R_PROVIDER ? hp : hm, rows);
  else if (Pallet_vc_print (c, objs, 1) != 0)
    rc = PALLET_EXIT_INPUT;
  json_decref (rows);
  json_decref (objs);
  return rc;
}

static int
no_cluster (struct vcommon *c, const char *what)
{
  if (c->kubeconfig)
    fprintf (stderr,
             "pallet %s: %s from a cluster (--kubeconfig) is not supported by this "
             "pallet yet; give the Forklift YAML with -f FILE\n",
             c->verb, what);
  else
    fprintf (stderr, "pallet %s: %s: give the Forklift YAML with -f FILE\n", c->verb, what);
  return PALLET_EXIT_USAGE;
}

int
Pallet_cli_get (int argc, char **argv)
{
  struct vcommon c = { .verb = "get" };
  if (argc > 1 && resource (argv[1]) == R_INVENTORY)
    return Pallet_cli_inventory (argc - 1, argv + 1);
  int rc = Pallet_vc_parse (&c, argc, argv, NULL, NULL, NULL);
  if (rc)
    goto out;
  enum res r = optind < argc ? resource (argv[optind]) : R_NONE;
  static const char *const allowed[] = { "plan", "provider", "mapping", "inventory", NULL };
  if (r == R_INVENTORY) {
    rc = Pallet_vc_usage (&c, "write 'pallet get inventory KIND ...' with its options after KIND");
    goto out;
  }
  if (r == R_NONE || r == R_VM) {
    rc = bad_resource (&c, optind < argc ? argv[optind] : NULL, allowed);
    goto out;
  }
  const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
  if (optind + 2 < argc) {
    rc = Pallet_vc_usage (&c, "unexpected argument '%s'", argv[optind + 2]);
    goto out;
  }
  if (Pallet_vc_format (&c, 1 << CLI_TABLE | 1 << CLI_JSON | 1 << CLI_YAML, CLI_TABLE) != 0) {
    rc = PALLET_EXIT_USAGE;
    goto out;
  }
  if (c.nfiles == 0 && r != R_PLAN && !have_cluster (&c)) {
    rc = no_cluster (&c, r == R_PROVIDER ? "providers" : "mappings");
    goto out;
  }
  json_t *set = load_set (&c);
  if ((c.nfiles || have_cluster (&c)) && !set) {
    rc = PALLET_EXIT_INPUT;
    goto out;
  }
  rc = r == R_PLAN ? get_plans (&c, set, name) : get_objects (&c, set, r, name);
  json_decref (set);
out:
  free (c.files);
  return rc < 0 ? 0 : rc; /* -1: --help was printed */
}

/* ---- describe ---- */

static void
describe_vms_table (const json_t *spec_vms, const json_t *state)
{
  static const char *const h[] = { "ID", "NAME", "STEP", "STATUS", "ATTEMPTS", "ERROR", NULL };
  json_t *rows = json_array ();
  size_t i, j;
  json_t *v, *s;
  json_array_foreach ((json_t *) spec_vms, i, v) {
    const char *id = Pallet_vc_str (v, "id", ""), *nm = Pallet_vc_str (v, "name", "");
    const json_t *found = NULL;
    json_array_foreach (json_object_get (state, "vms"), j, s) {
      if ((*id && !strcmp (Pallet_vc_str (s, "vm.id", ""), id))
          || (*nm && !strcmp (Pallet_vc_str (s, "vm.name", ""), nm)))
        found = s;
    }
    char att[32];
    snprintf (att, sizeof att, "%lld",
              (long long) json_integer_value (json_object_get (found, "attempts")));
    const char *cells[] = { *id ? id : "-",
                            *nm ? nm : Pallet_vc_str (found, "vm.name", "-"),
                            Pallet_vc_str (found, "step", "-"),
                            Pallet_vc_str (found, "status", found ? "-" : "not started"),
                            found ? att : "0",
                            Pallet_vc_str (found, "error.message", ""),
                            NULL };
    json_array_append_new (rows, row (cells));
  }
  Pallet_render_table (h, rows);
  json_decref (rows);
}

static void
field (const char *label, const char *value)
{
  printf ("%-18s %s\n", label, value && *value ? value : "-");
}

static int
not_found (struct vcommon *c, const json_t *set, const char *kind, const char *kind2,
           const char *name)
{
  struct vcommon all = *c;
  all.ns = NULL;
  json_t *objs = Pallet_vc_objects (&all, set, kind, kind2, NULL);
  const char *names[64];
  size_t i, n = 0;
  json_t *o;
  json_array_foreach (objs, i, o)
    if (n < 63)
      names[n++] = Pallet_vc_name (o);
  names[n] = NULL;
  const char *near = name ? Pallet_vc_nearest (name, names) : NULL;
  fprintf (stderr, "pallet %s: no %s named '%s'%s%s in %s", c->verb, kind, name ? name : "",
           c->ns ? " in namespace " : "", c->ns ? c->ns : "",
           have_cluster (c) ? "the cluster" : "the -f files");
  if (near)
    fprintf (stderr, "; did you mean '%s'?\n", near);
  else {
    fprintf (stderr, n ? "; there: " : "; the files have none\n");
    for (i = 0; i < n; ++i)
      fprintf (stderr, "%s%s", names[i], i + 1 < n ? ", " : "\n");
  }
  json_decref (objs);
  return PALLET_EXIT_INPUT;
}

static int
describe_plan (struct vcommon *c, const json_t *set, const json_t *o)
{
  json_t *st = plan_state (c, Pallet_vc_name (o));
  int rc = 0;
  if (c->fmt != CLI_TEXT) {
    json_t *doc = json_pack ("{s:O,s:O*}", "plan", o, "state", st);
    rc = Pallet_vc_print (c, doc, 0) ? PALLET_EXIT_INPUT : 0;
    json_decref (doc);
    json_decref (st);
    return rc;
  }
  const json_t *spec = json_object_get (o, "spec");
  char buf[512];
  snprintf (buf, sizeof buf, "%s/%s", Pallet_vc_namespace (o), Pallet_vc_name (o));
  field ("Plan:", buf);
  const char *src = Pallet_vc_str (o, "spec.provider.source.name", NULL);
  struct vcommon any = *c;
  any.ns = NULL;
  json_t *p = src ? Pallet_vc_objects (&any, set, "Provider", NULL, src) : NULL;
  snprintf (buf, sizeof buf, "%s (%s %s)", src ? src : "-",
            Pallet_vc_str (json_array_get (p, 0), "spec.type", "?"),
            Pallet_vc_str (json_array_get (p, 0), "spec.url", ""));
  json_decref (p);
  field ("Source:", buf);
  field ("Destination:", Pallet_vc_str (o, "spec.provider.destination.name", "host"));
  field ("Target namespace:", Pallet_vc_str (o, "spec.targetNamespace", NULL));
  field ("Type:", json_is_true (json_object_get (spec, "warm"))
                      ? "warm"
                      : Pallet_vc_str (o, "spec.type", "cold"));
  field ("Network map:", Pallet_vc_str (o, "spec.map.network.name", NULL));
  field ("Storage map:", Pallet_vc_str (o, "spec.map.storage.name", NULL));
  char *sum = status_summary (st);
  field ("Status:", sum);
  free (sum);
  char *dir = state_dir_of (c, Pallet_vc_name (o));
  field ("State dir:", st ? dir : "none yet (pallet migrate makes it)");
  free (dir);
  printf ("\nVMs (%zu):\n", json_array_size (json_object_get (spec, "vms")));
  describe_vms_table (json_object_get (spec, "vms"), st);
  json_decref (st);
  return rc;
}

static int
describe_provider (struct vcommon *c, const json_t *set, const json_t *o)
{
  /* The Secret's keys, never its values. */
  struct vcommon any = *c;
  any.ns = NULL;
  const char *sname = Pallet_vc_str (o, "spec.secret.name", NULL);
  json_t *secs = sname ? Pallet_vc_objects (&any, set, "Secret", NULL, sname) : json_array ();
  json_t *keys = json_array ();
  const char *k;
  json_t *v;
  json_object_foreach (json_object_get (json_array_get (secs, 0), "data"), k, v)
    json_array_append_new (keys, json_string (k));
  json_object_foreach (json_object_get (json_array_get (secs, 0), "stringData"), k, v)
    json_array_append_new (keys, json_string (k));
  int rc = 0;
  if (c->fmt != CLI_TEXT) {
    json_t *doc = json_pack ("{s:O,s:{s:s*,s:b,s:O}}", "provider", o, "secret", "name", sname,
                             "found", json_array_size (secs) > 0, "keys", keys);
    rc = Pallet_vc_print (c, doc, 0) ? PALLET_EXIT_INPUT : 0;
    json_decref (doc);
  }
  else {
    char buf[512];
    snprintf (buf, sizeof buf, "%s/%s", Pallet_vc_namespace (o), Pallet_vc_name (o));
    field ("Provider:", buf);
    field ("Type:", Pallet_vc_str (o, "spec.type", NULL));
    field ("URL:", Pallet_vc_str (o, "spec.url", NULL));
    snprintf (buf, sizeof buf, "%s%s", sname ? sname : "-",
              !sname                   ? ""
              : json_array_size (secs) ? ""
              : have_cluster (c)       ? " (Secrets are not read from the cluster)"
                                       : " (not in the -f files)");
    field ("Secret:", buf);
    buf[0] = '\0';
    size_t i;
    json_array_foreach (keys, i, v)
      snprintf (buf + strlen (buf), sizeof buf - strlen (buf), "%s%s", i ? ", " : "",
                json_string_value (v));
    field ("Secret keys:", buf);
    printf ("Settings:\n");
    json_object_foreach (json_object_get (json_object_get (o, "spec"), "settings"), k, v)
      printf ("  %-16s %s\n", k, json_is_string (v) ? json_string_value (v) : "");
  }
  json_decref (keys);
  json_decref (secs);
  return rc;
}

/* A map entry's side as one line: "id subnet-1", "pod", "multus ns/nad". */
static void
side (char *buf, size_t n, const json_t *s)
{
  const char *t = Pallet_vc_str (s, "type", NULL), *sc = Pallet_vc_str (s, "storageClass", NULL);
  const char *id = Pallet_vc_str (s, "id", NULL), *nm = Pallet_vc_str (s, "name", NULL);
  const char *ns = Pallet_vc_str (s, "namespace", NULL);
  if (sc)
    snprintf (n ? buf : buf, n, "%s", sc);
  else if (t && nm)
    snprintf (buf, n, "%s %s%s%s", t, ns ? ns : "", ns ? "/" : "", nm);
  else
    snprintf (buf, n, "%s", t ? t : id ? id : nm ? nm : "-");
}

static int
describe_mapping (struct vcommon *c, const json_t *o)
{
  if (c->fmt != CLI_TEXT)
    return Pallet_vc_print (c, (json_t *) o, 0) ? PALLET_EXIT_INPUT : 0;
  char buf[512];
  snprintf (buf, sizeof buf, "%s/%s (%s)", Pallet_vc_namespace (o), Pallet_vc_name (o),
            Pallet_vc_str (o, "kind", ""));
  field ("Mapping:", buf);
  field ("Source provider:", Pallet_vc_str (o, "spec.provider.source.name", NULL));
  field ("Destination:", Pallet_vc_str (o, "spec.provider.destination.name", "host"));
  static const char *const h[] = { "SOURCE", "DESTINATION", NULL };
  json_t *rows = json_array ();
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (json_object_get (o, "spec"), "map"), i, e) {
    char a[256], b[256];
    side (a, sizeof a, json_object_get (e, "source"));
    side (b, sizeof b, json_object_get (e, "destination"));
    const char *cells[] = { a, b, NULL };
    json_array_append_new (rows, row (cells));
  }
  printf ("\n");
  Pallet_render_table (h, rows);
  json_decref (rows);
  return 0;
}

/* describe vm NAME: the VM's plan entry and its state. */
static int
describe_vm (struct vcommon *c, const json_t *set, const char *name, const char *plan_name)
{
  json_t *plans = Pallet_vc_objects (c, set, "Plan", NULL, plan_name);
  size_t i, j;
  json_t *p, *v;
  json_array_foreach (plans, i, p) {
    json_t *st = plan_state (c, Pallet_vc_name (p));
    json_array_foreach (json_object_get (json_object_get (p, "spec"), "vms"), j, v) {
      const char *vid = Pallet_vc_str (v, "id", ""), *vname = Pallet_vc_str (v, "name", "");
      json_t *mine = NULL, *s;
      size_t k;
      /* The state knows the names of VMs the plan names by id. */
      json_array_foreach (json_object_get (st, "vms"), k, s) {
        const char *sid = Pallet_vc_str (s, "vm.id", ""), *snm = Pallet_vc_str (s, "vm.name", "");
        if ((*vid && !strcmp (sid, vid)) || (*vname && !strcmp (snm, vname)))
          mine = s;
      }
      if (strcmp (vid, name) && strcmp (vname, name)
          && strcmp (Pallet_vc_str (mine, "vm.name", ""), name))
        continue;
      int rc = 0;
      if (c->fmt != CLI_TEXT) {
        json_t *doc =
            json_pack ("{s:s,s:O,s:O*}", "plan", Pallet_vc_name (p), "vm", v, "state", mine);
        rc = Pallet_vc_print (c, doc, 0) ? PALLET_EXIT_INPUT : 0;
        json_decref (doc);
      }
      else {
        field ("VM:", Pallet_vc_str (v, "id", Pallet_vc_str (v, "name", "-")));
        field ("Name:", Pallet_vc_str (v, "name", Pallet_vc_str (mine, "vm.name", NULL)));
        field ("Plan:", Pallet_vc_name (p));
        field ("Target name:",
               Pallet_vc_str (v, "targetName", Pallet_vc_str (mine, "vm.targetName", NULL)));
        field ("Step:", Pallet_vc_str (mine, "step", NULL));
        field ("Status:", Pallet_vc_str (mine, "status", mine ? NULL : "not started"));
        char att[32];
        snprintf (att, sizeof att, "%lld",
                  (long long) json_integer_value (json_object_get (mine, "attempts")));
        field ("Attempts:", att);
        field ("Error:", Pallet_vc_str (mine, "error.message", NULL));
      }
      json_decref (st);
      json_decref (plans);
      return rc;
    }
    json_decref (st);
  }
  json_decref (plans);
  fprintf (stderr, "pallet describe: no VM '%s' (by id or name) in the plans of the -f files%s%s\n",
           name, plan_name ? " named " : "", plan_name ? plan_name : "");
  return PALLET_EXIT_INPUT;
}

static int
describe_opt (int opt, const char *arg, void *ctx)
{
  if (opt == 'p') {
    *(const char **) ctx = arg;
    return 0;
  }
  return PALLET_EXIT_USAGE;
}

int
Pallet_cli_describe (int argc, char **argv)
{
  struct vcommon c = { .verb = "describe" };
  const char *plan_name = NULL;
  static const struct option opts[] = { { "plan", required_argument, NULL, 'p' }, { 0 } };
  int rc = Pallet_vc_parse (&c, argc, argv, opts, describe_opt, &plan_name);
  static const char *const allowed[] = { "plan", "provider", "mapping", "vm", NULL };
  enum res r = optind < argc ? resource (argv[optind]) : R_NONE;
  if (rc)
    goto out;
  if (r == R_NONE || r == R_INVENTORY) {
    rc = bad_resource (&c, optind < argc ? argv[optind] : NULL, allowed);
    goto out;
  }
  if (optind + 2 != argc) {
    rc = optind + 2 < argc ? Pallet_vc_usage (&c, "unexpected argument '%s'", argv[optind + 2])
                           : Pallet_vc_usage (&c, "give the %s's NAME", res_names[r]);
    goto out;
  }
  const char *name = argv[optind + 1];
  if (Pallet_vc_format (&c, 1 << CLI_TEXT | 1 << CLI_JSON | 1 << CLI_YAML, CLI_TEXT) != 0) {
    rc = PALLET_EXIT_USAGE;
    goto out;
  }
  if (c.nfiles == 0 && !have_cluster (&c)) {
    rc = no_cluster (&c, res_names[r]);
    goto out;
  }
  json_t *set = load_set (&c);
  if (!set) {
    rc = PALLET_EXIT_INPUT;
    goto out;
  }
  if (r == R_VM)
    rc = describe_vm (&c, set, name, plan_name);
  else {
    const char *kind = r == R_PLAN ? "Plan" : r == R_PROVIDER ? "Provider" : "NetworkMap";
    const char *kind2 = r == R_MAPPING ? "StorageMap" : NULL;
    json_t *objs = Pallet_vc_objects (&c, set, kind, kind2, name);
    json_t *o = json_array_get (objs, 0);
    rc = !o                ? not_found (&c, set, kind, kind2, name)
         : r == R_PLAN     ? describe_plan (&c, set, o)
         : r == R_PROVIDER ? describe_provider (&c, set, o)
                           : describe_mapping (&c, o);
    json_decref (objs);
  }
  json_decref (set);
out:
  free (c.files);
  return rc < 0 ? 0 : rc; /* -1: --help was printed */
}
