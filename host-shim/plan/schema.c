/* SPDX-License-Identifier: Apache-2.0 */
/* Checks Forklift objects against the OpenAPI schemas of Forklift's own
 * CRDs (vendored in schema/, compacted to forklift-schema.json and built
 * into the library), as the API server would on `kubectl apply`: unknown
 * fields, wrong types and values outside an enum.  Then refuses fields
 * pallet knows but does not implement (fields.c), so nothing the user
 * wrote is dropped silently.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pallet-plan.h"
#include "plan-internal.h"

extern const char Pallet_plan_schema_text[];

struct check {
  const json_t *entry; /* the resource being checked */
  unsigned flags;
  json_t *warnings; /* may be NULL */
  char **errmsg;
  int failed;
  int pass; /* 1: unknown fields only; 2: types and enums only */
};

json_t *
Pallet_plan_schemas (void)
{
  json_t *all = json_loads (Pallet_plan_schema_text, 0, NULL);
  json_t *kinds = json_incref (json_object_get (all, "kinds"));
  json_decref (all);
  return kinds;
}

/* An error, or in lenient mode (when allowed) a warning. */
__attribute__ ((format (printf, 4, 5))) static void
report (struct check *c, int soft, const char *path, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL, *loc = Pallet_plan_where (c->entry), *full = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (asprintf (&full, "%s: %s%s%s", loc ? loc : "plan", path, *path ? ": " : "",
                msg ? msg : "out of memory")
      < 0)
    full = NULL;
  if (soft && (c->flags & PALLET_PLAN_LENIENT)) {
    if (c->warnings)
      json_array_append_new (c->warnings, json_string (full ? full : "plan: out of memory"));
  }
  else if (!c->failed) {
    c->failed = 1;
    Pallet_plan_set_error (c->errmsg, "%s", full ? full : "plan: out of memory");
  }
  free (full);
  free (loc);
  free (msg);
}

/* Levenshtein distance, case-insensitive, capped at 99. */
static size_t
distance (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b), row[64], i, j;

  if (la > 62 || lb > 62)
    return 99;
  for (j = 0; j <= lb; ++j)
    row[j] = j;
  for (i = 1; i <= la; ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (j = 1; j <= lb; ++j) {
      size_t up = row[j];
      size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
      size_t best = diag + cost;
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const char *
Pallet_plan_nearest (const char *word, const json_t *props)
{
  const char *key, *best = NULL;
  const json_t *v;
  size_t bestd = 99, limit = strlen (word) / 3 + 1;

  if (limit < 2)
    limit = 2;
  json_object_foreach ((json_t *) props, key, v) {
    size_t d = distance (word, key);
    if (d < bestd) {
      bestd = d;
      best = key;
    }
  }
  (void) v;
  return bestd <= limit ? best : NULL;
}

static const char *
type_words (const char *type)
{
  if (!strcmp (type, "object"))
    return "a mapping";
  if (!strcmp (type, "array"))
    return "a sequence";
  if (!strcmp (type, "string"))
    return "a string";
  if (!strcmp (type, "boolean"))
    return "a boolean";
  if (!strcmp (type, "integer"))
    return "an integer";
  return "a number";
}

static int
type_fits (const json_t *schema, const json_t *v)
{
  const char *t = json_string_value (json_object_get (schema, "type"));

  if (json_is_true (json_object_get (schema, "x-kubernetes-int-or-string")))
    return json_is_integer (v) || json_is_string (v);
  if (!t)
    return 1;
  if (!strcmp (t, "object"))
    return json_is_object (v);
  if (!strcmp (t, "array"))
    return json_is_array (v);
  if (!strcmp (t, "string"))
    return json_is_string (v);
  if (!strcmp (t, "boolean"))
    return json_is_boolean (v);
  if (!strcmp (t, "integer"))
    return json_is_integer (v);
  return json_is_number (v);
}

static void check_node (struct check *c, const json_t *schema, const json_t *v, const char *path);

static void
check_enum (struct check *c, const json_t *schema, const json_t *v, const char *path)
{
  const json_t *en = json_object_get (schema, "enum"), *e;
  char list[256] = "";
  size_t i;

  if (!json_is_array (en) || !json_is_string (v))
    return;
  json_array_foreach (en, i, e) {
    if (json_equal (e, v))
      return;
    snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "",
              json_string_value (e) ? json_string_value (e) : "");
  }
  report (c, 0, path, "'%.60s' is not one of %s", json_string_value (v), list);
}

static void
check_object (struct check *c, const json_t *schema, const json_t *v, const char *path)
{
  const json_t *props = json_object_get (schema, "properties");
  const json_t *extra = json_object_get (schema, "additionalProperties"), *sub;
  int open = json_is_true (json_object_get (schema, "x-kubernetes-preserve-unknown-fields"))
             || json_is_true (extra) || (!props && !json_is_object (extra));
  const char *key;

  json_object_foreach ((json_t *) v, key, sub) {
    char *p = NULL;
    const json_t *s = json_object_get (props, key);

    if (asprintf (&p, "%s%s%s", path, *path ? "." : "", key) < 0)
      return;
    if (s)
      check_node (c, s, sub, p);
    else if (json_is_object (extra))
      check_node (c, extra, sub, p);
    else if (!open && c->pass == 1) {
      const char *near = Pallet_plan_nearest (key, props);
      if (near)
        report (c, 1, p, "unknown field \"%s\"; did you mean %s?", key, near);
      else
        report (c, 1, p, "unknown field \"%s\"; remove it (%s takes no such field)", key,
                *path ? path : "the object");
    }
    free (p);
    if (c->failed)
      return;
  }
}

static void
check_node (struct check *c, const json_t *schema, const json_t *v, const char *path)
{
  if (c->failed || json_is_null (v) || !json_is_object (schema))
    return;
  if (!type_fits (schema, v)) {
    if (c->pass == 1)
      return; /* said in pass 2, after the semantic checks */
    report (c, 0, path, "expected %s, got %s",
            type_words (json_string_value (json_object_get (schema, "type"))),
            Pallet_plan_type_name (v));
    return;
  }
  if (c->pass == 2)
    check_enum (c, schema, v, path);
  if (json_is_object (v))
    check_object (c, schema, v, path);
  else if (json_is_array (v) && json_is_object (json_object_get (schema, "items"))) {
    size_t i;
    const json_t *item;
    json_array_foreach (v, i, item) {
      char *p = NULL;
      if (asprintf (&p, "%s[%zu]", path, i) < 0)
        return;
      check_node (c, json_object_get (schema, "items"), item, p);
      free (p);
      if (c->failed)
        return;
    }
  }
}

/* A kind pallet does not read: a typo of one of Forklift's is an error;
 * anything else (ConfigMap, NetworkAttachmentDefinition...) is left to
 * kubectl, with a warning. */
static void
other_kind (struct check *c, const json_t *kinds, const char *kind, const char *api)
{
  const char *near = Pallet_plan_nearest (kind, kinds);

  if (api && !strncmp (api, "forklift.konveyor.io/", 21))
    report (c, 0, "kind",
            "%s is not a Forklift kind pallet reads%s%s%s; pallet reads Plan, Provider, "
            "NetworkMap, StorageMap, Migration and Hook",
            kind, near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
  else if (near && strcasecmp (near, kind) != 0 && strcmp (near, "List"))
    report (c, 0, "kind", "unknown kind %s; did you mean %s?", kind, near);
  else if (c->warnings) {
    char *loc = Pallet_plan_where (c->entry), *msg = NULL;
    if (asprintf (&msg, "%s: kind %s (apiVersion %s) is not read by pallet; ignored",
                  loc ? loc : "plan", kind, api ? api : "none")
        >= 0)
      json_array_append_new (c->warnings, json_string (msg));
    free (msg);
    free (loc);
  }
}

int
Pallet_plan_check_schema (const json_t *set, int pass, unsigned flags, json_t *warnings,
                          char **errmsg)
{
  json_t *kinds = Pallet_plan_schemas ();
  const json_t *entry;
  size_t i;
  struct check c = { .flags = flags, .warnings = warnings, .errmsg = errmsg, .pass = pass };

  if (!kinds) {
    Pallet_plan_set_error (errmsg, "plan: the built-in Forklift schemas do not load");
    return -1;
  }
  json_array_foreach (json_object_get (set, "resources"), i, entry) {
    const json_t *obj = json_object_get (entry, "object");
    const char *kind = json_string_value (json_object_get (obj, "kind"));
    const char *api = json_string_value (json_object_get (obj, "apiVersion"));
    const json_t *k = kind ? json_object_get (kinds, kind) : NULL;

    c.entry = entry;
    if (!kind)
      continue; /* check_envelopes says what is wrong */
    if (!k || (api && strcmp (api, json_string_value (json_object_get (k, "apiVersion"))))) {
      if (pass == 1)
        other_kind (&c, kinds, kind, api);
    }
    else {
      check_node (&c, json_object_get (k, "schema"), obj, "");
      if (!c.failed && pass == 2)
        Pallet_plan_check_refused (&c.failed, entry, json_object_get (k, "schema"), flags, warnings,
                                   errmsg);
    }
    if (c.failed)
      break;
  }
  json_decref (kinds);
  return c.failed ? -1 : 0;
}
