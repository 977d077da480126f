/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the kubectl-mtv style verbs (verbs-*.c): option
 * parsing with did-you-mean, Forklift resources from -f files, output. */
#ifndef PALLET_CLI_VERBS_COMMON_H
#define PALLET_CLI_VERBS_COMMON_H

#include <getopt.h>
#include <jansson.h>

/* The options every verb shares (kubectl-mtv's global flags). */
struct vcommon {
  const char *verb;   /* "get", "describe", ... for messages */
  const char *output; /* -o */
  const char *ns;     /* -n */
  const char **files; /* -f, repeatable */
  size_t nfiles;
  const char *kubeconfig;
  const char *state_dir;
  int fmt; /* enum cli_format, after Pallet_vc_format */
};

/* The verb's --help text. */
const char *Pallet_vc_help (const char *verb);

/* The nearest of candidates (NULL-terminated) to word, or NULL if none is
 * close enough to be a likely typo. */
const char *Pallet_vc_nearest (const char *word, const char *const *candidates);

/* Prints "pallet VERB: MSG" and a hint; returns PALLET_EXIT_USAGE. */
int Pallet_vc_usage (const struct vcommon *c, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* getopt_long over argv (argv[0] is the verb) with opts; the common ones
 * (-o -n -f --kubeconfig --state-dir) are handled here, others go to
 * each (return non-zero to stop).  An unknown option is an error naming
 * the nearest known one.  Returns 0, -1 after printing --help (exit 0),
 * or an exit status. */
int Pallet_vc_parse (struct vcommon *c, int argc, char **argv, const struct option *opts,
                     int (*each) (int opt, const char *arg, void *ctx), void *ctx);

/* -o: allowed is a mask of 1 << enum cli_format; def the default. */
int Pallet_vc_format (struct vcommon *c, int allowed, int def);

/* The resource set of the -f files (pallet_plan_read), or NULL after an
 * error was printed. */
json_t *Pallet_vc_load (const struct vcommon *c);

/* The objects of kind (or of kind2 when not NULL) in set, in -n's
 * namespace when given, and named name when not NULL: a new array. */
json_t *Pallet_vc_objects (const struct vcommon *c, const json_t *set, const char *kind,
                           const char *kind2, const char *name);

/* With --kubeconfig: the cluster's Plans, Providers, NetworkMaps and
 * StorageMaps of the namespace as a resource set (as Pallet_vc_load
 * returns), or NULL after an error was printed. */
json_t *Pallet_vc_cluster_set (struct vcommon *c);

/* metadata.name / metadata.namespace, never NULL. */
const char *Pallet_vc_name (const json_t *obj);
const char *Pallet_vc_namespace (const json_t *obj);

/* A string at a dotted path of obj ("spec.provider.source.name"), or
 * def. */
const char *Pallet_vc_str (const json_t *obj, const char *path, const char *def);

/* Prints v as -o says.  With objects_as_documents, v is an array of
 * Kubernetes objects: JSON prints a v1 List of them, YAML one document
 * each, so kubectl apply -f - takes either.  Otherwise v as it is.  0, or
 * -1 on a write error. */
int Pallet_vc_print (const struct vcommon *c, json_t *v, int objects_as_documents);

#endif
