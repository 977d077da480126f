/* SPDX-License-Identifier: Apache-2.0 */
/* Reading YAML (libyaml events) and JSON (jansson) into a resource set.
 *
 * YAML is converted with an explicit stack, so deep nesting is an error,
 * never a stack overflow.  Scalars follow the YAML 1.2 core schema:
 * quoted and block scalars are strings; plain ones are null, booleans,
 * integers or floats when they look like one, else strings.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "pallet-plan.h"
#include "plan-internal.h"

#define MAX_DEPTH       256     /* YAML nesting */
#define MAX_ALIAS_NODES 1000000 /* nodes reachable through aliases */
#define MAX_FILE_SIZE   (64 * 1024 * 1024)

void
Pallet_plan_set_error (char **errmsg, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  if (!errmsg || *errmsg)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  *errmsg = msg ? msg : strdup ("plan: out of memory");
}

/* ---- YAML scalars ---- */

static int
all_digits (const char *s, size_t n, int (*ok) (int))
{
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; ++i)
    if (!ok ((unsigned char) s[i]))
      return 0;
  return 1;
}

static int
is_odigit (int c)
{
  return c >= '0' && c <= '7';
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static int
is_core_float (const char *s, size_t n)
{
  size_t i = 0, d = 0;

  if (i < n && (s[i] == '-' || s[i] == '+'))
    ++i;
  while (i < n && isdigit ((unsigned char) s[i]))
    ++i, ++d;
  if (i < n && s[i] == '.') {
    ++i;
    size_t f = 0;
    while (i < n && isdigit ((unsigned char) s[i]))
      ++i, ++f;
    if (d == 0 && f == 0)
      return 0;
  }
  else if (d == 0)
    return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '-' || s[i] == '+'))
      ++i;
    if (!all_digits (s + i, n - i, isdigit))
      return 0;
    i = n;
  }
  return i == n;
}

enum scalar_type { S_ANY, S_STR, S_NULL, S_BOOL, S_INT, S_FLOAT };

/* Converts a plain scalar by the core schema, or with an explicit type.
 * Returns NULL when an explicit type does not fit. */
static json_t *
resolve_scalar (const char *s, size_t n, enum scalar_type want)
{
  char buf[64];

  if (want == S_STR)
    return json_stringn (s, n);
  if ((want == S_ANY || want == S_NULL)
      && (n == 0 || (n == 1 && s[0] == '~')
          || (n == 4
              && (!memcmp (s, "null", 4) || !memcmp (s, "Null", 4) || !memcmp (s, "NULL", 4)))))
    return json_null ();
  if (want == S_ANY || want == S_BOOL) {
    if ((n == 4 && (!memcmp (s, "true", 4) || !memcmp (s, "True", 4) || !memcmp (s, "TRUE", 4))))
      return json_true ();
    if ((n == 5 && (!memcmp (s, "false", 5) || !memcmp (s, "False", 5) || !memcmp (s, "FALSE", 5))))
      return json_false ();
  }
  if ((want == S_ANY || want == S_INT) && n < sizeof buf) {
    int base = 0;
    size_t skip = 0;
    const char *d = s;
    size_t dn = n;

    if (dn > 0 && (d[0] == '-' || d[0] == '+'))
      d++, dn--;
    if (dn > 2 && d[0] == '0' && d[1] == 'o' && d == s && all_digits (d + 2, dn - 2, is_odigit))
      base = 8, skip = 2;
    else if (dn > 2 && d[0] == '0' && d[1] == 'x' && d == s && all_digits (d + 2, dn - 2, isxdigit))
      base = 16, skip = 2;
    else if (all_digits (d, dn, isdigit))
      base = 10;
    if (base) {
      char *end;
      long long v;
      memcpy (buf, s + skip, n - skip);
      buf[n - skip] = '\0';
      errno = 0;
      v = strtoll (buf, &end, base);
      if (errno == 0 && *end == '\0')
        return json_integer (v);
      /* Too big for 64 bits: keep it as a float, as YAML allows. */
      if (base == 10)
        return json_real (strtod (buf, NULL));
    }
  }
  if ((want == S_ANY || want == S_FLOAT) && n < sizeof buf && is_core_float (s, n)) {
    memcpy (buf, s, n);
    buf[n] = '\0';
    return json_real (strtod (buf, NULL));
  }
  /* .inf and .nan have no JSON form: they stay strings. */
  return want == S_ANY ? json_stringn (s, n) : NULL;
}

/* ---- YAML to JSON ---- */

struct frame {
  json_t *node; /* a new reference */
  char *anchor;
  char *key; /* mapping: the pending key, or NULL */
  size_t keylen;
  size_t size; /* nodes inside, aliases expanded */
};

struct yconv {
  const char *name;
  char **errmsg;
  struct frame stack[MAX_DEPTH];
  int depth;
  json_t *root;
  size_t root_size;
  json_t *anchors; /* name -> [value, size] */
  size_t alias_nodes;
};

static void
yerror (struct yconv *c, const yaml_mark_t *m, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  Pallet_plan_set_error (c->errmsg, "%s: line %zu column %zu: %s", c->name, m->line + 1,
                         m->column + 1, msg ? msg : "out of memory");
  free (msg);
}

static int
remember_anchor (struct yconv *c, const char *anchor, json_t *v, size_t size)
{
  if (!anchor)
    return 0;
  return json_object_set_new (c->anchors, anchor, json_pack ("[O,I]", v, (json_int_t) size));
}

/* Adds v (stolen) of size nodes to the current container. */
static int
add_value (struct yconv *c, json_t *v, size_t size, const yaml_mark_t *m)
{
  struct frame *f;

  if (!v) {
    yerror (c, m, "out of memory");
    return -1;
  }
  if (c->depth == 0) {
    json_decref (c->root);
    c->root = v;
    c->root_size = size;
    return 0;
  }
  f = &c->stack[c->depth - 1];
  f->size += size;
  if (json_is_array (f->node)) {
    if (json_array_append_new (f->node, v) == 0)
      return 0;
  }
  else {
    int r = json_object_setn_new (f->node, f->key, f->keylen, v);
    free (f->key);
    f->key = NULL;
    if (r == 0)
      return 0;
  }
  yerror (c, m, "out of memory");
  return -1;
}

/* In a mapping waiting for a key? */
static int
want_key (const struct yconv *c)
{
  return c->depth > 0 && json_is_object (c->stack[c->depth - 1].node)
         && c->stack[c->depth - 1].key == NULL;
}

static int
set_key (struct yconv *c, const char *s, size_t n, const yaml_mark_t *m)
{
  struct frame *f = &c->stack[c->depth - 1];

  if (json_object_getn (f->node, s, n)) {
    yerror (c, m, "duplicate key '%.*s' in a mapping; keep only one", (int) (n > 60 ? 60 : n), s);
    return -1;
  }
  f->key = malloc (n + 1);
  if (!f->key) {
    yerror (c, m, "out of memory");
    return -1;
  }
  memcpy (f->key, s, n);
  f->key[n] = '\0';
  f->keylen = n;
  return 0;
}

static int
on_scalar (struct yconv *c, const yaml_event_t *e)
{
  const char *s = (const char *) e->data.scalar.value;
  size_t n = e->data.scalar.length;
  const char *tag = (const char *) e->data.scalar.tag;
  enum scalar_type want = S_ANY;
  json_t *v;

  if (want_key (c))
    return set_key (c, s, n, &e->start_mark);

  if (tag && strncmp (tag, "tag:yaml.org,2002:", 18) == 0) {
    const char *t = tag + 18;
    want = !strcmp (t, "str")     ? S_STR
           : !strcmp (t, "null")  ? S_NULL
           : !strcmp (t, "bool")  ? S_BOOL
           : !strcmp (t, "int")   ? S_INT
           : !strcmp (t, "float") ? S_FLOAT
                                  : S_STR;
  }
  else if (tag && strcmp (tag, "!") == 0)
    want = S_STR;
  else if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    want = S_STR; /* quoted or block: always a string */
  v = resolve_scalar (s, n, want);
  if (!v) {
    if (want == S_ANY || want == S_STR)
      yerror (c, &e->start_mark, "scalar is not valid UTF-8 text");
    else
      yerror (c, &e->start_mark, "'%.*s' does not fit its tag %s", (int) (n > 60 ? 60 : n), s, tag);
    return -1;
  }
  if (e->data.scalar.anchor
      && remember_anchor (c, (const char *) e->data.scalar.anchor, v, 1) == -1) {
    json_decref (v);
    yerror (c, &e->start_mark, "out of memory");
    return -1;
  }
  return add_value (c, v, 1, &e->start_mark);
}

static int
on_start (struct yconv *c, const yaml_event_t *e, int is_map)
{
  const yaml_char_t *anchor = is_map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
  struct frame *f;

  if (want_key (c)) {
    yerror (c, &e->start_mark,
            "a %s as a mapping key is not supported; "
            "use a plain string key",
            is_map ? "mapping" : "sequence");
    return -1;
  }
  if (c->depth >= MAX_DEPTH) {
    yerror (c, &e->start_mark,
            "nesting is deeper than %d levels; "
            "flatten the document",
            MAX_DEPTH);
    return -1;
  }
  f = &c->stack[c->depth];
  memset (f, 0, sizeof *f);
  f->node = is_map ? json_object () : json_array ();
  f->size = 1;
  if (!f->node || (anchor && !(f->anchor = strdup ((const char *) anchor)))) {
    json_decref (f->node);
    yerror (c, &e->start_mark, "out of memory");
    return -1;
  }
  c->depth++;
  return 0;
}

static int
on_end (struct yconv *c, const yaml_event_t *e)
{
  struct frame f = c->stack[--c->depth];
  int r = 0;

  if (f.anchor)
    r = remember_anchor (c, f.anchor, f.node, f.size);
  free (f.anchor);
  free (f.key);
  if (r == -1) {
    json_decref (f.node);
    yerror (c, &e->start_mark, "out of memory");
    return -1;
  }
  return add_value (c, f.node, f.size, &e->start_mark);
}

static int
on_alias (struct yconv *c, const yaml_event_t *e)
{
  const char *name = (const char *) e->data.alias.anchor;
  json_t *a = json_object_get (c->anchors, name), *v;
  size_t size;

  if (!a) {
    yerror (c, &e->start_mark,
            "alias *%s refers to no earlier anchor "
            "&%s; define the anchor first",
            name, name);
    return -1;
  }
  v = json_array_get (a, 0);
  size = (size_t) json_integer_value (json_array_get (a, 1));
  c->alias_nodes += size;
  if (c->alias_nodes > MAX_ALIAS_NODES) {
    yerror (c, &e->start_mark,
            "aliases expand to more than %d nodes; "
            "write the values out instead",
            MAX_ALIAS_NODES);
    return -1;
  }
  if (want_key (c)) {
    if (!json_is_string (v)) {
      yerror (c, &e->start_mark,
              "alias *%s used as a key is not a "
              "string",
              name);
      return -1;
    }
    return set_key (c, json_string_value (v), json_string_length (v), &e->start_mark);
  }
  /* Shared, not copied: aliases point at finished nodes, so no cycles. */
  return add_value (c, json_incref (v), size, &e->start_mark);
}

static void
yconv_reset (struct yconv *c)
{
  while (c->depth > 0) {
    struct frame *f = &c->stack[--c->depth];
    json_decref (f->node);
    free (f->anchor);
    free (f->key);
  }
  json_decref (c->root);
  c->root = NULL;
  json_object_clear (c->anchors);
}

/* Parses YAML text into an array of documents (null for empty ones). */
static json_t *
yaml_documents (const char *name, const char *text, size_t len, char **errmsg)
{
  yaml_parser_t parser;
  yaml_event_t e;
  struct yconv c = { .name = name, .errmsg = errmsg };
  json_t *docs = json_array ();
  int done = 0, r = 0;

  c.anchors = json_object ();
  if (!docs || !c.anchors || !yaml_parser_initialize (&parser)) {
    json_decref (docs);
    json_decref (c.anchors);
    Pallet_plan_set_error (errmsg, "%s: out of memory", name);
    return NULL;
  }
  yaml_parser_set_input_string (&parser, (const unsigned char *) text, len);
  while (!done && r == 0) {
    if (!yaml_parser_parse (&parser, &e)) {
      if (parser.context)
        Pallet_plan_set_error (errmsg,
                               "%s: line %zu column %zu: %s %s "
                               "(line %zu column %zu); fix the YAML syntax",
                               name, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                               parser.problem, parser.context, parser.context_mark.line + 1,
                               parser.context_mark.column + 1);
      else
        Pallet_plan_set_error (errmsg,
                               "%s: line %zu column %zu: %s; fix the "
                               "YAML syntax",
                               name, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                               parser.problem ? parser.problem : "parse error");
      r = -1;
      break;
    }
    switch (e.type) {
    case YAML_STREAM_END_EVENT: done = 1; break;
    case YAML_DOCUMENT_START_EVENT: yconv_reset (&c); break;
    case YAML_DOCUMENT_END_EVENT:
      r = json_array_append_new (docs, c.root ? c.root : json_null ());
      c.root = NULL;
      json_object_clear (c.anchors);
      break;
    case YAML_SCALAR_EVENT: r = on_scalar (&c, &e); break;
    case YAML_SEQUENCE_START_EVENT: r = on_start (&c, &e, 0); break;
    case YAML_MAPPING_START_EVENT: r = on_start (&c, &e, 1); break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: r = on_end (&c, &e); break;
    case YAML_ALIAS_EVENT: r = on_alias (&c, &e); break;
    default: break;
    }
    yaml_event_delete (&e);
  }
  if (r != 0)
    Pallet_plan_set_error (errmsg, "%s: out of memory", name);
  yconv_reset (&c);
  json_decref (c.anchors);
  yaml_parser_delete (&parser);
  if (r != 0) {
    json_decref (docs);
    return NULL;
  }
  return docs;
}

/* ---- JSON ---- */

/* Parses one or more concatenated JSON values. */
static json_t *
json_documents (const char *name, const char *text, size_t len, char **errmsg)
{
  json_t *docs = json_array ();
  size_t off = 0, line = 1, col = 1;

  if (!docs) {
    Pallet_plan_set_error (errmsg, "%s: out of memory", name);
    return NULL;
  }
  for (;;) {
    json_error_t err;
    json_t *v;
    size_t start = off;

    while (off < len && isspace ((unsigned char) text[off]))
      ++off;
    for (size_t i = start; i < off; ++i)
      if (text[i] == '\n')
        line++, col = 1;
      else
        col++;
    if (off >= len)
      break;
    v = json_loadb (text + off, len - off,
                    JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!v) {
      int l = err.line > 0 ? err.line : 1;
      Pallet_plan_set_error (errmsg,
                             "%s: line %zu column %zu: %s; fix the "
                             "JSON syntax",
                             name, line + (size_t) l - 1,
                             (l == 1 ? col - 1 : 0) + (size_t) (err.column > 0 ? err.column : 1),
                             err.text);
      json_decref (docs);
      return NULL;
    }
    if (json_array_append_new (docs, v) == -1) {
      Pallet_plan_set_error (errmsg, "%s: out of memory", name);
      json_decref (docs);
      return NULL;
    }
    start = off;
    off += err.position;
    for (size_t i = start; i < off; ++i)
      if (text[i] == '\n')
        line++, col = 1;
      else
        col++;
  }
  return docs;
}

/* ---- resource sets ---- */

static int
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcasecmp (s + n - m, suffix) == 0;
}

static int
is_json (const char *name, const char *text, size_t len)
{
  size_t i = 0;

  if (ends_with (name, ".json"))
    return 1;
  if (ends_with (name, ".yaml") || ends_with (name, ".yml"))
    return 0;
  while (i < len && isspace ((unsigned char) text[i]))
    ++i;
  return i < len && (text[i] == '{' || text[i] == '[');
}

static int
add_resource (json_t *set, const char *name, size_t doc, const char *path, json_t *obj,
              char **errmsg)
{
  json_t *e;

  if (!json_is_object (obj)) {
    Pallet_plan_set_error (errmsg,
                           "%s: document %zu%s%s: expected a mapping (a "
                           "Kubernetes object with apiVersion and kind), got %s",
                           name, doc, *path ? " " : "", path, Pallet_plan_type_name (obj));
    return -1;
  }
  e = json_pack ("{s:s, s:I, s:s, s:O}", "file", name, "document", (json_int_t) doc, "path", path,
                 "object", obj);
  if (!e || json_array_append_new (json_object_get (set, "resources"), e)) {
    Pallet_plan_set_error (errmsg, "%s: out of memory", name);
    return -1;
  }
  return 0;
}

/* Appends the documents of one text to the set. */
static int
read_text (json_t *set, const char *name, const char *text, size_t len, char **errmsg)
{
  json_t *docs, *files = json_object_get (set, "files");
  size_t i;
  int r = 0;

  if (json_array_append_new (files, json_string (name)) == -1) {
    Pallet_plan_set_error (errmsg, "%s: file name is not valid UTF-8; rename it", name);
    return -1;
  }
  docs = is_json (name, text, len) ? json_documents (name, text, len, errmsg)
                                   : yaml_documents (name, text, len, errmsg);
  if (!docs)
    return -1;
  for (i = 0; i < json_array_size (docs) && r == 0; ++i) {
    json_t *doc = json_array_get (docs, i);
    const char *kind = json_string_value (json_object_get (doc, "kind"));

    if (json_is_null (doc))
      continue;
    if (kind && strcmp (kind, "List") == 0 && json_is_array (json_object_get (doc, "items"))) {
      json_t *items = json_object_get (doc, "items");
      for (size_t j = 0; j < json_array_size (items) && r == 0; ++j) {
        char path[48];
        snprintf (path, sizeof path, "items[%zu]", j);
        r = add_resource (set, name, i + 1, path, json_array_get (items, j), errmsg);
      }
    }
    else
      r = add_resource (set, name, i + 1, "", doc, errmsg);
  }
  json_decref (docs);
  return r;
}

static json_t *
new_set (void)
{
  return json_pack ("{s:[], s:[]}", "files", "resources");
}

json_t *
pallet_plan_read_buffer (const char *name, const char *text, size_t len, char **errmsg)
{
  json_t *set = new_set ();

  if (errmsg)
    *errmsg = NULL;
  if (!set) {
    Pallet_plan_set_error (errmsg, "plan: out of memory");
    return NULL;
  }
  if (read_text (set, name ? name : "(buffer)", text ? text : "", text ? len : 0, errmsg) == -1) {
    json_decref (set);
    return NULL;
  }
  return set;
}

/* Reads a whole file (or stdin for "-") into a malloc'd buffer. */
static char *
slurp (const char *path, size_t *len, char **errmsg)
{
  FILE *fp = strcmp (path, "-") == 0 ? stdin : fopen (path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0;

  if (!fp) {
    Pallet_plan_set_error (errmsg, "%s: cannot open: %s; check the path", path, strerror (errno));
    return NULL;
  }
  for (;;) {
    if (n == cap) {
      char *nb;
      if (cap >= MAX_FILE_SIZE) {
        Pallet_plan_set_error (errmsg, "%s: larger than %d MiB; split it", path,
                               MAX_FILE_SIZE >> 20);
        goto fail;
      }
      cap = cap ? cap * 2 : 65536;
      nb = realloc (buf, cap + 1);
      if (!nb) {
        Pallet_plan_set_error (errmsg, "%s: out of memory", path);
        goto fail;
      }
      buf = nb;
    }
    size_t r = fread (buf + n, 1, cap - n, fp);
    n += r;
    if (r == 0)
      break;
  }
  if (ferror (fp)) {
    Pallet_plan_set_error (errmsg, "%s: read error: %s", path, strerror (errno));
    goto fail;
  }
  if (fp != stdin)
    fclose (fp);
  buf[n] = '\0';
  *len = n;
  return buf;

fail:
  free (buf);
  if (fp != stdin)
    fclose (fp);
  return NULL;
}

json_t *
pallet_plan_read (const char *const *paths, size_t n, char **errmsg)
{
  json_t *set;

  if (errmsg)
    *errmsg = NULL;
  if (!paths || n == 0) {
    Pallet_plan_set_error (errmsg, "plan: no input files; name at least one "
                                   "Forklift YAML or JSON file");
    return NULL;
  }
  set = new_set ();
  if (!set) {
    Pallet_plan_set_error (errmsg, "plan: out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; ++i) {
    size_t len = 0;
    char *text = slurp (paths[i], &len, errmsg);
    int r;

    if (!text) {
      json_decref (set);
      return NULL;
    }
    r = read_text (set, paths[i], text, len, errmsg);
    free (text);
    if (r == -1) {
      json_decref (set);
      return NULL;
    }
  }
  return set;
}
