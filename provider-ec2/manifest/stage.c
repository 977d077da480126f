/* SPDX-License-Identifier: Apache-2.0 */
/* The stage contract of build_vm items (ABI 1.1): every item carries the
 * label pallet.dev/stage, and the host applies the stages in order,
 * waiting for each Pod stage to succeed before the next:
 *   storage  Secret, ConfigMap, PersistentVolume, PersistentVolumeClaim
 *   copy     the copy Pods (fill the PVCs)
 *   convert  the conversion Pod (rewrites the guest on the PVCs)
 *   vm       the VirtualMachine
 * A VM with a Pod before it is emitted Halted and names the run strategy
 * it wants once the Pods have succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet-ec2-manifest.h"

static const char *const stages[] = { "storage", "copy", "convert", "vm" };
#define NSTAGES (sizeof stages / sizeof stages[0])

static const char *
str (const json_t *o, const char *key)
{
  const char *v = json_string_value (json_object_get (o, key));
  return v ? v : "";
}

/* The index of a stage name, or -1. */
static int
stage_index (const char *name)
{
  for (size_t i = 0; i < NSTAGES; i++)
    if (!strcmp (stages[i], name))
      return (int) i;
  return -1;
}

/* The stage of an item by kind; Pods say theirs themselves (a copy Pod
 * and a conversion Pod are both kind Pod). */
static int
stage_of (const json_t *m, char **errmsg)
{
  static const char *const storage[] = { "Secret", "ConfigMap", "PersistentVolume",
                                         "PersistentVolumeClaim" };
  const char *kind = str (m, "kind");
  const json_t *labels = json_object_get (json_object_get (m, "metadata"), "labels");
  const char *have = str (labels, PALLET_EC2_STAGE_LABEL);
  int want = -1;
  for (size_t i = 0; i < sizeof storage / sizeof storage[0]; i++)
    if (!strcmp (kind, storage[i]))
      want = 0;
  if (!strcmp (kind, "VirtualMachine"))
    want = 3;
  if (!strcmp (kind, "Pod")) {
    want = stage_index (have);
    if (want != 1 && want != 2) {
      if (asprintf (errmsg,
                    "Pod %s has label " PALLET_EC2_STAGE_LABEL " \"%s\"; a Pod is stage "
                    "\"copy\" or \"convert\" (provider bug)",
                    str (json_object_get (m, "metadata"), "name"), have)
          < 0)
        *errmsg = NULL;
      return -1;
    }
  }
  if (want < 0) {
    if (asprintf (errmsg,
                  "build_vm item kind \"%s\" has no stage; the stages are storage (Secret, "
                  "ConfigMap, PersistentVolume, PersistentVolumeClaim), copy and convert (Pod), "
                  "vm (VirtualMachine) (provider bug)",
                  kind)
        < 0)
      *errmsg = NULL;
    return -1;
  }
  return want;
}

static int
set_label (json_t *m, const char *stage)
{
  json_t *md = json_object_get (m, "metadata");
  json_t *labels = json_object_get (md, "labels");
  if (!json_is_object (md))
    return -1;
  if (!json_is_object (labels)) {
    labels = json_object ();
    if (json_object_set_new (md, "labels", labels) < 0)
      return -1;
  }
  return json_object_set_new (labels, PALLET_EC2_STAGE_LABEL, json_string (stage));
}

/* The VM waits for the Pods: Halted, with the strategy it wants after. */
static int
halt_vm (json_t *vm)
{
  json_t *md = json_object_get (vm, "metadata"), *spec = json_object_get (vm, "spec");
  json_t *ann = json_object_get (md, "annotations");
  json_t *want = json_object_get (spec, "runStrategy");
  if (!json_is_object (spec) || !json_is_string (want))
    return -1;
  if (!json_is_object (ann)) {
    ann = json_object ();
    if (json_object_set_new (md, "annotations", ann) < 0)
      return -1;
  }
  if (json_object_set (ann, PALLET_EC2_TARGET_RUN_STRATEGY, want) < 0)
    return -1;
  json_object_del (spec, "running");
  return json_object_set_new (spec, "runStrategy", json_string ("Halted"));
}

int
Pallet_ec2_stage_items (json_t *manifests, char **errmsg)
{
  size_t n = json_array_size (manifests), i, k = 0;
  json_t *sorted = json_array ();
  int *idx = calloc (n + 1, sizeof *idx), pods = 0, r = 0;

  *errmsg = NULL;
  if (!sorted || !idx || !json_is_array (manifests)) {
    r = -1;
    goto out;
  }
  for (i = 0; i < n; i++) {
    json_t *m = json_array_get (manifests, i);
    if ((idx[i] = stage_of (m, errmsg)) < 0 || set_label (m, stages[idx[i]]) < 0) {
      r = -1;
      goto out;
    }
    pods |= idx[i] == 1 || idx[i] == 2;
  }
  /* Stable: within a stage, the order the items were built in. */
  for (size_t st = 0; st < NSTAGES; st++)
    for (i = 0; i < n; i++)
      if (idx[i] == (int) st) {
        json_t *m = json_array_get (manifests, i);
        if (st == 3 && pods && halt_vm (m) < 0) {
          if (asprintf (errmsg, "the VirtualMachine has no spec.runStrategy (provider bug)") < 0)
            *errmsg = NULL;
          r = -1;
          goto out;
        }
        json_array_append (sorted, m);
        k++;
      }
  if (k != n || json_array_clear (manifests) < 0 || json_array_extend (manifests, sorted) < 0)
    r = -1;
out:
  if (r < 0 && !*errmsg)
    *errmsg = strdup ("out of memory labelling the build_vm items");
  json_decref (sorted);
  free (idx);
  return r;
}
