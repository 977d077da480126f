/* SPDX-License-Identifier: Apache-2.0 */
/* EC2 device names (/dev/nvmeXnY[pZ], /dev/xvdX[N], /dev/sdX[N]) in
 * line-oriented guest configuration: parsing a name and rewriting the
 * names in a text.  Pure functions (no I/O): the unit tests feed them
 * text; convert-fixup.c resolves each name to the filesystem it means. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet-convert.h"

/* Reads decimal digits at *P (at most 4); -1 if none. */
static int
digits (const char **p)
{
  int v = 0, n = 0;
  while (isdigit ((unsigned char) **p)) {
    if (++n > 4)
      return -1;
    v = v * 10 + (*(*p)++ - '0');
  }
  return n ? v : -1;
}

/* What may follow a device name: not part of a longer word or path. */
static int
ends_name (char c)
{
  return !(isalnum ((unsigned char) c) || c == '_' || c == '-' || c == '.' || c == '/');
}

size_t
Pallet_convert_parse_devname (const char *s, struct Pallet_convert_devname *d)
{
  const char *p = s;
  int v;

  if (s == NULL || strncmp (p, "/dev/", 5) != 0)
    return 0;
  p += 5;
  memset (d, 0, sizeof *d);
  if (strncmp (p, "nvme", 4) == 0) {
    p += 4;
    d->kind = PALLET_DEVNAME_NVME;
    if ((v = digits (&p)) < 0 || *p++ != 'n')
      return 0;
    d->controller = (unsigned) v;
    if ((v = digits (&p)) < 0)
      return 0;
    d->ns = (unsigned) v;
    if (*p == 'p') {
      p++;
      if ((v = digits (&p)) <= 0)
        return 0;
      d->part = (unsigned) v;
    }
  }
  else {
    size_t n = 0;
    if (strncmp (p, "xvd", 3) == 0) {
      d->kind = PALLET_DEVNAME_XVD;
      p += 3;
    }
    else if (strncmp (p, "sd", 2) == 0) {
      d->kind = PALLET_DEVNAME_SD;
      p += 2;
    }
    else
      return 0;
    while (*p >= 'a' && *p <= 'z') {
      if (n + 1 >= sizeof d->letters)
        return 0;
      d->letters[n++] = *p++;
    }
    if (n == 0)
      return 0;
    if (isdigit ((unsigned char) *p)) {
      if ((v = digits (&p)) <= 0)
        return 0;
      d->part = (unsigned) v;
    }
  }
  if (!ends_name (*p))
    return 0;
  return (size_t) (p - s);
}

/* Appends N bytes of S to the growing buffer. */
static int
put (FILE *fp, const char *s, size_t n)
{
  return fwrite (s, 1, n, fp) == n ? 0 : -1;
}

/* One line: every name outside a comment handed to RESOLVE. */
static int
rewrite_line (FILE *fp, const char *line, size_t len, unsigned lineno,
              Pallet_convert_resolve_fn resolve, void *opaque, size_t *nchanges)
{
  size_t i = 0, from = 0;
  while (i < len && isspace ((unsigned char) line[i]))
    i++;
  if (i < len && line[i] == '#')
    return put (fp, line, len);
  for (; i < len; i++) {
    struct Pallet_convert_devname d;
    size_t n;
    char save[64];
    if (line[i] != '/' || (i > 0 && !ends_name (line[i - 1])))
      continue;
    n = Pallet_convert_parse_devname (line + i, &d);
    if (n == 0 || n >= sizeof save)
      continue;
    memcpy (save, line + i, n);
    save[n] = '\0';
    char *rep = resolve (opaque, lineno, save, &d);
    if (rep == NULL)
      continue; /* unresolved: RESOLVE recorded why */
    if (put (fp, line + from, i - from) || put (fp, rep, strlen (rep))) {
      free (rep);
      return -1;
    }
    free (rep);
    (*nchanges)++;
    i += n - 1;
    from = i + 1;
  }
  return put (fp, line + from, len - from);
}

int
Pallet_convert_rewrite_text (const char *text, Pallet_convert_resolve_fn resolve, void *opaque,
                             char **out, size_t *nchanges)
{
  char *buf = NULL;
  size_t blen = 0;
  FILE *fp = open_memstream (&buf, &blen);
  unsigned lineno = 1;
  int r = 0;

  *out = NULL;
  *nchanges = 0;
  if (fp == NULL)
    return -1;
  for (const char *p = text; *p && r == 0; lineno++) {
    const char *nl = strchr (p, '\n');
    size_t len = nl ? (size_t) (nl - p) : strlen (p);
    r = rewrite_line (fp, p, len, lineno, resolve, opaque, nchanges);
    if (nl && r == 0)
      r = put (fp, "\n", 1);
    p += len + (nl ? 1 : 0);
  }
  if (fclose (fp) != 0 || r != 0) {
    free (buf);
    return -1;
  }
  *out = buf;
  return 0;
}
