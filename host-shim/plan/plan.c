/* SPDX-License-Identifier: Apache-2.0 */
/* Forklift resources to the normalized plan, and provider configs.
 *
 * Every field read is type-checked; errors name the file, the document,
 * the object and the field path.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "pallet-plan.h"
#include "plan-internal.h"

#define FORKLIFT_API "forklift.konveyor.io/v1beta1"

const char *
Pallet_plan_type_name (const json_t *v)
{
  switch (v ? json_typeof (v) : JSON_NULL) {
  case JSON_OBJECT: return "a mapping";
  case JSON_ARRAY: return "a sequence";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a float";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: break;
  }
  return "null";
}

/* ---- locations and errors ---- */

static const json_t *
obj_of (const json_t *entry)
{
  return json_object_get (entry, "object");
}

static const char *
str_at (const json_t *obj, const char *a, const char *b)
{
  const json_t *v = json_object_get (obj, a);
  if (b)
    v = json_object_get (v, b);
  return json_string_value (v);
}

/* "plan.yaml: document 2 (Plan "p1")" for an entry of the set. */
char *
Pallet_plan_where (const json_t *entry)
{
  const json_t *obj = obj_of (entry);
  const char *kind = str_at (obj, "kind", NULL);
  const char *name = str_at (obj, "metadata", "name");
  const char *path = json_string_value (json_object_get (entry, "path"));
  char *s = NULL;

  if (asprintf (&s, "%s: document %lld%s%s (%s \"%s\")",
                json_string_value (json_object_get (entry, "file")),
                (long long) json_integer_value (json_object_get (entry, "document")),
                path && *path ? " " : "", path ? path : "", kind ? kind : "object",
                name ? name : "")
      < 0)
    s = NULL;
  return s;
}

__attribute__ ((format (printf, 4, 5))) static void
err_at (char **errmsg, const json_t *entry, const char *path, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL, *loc;

  if (!errmsg || *errmsg)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  loc = Pallet_plan_where (entry);
  Pallet_plan_set_error (errmsg, "%s: %s%s%s", loc ? loc : "plan", path ? path : "",
                         path && *path ? ": " : "", msg ? msg : "out of memory");
  free (loc);
  free (msg);
}

/* "a.yaml, b.yaml" */
static char *
files_of (const json_t *set)
{
  const json_t *files = json_object_get (set, "files");
  size_t i, len = 1;
  char *s;

  for (i = 0; i < json_array_size (files); ++i)
    len += json_string_length (json_array_get (files, i)) + 2;
  s = calloc (1, len);
  if (!s)
    return NULL;
  for (i = 0; i < json_array_size (files); ++i) {
    if (i)
      strcat (s, ", ");
    strcat (s, json_string_value (json_array_get (files, i)));
  }
  return s;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static int
is_rfc3339 (const char *t)
{
  int Y, M, D, h, m, sec, n = 0;
  if (sscanf (t, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n != 19
      || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
    return 0;
  t += n;
  if (*t == '.') {
    if (t[1] < '0' || t[1] > '9')
      return 0;
    for (t++; *t >= '0' && *t <= '9'; t++)
      ;
  }
  if (*t == 'Z' || *t == 'z')
    return t[1] == '\0';
  if (*t != '+' && *t != '-')
    return 0;
  int oh, om, k = 0;
  return sscanf (t + 1, "%2d:%2d%n", &oh, &om, &k) == 2 && k == 5 && t[6] == '\0' && oh <= 23
         && om <= 59;
}

/* ---- typed getters ---- */

enum want { W_STRING, W_MAP, W_SEQ, W_BOOL };

static const char *const want_names[] = { "a string", "a mapping", "a sequence", "a boolean" };

static int
fits (const json_t *v, enum want w)
{
  switch (w) {
  case W_STRING: return json_is_string (v);
  case W_MAP: return json_is_object (v);
  case W_SEQ: return json_is_array (v);
  case W_BOOL: return json_is_boolean (v);
  }
  return 0;
}

/* Gets obj[key] into *out, checking its type.  path is obj's path.  A
 * missing (or null) optional field gives *out = NULL.  Returns 0 or -1. */
static int
get (char **errmsg, const json_t *entry, const json_t *obj, const char *path, const char *key,
     enum want w, int required, const json_t **out)
{
  const json_t *v = json_object_get (obj, key);
  char full[512];

  snprintf (full, sizeof full, "%s%s%s", path, *path ? "." : "", key);
  *out = NULL;
  if (v == NULL || json_is_null (v)) {
    if (!required)
      return 0;
    err_at (errmsg, entry, full, "required field is missing; add %s", want_names[w]);
    return -1;
  }
  if (!fits (v, w)) {
    err_at (errmsg, entry, full, "expected %s, got %s", want_names[w], Pallet_plan_type_name (v));
    return -1;
  }
  *out = v;
  return 0;
}

/* A string field that must be one of the NULL-terminated list. */
static int
get_enum (char **errmsg, const json_t *entry, const json_t *obj, const char *path, const char *key,
          const char *const *allowed, int required, const char **out)
{
  const json_t *v;
  char full[512], list[256] = "";

  *out = NULL;
  if (get (errmsg, entry, obj, path, key, W_STRING, required, &v) == -1)
    return -1;
  if (!v)
    return 0;
  for (size_t i = 0; allowed[i]; ++i)
    if (strcmp (json_string_value (v), allowed[i]) == 0) {
      *out = allowed[i];
      return 0;
    }
  for (size_t i = 0; allowed[i]; ++i) {
    strncat (list, i ? ", " : "", sizeof list - strlen (list) - 1);
    strncat (list, allowed[i], sizeof list - strlen (list) - 1);
  }
  snprintf (full, sizeof full, "%s%s%s", path, *path ? "." : "", key);
  err_at (errmsg, entry, full, "'%.60s' is not one of %s", json_string_value (v), list);
  return -1;
}

/* ---- objects in the set ---- */

static const char *
ns_of (const json_t *obj)
{
  return str_at (obj, "metadata", "namespace");
}

/* Checks the envelope of the Forklift and Secret objects of the set. */
static int
check_envelopes (const json_t *set, char **errmsg)
{
  static const char *const kinds[] = { "Plan",   "NetworkMap", "StorageMap", "Provider",
                                       "Secret", "Hook",       NULL };
  const json_t *res = json_object_get (set, "resources"), *entry;
  size_t i;

  json_array_foreach (res, i, entry) {
    const json_t *obj = obj_of (entry), *kind, *api, *md, *v;
    const char *want_api;
    size_t k;

    kind = json_object_get (obj, "kind");
    if (!json_is_string (kind)) {
      err_at (errmsg, entry, "kind",
              kind ? "expected a string, got %s"
                   : "required field is missing%s; every Kubernetes object "
                     "has a kind",
              kind ? Pallet_plan_type_name (kind) : "");
      return -1;
    }
    for (k = 0; kinds[k]; ++k)
      if (strcmp (json_string_value (kind), kinds[k]) == 0)
        break;
    if (!kinds[k])
      continue; /* not ours: Migration, ConfigMap, ... */
    want_api = strcmp (kinds[k], "Secret") == 0 ? "v1" : FORKLIFT_API;
    if (get (errmsg, entry, obj, "", "apiVersion", W_STRING, 1, &api) == -1)
      return -1;
    if (strcmp (json_string_value (api), want_api) != 0) {
      err_at (errmsg, entry, "apiVersion",
              "expected %s for a %s, got "
              "'%.60s'",
              want_api, kinds[k], json_string_value (api));
      return -1;
    }
    if (get (errmsg, entry, obj, "", "metadata", W_MAP, 1, &md) == -1
        || get (errmsg, entry, md, "metadata", "name", W_STRING, 1, &v) == -1
        || get (errmsg, entry, md, "metadata", "namespace", W_STRING, 0, &v) == -1
        || get (errmsg, entry, md, "metadata", "uid", W_STRING, 0, &v) == -1)
      return -1;
  }
  return 0;
}

/* Finds the entry of kind named name in namespace ns (NULL: any).  An
 * object without a namespace matches any.  Returns NULL if none; sets
 * *ambiguous when several match equally. */
static const json_t *
find (const json_t *set, const char *kind, const char *name, const char *ns, int *ambiguous)
{
  const json_t *res = json_object_get (set, "resources"), *entry;
  const json_t *exact = NULL, *loose = NULL;
  int nexact = 0, nloose = 0;
  size_t i;

  *ambiguous = 0;
  json_array_foreach (res, i, entry) {
    const json_t *obj = obj_of (entry);
    const char *ons = ns_of (obj);
    const char *k = str_at (obj, "kind", NULL);
    const char *n = str_at (obj, "metadata", "name");

    if (!k || !n || strcmp (k, kind) != 0 || strcmp (n, name) != 0)
      continue;
    if (ns && ons && strcmp (ns, ons) == 0)
      exact = entry, ++nexact;
    else if (!ns || !ons)
      loose = entry, ++nloose;
  }
  if (nexact) {
    *ambiguous = nexact > 1;
    return exact;
  }
  *ambiguous = nloose > 1;
  return loose;
}

/* Resolves a {name, namespace} reference at path in entry's object.
 * def_ns is the namespace a reference without one means. */
static const json_t *
resolve_ref (char **errmsg, const json_t *set, const json_t *entry, const json_t *ref,
             const char *path, const char *kind, const char *def_ns, const char **ref_ns)
{
  const json_t *name, *ns, *found;
  int ambiguous;
  char *files;

  if (get (errmsg, entry, ref, path, "name", W_STRING, 1, &name) == -1
      || get (errmsg, entry, ref, path, "namespace", W_STRING, 0, &ns) == -1)
    return NULL;
  *ref_ns = ns ? json_string_value (ns) : def_ns;
  found = find (set, kind, json_string_value (name), *ref_ns, &ambiguous);
  if (found && !ambiguous)
    return found;
  files = files_of (set);
  if (ambiguous)
    err_at (errmsg, entry, path,
            "%s \"%s\" matches several objects in %s; "
            "give the reference a namespace",
            kind, json_string_value (name), files ? files : "the files");
  else
    err_at (errmsg, entry, path,
            "%s \"%s\"%s%s%s was not found in %s; add "
            "it to the files or fix the reference",
            kind, json_string_value (name), *ref_ns ? " in namespace \"" : "",
            *ref_ns ? *ref_ns : "", *ref_ns ? "\"" : "", files ? files : "the files");
  free (files);
  return NULL;
}

/* ---- the Plan ---- */

static const json_t *
choose_plan (const json_t *set, const char *plan_name, char **errmsg)
{
  const json_t *res = json_object_get (set, "resources"), *entry;
  const json_t *found = NULL;
  char names[512] = "", *files;
  int count = 0, matches = 0;
  size_t i;

  json_array_foreach (res, i, entry) {
    const json_t *obj = obj_of (entry);
    const char *k = str_at (obj, "kind", NULL);
    const char *n = str_at (obj, "metadata", "name");
    const char *ns = ns_of (obj);
    const char *slash = plan_name ? strchr (plan_name, '/') : NULL;
    int match;

    if (!k || strcmp (k, "Plan") != 0)
      continue;
    ++count;
    snprintf (names + strlen (names), sizeof names - strlen (names), "%s%s%s%s",
              count > 1 ? ", " : "", ns ? ns : "", ns ? "/" : "", n);
    if (!plan_name)
      match = 1;
    else if (slash)
      match = ns && strlen (ns) == (size_t) (slash - plan_name)
              && strncmp (ns, plan_name, (size_t) (slash - plan_name)) == 0
              && strcmp (n, slash + 1) == 0;
    else
      match = strcmp (n, plan_name) == 0;
    if (match) {
      found = entry;
      ++matches;
    }
  }
  if (matches == 1)
    return found;
  files = files_of (set);
  if (count == 0)
    Pallet_plan_set_error (errmsg,
                           "plan: no Plan (apiVersion %s, kind Plan) in "
                           "%s; add one",
                           FORKLIFT_API, files ? files : "the files");
  else if (!plan_name)
    Pallet_plan_set_error (errmsg,
                           "plan: %s hold %d Plans (%s); choose one by "
                           "name",
                           files ? files : "the files", count, names);
  else if (matches == 0)
    Pallet_plan_set_error (errmsg,
                           "plan: no Plan named \"%s\" in %s (found: %s); "
                           "check the name",
                           plan_name, files ? files : "the files", names);
  else
    Pallet_plan_set_error (errmsg,
                           "plan: %d Plans named \"%s\" in %s (%s); choose "
                           "one as namespace/name",
                           matches, plan_name, files ? files : "the files", names);
  free (files);
  return NULL;
}

/* A stable UID for a plan without metadata.uid: a name-based UUID. */
static json_t *
derived_uid (const char *ns, const char *name)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char *in = NULL, out[37];

  if (asprintf (&in, "pallet-plan/%s/%s", ns, name) < 0)
    return NULL;
  if (!EVP_Digest (in, strlen (in), md, &mdlen, EVP_sha256 (), NULL)) {
    free (in);
    return NULL;
  }
  free (in);
  md[6] = (unsigned char) ((md[6] & 0x0f) | 0x50); /* version 5 style */
  md[8] = (unsigned char) ((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf (out, sizeof out,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x",
            md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11],
            md[12], md[13], md[14], md[15]);
  return json_string (out);
}

static const char *const power_states[] = { "on", "off", "auto", NULL };

/* spec.vms -> vms[] with index; checks each entry. */
static json_t *
normalize_vms (char **errmsg, const json_t *entry, const json_t *spec)
{
  const json_t *vms, *vm;
  json_t *out;
  size_t i;

  if (get (errmsg, entry, spec, "spec", "vms", W_SEQ, 1, &vms) == -1)
    return NULL;
  if (json_array_size (vms) == 0) {
    err_at (errmsg, entry, "spec.vms",
            "the plan has no VMs; add at least "
            "one entry with an id or a name");
    return NULL;
  }
  out = json_array ();
  if (!out)
    return NULL;
  json_array_foreach (vms, i, vm) {
    char path[64];
    const json_t *id, *name, *tn;
    const char *ps;
    json_t *copy;

    snprintf (path, sizeof path, "spec.vms[%zu]", i);
    if (!json_is_object (vm)) {
      err_at (errmsg, entry, path,
              "expected a mapping with an id or a "
              "name, got %s",
              Pallet_plan_type_name (vm));
      goto fail;
    }
    if (get (errmsg, entry, vm, path, "id", W_STRING, 0, &id) == -1
        || get (errmsg, entry, vm, path, "name", W_STRING, 0, &name) == -1
        || get (errmsg, entry, vm, path, "targetName", W_STRING, 0, &tn) == -1
        || get_enum (errmsg, entry, vm, path, "targetPowerState", power_states, 0, &ps) == -1)
      goto fail;
    if (!id && !name) {
      err_at (errmsg, entry, path,
              "a VM needs an id or a name; add "
              "one");
      goto fail;
    }
    /* The same VM twice would be migrated twice. */
    for (size_t j = 0; j < i; ++j) {
      const json_t *o = json_array_get (out, j);
      const char *oid = str_at (o, "id", NULL), *on = str_at (o, "name", NULL);
      if ((id && oid && strcmp (oid, json_string_value (id)) == 0)
          || (!id && !oid && name && on && strcmp (on, json_string_value (name)) == 0)) {
        err_at (errmsg, entry, path,
                "VM \"%s\" is listed twice (also "
                "spec.vms[%zu]); remove one",
                json_string_value (id ? id : name), j);
        goto fail;
      }
    }
    copy = json_deep_copy (vm);
    if (!copy || json_object_set (copy, "id", id ? (json_t *) id : json_null ())
        || json_object_set (copy, "name", name ? (json_t *) name : json_null ())
        || json_object_set_new (copy, "index", json_integer ((json_int_t) i))
        || json_array_append_new (out, copy)) {
      Pallet_plan_set_error (errmsg, "plan: out of memory");
      goto fail;
    }
  }
  return out;

fail:
  json_decref (out);
  return NULL;
}

/* Checks a map entry's source: a mapping with an id or a name. */
static int
check_map_source (char **errmsg, const json_t *entry, const json_t *item, const char *path)
{
  const json_t *src, *id, *name;
  char p[128];

  if (get (errmsg, entry, item, path, "source", W_MAP, 1, &src) == -1)
    return -1;
  snprintf (p, sizeof p, "%s.source", path);
  if (get (errmsg, entry, src, p, "id", W_STRING, 0, &id) == -1
      || get (errmsg, entry, src, p, "name", W_STRING, 0, &name) == -1)
    return -1;
  if (!id && !name) {
    err_at (errmsg, entry, p, "needs an id or a name; add one");
    return -1;
  }
  return 0;
}

static int
check_network_entry (char **errmsg, const json_t *entry, const json_t *item, const char *path)
{
  static const char *const types[] = { "pod", "multus", "ignored", NULL };
  const json_t *dst, *name, *ns;
  const char *type;
  char p[128];

  if (check_map_source (errmsg, entry, item, path) == -1
      || get (errmsg, entry, item, path, "destination", W_MAP, 1, &dst) == -1)
    return -1;
  snprintf (p, sizeof p, "%s.destination", path);
  if (get_enum (errmsg, entry, dst, p, "type", types, 1, &type) == -1
      || get (errmsg, entry, dst, p, "name", W_STRING, strcmp (type, "multus") == 0, &name) == -1
      || get (errmsg, entry, dst, p, "namespace", W_STRING, 0, &ns) == -1)
    return -1;
  return 0;
}

static int
check_storage_entry (char **errmsg, const json_t *entry, const json_t *item, const char *path)
{
  static const char *const modes[] = { "ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", NULL };
  static const char *const vmodes[] = { "Filesystem", "Block", NULL };
  const json_t *dst, *sc;
  const char *s;
  char p[128];

  if (check_map_source (errmsg, entry, item, path) == -1
      || get (errmsg, entry, item, path, "destination", W_MAP, 1, &dst) == -1)
    return -1;
  snprintf (p, sizeof p, "%s.destination", path);
  if (get (errmsg, entry, dst, p, "storageClass", W_STRING, 1, &sc) == -1
      || get_enum (errmsg, entry, dst, p, "accessMode", modes, 0, &s) == -1
      || get_enum (errmsg, entry, dst, p, "volumeMode", vmodes, 0, &s) == -1)
    return -1;
  return 0;
}

/* spec.map.network / .storage -> the map's spec.map entries. */
static json_t *
normalize_map (char **errmsg, const json_t *set, const json_t *plan_entry, const json_t *maps,
               const char *which, const char *kind, const char *plan_ns)
{
  const json_t *ref, *map_entry, *spec, *items, *item;
  const char *ref_ns;
  char path[32];
  size_t i;
  int (*check) (char **, const json_t *, const json_t *, const char *) =
      strcmp (kind, "NetworkMap") == 0 ? check_network_entry : check_storage_entry;

  snprintf (path, sizeof path, "spec.map.%s", which);
  if (get (errmsg, plan_entry, maps, maps ? "spec.map" : "", which, W_MAP, 0, &ref) == -1)
    return NULL;
  if (!ref)
    return json_array (); /* no map: nothing to map */
  map_entry = resolve_ref (errmsg, set, plan_entry, ref, path, kind, plan_ns, &ref_ns);
  if (!map_entry)
    return NULL;
  if (get (errmsg, map_entry, obj_of (map_entry), "", "spec", W_MAP, 1, &spec) == -1
      || get (errmsg, map_entry, spec, "spec", "map", W_SEQ, 1, &items) == -1)
    return NULL;
  json_array_foreach (items, i, item) {
    char p[64];
    snprintf (p, sizeof p, "spec.map[%zu]", i);
    if (!json_is_object (item)) {
      err_at (errmsg, map_entry, p,
              "expected a mapping with source and "
              "destination, got %s",
              Pallet_plan_type_name (item));
      return NULL;
    }
    if (check (errmsg, map_entry, item, p) == -1)
      return NULL;
  }
  return json_deep_copy (items);
}

/* Secret data (base64) merged with stringData, as a new object. */
static json_t *
secret_values (char **errmsg, const json_t *entry)
{
  const json_t *obj = obj_of (entry), *data, *sdata, *v;
  const char *key;
  json_t *out;

  if (get (errmsg, entry, obj, "", "data", W_MAP, 0, &data) == -1
      || get (errmsg, entry, obj, "", "stringData", W_MAP, 0, &sdata) == -1)
    return NULL;
  out = json_object ();
  if (!out)
    return NULL;
  json_object_foreach ((json_t *) data, key, v) {
    char path[300];
    const char *s = json_string_value (v);
    size_t n, dlen = 0;
    unsigned char *buf;
    char *clean = NULL;
    int r, pad = 0;
    json_t *str;

    snprintf (path, sizeof path, "data.%.250s", key);
    if (!json_is_string (v)) {
      err_at (errmsg, entry, path, "expected a base64 string, got %s", Pallet_plan_type_name (v));
      goto fail;
    }
    /* Base64 wrapped over lines (base64 without -w0) is accepted. */
    n = json_string_length (v);
    clean = malloc (n + 1);
    if (!clean)
      goto fail;
    for (size_t k = 0; k < n; ++k)
      if (!strchr (" \t\r\n", s[k]))
        clean[dlen++] = s[k];
    clean[dlen] = '\0';
    if (dlen % 4 != 0 || dlen > INT32_MAX)
      goto bad64;
    if (dlen >= 1 && clean[dlen - 1] == '=')
      ++pad;
    if (dlen >= 2 && clean[dlen - 2] == '=')
      ++pad;
    buf = malloc (dlen / 4 * 3 + 1);
    if (!buf) {
      free (clean);
      goto fail;
    }
    r = EVP_DecodeBlock (buf, (const unsigned char *) clean, (int) dlen);
    OPENSSL_cleanse (clean, n + 1);
    free (clean);
    clean = NULL;
    if (r < 0 || (size_t) r < (size_t) pad) {
      OPENSSL_cleanse (buf, dlen / 4 * 3 + 1);
      free (buf);
      goto bad64;
    }
    str = json_stringn ((const char *) buf, (size_t) r - (size_t) pad);
    OPENSSL_cleanse (buf, dlen / 4 * 3 + 1);
    free (buf);
    if (!str) {
      err_at (errmsg, entry, path,
              "the decoded value is not UTF-8 "
              "text; store text credentials");
      goto fail;
    }
    if (json_object_set_new (out, key, str) == -1)
      goto fail;
    continue;
bad64:
    if (clean) {
      OPENSSL_cleanse (clean, n + 1);
      free (clean);
    }
    err_at (errmsg, entry, path,
            "not valid base64; encode the value with "
            "'base64 -w0' or put it in stringData");
    goto fail;
  }
  json_object_foreach ((json_t *) sdata, key, v) {
    char path[300];
    snprintf (path, sizeof path, "stringData.%.250s", key);
    if (!json_is_string (v)) {
      err_at (errmsg, entry, path, "expected a string, got %s", Pallet_plan_type_name (v));
      goto fail;
    }
    if (json_object_set (out, key, (json_t *) v) == -1)
      goto fail;
  }
  return out;

fail:
  Pallet_plan_set_error (errmsg, "plan: out of memory");
  json_decref (out);
  return NULL;
}

/* The cutover time of a warm plan: spec.cutover of a Forklift Migration
 * whose spec.plan names the Plan.  *out = NULL when none has one. */
static int
migration_cutover (char **errmsg, const json_t *set, const char *plan_name, const char *plan_ns,
                   const char **out)
{
  const json_t *res = json_object_get (set, "resources"), *entry;
  size_t i;

  *out = NULL;
  json_array_foreach (res, i, entry) {
    const json_t *obj = obj_of (entry), *spec, *ref, *name, *ns, *cut;
    const char *mns;

    if (!json_is_string (json_object_get (obj, "kind"))
        || strcmp (str_at (obj, "kind", NULL), "Migration") != 0)
      continue;
    spec = json_object_get (obj, "spec");
    ref = json_object_get (spec, "plan");
    name = json_object_get (ref, "name");
    ns = json_object_get (ref, "namespace");
    mns = ns_of (obj) ? ns_of (obj) : "default";
    if (!json_is_string (name) || strcmp (json_string_value (name), plan_name) != 0)
      continue;
    if (strcmp (json_is_string (ns) ? json_string_value (ns) : mns, plan_ns) != 0)
      continue;
    if (get (errmsg, entry, spec, "spec", "cutover", W_STRING, 0, &cut) == -1)
      return -1;
    if (!cut)
      continue;
    if (!is_rfc3339 (json_string_value (cut))) {
      err_at (errmsg, entry, "spec.cutover",
              "'%.60s' is not an RFC 3339 "
              "time; write it as 2026-11-25T02:00:00Z",
              json_string_value (cut));
      return -1;
    }
    *out = json_string_value (cut);
  }
  return 0;
}

/* The host cluster as a destination. */
static json_t *
host_provider (void)
{
  return json_pack ("{s:s, s:n, s:s, s:s, s:{}, s:n, s:b}", "name", "host", "namespace", "type",
                    "openshift", "url", "", "settings", "secretRef", "host", 1);
}

/* spec.provider.source / .destination -> the provider summary. */
static json_t *
normalize_provider (char **errmsg, const json_t *set, const json_t *plan_entry,
                    const json_t *providers, const char *which, const char *plan_ns)
{
  const json_t *ref, *pentry, *pobj, *spec, *type, *url, *settings, *sref;
  const json_t *secret_entry, *v;
  const char *ref_ns, *pns;
  json_t *out, *secret_ref = NULL;
  char path[64];
  int required = strcmp (which, "source") == 0;

  snprintf (path, sizeof path, "spec.provider.%s", which);
  if (get (errmsg, plan_entry, providers, "spec.provider", which, W_MAP, required, &ref) == -1)
    return NULL;
  if (!ref)
    return host_provider ();
  /* A destination named "host" that is not in the files is the local
   * cluster, as in Forklift. */
  if (!required && json_is_string (json_object_get (ref, "name"))
      && strcmp (str_at (ref, "name", NULL), "host") == 0) {
    int ambiguous;
    const char *ns = str_at (ref, "namespace", NULL);
    if (!find (set, "Provider", "host", ns ? ns : plan_ns, &ambiguous))
      return host_provider ();
  }
  pentry = resolve_ref (errmsg, set, plan_entry, ref, path, "Provider", plan_ns, &ref_ns);
  if (!pentry)
    return NULL;
  pobj = obj_of (pentry);
  pns = ns_of (pobj) ? ns_of (pobj) : ref_ns;
  if (get (errmsg, pentry, pobj, "", "spec", W_MAP, 1, &spec) == -1
      || get (errmsg, pentry, spec, "spec", "type", W_STRING, 1, &type) == -1
      || get (errmsg, pentry, spec, "spec", "url", W_STRING, 0, &url) == -1
      || get (errmsg, pentry, spec, "spec", "settings", W_MAP, 0, &settings) == -1
      || get (errmsg, pentry, spec, "spec", "secret", W_MAP, 0, &sref) == -1)
    return NULL;
  if (sref) {
    const char *sns;
    json_t *values;

    secret_entry = resolve_ref (errmsg, set, pentry, sref, "spec.secret", "Secret", pns, &sns);
    if (!secret_entry)
      return NULL;
    /* Decode now so a bad Secret fails at load, not at open(). */
    values = secret_values (errmsg, secret_entry);
    if (!values)
      return NULL;
    json_decref (values);
    v = json_object_get (obj_of (secret_entry), "metadata");
    secret_ref = json_pack ("{s:O, s:s?}", "name", json_object_get (v, "name"), "namespace",
                            str_at (v, "namespace", NULL) ? str_at (v, "namespace", NULL) : sns);
    if (!secret_ref) {
      Pallet_plan_set_error (errmsg, "plan: out of memory");
      return NULL;
    }
  }
  out = json_pack ("{s:s, s:s?, s:s, s:s, s:o, s:o, s:b}", "name",
                   str_at (pobj, "metadata", "name"), "namespace", pns, "type",
                   json_string_value (type), "url", url ? json_string_value (url) : "", "settings",
                   settings ? json_deep_copy (settings) : json_object (), "secretRef",
                   secret_ref ? secret_ref : json_null (), "host", 0);
  if (!out)
    Pallet_plan_set_error (errmsg, "plan: out of memory");
  return out;
}

/* A Hook's spec.playbook (base64) as text, or NULL with *errmsg. */
static json_t *
playbook_text (char **errmsg, const json_t *entry, const char *b64)
{
  size_t n = strlen (b64), len = 0;
  char *clean = malloc (n + 1);
  unsigned char *buf = malloc (n / 4 * 3 + 4);
  json_t *out = NULL;
  if (clean && buf) {
    for (size_t k = 0; k < n; ++k)
      if (!strchr (" \t\r\n", b64[k]))
        clean[len++] = b64[k];
    clean[len] = '\0';
    int pad = (len >= 1 && clean[len - 1] == '=') + (len >= 2 && clean[len - 2] == '=');
    int r = len % 4 == 0 && len <= INT32_MAX
                ? EVP_DecodeBlock (buf, (const unsigned char *) clean, (int) len)
                : -1;
    if (r >= pad)
      out = json_stringn ((const char *) buf, (size_t) (r - pad));
    if (!out)
      err_at (errmsg, entry, "spec.playbook",
              "not valid base64 of UTF-8 text; encode the playbook with 'base64 -w0'");
  }
  else
    Pallet_plan_set_error (errmsg, "plan: out of memory");
  free (clean);
  free (buf);
  return out;
}

/* spec.vms[].hooks: each {hook: {name, namespace}, step} resolved to the
 * Hook in the files, so the host can run it without the resource set:
 * {step, hook: {name, namespace}, uid, image, playbook (base64 as
 * written), playbookText (decoded), serviceAccount, deadline}.  A missing
 * Hook, a second hook for one step, or a step other than PreHook and
 * PostHook fails the load. */
static int
resolve_hooks (char **errmsg, const json_t *set, const json_t *entry, json_t *vms,
               const char *plan_ns)
{
  static const char *const steps[] = { "PreHook", "PostHook", NULL };
  size_t i;
  json_t *vm;

  json_array_foreach (vms, i, vm) {
    char path[96];
    const json_t *hooks, *h;
    size_t j;
    json_t *out;

    snprintf (path, sizeof path, "spec.vms[%zu]", i);
    if (get (errmsg, entry, vm, path, "hooks", W_SEQ, 0, &hooks) == -1)
      return -1;
    if (!hooks)
      continue;
    if (!(out = json_array ()))
      goto oom;
    json_array_foreach (hooks, j, h) {
      char hp[128], rp[160];
      const json_t *ref, *he, *hspec, *v;
      const char *step, *ns, *sa = NULL, *image = "quay.io/kubev2v/hook-runner";
      json_t *text = NULL, *r;
      json_int_t deadline = 0;

      snprintf (hp, sizeof hp, "%s.hooks[%zu]", path, j);
      snprintf (rp, sizeof rp, "%s.hook", hp);
      if (!json_is_object (h)) {
        err_at (errmsg, entry, hp, "expected a mapping with hook and step, got %s",
                Pallet_plan_type_name (h));
        goto fail;
      }
      if (get_enum (errmsg, entry, h, hp, "step", steps, 1, &step) == -1
          || get (errmsg, entry, h, hp, "hook", W_MAP, 1, &ref) == -1
          || !(he = resolve_ref (errmsg, set, entry, ref, rp, "Hook", plan_ns, &ns)))
        goto fail;
      for (size_t k = 0; k < json_array_size (out); ++k)
        if (!strcmp (json_string_value (json_object_get (json_array_get (out, k), "step")), step)) {
          err_at (errmsg, entry, hp,
                  "a second %s for this VM (also %s.hooks[%zu]); a VM runs one hook per step", step,
                  path, k);
          goto fail;
        }
      if (get (errmsg, he, obj_of (he), "", "spec", W_MAP, 0, &hspec) == -1
          || get (errmsg, he, hspec, "spec", "image", W_STRING, 0, &v) == -1)
        goto fail;
      if (v && json_string_length (v))
        image = json_string_value (v);
      if (get (errmsg, he, hspec, "spec", "serviceAccount", W_STRING, 0, &v) == -1)
        goto fail;
      sa = v && json_string_length (v) ? json_string_value (v) : NULL;
      v = json_object_get (hspec, "deadline");
      if (v && !json_is_null (v)) {
        if (!json_is_integer (v) || json_integer_value (v) < 0) {
          err_at (errmsg, he, "spec.deadline", "expected a whole number of seconds >= 0, got %s",
                  Pallet_plan_type_name (v));
          goto fail;
        }
        deadline = json_integer_value (v);
      }
      if (get (errmsg, he, hspec, "spec", "playbook", W_STRING, 0, &v) == -1)
        goto fail;
      if (v && json_string_length (v)
          && !(text = playbook_text (errmsg, he, json_string_value (v))))
        goto fail;
      r = json_pack ("{s:s, s:{s:s, s:s?}, s:s?, s:s, s:O?, s:o?, s:s?, s:I}", "step", step, "hook",
                     "name", str_at (obj_of (he), "metadata", "name"), "namespace", ns, "uid",
                     str_at (obj_of (he), "metadata", "uid"), "image", image, "playbook",
                     text ? v : NULL, "playbookText", text, "serviceAccount", sa, "deadline",
                     deadline);
      if (!r || json_array_append_new (out, r))
        goto oom_out;
    }
    if (json_object_set_new (vm, "hooks", out))
      goto oom;
    continue;
oom_out:
    json_decref (out);
    goto oom;
fail:
    json_decref (out);
    return -1;
  }
  return 0;
oom:
  Pallet_plan_set_error (errmsg, "plan: out of memory");
  return -1;
}

/* spec.customizationScripts: the ConfigMap it names, resolved now so the
 * provider gets the scripts themselves: {name, namespace, scripts: {key:
 * text}}, or null when unset.  A missing ConfigMap fails the load. */
static int
customization_scripts (char **errmsg, const json_t *set, const json_t *entry, const json_t *spec,
                       const char *plan_ns, json_t **out)
{
  const json_t *ref, *cm, *data;
  const char *ns;

  *out = NULL;
  if (get (errmsg, entry, spec, "spec", "customizationScripts", W_MAP, 0, &ref) == -1)
    return -1;
  if (!ref)
    return 0;
  cm =
      resolve_ref (errmsg, set, entry, ref, "spec.customizationScripts", "ConfigMap", plan_ns, &ns);
  if (!cm)
    return -1;
  data = json_object_get (obj_of (cm), "data");
  *out =
      json_pack ("{s:s, s:s?, s:o}", "name", str_at (obj_of (cm), "metadata", "name"), "namespace",
                 ns, "scripts", json_is_object (data) ? json_deep_copy (data) : json_object ());
  if (!*out) {
    Pallet_plan_set_error (errmsg, "plan: out of memory");
    return -1;
  }
  return 0;
}

json_t *
pallet_plan_normalize (const json_t *set, const char *plan_name, char **errmsg)
{
  return pallet_plan_normalize_ext (set, plan_name, 0, NULL, errmsg);
}

json_t *
pallet_plan_normalize_ext (const json_t *set, const char *plan_name, unsigned flags,
                           json_t *warnings, char **errmsg)
{
  static const char *const types[] = { "cold", "warm", "live", "conversion", NULL };
  const json_t *entry, *obj, *md, *spec, *v, *warm, *skip, *providers, *maps;
  const char *type, *ps, *ns, *name, *cutover;
  json_t *vms = NULL, *nmap = NULL, *smap = NULL, *src = NULL, *dst = NULL;
  json_t *uid = NULL, *out = NULL, *scripts = NULL;

  if (errmsg)
    *errmsg = NULL;
  if (!json_is_array (json_object_get (set, "resources"))) {
    Pallet_plan_set_error (errmsg, "plan: not a resource set; read the files "
                                   "with pallet_plan_read");
    return NULL;
  }
  if (check_envelopes (set, errmsg) == -1
      || Pallet_plan_check_schema (set, 1, flags, warnings, errmsg) == -1)
    return NULL;
  entry = choose_plan (set, plan_name, errmsg);
  if (!entry)
    return NULL;
  obj = obj_of (entry);
  md = json_object_get (obj, "metadata");
  name = str_at (md, "name", NULL);
  ns = ns_of (obj) ? ns_of (obj) : "default";

  if (get (errmsg, entry, obj, "", "spec", W_MAP, 1, &spec) == -1
      || get_enum (errmsg, entry, spec, "spec", "type", types, 0, &type) == -1
      || get (errmsg, entry, spec, "spec", "warm", W_BOOL, 0, &warm) == -1
      || get (errmsg, entry, spec, "spec", "targetNamespace", W_STRING, 0, &v) == -1
      || get_enum (errmsg, entry, spec, "spec", "targetPowerState", power_states, 0, &ps) == -1
      || get (errmsg, entry, spec, "spec", "skipGuestConversion", W_BOOL, 0, &skip) == -1)
    return NULL;
  if (type && strcmp (type, "live") == 0) {
    err_at (errmsg, entry, "spec.type",
            "live migration is not supported "
            "by pallet; use cold or warm");
    return NULL;
  }
  if (!type)
    type = warm && json_is_true (warm) ? "warm" : "cold";
  if (migration_cutover (errmsg, set, name, ns, &cutover) == -1)
    return NULL;
  if (!(vms = normalize_vms (errmsg, entry, spec)) || resolve_hooks (errmsg, set, entry, vms, ns)
      || customization_scripts (errmsg, set, entry, spec, ns, &scripts) == -1)
    goto fail;
  if (get (errmsg, entry, spec, "spec", "provider", W_MAP, 1, &providers) == -1
      || !(src = normalize_provider (errmsg, set, entry, providers, "source", ns))
      || !(dst = normalize_provider (errmsg, set, entry, providers, "destination", ns)))
    goto fail;
  if (get (errmsg, entry, spec, "spec", "map", W_MAP, 0, &maps) == -1
      || !(nmap = normalize_map (errmsg, set, entry, maps, "network", "NetworkMap", ns))
      || !(smap = normalize_map (errmsg, set, entry, maps, "storage", "StorageMap", ns)))
    goto fail;
  /* After the checks above, so their more specific messages come first. */
  if (Pallet_plan_check_schema (set, 2, flags, warnings, errmsg) == -1)
    goto fail;
  uid = json_is_string (json_object_get (md, "uid")) ? json_incref (json_object_get (md, "uid"))
                                                     : derived_uid (ns, name);
  if (!uid)
    goto oom;
  out = json_pack ("{s:s, s:s, s:o, s:s, s:s, s:s?, s:b, s:o, s:o, s:o, s:o,"
                   " s:o, s:o}",
                   "name", name, "namespace", ns, "uid", uid, "type", type, "targetNamespace",
                   v ? json_string_value (v) : ns, "targetPowerState", ps, "skipGuestConversion",
                   skip && json_is_true (skip), "spec", json_deep_copy (spec), "vms", vms,
                   "networkMap", nmap, "storageMap", smap, "source", src, "destination", dst);
  if (out && json_object_set_new (out, "cutover", cutover ? json_string (cutover) : json_null ())) {
    json_decref (out);
    out = NULL;
  }
  /* Providers read their per-plan options (pallet.dev/...) here. */
  v = json_object_get (md, "annotations");
  if (out
      && (json_object_set_new (out, "annotations",
                               json_is_object (v) ? json_deep_copy (v) : json_object ())
          || json_object_set_new (out, "customizationScripts", scripts ? scripts : json_null ()))) {
    json_decref (out);
    out = NULL;
  }
  else if (!out)
    json_decref (scripts);
  scripts = NULL;
  /* json_pack "o" steals even on failure. */
  uid = vms = nmap = smap = src = dst = NULL;
  if (!out)
    goto oom;
  return out;

oom:
  Pallet_plan_set_error (errmsg, "plan: out of memory");
fail:
  json_decref (scripts);
  json_decref (uid);
  json_decref (vms);
  json_decref (nmap);
  json_decref (smap);
  json_decref (src);
  json_decref (dst);
  return NULL;
}

json_t *
pallet_plan_load (const char *const *paths, size_t n, const char *plan_name, char **errmsg)
{
  json_t *set = pallet_plan_read (paths, n, errmsg), *plan;

  if (!set)
    return NULL;
  plan = pallet_plan_normalize (set, plan_name, errmsg);
  json_decref (set);
  return plan;
}

json_t *
pallet_plan_provider_config (const json_t *set, const json_t *plan, const char *which,
                             char **errmsg)
{
  const json_t *p, *pentry, *pobj, *sref, *settings;
  json_t *secret = NULL, *provider;
  const char *name, *ns;
  int ambiguous;

  if (errmsg)
    *errmsg = NULL;
  if (!which || (strcmp (which, "source") && strcmp (which, "destination"))) {
    Pallet_plan_set_error (errmsg,
                           "plan: provider config: which is \"%s\"; use "
                           "\"source\" or \"destination\"",
                           which ? which : "");
    return NULL;
  }
  p = json_object_get (plan, which);
  name = str_at (p, "name", NULL);
  if (!json_is_object (p) || !name) {
    Pallet_plan_set_error (errmsg,
                           "plan: provider config: the plan has no %s "
                           "provider; pass a plan from pallet_plan_normalize",
                           which);
    return NULL;
  }
  if (json_is_true (json_object_get (p, "host")))
    return json_pack ("{s:{s:s, s:s, s:{s:s}, s:{s:s, s:s}}, s:{}, s:{}}", "provider", "apiVersion",
                      FORKLIFT_API, "kind", "Provider", "metadata", "name", "host", "spec", "type",
                      "openshift", "url", "", "secret", "settings");
  ns = str_at (p, "namespace", NULL);
  pentry = find (set, "Provider", name, ns, &ambiguous);
  if (!pentry || ambiguous) {
    Pallet_plan_set_error (errmsg,
                           "plan: provider config: Provider \"%s\" is %s "
                           "in the resource set; pass the set the plan was "
                           "normalized from",
                           name, ambiguous ? "ambiguous" : "missing");
    return NULL;
  }
  pobj = obj_of (pentry);
  sref = json_object_get (p, "secretRef");
  if (json_is_object (sref)) {
    const json_t *sentry =
        find (set, "Secret", str_at (sref, "name", NULL) ? str_at (sref, "name", NULL) : "",
              str_at (sref, "namespace", NULL), &ambiguous);
    if (!sentry || ambiguous) {
      Pallet_plan_set_error (errmsg,
                             "plan: provider config: Secret \"%s\" of "
                             "Provider \"%s\" is %s in the resource set; pass "
                             "the set the plan was normalized from",
                             str_at (sref, "name", NULL), name,
                             ambiguous ? "ambiguous" : "missing");
      return NULL;
    }
    secret = secret_values (errmsg, sentry);
    if (!secret)
      return NULL;
  }
  else
    secret = json_object ();
  settings = json_object_get (json_object_get (pobj, "spec"), "settings");
  provider =
      json_pack ("{s:O?, s:O?, s:O?, s:O?}", "apiVersion", json_object_get (pobj, "apiVersion"),
                 "kind", json_object_get (pobj, "kind"), "metadata",
                 json_object_get (pobj, "metadata"), "spec", json_object_get (pobj, "spec"));
  if (!provider || !secret) {
    json_decref (provider);
    json_decref (secret);
    Pallet_plan_set_error (errmsg, "plan: out of memory");
    return NULL;
  }
  /* Deep copies: the caller may change the config freely. */
  json_t *pcopy = json_deep_copy (provider);
  json_decref (provider);
  json_t *out = json_pack ("{s:o, s:o, s:o}", "provider", pcopy, "secret", secret, "settings",
                           json_is_object (settings) ? json_deep_copy (settings) : json_object ());
  if (!out)
    Pallet_plan_set_error (errmsg, "plan: out of memory");
  return out;
}
