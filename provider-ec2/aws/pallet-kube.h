/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_kube: a tiny Kubernetes API reader (GET of lists, with paging)
 * over libcurl, for the EC2 provider's conversion-only plans (PVCs made
 * by someone else).  Part of the pallet_aws static library.
 *
 * The bearer token is sent only in the Authorization header; it is never
 * logged, never put in an error message, and wiped when freed.  TLS is
 * verified (the given CA file, else the system's) unless insecure is set. */
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
  size_t max_response_bytes; /* 0: 64 MiB per page */
};

struct Pallet_kube;

/* NULL with *errmsg (malloc'd) on bad config or out of memory. */
struct Pallet_kube *Pallet_kube_new (const struct Pallet_kube_config *cfg, char **errmsg);
void Pallet_kube_free (struct Pallet_kube *k);

/* GETs path (e.g. "/api/v1/namespaces/NS/persistentvolumeclaims") with
 * ?labelSelector=..&limit=.. and follows metadata.continue; appends every
 * item (object) to items.  Returns a pallet_status; on error *errmsg
 * (malloc'd) names the URL, the problem and the fix. */
int Pallet_kube_list (struct Pallet_kube *k, const char *path, const char *label_selector,
                      int limit, json_t *items, char **errmsg);

/* Appends the items of a List document (the JSON of `kubectl get ... -o
 * json`, or one page of the API) to items; *next (if next) is its
 * metadata.continue or NULL (borrowed from doc).  Returns 0, or -1 with
 * *errmsg (malloc'd) when doc is not a List of objects. */
int Pallet_kube_list_items (const json_t *doc, json_t *items, const char **next, char **errmsg);

#endif
