/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the kubectl-mtv style verbs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pallet/host.h"
#include "render.h"
#include "verbs-common.h"
#ifdef HAVE_PALLET_PLAN
#include "pallet-plan.h"
#endif

/* Levenshtein distance, ignoring ASCII case. */
static size_t
distance (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b), row[65];
  if (la > 64 || lb > 64)
    return (size_t) -1;
  for (size_t j = 0; j <= lb; ++j)
    row[j] = j;
  for (size_t i = 1; i <= la; ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; ++j) {
      size_t cur = row[j], best = prev + ((a[i - 1] | 0x20) != (b[j - 1] | 0x20));
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

const char *
Pallet_vc_nearest (const char *word, const char *const *candidates)
{
  const char *best = NULL;
  size_t bd = (size_t) -1;
  for (size_t i = 0; candidates[i]; ++i) {
    size_t d = distance (word, candidates[i]);
    if (d < bd) {
      bd = d;
      best = candidates[i];
    }
  }
  return best && bd <= strlen (word) / 3 + 1 ? best : NULL;
}

int
Pallet_vc_usage (const struct vcommon *c, const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "pallet %s: ", c->verb);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\nTry `pallet %s --help`.\n", c->verb);
  return PALLET_EXIT_USAGE;
}

enum { VC_KUBECONFIG = 1000, VC_STATE_DIR, VC_HELP };

static const struct option common_opts[] = {
  { "output", required_argument, NULL, 'o' },
  { "namespace", required_argument, NULL, 'n' },
  { "file", required_argument, NULL, 'f' },
  { "filename", required_argument, NULL, 'f' },
  { "kubeconfig", required_argument, NULL, VC_KUBECONFIG },
  { "state-dir", required_argument, NULL, VC_STATE_DIR },
  { "help", no_argument, NULL, 'h' },
};

/* An unknown option: name it and the nearest known one. */
static int
bad_option (const struct vcommon *c, const char *arg, const struct option *all, size_t n)
{
  const char *names[128];
  size_t k = 0;
  char given[128];
  snprintf (given, sizeof given, "%s", arg);
  char *eq = strchr (given, '=');
  if (eq)
    *eq = '\0';
  for (size_t i = 0; i < n && k < 127; ++i)
    names[k++] = all[i].name;
  names[k] = NULL;
  const char *bare = given + strspn (given, "-");
  const char *near = Pallet_vc_nearest (bare, names);
  if (near)
    return Pallet_vc_usage (c, "unknown option '%s'; did you mean '--%s'?", given, near);
  return Pallet_vc_usage (c, "unknown option '%s'", given);
}

static const char *const help[][2] = {
  { "get",
    "Usage: pallet get plan|provider|mapping [NAME] [-f FILE]... [-n NS] [-o table|json|yaml]\n"
    "       pallet get inventory KIND -f provider.yaml [-q QUERY] [-o table|json|yaml]\n"
    "Lists the Forklift resources of the -f files (without -f, get plan lists the\n"
    "plans that have a state dir), with each plan's migration status.\n" },
  { "describe",
    "Usage: pallet describe plan|provider|mapping NAME -f FILE... [-n NS] [-o text|json|yaml]\n"
    "       pallet describe vm ID|NAME -f FILE... [--plan NAME] [--state-dir DIR]\n"
    "Shows one resource in detail: a plan with each VM's step and status, a\n"
    "provider with its Secret's keys (never the values), a mapping's pairs.\n" },
  { "inventory",
    "Usage: pallet inventory KIND -f provider.yaml [--provider NAME] [-q QUERY] [-o table|json|yaml]\n"
    "       pallet inventory KIND --provider MODULE --config FILE [-q QUERY] [-o ...]\n"
    "Lists the source's objects of KIND (EC2: ec2-instance, ec2-volume,\n"
    "ec2-volume-type, ec2-network, ec2-snapshot; instances, volumes... too).\n"
    "With -f, the Provider and its Secret come from the files (as migrate\n"
    "reads them); --provider then names the Provider when there are several.\n"
    "QUERY is kubectl-mtv's TSL: see pallet(1) and docs/query-language.md.\n" },
  { "create",
    "Usage: pallet create provider NAME --type ec2 --ec2-region R (--secret S |\n"
    "         --username KEY_ID --password SECRET_KEY) [--url URL] [--target-region R]\n"
    "         [--target-az AZ] [--provider-insecure-skip-tls] --dry-run [-n NS] [-o yaml|json]\n"
    "       pallet create mapping network|storage NAME --source P [--target P]\n"
    "         --network-pairs SRC:DST,... | --storage-pairs SRC:CLASS,... --dry-run\n"
    "       pallet create plan NAME --source P [--target P] --vms ID,... --network-mapping M\n"
    "         --storage-mapping M [--target-namespace NS] [--warm] --dry-run\n"
    "Writes the Forklift YAML for kubectl apply -f -, checked by Pallet's plan reader.\n" },
  { "archive", "Usage: pallet archive plan NAME [--kubeconfig FILE] [-n NS]\n"
               "Sets the Plan's spec.archived in the cluster (--kubeconfig, $KUBECONFIG, the\n"
               "Pod's service account or ~/.kube/config, as kubectl finds it).\n" },
  { "delete", "Usage: pallet delete plan|provider|mapping|networkmap|storagemap NAME\n"
              "         [--kubeconfig FILE] [-n NS]\n"
              "Deletes the Forklift object from the cluster; a mapping is the NetworkMap or\n"
              "StorageMap of that name.\n" },
};

const char *
Pallet_vc_help (const char *verb)
{
  for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
    if (!strcmp (help[i][0], verb))
      return help[i][1];
  return "Try `pallet --help`.\n";
}

int
Pallet_vc_parse (struct vcommon *c, int argc, char **argv, const struct option *opts,
                 int (*each) (int opt, const char *arg, void *ctx), void *ctx)
{
  size_t n = 0, nc = sizeof common_opts / sizeof common_opts[0];
  while (opts && opts[n].name)
    ++n;
  struct option *all = calloc (n + nc + 1, sizeof *all);
  if (!all)
    return PALLET_EXIT_INPUT;
  memcpy (all, common_opts, nc * sizeof *all);
  if (n)
    memcpy (all + nc, opts, n * sizeof *all);
  char shortopts[64] = ":o:n:f:hq:";
  int rc = 0, ch;
  optind = 1;
  opterr = 0;
  while (rc == 0 && (ch = getopt_long (argc, argv, shortopts, all, NULL)) != -1) {
    switch (ch) {
    case 'o': c->output = optarg; break;
    case 'n': c->ns = optarg; break;
    case 'f': {
      const char **nf = realloc (c->files, (c->nfiles + 1) * sizeof *nf);
      if (!nf) {
        rc = PALLET_EXIT_INPUT;
        break;
      }
      c->files = nf;
      c->files[c->nfiles++] = optarg;
      break;
    }
    case VC_KUBECONFIG: c->kubeconfig = optarg; break;
    case VC_STATE_DIR: c->state_dir = optarg; break;
    case 'h':
      fputs (Pallet_vc_help (c->verb), stdout);
      rc = -1;
      break;
    case ':': rc = Pallet_vc_usage (c, "option '%s' needs a value", argv[optind - 1]); break;
    case '?': rc = bad_option (c, argv[optind - 1], all, n + nc); break;
    default: rc = each ? each (ch, optarg, ctx) : Pallet_vc_usage (c, "unexpected option"); break;
    }
  }
  free (all);
  return rc;
}

int
Pallet_vc_format (struct vcommon *c, int allowed, int def)
{
  c->fmt = def;
  if (c->output && Pallet_format_parse (c->output, allowed, &c->fmt) != 0) {
    static const char *const names[] = { "text", "json", "yaml", "table" };
    char list[64] = "";
    for (int i = 0; i < 4; ++i)
      if (allowed & (1 << i))
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", *list ? ", " : "",
                  names[i]);
    Pallet_vc_usage (c, "-o '%s': expected %s", c->output, list);
    return -1;
  }
  return 0;
}

json_t *
Pallet_vc_load (const struct vcommon *c)
{
#ifdef HAVE_PALLET_PLAN
  char *err = NULL;
  json_t *set = pallet_plan_read (c->files, c->nfiles, &err);
  if (!set) {
    fprintf (stderr, "pallet %s: %s\n", c->verb, err ? err : "cannot read the files");
    free (err);
  }
  return set;
#else
  fprintf (stderr, "pallet %s: this pallet was built without the Forklift plan reader\n", c->verb);
  return NULL;
#endif
}

const char *
Pallet_vc_str (const json_t *obj, const char *path, const char *def)
{
  char buf[256];
  snprintf (buf, sizeof buf, "%s", path);
  const json_t *v = obj;
  for (char *save = NULL, *k = strtok_r (buf, ".", &save); k && v; k = strtok_r (NULL, ".", &save))
    v = json_object_get (v, k);
  return json_is_string (v) ? json_string_value (v) : def;
}

const char *
Pallet_vc_name (const json_t *obj)
{
  return Pallet_vc_str (obj, "metadata.name", "");
}

const char *
Pallet_vc_namespace (const json_t *obj)
{
  return Pallet_vc_str (obj, "metadata.namespace", "");
}

json_t *
Pallet_vc_objects (const struct vcommon *c, const json_t *set, const char *kind, const char *kind2,
                   const char *name)
{
  json_t *out = json_array ();
  size_t i;
  json_t *r;
  json_array_foreach (json_object_get (set, "resources"), i, r) {
    json_t *o = json_object_get (r, "object");
    const char *k = Pallet_vc_str (o, "kind", "");
    if (strcmp (k, kind) != 0 && !(kind2 && strcmp (k, kind2) == 0))
      continue;
    if (c->ns && strcmp (Pallet_vc_namespace (o), c->ns) != 0)
      continue;
    if (name && strcmp (Pallet_vc_name (o), name) != 0)
      continue;
    json_array_append (out, o);
  }
  return out;
}

int
Pallet_vc_print (const struct vcommon *c, json_t *v, int objects_as_documents)
{
  if (!objects_as_documents || c->fmt != CLI_JSON)
    return Pallet_render_value (v, c->fmt, objects_as_documents);
  /* Kubernetes objects as JSON: a v1 List, as kubectl get -o json prints
   * them and kubectl apply -f (and pallet -f) reads them. */
  json_t *list = json_pack ("{s:s,s:s,s:O}", "apiVersion", "v1", "kind", "List", "items", v);
  int rc = Pallet_render_value (list, c->fmt, 0);
  json_decref (list);
  return rc;
}
