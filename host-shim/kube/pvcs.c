/* SPDX-License-Identifier: Apache-2.0 */
/* The PVCs of a namespace for conversion-only plans, from the API or from
 * a saved `kubectl get pvc -o json`: shared by the providers that convert
 * disks someone else made. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <pallet/provider.h>
#include "pallet-kube.h"

static int failf (char **msg, const char *fmt, ...) PALLET_PRINTF (2, 3);

static int
failf (char **msg, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (msg, fmt, ap) < 0)
    *msg = NULL;
  va_end (ap);
  return PALLET_E_INVALID;
}

static int
list_file (const char *file, const char *ns, json_t *items, char **msg)
{
  json_error_t jerr;
  json_t *doc = json_load_file (file, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc)
    return failf (msg,
                  "setting pvc-list-file: cannot read %s as JSON (%s, line %d); "
                  "write it with kubectl get pvc -n %s -o json > FILE",
                  file, jerr.text, jerr.line, ns);
  char *err = NULL;
  int r = Pallet_kube_list_items (doc, items, NULL, &err);
  json_decref (doc);
  if (r < 0) {
    failf (msg, "setting pvc-list-file %s: %s", file, err ? err : "not a List");
    free (err);
    return PALLET_E_INVALID;
  }
  return PALLET_OK;
}

int
Pallet_kube_list_pvcs (struct Pallet_kube *k, const char *list_file_path, const char *ns,
                       const char *const *selectors, json_t *items, char **msg)
{
  *msg = NULL;
  if (list_file_path)
    return list_file (list_file_path, ns, items, msg);
  char path[512];
  snprintf (path, sizeof path, "/api/v1/namespaces/%s/persistentvolumeclaims", ns);
  if (!selectors || !*selectors)
    return Pallet_kube_list (k, path, NULL, 500, items, msg);
  int st = PALLET_OK;
  for (size_t i = 0; selectors[i] && st == PALLET_OK; i++)
    st = Pallet_kube_list (k, path, selectors[i], 500, items, msg);
  return st;
}

int
Pallet_kube_list_pvcs_api (const struct Pallet_kube_config *kc, const char *ns,
                           const char *const *selectors, json_t *items, char **msg)
{
  *msg = NULL;
  struct Pallet_kube *k = Pallet_kube_new (kc, msg);
  if (!k)
    return PALLET_E_INVALID;
  int st = Pallet_kube_list_pvcs (k, NULL, ns, selectors, items, msg);
  Pallet_kube_free (k);
  return st;
}
