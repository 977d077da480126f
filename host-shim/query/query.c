/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-query: a recursive-descent parser and evaluator for kubectl-mtv's
 * query language.  See pallet-query.h for the grammar.
 *
 * and/or are n-ary nodes built in loops, so only parentheses and 'not'
 * add recursion depth, and that is capped at PALLET_QUERY_MAX_DEPTH.
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

#include "pallet-query.h"

/* ---- tokens ---- */

enum tok_kind {
  T_EOF,
  T_IDENT,
  T_STRING,
  T_NUMBER,
  T_LPAREN,
  T_RPAREN,
  T_COMMA,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_MATCH,
  T_NMATCH
};

struct token {
  enum tok_kind kind;
  size_t pos; /* byte offset of the first character */
  size_t len;
  json_t *value; /* T_STRING / T_NUMBER; owned by the lexer */
};

/* ---- AST ---- */

struct path_seg {
  char *key; /* NULL for an index */
  size_t index;
};

struct operand {
  json_t *lit; /* a literal, or NULL for a field */
  struct path_seg *segs;
  size_t nsegs;
};

enum node_kind { N_AND, N_OR, N_NOT, N_CMP, N_IN, N_BETWEEN, N_NULL, N_TRUTH };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_LIKE, OP_ILIKE, OP_MATCH };

struct node {
  enum node_kind kind;
  int negate; /* not in / not between / is not null /
                                   not like / !~ */
  enum cmp_op op;
  struct node **kids; /* N_AND, N_OR, N_NOT */
  size_t nkids;
  struct operand a, b, c; /* b/c: right operand(s) */
  json_t *list;           /* N_IN: array of literals */
  regex_t re;
  int has_re;
};

struct order_key {
  struct operand field;
  int desc;
};

struct pallet_query {
  struct node *where;
  struct order_key *keys;
  size_t nkeys;
  long long limit;
};

/* ---- parser state ---- */

struct parser {
  const char *text;
  size_t len;
  struct token tok; /* the current token */
  char *err;
  int depth;
};

static void
free_operand (struct operand *o)
{
  size_t i;

  json_decref (o->lit);
  for (i = 0; i < o->nsegs; ++i)
    free (o->segs[i].key);
  free (o->segs);
  memset (o, 0, sizeof *o);
}

static void
free_node (struct node *n)
{
  size_t i;

  if (!n)
    return;
  for (i = 0; i < n->nkids; ++i)
    free_node (n->kids[i]);
  free (n->kids);
  free_operand (&n->a);
  free_operand (&n->b);
  free_operand (&n->c);
  json_decref (n->list);
  if (n->has_re)
    regfree (&n->re);
  free (n);
}

void
pallet_query_free (struct pallet_query *q)
{
  size_t i;

  if (!q)
    return;
  free_node (q->where);
  for (i = 0; i < q->nkeys; ++i)
    free_operand (&q->keys[i].field);
  free (q->keys);
  free (q);
}

/* Records the first error, at byte offset pos, with a caret line. */
__attribute__ ((format (printf, 3, 4))) static void
error_at (struct parser *p, size_t pos, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL, *out = NULL;
  int r;

  if (p->err)
    return;
  va_start (ap, fmt);
  r = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (r < 0) {
    p->err = strdup ("query: out of memory");
    return;
  }
  /* The query on one line (newlines and tabs shown as spaces), then the
   * caret under the column. */
  char *shown = strdup (p->text);
  if (!shown) {
    free (msg);
    p->err = strdup ("query: out of memory");
    return;
  }
  for (char *s = shown; *s; ++s)
    if (*s == '\n' || *s == '\t' || *s == '\r')
      *s = ' ';
  r = asprintf (&out, "query: column %zu: %s\n  %s\n  %*s^", pos + 1, msg, shown,
                (int) (pos > INT_MAX - 1 ? INT_MAX - 1 : pos), "");
  free (shown);
  free (msg);
  if (r < 0) {
    p->err = strdup ("query: out of memory");
    return;
  }
  p->err = out;
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
  case T_COMMA: return "','";
  case T_EQ: return "'='";
  case T_NE: return "'!='";
  case T_LT: return "'<'";
  case T_LE: return "'<='";
  case T_GT: return "'>'";
  case T_GE: return "'>='";
  case T_MATCH: return "'~='";
  case T_NMATCH: return "'!~'";
  }
  return "?";
}

/* Describes the current token for error messages, in a static-free way. */
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

static int
is_ident_char (int c)
{
  return isalnum ((unsigned char) c) || c == '_' || c == '.' || c == '[' || c == ']' || c == '-'
         || c == '/';
}

/* Reads a number at pos; returns its length or 0 after an error. */
static size_t
lex_number (struct parser *p, size_t pos)
{
  const char *s = p->text + pos;
  size_t i = 0, digits_end;
  int is_real = 0;
  char *buf;
  double mult = 1;
  json_t *v;

  if (s[i] == '-')
    ++i;
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
  if (strchr ("KMGTP", s[i]) && s[i]) {
    static const char units[] = "KMGTP";
    int e = (int) (strchr (units, s[i]) - units) + 1;
    int binary = s[i + 1] == 'i';
    mult = pow (binary ? 1024 : 1000, e);
    i += binary ? 2 : 1;
  }
  if (is_ident_char (s[i]) && s[i] != ']') {
    error_at (p, pos,
              "'%.*s' is not a number; write digits with an "
              "optional suffix (K M G T P, Ki Mi Gi Ti Pi), or quote "
              "a string",
              (int) (i + 1), s);
    return 0;
  }
  buf = strndup (s, digits_end);
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

/* Reads a 'string' at pos ('' is one quote); returns its length or 0. */
static size_t
lex_string (struct parser *p, size_t pos)
{
  const char *s = p->text + pos;
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
                "(write '' for a quote inside a string)");
      return 0;
    }
    if (s[i] == '\'') {
      if (s[i + 1] == '\'') {
        buf[o++] = '\'';
        i += 2;
        continue;
      }
      ++i;
      break;
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
  case ',': *kind = T_COMMA; return 1;
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
    if (s[1] != '=')
      return 0;
    *kind = T_MATCH;
    return 2;
  }
  return 0;
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
  n = lex_operator (s, &p->tok.kind);
  if (n > 0) {
    p->tok.len = n;
    return 0;
  }
  if (*s == '\'') {
    p->tok.kind = T_STRING;
    n = lex_string (p, pos);
    if (n == 0)
      return -1;
  }
  else if (*s == '"') {
    error_at (p, pos,
              "strings use single quotes: write 'text', not "
              "\"text\"");
    return -1;
  }
  else if (isdigit ((unsigned char) *s)
           || (*s == '-'
               && (isdigit ((unsigned char) s[1])
                   || (s[1] == '.' && isdigit ((unsigned char) s[2]))))) {
    p->tok.kind = T_NUMBER;
    n = lex_number (p, pos);
    if (n == 0)
      return -1;
  }
  else if (is_ident_start (*s)) {
    p->tok.kind = T_IDENT;
    while (is_ident_char (s[n]))
      ++n;
  }
  else {
    error_at (p, pos,
              "unexpected character '%c'; expected a field, a value, "
              "an operator or a keyword",
              *s);
    return -1;
  }
  p->tok.len = n;
  return 0;
}

/* Is the current token the keyword kw (case-insensitive)? */
static int
is_kw (const struct parser *p, const char *kw)
{
  return p->tok.kind == T_IDENT && strlen (kw) == p->tok.len
         && strncasecmp (p->text + p->tok.pos, kw, p->tok.len) == 0;
}

/* Words that end an operand or start a clause, never field names. */
static int
is_reserved (const struct parser *p)
{
  static const char *const words[] = { "where", "order",   "by",     "asc",  "desc",  "limit",
                                       "and",   "or",      "not",    "like", "ilike", "in",
                                       "is",    "between", "select", NULL };
  for (size_t i = 0; words[i]; ++i)
    if (is_kw (p, words[i]))
      return 1;
  return 0;
}

/* Splits the identifier token into path segments. */
static int
parse_path (struct parser *p, struct operand *o)
{
  const char *s = p->text + p->tok.pos;
  size_t len = p->tok.len, i = 0, cap = 0;

  while (i < len) {
    struct path_seg seg = { NULL, 0 };
    size_t start = i;

    if (s[i] == '[') {
      size_t v = 0;
      ++i;
      if (i >= len || !isdigit ((unsigned char) s[i]))
        goto bad;
      while (i < len && isdigit ((unsigned char) s[i])) {
        if (v > (SIZE_MAX - 9) / 10)
          goto bad;
        v = v * 10 + (size_t) (s[i] - '0');
        ++i;
      }
      if (i >= len || s[i] != ']')
        goto bad;
      ++i;
      seg.index = v;
    }
    else {
      while (i < len && s[i] != '.' && s[i] != '[' && s[i] != ']')
        ++i;
      if (i == start || (i < len && s[i] == ']'))
        goto bad;
      seg.key = strndup (s + start, i - start);
      if (!seg.key) {
        error_at (p, p->tok.pos, "out of memory");
        return -1;
      }
    }
    if (o->nsegs == cap) {
      cap = cap ? cap * 2 : 4;
      struct path_seg *ns = realloc (o->segs, cap * sizeof *ns);
      if (!ns) {
        free (seg.key);
        error_at (p, p->tok.pos, "out of memory");
        return -1;
      }
      o->segs = ns;
    }
    o->segs[o->nsegs++] = seg;
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
              "'.' with optional [N] indexes, e.g. disks[0].size",
              (int) len, s);
    return -1;
  }
  return 0;
}

/* operand := STRING | NUMBER | true | false | null | FIELD */
static int
parse_operand (struct parser *p, struct operand *o, const char *after)
{
  char what[64];

  switch (p->tok.kind) {
  case T_STRING:
  case T_NUMBER:
    o->lit = p->tok.value;
    p->tok.value = NULL;
    return next (p);
  case T_IDENT:
    if (is_kw (p, "true"))
      o->lit = json_true ();
    else if (is_kw (p, "false"))
      o->lit = json_false ();
    else if (is_kw (p, "null"))
      o->lit = json_null ();
    else if (!is_reserved (p)) {
      if (parse_path (p, o) == -1)
        return -1;
    }
    else
      break;
    return next (p);
  default: break;
  }
  describe (p, what, sizeof what);
  error_at (p, p->tok.pos,
            "expected a value %s, got %s; write a 'string', "
            "a number, true, false, null or a field name",
            after, what);
  return -1;
}

static struct node *
new_node (struct parser *p, enum node_kind k)
{
  struct node *n = calloc (1, sizeof *n);

  if (!n)
    error_at (p, p->tok.pos, "out of memory");
  else
    n->kind = k;
  return n;
}

static struct node *parse_or (struct parser *p);

/* A comparison operator and its right operand; =~ and !~ compile the
 * regular expression now. */
static int
parse_compare (struct parser *p, struct node *n)
{
  size_t op_pos = p->tok.pos;
  enum tok_kind k = p->tok.kind;
  char after[64];

  static const enum cmp_op ops[] = {
    [T_EQ] = OP_EQ, [T_NE] = OP_NE, [T_LT] = OP_LT,       [T_LE] = OP_LE,
    [T_GT] = OP_GT, [T_GE] = OP_GE, [T_MATCH] = OP_MATCH, [T_NMATCH] = OP_MATCH
  };
  n->kind = N_CMP;
  n->op = ops[k];
  n->negate = k == T_NMATCH;
  snprintf (after, sizeof after, "after %s", tok_name (k));
  if (next (p) == -1 || parse_operand (p, &n->b, after) == -1)
    return -1;
  if (n->op == OP_MATCH) {
    int r;
    if (!n->b.lit || !json_is_string (n->b.lit)) {
      error_at (p, op_pos,
                "%s needs a 'regular expression' string "
                "on its right",
                tok_name (k));
      return -1;
    }
    r = regcomp (&n->re, json_string_value (n->b.lit), REG_EXTENDED | REG_NOSUB);
    if (r != 0) {
      char rbuf[128];
      regerror (r, &n->re, rbuf, sizeof rbuf);
      error_at (p, op_pos, "bad regular expression: %s", rbuf);
      return -1;
    }
    n->has_re = 1;
  }
  return 0;
}

/* in ('a', 'b', ...): literal values only. */
static int
parse_in_list (struct parser *p, struct node *n)
{
  n->kind = N_IN;
  if (next (p) == -1)
    return -1;
  if (p->tok.kind != T_LPAREN) {
    char what[64];
    describe (p, what, sizeof what);
    error_at (p, p->tok.pos,
              "expected '(' after 'in', got %s; write "
              "in ('a', 'b')",
              what);
    return -1;
  }
  n->list = json_array ();
  if (!n->list) {
    error_at (p, p->tok.pos, "out of memory");
    return -1;
  }
  if (next (p) == -1)
    return -1;
  for (;;) {
    struct operand o = { 0 };
    if (p->tok.kind == T_IDENT && !is_kw (p, "true") && !is_kw (p, "false") && !is_kw (p, "null")) {
      char what[64];
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos,
                "the list after 'in' holds literal "
                "values only, got %s; quote strings: 'text'",
                what);
      return -1;
    }
    if (parse_operand (p, &o, "in the list after 'in'") == -1) {
      free_operand (&o); /* the value is read before a bad token */
      return -1;
    }
    if (json_array_append_new (n->list, o.lit) == -1) {
      error_at (p, p->tok.pos, "out of memory");
      return -1;
    }
    if (p->tok.kind == T_COMMA) {
      if (next (p) == -1)
        return -1;
      continue;
    }
    if (p->tok.kind == T_RPAREN)
      return next (p);
    {
      char what[64];
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos,
                "expected ',' or ')' in the list after "
                "'in', got %s",
                what);
    }
    return -1;
  }
}

static int
parse_between (struct parser *p, struct node *n)
{
  n->kind = N_BETWEEN;
  if (next (p) == -1 || parse_operand (p, &n->b, "after 'between'") == -1)
    return -1;
  if (!is_kw (p, "and")) {
    char what[64];
    describe (p, what, sizeof what);
    error_at (p, p->tok.pos,
              "expected 'and' in 'between A and B', "
              "got %s",
              what);
    return -1;
  }
  if (next (p) == -1 || parse_operand (p, &n->c, "after 'between ... and'") == -1)
    return -1;
  return 0;
}

static int
parse_is_null (struct parser *p, struct node *n)
{
  n->kind = N_NULL;
  if (next (p) == -1)
    return -1;
  if (is_kw (p, "not")) {
    n->negate = 1;
    if (next (p) == -1)
      return -1;
  }
  if (!is_kw (p, "null")) {
    char what[64];
    describe (p, what, sizeof what);
    error_at (p, p->tok.pos, "expected 'null' after 'is%s', got %s", n->negate ? " not" : "", what);
    return -1;
  }
  return next (p);
}

/* The right side of a comparison whose left operand is in n->a. */
static int
parse_predicate (struct parser *p, struct node *n)
{
  char after[64];

  if (p->tok.kind >= T_EQ && p->tok.kind <= T_NMATCH)
    return parse_compare (p, n);

  if (is_kw (p, "not")) {
    n->negate = 1;
    if (next (p) == -1)
      return -1;
    if (!is_kw (p, "like") && !is_kw (p, "ilike") && !is_kw (p, "in") && !is_kw (p, "between")) {
      char what[64];
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos,
                "expected like, ilike, in or between "
                "after 'not', got %s",
                what);
      return -1;
    }
  }

  if (is_kw (p, "like") || is_kw (p, "ilike")) {
    n->kind = N_CMP;
    n->op = is_kw (p, "like") ? OP_LIKE : OP_ILIKE;
    snprintf (after, sizeof after, "after '%s'", n->op == OP_LIKE ? "like" : "ilike");
    if (next (p) == -1 || parse_operand (p, &n->b, after) == -1)
      return -1;
    return 0;
  }

  if (is_kw (p, "in"))
    return parse_in_list (p, n);
  if (is_kw (p, "between"))
    return parse_between (p, n);
  if (is_kw (p, "is"))
    return parse_is_null (p, n);

  /* A bare operand: true when it is JSON true. */
  n->kind = N_TRUTH;
  return 0;
}

/* primary := '(' or ')' | 'not' primary | operand [predicate] */
static struct node *
parse_unary (struct parser *p)
{
  struct node *n;

  if (p->tok.kind == T_LPAREN || is_kw (p, "not")) {
    int is_not = p->tok.kind != T_LPAREN;
    size_t pos = p->tok.pos;

    if (++p->depth > PALLET_QUERY_MAX_DEPTH) {
      error_at (p, pos,
                "parentheses and 'not' nest deeper than %d "
                "levels; simplify the query",
                PALLET_QUERY_MAX_DEPTH);
      return NULL;
    }
    if (next (p) == -1)
      return NULL;
    if (is_not) {
      struct node *kid = parse_unary (p);
      if (!kid)
        return NULL;
      n = new_node (p, N_NOT);
      if (!n || !(n->kids = malloc (sizeof *n->kids))) {
        error_at (p, pos, "out of memory");
        free (n);
        free_node (kid);
        return NULL;
      }
      n->kids[0] = kid;
      n->nkids = 1;
    }
    else {
      n = parse_or (p);
      if (!n)
        return NULL;
      if (p->tok.kind != T_RPAREN) {
        char what[64];
        describe (p, what, sizeof what);
        error_at (p, p->tok.pos,
                  "expected ')' to close the '(' at "
                  "column %zu, got %s",
                  pos + 1, what);
        free_node (n);
        return NULL;
      }
      if (next (p) == -1) {
        free_node (n);
        return NULL;
      }
    }
    --p->depth;
    return n;
  }

  n = new_node (p, N_TRUTH);
  if (!n)
    return NULL;
  if (parse_operand (p, &n->a, "in the condition") == -1 || parse_predicate (p, n) == -1) {
    free_node (n);
    return NULL;
  }
  return n;
}

/* Builds an n-ary and/or node in a loop (no recursion per operand). */
static struct node *
parse_chain (struct parser *p, const char *kw, enum node_kind kind,
             struct node *(*sub) (struct parser *) )
{
  struct node *first = sub (p), *n;
  size_t cap = 0;

  if (!first || !is_kw (p, kw))
    return first;
  n = new_node (p, kind);
  if (!n) {
    free_node (first);
    return NULL;
  }
  for (struct node *kid = first;;) {
    if (n->nkids == cap) {
      cap = cap ? cap * 2 : 4;
      struct node **nk = realloc (n->kids, cap * sizeof *nk);
      if (!nk) {
        error_at (p, p->tok.pos, "out of memory");
        free_node (kid);
        free_node (n);
        return NULL;
      }
      n->kids = nk;
    }
    n->kids[n->nkids++] = kid;
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

static int
parse_order (struct parser *p, struct pallet_query *q)
{
  size_t cap = 0;

  for (;;) {
    struct order_key key = { { 0 }, 0 };
    char what[64];

    if (p->tok.kind != T_IDENT || is_reserved (p) || is_kw (p, "true") || is_kw (p, "false")
        || is_kw (p, "null")) {
      describe (p, what, sizeof what);
      error_at (p, p->tok.pos,
                "expected a field name to order by, got "
                "%s",
                what);
      return -1;
    }
    if (parse_path (p, &key.field) == -1) {
      free_operand (&key.field);
      return -1;
    }
    if (q->nkeys == cap) {
      cap = cap ? cap * 2 : 4;
      struct order_key *nk = realloc (q->keys, cap * sizeof *nk);
      if (!nk) {
        free_operand (&key.field);
        error_at (p, p->tok.pos, "out of memory");
        return -1;
      }
      q->keys = nk;
    }
    q->keys[q->nkeys++] = key;
    if (next (p) == -1)
      return -1;
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

struct pallet_query *
pallet_query_compile (const char *text, char **errmsg)
{
  struct parser p = { 0 };
  struct pallet_query *q = calloc (1, sizeof *q);
  char what[64];

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
  if (next (&p) == -1)
    goto fail;

  if (is_kw (&p, "select")) {
    error_at (&p, p.tok.pos,
              "'select' is not supported here; start with "
              "where, order by or limit");
    goto fail;
  }
  if (is_kw (&p, "where")) {
    if (next (&p) == -1)
      goto fail;
    if (p.tok.kind == T_EOF) {
      error_at (&p, p.tok.pos, "expected a condition after 'where'");
      goto fail;
    }
    q->where = parse_or (&p);
    if (!q->where)
      goto fail;
  }
  if (is_kw (&p, "order")) {
    if (next (&p) == -1)
      goto fail;
    if (!is_kw (&p, "by")) {
      describe (&p, what, sizeof what);
      error_at (&p, p.tok.pos, "expected 'by' after 'order', got %s", what);
      goto fail;
    }
    if (next (&p) == -1 || parse_order (&p, q) == -1)
      goto fail;
  }
  if (is_kw (&p, "limit")) {
    if (next (&p) == -1)
      goto fail;
    if (p.tok.kind != T_NUMBER || !json_is_integer (p.tok.value)
        || json_integer_value (p.tok.value) < 0) {
      describe (&p, what, sizeof what);
      error_at (&p, p.tok.pos,
                "expected a whole number >= 0 after "
                "'limit', got %s",
                what);
      goto fail;
    }
    q->limit = json_integer_value (p.tok.value);
    if (next (&p) == -1)
      goto fail;
  }
  if (p.tok.kind != T_EOF) {
    describe (&p, what, sizeof what);
    if (!q->where && !q->nkeys && q->limit < 0)
      error_at (&p, p.tok.pos,
                "expected where, order by or limit, got "
                "%s",
                what);
    else
      error_at (&p, p.tok.pos, "unexpected %s; expected %s", what,
                q->limit >= 0 ? "the end of the query"
                : q->nkeys    ? "',', limit or the end of the query"
                              : "and, or, order by, limit or the end of the query");
    goto fail;
  }
  json_decref (p.tok.value);
  return q;

fail:
  json_decref (p.tok.value);
  pallet_query_free (q);
  if (errmsg)
    *errmsg = p.err ? p.err : strdup ("query: invalid query");
  else
    free (p.err);
  return NULL;
}

/* ---- evaluation ---- */

/* The value an operand has for item: a literal, the field's value, or NULL
 * when the field is missing. */
static const json_t *
resolve (const struct operand *o, const json_t *item)
{
  const json_t *v = item;

  if (o->lit)
    return o->lit;
  for (size_t i = 0; i < o->nsegs && v; ++i) {
    if (o->segs[i].key)
      v = json_is_object (v) ? json_object_get (v, o->segs[i].key) : NULL;
    else
      v = json_is_array (v) ? json_array_get (v, o->segs[i].index) : NULL;
  }
  return v;
}

static int
is_null (const json_t *v)
{
  return v == NULL || json_is_null (v);
}

/* Compares two values of the same comparable kind: -1, 0, 1, or 2 when
 * they cannot be compared (different types, objects, arrays). */
static int
compare (const json_t *a, const json_t *b)
{
  if (json_is_number (a) && json_is_number (b)) {
    if (json_is_integer (a) && json_is_integer (b)) {
      json_int_t x = json_integer_value (a), y = json_integer_value (b);
      return x < y ? -1 : x > y;
    }
    double x = json_number_value (a), y = json_number_value (b);
    return x < y ? -1 : x > y;
  }
  if (json_is_string (a) && json_is_string (b)) {
    int r = strcmp (json_string_value (a), json_string_value (b));
    return r < 0 ? -1 : r > 0;
  }
  if (json_is_boolean (a) && json_is_boolean (b))
    return json_is_true (a) - json_is_true (b);
  return 2;
}

/* SQL LIKE: % any run, _ one character (a byte; UTF-8 continuation bytes
 * are skipped so _ is one character).  Iterative with one backtrack
 * point, so it is linear-ish and cannot recurse. */
static int
like (const char *s, const char *pat, int fold)
{
  const char *star_p = NULL, *star_s = NULL;

#define CONT(c) (((unsigned char) (c) &0xC0) == 0x80)
#define EQ(x, y) \
  (fold ? tolower ((unsigned char) (x)) == tolower ((unsigned char) (y)) : (x) == (y))
  while (*s) {
    if (*pat == '%') {
      star_p = ++pat;
      star_s = s;
    }
    else if (*pat == '_') {
      ++pat;
      ++s;
      while (CONT (*s))
        ++s;
    }
    else if (*pat && EQ (*pat, *s)) {
      ++pat;
      ++s;
    }
    else if (star_p) {
      pat = star_p;
      s = ++star_s;
      while (CONT (*s))
        s = ++star_s;
    }
    else
      return 0;
  }
  while (*pat == '%')
    ++pat;
  return *pat == '\0';
#undef CONT
#undef EQ
}

static int
eval (const struct node *n, const json_t *item)
{
  const json_t *a, *b, *c;
  int r;

  switch (n->kind) {
  case N_AND:
    for (size_t i = 0; i < n->nkids; ++i)
      if (!eval (n->kids[i], item))
        return 0;
    return 1;
  case N_OR:
    for (size_t i = 0; i < n->nkids; ++i)
      if (eval (n->kids[i], item))
        return 1;
    return 0;
  case N_NOT: return !eval (n->kids[0], item);
  case N_TRUTH: return json_is_true (resolve (&n->a, item));
  case N_NULL: return is_null (resolve (&n->a, item)) != n->negate;
  case N_IN:
    a = resolve (&n->a, item);
    r = 0;
    if (a)
      for (size_t i = 0; i < json_array_size (n->list) && !r; ++i)
        r = json_equal ((json_t *) a, json_array_get (n->list, i))
            || compare (a, json_array_get (n->list, i)) == 0;
    /* A missing or null value is only in a list holding null, and
       * never 'not in' a list (SQL's unknown is false). */
    if (is_null (a)) {
      for (size_t i = 0; i < json_array_size (n->list) && !r; ++i)
        r = json_is_null (json_array_get (n->list, i));
      return n->negate ? 0 : r;
    }
    return r != n->negate;
  case N_BETWEEN:
    a = resolve (&n->a, item);
    b = resolve (&n->b, item);
    c = resolve (&n->c, item);
    if (is_null (a) || is_null (b) || is_null (c))
      return 0;
    {
      int lo = compare (a, b), hi = compare (a, c);
      if (lo == 2 || hi == 2)
        return 0; /* mixed types: neither in nor out */
      r = lo >= 0 && hi <= 0;
    }
    return r != n->negate;
  case N_CMP:
    a = resolve (&n->a, item);
    b = resolve (&n->b, item);
    switch (n->op) {
    case OP_EQ:
      if (is_null (a) || is_null (b))
        return is_null (a) && is_null (b);
      return compare (a, b) == 0 || json_equal ((json_t *) a, (json_t *) b);
    case OP_NE:
      if (is_null (a) || is_null (b))
        return !(is_null (a) && is_null (b));
      return !(compare (a, b) == 0 || json_equal ((json_t *) a, (json_t *) b));
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
      if (is_null (a) || is_null (b))
        return 0;
      r = compare (a, b);
      if (r == 2)
        return 0;
      return n->op == OP_LT ? r < 0 : n->op == OP_LE ? r <= 0 : n->op == OP_GT ? r > 0 : r >= 0;
    case OP_LIKE:
    case OP_ILIKE:
      if (!json_is_string (a) || !json_is_string (b))
        return 0;
      r = like (json_string_value (a), json_string_value (b), n->op == OP_ILIKE);
      return r != n->negate;
    case OP_MATCH:
      if (!json_is_string (a))
        return 0;
      r = regexec (&n->re, json_string_value (a), 0, NULL, 0) == 0;
      return r != n->negate;
    }
  }
  return 0;
}

int
pallet_query_match (const struct pallet_query *q, const json_t *item)
{
  return !q || !q->where || eval (q->where, item);
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

/* Sort rank of a value's type: missing/null < false/true < numbers <
 * strings < arrays < objects. */
static int
rank (const json_t *v)
{
  if (is_null (v))
    return 0;
  if (json_is_boolean (v))
    return 1;
  if (json_is_number (v))
    return 2;
  if (json_is_string (v))
    return 3;
  if (json_is_array (v))
    return 4;
  return 5;
}

struct sort_ent {
  const json_t *item;
  size_t index;
};

int
pallet_query_has_order (const struct pallet_query *q)
{
  return q && q->nkeys > 0;
}

int
pallet_query_compare (const struct pallet_query *q, const json_t *a, const json_t *b)
{
  for (size_t i = 0; q && i < q->nkeys; ++i) {
    const json_t *va = resolve (&q->keys[i].field, a);
    const json_t *vb = resolve (&q->keys[i].field, b);
    int ra = rank (va), rb = rank (vb), r;

    if (ra != rb)
      r = ra < rb ? -1 : 1;
    else {
      r = compare (va, vb);
      if (r == 2)
        r = 0;
    }
    if (r)
      return q->keys[i].desc ? -r : r;
  }
  return 0;
}

static int
cmp_ents (const void *x, const void *y, void *arg)
{
  const struct sort_ent *a = x, *b = y;
  int r = pallet_query_compare (arg, a->item, b->item);
  if (r)
    return r;
  /* Stable: fall back to the input order. */
  return a->index < b->index ? -1 : a->index > b->index;
}

json_t *
pallet_query_apply (const struct pallet_query *q, const json_t *array, char **errmsg)
{
  size_t n, m = 0, i;
  struct sort_ent *ents;
  json_t *out;

  if (errmsg)
    *errmsg = NULL;
  if (!json_is_array (array)) {
    if (errmsg)
      *errmsg = strdup ("query: the items to filter must be a JSON array");
    return NULL;
  }
  n = json_array_size (array);
  ents = malloc ((n ? n : 1) * sizeof *ents);
  out = json_array ();
  if (!ents || !out)
    goto oom;
  for (i = 0; i < n; ++i) {
    const json_t *item = json_array_get (array, i);
    if (pallet_query_match (q, item)) {
      ents[m].item = item;
      ents[m].index = i;
      ++m;
    }
  }
  if (q && q->nkeys && m > 1)
    qsort_r (ents, m, sizeof *ents, cmp_ents, (void *) q);
  if (q && q->limit >= 0 && (unsigned long long) q->limit < m)
    m = (size_t) q->limit;
  for (i = 0; i < m; ++i)
    if (json_array_append (out, (json_t *) ents[i].item) == -1)
      goto oom;
  free (ents);
  return out;

oom:
  free (ents);
  json_decref (out);
  if (errmsg)
    *errmsg = strdup ("query: out of memory");
  return NULL;
}
