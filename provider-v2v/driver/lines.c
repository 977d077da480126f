/* SPDX-License-Identifier: Apache-2.0 */
/* virt-v2v's output, one line at a time: --machine-readable JSON message
 * objects, "[  12.3] Phase" lines, and "N/M" progress lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "pallet-v2v-driver.h"

/* "Copying disk 2/3" moves the disk counter. */
static void
track_disk (const char *text, struct pallet_v2v_lines *st)
{
  int d, n;
  const char *p = strstr (text, "Copying disk ");
  if (p && sscanf (p, "Copying disk %d/%d", &d, &n) == 2 && d > 0 && n >= d) {
    st->disk = d;
    st->disks = n;
  }
}

static int
kind_of (const char *type)
{
  if (!strcmp (type, "warning"))
    return PALLET_V2V_EV_WARNING;
  if (!strcmp (type, "error"))
    return PALLET_V2V_EV_ERROR;
  if (!strcmp (type, "info"))
    return PALLET_V2V_EV_INFO;
  return PALLET_V2V_EV_MESSAGE;
}

/* JSON text is copied back into line, which outlives ev. */
static int
parse_json (char *line, struct pallet_v2v_event *ev)
{
  json_t *j = json_loads (line, 0, NULL);
  const char *msg = json_string_value (json_object_get (j, "message"));
  const char *type = json_string_value (json_object_get (j, "type"));
  int ok = msg && type;
  if (ok) {
    size_t n = strlen (msg);
    if (n > strlen (line)) /* escapes only ever shrink; be sure */
      n = strlen (line);
    memmove (line, msg, n);
    line[n] = '\0';
    ev->kind = kind_of (type);
    ev->text = line;
  }
  json_decref (j);
  return ok;
}

int
pallet_v2v_parse_line (char *line, struct pallet_v2v_event *ev, struct pallet_v2v_lines *st)
{
  memset (ev, 0, sizeof *ev);
  while (*line == ' ' || *line == '\t')
    line++;
  size_t len = strlen (line);
  while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
    line[--len] = '\0';
  if (!len)
    return 0;
  unsigned long long done, total;
  char tail;
  if (line[0] == '{') {
    if (!parse_json (line, ev))
      return 0;
    st->json = 1;
  }
  else if (sscanf (line, "%llu/%llu%c", &done, &total, &tail) == 2 && total > 0) {
    ev->kind = PALLET_V2V_EV_PROGRESS;
    ev->done = done;
    ev->total = total;
  }
  else if (line[0] == '[' && !st->json) {
    char *end = strchr (line, ']');
    if (!end)
      return 0;
    ev->kind = PALLET_V2V_EV_MESSAGE;
    ev->text = end + 1 + strspn (end + 1, " ");
  }
  else if (line[0] == '[' || (st->json && !strncmp (line, "virt-v2v: ", 10)))
    return 0; /* the human copy of a JSON message */
  else if (!strncmp (line, "virt-v2v: error: ", 17)) {
    ev->kind = PALLET_V2V_EV_ERROR;
    ev->text = line + 17;
  }
  else if (!strncmp (line, "virt-v2v: warning: ", 19)) {
    ev->kind = PALLET_V2V_EV_WARNING;
    ev->text = line + 19;
  }
  else
    return 0;
  if (ev->text)
    track_disk (ev->text, st);
  ev->disk = st->disk;
  ev->disks = st->disks;
  return 1;
}
