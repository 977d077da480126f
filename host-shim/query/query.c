/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query: a recursive-descent parser and evaluator for kubectl-mtv's
 * query language (TSL, the Tree Search Language).  See pallet-query.h for
 * the grammar and README.md for the semantics.
 *
 * Every node evaluates to a JSON value; conditions give true or false,
 * and an operator whose left side is an array gives an array (one result
 * per element) that any() and all() reduce, as TSL does.  and/or are
 * n-ary nodes built in loops, so only parentheses, 'not', unary minus and
 * function calls add recursion depth, and that is capped at
 * PALLET_QUERY_MAX_DEPTH.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query-internal.h"

/* ---- tokens ---- */

enum tok_kind {
  T_EOF,
  T_IDENT,
  T_STRING,
  T_NUMBER,
  T_LPAREN,
  T_RPAREN,
  T_LBRACK,
  T_RBRACK,
  T_COMMA,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_MATCH,
  T_NMATCH,
  T_PLUS,
  T_MINUS,
  T_STAR,
  T_SLASH,
  T_PERCENT
};

struct token {
  enum tok_kind kind;
  size_t pos; /* byte offset of the first character */
  size_t len;
  json_t *value; /* T_STRING / T_NUMBER; owned by the lexer */
};

struct parser {
  const char *text;
  size_t len;
  struct token tok; /* the current token */
  char *err;
  int depth;
  struct pallet_query *q;
  char after[64]; /* where a value is expected, for messages */
};

static void
free_node (struct node *n)
{
  if (!n)
    return;
  for (size_t i = 0; i < n->nkids; ++i)
    free_node (n->kids[i]);
  free (n->kids);
  for (size_t i = 0; i < n->nsegs; ++i)
    free (n->segs[i].key);
  free (n->segs);
  json_decref (n->lit);
  if (n->has_re)
    regfree (&n->re);
  free (n);
}

void
pallet_query_free (struct pallet_query *q)
{
  if (!q)
    return;
  free_node (q->where);
  for (size_t i = 0; i < q->nkeys; ++i)
    free_node (q->keys[i].expr);
  free (q->keys);
  for (size_t i = 0; i < q->nsel; ++i) {
    free_node (q->sel[i].expr);
    free (q->sel[i].alias);
  }
  free (q->sel);
  Pallet_query_fields_free (q);
  free (q->text);
  free (q);
}

/* Records the first error, at byte offset pos, with a caret line. */
__attribute__ ((format (printf, 3, 4))) static void
error_at (struct parser *p, size_t pos, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  if (p->err)
    return;
  va_start (ap, fmt);
  int r = vasprintf (&msg, fmt, ap);
  va_end (ap);
  p->err = r < 0 ? NULL : Pallet_query_caret (p->text, pos, msg);
  free (msg);
  if (!p->err)
    p->err = strdup ("query: out of memory");
}

char *
Pallet_query_caret (const char *text, size_t pos, const char *msg)
{
  char *out = NULL, *shown = strdup (text);
  if (!shown)
    return NULL;
  /* The query on one line (newlines and tabs shown as spaces), then the
   * caret under the column. */
  for (char *s = shown; *s; ++s)
    if (*s == '\n' || *s == '\t' || *s == '\r')
      *s = ' ';
  if (asprintf (&out, "query: column %zu: %s\n  %s\n  %*s^", pos + 1, msg, shown,
                (int) (pos > INT_MAX - 1 ? INT_MAX - 1 : pos), "")
      < 0)
    out = NULL;
  free (shown);
  return out;
}

static const char *
tok_name (enum tok_kind k)
{
  switch (k) {
  case T_EOF: return "the end of the query";
  case T_IDENT: return "a name";
  case T_STRING: return "a string";
  case T_NUMBER: return "a number";
  case T_LPAREN: return "'('";
  case T_RPAREN: return "')'";
  case T_LBRACK: return "'['";
  case T_RBRACK: return "']'";
  case T_COMMA: return "','";
  case T_EQ: return "'='";
  case T_NE: return "'!='";
  case T_LT: return "'<'";
  case T_LE: return "'<='";
  case T_GT: return "'>'";
  case T_GE: return "'>='";
  case T_MATCH: return "'~='";
  case T_NMATCH: return "'~!'";
  case T_PLUS: return "'+'";
  case T_MINUS: return "'-'";
  case T_STAR: return "'*'";
  case T_SLASH: return "'/'";
  case T_PERCENT: return "'%'";
  }
  return "?";
}

static void
describe (const struct parser *p, char *buf, size_t n)
{
  const struct token *t = &p->tok;

  if (t->kind == T_IDENT || t->kind == T_NUMBER || t->kind == T_STRING)
    snprintf (buf, n, "'%.*s'", (int) (t->len > 40 ? 40 : t->len), p->text + t->pos);
  else
    snprintf (buf, n, "%s", tok_name (t->kind));
}

static int
is_ident_start (int c)
{
  return isalpha ((unsigned char) c) || c == '_';
}

/* TSL's identifier characters, plus '-' (kept for queries written before
 * arithmetic existed: write 'a - b' with spaces to subtract). */
static int
is_ident_char (int c)
{
  return isalnum ((unsigned char) c) || c == '_' || c == '.' || c == '-' || c == '/';
}

/* A date (2024-01-01) or RFC 3339 time (2024-01-01T00:00:00Z) at s, as
 * TSL lexes them unquoted: its length, or 0. */
static size_t
date_len (const char *s)
{
  static const char shape[] = "dddd-dd-dd";
  size_t i;
  for (i = 0; shape[i]; ++i)
    if (shape[i] == 'd' ? !isdigit ((unsigned char) s[i]) : s[i] != shape[i])
      return 0;
  if (s[i] != 'T')
    return i;
  while (s[i] && !isspace ((unsigned char) s[i]) && s[i] != ')' && s[i] != ',' && s[i] != ']')
    ++i;
  return i;
}

/* Reads a number at pos; returns its length or 0 after an error. */
static size_t
lex_number (struct parser *p, size_t pos)
{
  const char *s = p->text + pos;
  size_t i = 0, digits_end;
  int is_real = 0;
  double mult = 1;
  json_t *v;

  if ((i = date_len (s)) > 0) {
    p->tok.kind = T_STRING;
    p->tok.value = json_stringn (s, i);
    return i;
  }
  while (isdigit ((unsigned char) s[i]))
    ++i;
  if (s[i] == '.' && isdigit ((unsigned char) s[i + 1])) {
    is_real = 1;
    ++i;
    while (isdigit ((unsigned char) s[i]))
      ++i;
  }
  if ((s[i] == 'e' || s[i] == 'E')
      && (isdigit ((unsigned char) s[i + 1])
          || ((s[i + 1] == '+' || s[i + 1] == '-') && isdigit ((unsigned char) s[i + 2])))) {
    is_real = 1;
    i += 2;
    while (isdigit ((unsigned char) s[i]))
      ++i;
  }
  digits_end = i;
  /* SI and binary suffixes, as in kubectl-mtv: 4Gi, 100M. */
  if (s[i] && strchr ("KMGTP", s[i])) {
    static const char units[] = "KMGTP";
    int e = (int) (strchr (units, s[i]) - units) + 1;
    int binary = s[i + 1] == 'i';
    mult = pow (binary ? 1024 : 1000, e);
    i += binary ? 2 : 1;
  }
  if (is_ident_char (s[i]) && s[i] != '-' && s[i] != '/') {
    error_at (p, pos,
              "'%.*s' is not a number; write digits with an "
              "optional suffix (K M G T P, Ki Mi Gi Ti Pi), or quote "
              "a string",
              (int) (i + 1), s);
    return 0;
  }
  char *buf = strndup (s, digits_end);
  if (!buf) {
    error_at (p, pos, "out of memory");
    return 0;
  }
  errno = 0;
  if (!is_real) {
    long long ll = strtoll (buf, NULL, 10);
    if (errno == 0 && mult == 1)
      v = json_integer (ll);
    else if (errno == 0 && fabs ((double) ll * mult) < 9.0e18)
      v = json_integer ((json_int_t) ((double) ll * mult));
    else
      v = json_real (strtod (buf, NULL) * mult);
  }
  else {
    double d = strtod (buf, NULL) * mult;
    if (!isfinite (d)) {
      free (buf);
      error_at (p, pos, "number '%.*s' is out of range", (int) i, s);
      return 0;
    }
    v = json_real (d);
  }
  free (buf);
  if (!v) {
    error_at (p, pos, "out of memory");
    return 0;
  }
  p->tok.value = v;
  return i;
}

/* Reads a quoted string at pos: 'text', "text" or `text`, with a doubled
 * quote or TSL's backslash escapes inside.  Returns its length or 0. */
static size_t
lex_string (struct parser *p, size_t pos)
{
  const char *s = p->text + pos;
  char quote = s[0];
  size_t i = 1, o = 0;
  char *buf = malloc (strlen (s) + 1);

  if (!buf) {
    error_at (p, pos, "out of memory");
    return 0;
  }
  for (;;) {
    if (s[i] == '\0') {
      free (buf);
      error_at (p, pos,
                "unterminated string: add the closing quote "
                "(write %c%c for a quote inside a string)",
                quote, quote);
      return 0;
    }
    if (s[i] == quote) {
      if (s[i + 1] == quote) {
        buf[o++] = quote;
        i += 2;
        continue;
      }
      ++i;
      break;
    }
    if (s[i] == '\\' && s[i + 1]) {
      static const char from[] = "ntrbf", to[] = "\n\t\r\b\f";
      const char *e = strchr (from, s[i + 1]);
      /* Unknown escapes stay as they are, so regexes like '\.' work. */
      if (e)
        buf[o++] = to[e - from];
      else if (s[i + 1] == '\\' || s[i + 1] == '\'' || s[i + 1] == '"' || s[i + 1] == '`')
        buf[o++] = s[i + 1];
      else {
        buf[o++] = '\\';
        buf[o++] = s[i + 1];
      }
      i += 2;
      continue;
    }
    buf[o++] = s[i++];
  }
  p->tok.value = json_stringn (buf, o);
  free (buf);
  if (!p->tok.value) {
    error_at (p, pos, "string is not valid UTF-8");
    return 0;
  }
  return i;
}

/* The operator or punctuation token at s: its length, or 0 if none. */
static size_t
lex_operator (const char *s, enum tok_kind *kind)
{
  switch (*s) {
  case '(': *kind = T_LPAREN; return 1;
  case ')': *kind = T_RPAREN; return 1;
  case '[': *kind = T_LBRACK; return 1;
  case ']': *kind = T_RBRACK; return 1;
  case ',': *kind = T_COMMA; return 1;
  case '+': *kind = T_PLUS; return 1;
  case '-': *kind = T_MINUS; return 1;
  case '*': *kind = T_STAR; return 1;
  case '/': *kind = T_SLASH; return 1;
  case '%': *kind = T_PERCENT; return 1;
  case '=': *kind = T_EQ; return s[1] == '=' ? 2 : 1;
  case '<':
    *kind = s[1] == '=' ? T_LE : s[1] == '>' ? T_NE : T_LT;
    return s[1] == '=' || s[1] == '>' ? 2 : 1;
  case '>': *kind = s[1] == '=' ? T_GE : T_GT; return s[1] == '=' ? 2 : 1;
  case '!':
    if (s[1] != '=' && s[1] != '~')
      return 0;
    *kind = s[1] == '=' ? T_NE : T_NMATCH;
    return 2;
  case '~':
    if (s[1] != '=' && s[1] != '!')
      return 0;
    *kind = s[1] == '=' ? T_MATCH : T_NMATCH;
    return 2;
  }
  return 0;
}

/* An identifier at s: TSL's characters and [...] suffixes (an index, *,
 * or a key that may hold dots: label[kubernetes.io/cluster]). */
static size_t
lex_ident (const char *s)
{
  size_t n = 0;
  while (is_ident_char (s[n]) || s[n] == '[') {
    if (s[n] == '[') {
      size_t k = n + 1;
      char quote = s[k] == '\'' || s[k] == '"' ? s[k] : 0;
      if (quote) {
        ++k;
        while (s[k] && s[k] != quote)
          ++k;
        if (s[k])
          ++k;
      }
      else
        while (s[k] && s[k] != ']' && s[k] != '[' && !isspace ((unsigned char) s[k]))
          ++k;
      if (s[k] != ']')
        return n + (k > n + 1 ? k - n : 1);
      n = k + 1;
    }
    else
      ++n;
  }
  return n;
}

/* Advances to the next token.  Returns 0, or -1 after an error. */
static int
next (struct parser *p)
{
  size_t pos = p->tok.pos + p->tok.len, n = 0;
  const char *s;

  json_decref (p->tok.value);
  p->tok.value = NULL;
  while (pos < p->len && isspace ((unsigned char) p->text[pos]))
    ++pos;
  s = p->text + pos;
  p->tok.pos = pos;
  p->tok.len = 0;
  if (*s == '\0') {
    p->tok.kind = T_EOF;
    return 0;
  }
  if (*s == '\'' || *s == '"' || *s == '`') {
    p->tok.kind = T_STRING;
    n = lex_string (p, pos);
    if (n == 0)
      return -1;
  }
  else if (isdigit ((unsigned char) *s) || (*s == '.' && isdigit ((unsigned char) s[1]))) {
    p->tok.kind = T_NUMBER;
    n = lex_number (p, pos);
    if (n == 0)
      return -1;
  }
  else if (is_ident_start (*s)) {
    p->tok.kind = T_IDENT;
    n = lex_ident (s);
  }
  else if ((n = lex_operator (s, &p->tok.kind)) == 0) {
    error_at (p, pos,
              "unexpected character '%c'; expected a field, a value, "
              "an operator or a keyword",
              *s);
    return -1;
  }
  p->tok.len = n;
  return 0;
}

static int
is_kw (const struct parser *p, const char *kw)
{
  return p->tok.kind == T_IDENT && strlen (kw) == p->tok.len
         && strncasecmp (p->text + p->tok.pos, kw, p->tok.len) == 0;
}

/* Words that end an expression or start a clause, never field names. */
static int
is_reserved (const struct parser *p)
{
  static const char *const words[] = { "where", "order", "sort",    "by",     "asc",  "desc",
                                       "limit", "and",   "or",      "not",    "like", "ilike",
                                       "in",    "is",    "between", "select", "as",   NULL };
  for (size_t i = 0; words[i]; ++i)
    if (is_kw (p, words[i]))
      return 1;
  return 0;
}

static int
starts_clause (const struct parser *p)
{
  return is_kw (p, "where") || is_kw (p, "order") || is_kw (p, "sort") || is_kw (p, "limit");
}

static struct node *
new_node (struct parser *p, enum node_kind k, size_t pos)
{
  struct node *n = calloc (1, sizeof *n);

  if (!n)
    error_at (p, p->tok.pos, "out of memory");
  else {
    n->kind = k;
    n->pos = pos;
  }
  return n;
}

static int
add_kid (struct parser *p, struct node *n, struct node *kid)
{
  if ((n->nkids & (n->nkids - 1)) == 0) { /* 0, 1, 2, 4...: grow */
    struct node **nk = realloc (n->kids, (n->nkids ? n->nkids * 2 : 1) * sizeof *nk);
    if (!nk) {
      error_at (p, p->tok.pos, "out of memory");
      free_node (kid);
      return -1;
    }
    n->kids = nk;
  }
  n->kids[n->nkids++] = kid;
  return 0;
}

static int
add_seg (struct parser *p, struct node *n, char *key, size_t index, int kind)
{
  struct path_seg *ns = realloc (n->segs, (n->nsegs + 1) * sizeof *ns);
  if (!ns) {
    free (key);
    error_at (p, p->tok.pos, "out of memory");
    return -1;
  }
  n->segs = ns;
  n->segs[n->nsegs++] = (struct path_seg){ key, index, kind };
  return 0;
}

/* A [...] suffix at s (s[0] == '['): an index, '*', or a key. */
static int
parse_bracket (struct parser *p, struct node *n, const char *s, size_t *i, size_t len)
{
  size_t k = *i + 1, end;
  for (end = k; end < len && s[end] != ']'; ++end)
    if (s[end] == '\'' || s[end] == '"') {
      char q = s[end++];
      while (end < len && s[end] != q)
        ++end;
    }
  if (end >= len || end == k)
    return 1;
  *i = end + 1;
  if (end - k == 1 && s[k] == '*')
    return add_seg (p, n, NULL, 0, SEG_ALL);
  size_t v = 0, j = k;
  while (j < end && isdigit ((unsigned char) s[j]) && v < (SIZE_MAX - 9) / 10)
    v = v * 10 + (size_t) (s[j++] - '0');
  if (j == end)
    return add_seg (p, n, NULL, v, SEG_INDEX);
  if ((s[k] == '\'' || s[k] == '"') && end - k >= 2 && s[end - 1] == s[k])
    ++k, --end;
  char *key = strndup (s + k, end - k);
  return key ? add_seg (p, n, key, 0, SEG_KEY) : add_seg (p, n, NULL, 0, -1);
}

/* Splits the identifier token into path segments. */
static int
parse_path (struct parser *p, struct node *n)
{
  const char *s = p->text + p->tok.pos;
  size_t len = p->tok.len, i = 0;
  int r;

  while (i < len) {
    size_t start = i;
    if (s[i] == '[') {
      if ((r = parse_bracket (p, n, s, &i, len)) < 0)
        return -1;
      if (r > 0)
        goto bad;
    }
    else {
      while (i < len && s[i] != '.' && s[i] != '[')
        ++i;
      if (i == start)
        goto bad;
      char *key = strndup (s + start, i - start);
      if (!key || add_seg (p, n, key, 0, SEG_KEY) == -1)
        return -1;
    }
    /* A '.' separates keys; it may not end the path or double up. */
    if (i < len && s[i] == '.') {
      ++i;
      if (i >= len || s[i] == '.' || s[i] == '[')
        goto bad;
    }
    continue;
bad:
    error_at (p,
              p->tok.pos
                  + (i < len ? i
                     : len   ? len - 1
                             : 0),
              "field '%.*s' is not a valid path; write keys separated by "
              "'.' with [N], [*] or [key] suffixes, e.g. disks[0].size",
              (int) len, s);
    return -1;
  }
  n->text = p->text + p->tok.pos;
  n->text_len = len;
  return Pallet_query_fields_add (p->q, n) == 0 ? 0 : (error_at (p, n->pos, "out of memory"), -1);
}

static struct node *parse_or (struct parser *p);
static struct node *parse_add (struct parser *p);

static int
enter (struct parser *p, size_t pos)
{
  if (++p->depth > PALLET_QUERY_MAX_DEPTH) {
    error_at (p, pos,
              "parentheses, 'not' and functions nest deeper than %d "
              "levels; simplify the query",
              PALLET_QUERY_MAX_DEPTH);
    return -1;
  }
  return 0;
}

/* [literal, ...] or (literal, ...) after 'in': literal values only. */
static struct node *
parse_list (struct parser *p, const char *after)
{
  enum tok_kind close = p->tok.kind == T_LBRACK ? T_RBRACK : T_RPAREN;
  struct node *n = new_node (p, N_LIT, p->tok.pos);
  char what[64];

  if (!n || !(n->lit = json_array ()) || next (p) == -1)
    goto fail;
  while (p->tok.kind != close) {
    json_t *v = NULL;
    int neg = p->tok.kind == T_MINUS;
    if (neg && next (p) == -1)
      goto fail;
    if ((p->tok.kind == T_STRING && !neg) || p->tok.kind == T_NUMBER) {
      v = p->tok.value;
      p->tok.value = NULL;
      if (neg)
        v = json_is_integer (v) ? (json_integer_set (v, -json_integer_value (v)), v)
                                : (json_real_set (v, -json_real_value (v)), v);
    }
    else if (!neg && (is_kw (p, "true") || is_kw (p, "false") || is_kw (p, "null")))
      v = is_kw (p, "true") ? json_true () : is_kw (p, "false") ? json_false () : json_null ();
    else {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos,
                "the list %s holds literal values only, got %s; quote strings: 'text'", after,
                what);
      goto fail;
    }
    if (json_array_append_new (n->lit, v) == -1 || next (p) == -1)
      goto fail;
    if (p->tok.kind == T_COMMA) {
      if (next (p) == -1)
        goto fail;
      continue;
    }
    if (p->tok.kind != close) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected ',' or '%c' in the list %s, got %s",
                close == T_RBRACK ? ']' : ')', after, what);
      goto fail;
    }
  }
  if (next (p) == -1)
    goto fail;
  return n;
fail:
  free_node (n);
  return NULL;
}

/* len(x), sum(x), any(cond), all(cond). */
static struct node *
parse_call (struct parser *p, enum node_kind k)
{
  size_t pos = p->tok.pos;
  char what[64];
  struct node *n = new_node (p, k, pos), *arg;

  size_t paren = 0;
  if (!n || enter (p, pos) == -1 || next (p) == -1) /* the name */
    goto fail;
  paren = p->tok.pos;
  if (next (p) == -1) /* '(' */
    goto fail;
  arg = k == N_LEN || k == N_SUM ? parse_add (p) : parse_or (p);
  if (!arg || add_kid (p, n, arg) == -1)
    goto fail;
  if (p->tok.kind != T_RPAREN) {
    describe (p, what, sizeof what);
    error_at (p, p->tok.pos, "expected ')' to close the '(' at column %zu, got %s", paren + 1,
              what);
    goto fail;
  }
  --p->depth;
  if (next (p) == -1)
    goto fail;
  return n;
fail:
  free_node (n);
  return NULL;
}

static enum node_kind
func_kind (const struct parser *p)
{
  size_t i = p->tok.pos + p->tok.len;
  while (p->tok.kind == T_IDENT && isspace ((unsigned char) p->text[i]))
    ++i;
  if (p->tok.kind != T_IDENT || p->text[i] != '(')
    return N_LIT;
  return is_kw (p, "len")   ? N_LEN
         : is_kw (p, "sum") ? N_SUM
         : is_kw (p, "any") ? N_ANY
         : is_kw (p, "all") ? N_ALL
                            : N_LIT;
}

/* primary := literal | FIELD | func '(' ... ')' | '(' EXPR ')' | '-' primary */
static struct node *
parse_primary (struct parser *p, const char *after)
{
  char what[64];
  size_t pos = p->tok.pos;
  struct node *n;
  enum node_kind fk = func_kind (p);

  if (fk != N_LIT)
    return parse_call (p, fk);
  switch (p->tok.kind) {
  case T_STRING:
  case T_NUMBER:
    if (!(n = new_node (p, N_LIT, pos)))
      return NULL;
    n->lit = p->tok.value;
    p->tok.value = NULL;
    if (next (p) == -1) {
      free_node (n);
      return NULL;
    }
    return n;
  case T_MINUS:
  case T_PLUS:
    if (enter (p, pos) == -1)
      return NULL;
    {
      int minus = p->tok.kind == T_MINUS;
      if (next (p) == -1 || !(n = parse_primary (p, after)))
        return NULL;
      --p->depth;
      if (minus) {
        struct node *neg = new_node (p, N_NEG, pos);
        if (!neg || add_kid (p, neg, n) == -1) {
          free_node (neg ? NULL : n);
          free_node (neg);
          return NULL;
        }
        n = neg;
      }
    }
    return n;
  case T_LPAREN:
    if (enter (p, pos) == -1 || next (p) == -1 || !(n = parse_or (p)))
      return NULL;
    if (p->tok.kind != T_RPAREN) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected ')' to close the '(' at column %zu, got %s", pos + 1,
                what);
      free_node (n);
      return NULL;
    }
    --p->depth;
    if (next (p) == -1) {
      free_node (n);
      return NULL;
    }
    return n;
  case T_IDENT:
    if (is_kw (p, "true") || is_kw (p, "false") || is_kw (p, "null")) {
      if (!(n = new_node (p, N_LIT, pos)))
        return NULL;
      n->lit = is_kw (p, "true") ? json_true () : is_kw (p, "false") ? json_false () : json_null ();
    }
    else if (!is_reserved (p)) {
      if (!(n = new_node (p, N_FIELD, pos)))
        return NULL;
      if (parse_path (p, n) == -1) {
        free_node (n);
        return NULL;
      }
    }
    else
      break;
    if (next (p) == -1) {
      free_node (n);
      return NULL;
    }
    return n;
  default: break;
  }
  describe (p, what, sizeof what);
  error_at (p, p->tok.pos,
            "expected a value %s, got %s; write a 'string', "
            "a number, true, false, null or a field name",
            after, what);
  return NULL;
}

/* Left-associative binary arithmetic over sub. */
static struct node *
parse_arith (struct parser *p, enum tok_kind a, enum tok_kind b, enum tok_kind c,
             struct node *(*sub) (struct parser *) )
{
  struct node *left = sub (p);
  while (left && (p->tok.kind == a || p->tok.kind == b || p->tok.kind == c)) {
    struct node *n = new_node (p, N_ARITH, p->tok.pos), *right;
    if (!n) {
      free_node (left);
      return NULL;
    }
    n->op = "+-*/%"[p->tok.kind - T_PLUS];
    snprintf (p->after, sizeof p->after, "after '%c'", n->op);
    if (add_kid (p, n, left) == -1 || next (p) == -1 || !(right = sub (p))
        || add_kid (p, n, right) == -1) {
      free_node (n);
      return NULL;
    }
    left = n;
  }
  return left;
}

static struct node *
parse_primary_cond (struct parser *p)
{
  char after[64];
  snprintf (after, sizeof after, "%s", p->after[0] ? p->after : "in the condition");
  p->after[0] = '\0';
  return parse_primary (p, after);
}

static struct node *
parse_mul (struct parser *p)
{
  return parse_arith (p, T_STAR, T_SLASH, T_PERCENT, parse_primary_cond);
}

static struct node *
parse_add (struct parser *p)
{
  return parse_arith (p, T_PLUS, T_MINUS, T_MINUS, parse_mul);
}

/* glibc's regcomp copies a subexpression for each x+ (as x x*) and
 * x{n,m} (m copies), so nested repeats grow exponentially where Go's
 * RE2, whose syntax TSL uses, builds no copies.  The limits below refuse
 * what RE2 refuses (stacked repeat operators, counts over 1000, nested
 * counts whose product passes 1000, nesting over 1000 deep) and what
 * would expand past REGEX_MAX_NODES parse nodes: about 20 MiB of
 * compiled regex in glibc 2.36, measured. */
#define REGEX_MAX_REPEAT 1000
#define REGEX_MAX_DEPTH  1000
#define REGEX_MAX_NODES  50000

/* The expansion of one group level being scanned: its size so far, the
 * size of its last atom (what a repeat operator copies), and the largest
 * product of nested {n,m} counts in it and in its last atom. */
struct regex_level {
  double size, last, rep, last_rep;
};

/* Where the bracket expression starting at S ('[') ends (its ']'). */
static const char *
regex_bracket_end (const char *s)
{
  const char *e = s + 1;
  if (*e == '^')
    ++e;
  if (*e == ']')
    ++e;
  for (; *e && *e != ']'; ++e)
    if (*e == '[' && (e[1] == ':' || e[1] == '.' || e[1] == '=')) {
      const char *close = strchr (e + 2, e[1]);
      while (close && close[1] != ']')
        close = strchr (close + 1, e[1]);
      if (!close)
        return e + strlen (e);
      e = close + 1;
    }
  return e;
}

static void
regex_atom (struct regex_level *l, double size, double rep)
{
  l->size += size;
  l->last = size;
  l->last_rep = rep;
  if (rep > l->rep)
    l->rep = rep;
}

/* The repeat operator at S ('*', '+', '?' or an interval) applied to L's
 * last atom; its length in *LEN.  0, or -1 with the problem in WHY. */
static int
regex_repeat (struct regex_level *l, const char *s, size_t *len, char *why, size_t whysz)
{
  unsigned long lo = 0, hi = 0;
  int open_ended = 0;
  *len = 1;
  if (*s == '+')
    hi = 2;
  else if (*s == '{') {
    char *end;
    lo = hi = strtoul (s + 1, &end, 10);
    if (*end == ',' && end[1] == '}') {
      open_ended = 1;
      hi = lo + 1; /* glibc: n copies, then a star */
      end += 1;
    }
    else if (*end == ',')
      hi = strtoul (end + 1, &end, 10);
    if (*end != '}')
      return 0; /* not an interval: regcomp reports it */
    *len = (size_t) (end - s) + 1;
    if (lo > REGEX_MAX_REPEAT || (!open_ended && hi > REGEX_MAX_REPEAT)) {
      snprintf (why, whysz, "invalid repeat count %.*s (the largest is %d)", (int) *len, s,
                REGEX_MAX_REPEAT);
      return -1;
    }
  }
  double copies = hi > 1 ? (double) hi : 1;
  double rep = *s == '{' ? l->last_rep * (hi ? hi : 1) : l->last_rep;
  if (*s == '{' && l->last_rep > 1 && rep > REGEX_MAX_REPEAT) {
    snprintf (why, whysz, "invalid repeat count %.*s: nested counts repeat more than %d times",
              (int) *len, s, REGEX_MAX_REPEAT);
    return -1;
  }
  l->size += l->last * (copies - 1) + copies;
  l->last = 0;
  if (rep > l->rep)
    l->rep = rep;
  return 0;
}

/* Checks the POSIX form RE of a query regex against the limits above. */
static int
regex_check_limits (const char *re, char *why, size_t whysz)
{
  struct regex_level *lv = calloc (REGEX_MAX_DEPTH + 1, sizeof *lv);
  if (!lv) {
    snprintf (why, whysz, "out of memory");
    return -1;
  }
  int d = 0, rc = 0;
  const char *prev_repeat = NULL;
  for (const char *s = re; *s && rc == 0;) {
    const char *next = s + 1;
    int is_repeat = 0;
    if (*s == '(') {
      if (d == REGEX_MAX_DEPTH) {
        snprintf (why, whysz, "expression nests too deeply (more than %d groups)", REGEX_MAX_DEPTH);
        rc = -1;
        break;
      }
      lv[++d] = (struct regex_level){ 0 };
    }
    else if (*s == ')' && d > 0) {
      --d;
      regex_atom (&lv[d], lv[d + 1].size + 2, lv[d + 1].rep);
    }
    else if (*s == '|') {
      lv[d].size += 1;
      lv[d].last = lv[d].last_rep = 0;
    }
    else if (*s == '*' || *s == '+' || *s == '?' || (*s == '{' && isdigit ((unsigned char) s[1]))) {
      size_t len;
      rc = regex_repeat (&lv[d], s, &len, why, whysz);
      if (rc == 0 && prev_repeat) {
        snprintf (why, whysz, "invalid nested repetition operator: %.*s",
                  (int) (s + len - prev_repeat), prev_repeat);
        rc = -1;
      }
      next = s + len;
      is_repeat = 1;
    }
    else if (*s == '\\' && s[1]) {
      regex_atom (&lv[d], 1, 1);
      next = s + 2;
    }
    else if (*s == '[') {
      const char *e = regex_bracket_end (s);
      regex_atom (&lv[d], 1, 1);
      next = *e ? e + 1 : e;
    }
    else
      regex_atom (&lv[d], 1, 1);
    prev_repeat = is_repeat ? s : NULL;
    s = next;
  }
  double total = 0;
  for (int i = 0; i <= d; ++i)
    total += lv[i].size;
  free (lv);
  if (rc == 0 && total > REGEX_MAX_NODES) {
    snprintf (why, whysz,
              "expression too large: its repeats expand to about %.0f nodes (the limit is %d); "
              "nest fewer + and {n} repeats",
              total, REGEX_MAX_NODES);
    rc = -1;
  }
  return rc;
}

/* RE2's escapes that POSIX lacks, written into O: \d \D become [0-9]
 * [^0-9].  Returns the new end of O, or NULL for an escape RE2 refuses
 * (a back-reference \1..\9, which RE2 has not and glibc matches in
 * exponential time). */
static char *
regex_translate_escape (const char *src, char *o, int in_class)
{
  if ((src[1] == 'd' || src[1] == 'D') && !in_class)
    return stpcpy (o, src[1] == 'd' ? "[0-9]" : "[^0-9]");
  if (src[1] >= '1' && src[1] <= '9' && !in_class)
    return NULL;
  *o++ = src[0];
  *o++ = src[1];
  return o;
}

/* SRC (TSL's RE2 syntax) in POSIX extended form, malloc'd.  A lazy
 * quantifier (*? +? ?? {n}?) becomes the greedy one: a condition only
 * asks whether the expression matches, and that is the same for both. */
static char *
regex_to_posix (const char *src, char *why, size_t whysz)
{
  char *re = malloc (strlen (src) * 5 + 1), *o = re;
  if (!re) {
    snprintf (why, whysz, "out of memory");
    return NULL;
  }
  int in_class = 0, after_repeat = 0, in_interval = 0;
  for (; *src; ++src) {
    if (*src == '\\' && src[1]) {
      o = regex_translate_escape (src, o, in_class);
      if (!o) {
        snprintf (why, whysz, "invalid escape sequence \\%c (back-references are not supported)",
                  src[1]);
        free (re);
        return NULL;
      }
      ++src;
      after_repeat = 0;
      continue;
    }
    if (*src == '?' && after_repeat) {
      after_repeat = 0;
      continue;
    }
    if (!in_class && *src == '{' && isdigit ((unsigned char) src[1]))
      in_interval = 1;
    after_repeat =
        !in_class && (*src == '*' || *src == '+' || *src == '?' || (*src == '}' && in_interval));
    if (*src == '}')
      in_interval = 0;
    in_class = *src == '[' ? 1 : *src == ']' ? 0 : in_class;
    *o++ = *src;
  }
  *o = '\0';
  return re;
}

/* A regex literal compiled now.  TSL's regexes are Go's (RE2): a leading
 * (?i) becomes REG_ICASE and \d \D become [0-9] [^0-9] for POSIX. */
static int
compile_regex (struct parser *p, struct node *n, size_t op_pos)
{
  struct node *r = n->kids[1];
  if (r->kind != N_LIT || !json_is_string (r->lit)) {
    error_at (p, op_pos, "~= and ~! need a 'regular expression' string on their right");
    return -1;
  }
  const char *src = json_string_value (r->lit);
  int flags = REG_EXTENDED | REG_NOSUB;
  if (strncmp (src, "(?i)", 4) == 0) {
    flags |= REG_ICASE;
    src += 4;
  }
  char why[160];
  char *re = regex_to_posix (src, why, sizeof why);
  if (!re || regex_check_limits (re, why, sizeof why) == -1) {
    free (re);
    error_at (p, op_pos, "bad regular expression: %s", why);
    return -1;
  }
  int rc = regcomp (&n->re, re, flags);
  free (re);
  if (rc != 0) {
    char rbuf[128];
    regerror (rc, &n->re, rbuf, sizeof rbuf);
    error_at (p, op_pos, "bad regular expression: %s", rbuf);
    return -1;
  }
  n->has_re = 1;
  return 0;
}

/* Operator after a value: its node kind and op, or -1 if none. */
static int
pred_kind (struct parser *p, struct node *n)
{
  static const struct {
    enum tok_kind t;
    int op;
  } cmp[] = { { T_EQ, OP_EQ }, { T_NE, OP_NE }, { T_LT, OP_LT },       { T_LE, OP_LE },
              { T_GT, OP_GT }, { T_GE, OP_GE }, { T_MATCH, OP_MATCH }, { T_NMATCH, OP_MATCH } };
  for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; ++i)
    if (p->tok.kind == cmp[i].t) {
      n->kind = N_CMP;
      n->op = cmp[i].op;
      n->negate = p->tok.kind == T_NMATCH;
      return 0;
    }
  n->kind = N_CMP;
  if (is_kw (p, "like") || is_kw (p, "ilike")) {
    n->op = is_kw (p, "like") ? OP_LIKE : OP_ILIKE;
    return 0;
  }
  n->kind = is_kw (p, "in")        ? N_IN
            : is_kw (p, "between") ? N_BETWEEN
            : is_kw (p, "is")      ? N_NULL
                                   : N_LIT;
  return n->kind == N_LIT ? -1 : 0;
}

static int
parse_rhs (struct parser *p, struct node *n, const char *after)
{
  struct node *r = NULL;
  if (n->kind == N_IN) {
    if (p->tok.kind != T_LBRACK && p->tok.kind != T_LPAREN) {
      char what[64];
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected '[' after 'in', got %s; write in ['a', 'b']", what);
      return -1;
    }
    r = parse_list (p, "after 'in'");
  }
  else {
    snprintf (p->after, sizeof p->after, "%s", after);
    r = parse_add (p);
  }
  return r ? add_kid (p, n, r) : -1;
}

/* The predicate after the left value: = ..., [not] like/in/between ...,
 * is [not] null; none: the value itself is the condition. */
static struct node *
parse_predicate (struct parser *p, struct node *left)
{
  struct node *n = new_node (p, N_LIT, p->tok.pos);
  size_t op_pos = p->tok.pos;
  char after[64], what[64];

  if (!n) {
    free_node (left);
    return NULL;
  }
  if (add_kid (p, n, left) == -1)
    goto fail;
  if (is_kw (p, "not")) {
    n->negate = 1;
    if (next (p) == -1)
      goto fail;
    if (!is_kw (p, "like") && !is_kw (p, "ilike") && !is_kw (p, "in") && !is_kw (p, "between")) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected like, ilike, in or between after 'not', got %s", what);
      goto fail;
    }
  }
  if (pred_kind (p, n) == -1) {
    /* A bare value: a condition when it is true. */
    n->kids[0] = NULL;
    n->nkids = 0;
    free_node (n);
    return left;
  }
  if (p->tok.kind == T_IDENT)
    snprintf (after, sizeof after, "after '%.*s'", (int) p->tok.len, p->text + p->tok.pos);
  else
    snprintf (after, sizeof after, "after %s", tok_name (p->tok.kind));
  if (n->kind == N_NULL) {
    if (next (p) == -1)
      goto fail;
    if (is_kw (p, "not")) {
      n->negate = 1;
      if (next (p) == -1)
        goto fail;
    }
    if (!is_kw (p, "null")) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected 'null' after 'is%s', got %s", n->negate ? " not" : "",
                what);
      goto fail;
    }
    if (next (p) == -1)
      goto fail;
    return n;
  }
  if (next (p) == -1 || parse_rhs (p, n, after) == -1)
    goto fail;
  if (n->kind == N_BETWEEN) {
    if (!is_kw (p, "and")) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected 'and' in 'between A and B', got %s", what);
      goto fail;
    }
    if (next (p) == -1 || parse_rhs (p, n, "after 'between ... and'") == -1)
      goto fail;
  }
  if (n->kind == N_CMP && n->op == OP_MATCH && compile_regex (p, n, op_pos) == -1)
    goto fail;
  return n;
fail:
  free_node (n);
  return NULL;
}

/* unary := 'not' unary | value [predicate] */
static struct node *
parse_unary (struct parser *p)
{
  if (is_kw (p, "not")) {
    size_t pos = p->tok.pos;
    struct node *n, *kid;
    if (enter (p, pos) == -1 || next (p) == -1 || !(kid = parse_unary (p)))
      return NULL;
    --p->depth;
    if (!(n = new_node (p, N_NOT, pos)) || add_kid (p, n, kid) == -1) {
      free_node (n ? NULL : kid);
      free_node (n);
      return NULL;
    }
    return n;
  }
  struct node *left = parse_add (p);
  return left ? parse_predicate (p, left) : NULL;
}

/* Builds an n-ary and/or node in a loop (no recursion per operand). */
static struct node *
parse_chain (struct parser *p, const char *kw, enum node_kind kind,
             struct node *(*sub) (struct parser *) )
{
  struct node *first = sub (p), *n;

  if (!first || !is_kw (p, kw))
    return first;
  if (!(n = new_node (p, kind, first->pos))) {
    free_node (first);
    return NULL;
  }
  for (struct node *kid = first;;) {
    if (add_kid (p, n, kid) == -1) {
      free_node (n);
      return NULL;
    }
    if (!is_kw (p, kw))
      return n;
    if (next (p) == -1 || !(kid = sub (p))) {
      free_node (n);
      return NULL;
    }
  }
}

static struct node *
parse_and (struct parser *p)
{
  return parse_chain (p, "and", N_AND, parse_unary);
}

static struct node *
parse_or (struct parser *p)
{
  return parse_chain (p, "or", N_OR, parse_and);
}

/* select EXPR [as NAME] {, EXPR [as NAME]} */
static int
parse_select (struct parser *p, struct pallet_query *q)
{
  for (;;) {
    size_t start = p->tok.pos;
    char what[64];
    if (p->tok.kind == T_EOF || starts_clause (p)) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected a field to select, got %s", what);
      return -1;
    }
    struct node *e = parse_add (p);
    if (!e)
      return -1;
    size_t end = p->tok.pos;
    while (end > start && isspace ((unsigned char) p->text[end - 1]))
      --end;
    char *alias = NULL;
    if (is_kw (p, "as")) {
      if (next (p) == -1 || p->tok.kind != T_IDENT || is_reserved (p)) {
        describe (p, what, sizeof what);
        error_at (p, p->tok.pos, "expected a name after 'as', got %s", what);
        free_node (e);
        return -1;
      }
      alias = strndup (p->text + p->tok.pos, p->tok.len);
      if (next (p) == -1) {
        free (alias);
        free_node (e);
        return -1;
      }
    }
    else
      alias = strndup (p->text + start, end - start);
    struct sel_item *ns = realloc (q->sel, (q->nsel + 1) * sizeof *ns);
    if (!alias || !ns) {
      free (alias);
      free_node (e);
      error_at (p, start, "out of memory");
      return -1;
    }
    q->sel = ns;
    q->sel[q->nsel++] = (struct sel_item){ e, alias };
    if (p->tok.kind != T_COMMA)
      return 0;
    if (next (p) == -1)
      return -1;
  }
}

/* An order key that names a select alias sorts by that expression. */
static const struct node *
alias_expr (const struct pallet_query *q, const struct node *k)
{
  if (k->kind != N_FIELD || k->nsegs != 1 || !k->segs[0].key)
    return NULL;
  for (size_t i = 0; i < q->nsel; ++i)
    if (strcmp (q->sel[i].alias, k->segs[0].key) == 0)
      return q->sel[i].expr;
  return NULL;
}

static int
parse_order (struct parser *p, struct pallet_query *q)
{
  for (;;) {
    char what[64];
    if (p->tok.kind == T_EOF || p->tok.kind == T_COMMA || is_kw (p, "limit")) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected a field name to order by, got %s", what);
      return -1;
    }
    struct node *e = parse_add (p);
    struct order_key *nk = e ? realloc (q->keys, (q->nkeys + 1) * sizeof *nk) : NULL;
    if (!nk) {
      free_node (e);
      return -1;
    }
    q->keys = nk;
    q->keys[q->nkeys++] = (struct order_key){ e, 0, alias_expr (q, e) };
    /* An alias is no field of the items: do not check it against them. */
    if (q->keys[q->nkeys - 1].alias && q->nfields && q->fields[q->nfields - 1] == e)
      q->nfields--;
    if (is_kw (p, "asc") || is_kw (p, "desc")) {
      q->keys[q->nkeys - 1].desc = is_kw (p, "desc");
      if (next (p) == -1)
        return -1;
    }
    if (p->tok.kind != T_COMMA)
      return 0;
    if (next (p) == -1)
      return -1;
  }
}

static int
parse_limit (struct parser *p, struct pallet_query *q)
{
  char what[64];
  if (next (p) == -1)
    return -1;
  if (p->tok.kind != T_NUMBER || !json_is_integer (p->tok.value)
      || json_integer_value (p->tok.value) < 0) {
    describe (p, what, sizeof what);
    error_at (p, p->tok.pos, "expected a whole number >= 0 after 'limit', got %s", what);
    return -1;
  }
  q->limit = json_integer_value (p->tok.value);
  return next (p);
}

/* [select ...] [where] EXPR [order|sort by ...] [limit N]; the where
 * keyword may be left out, as kubectl-mtv allows. */
static int
parse_query (struct parser *p, struct pallet_query *q)
{
  char what[64];
  if (is_kw (p, "select") && (next (p) == -1 || parse_select (p, q) == -1))
    return -1;
  if (is_kw (p, "where")) {
    if (next (p) == -1)
      return -1;
    if (p->tok.kind == T_EOF) {
      error_at (p, p->tok.pos, "expected a condition after 'where'");
      return -1;
    }
    if (!(q->where = parse_or (p)))
      return -1;
  }
  else if (p->tok.kind != T_EOF && !starts_clause (p) && !(q->where = parse_or (p)))
    return -1;
  if (is_kw (p, "order") || is_kw (p, "sort")) {
    const char *kw = is_kw (p, "order") ? "order" : "sort";
    if (next (p) == -1)
      return -1;
    if (!is_kw (p, "by")) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos, "expected 'by' after '%s', got %s", kw, what);
      return -1;
    }
    if (next (p) == -1 || parse_order (p, q) == -1)
      return -1;
  }
  if (is_kw (p, "limit") && parse_limit (p, q) == -1)
    return -1;
  if (p->tok.kind != T_EOF) {
    describe (p, what, sizeof what);
    error_at (p, p->tok.pos, "unexpected %s; expected %s", what,
              q->limit >= 0 ? "the end of the query"
              : q->nkeys    ? "',', limit or the end of the query"
              : q->where    ? "and, or, order by, limit or the end of the query"
                            : "where, order by, limit or the end of the query");
    return -1;
  }
  return 0;
}

struct pallet_query *
pallet_query_compile (const char *text, char **errmsg)
{
  struct parser p = { 0 };
  struct pallet_query *q = calloc (1, sizeof *q);

  if (errmsg)
    *errmsg = NULL;
  if (!q) {
    if (errmsg)
      *errmsg = strdup ("query: out of memory");
    return NULL;
  }
  q->limit = -1;
  p.text = text ? text : "";
  p.len = strlen (p.text);
  p.q = q;
  if (!(q->text = strdup (p.text))) {
    pallet_query_free (q);
    if (errmsg)
      *errmsg = strdup ("query: out of memory");
    return NULL;
  }
  p.text = q->text;
  if (next (&p) == -1 || parse_query (&p, q) == -1 || Pallet_query_fields_finish (q) == -1) {
    json_decref (p.tok.value);
    pallet_query_free (q);
    if (errmsg)
      *errmsg = p.err ? p.err : strdup ("query: invalid query");
    else
      free (p.err);
    return NULL;
  }
  json_decref (p.tok.value);
  return q;
}

long long
pallet_query_limit (const struct pallet_query *q)
{
  return q ? q->limit : -1;
}

int
pallet_query_has_where (const struct pallet_query *q)
{
  return q && q->where;
}

int
pallet_query_has_order (const struct pallet_query *q)
{
  return q && q->nkeys > 0;
}

int
pallet_query_has_select (const struct pallet_query *q)
{
  return q && q->nsel > 0;
}
