/* SPDX-License-Identifier: Apache-2.0 */
/* Post-conversion verification with the libguestfs C API (read-only).
 *
 * Checks what a KubeVirt boot needs and virt-v2v is meant to have done:
 * the newest kernel has virtio_blk and virtio_net, its initramfs carries
 * them, and no boot configuration names a Xen (/dev/xvd*) or NVMe
 * (/dev/nvme*) device that does not exist on virtio.  The initramfs is
 * listed by the guest's own lsinitramfs (or dracut's lsinitrd) run in the
 * appliance, as virt-v2v does: Debian's are zstd-compressed, which
 * guestfs_initrd_list (zcat) cannot read.  It is the fallback for guests
 * that have neither tool.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert-guestfs.h"
#include <jansson.h>

#include "pallet-convert.h"
#include "convert-internal.h"

static const char *const modules[] = { "virtio_blk", "virtio_net" };
#define NMODULES (sizeof modules / sizeof modules[0])

/* Names a boot config must not use after conversion. */
static const char *const bad_devices[] = { "/dev/xvd", "/dev/nvme" };

static const char *const grub_files[] = {
  "/boot/grub/grub.cfg",
  "/boot/grub2/grub.cfg",
  "/etc/default/grub",
};

struct verify {
  guestfs_h *g;
  json_t *checks;
  char *first_fail; /* "NAME: DETAIL; fix: FIX" of the first failure */
  int nomem;
};

/* Appends one check; the first failure's detail and fix are kept for the
 * caller's message. */
static void add_check (struct verify *v, const char *name, int ok, const char *fix, const char *fmt,
                       ...) __attribute__ ((format (printf, 5, 6)));
static void
add_check (struct verify *v, const char *name, int ok, const char *fix, const char *fmt, ...)
{
  va_list ap;
  char *detail = NULL;
  json_t *c;

  va_start (ap, fmt);
  if (vasprintf (&detail, fmt, ap) < 0)
    detail = NULL;
  va_end (ap);
  c = json_pack ("{s:s, s:b, s:s}", "name", name, "ok", ok, "detail", detail ? detail : "");
  if (detail == NULL || c == NULL || json_array_append_new (v->checks, c) < 0)
    v->nomem = 1;
  if (!ok && v->first_fail == NULL && detail
      && asprintf (&v->first_fail, "check %s failed: %s; fix: %s", name, detail, fix) < 0) {
    v->first_fail = NULL;
    v->nomem = 1;
  }
  free (detail);
}

/* "virtio_blk.ko.zst" or "virtio-blk.ko" is module virtio_blk. */
static int
is_module_file (const char *path, const char *mod)
{
  const char *base = strrchr (path, '/');
  size_t n = strlen (mod);

  base = base ? base + 1 : path;
  for (size_t i = 0; i < n; i++) {
    char c = base[i] == '-' ? '_' : base[i];
    if (c != mod[i])
      return 0;
  }
  return strncmp (base + n, ".ko", 3) == 0 && (base[n + 3] == '\0' || base[n + 3] == '.');
}

int
Pallet_convert_list_has_module (char *const *list, const char *mod)
{
  for (size_t i = 0; list && list[i]; i++) {
    /* lsinitrd prints ls -l lines: the path is the last word. */
    const char *p = strrchr (list[i], ' ');
    if (is_module_file (p ? p + 1 : list[i], mod))
      return 1;
  }
  return 0;
}

static int
file_exists (guestfs_h *g, const char *path)
{
  return guestfs_is_file_opts (g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) > 0;
}

/* The newest kernel with a /boot/vmlinuz-KVER (any module dir if none has
 * one), by version order: 6.1.0-10 is newer than 6.1.0-9. */
char *
Pallet_convert_newest_kernel (guestfs_h *g)
{
  char **dirs = guestfs_is_dir (g, "/lib/modules") > 0 ? guestfs_ls (g, "/lib/modules") : NULL;
  const char *best = NULL, *best_any = NULL;
  char *r;

  for (size_t i = 0; dirs && dirs[i]; i++) {
    char path[4096];

    snprintf (path, sizeof path, "/lib/modules/%s", dirs[i]);
    if (guestfs_is_dir (g, path) <= 0)
      continue;
    if (best_any == NULL || strverscmp (dirs[i], best_any) > 0)
      best_any = dirs[i];
    snprintf (path, sizeof path, "/boot/vmlinuz-%s", dirs[i]);
    if (file_exists (g, path) && (best == NULL || strverscmp (dirs[i], best) > 0))
      best = dirs[i];
  }
  if (best == NULL)
    best = best_any;
  r = best ? strdup (best) : NULL;
  Pallet_convert_free_strings (dirs);
  return r;
}

/* Lines of /lib/modules/KVER/modules.builtin, or an empty list. */
char **
Pallet_convert_read_builtin (guestfs_h *g, const char *kver)
{
  char path[4096];
  char **l = NULL;

  snprintf (path, sizeof path, "/lib/modules/%s/modules.builtin", kver);
  if (file_exists (g, path))
    l = guestfs_read_lines (g, path);
  return l ? l : calloc (1, sizeof (char *));
}

char *
Pallet_convert_find_initramfs (guestfs_h *g, const char *kver)
{
  static const char *const fmts[] = {
    "/boot/initrd.img-%s",
    "/boot/initramfs-%s.img",
    "/boot/initrd-%s",
  };

  for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
    char *p;
    if (asprintf (&p, fmts[i], kver) < 0)
      return NULL;
    if (file_exists (g, p))
      return p;
    free (p);
  }
  return NULL;
}

/* The file list of INITRD, by the guest's own tool.  *HOW says which. */
char **
Pallet_convert_list_initramfs (guestfs_h *g, const char *initrd, const char **how)
{
  static const char *const tools[] = {
    "/usr/bin/lsinitramfs",
    "/usr/sbin/lsinitramfs",
    "/usr/bin/lsinitrd",
    "/usr/sbin/lsinitrd",
  };

  for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
    if (file_exists (g, tools[i])) {
      char *argv[] = { (char *) tools[i], (char *) initrd, NULL };
      *how = tools[i];
      return guestfs_command_lines (g, argv);
    }
  *how = "guestfs_initrd_list";
  return guestfs_initrd_list (g, initrd);
}

static void
check_kernel (struct verify *v, const char *kver)
{
  guestfs_h *g = v->g;
  char path[4096], **files = NULL, **builtin = NULL, **initrd_files = NULL;
  char *initrd = NULL;
  const char *how = NULL;
  int found[NMODULES], in_builtin[NMODULES];

  if (kver == NULL) {
    for (size_t k = 0; k < 2; k++)
      for (size_t m = 0; m < NMODULES; m++) {
        const char *what = k == 0 ? "kernel" : "initramfs";
        char name[64];
        snprintf (name, sizeof name, "%s-%s", what, modules[m]);
        name[strlen (what) + strlen ("-virtio")] = '-';
        add_check (v, name, 0,
                   "install a Linux kernel package in the guest "
                   "and convert again",
                   "no kernel found under /lib/modules");
      }
    return;
  }
  snprintf (path, sizeof path, "/lib/modules/%s", kver);
  files = guestfs_find (g, path);
  builtin = Pallet_convert_read_builtin (g, kver);
  for (size_t m = 0; m < NMODULES; m++) {
    char name[64];

    found[m] = Pallet_convert_list_has_module (files, modules[m]);
    in_builtin[m] = Pallet_convert_list_has_module (builtin, modules[m]);
    snprintf (name, sizeof name, "kernel-%s", modules[m]);
    name[strlen ("kernel-virtio")] = '-'; /* kernel-virtio-blk */
    if (found[m] || in_builtin[m])
      add_check (v, name, 1, "", "kernel %s: %s %s", kver, modules[m],
                 in_builtin[m] ? "is built in (modules.builtin)" : "module is installed");
    else
      add_check (v, name, 0,
                 "install a kernel with virtio drivers (Debian: "
                 "linux-image-cloud-amd64 or linux-image-amd64) in the guest, "
                 "then convert again",
                 "kernel %s has no %s module under %s and does not list it "
                 "in modules.builtin%s",
                 kver, modules[m], path, files ? "" : " (the module directory could not be read)");
  }

  initrd = Pallet_convert_find_initramfs (g, kver);
  if (initrd)
    initrd_files = Pallet_convert_list_initramfs (g, initrd, &how);
  char fix[512];
  snprintf (fix, sizeof fix,
            "add the module to /etc/initramfs-tools/modules "
            "(dracut: add_drivers+= in /etc/dracut.conf.d/) and rebuild the "
            "initramfs (update-initramfs -u -k %s, or dracut -f --kver %s), "
            "or run the conversion again",
            kver, kver);
  for (size_t m = 0; m < NMODULES; m++) {
    char name[64];

    snprintf (name, sizeof name, "initramfs-%s", modules[m]);
    name[strlen ("initramfs-virtio")] = '-';
    if (in_builtin[m])
      add_check (v, name, 1, "",
                 "kernel %s: %s is built into the kernel; "
                 "the initramfs need not carry it",
                 kver, modules[m]);
    else if (initrd == NULL)
      add_check (v, name, 0,
                 "rebuild the initramfs in the guest "
                 "(update-initramfs -c -k <kernel>, or dracut -f) and convert "
                 "again",
                 "kernel %s has no initramfs in /boot (looked for "
                 "initrd.img-%s, initramfs-%s.img, initrd-%s)",
                 kver, kver, kver, kver);
    else if (initrd_files == NULL)
      add_check (v, name, 0,
                 "check the initramfs is not corrupt and rebuild "
                 "it in the guest",
                 "cannot list %s with %s: %s", initrd, how,
                 guestfs_last_error (g) ? guestfs_last_error (g) : "unknown error");
    else if (Pallet_convert_list_has_module (initrd_files, modules[m]))
      add_check (v, name, 1, "", "%s carries %s (listed by %s)", initrd, modules[m], how);
    else
      add_check (v, name, 0, fix, "%s does not carry %s (listed by %s)", initrd, modules[m], how);
  }
  free (initrd);
  Pallet_convert_free_strings (initrd_files);
  Pallet_convert_free_strings (files);
  Pallet_convert_free_strings (builtin);
}

/* Appends "FILE line N: TEXT" for each uncommented line of FILE naming a
 * Xen or NVMe device; returns how many. */
static int
scan_file (struct verify *v, const char *file, char **found, int *nfiles)
{
  char **lines;
  int n = 0;

  if (!file_exists (v->g, file))
    return 0;
  (*nfiles)++;
  lines = guestfs_read_lines (v->g, file);
  for (size_t i = 0; lines && lines[i]; i++) {
    const char *p = lines[i] + strspn (lines[i], " \t");
    int bad = 0;

    if (*p == '#')
      continue;
    for (size_t b = 0; b < sizeof bad_devices / sizeof bad_devices[0]; b++)
      bad |= strstr (p, bad_devices[b]) != NULL;
    if (bad) {
      char *text = Pallet_convert_condense (p, 120), *s = NULL;

      if (text && n < 5
          && asprintf (&s, "%s%s%s line %zu: %s", *found ? *found : "", *found ? "; " : "", file,
                       i + 1, text)
                 >= 0) {
        free (*found);
        *found = s;
      }
      free (text);
      n++;
    }
  }
  Pallet_convert_free_strings (lines);
  return n;
}

static void
check_device_names (struct verify *v)
{
  char *found = NULL;
  int nfiles = 0, n;

  n = scan_file (v, "/etc/fstab", &found, &nfiles);
  if (n == 0)
    add_check (v, "fstab-device-names", 1, "",
               nfiles ? "/etc/fstab names no /dev/xvd* or /dev/nvme* device"
                      : "the guest has no /etc/fstab");
  else
    add_check (v, "fstab-device-names", 0,
               "mount by UUID= or LABEL= "
               "instead (blkid shows them), or by /dev/vdX, then convert "
               "again",
               "%d /etc/fstab entr%s name%s a Xen or NVMe device "
               "that does not exist on virtio: %s",
               n, n == 1 ? "y" : "ies", n == 1 ? "s" : "", found ? found : "");
  free (found);
  found = NULL;
  nfiles = 0;
  n = 0;
  for (size_t i = 0; i < sizeof grub_files / sizeof grub_files[0]; i++)
    n += scan_file (v, grub_files[i], &found, &nfiles);
  if (n == 0)
    add_check (v, "grub-device-names", 1, "",
               nfiles ? "the GRUB configuration names no /dev/xvd* or /dev/nvme* device"
                      : "no GRUB configuration found (/boot/grub/grub.cfg, "
                        "/boot/grub2/grub.cfg, /etc/default/grub)");
  else
    add_check (v, "grub-device-names", 0,
               "use root=UUID= (or LABEL=) in "
               "/etc/default/grub and regenerate grub.cfg with grub-mkconfig "
               "(update-grub), then convert again",
               "%d GRUB line%s name%s a "
               "Xen or NVMe device that does not exist on virtio: %s",
               n, n == 1 ? "" : "s", n == 1 ? "s" : "", found ? found : "");
  free (found);
}

static int
cmp_mountpoint_len (const void *a, const void *b)
{
  /* Pairs (mountpoint, device): "/" before "/boot" before "/boot/efi". */
  size_t la = strlen (*(char *const *) a), lb = strlen (*(char *const *) b);
  return (la > lb) - (la < lb);
}

/* Mounts ROOT's filesystems read-only, shortest mount point first.  The
 * root itself is always the inspected root device: an fstab that names
 * /dev/xvda1 for "/" must not keep us from reading it. */
int
Pallet_convert_mount_guest (guestfs_h *g, const char *root)
{
  char **mps;
  size_t n = 0;

  if (guestfs_mount_ro (g, root, "/") == -1)
    return -1;
  mps = guestfs_inspect_get_mountpoints (g, root);
  while (mps && mps[n])
    n++;
  if (n >= 2)
    qsort (mps, n / 2, 2 * sizeof (char *), cmp_mountpoint_len);
  for (size_t i = 0; i + 1 < n; i += 2)
    /* A missing /boot shows up as a failed check, with the reason. */
    if (strcmp (mps[i], "/") != 0)
      (void) guestfs_mount_ro (g, mps[i + 1], mps[i]);
  Pallet_convert_free_strings (mps);
  return 0;
}

static guestfs_h *
open_guest (const char *const *disks, size_t ndisks,
            const struct Pallet_convert_verify_options *opts, const char *who, char **message,
            enum Pallet_convert_error *err)
{
  guestfs_h *g = guestfs_create ();
  const char *fmt = opts && opts->disk_format ? opts->disk_format : "raw";

  if (g == NULL) {
    *err = Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                                "verifying %s: cannot create "
                                "a libguestfs handle; fix: install libguestfs "
                                "(scripts/install-deps.sh)",
                                who);
    return NULL;
  }
  guestfs_set_error_handler (g, NULL, NULL);
  if (opts && opts->force_tcg) {
    char *settings[] = { (char *) "force_tcg", NULL };
    if (guestfs_set_backend (g, "direct") == -1
        || guestfs_set_backend_settings (g, settings) == -1) {
      *err = Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                                  "verifying %s: cannot "
                                  "select the direct TCG backend: %s; fix: check libguestfs",
                                  who, guestfs_last_error (g));
      goto bad;
    }
  }
  for (size_t i = 0; i < ndisks; i++)
    if (guestfs_add_drive_opts (g, disks[i], GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
                                GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt, -1)
        == -1) {
      *err = Pallet_convert_fail (message, PALLET_CONVERT_E_DISK,
                                  "verifying %s: cannot open "
                                  "disk: %s; fix: check the path and format (%s)",
                                  disks[i], guestfs_last_error (g), fmt);
      goto bad;
    }
  if (guestfs_launch (g) == -1) {
    *err = Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                                "verifying %s: cannot start "
                                "the libguestfs appliance: %s; fix: run libguestfs-test-tool; "
                                "on hosts without KVM set force_tcg",
                                who, guestfs_last_error (g));
    goto bad;
  }
  return g;
bad:
  guestfs_close (g);
  return NULL;
}

enum Pallet_convert_error
Pallet_convert_verify (const char *const *disks, size_t ndisks,
                       const struct Pallet_convert_verify_options *opts, char **json,
                       char **message)
{
  enum Pallet_convert_error err = PALLET_CONVERT_OK;
  struct verify v = { 0 };
  char **roots = NULL, *kver = NULL, *who = NULL;
  json_t *report = NULL;

  if (message)
    *message = NULL;
  if (json == NULL || disks == NULL || ndisks == 0)
    return Pallet_convert_fail (message, PALLET_CONVERT_E_INVALID,
                                "verify: no disks given; "
                                "fix: pass the converted guest's disk paths");
  *json = NULL;
  for (size_t i = 0; i < ndisks; i++)
    if (disks[i] == NULL || access (disks[i], R_OK) != 0)
      return Pallet_convert_fail (message, PALLET_CONVERT_E_DISK,
                                  "verifying %s: cannot open "
                                  "disk: %s; fix: check the path exists and is readable",
                                  disks[i] ? disks[i] : "(null)",
                                  disks[i] ? strerror (errno) : "no path");
  if ((who = Pallet_convert_join_disks (disks, ndisks)) == NULL)
    return PALLET_CONVERT_E_NOMEM;
  if ((v.g = open_guest (disks, ndisks, opts, who, message, &err)) == NULL)
    goto out;

  roots = guestfs_inspect_os (v.g);
  if (roots == NULL || roots[0] == NULL) {
    err = Pallet_convert_fail (message, roots ? PALLET_CONVERT_E_NO_OS : PALLET_CONVERT_E_FAILED,
                               "verifying %s: %s%s; fix: pass the converted VM's disks, boot "
                               "disk first",
                               who, roots ? "no operating system found" : "inspection failed: ",
                               roots ? "" : guestfs_last_error (v.g));
    goto out;
  }
  if (Pallet_convert_mount_guest (v.g, roots[0]) == -1) {
    err = Pallet_convert_fail (message, PALLET_CONVERT_E_DISK,
                               "verifying %s: cannot mount "
                               "the root filesystem %s: %s; fix: check the disk is not "
                               "corrupt (e2fsck/xfs_repair on a copy)",
                               who, roots[0], guestfs_last_error (v.g));
    goto out;
  }
  v.checks = json_array ();
  kver = Pallet_convert_newest_kernel (v.g);
  if (v.checks == NULL)
    goto nomem;
  check_kernel (&v, kver);
  check_device_names (&v);
  if (v.nomem)
    goto nomem;

  report = json_pack ("{s:b, s:o, s:O}", "ok", v.first_fail == NULL, "kernel",
                      kver ? json_string (kver) : json_null (), "checks", v.checks);
  if (report == NULL || (*json = json_dumps (report, JSON_COMPACT)) == NULL)
    goto nomem;
  if (v.first_fail && message && asprintf (message, "verifying %s: %s", who, v.first_fail) < 0)
    *message = NULL;
  goto out;

nomem:
  err = Pallet_convert_fail (message, PALLET_CONVERT_E_NOMEM, "verifying %s: out of memory", who);
out:
  json_decref (report);
  json_decref (v.checks);
  free (v.first_fail);
  free (kver);
  Pallet_convert_free_strings (roots);
  if (v.g) {
    guestfs_shutdown (v.g);
    guestfs_close (v.g);
  }
  free (who);
  return err;
}
