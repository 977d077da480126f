/* SPDX-License-Identifier: Apache-2.0 */
/* The subset of Go's text/template that Forklift's name templates use
 * (pvcNameTemplate, volumeNameTemplate, networkNameTemplate):
 *
 *   text  {{.Var}}  {{trunc N .Var}}  {{lower .Var}}  {{upper .Var}}
 *   {{if eq A B}} ... {{else}} ... {{end}}   (A, B: .Var, "text" or N)
 *
 * over a jansson object of variables (strings, integers, booleans).
 * Anything else is an error naming the action, never passed through.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet-ec2-manifest.h"

struct tpl {
  const char *p; /* next byte */
  const json_t *vars;
  char *out;
  size_t len, cap;
  char **errmsg;
  int failed;
};

__attribute__ ((format (printf, 2, 3))) static void
tfail (struct tpl *t, const char *fmt, ...)
{
  va_list ap;
  if (t->failed)
    return;
  t->failed = 1;
  va_start (ap, fmt);
  if (vasprintf (t->errmsg, fmt, ap) < 0)
    *t->errmsg = NULL;
  va_end (ap);
}

static void
emit (struct tpl *t, const char *s, size_t n)
{
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *o = realloc (t->out, cap);
    if (!o) {
      tfail (t, "out of memory");
      return;
    }
    t->out = o;
    t->cap = cap;
  }
  memcpy (t->out + t->len, s, n);
  t->len += n;
  t->out[t->len] = '\0';
}

/* An argument's value as text: .Var, "literal" or a number. */
static int
arg_value (struct tpl *t, const char *a, char *buf, size_t size)
{
  if (a[0] == '.') {
    const json_t *v = json_object_get (t->vars, a + 1);
    if (!v) {
      const char *key;
      const json_t *x;
      char list[512] = "";
      json_object_foreach ((json_t *) t->vars, key, x)
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s.%s", *list ? ", " : "",
                  key);
      tfail (t, "unknown variable %s (this template has %s)", a, list);
      return -1;
    }
    if (json_is_string (v))
      snprintf (buf, size, "%s", json_string_value (v));
    else if (json_is_integer (v))
      snprintf (buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value (v));
    else if (json_is_boolean (v))
      snprintf (buf, size, "%s", json_is_true (v) ? "true" : "false");
    else
      buf[0] = '\0';
    return 0;
  }
  size_t n = strlen (a);
  if (n >= 2 && a[0] == '"' && a[n - 1] == '"') {
    snprintf (buf, size, "%.*s", (int) (n - 2), a + 1);
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    if (!isdigit ((unsigned char) a[i]) && !(i == 0 && a[i] == '-')) {
      tfail (t, "'%s' is not a variable (.Name), a \"string\" or a number", a);
      return -1;
    }
  snprintf (buf, size, "%s", a);
  return n ? 0 : -1;
}

/* Splits an action's text into at most 4 words (quoted strings kept). */
static int
words (char *s, char **w, int max)
{
  int n = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t')
      *s++ = '\0';
    if (!*s)
      break;
    if (n == max)
      return -1;
    w[n++] = s;
    if (*s == '"') {
      char *q = strchr (s + 1, '"');
      if (!q)
        return -1;
      s = q + 1;
    }
    else
      while (*s && *s != ' ' && *s != '\t')
        s++;
  }
  return n;
}

/* Runs the template up to {{else}}, {{end}} or the end; *stop says which.
 * Output goes out only when on. */
static void
run (struct tpl *t, int on, const char **stop)
{
  *stop = NULL;
  while (*t->p && !t->failed) {
    const char *open = strstr (t->p, "{{");
    if (!open) {
      if (on)
        emit (t, t->p, strlen (t->p));
      t->p += strlen (t->p);
      return;
    }
    if (on)
      emit (t, t->p, (size_t) (open - t->p));
    const char *close = strstr (open + 2, "}}");
    if (!close) {
      tfail (t, "an action opened with {{ is not closed with }}");
      return;
    }
    char act[256], *w[4], val[256], val2[256];
    size_t n = (size_t) (close - open - 2);
    if (n >= sizeof act) {
      tfail (t, "an action is too long");
      return;
    }
    memcpy (act, open + 2, n);
    act[n] = '\0';
    t->p = close + 2;
    int nw = words (act, w, 4);
    if (nw <= 0) {
      tfail (t, "an empty or malformed action {{%.*s}}", (int) n, open + 2);
      return;
    }
    if (nw == 1 && !strcmp (w[0], "else")) {
      *stop = "else";
      return;
    }
    if (nw == 1 && !strcmp (w[0], "end")) {
      *stop = "end";
      return;
    }
    if (nw == 1 && w[0][0] == '.') {
      if (arg_value (t, w[0], val, sizeof val) == 0 && on)
        emit (t, val, strlen (val));
    }
    else if (nw == 3 && !strcmp (w[0], "trunc")) {
      char num[32];
      if (arg_value (t, w[1], num, sizeof num) || arg_value (t, w[2], val, sizeof val))
        return;
      long k = strtol (num, NULL, 10);
      if (on)
        emit (t, val, k < 0 ? 0 : strlen (val) < (size_t) k ? strlen (val) : (size_t) k);
    }
    else if (nw == 2 && (!strcmp (w[0], "lower") || !strcmp (w[0], "upper"))) {
      if (arg_value (t, w[1], val, sizeof val))
        return;
      for (char *q = val; *q; q++)
        *q = (char) (w[0][0] == 'l' ? tolower ((unsigned char) *q) : toupper ((unsigned char) *q));
      if (on)
        emit (t, val, strlen (val));
    }
    else if (nw == 4 && !strcmp (w[0], "if") && !strcmp (w[1], "eq")) {
      if (arg_value (t, w[2], val, sizeof val) || arg_value (t, w[3], val2, sizeof val2))
        return;
      int cond = strcmp (val, val2) == 0;
      const char *s;
      run (t, on && cond, &s);
      if (!t->failed && s && !strcmp (s, "else"))
        run (t, on && !cond, &s);
      if (!t->failed && (!s || strcmp (s, "end")))
        tfail (t, "{{if}} has no {{end}}");
    }
    else
      tfail (t,
             "{{%.*s}} is not supported: use {{.Var}}, {{trunc N .Var}}, {{lower .Var}}, "
             "{{upper .Var}} or {{if eq A B}}...{{else}}...{{end}}",
             (int) n, open + 2);
  }
}

int
Pallet_ec2_template (const char *tmpl, const json_t *vars, char **out, char **errmsg)
{
  struct tpl t = { .p = tmpl, .vars = vars, .errmsg = errmsg };
  const char *stop;

  *out = NULL;
  *errmsg = NULL;
  emit (&t, "", 0);
  run (&t, 1, &stop);
  if (!t.failed && stop)
    tfail (&t, "{{%s}} without {{if}}", stop);
  if (t.failed) {
    free (t.out);
    return -1;
  }
  *out = t.out;
  return 0;
}
