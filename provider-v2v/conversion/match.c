/* SPDX-License-Identifier: Apache-2.0 */
/* Conversion-only PVCs matched to the VM's disks by their disk-source. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "pallet-v2v-conversion.h"

static const char *
str (const json_t *o, const char *k)
{
  const char *v = json_string_value (json_object_get (o, k));
  return v ? v : "";
}

static const char *
meta (const json_t *pvc, const char *obj, const char *k)
{
  return str (json_object_get (json_object_get (pvc, "metadata"), obj), k);
}

static const char *
md (const json_t *pvc, const char *k)
{
  return str (json_object_get (pvc, "metadata"), k);
}

static const char *
base_name (const char *p)
{
  const char *s = strrchr (p, '/');
  return s ? s + 1 : p;
}

int
pallet_v2v_conversion_disk_of (const json_t *facts, const char *src)
{
  const json_t *disks = json_object_get (facts, "disks"), *d;
  size_t i;
  int by_base = -1, nbase = 0;
  if (!src || !*src)
    return -1;
  json_array_foreach (disks, i, d) {
    if (!strcmp (str (d, "file"), src) || !strcmp (str (d, "vmdk"), src))
      return (int) i;
    if (!strchr (src, '/') && !strcmp (base_name (str (d, "vmdk")), src)) {
      by_base = (int) i;
      nbase++;
    }
  }
  return nbase == 1 ? by_base : -1;
}

struct match {
  const json_t *facts;
  const char *ns, *vm, *moref, *uuid;
  json_t *claims, *problems;
  json_t *unlabelled; /* per disk: the first unlabelled PVC naming it */
};

static void problem (struct match *m, const char *type, const char *pvc, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
problem (struct match *m, const char *type, const char *pvc, const char *fmt, ...)
{
  char msg[1536];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  json_t *p = json_pack ("{s:s,s:s}", "type", type, "message", msg);
  if (pvc)
    json_object_set_new (p, "pvc", json_string (pvc));
  json_array_append_new (m->problems, p);
}

/* "[DS] a.vmdk, [DS] b.vmdk" */
static void
disk_list (const json_t *facts, char *buf, size_t cap)
{
  const json_t *d;
  size_t i, n = 0;
  buf[0] = '\0';
  json_array_foreach (json_object_get (facts, "disks"), i, d)
    if (n < cap)
      n += (size_t) snprintf (buf + n, cap - n, "%s%s", i ? ", " : "", str (d, "file"));
}

static int
for_this_vm (const struct match *m, const json_t *pvc)
{
  const char *id = meta (pvc, "labels", "vmID"), *uu = meta (pvc, "labels", "vmUUID");
  return (*m->moref && !strcmp (id, m->moref)) || (*m->uuid && !strcasecmp (uu, m->uuid));
}

static void
labelled (struct match *m, const json_t *pvc, const char *name)
{
  const char *src = meta (pvc, "annotations", PALLET_V2V_ANN_DISK_SOURCE);
  int i = pallet_v2v_conversion_disk_of (m->facts, src);
  char disks[1024];
  disk_list (m->facts, disks, sizeof disks);
  if (!*src)
    problem (m, "ConversionPVCAnnotationMissing", name,
             "PVC %s/%s is labelled for VM %s but has no " PALLET_V2V_ANN_DISK_SOURCE
             " annotation; annotate it with the .vmdk it holds (one of: %s)",
             m->ns, name, m->vm, disks);
  else if (i < 0)
    problem (m, "ConversionPVCUnknownDisk", name,
             "PVC %s/%s: its " PALLET_V2V_ANN_DISK_SOURCE
             " \"%s\" is not a disk of VM %s (its disks: %s); set the annotation to the .vmdk "
             "the PVC holds, or remove the PVC's vmID/vmUUID label if it is not this VM's",
             m->ns, name, src, m->vm, disks);
  else if (!json_is_null (json_array_get (m->claims, (size_t) i)))
    problem (
        m, "ConversionPVCDuplicate", name,
        "PVCs %s and %s both hold disk %d (%s) of VM %s; keep one PVC per disk (fix their " PALLET_V2V_ANN_DISK_SOURCE
        " annotations)",
        str (json_array_get (m->claims, (size_t) i), "pvcName"), name, i,
        str (json_array_get (json_object_get (m->facts, "disks"), (size_t) i), "file"), m->vm);
  else {
    const json_t *spec = json_object_get (pvc, "spec");
    json_t *c = json_pack (
        "{s:s,s:s,s:s}", "pvcName", name, "disk",
        str (json_array_get (json_object_get (m->facts, "disks"), (size_t) i), "file"),
        "volumeMode", *str (spec, "volumeMode") ? str (spec, "volumeMode") : "Filesystem");
    if (c && *str (spec, "storageClassName"))
      json_object_set_new (c, "storageClass", json_string (str (spec, "storageClassName")));
    json_array_set_new (m->claims, (size_t) i, c ? c : json_null ());
  }
}

/* An unlabelled PVC naming one of the VM's disks: the cause of a missing
 * disk, if no labelled PVC holds that disk. */
static void
unlabelled (struct match *m, const json_t *pvc, const char *name)
{
  if (*meta (pvc, "labels", "vmID") || *meta (pvc, "labels", "vmUUID"))
    return; /* another VM's */
  int i = pallet_v2v_conversion_disk_of (m->facts,
                                         meta (pvc, "annotations", PALLET_V2V_ANN_DISK_SOURCE));
  if (i >= 0 && json_is_null (json_array_get (m->unlabelled, (size_t) i)))
    json_array_set_new (m->unlabelled, (size_t) i, json_string (name));
}

static void
missing_disks (struct match *m)
{
  size_t i, n = json_array_size (m->claims), held = 0;
  json_t *c;
  char missing[1024] = "", found[1024] = "";
  size_t nm = 0, nf = 0;
  json_array_foreach (m->claims, i, c) {
    const char *file = str (json_array_get (json_object_get (m->facts, "disks"), i), "file");
    const char *u = json_string_value (json_array_get (m->unlabelled, i));
    if (!json_is_null (c)) {
      held++;
      if (nf < sizeof found)
        nf += (size_t) snprintf (found + nf, sizeof found - nf, "%s%s", nf ? ", " : "",
                                 str (c, "pvcName"));
    }
    else if (u)
      problem (m, "ConversionPVCLabelMissing", u,
               "PVC %s/%s holds disk %zu (%s) of VM %s by its " PALLET_V2V_ANN_DISK_SOURCE
               " annotation but has no vmID or vmUUID label; label it: kubectl label pvc -n %s "
               "%s vmID=%s vmUUID=%s",
               m->ns, u, i, file, m->vm, m->ns, u, m->moref, m->uuid);
    else if (nm < sizeof missing)
      nm += (size_t) snprintf (missing + nm, sizeof missing - nm, "%s%s", nm ? ", " : "", file);
  }
  if (nm)
    problem (
        m, "ConversionPVCCountMismatch", NULL,
        "VM %s has %zu disk%s but %zu PVC%s in namespace %s labelled vmID=%s or vmUUID=%s "
        "hold%s them (%s); no PVC holds %s: make one PVC per disk, labelled so and annotated " PALLET_V2V_ANN_DISK_SOURCE
        "=<the .vmdk>",
        m->vm, n, n == 1 ? "" : "s", held, held == 1 ? "" : "s", m->ns, m->moref, m->uuid,
        held == 1 ? "s" : "", nf ? found : "none", missing);
}

int
pallet_v2v_conversion_match (const json_t *facts, const json_t *pvcs, const char *ns,
                             json_t **claims, json_t **problems)
{
  struct match m = { .facts = facts,
                     .ns = ns ? ns : "",
                     .vm = str (facts, "name"),
                     .moref = str (facts, "id"),
                     .uuid = str (facts, "uuid"),
                     .claims = json_array (),
                     .problems = json_array (),
                     .unlabelled = json_array () };
  size_t i, j, n = json_array_size (json_object_get (facts, "disks"));
  const json_t *p, *q;
  for (i = 0; i < n; i++) {
    json_array_append_new (m.claims, json_null ());
    json_array_append_new (m.unlabelled, json_null ());
  }
  json_array_foreach (pvcs, i, p) {
    const char *name = md (p, "name"), *pns = md (p, "namespace");
    int seen = 0;
    json_array_foreach (pvcs, j, q)
      seen |= j < i && !strcmp (md (q, "name"), name) && !strcmp (md (q, "namespace"), pns);
    if (!*name || seen || (ns && *pns && strcmp (pns, ns)))
      continue;
    if (for_this_vm (&m, p))
      labelled (&m, p, name);
    else
      unlabelled (&m, p, name);
  }
  missing_disks (&m);
  json_decref (m.unlabelled);
  *claims = m.claims;
  *problems = m.problems;
  if (!m.claims || !m.problems)
    return -1;
  return (int) json_array_size (m.problems);
}
