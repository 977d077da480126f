/* SPDX-License-Identifier: Apache-2.0 */
/* OVA member checks with libarchive. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <archive.h>
#include <archive_entry.h>
#include <pallet/provider.h>
#include "pallet-v2v-ova.h"
#include "v2v-error.h"

static int
ends_with (const char *s, const char *suf)
{
  size_t n = strlen (s), m = strlen (suf);
  return n >= m && !strcasecmp (s + n - m, suf);
}

/* A ".." component anywhere, or a leading '/'. */
static const char *
unsafe_name (const char *name)
{
  if (name[0] == '/')
    return "an absolute name";
  for (const char *p = name; *p;) {
    size_t n = strcspn (p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return "a '..' component";
    p += n + (p[n] == '/');
  }
  return NULL;
}

static int
check_dir (const char *path, json_t *members, char **err)
{
  DIR *d = opendir (path);
  if (!d)
    return Pallet_v2v_failf (err, PALLET_E_NOT_FOUND, "OVA directory %s: cannot open it", path);
  struct dirent *e;
  while ((e = readdir (d))) {
    if (e->d_name[0] == '.')
      continue;
    json_array_append_new (members, json_pack ("{s:s}", "name", e->d_name));
  }
  closedir (d);
  return PALLET_OK;
}

static int
check_archive (const char *path, json_t *members, char **err)
{
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_format_zip (a);
  if (archive_read_open_filename (a, path, 65536) != ARCHIVE_OK) {
    int st = Pallet_v2v_failf (
        err, PALLET_E_INVALID,
        "OVA %s: not a tar or zip archive (%s); an OVA is a tar of the .ovf and its disks", path,
        archive_error_string (a));
    archive_read_free (a);
    return st;
  }
  struct archive_entry *e;
  int r, st = PALLET_OK;
  while (st == PALLET_OK && (r = archive_read_next_header (a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname (e);
    const char *why = name ? unsafe_name (name) : "no name";
    mode_t type = archive_entry_filetype (e);
    if (!why && (archive_entry_symlink (e) || archive_entry_hardlink (e)))
      why = "a link";
    else if (!why && type != AE_IFREG && type != AE_IFDIR)
      why = "not a regular file";
    if (why)
      st = Pallet_v2v_failf (
          err, PALLET_E_INVALID,
          "OVA %s: member '%.200s' is %s; refused before virt-v2v unpacks it (it could write outside its directory); rebuild the OVA with plain relative names",
          path, name ? name : "", why);
    else if (type == AE_IFREG)
      json_array_append_new (members, json_pack ("{s:s,s:I}", "name", name, "size",
                                                 (json_int_t) archive_entry_size (e)));
    archive_read_data_skip (a);
  }
  if (st == PALLET_OK && r != ARCHIVE_EOF)
    st = Pallet_v2v_failf (err, PALLET_E_INVALID, "OVA %s: damaged archive (%s)", path,
                           archive_error_string (a));
  archive_read_free (a);
  return st;
}

int
pallet_v2v_ova_check (const char *path, json_t **members, char **err)
{
  *members = json_array ();
  struct stat st;
  int r;
  if (stat (path, &st) < 0)
    r = Pallet_v2v_failf (err, PALLET_E_NOT_FOUND,
                          "OVA %s: no such file; set the Provider's url to the .ova path", path);
  else if (S_ISDIR (st.st_mode))
    r = check_dir (path, *members, err);
  else
    r = check_archive (path, *members, err);
  size_t i, ovfs = 0;
  json_t *m;
  json_array_foreach (*members, i, m)
    ovfs += ends_with (json_string_value (json_object_get (m, "name")), ".ovf");
  if (r == PALLET_OK && ovfs != 1)
    r = Pallet_v2v_failf (err, PALLET_E_INVALID,
                          "OVA %s: holds %zu .ovf descriptors; an OVA has exactly one", path, ovfs);
  if (r != PALLET_OK) {
    json_decref (*members);
    *members = NULL;
  }
  return r;
}
