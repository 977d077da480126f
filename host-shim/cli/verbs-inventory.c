/* SPDX-License-Identifier: Apache-2.0 */
/* pallet inventory KIND (also pallet get inventory KIND): the source's
 * objects, from a Forklift Provider and its Secret (-f, read as migrate
 * reads them) or from --provider MODULE --config FILE. */
#include <errno.h>
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

struct inv_opts {
  const char *provider, *config, *module, *query;
};

enum { IO_PROVIDER = 2000, IO_CONFIG, IO_MODULE };

static int
inv_opt (int opt, const char *arg, void *ctx)
{
  struct inv_opts *o = ctx;
  switch (opt) {
  case IO_PROVIDER: o->provider = arg; return 0;
  case IO_CONFIG: o->config = arg; return 0;
  case IO_MODULE: o->module = arg; return 0;
  case 'q': o->query = arg; return 0;
  }
  return PALLET_EXIT_USAGE;
}

/* The config JSON text a provider's open() takes, from --config FILE. */
static char *
config_file (const char *path)
{
  json_error_t err;
  json_t *j = json_load_file (path, 0, &err);
  if (!json_is_object (j)) {
    fprintf (stderr,
             "pallet inventory: config %s: not a JSON object (line %d: %s); pass the provider "
             "config as JSON, or the Forklift Provider and Secret with -f\n",
             path, err.line, err.text);
    json_decref (j);
    return NULL;
  }
  char *text = json_dumps (j, JSON_COMPACT);
  json_decref (j);
  return text;
}

#ifdef HAVE_PALLET_PLAN
/* The config from the -f files' Provider (chosen by --provider NAME when
 * there are several) and its Secret, through the plan reader. */
static char *
config_from_files (struct vcommon *c, const struct inv_opts *o, char **type)
{
  json_t *set = Pallet_vc_load (c);
  if (!set)
    return NULL;
  json_t *ps = Pallet_vc_objects (c, set, "Provider", NULL, o->provider);
  char *text = NULL;
  if (json_array_size (ps) != 1) {
    json_t *all = Pallet_vc_objects (c, set, "Provider", NULL, NULL);
    fprintf (stderr, "pallet inventory: ");
    if (json_array_size (all) == 0)
      fprintf (stderr, "the -f files hold no Provider; give the Forklift Provider and its "
                       "Secret (the files you migrate with will do)\n");
    else {
      if (o->provider)
        fprintf (stderr, "no Provider named '%s' in the -f files; there: ", o->provider);
      else
        fprintf (stderr, "the -f files hold %zu Providers; pick one with --provider NAME: ",
                 json_array_size (all));
      size_t i;
      json_t *p;
      json_array_foreach (all, i, p)
        fprintf (stderr, "%s%s", Pallet_vc_name (p), i + 1 < json_array_size (all) ? ", " : "\n");
    }
    json_decref (all);
    goto out;
  }
  json_t *p = json_array_get (ps, 0);
  /* A plan naming this Provider as its source: what migrate would use. */
  json_t *plan = json_pack ("{s:{s:s,s:s}}", "source", "name", Pallet_vc_name (p), "namespace",
                            Pallet_vc_namespace (p));
  const char *sn = Pallet_vc_str (p, "spec.secret.name", NULL);
  if (sn)
    json_object_set_new (
        json_object_get (plan, "source"), "secretRef",
        json_pack ("{s:s,s:s}", "name", sn, "namespace",
                   Pallet_vc_str (p, "spec.secret.namespace", Pallet_vc_namespace (p))));
  char *err = NULL;
  json_t *cfg = pallet_plan_provider_config (set, plan, "source", &err);
  if (!cfg)
    fprintf (stderr, "pallet inventory: %s\n", err ? err : "cannot read the Provider");
  free (err);
  text = cfg ? json_dumps (cfg, JSON_COMPACT) : NULL;
  json_decref (cfg);
  json_decref (plan);
  *type = strdup (Pallet_vc_str (p, "spec.type", ""));
out:
  json_decref (ps);
  json_decref (set);
  return text;
}
#endif

static void
wipe (char *secret)
{
  if (secret) {
    memset (secret, 0, strlen (secret));
    free (secret);
  }
}

static int
run (const char *module, const char *config, const char *kind, const char *query, int fmt)
{
  struct pallet_module *m = NULL;
  if (pallet_module_load (module, 0, &m) != PALLET_OK) {
    Pallet_render_load_error (module);
    return PALLET_EXIT_LOAD;
  }
  int rc = 0;
  struct pallet_session *s = pallet_session_open (m, config, NULL);
  if (s == NULL) {
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
    pallet_module_free (m);
    return PALLET_EXIT_INPUT;
  }
  struct cli_render r;
  Pallet_render_init (&r, fmt, 0);
  Pallet_render_items_begin (&r);
  struct pallet_inventory_options io = PALLET_INVENTORY_OPTIONS_INIT;
  io.kind = kind;
  io.query = query;
  io.on_event = Pallet_render_item;
  io.opaque = &r;
  int status = pallet_inventory (s, &io);
  int out_failed = Pallet_render_finish (&r) != 0;
  if (status != PALLET_OK) {
    fprintf (stderr, "pallet: %s\n", pallet_last_error ());
    /* A bad query is the command line's fault. */
    rc = status == PALLET_E_INVALID && pallet_last_error_origin () == PALLET_ORIGIN_HOST
             ? PALLET_EXIT_USAGE
         : status == PALLET_E_ABI ? PALLET_EXIT_LOAD
                                  : PALLET_EXIT_VM_FAILED;
  }
  else if (out_failed) {
    fprintf (stderr, "pallet: cannot write the inventory: %s\n", strerror (errno));
    rc = PALLET_EXIT_INPUT;
  }
  pallet_session_close (s);
  pallet_module_free (m);
  return rc;
}

int
Pallet_cli_inventory (int argc, char **argv)
{
  struct vcommon c = { .verb = "inventory" };
  struct inv_opts o = { 0 };
  static const struct option opts[] = {
    { "provider", required_argument, NULL, IO_PROVIDER },
    { "config", required_argument, NULL, IO_CONFIG },
    { "module", required_argument, NULL, IO_MODULE },
    { "query", required_argument, NULL, 'q' },
    { 0 },
  };
  char *config = NULL, *type = NULL;
  int rc = Pallet_vc_parse (&c, argc, argv, opts, inv_opt, &o);
  if (rc)
    goto out;
  if (optind + 1 != argc) {
    rc = optind < argc ? Pallet_vc_usage (&c, "unexpected argument '%s'", argv[optind + 1])
                       : Pallet_vc_usage (&c, "give exactly one KIND (e.g. ec2-instance)");
    goto out;
  }
  if (Pallet_vc_format (&c, 1 << CLI_TABLE | 1 << CLI_JSON | 1 << CLI_YAML, CLI_TABLE) != 0) {
    rc = PALLET_EXIT_USAGE;
    goto out;
  }
  if (c.nfiles && o.config) {
    rc = Pallet_vc_usage (&c, "give either -f FILE (a Provider and its Secret) or --config "
                              "FILE, not both");
    goto out;
  }
  if (c.nfiles) {
#ifdef HAVE_PALLET_PLAN
    config = config_from_files (&c, &o, &type);
#endif
    if (!config) {
      rc = PALLET_EXIT_INPUT;
      goto out;
    }
  }
  else if (!o.config || !o.provider) {
    rc = Pallet_vc_usage (&c, "give the Forklift Provider and its Secret with -f FILE, or "
                              "--provider MODULE and --config FILE");
    goto out;
  }
  else if (!(config = config_file (o.config))) {
    rc = PALLET_EXIT_INPUT;
    goto out;
  }
  const char *module = o.module ? o.module : c.nfiles ? type : o.provider;
  if (!module || !*module) {
    rc = Pallet_vc_usage (&c, "the Provider has no spec.type; pass --module NAME|PATH");
    goto out;
  }
  rc = run (module, config, argv[optind], o.query, c.fmt);
out:
  wipe (config);
  free (type);
  free (c.files);
  return rc < 0 ? 0 : rc;
}
