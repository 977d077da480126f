/* SPDX-License-Identifier: Apache-2.0 */
/* virt-v2v output lines: progress steps, warnings, errors, and the mapping
 * of virt-v2v's error messages to error classes and fixes.
 *
 * Pure functions (no I/O), so the unit tests feed them real captured logs.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pallet-convert.h"
#include "convert-internal.h"

const char *
Pallet_convert_error_name (enum Pallet_convert_error err)
{
  switch (err) {
  case PALLET_CONVERT_OK: return "ok";
  case PALLET_CONVERT_E_INVALID: return "invalid";
  case PALLET_CONVERT_E_NO_OS: return "no-os";
  case PALLET_CONVERT_E_MULTIBOOT: return "multiboot";
  case PALLET_CONVERT_E_UNSUPPORTED: return "unsupported";
  case PALLET_CONVERT_E_GUEST_SPACE: return "guest-space";
  case PALLET_CONVERT_E_HOST_SPACE: return "host-space";
  case PALLET_CONVERT_E_DISK: return "disk";
  case PALLET_CONVERT_E_TOOL: return "tool";
  case PALLET_CONVERT_E_TIMEOUT: return "timeout";
  case PALLET_CONVERT_E_CANCELLED: return "cancelled";
  case PALLET_CONVERT_E_FAILED: return "failed";
  case PALLET_CONVERT_E_IO: return "io";
  case PALLET_CONVERT_E_NOMEM: return "nomem";
  case PALLET_CONVERT_E_DEVICE_NAME: return "device-name";
  }
  return "unknown";
}

/* "[  23.3] Inspecting the source".  Parsed by hand rather than strtod
 * so the caller's locale (decimal comma) cannot change the answer. */
int
Pallet_convert_parse_step (const char *line, double *elapsed, const char **text)
{
  const char *p = line;
  double secs = 0, scale = 0.1;
  int digits = 0;

  if (line == NULL || *p++ != '[')
    return 0;
  while (*p == ' ')
    p++;
  for (; isdigit ((unsigned char) *p); p++, digits++) {
    if (digits > 9)
      return 0;
    secs = secs * 10 + (*p - '0');
  }
  if (digits == 0)
    return 0;
  if (*p == '.') {
    p++;
    if (!isdigit ((unsigned char) *p))
      return 0;
    for (; isdigit ((unsigned char) *p); p++, scale /= 10)
      secs += (*p - '0') * scale;
  }
  if (*p++ != ']' || *p != ' ')
    return 0;
  while (*p == ' ')
    p++;
  if (*p == '\0')
    return 0;
  if (elapsed)
    *elapsed = secs;
  if (text)
    *text = p;
  return 1;
}

/* "PROG: KIND: text" where PROG is a program name (no spaces). */
static const char *
parse_tagged (const char *line, const char *kind)
{
  const char *p = line;
  size_t klen = strlen (kind);

  if (line == NULL)
    return NULL;
  while (isalnum ((unsigned char) *p) || *p == '-' || *p == '_' || *p == '.')
    p++;
  if (p == line || strncmp (p, ": ", 2) != 0)
    return NULL;
  p += 2;
  if (strncmp (p, kind, klen) != 0 || strncmp (p + klen, ": ", 2) != 0)
    return NULL;
  return p + klen + 2;
}

const char *
Pallet_convert_parse_warning (const char *line)
{
  return parse_tagged (line, "warning");
}

const char *
Pallet_convert_parse_error (const char *line)
{
  return parse_tagged (line, "error");
}

char *
Pallet_convert_join_disks (const char *const *disks, size_t ndisks)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp;

  if (ndisks == 0 || disks == NULL)
    return strdup ("(no disks)");
  fp = open_memstream (&buf, &len);
  if (fp == NULL)
    return NULL;
  for (size_t i = 0; i < ndisks; i++)
    fprintf (fp, "%s%s", i == 0 ? "" : (i + 1 == ndisks ? " and " : ", "),
             disks[i] ? disks[i] : "(null)");
  if (fclose (fp) != 0) {
    free (buf);
    return NULL;
  }
  return buf;
}

char *
Pallet_convert_condense (const char *text, size_t max)
{
  size_t n = strlen (text), o = 0;
  char *out = malloc (n + 4);
  int space = 0;

  if (out == NULL)
    return NULL;
  for (const char *p = text; *p; p++) {
    if (isspace ((unsigned char) *p)) {
      space = o > 0;
      continue;
    }
    if (space)
      out[o++] = ' ';
    space = 0;
    out[o++] = *p;
  }
  out[o] = '\0';
  if (max >= 4 && o > max) {
    memcpy (out + max - 3, "...", 4);
  }
  return out;
}

/* What virt-v2v 2.2.0 says (see its OCaml sources and the captured logs in
 * tests/fixtures), first match wins. */
static const struct rule {
  const char *needle;
  const char *needle2; /* must match too; NULL: none */
  enum Pallet_convert_error err;
  const char *problem;
  const char *fix;
} rules[] = {
  /* libguestfs's mount of a device the guest's fstab names: an EC2 name
   * that does not exist under virtio.  Before the generic ones. */
  { "mount_stub:", "No such file or directory", PALLET_CONVERT_E_DEVICE_NAME,
    "the guest's /etc/fstab names a device that does not exist on the converted disks "
    "(an EC2 name such as /dev/nvme0n1p1 or /dev/xvda1)",
    "leave fix-device-names on (the default) so it is rewritten to UUID=, or name it by UUID= "
    "in the guest's /etc/fstab, take a new snapshot and retry" },
  { "unknown filesystem type", NULL, PALLET_CONVERT_E_UNSUPPORTED,
    "the guest has a filesystem the libguestfs appliance on this host cannot mount",
    "install that filesystem's support on the conversion host (libguestfs-xfs for XFS, "
    "scripts/install-deps.sh), or leave it out of the guest's fstab" },
  { "failed to find a suitable kernel", NULL, PALLET_CONVERT_E_TOOL,
    "the libguestfs appliance cannot be built: supermin found no kernel on this host",
    "install a kernel on the conversion host (apt-get install linux-image-amd64) and make "
    "/boot/vmlinuz-* readable by this user, or set SUPERMIN_KERNEL and SUPERMIN_MODULES" },
  /* Without -v, all libguestfs says of that. */
  { "supermin exited with error status", NULL, PALLET_CONVERT_E_TOOL,
    "the libguestfs appliance cannot be built on this host (supermin failed; usually it "
    "found no readable kernel in /boot)",
    "run libguestfs-test-tool to see why; install a kernel (apt-get install linux-image-amd64) "
    "and make /boot/vmlinuz-* readable, or set SUPERMIN_KERNEL and SUPERMIN_MODULES" },
  { "no bootloader detected", NULL, PALLET_CONVERT_E_UNSUPPORTED,
    "no bootloader found in the guest (virt-v2v needs GRUB2's grub.cfg under /boot/grub, "
    "/boot/grub2 or the ESP, or GRUB legacy)",
    "install GRUB2 in the guest (grub-pc or grub-efi-amd64) and run update-grub, make sure "
    "fstab mounts /boot, then take a new snapshot and retry" },
  /* ENOSPC inside the appliance is the guest's filesystem, not this host. */
  { "No space left on device", "libguestfs", PALLET_CONVERT_E_GUEST_SPACE,
    "a guest filesystem ran out of space during the conversion",
    "free space on the guest's / and /boot (virt-v2v writes a new initramfs there) or grow "
    "them, then take a new snapshot and retry" },
  { "inspection could not detect the source guest", NULL, PALLET_CONVERT_E_NO_OS,
    "no operating system found",
    "pass the VM's boot (root) volume: these disks hold no installed OS "
    "(a blank or data-only volume, or a snapshot of the wrong instance?)" },
  { "No root device found", NULL, PALLET_CONVERT_E_NO_OS, "no operating system found",
    "pass the VM's boot (root) volume: these disks hold no installed OS "
    "(a blank or data-only volume, or a snapshot of the wrong instance?)" },
  { "not an installed operating system", NULL, PALLET_CONVERT_E_NO_OS,
    "no installed operating system found (an installer or live image?)",
    "pass the VM's installed boot volume, not installation media" },
  { "multi-boot operating system detected", NULL, PALLET_CONVERT_E_MULTIBOOT,
    "more than one operating system found",
    "choose the root filesystem with the root option "
    "(\"first\" or a device such as /dev/sda2)" },
  { "not enough free space for conversion", NULL, PALLET_CONVERT_E_GUEST_SPACE,
    "not enough free space inside the guest",
    "free space on that guest filesystem (virt-v2v writes a new initramfs "
    "there) or grow it, then take a new snapshot and retry" },
  { "inodes available", NULL, PALLET_CONVERT_E_GUEST_SPACE,
    "not enough free inodes inside the guest",
    "delete files on that guest filesystem, then take a new snapshot "
    "and retry" },
  { "insufficient free space in the conversion server", NULL, PALLET_CONVERT_E_HOST_SPACE,
    "not enough free space on the conversion host",
    "free space in $TMPDIR, or point TMPDIR and LIBGUESTFS_CACHEDIR at a "
    "directory with a few GiB free" },
  { "LIBGUESTFS_CACHEDIR", NULL, PALLET_CONVERT_E_HOST_SPACE,
    "not enough free space on the conversion host",
    "free space in $TMPDIR, or point TMPDIR and LIBGUESTFS_CACHEDIR at a "
    "directory with a few GiB free" },
  { "No space left on device", NULL, PALLET_CONVERT_E_HOST_SPACE,
    "the conversion host ran out of space",
    "free space where the overlays and $TMPDIR live (work_dir), then retry" },
  { "unable to convert this guest type", NULL, PALLET_CONVERT_E_UNSUPPORTED, "unsupported guest",
    "convert this guest by hand or migrate it with skipGuestConversion: true" },
  { "is not supported", NULL, PALLET_CONVERT_E_UNSUPPORTED, "unsupported guest",
    "convert this guest by hand or migrate it with skipGuestConversion: true" },
  { "inspection of the package database failed", NULL, PALLET_CONVERT_E_UNSUPPORTED,
    "unsupported guest (its package database cannot be read)",
    "repair the guest's package database, or migrate it with "
    "skipGuestConversion: true" },
  { "unable to rebuild initrd", NULL, PALLET_CONVERT_E_UNSUPPORTED,
    "the guest has no initramfs tool virt-v2v can use",
    "install initramfs-tools or dracut in the guest, then take a new "
    "snapshot and retry" },
  { "unsafe state", NULL, PALLET_CONVERT_E_UNSUPPORTED,
    "a Windows filesystem is hibernated or not cleanly shut down",
    "boot Windows and shut it down fully (no hibernation, no fast startup), "
    "then take a new snapshot" },
  { "Failed to get \"write\" lock", NULL, PALLET_CONVERT_E_DISK,
    "cannot open disk: another process holds it",
    "stop the process (a running VM?) that has the disk open, then retry" },
  { "Could not open", NULL, PALLET_CONVERT_E_DISK, "cannot open disk",
    "check the path exists, is a readable and writable disk image in the "
    "stated format, and no other process holds it open" },
  { "Permission denied", NULL, PALLET_CONVERT_E_DISK, "cannot open disk: permission denied",
    "make the disk readable and writable by this user (and by qemu)" },
  { "unsupported file format", NULL, PALLET_CONVERT_E_DISK,
    "cannot open disk: unsupported file format",
    "pass the disk's real format (disk_format: raw or qcow2)" },
};

size_t
Pallet_convert_error_rule (const char *text)
{
  size_t i;
  for (i = 0; text && i < sizeof rules / sizeof rules[0]; i++)
    if (strcasestr (text, rules[i].needle)
        && (rules[i].needle2 == NULL || strcasestr (text, rules[i].needle2)))
      return i;
  return (size_t) -1;
}

/* The error message proper: its first paragraph, "PROG: error: " cut,
 * on one line. */
static char *
first_paragraph (const char *text)
{
  const char *start, *end, *e;
  char *para, *out;

  while (*text == '\n')
    text++;
  start = Pallet_convert_parse_error (text);
  if (start == NULL)
    start = text;
  end = strstr (start, "\n\n");
  if (end == NULL)
    end = start + strlen (start);
  para = strndup (start, (size_t) (end - start));
  if (para == NULL)
    return NULL;
  /* "No root device found ..." is the useful part of the no-OS error. */
  if ((e = strstr (end, "No root device found")) != NULL && e != start) {
    char *p2;
    const char *nl = strchr (e, '\n');
    if (asprintf (&p2, "%s %.*s", para, (int) (nl ? (size_t) (nl - e) : strlen (e)), e) >= 0) {
      free (para);
      para = p2;
    }
  }
  out = Pallet_convert_condense (para, 400);
  free (para);
  return out;
}

enum Pallet_convert_error
Pallet_convert_map_error (const char *error_text, const char *const *disks, size_t ndisks,
                          char **message)
{
  const struct rule *r = NULL;
  enum Pallet_convert_error err = PALLET_CONVERT_E_FAILED;
  char *who, *said = NULL;
  int n;

  size_t i = Pallet_convert_error_rule (error_text);
  if (i < sizeof rules / sizeof rules[0])
    r = &rules[i];
  if (r)
    err = r->err;
  if (message == NULL)
    return err;

  *message = NULL;
  who = Pallet_convert_join_disks (disks, ndisks);
  if (error_text)
    said = first_paragraph (error_text);
  if (who == NULL || (error_text && said == NULL)) {
    free (who);
    free (said);
    return PALLET_CONVERT_E_NOMEM;
  }
  if (r)
    n = asprintf (message, "converting %s: %s (virt-v2v-in-place said: %s); fix: %s", who,
                  r->problem, said ? said : "", r->fix);
  else if (said)
    n = asprintf (message,
                  "converting %s: virt-v2v-in-place failed (%s); fix: "
                  "rerun with verbose on (-v -x) and read the libguestfs log "
                  "for the cause",
                  who, said);
  else
    n = asprintf (message,
                  "converting %s: virt-v2v-in-place failed without an "
                  "error message; fix: rerun with verbose on (-v -x) and read "
                  "the log",
                  who);
  if (n < 0) {
    *message = NULL;
    err = PALLET_CONVERT_E_NOMEM;
  }
  free (who);
  free (said);
  return err;
}

void
Pallet_convert_free_strings (char **v)
{
  if (v == NULL)
    return;
  for (size_t i = 0; v[i]; i++)
    free (v[i]);
  free (v);
}

enum Pallet_convert_error
Pallet_convert_fail (char **message, enum Pallet_convert_error err, const char *fmt, ...)
{
  va_list ap;

  if (message) {
    va_start (ap, fmt);
    if (vasprintf (message, fmt, ap) < 0)
      *message = NULL;
    va_end (ap);
  }
  return err;
}
