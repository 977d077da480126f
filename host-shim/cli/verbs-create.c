/* SPDX-License-Identifier: Apache-2.0 */
/* pallet create provider|mapping|plan ... --dry-run: the Forklift YAML
 * users otherwise write by hand, as kubectl-mtv's create verbs make it,
 * checked by Pallet's own plan reader before it is printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet/host.h"
#include "cli-verbs.h"
#include "render.h"
#include "verbs-common.h"
#ifdef HAVE_PALLET_PLAN
#include "pallet-plan.h"
#endif

#define FORKLIFT_API "forklift.konveyor.io/v1beta1"

struct create_opts {
  const char *type, *url, *secret, *username, *password, *region, *target_region, *target_az;
  const char *target_key, *target_secret, *cacert, *source, *target, *vms, *network_mapping;
  const char *storage_mapping, *network_pairs, *storage_pairs, *target_namespace;
  int insecure, warm, dry_run;
};

enum {
  CO_TYPE = 3000,
  CO_URL,
  CO_SECRET,
  CO_USERNAME,
  CO_PASSWORD,
  CO_REGION,
  CO_TREGION,
  CO_TAZ,
  CO_TKEY,
  CO_TSECRET,
  CO_CACERT,
  CO_INSECURE,
  CO_SOURCE,
  CO_TARGET,
  CO_VMS,
  CO_NETMAP,
  CO_STOMAP,
  CO_NETPAIRS,
  CO_STOPAIRS,
  CO_TNS,
  CO_WARM,
  CO_DRYRUN,
};

static const struct option create_options[] = {
  { "type", required_argument, NULL, CO_TYPE },
  { "url", required_argument, NULL, CO_URL },
  { "secret", required_argument, NULL, CO_SECRET },
  { "username", required_argument, NULL, CO_USERNAME },
  { "password", required_argument, NULL, CO_PASSWORD },
  { "ec2-region", required_argument, NULL, CO_REGION },
  { "target-region", required_argument, NULL, CO_TREGION },
  { "target-az", required_argument, NULL, CO_TAZ },
  { "target-access-key-id", required_argument, NULL, CO_TKEY },
  { "target-secret-access-key", required_argument, NULL, CO_TSECRET },
  { "cacert", required_argument, NULL, CO_CACERT },
  { "provider-insecure-skip-tls", no_argument, NULL, CO_INSECURE },
  { "source", required_argument, NULL, CO_SOURCE },
  { "target", required_argument, NULL, CO_TARGET },
  { "vms", required_argument, NULL, CO_VMS },
  { "network-mapping", required_argument, NULL, CO_NETMAP },
  { "storage-mapping", required_argument, NULL, CO_STOMAP },
  { "network-pairs", required_argument, NULL, CO_NETPAIRS },
  { "storage-pairs", required_argument, NULL, CO_STOPAIRS },
  { "target-namespace", required_argument, NULL, CO_TNS },
  { "warm", no_argument, NULL, CO_WARM },
  { "dry-run", no_argument, NULL, CO_DRYRUN },
  { 0 },
};

static int
create_opt (int opt, const char *arg, void *ctx)
{
  struct create_opts *o = ctx;
  const char **slot[] = {
    [CO_TYPE - CO_TYPE] = &o->type,
    [CO_URL - CO_TYPE] = &o->url,
    [CO_SECRET - CO_TYPE] = &o->secret,
    [CO_USERNAME - CO_TYPE] = &o->username,
    [CO_PASSWORD - CO_TYPE] = &o->password,
    [CO_REGION - CO_TYPE] = &o->region,
    [CO_TREGION - CO_TYPE] = &o->target_region,
    [CO_TAZ - CO_TYPE] = &o->target_az,
    [CO_TKEY - CO_TYPE] = &o->target_key,
    [CO_TSECRET - CO_TYPE] = &o->target_secret,
    [CO_CACERT - CO_TYPE] = &o->cacert,
    [CO_INSECURE - CO_TYPE] = NULL,
    [CO_SOURCE - CO_TYPE] = &o->source,
    [CO_TARGET - CO_TYPE] = &o->target,
    [CO_VMS - CO_TYPE] = &o->vms,
    [CO_NETMAP - CO_TYPE] = &o->network_mapping,
    [CO_STOMAP - CO_TYPE] = &o->storage_mapping,
    [CO_NETPAIRS - CO_TYPE] = &o->network_pairs,
    [CO_STOPAIRS - CO_TYPE] = &o->storage_pairs,
    [CO_TNS - CO_TYPE] = &o->target_namespace,
  };
  if (opt == CO_INSECURE)
    o->insecure = 1;
  else if (opt == CO_WARM)
    o->warm = 1;
  else if (opt == CO_DRYRUN)
    o->dry_run = 1;
  else if (opt >= CO_TYPE && opt <= CO_TNS && slot[opt - CO_TYPE])
    *slot[opt - CO_TYPE] = arg;
  else
    return PALLET_EXIT_USAGE;
  return 0;
}

static const char *
ns_of (const struct vcommon *c)
{
  return c->ns ? c->ns : "default";
}

static json_t *
object (const char *api, const char *kind, const char *name, const struct vcommon *c)
{
  return json_pack ("{s:s,s:s,s:{s:s,s:s}}", "apiVersion", api, "kind", kind, "metadata", "name",
                    name, "namespace", ns_of (c));
}

static json_t *
ref (const char *name, const struct vcommon *c)
{
  return json_pack ("{s:s,s:s}", "name", name, "namespace", ns_of (c));
}

/* The EC2 endpoint of a region, as kubectl-mtv derives it. */
static char *
ec2_url (const char *region)
{
  char *u = NULL;
  if (asprintf (&u, "https://ec2.%s.amazonaws.com%s", region,
                strncmp (region, "cn-", 3) == 0 ? ".cn" : "")
      < 0)
    u = NULL;
  return u;
}

static int
create_provider (struct vcommon *c, struct create_opts *o, const char *name, json_t *out)
{
  if (!o->type)
    return Pallet_vc_usage (c,
                            "create provider: give --type (ec2, vsphere, ovirt, openstack, ova)");
  int ec2 = strcmp (o->type, "ec2") == 0;
  if (ec2 && !o->region)
    return Pallet_vc_usage (c, "create provider: --type ec2 needs --ec2-region (e.g. us-east-1)");
  if (o->secret && (o->username || o->password))
    return Pallet_vc_usage (c, "create provider: give --secret NAME or --username and "
                               "--password, not both");
  if (!o->secret && (!o->username || !o->password))
    return Pallet_vc_usage (c,
                            "create provider: give --secret NAME (an existing Secret) or "
                            "both --username and --password%s",
                            ec2 ? " (the access key ID and secret access key)" : "");
  char *url = o->url ? strdup (o->url) : ec2 ? ec2_url (o->region) : NULL;
  if (!url)
    return Pallet_vc_usage (c, "create provider: give --url");
  char sname[300];
  snprintf (sname, sizeof sname, "%s-%s-credentials", name, o->type);
  json_t *p = object (FORKLIFT_API, "Provider", name, c);
  json_t *spec = json_pack ("{s:s,s:s,s:o}", "type", o->type, "url", url, "secret",
                            ref (o->secret ? o->secret : sname, c));
  if (ec2) {
    const char *tr = o->target_region ? o->target_region : o->region;
    char az[128];
    snprintf (az, sizeof az, "%s%s", o->target_az ? o->target_az : tr, o->target_az ? "" : "a");
    json_object_set_new (spec, "settings",
                         json_pack ("{s:s,s:s}", "target-region", tr, "target-az", az));
  }
  json_object_set_new (p, "spec", spec);
  if (!o->secret) {
    json_t *s = object ("v1", "Secret", sname, c);
    json_t *data =
        ec2 ? json_pack ("{s:s,s:s,s:s,s:s}", "accessKeyId", o->username, "secretAccessKey",
                         o->password, "url", url, "region", o->region)
            : json_pack ("{s:s,s:s,s:s}", "user", o->username, "password", o->password, "url", url);
    if (o->insecure)
      json_object_set_new (data, "insecureSkipVerify", json_string ("true"));
    if (o->cacert)
      json_object_set_new (data, "cacert", json_string (o->cacert));
    if (o->target_key && o->target_secret) {
      json_object_set_new (data, "targetAccessKeyId", json_string (o->target_key));
      json_object_set_new (data, "targetSecretAccessKey", json_string (o->target_secret));
    }
    json_object_set_new (json_object_get (s, "metadata"), "labels",
                         json_pack ("{s:s,s:s}", "createdForProviderType", o->type,
                                    "createdForResourceType", "providers"));
    json_object_set_new (s, "type", json_string ("Opaque"));
    json_object_set_new (s, "stringData", data);
    json_array_append_new (out, s);
  }
  json_array_append_new (out, p);
  free (url);
  return 0;
}

/* One network pair's destination: pod, ignored, or a NAD (ns/name). */
static json_t *
net_dest (const struct vcommon *c, const char *d)
{
  if (!strcmp (d, "pod") || !strcmp (d, "default"))
    return json_pack ("{s:s}", "type", "pod");
  if (!strcmp (d, "ignored"))
    return json_pack ("{s:s}", "type", "ignored");
  const char *slash = strchr (d, '/');
  if (slash)
    return json_pack ("{s:s,s:s%,s:s}", "type", "multus", "namespace", d, (size_t) (slash - d),
                      "name", slash + 1);
  return json_pack ("{s:s,s:s,s:s}", "type", "multus", "namespace", ns_of (c), "name", d);
}

/* An EC2 object is named by id (subnet-..., vpc-...), others by name. */
static json_t *
source_side (const char *s)
{
  static const char *const id_prefixes[] = { "subnet-", "vpc-", "vol-", "i-", NULL };
  for (size_t i = 0; id_prefixes[i]; i++)
    if (!strncmp (s, id_prefixes[i], strlen (id_prefixes[i])))
      return json_pack ("{s:s}", "id", s);
  return json_pack ("{s:s}", "name", s);
}

/* "src:dst[;volumeMode=Block;accessMode=ReadWriteOnce],..." */
static int
pairs (struct vcommon *c, const char *text, int storage, json_t *map)
{
  char *copy = strdup (text), *save = NULL;
  int rc = 0;
  for (char *p = strtok_r (copy, ",", &save); p && !rc; p = strtok_r (NULL, ",", &save)) {
    char *colon = strchr (p, ':');
    if (!colon || colon == p || !colon[1]) {
      rc = Pallet_vc_usage (c, "pair '%s': write SOURCE:DESTINATION (e.g. %s)", p,
                            storage ? "gp3:standard-csi" : "subnet-0abc:pod");
      break;
    }
    *colon = '\0';
    char *opts = strchr (colon + 1, ';');
    if (opts)
      *opts++ = '\0';
    json_t *dest =
        storage ? json_pack ("{s:s}", "storageClass", colon + 1) : net_dest (c, colon + 1);
    for (char *s2 = NULL, *kv = opts ? strtok_r (opts, ";", &s2) : NULL; kv && !rc;
         kv = strtok_r (NULL, ";", &s2)) {
      char *eq = strchr (kv, '=');
      if (!storage || !eq || (strncmp (kv, "volumeMode=", 11) && strncmp (kv, "accessMode=", 11))) {
        rc = Pallet_vc_usage (c,
                              "pair option '%s': storage pairs take volumeMode=Block|Filesystem "
                              "and accessMode=ReadWriteOnce|ReadWriteMany|ReadOnlyMany",
                              kv);
        break;
      }
      *eq = '\0';
      json_object_set_new (dest, kv, json_string (eq + 1));
    }
    json_array_append_new (map,
                           json_pack ("{s:o,s:o}", "source", source_side (p), "destination", dest));
  }
  free (copy);
  return rc;
}

static json_t *
mapping (const struct vcommon *c, const char *kind, const char *name, const struct create_opts *o,
         json_t *map)
{
  json_t *m = object (FORKLIFT_API, kind, name, c);
  json_object_set_new (m, "spec",
                       json_pack ("{s:{s:o,s:o},s:o}", "provider", "source", ref (o->source, c),
                                  "destination", ref (o->target ? o->target : "host", c), "map",
                                  map));
  return m;
}

static int
create_mapping (struct vcommon *c, struct create_opts *o, const char *which, const char *name,
                json_t *out)
{
  int storage = !strcmp (which, "storage");
  if (!storage && strcmp (which, "network"))
    return Pallet_vc_usage (c,
                            "create mapping: write 'create mapping network NAME' or "
                            "'create mapping storage NAME' (got '%s')",
                            which);
  if (!o->source)
    return Pallet_vc_usage (c, "create mapping: give --source PROVIDER");
  const char *text = storage ? o->storage_pairs : o->network_pairs;
  if (!text)
    return Pallet_vc_usage (c, "create mapping %s: give --%s-pairs SOURCE:DESTINATION,...", which,
                            which);
  json_t *map = json_array ();
  int rc = pairs (c, text, storage, map);
  if (rc) {
    json_decref (map);
    return rc;
  }
  json_array_append_new (out, mapping (c, storage ? "StorageMap" : "NetworkMap", name, o, map));
  return 0;
}

static int
create_plan (struct vcommon *c, struct create_opts *o, const char *name, json_t *out)
{
  if (!o->source || !o->vms)
    return Pallet_vc_usage (c, "create plan: give --source PROVIDER and --vms ID,...");
  char netname[300], stoname[300];
  snprintf (netname, sizeof netname, "%s-network", name);
  snprintf (stoname, sizeof stoname, "%s-storage", name);
  /* Pairs make the maps too, named after the plan (as kubectl-mtv does). */
  for (int storage = 0; storage < 2; storage++) {
    const char *given = storage ? o->storage_mapping : o->network_mapping;
    const char *text = storage ? o->storage_pairs : o->network_pairs;
    if (given && text)
      return Pallet_vc_usage (c, "create plan: give --%s-mapping or --%s-pairs, not both",
                              storage ? "storage" : "network", storage ? "storage" : "network");
    if (!given && !text)
      return Pallet_vc_usage (c, "create plan: give --%s-mapping NAME or --%s-pairs SRC:DST,...",
                              storage ? "storage" : "network", storage ? "storage" : "network");
    if (text) {
      json_t *map = json_array ();
      int rc = pairs (c, text, storage, map);
      if (rc) {
        json_decref (map);
        return rc;
      }
      json_array_append_new (out, mapping (c, storage ? "StorageMap" : "NetworkMap",
                                           storage ? stoname : netname, o, map));
    }
  }
  json_t *vms = json_array ();
  char *copy = strdup (o->vms), *save = NULL;
  for (char *v = strtok_r (copy, ",", &save); v; v = strtok_r (NULL, ",", &save))
    json_array_append_new (vms, json_pack ("{s:s}", strncmp (v, "i-", 2) ? "name" : "id", v));
  free (copy);
  json_t *p = object (FORKLIFT_API, "Plan", name, c);
  json_t *spec =
      json_pack ("{s:{s:o,s:o},s:{s:o,s:o},s:s,s:o}", "provider", "source", ref (o->source, c),
                 "destination", ref (o->target ? o->target : "host", c), "map", "network",
                 ref (o->network_mapping ? o->network_mapping : netname, c), "storage",
                 ref (o->storage_mapping ? o->storage_mapping : stoname, c), "targetNamespace",
                 o->target_namespace ? o->target_namespace : ns_of (c), "vms", vms);
  if (o->warm)
    json_object_set_new (spec, "warm", json_true ());
  json_object_set_new (p, "spec", spec);
  json_array_append_new (out, p);
  return 0;
}

/* A Provider's Secret often lives only in the cluster: for the check, an
 * empty one stands in for each the files lack (it is never printed). */
static void
stand_in_secrets (struct vcommon *c, json_t *set)
{
  struct vcommon any = *c;
  any.ns = NULL;
  json_t *ps = Pallet_vc_objects (&any, set, "Provider", NULL, NULL);
  size_t i;
  json_t *p;
  json_array_foreach (ps, i, p) {
    const char *sn = Pallet_vc_str (p, "spec.secret.name", NULL);
    const char *sns = Pallet_vc_str (p, "spec.secret.namespace", Pallet_vc_namespace (p));
    if (!sn)
      continue;
    struct vcommon in_ns = any;
    in_ns.ns = sns;
    json_t *have = Pallet_vc_objects (&in_ns, set, "Secret", NULL, sn);
    if (json_array_size (have) == 0)
      json_array_append_new (json_object_get (set, "resources"),
                             json_pack ("{s:s,s:i,s:s,s:{s:s,s:s,s:{s:s,s:s},s:{}}}", "file",
                                        "(stand-in)", "document", 1, "path", "", "object",
                                        "apiVersion", "v1", "kind", "Secret", "metadata", "name",
                                        sn, "namespace", sns, "stringData"));
    json_decref (have);
  }
  json_decref (ps);
}

/* The generated objects read back through the plan reader (with the -f
 * files, a plan is normalized too, so its references are checked). */
static int
check (struct vcommon *c, json_t *out, const char *plan)
{
#ifdef HAVE_PALLET_PLAN
  /* A v1 List, as kubectl get -o json prints several objects. */
  json_t *list = json_pack ("{s:s,s:s,s:O}", "apiVersion", "v1", "kind", "List", "items", out);
  char *text = list ? json_dumps (list, JSON_COMPACT) : NULL, *err = NULL;
  json_decref (list);
  json_t *set = text ? pallet_plan_read_buffer ("(generated)", text, strlen (text), &err) : NULL;
  free (text);
  if (set && plan && c->nfiles) {
    json_t *extra = Pallet_vc_load (c);
    if (!extra) {
      json_decref (set);
      return PALLET_EXIT_INPUT;
    }
    json_array_extend (json_object_get (set, "resources"), json_object_get (extra, "resources"));
    json_decref (extra);
    stand_in_secrets (c, set);
    char which[512];
    snprintf (which, sizeof which, "%s/%s", ns_of (c), plan);
    json_t *n = pallet_plan_normalize (set, which, &err);
    if (!n)
      fprintf (stderr, "pallet create: the plan does not fit the -f files: %s\n", err ? err : "?");
    json_decref (n);
    if (!n) {
      free (err);
      json_decref (set);
      return PALLET_EXIT_INPUT;
    }
  }
  if (!set) {
    fprintf (stderr, "pallet create: the generated YAML does not read back (a pallet bug): %s\n",
             err ? err : "?");
    free (err);
    return PALLET_EXIT_INPUT;
  }
  json_decref (set);
#else
  (void) c;
  (void) out;
  (void) plan;
#endif
  return 0;
}

int
Pallet_cli_create (int argc, char **argv)
{
  struct vcommon c = { .verb = "create" };
  struct create_opts o = { 0 };
  json_t *out = json_array ();
  int rc = Pallet_vc_parse (&c, argc, argv, create_options, create_opt, &o);
  static const char *const what[] = { "provider", "mapping", "plan", NULL };
  if (rc)
    goto done;
  const char *res = optind < argc ? argv[optind] : NULL;
  int is_map = res && (!strcmp (res, "mapping") || !strcmp (res, "map"));
  int nargs = argc - optind - 1, need = is_map ? 2 : 1;
  if (!res || (!is_map && strcmp (res, "provider") && strcmp (res, "plan"))) {
    const char *near = res ? Pallet_vc_nearest (res, what) : NULL;
    rc = res && near ? Pallet_vc_usage (&c,
                                        "unknown resource '%s'; did you mean '%s'? (provider, "
                                        "mapping, plan)",
                                        res, near)
                     : Pallet_vc_usage (&c, "give what to create: provider, mapping or plan");
    goto done;
  }
  if (nargs != need) {
    rc = nargs > need ? Pallet_vc_usage (&c, "unexpected argument '%s'", argv[optind + need + 1])
                      : Pallet_vc_usage (&c, "create %s: give %s", res,
                                         is_map ? "network|storage and a NAME" : "a NAME");
    goto done;
  }
  if (Pallet_vc_format (&c, 1 << CLI_JSON | 1 << CLI_YAML, CLI_YAML) != 0) {
    rc = PALLET_EXIT_USAGE;
    goto done;
  }
  if (!o.dry_run) {
    fprintf (stderr,
             "pallet create: creating resources in a cluster needs a Kubernetes client, which "
             "this pallet does not have yet; add --dry-run and apply the YAML: "
             "pallet create %s ... --dry-run | kubectl apply -f -\n",
             res);
    rc = PALLET_EXIT_USAGE;
    goto done;
  }
  const char *name = argv[argc - 1];
  rc = !strcmp (res, "provider") ? create_provider (&c, &o, name, out)
       : is_map                  ? create_mapping (&c, &o, argv[optind + 1], name, out)
                                 : create_plan (&c, &o, name, out);
  if (!rc)
    rc = check (&c, out, !strcmp (res, "plan") ? name : NULL);
  if (!rc && Pallet_vc_print (&c, out, 1) != 0)
    rc = PALLET_EXIT_INPUT;
done:
  json_decref (out);
  free (c.files);
  return rc < 0 ? 0 : rc;
}
