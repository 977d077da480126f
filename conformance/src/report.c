/* SPDX-License-Identifier: Apache-2.0 */
/* The suite's own output: one line per check (PASS, FAIL or SKIP with the
 * reason), a root cause reported once, no paths of the machine that built
 * the suite.  The checks record; this file renders. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

#define MAX_CHECKS 32
#define SHOWN      4

struct rec {
  const char *name;
  unsigned failures;
  json_t *lines; /* the first failures, as text */
  char *skip;    /* why it could not look */
  char *blocked; /* the check that reported its root cause */
};

static struct rec recs[MAX_CHECKS];
static size_t nrecs;
static const char *current;
static json_t *causes; /* key -> check that reported it */

static struct rec *
rec_of (const char *check)
{
  for (size_t i = 0; i < nrecs; i++)
    if (strcmp (recs[i].name, check) == 0)
      return &recs[i];
  if (nrecs == MAX_CHECKS)
    return &recs[MAX_CHECKS - 1];
  recs[nrecs].name = check;
  recs[nrecs].lines = json_array ();
  return &recs[nrecs++];
}

const char *
pc_current_check (void)
{
  return current ? current : "load";
}

void
pc_begin_check (const char *check)
{
  current = check;
  rec_of (check);
}

static void
vrecord (const char *check, const char *rule, const char *fmt, va_list ap)
{
  struct rec *r = rec_of (check);
  char *detail = NULL, *msg = NULL;
  if (vasprintf (&detail, fmt, ap) < 0)
    detail = NULL;
  if (asprintf (&msg, "rule \"%s\": %s", rule, detail ? detail : "?") < 0)
    msg = NULL;
  r->failures++;
  if (json_array_size (r->lines) < SHOWN)
    json_array_append_new (r->lines, pc_text (msg ? msg : "out of memory"));
  free (msg);
  free (detail);
}

void
pc_fail (const char *check, const char *rule, const char *file, unsigned line, const char *fmt, ...)
{
  va_list ap;
  (void) file;
  (void) line;
  va_start (ap, fmt);
  vrecord (check, rule, fmt, ap);
  va_end (ap);
}

bool
pc_root_cause (const char *check, const char *key, const char *rule, const char *fmt, ...)
{
  const char *first;
  va_list ap;
  if (causes == NULL)
    causes = json_object ();
  first = json_string_value (json_object_get (causes, key));
  if (first) {
    struct rec *r = rec_of (check);
    if (strcmp (first, check) != 0 && r->blocked == NULL)
      r->blocked = strdup (first);
    return false;
  }
  json_object_set_new (causes, key, json_string (check));
  va_start (ap, fmt);
  vrecord (check, rule, fmt, ap);
  va_end (ap);
  return true;
}

const char *
pc_root_cause_seen (const char *prefix)
{
  const char *k;
  json_t *v;
  json_object_foreach (causes, k, v)
    if (strncmp (k, prefix, strlen (prefix)) == 0)
      return json_string_value (v);
  return NULL;
}

void
pc_blocked_by (const char *check, const char *first)
{
  struct rec *r = rec_of (check);
  if (strcmp (first, check) != 0 && r->blocked == NULL)
    r->blocked = strdup (first);
}

void
pc_skip (const char *check, const char *fmt, ...)
{
  struct rec *r = rec_of (check);
  va_list ap;
  if (r->skip)
    return;
  va_start (ap, fmt);
  if (vasprintf (&r->skip, fmt, ap) < 0)
    r->skip = NULL;
  va_end (ap);
}

unsigned
pc_failures (const char *check)
{
  return rec_of (check)->failures;
}

void
pc_note (const char *check, const char *fmt, ...)
{
  va_list ap;
  printf ("NOTE %s: ", check);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
}

/* 0 passed, 1 failed, 2 skipped. */
int
pc_end_check (const char *check, const char *proves)
{
  struct rec *r = rec_of (check);
  int verdict;
  current = NULL;
  if (r->failures) {
    size_t i;
    json_t *l;
    json_array_foreach (r->lines, i, l)
      printf (i == 0 ? "FAIL %s: %s\n" : "     %.0salso %s\n", check, json_string_value (l));
    if (r->failures > SHOWN)
      printf ("     (%u more failures of %s; --only %s --verbose shows the "
              "calls)\n",
              r->failures - SHOWN, check, check);
    verdict = 1;
  }
  else if (r->blocked) {
    printf ("SKIP %s: blocked by the root cause reported under %s (fix that "
            "first)\n",
            check, r->blocked);
    verdict = 2;
  }
  else if (r->skip) {
    printf ("SKIP %s: %s\n", check, r->skip);
    verdict = 2;
  }
  else {
    printf ("PASS %s: %s\n", check, proves);
    verdict = 0;
  }
  fflush (stdout);
  return verdict;
}

void
pc_report_free (void)
{
  for (size_t i = 0; i < nrecs; i++) {
    json_decref (recs[i].lines);
    free (recs[i].skip);
    free (recs[i].blocked);
  }
  nrecs = 0;
  json_decref (causes);
  causes = NULL;
}
