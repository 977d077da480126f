/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for pallet-query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "pallet-query.h"

static json_t *items;

static const char items_json[] =
    "["
    " {\"name\":\"web-1\",\"powerState\":\"running\",\"cpus\":2,"
    "  \"memoryMB\":4096,\"label\":{\"tier\":\"web\"},\"disks\":[{\"size\":10}]},"
    " {\"name\":\"web-2\",\"powerState\":\"stopped\",\"cpus\":4,"
    "  \"memoryMB\":8192,\"label\":{\"tier\":\"web\"},"
    "  \"disks\":[{\"size\":20},{\"size\":5}]},"
    " {\"name\":\"db-1\",\"powerState\":\"running\",\"cpus\":8,"
    "  \"memoryMB\":16384,\"label\":{\"tier\":\"db\"},\"disks\":[{\"size\":100}],"
    "  \"encrypted\":true},"
    " {\"name\":\"O'Brien\",\"powerState\":\"running\",\"cpus\":1,"
    "  \"memoryMB\":512.5,\"label\":null,\"disks\":[],\"encrypted\":false},"
    " {\"name\":\"cache_1\",\"powerState\":null,\"cpus\":\"2\",\"memoryMB\":2048}"
    "]";

static int
setup (void)
{
  items = json_loads (items_json, 0, NULL);
  return items ? 0 : 1;
}

static int
teardown (void)
{
  json_decref (items);
  return 0;
}

/* The names of the items query selects, comma-separated; "ERROR: msg"
 * when it does not compile. */
static char *
run (const char *text)
{
  char *err = NULL, *out;
  struct pallet_query *q = pallet_query_compile (text, &err);
  json_t *res;
  size_t i, len = 1;

  if (!q) {
    if (asprintf (&out, "ERROR: %s", err ? err : "(no message)") < 0)
      out = NULL;
    free (err);
    return out;
  }
  CU_ASSERT_PTR_NULL (err);
  res = pallet_query_apply (q, items, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (res);
  for (i = 0; i < json_array_size (res); ++i)
    len += strlen (json_string_value (json_object_get (json_array_get (res, i), "name"))) + 1;
  out = calloc (1, len);
  for (i = 0; i < json_array_size (res); ++i) {
    if (i)
      strcat (out, ",");
    strcat (out, json_string_value (json_object_get (json_array_get (res, i), "name")));
  }
  json_decref (res);
  pallet_query_free (q);
  return out;
}

#define CHECK(text, expected)                                                                \
  do {                                                                                       \
    char *got_ = run (text);                                                                 \
    if (strcmp (got_, (expected)) != 0)                                                      \
      fprintf (stderr, "\n  query: %s\n  want: %s\n  got:  %s\n", (text), (expected), got_); \
    CU_ASSERT_STRING_EQUAL (got_, (expected));                                               \
    free (got_);                                                                             \
  } while (0)

static void
test_empty (void)
{
  CHECK ("", "web-1,web-2,db-1,O'Brien,cache_1");
  CHECK ("   ", "web-1,web-2,db-1,O'Brien,cache_1");
  struct pallet_query *q = pallet_query_compile (NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (q);
  CU_ASSERT_EQUAL (pallet_query_has_where (q), 0);
  CU_ASSERT_EQUAL (pallet_query_limit (q), -1);
  pallet_query_free (q);
}

static void
test_precedence (void)
{
  /* and binds tighter than or. */
  CHECK ("where cpus = 8 or cpus = 2 and powerState = 'stopped'", "db-1");
  CHECK ("where cpus = 2 and powerState = 'stopped' or cpus = 8", "db-1");
  /* Parentheses override it. */
  CHECK ("where (cpus = 8 or cpus = 4) and powerState = 'stopped'", "web-2");
  /* not binds tighter than and. */
  CHECK ("where not cpus = 2 and powerState = 'running'", "db-1,O'Brien");
  CHECK ("where not (cpus = 2 and powerState = 'running')", "web-2,db-1,O'Brien,cache_1");
  CHECK ("where not not cpus = 2", "web-1");
  CHECK ("where ((((cpus = 4))))", "web-2");
}

static void
test_like (void)
{
  CHECK ("where name like 'web-%'", "web-1,web-2");
  CHECK ("where name like '_b-1'", "db-1");
  CHECK ("where name like 'WEB%'", "");
  CHECK ("where name ilike 'WEB%'", "web-1,web-2");
  CHECK ("where name not like 'web%'", "db-1,O'Brien,cache_1");
  CHECK ("where name like '%1'", "web-1,db-1,cache_1");
  CHECK ("where name like '%'", "web-1,web-2,db-1,O'Brien,cache_1");
  CHECK ("where name like 'O''%'", "O'Brien");
  CHECK ("where name like '%-%-%'", "");
  CHECK ("where name like 'w%b%2'", "web-2");
  /* like on a number never matches. */
  CHECK ("where cpus like '%'", "cache_1");
}

static void
test_in (void)
{
  CHECK ("where powerState in ('stopped', 'off')", "web-2");
  CHECK ("where powerState not in ('running')", "web-2");
  CHECK ("where cpus in (1, 8)", "db-1,O'Brien");
  CHECK ("where name in ('O''Brien')", "O'Brien");
  CHECK ("where powerState in (null)", "cache_1");
  CHECK ("where encrypted in (true)", "db-1");
  CHECK ("where memoryMB in (512.5, 2Ki)", "O'Brien,cache_1");
}

static void
test_null_and_fields (void)
{
  CHECK ("where label is null", "O'Brien,cache_1");
  CHECK ("where label is not null", "web-1,web-2,db-1");
  CHECK ("where label.tier = 'db'", "db-1");
  CHECK ("where disks[1].size = 5", "web-2");
  CHECK ("where disks[0].size >= 20", "web-2,db-1");
  CHECK ("where disks[0].size.x = 1", "");
  CHECK ("where nosuch = null", "web-1,web-2,db-1,O'Brien,cache_1");
  CHECK ("where nosuch != 1", "web-1,web-2,db-1,O'Brien,cache_1");
}

static void
test_comparisons (void)
{
  CHECK ("where memoryMB > 4096", "web-2,db-1");
  CHECK ("where memoryMB <= 2048", "O'Brien,cache_1");
  CHECK ("where memoryMB < 1Ki", "O'Brien");
  CHECK ("where memoryMB >= 8Ki", "web-2,db-1");
  CHECK ("where memoryMB > 16K", "db-1");
  CHECK ("where memoryMB = 512.5", "O'Brien");
  CHECK ("where cpus <> 2", "web-2,db-1,O'Brien,cache_1");
  CHECK ("where cpus != 2", "web-2,db-1,O'Brien,cache_1");
  CHECK ("where cpus == 2", "web-1");
  CHECK ("where cpus > -1.5e0", "web-1,web-2,db-1,O'Brien");
  CHECK ("where name >= 'd' and name < 'w'", "db-1");
  CHECK ("where cpus between 2 and 4", "web-1,web-2");
  CHECK ("where cpus not between 2 and 4", "db-1,O'Brien");
  CHECK ("where name ~= '^web-[0-9]+$'", "web-1,web-2");
  CHECK ("where name !~ 'web'", "db-1,O'Brien,cache_1");
  CHECK ("where encrypted = true", "db-1");
  CHECK ("where encrypted", "db-1");
  CHECK ("where not encrypted", "web-1,web-2,O'Brien,cache_1");
  CHECK ("where encrypted = false", "O'Brien");
}

static void
test_type_mismatch (void)
{
  CHECK ("where cpus > 'a'", "");
  CHECK ("where name > 5", "");
  CHECK ("where cpus = '2'", "cache_1");
  CHECK ("where cpus = 2", "web-1");
  CHECK ("where label > 1", "");
  CHECK ("where label = 'web'", "");
  CHECK ("where cpus between '1' and '3'", "cache_1");
  CHECK ("where cpus between 'a' and 'z'", "");
  CHECK ("where encrypted > false", "db-1");
}

static void
test_keywords_case (void)
{
  CHECK ("WHERE name LIKE 'web%' ORDER BY cpus DESC LIMIT 1", "web-2");
  CHECK ("Where Not encrypted And cpus In (4) Or cpus Is Null", "web-2");
  /* Field names stay case-sensitive. */
  CHECK ("where Name like 'web%'", "");
}

static void
test_order_limit (void)
{
  CHECK ("order by cpus", "O'Brien,web-1,web-2,db-1,cache_1");
  CHECK ("order by cpus desc", "cache_1,db-1,web-2,web-1,O'Brien");
  CHECK ("order by powerState", "cache_1,web-1,db-1,O'Brien,web-2");
  CHECK ("order by powerState, cpus desc", "cache_1,db-1,web-1,O'Brien,web-2");
  CHECK ("order by powerState asc, cpus asc", "cache_1,O'Brien,web-1,db-1,web-2");
  CHECK ("order by label.tier desc, name", "web-1,web-2,db-1,O'Brien,cache_1");
  CHECK ("order by disks[0].size desc", "db-1,web-2,web-1,O'Brien,cache_1");
  CHECK ("limit 2", "web-1,web-2");
  CHECK ("limit 0", "");
  CHECK ("limit 99", "web-1,web-2,db-1,O'Brien,cache_1");
  CHECK ("where cpus > 1 order by cpus limit 2", "web-1,web-2");
  CHECK ("where cpus > 1 order by cpus desc limit 2", "db-1,web-2");

  struct pallet_query *q = pallet_query_compile ("order by x limit 7", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (q);
  CU_ASSERT_EQUAL (pallet_query_limit (q), 7);
  pallet_query_free (q);
}

static void
test_match_api (void)
{
  json_t *item = json_pack ("{s:s, s:{s:s}}", "name", "x", "label", "tier", "web");
  struct pallet_query *q = pallet_query_compile ("where label.tier = 'web'", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (q);
  CU_ASSERT_EQUAL (pallet_query_has_where (q), 1);
  CU_ASSERT_EQUAL (pallet_query_match (q, item), 1);
  json_object_set_new (json_object_get (item, "label"), "tier", json_string ("db"));
  CU_ASSERT_EQUAL (pallet_query_match (q, item), 0);
  CU_ASSERT_EQUAL (pallet_query_match (q, json_null ()), 0);

  char *err = NULL;
  json_t *r = pallet_query_apply (q, item, &err);
  CU_ASSERT_PTR_NULL (r);
  CU_ASSERT_PTR_NOT_NULL (err);
  CU_ASSERT_PTR_NOT_NULL (err ? strstr (err, "must be a JSON array") : NULL);
  free (err);

  /* apply shares items: the result holds references, not copies. */
  r = pallet_query_apply (q, items, NULL);
  CU_ASSERT_EQUAL (json_array_size (r), 2);
  json_decref (r);
  pallet_query_free (q);
  q = pallet_query_compile ("where cpus = 8", NULL);
  r = pallet_query_apply (q, items, NULL);
  CU_ASSERT_EQUAL_FATAL (json_array_size (r), 1);
  CU_ASSERT_PTR_EQUAL (json_array_get (r, 0), json_array_get (items, 2));
  json_decref (r);
  pallet_query_free (q);
  json_decref (item);
}

/* Checks that text fails at column col with a message containing want,
 * and that the caret line points at that column. */
static void
check_error (const char *text, int col, const char *want)
{
  char *err = NULL, prefix[64];
  struct pallet_query *q = pallet_query_compile (text, &err);

  CU_ASSERT_PTR_NULL (q);
  pallet_query_free (q);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  snprintf (prefix, sizeof prefix, "query: column %d: ", col);
  if (strncmp (err, prefix, strlen (prefix)) != 0 || !strstr (err, want))
    fprintf (stderr, "\n  query: %s\n  want: %s...%s\n  got:  %s\n", text, prefix, want, err);
  CU_ASSERT_NSTRING_EQUAL (err, prefix, strlen (prefix));
  CU_ASSERT_PTR_NOT_NULL (strstr (err, want));
  /* Line 2 is "  " + the query; line 3 is the caret under column col. */
  const char *l2 = strchr (err, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL (l2);
  const char *l3 = strchr (l2 + 1, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL (l3);
  ++l3;
  CU_ASSERT_EQUAL (strlen (l3), (size_t) col + 2);
  CU_ASSERT_EQUAL (l3[col + 1], '^');
  for (int i = 0; i < col + 1; ++i)
    CU_ASSERT_EQUAL (l3[i], ' ');
  free (err);
}

static void
test_errors (void)
{
  char *err = NULL;
  struct pallet_query *q = pallet_query_compile ("where name = ", &err);

  /* One message checked whole. */
  CU_ASSERT_PTR_NULL (q);
  CU_ASSERT_STRING_EQUAL (err,
                          "query: column 14: expected a value after '=', got the end of the "
                          "query; write a 'string', a number, true, false, null or a field name\n"
                          "  where name = \n"
                          "               ^");
  free (err);

  check_error ("where name = ", 14, "expected a value after '='");
  check_error ("where (name = 'a'", 18, "expected ')' to close the '(' at column 7, got the end");
  check_error ("where name = 'abc", 14, "unterminated string");
  check_error ("where name == 'a' and", 22,
               "expected a value in the condition, got the end of the query");
  check_error ("order name", 7, "expected 'by' after 'order', got 'name'");
  check_error ("order by", 9, "expected a field name to order by");
  check_error ("order by name,", 15, "expected a field name to order by");
  check_error ("limit -1", 7, "expected a whole number >= 0 after 'limit'");
  check_error ("limit 2.5", 7, "expected a whole number >= 0 after 'limit'");
  check_error ("where name in 'a'", 15, "expected '[' after 'in'");
  check_error ("where name in ['a' 'b']", 20, "expected ',' or ']'");
  check_error ("where name in ('a' 'b')", 20, "expected ',' or ')'");
  check_error ("where name in (a)", 16, "literal values only");
  /* A bad token right after a list value (the value must not leak). */
  check_error ("where cpus in (1, 2+)", 20, "expected ',' or ')'");
  check_error ("where cpus in [1, 2 @]", 21, "unexpected character '@'");
  check_error ("where name ~= '('", 12, "bad regular expression");
  check_error ("where name ~= other", 12, "need a 'regular expression'");
  /* What RE2 refuses, and what glibc would expand exponentially (the
   * fuzzer's out-of-memory input was 'a' and 50 '+'). */
  check_error ("where name ~= 'a++'", 12, "invalid nested repetition operator: ++");
  check_error ("where name ~= 'a*{2}'", 12, "invalid nested repetition operator: *{2}");
  check_error ("where name ~= 'a{1001}'", 12, "invalid repeat count {1001} (the largest is 1000)");
  check_error ("where name ~= 'a{1,1001}'", 12, "invalid repeat count {1,1001}");
  check_error ("where name ~= '(a{100}){20}'", 12, "nested counts repeat more than 1000 times");
  check_error ("where name ~= '((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+'", 12,
               "expression too large: its repeats expand to about");
  check_error ("where name ~= '(a)\\1'", 12, "invalid escape sequence \\1");
  check_error ("where cpus > 4x", 14, "is not a number");
  check_error ("where a.b..c = 1", 11, "is not a valid path");
  check_error ("where a[] = 1", 8, "is not a valid path");
  check_error ("where cpus + = 1", 14, "expected a value after '+'");
  check_error ("where len(disks = 1", 17, "expected ')' to close the '(' at column 10");
  check_error ("where x is 5", 12, "expected 'null' after 'is', got '5'");
  check_error ("where x is not 5", 16, "expected 'null' after 'is not'");
  check_error ("where x not = 5", 13, "expected like, ilike, in or between");
  check_error ("where x between 1 or 2", 19, "expected 'and' in 'between");
  check_error ("where x = 1 limit 5 order by x", 21,
               "unexpected 'order'; expected the end of the query");
  check_error ("where x = 1 y", 13, "unexpected 'y'; expected and, or");
  check_error ("select", 7, "expected a field to select");
  check_error ("select name as", 15, "expected a name after 'as'");
  check_error ("sort name", 6, "expected 'by' after 'sort', got 'name'");
  check_error ("where x = 1 order by", 21, "expected a field name to order by");
  check_error ("where x @ 1", 9, "unexpected character '@'");
  check_error ("where", 6, "expected a condition after 'where'");
  check_error ("where x = 1 and", 16, "expected a value");
  check_error ("where ()", 8, "expected a value in the condition, got ')'");
  check_error ("where x = )", 11, "expected a value after '=', got ')'");
  check_error ("where\tx =\n", 11, "expected a value after '='");

  /* Without errmsg it still fails cleanly. */
  CU_ASSERT_PTR_NULL (pallet_query_compile ("where (", NULL));
}

static void
test_depth (void)
{
  size_t n = 100000, i;
  char *text = malloc (n + 16), *err = NULL;
  struct pallet_query *q;

  /* 100000 '(' stops at the cap, without recursing 100000 deep. */
  strcpy (text, "where ");
  memset (text + 6, '(', n);
  text[6 + n] = '\0';
  q = pallet_query_compile (text, &err);
  CU_ASSERT_PTR_NULL (q);
  CU_ASSERT_PTR_NOT_NULL_FATAL (err);
  CU_ASSERT_PTR_NOT_NULL (strstr (err, "nest deeper than 64 levels"));
  CU_ASSERT_NSTRING_EQUAL (err, "query: column 71: ", 18);
  free (err);

  /* The same through 'not'. */
  text[0] = '\0';
  strcat (text, "where ");
  for (i = 0; i < 65; ++i)
    strcat (text, "not ");
  strcat (text, "encrypted");
  err = NULL;
  q = pallet_query_compile (text, &err);
  CU_ASSERT_PTR_NULL (q);
  CU_ASSERT_PTR_NOT_NULL (err ? strstr (err, "nest deeper") : NULL);
  free (err);
  free (text);

  /* Exactly the cap works. */
  text = malloc (200);
  strcpy (text, "where ");
  for (i = 0; i < PALLET_QUERY_MAX_DEPTH; ++i)
    strcat (text, "(");
  strcat (text, "cpus = 8");
  for (i = 0; i < PALLET_QUERY_MAX_DEPTH; ++i)
    strcat (text, ")");
  CHECK (text, "db-1");
  free (text);

  /* A long flat and-chain is fine: and/or do not nest. */
  n = 20000;
  text = malloc (n * 16 + 32);
  strcpy (text, "where cpus = 8");
  char *end = text + strlen (text);
  for (i = 0; i < n; ++i) {
    memcpy (end, " and cpus >= 8", 14);
    end += 14;
  }
  *end = '\0';
  CHECK (text, "db-1");
  free (text);
}

static void
test_tsl (void)
{
  /* Bare filters, [ ] lists, sort by. */
  CHECK ("cpus = 8", "db-1");
  CHECK ("cpus >= 4 sort by name", "db-1,web-2");
  CHECK ("where name in ['web-1', 'db-1']", "web-1,db-1");
  CHECK ("where powerState not in ['running']", "web-2");
  CHECK ("not name in ['web-1']", "web-2,db-1,O'Brien,cache_1");
  CHECK ("where name = \"web-1\"", "web-1");
  CHECK ("where name = `web-1`", "web-1");
  /* Regexes as Go writes them. */
  CHECK ("where name ~= '(?i)^WEB'", "web-1,web-2");
  CHECK ("where name ~= '^web-\\d$'", "web-1,web-2");
  CHECK ("where name ~! 'web'", "db-1,O'Brien,cache_1");
  /* Lazy quantifiers match what the greedy ones do; bounded repeats and
   * [+*] as characters are not repeat operators. */
  CHECK ("where name ~= '^web-.*?[12]$'", "web-1,web-2");
  CHECK ("where name ~= '^w{1}?e+?b-\\d{1,1000}$'", "web-1,web-2");
  CHECK ("where name ~= '^(web|db)[-+*]+[0-9]$'", "web-1,web-2,db-1");
  CHECK ("where name ~= '^[[:alpha:]]+_[1]$'", "cache_1");
  /* Functions over arrays; [*] and implicit traversal. */
  CHECK ("where len(disks) = 2", "web-2");
  CHECK ("where len(disks) = 0", "O'Brien,cache_1");
  CHECK ("where len(name) > 5", "O'Brien,cache_1");
  CHECK ("where any(disks[*].size > 15)", "web-2,db-1");
  CHECK ("where all(disks[*].size >= 10)", "web-1,db-1,O'Brien");
  CHECK ("where any(disks.size = 5)", "web-2");
  CHECK ("where any(disks[*].size in [5, 100])", "web-2,db-1");
  CHECK ("where not any(disks[*].size > 15)", "web-1,O'Brien,cache_1");
  CHECK ("where sum(disks[*].size) > 20", "web-2,db-1");
  CHECK ("where sum(disks.size) between 10 and 25", "web-1,web-2");
  /* A comparison on an array is per element: not true on its own. */
  CHECK ("where disks[*].size = 10", "");
  /* Arithmetic. */
  CHECK ("where memoryMB / cpus >= 2048", "web-1,web-2,db-1");
  CHECK ("where cpus * 2 = 16", "db-1");
  CHECK ("where cpus % 3 = 1", "web-2,O'Brien");
  CHECK ("where cpus + 1 > 4 and cpus - 1 < 4", "web-2");
  CHECK ("where -cpus < -4", "db-1");
  CHECK ("where (cpus + 2) * 2 = 12", "web-2");
  /* Keys in brackets. */
  CHECK ("where label[tier] = 'db'", "db-1");
  CHECK ("where label['tier'] = 'db'", "db-1");
  /* Order by a select alias or an expression. */
  CHECK ("select name, len(disks) as n order by n desc limit 1", "web-2");
  CHECK ("where cpus > 0 order by len(disks) desc, name limit 2", "web-2,db-1");
  CHECK ("where cpus > 0 sort by cpus desc limit 1", "db-1");
  /* Unquoted dates are strings. */
  json_t *item = json_pack ("{s:s,s:{s:s}}", "created", "2024-03-01T10:00:00Z", "label",
                            "kubernetes.io/cluster", "c1");
  static const char *const yes[] = { "created >= 2024-01-01",
                                     "created between '2024-01-01' and 2024-12-31T23:59:59Z",
                                     "label.kubernetes.io/cluster = 'c1'",
                                     "label[kubernetes.io/cluster] = 'c1'",
                                     "label['kubernetes.io/cluster'] ~= '^c'" };
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; ++i) {
    struct pallet_query *q = pallet_query_compile (yes[i], NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL (q);
    if (pallet_query_match (q, item) != 1)
      fprintf (stderr, "\n  no match: %s\n", yes[i]);
    CU_ASSERT_EQUAL (pallet_query_match (q, item), 1);
    pallet_query_free (q);
  }
  json_decref (item);
}

static void
test_select (void)
{
  struct pallet_query *q =
      pallet_query_compile ("select name, cpus as c, sum(disks[*].size) as total "
                            "where cpus = 4 or cpus = 8 order by total",
                            NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (q);
  CU_ASSERT_EQUAL (pallet_query_has_select (q), 1);
  json_t *r = pallet_query_apply (q, items, NULL);
  char *text = json_dumps (r, JSON_COMPACT | JSON_SORT_KEYS);
  CU_ASSERT_STRING_EQUAL (text, "[{\"c\":4,\"name\":\"web-2\",\"total\":25},"
                                "{\"c\":8,\"name\":\"db-1\",\"total\":100}]");
  free (text);
  json_decref (r);
  /* project without select is the item itself. */
  json_t *it = json_array_get (items, 0);
  pallet_query_free (q);
  q = pallet_query_compile ("where cpus = 2", NULL);
  json_t *same = pallet_query_project (q, it);
  CU_ASSERT_PTR_EQUAL (same, it);
  json_decref (same);
  pallet_query_free (q);
}

/* The message of check_fields after applying text to the items. */
static char *
fields_error (const char *text)
{
  char *err = NULL;
  struct pallet_query *q = pallet_query_compile (text, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL (q);
  json_decref (pallet_query_apply (q, items, NULL));
  int r = pallet_query_check_fields (q, &err);
  CU_ASSERT_EQUAL (r, err ? -1 : 0);
  pallet_query_free (q);
  return err;
}

static void
test_unknown_fields (void)
{
  char *e = fields_error ("where Nmae = 'web-1'");
  CU_ASSERT_PTR_NOT_NULL_FATAL (e);
  CU_ASSERT_PTR_NOT_NULL (strstr (e, "query: column 7: unknown field 'Nmae'"));
  CU_ASSERT_PTR_NOT_NULL (strstr (e, "did you mean 'name'?"));
  free (e);
  e = fields_error ("where label.teir = 'web'");
  CU_ASSERT_PTR_NOT_NULL_FATAL (e);
  CU_ASSERT_PTR_NOT_NULL (strstr (e, "did you mean 'label.tier'?"));
  free (e);
  /* is null does not hide a typo; neither does order by or select. */
  e = fields_error ("where powerstate is null");
  CU_ASSERT_PTR_NOT_NULL (e ? strstr (e, "did you mean 'powerState'?") : NULL);
  free (e);
  e = fields_error ("order by memry");
  CU_ASSERT_PTR_NOT_NULL (e ? strstr (e, "unknown field 'memry'") : NULL);
  free (e);
  e = fields_error ("select zzzzzz");
  CU_ASSERT_PTR_NOT_NULL (e ? strstr (e, "the items have name, powerState") : NULL);
  free (e);
  /* Short-circuit evaluation does not hide one either. */
  e = fields_error ("where cpus = 99 and Nmae = 'x'");
  CU_ASSERT_PTR_NOT_NULL (e ? strstr (e, "unknown field 'Nmae'") : NULL);
  free (e);
  /* Fields some item has are fine, and so is a field under empty arrays. */
  CU_ASSERT_PTR_NULL (fields_error ("where encrypted and label.tier = 'db'"));
  CU_ASSERT_PTR_NULL (fields_error ("where any(disks[*].size > 1) order by name"));
  /* No items: nothing to judge by. */
  struct pallet_query *q = pallet_query_compile ("where nosuch = 1", NULL);
  char *err = NULL;
  CU_ASSERT_EQUAL (pallet_query_check_fields (q, &err), 0);
  CU_ASSERT_PTR_NULL (err);
  pallet_query_free (q);
}

int
main (void)
{
  CU_pSuite s;
  unsigned failed;

  if (CU_initialize_registry () != CUE_SUCCESS)
    return 2;
  s = CU_add_suite ("query", setup, teardown);
  CU_add_test (s, "empty", test_empty);
  CU_add_test (s, "precedence", test_precedence);
  CU_add_test (s, "like", test_like);
  CU_add_test (s, "in", test_in);
  CU_add_test (s, "null_and_fields", test_null_and_fields);
  CU_add_test (s, "comparisons", test_comparisons);
  CU_add_test (s, "type_mismatch", test_type_mismatch);
  CU_add_test (s, "keywords_case", test_keywords_case);
  CU_add_test (s, "order_limit", test_order_limit);
  CU_add_test (s, "match_api", test_match_api);
  CU_add_test (s, "errors", test_errors);
  CU_add_test (s, "depth", test_depth);
  CU_add_test (s, "tsl", test_tsl);
  CU_add_test (s, "select", test_select);
  CU_add_test (s, "unknown_fields", test_unknown_fields);
  CU_basic_set_mode (CU_BRM_VERBOSE);
  CU_basic_run_tests ();
  failed = CU_get_number_of_failures () + CU_get_number_of_suites_failed ();
  CU_cleanup_registry ();
  return failed ? 1 : 0;
}
