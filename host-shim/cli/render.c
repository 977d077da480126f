/* SPDX-License-Identifier: Apache-2.0 */
/* Renders libpallet-host's events for a terminal or a pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "render.h"

static const char *format_names[] = { "text", "json", "yaml", "table" };

int
Pallet_format_parse (const char *fmt, int allowed, int *out)
{
  for (int i = 0; i < 4; i++)
    if (strcmp (fmt, format_names[i]) == 0 && (allowed & (1 << i))) {
      *out = i;
      return 0;
    }
  return -1;
}

void
Pallet_render_init (struct cli_render *r, int format, int tty)
{
  memset (r, 0, sizeof *r);
  r->format = format;
  r->tty = tty;
  pthread_mutex_init (&r->mu, NULL);
}

/* --- YAML ------------------------------------------------------------------ */

static int
yaml_write_cb (void *data, unsigned char *buf, size_t size)
{
  return fwrite (buf, 1, size, data) == size;
}

static int
emit (yaml_emitter_t *e, yaml_event_t *ev)
{
  return yaml_emitter_emit (e, ev) ? 0 : -1;
}

static int
yaml_emit_json (yaml_emitter_t *e, json_t *j)
{
  yaml_event_t ev;
  char buf[64];
  const char *s = NULL;
  yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
  switch (json_typeof (j)) {
  case JSON_OBJECT: {
    yaml_mapping_start_event_initialize (&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    if (emit (e, &ev))
      return -1;
    const char *k;
    json_t *val;
    json_object_foreach (j, k, val) {
      yaml_scalar_event_initialize (&ev, NULL, NULL, (yaml_char_t *) k, -1, 1, 1,
                                    YAML_ANY_SCALAR_STYLE);
      if (emit (e, &ev) || yaml_emit_json (e, val) != 0)
        return -1;
    }
    yaml_mapping_end_event_initialize (&ev);
    return emit (e, &ev);
  }
  case JSON_ARRAY: {
    yaml_sequence_start_event_initialize (&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if (emit (e, &ev))
      return -1;
    size_t i;
    json_t *val;
    json_array_foreach (j, i, val)
      if (yaml_emit_json (e, val) != 0)
        return -1;
    yaml_sequence_end_event_initialize (&ev);
    return emit (e, &ev);
  }
  case JSON_STRING:
    s = json_string_value (j);
    /* Quote strings so "true" or "12" stay strings. */
    style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    break;
  case JSON_INTEGER:
    snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value (j));
    s = buf;
    break;
  case JSON_REAL:
    snprintf (buf, sizeof buf, "%.17g", json_real_value (j));
    s = buf;
    break;
  case JSON_TRUE: s = "true"; break;
  case JSON_FALSE: s = "false"; break;
  case JSON_NULL: s = "null"; break;
  }
  yaml_scalar_event_initialize (&ev, NULL, NULL, (yaml_char_t *) s, -1,
                                style == YAML_PLAIN_SCALAR_STYLE, 1, style);
  return emit (e, &ev);
}

static int
yaml_open (struct cli_render *r)
{
  yaml_event_t ev;
  if (r->y_open)
    return 0;
  if (!yaml_emitter_initialize (&r->y))
    return -1;
  yaml_emitter_set_output (&r->y, yaml_write_cb, stdout);
  yaml_emitter_set_unicode (&r->y, 1);
  r->y_open = 1;
  yaml_stream_start_event_initialize (&ev, YAML_UTF8_ENCODING);
  return emit (&r->y, &ev);
}

/* One event: one YAML document, flushed so a reader sees it at once. */
static int
yaml_document (struct cli_render *r, json_t *j)
{
  yaml_event_t ev;
  if (yaml_open (r) != 0)
    return -1;
  yaml_document_start_event_initialize (&ev, NULL, NULL, NULL, 0);
  if (emit (&r->y, &ev) || yaml_emit_json (&r->y, j) != 0)
    return -1;
  yaml_document_end_event_initialize (&ev, 1);
  if (emit (&r->y, &ev) || !yaml_emitter_flush (&r->y))
    return -1;
  return 0;
}

int
Pallet_render_finish (struct cli_render *r)
{
  yaml_event_t ev;
  if (r->format == CLI_JSON && r->inventory)
    fputs (r->n_items ? "\n]\n" : "[]\n", stdout);
  if (r->y_open) {
    if (r->inventory) { /* the inventory's sequence and document */
      yaml_sequence_end_event_initialize (&ev);
      r->failed |= emit (&r->y, &ev);
      yaml_document_end_event_initialize (&ev, 1);
      r->failed |= emit (&r->y, &ev);
    }
    yaml_stream_end_event_initialize (&ev);
    r->failed |= emit (&r->y, &ev);
    yaml_emitter_delete (&r->y);
  }
  if (r->bar_drawn)
    fputs ("\n", stderr);
  for (size_t i = 0; i < r->n_findings; i++)
    free (r->findings[i]);
  free (r->findings);
  for (int i = 0; i < r->ncols; i++)
    free (r->cols[i]);
  fflush (stdout);
  pthread_mutex_destroy (&r->mu);
  return r->failed || ferror (stdout) ? -1 : 0;
}

/* --- progress bars ----------------------------------------------------------- */

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Units per second since the bar's first report, or -1 before it moved. */
static double
rate_of (struct cli_render *r, const struct pallet_event *ev, double t)
{
  char key[192];
  snprintf (key, sizeof key, "%s\n%s", ev->vm ? ev->vm : "", ev->step);
  struct cli_rate *e = NULL;
  for (int i = 0; i < r->n_rates && !e; i++)
    if (strcmp (r->rates[i].key, key) == 0)
      e = &r->rates[i];
  if (e == NULL) {
    e = &r->rates[r->n_rates < 32 ? r->n_rates++ : 31];
    snprintf (e->key, sizeof e->key, "%s", key);
    e->t0 = t;
    e->d0 = ev->done;
    return -1;
  }
  if (t - e->t0 < 0.2 || ev->done <= e->d0)
    return -1;
  return (double) (ev->done - e->d0) / (t - e->t0);
}

/* "12.5 MiB/s" for bytes, "3.0 polls/s" otherwise. */
static void
format_rate (char *buf, size_t n, double rate, const char *unit)
{
  if (strcmp (unit, "bytes") == 0) {
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (rate >= 1024 && i < 4) {
      rate /= 1024;
      i++;
    }
    snprintf (buf, n, "%.1f %s/s", rate, u[i]);
  }
  else
    snprintf (buf, n, "%.1f %s/s", rate, unit);
}

static void
draw_bar (struct cli_render *r, const struct pallet_event *ev)
{
  uint64_t done = ev->done, total = ev->total;
  int pct = total ? (int) (done * 100 / total) : 0;
  if (pct > 100)
    pct = 100;
  char bar[31];
  int fill = pct * 30 / 100;
  for (int i = 0; i < 30; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[30] = '\0';
  char tail[96] = "";
  double rate = rate_of (r, ev, now_s ());
  if (rate > 0) {
    char rs[48];
    format_rate (rs, sizeof rs, rate, ev->unit);
    if (total > done) {
      unsigned long eta = (unsigned long) ((double) (total - done) / rate + 0.5);
      snprintf (tail, sizeof tail, " %s ETA %lu:%02lu", rs, eta / 60, eta % 60);
    }
    else
      snprintf (tail, sizeof tail, " %s", rs);
  }
  fprintf (stderr, "\r\033[K%-20.20s %-14.14s [%s] %3d%% %llu/%llu %s%s", ev->vm ? ev->vm : "",
           ev->step, bar, pct, (unsigned long long) done, (unsigned long long) total, ev->unit,
           tail);
  r->bar_drawn = 1;
}

static void
clear_bar (struct cli_render *r)
{
  if (r->bar_drawn) {
    fputs ("\r\033[K", stderr);
    r->bar_drawn = 0;
  }
}

/* --- run events --------------------------------------------------------------- */

static void
log_line (struct cli_render *r, const struct pallet_event *ev)
{
  clear_bar (r);
  fprintf (stderr, "pallet: %s: %s\n", pallet_log_level_name (ev->level),
           ev->message ? ev->message : "");
}

void
Pallet_render_log (const struct pallet_event *ev, void *opaque)
{
  struct cli_render *r = opaque;
  if (ev->type != PALLET_EVENT_LOG)
    return;
  pthread_mutex_lock (&r->mu);
  log_line (r, ev);
  pthread_mutex_unlock (&r->mu);
}

static void
text_step (const struct pallet_event *ev)
{
  const char *name = ev->name ? ev->name : ev->vm ? ev->vm : "";
  if (strcmp (ev->what, "downtime") == 0) {
    printf ("%s: %s: %s\n", name, ev->step, ev->message);
    return;
  }
  printf ("%s: %s%s%s%s%s\n", name, ev->step ? ev->step : "", ev->step ? ": " : "",
          ev->status ? Pallet_render_status_words (ev->status) : ev->what, ev->message ? ": " : "",
          ev->message ? ev->message : "");
}

/* validate, text: the verdict, then the findings held for it. */
static void
text_verdict (struct cli_render *r, const struct pallet_event *ev)
{
  const char *name = ev->name ? ev->name : ev->vm ? ev->vm : "";
  printf ("%s: %s%s%s\n", name,
          ev->code == PALLET_OK ? "valid" : Pallet_render_status_words (ev->status),
          ev->message && *ev->message ? ": " : "", ev->message ? ev->message : "");
  for (size_t i = 0; i < r->n_findings; i++) {
    printf ("  finding: %s\n", r->findings[i]);
    free (r->findings[i]);
  }
  r->n_findings = 0;
}

static void
hold_finding (struct cli_render *r, const char *json)
{
  char **f = realloc (r->findings, (r->n_findings + 1) * sizeof *f);
  if (f == NULL || (f[r->n_findings] = strdup (json)) == NULL) {
    r->findings = f ? f : r->findings;
    r->failed = 1;
    return;
  }
  r->findings = f;
  r->n_findings++;
}

static void
text_event (struct cli_render *r, const struct pallet_event *ev)
{
  switch (ev->type) {
  case PALLET_EVENT_PROGRESS:
    if (r->tty)
      draw_bar (r, ev);
    return;
  case PALLET_EVENT_STEP:
    clear_bar (r);
    text_step (ev);
    break;
  case PALLET_EVENT_FINDING: hold_finding (r, ev->json); return;
  case PALLET_EVENT_RESULT:
    clear_bar (r);
    if (strcmp (ev->what, "validated") == 0)
      text_verdict (r, ev);
    else
      printf ("%s\n", ev->message ? ev->message : ev->json);
    break;
  default: return;
  }
  fflush (stdout);
}

void
Pallet_render_event (const struct pallet_event *ev, void *opaque)
{
  struct cli_render *r = opaque;
  pthread_mutex_lock (&r->mu);
  if (ev->type == PALLET_EVENT_LOG)
    log_line (r, ev);
  /* Findings are in the verdict's "findings" for JSON and YAML. */
  else if (ev->type == PALLET_EVENT_FINDING && r->format != CLI_TEXT)
    ;
  else if (r->format == CLI_JSON) {
    printf ("%s\n", ev->json);
    fflush (stdout);
  }
  else if (r->format == CLI_YAML) {
    json_t *j = json_loads (ev->json, JSON_DECODE_ANY, NULL);
    if (j == NULL || yaml_document (r, j) != 0)
      r->failed = 1;
    json_decref (j);
  }
  else
    text_event (r, ev);
  pthread_mutex_unlock (&r->mu);
}

/* --- inventory -------------------------------------------------------------- */

void
Pallet_render_items_begin (struct cli_render *r)
{
  yaml_event_t ev;
  r->inventory = 1;
  if (r->format != CLI_YAML)
    return;
  if (yaml_open (r) != 0)
    goto fail;
  yaml_document_start_event_initialize (&ev, NULL, NULL, NULL, 1);
  if (emit (&r->y, &ev))
    goto fail;
  yaml_sequence_start_event_initialize (&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
  if (emit (&r->y, &ev))
    goto fail;
  return;
fail:
  r->failed = 1;
}

/* An item pretty-printed as a member of the streamed array. */
static void
json_member (struct cli_render *r, json_t *item)
{
  char *t = json_dumps (item, JSON_INDENT (2) | JSON_ENCODE_ANY);
  if (t == NULL) {
    r->failed = 1;
    return;
  }
  fputs (r->n_items == 0 ? "[\n  " : ",\n  ", stdout);
  for (const char *p = t; *p; p++)
    if (*p == '\n')
      fputs ("\n  ", stdout);
    else
      fputc (*p, stdout);
  free (t);
}

static int
has_col (const struct cli_render *r, const char *k)
{
  for (int c = 0; c < r->ncols; c++)
    if (r->cols[c] && strcmp (r->cols[c], k) == 0)
      return 1;
  return 0;
}

/* Columns: id and name, then the provider's own (camelCase) scalar
 * fields, then the platform object's (PascalCase, as kubectl-mtv shows
 * them), in the first item's order. */
static void
table_header (struct cli_render *r, json_t *first)
{
  const char *k;
  json_t *val;
  for (int pass = 0; pass < 3; pass++)
    json_object_foreach (first, k, val) {
      int lower = *k >= 'a' && *k <= 'z';
      int want = pass == 0 ? !strcmp (k, "id") || !strcmp (k, "name") : pass == 1 ? lower : !lower;
      if (want && r->ncols < 8 && !json_is_object (val) && !json_is_array (val) && !has_col (r, k))
        r->cols[r->ncols++] = strdup (k);
    }
  for (int c = 0; c < r->ncols; c++) {
    char up[64];
    size_t n = 0;
    for (const char *p = r->cols[c] ? r->cols[c] : ""; *p && n < sizeof up - 1; p++)
      up[n++] = (*p >= 'a' && *p <= 'z') ? (char) (*p - 32) : *p;
    up[n] = '\0';
    printf ("%-22s", up);
  }
  if (r->ncols)
    printf ("\n");
}

static void
table_row (struct cli_render *r, json_t *item, const char *text)
{
  if (r->n_items == 0)
    table_header (r, item);
  if (r->ncols == 0) {
    printf ("%s\n", text);
    return;
  }
  for (int c = 0; c < r->ncols; c++) {
    json_t *f = json_object_get (item, r->cols[c] ? r->cols[c] : "");
    char *s = json_is_string (f) ? strdup (json_string_value (f))
              : f                ? json_dumps (f, JSON_ENCODE_ANY)
                                 : strdup ("");
    printf ("%-22s", s ? s : "");
    free (s);
  }
  printf ("\n");
}

void
Pallet_render_item (const struct pallet_event *ev, void *opaque)
{
  struct cli_render *r = opaque;
  if (ev->type == PALLET_EVENT_LOG || ev->type == PALLET_EVENT_PROGRESS) {
    if (ev->type == PALLET_EVENT_LOG)
      Pallet_render_log (ev, opaque);
    return;
  }
  if (ev->type != PALLET_EVENT_ITEM)
    return;
  json_t *item = json_loads (ev->json, JSON_DECODE_ANY, NULL);
  if (item == NULL) {
    r->failed = 1;
    return;
  }
  pthread_mutex_lock (&r->mu);
  if (r->format == CLI_JSON)
    json_member (r, item);
  else if (r->format == CLI_YAML)
    r->failed |= yaml_emit_json (&r->y, item);
  else
    table_row (r, item, ev->json);
  r->n_items++;
  pthread_mutex_unlock (&r->mu);
  json_decref (item);
}

int
Pallet_render_value (json_t *v, int format, int documents)
{
  if (format == CLI_JSON) {
    if (json_dumpf (v, stdout, JSON_INDENT (2) | JSON_ENCODE_ANY) != 0)
      return -1;
    return fputc ('\n', stdout) == EOF || fflush (stdout) != 0 ? -1 : 0;
  }
  struct cli_render r;
  Pallet_render_init (&r, CLI_YAML, 0);
  int rc = 0;
  if (documents && json_is_array (v)) {
    size_t i;
    json_t *e;
    json_array_foreach (v, i, e)
      if (yaml_document (&r, e) != 0)
        rc = -1;
  }
  else
    rc = yaml_document (&r, v);
  if (Pallet_render_finish (&r) != 0)
    rc = -1;
  return rc;
}

static const char *
cell (const json_t *row, size_t c)
{
  const char *s = json_string_value (json_array_get (row, c));
  return s ? s : "";
}

void
Pallet_render_table (const char *const *headers, const json_t *rows)
{
  size_t ncol = 0, w[32] = { 0 }, i, c;
  json_t *row;
  while (headers[ncol] && ncol < 32)
    ncol++;
  for (c = 0; c < ncol; c++)
    w[c] = strlen (headers[c]);
  json_array_foreach ((json_t *) rows, i, row)
    for (c = 0; c < ncol; c++) {
      size_t l = strlen (cell (row, c));
      if (l > w[c])
        w[c] = l;
    }
  for (c = 0; c < ncol; c++)
    printf (c + 1 < ncol ? "%-*s   " : "%-*s\n", (int) (c + 1 < ncol ? w[c] : 0), headers[c]);
  json_array_foreach ((json_t *) rows, i, row)
    for (c = 0; c < ncol; c++) {
      const char *s = cell (row, c);
      printf (c + 1 < ncol ? "%-*s   " : "%-*s\n", (int) (c + 1 < ncol ? w[c] : 0), s);
    }
}

const char *
Pallet_render_status_words (const char *status)
{
  if (status == NULL || strncmp (status, "PALLET_", 7) != 0)
    return status;
  int code = pallet_status_from_name (status);
  return code < 0 ? status : pallet_strerror (code);
}

static void
add_name (const char *name, const char *path, void *opaque)
{
  (void) path;
  char *list = opaque;
  size_t len = strlen (list);
  if (len + strlen (name) + 3 < 512)
    snprintf (list + len, 512 - len, "%s%s", len ? ", " : "", name);
}

void
Pallet_render_load_error (const char *name)
{
  char err[2048];
  snprintf (err, sizeof err, "%s", pallet_last_error ());
  fprintf (stderr, "pallet: %s\n", err);
  if (name == NULL || strchr (name, '/') || strstr (err, "not found: no ") == NULL)
    return;
  /* A provider that is not installed: say which are, and how to add one. */
  char list[512] = "";
  pallet_provider_list (add_name, list);
  fprintf (stderr,
           "pallet: installed providers: %s (`pallet providers` lists them); to use '%s', "
           "install its module pallet-provider-%s.so in " PALLET_PROVIDER_DIR
           " or in a directory on PALLET_PROVIDER_PATH\n",
           *list ? list : "none", name, name);
}
