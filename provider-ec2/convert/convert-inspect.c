/* SPDX-License-Identifier: Apache-2.0 */
/* Read-only guest inspection with the libguestfs C API. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "convert-guestfs.h"
#include <jansson.h>

#include "pallet-convert.h"
#include "convert-internal.h"

#define ESP_GPT_TYPE "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

/* A string field, JSON null when libguestfs says "unknown" or fails. */
static int
set_str (json_t *obj, const char *key, char *value)
{
  json_t *v;

  if (value == NULL || *value == '\0' || strcmp (value, "unknown") == 0)
    v = json_null ();
  else
    v = json_string (value);
  free (value);
  return json_object_set_new (obj, key, v);
}

/* The ESP: a GPT partition of the ESP type (or MBR type 0xef), else the
 * vfat filesystem fstab mounts at /boot/efi.  Returns a malloc'd device
 * name, or NULL for a BIOS guest. */
static char *
find_esp (guestfs_h *g, const char *root)
{
  char **parts = guestfs_list_partitions (g);
  char **mps;
  char *esp = NULL;

  for (size_t i = 0; parts && parts[i] && esp == NULL; i++) {
    char *dev = guestfs_part_to_dev (g, parts[i]);
    int n = guestfs_part_to_partnum (g, parts[i]);
    char *pt = dev ? guestfs_part_get_parttype (g, dev) : NULL;

    if (pt && n > 0 && strcmp (pt, "gpt") == 0) {
      char *type = guestfs_part_get_gpt_type (g, dev, n);
      if (type && strcasecmp (type, ESP_GPT_TYPE) == 0)
        esp = strdup (parts[i]);
      free (type);
    }
    else if (pt && n > 0 && strcmp (pt, "msdos") == 0) {
      if (guestfs_part_get_mbr_id (g, dev, n) == 0xef)
        esp = strdup (parts[i]);
    }
    free (pt);
    free (dev);
  }
  Pallet_convert_free_strings (parts);
  if (esp)
    return esp;

  mps = guestfs_inspect_get_mountpoints (g, root);
  for (size_t i = 0; mps && mps[i] && mps[i + 1]; i += 2) {
    if (strcmp (mps[i], "/boot/efi") == 0) {
      char *fs = guestfs_vfs_type (g, mps[i + 1]);
      if (fs && strcmp (fs, "vfat") == 0)
        esp = strdup (mps[i + 1]);
      free (fs);
    }
  }
  Pallet_convert_free_strings (mps);
  return esp;
}

static json_t *
describe_root (guestfs_h *g, const char *root, size_t nroots, const char *const *disks,
               size_t ndisks)
{
  json_t *o = json_object (), *jd = json_array ();
  char *esp;
  int e = 0;

  if (o == NULL || jd == NULL) {
    json_decref (o);
    json_decref (jd);
    return NULL;
  }
  e |= set_str (o, "type", guestfs_inspect_get_type (g, root));
  e |= set_str (o, "distro", guestfs_inspect_get_distro (g, root));
  e |= set_str (o, "productName", guestfs_inspect_get_product_name (g, root));
  e |= json_object_set_new (o, "major", json_integer (guestfs_inspect_get_major_version (g, root)));
  e |= json_object_set_new (o, "minor", json_integer (guestfs_inspect_get_minor_version (g, root)));
  e |= set_str (o, "arch", guestfs_inspect_get_arch (g, root));
  e |= json_object_set_new (o, "root", json_string (root));
  e |= set_str (o, "hostname", guestfs_inspect_get_hostname (g, root));
  e |= set_str (o, "osinfo", guestfs_inspect_get_osinfo (g, root));
  e |= set_str (o, "packageFormat", guestfs_inspect_get_package_format (g, root));
  e |= set_str (o, "packageManagement", guestfs_inspect_get_package_management (g, root));
  esp = find_esp (g, root);
  e |= json_object_set_new (o, "firmware", json_string (esp ? "uefi" : "bios"));
  e |= json_object_set_new (o, "esp", esp ? json_string (esp) : json_null ());
  free (esp);
  e |= json_object_set_new (o, "rootCount", json_integer ((json_int_t) nroots));
  e |= Pallet_convert_guest_facts (g, root, o);
  for (size_t i = 0; i < ndisks; i++)
    e |= json_array_append_new (jd, json_string (disks[i]));
  e |= json_object_set_new (o, "disks", jd);
  if (e) {
    json_decref (o);
    return NULL;
  }
  return o;
}

/* Every disk must exist and be readable before libguestfs starts. */
static enum Pallet_convert_error
check_disks (const char *const *disks, size_t ndisks, char **message)
{
  for (size_t i = 0; i < ndisks; i++) {
    if (disks[i] == NULL || access (disks[i], R_OK) != 0)
      return Pallet_convert_fail (message, PALLET_CONVERT_E_DISK,
                                  "inspecting %s: cannot open disk: %s; fix: check the path "
                                  "exists and is readable",
                                  disks[i] ? disks[i] : "(null)",
                                  disks[i] ? strerror (errno) : "no path");
  }
  return PALLET_CONVERT_OK;
}

/* Selects the backend, adds the disks read-only and launches the appliance. */
static enum Pallet_convert_error
launch_appliance (guestfs_h *g, const char *const *disks, size_t ndisks,
                  const struct Pallet_convert_inspect_options *opts, const char *who,
                  char **message)
{
  guestfs_set_error_handler (g, NULL, NULL);
  if (opts && opts->force_tcg) {
    char *settings[] = { (char *) "force_tcg", NULL };
    if (guestfs_set_backend (g, "direct") == -1 || guestfs_set_backend_settings (g, settings) == -1)
      return Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                                  "inspecting %s: cannot select the direct TCG backend: %s", who,
                                  guestfs_last_error (g));
  }
  for (size_t i = 0; i < ndisks; i++) {
    int r;
    if (opts && opts->disk_format)
      r = guestfs_add_drive_opts (g, disks[i], GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
                                  GUESTFS_ADD_DRIVE_OPTS_FORMAT, opts->disk_format, -1);
    else
      r = guestfs_add_drive_opts (g, disks[i], GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1);
    if (r == -1)
      return Pallet_convert_fail (message, PALLET_CONVERT_E_DISK,
                                  "inspecting %s: cannot open disk: %s; fix: check the path "
                                  "and format",
                                  disks[i], guestfs_last_error (g));
  }
  if (guestfs_launch (g) == -1) {
    const char *e = guestfs_last_error (g);
    int disk = e && (strstr (e, "Could not open") || strstr (e, "lock"));
    return Pallet_convert_fail (message, disk ? PALLET_CONVERT_E_DISK : PALLET_CONVERT_E_TOOL,
                                "inspecting %s: cannot start the libguestfs appliance: %s; "
                                "fix: %s",
                                who, e ? e : "unknown error",
                                disk ? "check the disks are readable images and no VM has "
                                       "them open"
                                     : "run libguestfs-test-tool; on hosts without "
                                       "KVM set force_tcg");
  }
  return PALLET_CONVERT_OK;
}

/* The inspected roots into *ROOTS (freed by the caller); at least one. */
static enum Pallet_convert_error
inspect_roots (guestfs_h *g, const char *who, char ***roots, char **message)
{
  *roots = guestfs_inspect_os (g);
  if (*roots == NULL)
    return Pallet_convert_fail (message, PALLET_CONVERT_E_FAILED,
                                "inspecting %s: inspection failed: %s; fix: check the disks "
                                "belong to one guest and are not corrupt",
                                who, guestfs_last_error (g));
  if ((*roots)[0] == NULL)
    return Pallet_convert_fail (message, PALLET_CONVERT_E_NO_OS,
                                "inspecting %s: no operating system found; fix: pass the "
                                "VM's boot (root) volume: these disks hold no installed OS "
                                "(a blank or data-only volume?)",
                                who);
  return PALLET_CONVERT_OK;
}

enum Pallet_convert_error
Pallet_convert_inspect (const char *const *disks, size_t ndisks,
                        const struct Pallet_convert_inspect_options *opts, char **json,
                        char **message)
{
  enum Pallet_convert_error err = PALLET_CONVERT_OK;
  guestfs_h *g = NULL;
  char **roots = NULL;
  char *who = NULL;
  json_t *o;

  if (message)
    *message = NULL;
  if (json == NULL || disks == NULL || ndisks == 0)
    return Pallet_convert_fail (message, PALLET_CONVERT_E_INVALID,
                                "inspect: no disks given; fix: pass the guest's disk paths");
  *json = NULL;
  err = check_disks (disks, ndisks, message);
  if (err != PALLET_CONVERT_OK)
    return err;
  who = Pallet_convert_join_disks (disks, ndisks);
  if (who == NULL)
    return PALLET_CONVERT_E_NOMEM;

  g = guestfs_create ();
  if (g == NULL) {
    err = Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                               "inspecting %s: cannot create a libguestfs handle; fix: "
                               "install libguestfs (scripts/install-deps.sh)",
                               who);
    goto out;
  }
  err = launch_appliance (g, disks, ndisks, opts, who, message);
  if (err != PALLET_CONVERT_OK)
    goto out;
  err = inspect_roots (g, who, &roots, message);
  if (err != PALLET_CONVERT_OK)
    goto out;
  {
    size_t nroots = 0;
    while (roots[nroots])
      nroots++;
    o = describe_root (g, roots[0], nroots, disks, ndisks);
  }
  if (o)
    *json = json_dumps (o, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref (o);
  if (*json == NULL)
    err = PALLET_CONVERT_E_NOMEM;

out:
  Pallet_convert_free_strings (roots);
  if (g) {
    guestfs_shutdown (g);
    guestfs_close (g);
  }
  free (who);
  return err;
}
