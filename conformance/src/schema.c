/* SPDX-License-Identifier: Apache-2.0 */
/* A validator for the JSON Schema (draft 2020-12) subset the output schemas
 * in docs/schemas/ use: type, required, properties, items, enum,
 * additionalProperties, minimum, pattern (POSIX extended regex), plus the
 * annotations $schema, $id, $comment, title, description.  It works on
 * parsed JSON (jansson); it is not a parser.  Any other keyword is refused
 * when a schema is loaded, so no constraint is ever silently ignored. */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

static const char *const known[] = {
  "type",    "required", "properties", "items",    "enum",  "additionalProperties", "minimum",
  "pattern", "$schema",  "$id",        "$comment", "title", "description",          NULL
};

static const char *const types[] = { "object",  "array",   "string", "number",
                                     "integer", "boolean", "null",   NULL };

static bool
in_list (const char *s, const char *const *list)
{
  for (; *list; list++)
    if (strcmp (s, *list) == 0)
      return true;
  return false;
}

static bool set_why (char **why, const char *path, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static bool
set_why (char **why, const char *path, const char *fmt, ...)
{
  char *msg = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  free (*why);
  if (asprintf (why, "%s: %s", *path ? path : "(top level)", msg ? msg : "?") < 0)
    *why = NULL;
  free (msg);
  return false;
}

static char *
join (const char *path, const char *key)
{
  char *s = NULL;
  if (asprintf (&s, "%s/%s", path, key) < 0)
    return NULL;
  return s;
}

static char *
join_index (const char *path, size_t i)
{
  char *s = NULL;
  if (asprintf (&s, "%s/%zu", path, i) < 0)
    return NULL;
  return s;
}

/* ---- checking a schema ---- */

static bool check_at (const json_t *schema, const char *path, char **why);

static bool
check_type (const json_t *t, const char *path, char **why)
{
  size_t i;
  json_t *e;
  if (json_is_string (t))
    return in_list (json_string_value (t), types)
           || set_why (why, path, "unknown type \"%s\"", json_string_value (t));
  if (!json_is_array (t) || json_array_size (t) == 0)
    return set_why (why, path, "\"type\" must be a type name or a list of them");
  json_array_foreach (t, i, e)
    if (!json_is_string (e) || !in_list (json_string_value (e), types))
      return set_why (why, path, "\"type\" lists an unknown type");
  return true;
}

static bool
check_at (const json_t *schema, const char *path, char **why)
{
  const char *k;
  json_t *v;
  if (json_is_boolean (schema))
    return true;
  if (!json_is_object (schema))
    return set_why (why, path, "a schema must be an object or a boolean");
  json_object_foreach ((json_t *) schema, k, v) {
    char *sub;
    bool ok = true;
    if (!in_list (k, known))
      return set_why (why, path,
                      "keyword \"%s\" is not in the supported "
                      "subset (type, required, properties, items, enum, "
                      "additionalProperties, minimum, pattern)",
                      k);
    if (strcmp (k, "type") == 0)
      ok = check_type (v, path, why);
    else if (strcmp (k, "required") == 0) {
      size_t i;
      json_t *e;
      if (!json_is_array (v))
        return set_why (why, path, "\"required\" must be an array of names");
      json_array_foreach (v, i, e)
        if (!json_is_string (e))
          return set_why (why, path, "\"required\" must be an array of names");
    }
    else if (strcmp (k, "properties") == 0) {
      const char *pk;
      json_t *pv;
      if (!json_is_object (v))
        return set_why (why, path, "\"properties\" must be an object");
      json_object_foreach (v, pk, pv) {
        sub = join (path, pk);
        ok = check_at (pv, sub ? sub : path, why);
        free (sub);
        if (!ok)
          return false;
      }
    }
    else if (strcmp (k, "items") == 0 || strcmp (k, "additionalProperties") == 0) {
      sub = join (path, k);
      ok = check_at (v, sub ? sub : path, why);
      free (sub);
    }
    else if (strcmp (k, "enum") == 0) {
      if (!json_is_array (v))
        return set_why (why, path, "\"enum\" must be an array");
    }
    else if (strcmp (k, "minimum") == 0) {
      if (!json_is_number (v))
        return set_why (why, path, "\"minimum\" must be a number");
    }
    else if (strcmp (k, "pattern") == 0) {
      regex_t re;
      if (!json_is_string (v))
        return set_why (why, path, "\"pattern\" must be a string");
      if (regcomp (&re, json_string_value (v), REG_EXTENDED | REG_NOSUB) != 0)
        return set_why (why, path,
                        "\"pattern\" %s is not a POSIX extended "
                        "regular expression",
                        json_string_value (v));
      regfree (&re);
    }
    if (!ok)
      return false;
  }
  return true;
}

bool
pc_schema_check (const json_t *schema, char **why)
{
  *why = NULL;
  return check_at (schema, "", why);
}

/* ---- validating an instance ---- */

static bool
is_type (const json_t *v, const char *t)
{
  if (strcmp (t, "object") == 0)
    return json_is_object (v);
  if (strcmp (t, "array") == 0)
    return json_is_array (v);
  if (strcmp (t, "string") == 0)
    return json_is_string (v);
  if (strcmp (t, "number") == 0)
    return json_is_number (v);
  if (strcmp (t, "boolean") == 0)
    return json_is_boolean (v);
  if (strcmp (t, "null") == 0)
    return json_is_null (v);
  if (strcmp (t, "integer") == 0) {
    double d;
    if (json_is_integer (v))
      return true;
    /* 2020-12: a number with a zero fractional part is an integer. */
    d = json_real_value (v);
    return json_is_real (v) && d == (double) (long long) d;
  }
  return false;
}

static const char *
type_name (const json_t *v)
{
  switch (json_typeof (v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

static bool validate_at (const json_t *s, const json_t *v, const char *path, char **why);

static bool
validate_object (const json_t *s, const json_t *v, const char *path, char **why)
{
  json_t *req = json_object_get (s, "required");
  json_t *props = json_object_get (s, "properties");
  json_t *addl = json_object_get (s, "additionalProperties");
  json_t *e;
  const char *k;
  size_t i;

  json_array_foreach (req, i, e)
    if (json_object_get (v, json_string_value (e)) == NULL)
      return set_why (why, path, "required property \"%s\" is missing", json_string_value (e));
  json_object_foreach ((json_t *) v, k, e) {
    json_t *ps = json_object_get (props, k);
    char *sub;
    bool ok;
    if (ps == NULL && addl == NULL)
      continue;
    if (ps == NULL && json_is_false (addl))
      return set_why (why, path, "property \"%s\" is not allowed here", k);
    sub = join (path, k);
    ok = validate_at (ps ? ps : addl, e, sub ? sub : path, why);
    free (sub);
    if (!ok)
      return false;
  }
  return true;
}

static bool
validate_at (const json_t *s, const json_t *v, const char *path, char **why)
{
  json_t *t, *x;
  if (json_is_true (s))
    return true;
  if (json_is_false (s))
    return set_why (why, path, "no value is allowed here");

  if ((t = json_object_get (s, "type")) != NULL) {
    bool ok = false;
    if (json_is_string (t))
      ok = is_type (v, json_string_value (t));
    else {
      size_t i;
      json_t *e;
      json_array_foreach (t, i, e)
        ok = ok || is_type (v, json_string_value (e));
    }
    if (!ok) {
      char *tt = json_dumps (t, JSON_COMPACT | JSON_ENCODE_ANY);
      set_why (why, path, "is %s, but the schema wants type %s", type_name (v), tt ? tt : "?");
      free (tt);
      return false;
    }
  }
  if ((x = json_object_get (s, "enum")) != NULL) {
    size_t i;
    json_t *e;
    bool ok = false;
    json_array_foreach (x, i, e)
      ok = ok || json_equal (e, (json_t *) v);
    if (!ok) {
      char *tt = json_dumps (x, JSON_COMPACT);
      char *vv = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
      set_why (why, path, "%.100s is not one of %s", vv ? vv : "?", tt ? tt : "?");
      free (tt);
      free (vv);
      return false;
    }
  }
  if ((x = json_object_get (s, "minimum")) != NULL && json_is_number (v)
      && json_number_value (v) < json_number_value (x))
    return set_why (why, path, "%g is less than the minimum %g", json_number_value (v),
                    json_number_value (x));
  if ((x = json_object_get (s, "pattern")) != NULL && json_is_string (v)) {
    regex_t re;
    int r;
    if (regcomp (&re, json_string_value (x), REG_EXTENDED | REG_NOSUB) != 0)
      return set_why (why, path, "bad pattern in the schema");
    r = regexec (&re, json_string_value (v), 0, NULL, 0);
    regfree (&re);
    if (r != 0)
      return set_why (why, path, "\"%.100s\" does not match the pattern %s", json_string_value (v),
                      json_string_value (x));
  }
  if (json_is_object (v) && !validate_object (s, v, path, why))
    return false;
  if (json_is_array (v) && (x = json_object_get (s, "items")) != NULL) {
    size_t i;
    json_t *e;
    json_array_foreach (v, i, e) {
      char *sub = join_index (path, i);
      bool ok = validate_at (x, e, sub ? sub : path, why);
      free (sub);
      if (!ok)
        return false;
    }
  }
  return true;
}

bool
pc_schema_validate (const json_t *schema, const json_t *instance, char **why)
{
  *why = NULL;
  return validate_at (schema, instance, "", why);
}

/* ---- the documented schemas ---- */

struct pc_embedded_schema {
  const char *name;
  const char *text;
};
extern const struct pc_embedded_schema pc_embedded_schemas[];

static const char *const schema_names[] = {
  "validate-finding", "inventory-item", "state", "build-vm-item", "cleanup-item", "result", NULL
};
static json_t *loaded[sizeof schema_names / sizeof schema_names[0]];

const json_t *
pc_schema_get (const char *name)
{
  for (size_t i = 0; schema_names[i]; i++)
    if (strcmp (schema_names[i], name) == 0)
      return loaded[i];
  return NULL;
}

void
pc_schemas_free (void)
{
  for (size_t i = 0; schema_names[i]; i++) {
    json_decref (loaded[i]);
    loaded[i] = NULL;
  }
}

/* From dir (NAME.schema.json files), or the copies built into the
 * program when dir is NULL. */
bool
pc_schemas_load (const char *dir, char **why)
{
  *why = NULL;
  for (size_t i = 0; schema_names[i]; i++) {
    json_error_t err;
    char *file = NULL, *sub = NULL;
    json_t *s = NULL;
    if (dir) {
      if (asprintf (&file, "%s/%s.schema.json", dir, schema_names[i]) < 0)
        return false;
      s = json_load_file (file, JSON_REJECT_DUPLICATES, &err);
    }
    else
      for (size_t k = 0; pc_embedded_schemas[k].name; k++)
        if (strcmp (pc_embedded_schemas[k].name, schema_names[i]) == 0)
          s = json_loads (pc_embedded_schemas[k].text, JSON_REJECT_DUPLICATES, &err);
    if (s == NULL) {
      if (asprintf (why, "schema %s: cannot load%s%s: %s", schema_names[i], file ? " " : "",
                    file ? file : "", dir ? err.text : "not built into the program")
          < 0)
        *why = NULL;
      free (file);
      return false;
    }
    if (!pc_schema_check (s, &sub)) {
      if (asprintf (why, "schema %s: %s", schema_names[i], sub ? sub : "?") < 0)
        *why = NULL;
      free (sub);
      free (file);
      json_decref (s);
      return false;
    }
    free (file);
    json_decref (loaded[i]);
    loaded[i] = s;
  }
  return true;
}
