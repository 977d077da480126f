/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS shared config and credentials files (INI, as botocore reads
 * them).  Debian's libinih is built with a 200-byte line limit and no
 * realloc, which truncates every STS session token (800-1,200 bytes),
 * and it strips " ;" inline comments that botocore keeps; so the files
 * are read here, strictly: [section], key = value, '#'/';' comment
 * lines, and indented "sub = value" lines under a key with an empty value
 * (the services sections and s3 = ... blocks).  Anything else is an error
 * naming the file and line. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "aws-internal.h"

struct ini_entry {
  char *section, *key, *sub, *value;
};

struct Pallet_aws_ini {
  char *file;
  struct ini_entry *e;
  size_t n, cap;
  char **sections;
  size_t nsections;
};

static char *
trim (char *s)
{
  while (isspace ((unsigned char) *s))
    s++;
  size_t l = strlen (s);
  while (l > 0 && isspace ((unsigned char) s[l - 1]))
    s[--l] = '\0';
  return s;
}

static int
add_entry (struct Pallet_aws_ini *ini, const char *section, const char *key, const char *sub,
           const char *value)
{
  if (ini->n == ini->cap) {
    size_t cap = ini->cap ? ini->cap * 2 : 16;
    struct ini_entry *e = realloc (ini->e, cap * sizeof *e);
    if (!e)
      return -1;
    ini->e = e;
    ini->cap = cap;
  }
  struct ini_entry *e = &ini->e[ini->n];
  e->section = strdup (section);
  e->key = strdup (key);
  e->sub = sub ? strdup (sub) : NULL;
  e->value = strdup (value);
  ini->n++;
  return e->section && e->key && e->value && (!sub || e->sub) ? 0 : -1;
}

static int
add_section (struct Pallet_aws_ini *ini, const char *name)
{
  char **s = realloc (ini->sections, (ini->nsections + 1) * sizeof *s);
  if (!s)
    return -1;
  ini->sections = s;
  s[ini->nsections] = strdup (name);
  return s[ini->nsections++] ? 0 : -1;
}

/* "[profile  x]" and "[ x ]" are both spelt with free spaces. */
static void
section_name (char *s, char *out, size_t outlen)
{
  char *name = trim (s);
  if (strncmp (name, "profile", 7) == 0 && isspace ((unsigned char) name[7]))
    snprintf (out, outlen, "profile %s", trim (name + 8));
  else if (strncmp (name, "sso-session", 11) == 0 && isspace ((unsigned char) name[11]))
    snprintf (out, outlen, "sso-session %s", trim (name + 12));
  else if (strncmp (name, "services", 8) == 0 && isspace ((unsigned char) name[8]))
    snprintf (out, outlen, "services %s", trim (name + 9));
  else
    snprintf (out, outlen, "%s", name);
}

struct parse_state {
  char section[256];
  char parent[256]; /* the last key, if its value was empty */
  bool have_section, parent_open;
};

/* One line; 0, or -1 with *why set. */
static int
parse_line (struct Pallet_aws_ini *ini, struct parse_state *st, char *line, const char **why)
{
  bool indented = isspace ((unsigned char) line[0]);
  char *s = trim (line);
  if (*s == '#' || *s == ';' || *s == '\0')
    return 0;
  if (*s == '[') {
    char *e = strrchr (s, ']');
    if (!e || e[1] != '\0') {
      *why = "a section header needs a closing ']'";
      return -1;
    }
    *e = '\0';
    section_name (s + 1, st->section, sizeof st->section);
    st->have_section = true;
    st->parent_open = false;
    if (add_section (ini, st->section) < 0) {
      *why = "out of memory";
      return -1;
    }
    return 0;
  }
  char *eq = strchr (s, '=');
  if (!eq) {
    *why = "not \"key = value\", \"[section]\" or a comment";
    return -1;
  }
  if (!st->have_section) {
    *why = "a setting before the first [section]";
    return -1;
  }
  *eq = '\0';
  char *key = trim (s), *value = trim (eq + 1);
  if (!*key) {
    *why = "a setting with no name before '='";
    return -1;
  }
  if (indented) {
    if (!st->parent_open) {
      *why = "an indented setting that is not under a \"name =\" line with an empty value";
      return -1;
    }
    return add_entry (ini, st->section, st->parent, key, value) < 0 ? (*why = "out of memory", -1)
                                                                    : 0;
  }
  st->parent_open = *value == '\0';
  if (st->parent_open)
    snprintf (st->parent, sizeof st->parent, "%s", key);
  return add_entry (ini, st->section, key, NULL, value) < 0 ? (*why = "out of memory", -1) : 0;
}

int
Pallet_aws_ini_load (const char *file, struct Pallet_aws_ini **out, char **errmsg)
{
  *out = NULL;
  struct Pallet_aws_ini *ini = calloc (1, sizeof *ini);
  if (!ini || !(ini->file = strdup (file ? file : ""))) {
    free (ini);
    return -2;
  }
  FILE *f = file ? fopen (file, "re") : NULL;
  if (!f) {
    if (file && errno != ENOENT) {
      Pallet_aws_strf (errmsg, "cannot read the AWS file %s: %s; fix its permissions", file,
                       strerror (errno));
      Pallet_aws_ini_free (ini);
      return -1;
    }
    *out = ini; /* a missing file is an empty one, as in the SDKs */
    return 0;
  }
  struct parse_state st = { .have_section = false };
  char *line = NULL;
  size_t cap = 0;
  int rc = 0, lineno = 0;
  while (rc == 0 && getline (&line, &cap, f) >= 0) {
    lineno++;
    const char *why = NULL;
    if (lineno == 1 && (unsigned char) line[0] == 0xef && (unsigned char) line[1] == 0xbb
        && (unsigned char) line[2] == 0xbf)
      memmove (line, line + 3, strlen (line + 3) + 1);
    if (parse_line (ini, &st, line, &why) < 0) {
      Pallet_aws_strf (errmsg, "AWS file %s, line %d: %s; fix the line or remove it", file, lineno,
                       why);
      rc = -1;
    }
  }
  if (line)
    OPENSSL_cleanse (line, cap);
  free (line);
  fclose (f);
  if (rc < 0) {
    Pallet_aws_ini_free (ini);
    return -1;
  }
  *out = ini;
  return 0;
}

void
Pallet_aws_ini_free (struct Pallet_aws_ini *ini)
{
  if (!ini)
    return;
  for (size_t i = 0; i < ini->n; i++) {
    free (ini->e[i].section);
    free (ini->e[i].key);
    free (ini->e[i].sub);
    if (ini->e[i].value) {
      OPENSSL_cleanse (ini->e[i].value, strlen (ini->e[i].value));
      free (ini->e[i].value);
    }
  }
  for (size_t i = 0; i < ini->nsections; i++)
    free (ini->sections[i]);
  free (ini->sections);
  free (ini->e);
  free (ini->file);
  free (ini);
}

const char *
Pallet_aws_ini_file (const struct Pallet_aws_ini *ini)
{
  return ini && ini->file[0] ? ini->file : NULL;
}

bool
Pallet_aws_ini_has_section (const struct Pallet_aws_ini *ini, const char *section)
{
  for (size_t i = 0; ini && i < ini->nsections; i++)
    if (strcmp (ini->sections[i], section) == 0)
      return true;
  return false;
}

/* The last one wins, as in botocore (a section may also be split in two). */
const char *
Pallet_aws_ini_sub (const struct Pallet_aws_ini *ini, const char *section, const char *key,
                    const char *sub)
{
  const char *v = NULL;
  for (size_t i = 0; ini && i < ini->n; i++) {
    const struct ini_entry *e = &ini->e[i];
    if (strcmp (e->section, section) == 0 && strcmp (e->key, key) == 0
        && (sub ? e->sub && strcmp (e->sub, sub) == 0 : !e->sub))
      v = e->value;
  }
  return v;
}

const char *
Pallet_aws_ini_value (const struct Pallet_aws_ini *ini, const char *section, const char *key)
{
  const char *v = Pallet_aws_ini_sub (ini, section, key, NULL);
  return v && *v ? v : NULL;
}

char *
Pallet_aws_ini_get (const char *file, const char *section, const char *key, bool *found_section)
{
  struct Pallet_aws_ini *ini;
  if (found_section)
    *found_section = false;
  if (!file || Pallet_aws_ini_load (file, &ini, NULL) < 0)
    return NULL;
  if (found_section)
    *found_section = Pallet_aws_ini_has_section (ini, section);
  const char *v = Pallet_aws_ini_value (ini, section, key);
  char *r = v ? strdup (v) : NULL;
  Pallet_aws_ini_free (ini);
  return r;
}
