/* SPDX-License-Identifier: Apache-2.0 */
/* The device-name fix-up before virt-v2v: a guest whose fstab or kernel
 * command line names its root /dev/nvme0n1p1 or /dev/xvda1 fails under
 * virtio (no such device), so each such name is rewritten to the UUID
 * (PARTUUID, LABEL) of the filesystem it means, resolved through the
 * instance's block-device mapping.  fstab and crypttab go through Augeas;
 * the line-oriented files through Pallet_convert_rewrite_text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert-guestfs.h"
#include <jansson.h>

#include "pallet-convert.h"
#include "convert-internal.h"

#define AUG_NO_LOAD 32 /* augeas.h: load no file until aug_load */

/* What blkid says of one block device of the appliance. */
struct blk {
  char *dev, *type, *uuid, *label, *partuuid;
};

struct fixup {
  guestfs_h *g;
  const struct Pallet_convert_fixup_options *o;
  char **devices; /* appliance whole disks, in disk order */
  size_t ndisks;
  struct blk *blk;
  size_t nblk;
  const char *file;   /* being scanned */
  const char *fstype; /* the fstab entry's type, or NULL */
  int as_path;        /* dracut: /dev/disk/by-uuid/X, not UUID=X */
  int partuuid_first; /* crypttab: a plain swap gets a new UUID each boot */
  struct Pallet_convert_rewrite *rw;
  size_t nrw;
  FILE *findings; /* "FILE line N: NAME: why; ..." */
  char *findings_buf;
  size_t findings_len, nfindings;
  int nomem;
};

static void finding (struct fixup *f, unsigned line, const char *name, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
static void
finding (struct fixup *f, unsigned line, const char *name, const char *fmt, ...)
{
  va_list ap;
  if (f->nfindings++)
    fputs ("; ", f->findings);
  if (line)
    fprintf (f->findings, "%s line %u: %s: ", f->file, line, name);
  else
    fprintf (f->findings, "%s: %s: ", f->file, name);
  va_start (ap, fmt);
  vfprintf (f->findings, fmt, ap);
  va_end (ap);
}

static const char *
hash_get (char **h, const char *key)
{
  for (size_t i = 0; h && h[i] && h[i + 1]; i += 2)
    if (strcmp (h[i], key) == 0 && *h[i + 1])
      return h[i + 1];
  return NULL;
}

static char *
dup_or_null (const char *s)
{
  return s ? strdup (s) : NULL;
}

/* blkid of every disk, partition and logical volume. */
static int
load_blkid (struct fixup *f)
{
  char **parts = guestfs_list_partitions (f->g);
  char **lvs = guestfs_lvs (f->g);
  char **lists[] = { f->devices, parts, lvs };
  size_t n = 0;

  for (size_t l = 0; l < 3; l++)
    for (size_t i = 0; lists[l] && lists[l][i]; i++)
      n++;
  f->blk = calloc (n + 1, sizeof *f->blk);
  for (size_t l = 0; f->blk && l < 3; l++)
    for (size_t i = 0; lists[l] && lists[l][i]; i++) {
      char **h = guestfs_blkid (f->g, lists[l][i]);
      struct blk *b = &f->blk[f->nblk++];
      b->dev = strdup (lists[l][i]);
      b->type = dup_or_null (hash_get (h, "TYPE"));
      b->uuid = dup_or_null (hash_get (h, "UUID"));
      b->label = dup_or_null (hash_get (h, "LABEL"));
      b->partuuid = dup_or_null (hash_get (h, "PART_ENTRY_UUID"));
      if (b->partuuid == NULL)
        b->partuuid = dup_or_null (hash_get (h, "PARTUUID"));
      Pallet_convert_free_strings (h);
    }
  Pallet_convert_free_strings (parts);
  Pallet_convert_free_strings (lvs);
  return f->blk ? 0 : -1;
}

static struct blk *
blk_of (struct fixup *f, const char *dev)
{
  for (size_t i = 0; i < f->nblk; i++)
    if (strcmp (f->blk[i].dev, dev) == 0)
      return &f->blk[i];
  return NULL;
}

/* How many block devices carry VALUE in the field at OFFSET. */
static size_t
count_same (struct fixup *f, size_t offset, const char *value)
{
  size_t n = 0;
  for (size_t i = 0; value && i < f->nblk; i++) {
    const char *v = *(char **) ((char *) &f->blk[i] + offset);
    if (v && strcmp (v, value) == 0)
      n++;
  }
  return n;
}

/* The disk a /dev/xvdX or /dev/sdX name means, by the block-device
 * mapping (xvdf and sdf are one name); -1 with a finding.  *WHOLE is set
 * when the mapping names exactly this with its digit ("/dev/sda1" for a
 * partitionless root). */
static long
disk_of_letters (struct fixup *f, unsigned line, const char *name,
                 const struct Pallet_convert_devname *d, int *whole)
{
  long disk = -1;
  *whole = 0;
  if (f->o->devices == NULL) {
    if (d->letters[1] == '\0' && (size_t) (d->letters[0] - 'a') < f->ndisks)
      return d->letters[0] - 'a';
    finding (f, line, name, "there are only %zu disks (sda..sd%c)", f->ndisks,
             (char) ('a' + f->ndisks - 1));
    return -1;
  }
  for (size_t i = 0; i < f->o->ndevices; i++) {
    struct Pallet_convert_devname m;
    char buf[64];
    const char *nm = f->o->devices[i].name;
    snprintf (buf, sizeof buf, "%s%s", strncmp (nm, "/dev/", 5) ? "/dev/" : "", nm);
    if (Pallet_convert_parse_devname (buf, &m) == 0 || m.kind == PALLET_DEVNAME_NVME
        || strcmp (m.letters, d->letters) != 0)
      continue;
    if (disk >= 0 && (size_t) disk != f->o->devices[i].disk) {
      finding (f, line, name, "two volumes are attached as sd%s/xvd%s (disks %ld and %zu)",
               d->letters, d->letters, disk, f->o->devices[i].disk);
      return -1;
    }
    disk = (long) f->o->devices[i].disk;
    if (m.part && m.part == d->part)
      *whole = 1;
  }
  if (disk < 0)
    finding (f, line, name, "no volume is attached as sd%s or xvd%s in the block-device mapping",
             d->letters, d->letters);
  else if ((size_t) disk >= f->ndisks) {
    finding (f, line, name, "the mapping puts it on disk %ld of %zu", disk, f->ndisks);
    disk = -1;
  }
  return disk;
}

/* The appliance device NAME means, or NULL with a finding. */
static char *
appliance_dev (struct fixup *f, unsigned line, const char *name,
               const struct Pallet_convert_devname *d)
{
  long disk;
  int whole = 0;
  char *dev;

  if (d->kind == PALLET_DEVNAME_NVME) {
    if (d->ns != 1) {
      finding (f, line, name, "EBS volumes are NVMe namespace 1, not %u", d->ns);
      return NULL;
    }
    if (d->controller >= f->ndisks) {
      finding (f, line, name, "the instance has %zu volumes (nvme0..nvme%zu)", f->ndisks,
               f->ndisks - 1);
      return NULL;
    }
    disk = d->controller;
  }
  else if ((disk = disk_of_letters (f, line, name, d, &whole)) < 0)
    return NULL;
  const char *base = f->devices[disk];
  struct blk *b = blk_of (f, base);
  if (d->part == 0 || (whole && b && b->uuid))
    return strdup (base);
  if (asprintf (&dev, "%s%u", base, d->part) < 0)
    return NULL;
  if (blk_of (f, dev) == NULL) {
    finding (f, line, name, "disk %ld (%s) has no partition %u", disk, base, d->part);
    free (dev);
    return NULL;
  }
  return dev;
}

static int
same_fstype (const char *want, const char *have)
{
  if (want == NULL || have == NULL || !strcmp (want, "auto") || !strcmp (want, "none"))
    return 1;
  if (!strncmp (want, "ext", 3) && !strncmp (have, "ext", 3))
    return 1;
  return strcmp (want, have) == 0;
}

/* UUID=, else PARTUUID=, else LABEL= of DEV: the first one no other
 * device shares. */
static char *
identify (struct fixup *f, unsigned line, const char *name, const char *dev)
{
  static const struct {
    const char *tag, *path;
    size_t offset;
  } ids[] = {
    { "UUID", "by-uuid", offsetof (struct blk, uuid) },
    { "PARTUUID", "by-partuuid", offsetof (struct blk, partuuid) },
    { "LABEL", "by-label", offsetof (struct blk, label) },
  };
  struct blk *b = blk_of (f, dev);
  char *out = NULL;

  if (b == NULL || (b->uuid == NULL && b->label == NULL)) {
    finding (f, line, name, "%s holds no filesystem, swap or LUKS signature", dev);
    return NULL;
  }
  if (!same_fstype (f->fstype, b->type)) {
    finding (f, line, name, "%s is %s but the entry says %s (wrong volume order?)", dev,
             b->type ? b->type : "unknown", f->fstype);
    return NULL;
  }
  for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
    size_t i = f->partuuid_first && k < 2 ? 1 - k : k;
    const char *v = *(char **) ((char *) b + ids[i].offset);
    if (v == NULL || count_same (f, ids[i].offset, v) != 1 || strpbrk (v, " \t\"'\\"))
      continue;
    if ((f->as_path ? asprintf (&out, "/dev/disk/%s/%s", ids[i].path, v)
                    : asprintf (&out, "%s=%s", ids[i].tag, v))
        < 0)
      return NULL;
    return out;
  }
  finding (f, line, name,
           "%s's UUID %s is shared with another volume (a cloned snapshot?) and no PARTUUID or "
           "LABEL is unique",
           dev, b->uuid ? b->uuid : "(none)");
  return NULL;
}

static int
record (struct fixup *f, unsigned line, const char *from, const char *to)
{
  struct Pallet_convert_rewrite *v = realloc (f->rw, (f->nrw + 1) * sizeof *v);
  if (v == NULL)
    return -1;
  f->rw = v;
  v[f->nrw] = (struct Pallet_convert_rewrite){ strdup (f->file), line, strdup (from), strdup (to) };
  if (!v[f->nrw].file || !v[f->nrw].from || !v[f->nrw].to) {
    free (v[f->nrw].file);
    free (v[f->nrw].from);
    free (v[f->nrw].to);
    return -1;
  }
  f->nrw++;
  return 0;
}

/* Pallet_convert_resolve_fn: the replacement for NAME, recorded. */
static char *
resolve (void *opaque, unsigned line, const char *name, const struct Pallet_convert_devname *d)
{
  struct fixup *f = opaque;
  char *dev = appliance_dev (f, line, name, d);
  char *to = dev ? identify (f, line, name, dev) : NULL;
  free (dev);
  if (to && record (f, line, name, to) < 0) {
    f->nomem = 1;
    free (to);
    return NULL;
  }
  return to;
}

/* ---- the files ------------------------------------------------------ */

/* A new content for a guest text file, written once all resolved. */
struct edit {
  char *path, *text;
};

static int
rewrite_file (struct fixup *f, const char *path, struct edit **edits, size_t *nedits)
{
  size_t len = 0, nchanges = 0;
  char *text, *out = NULL;
  if (guestfs_is_file_opts (f->g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1)
    return 0;
  text = guestfs_read_file (f->g, path, &len);
  if (text == NULL || memchr (text, '\0', len)) { /* unreadable or binary */
    free (text);
    return 0;
  }
  f->file = path;
  f->as_path = strstr (path, "dracut") != NULL;
  f->fstype = NULL;
  int r = Pallet_convert_rewrite_text (text, resolve, f, &out, &nchanges);
  free (text);
  if (r < 0)
    return -1;
  if (nchanges == 0) {
    free (out);
    return 0;
  }
  struct edit *e = realloc (*edits, (*nedits + 1) * sizeof *e);
  if (e == NULL || (e[*nedits].path = strdup (path)) == NULL) {
    if (e)
      *edits = e;
    free (out);
    return -1;
  }
  e[*nedits].text = out;
  *edits = e;
  (*nedits)++;
  return 0;
}

/* Line-oriented files holding device names (globs). */
static const char *const text_files[] = {
  "/etc/default/grub",
  "/etc/default/grub.d/*.cfg",
  "/boot/grub/grub.cfg",
  "/boot/grub2/grub.cfg",
  "/boot/efi/EFI/*/grub.cfg",
  "/boot/loader/entries/*.conf",
  "/etc/kernel/cmdline",
  "/etc/dracut.conf",
  "/etc/dracut.conf.d/*.conf",
  "/etc/initramfs-tools/initramfs.conf",
  "/etc/initramfs-tools/conf.d/*",
  "/etc/cloud/cloud.cfg",
  "/etc/cloud/cloud.cfg.d/*.cfg",
  NULL,
};

static int
scan_text_files (struct fixup *f, struct edit **edits, size_t *nedits)
{
  for (size_t i = 0; text_files[i]; i++) {
    char **paths = guestfs_glob_expand (f->g, text_files[i]);
    for (size_t k = 0; paths && paths[k]; k++)
      if (rewrite_file (f, paths[k], edits, nedits) < 0) {
        Pallet_convert_free_strings (paths);
        return -1;
      }
    Pallet_convert_free_strings (paths);
  }
  return 0;
}

/* The line of FILE whose first field is SPEC, for the report (Augeas
 * does not say); the N-th such line for the N-th entry.  0: not found. */
static unsigned
line_of (guestfs_h *g, const char *file, const char *spec, size_t nth)
{
  char **lines = guestfs_read_lines (g, file);
  unsigned found = 0;
  for (size_t i = 0; lines && lines[i] && !found; i++) {
    const char *p = lines[i] + strspn (lines[i], " \t");
    size_t n = strcspn (p, " \t");
    if (n == strlen (spec) && strncmp (p, spec, n) == 0 && nth-- == 0)
      found = (unsigned) i + 1;
  }
  Pallet_convert_free_strings (lines);
  return found;
}

/* fstab's spec and crypttab's device, through Augeas (changes kept in
 * its tree until aug_save). */
static int
scan_augeas (struct fixup *f, const char *file, const char *entries, const char *field,
             int *changed)
{
  char pat[128];
  snprintf (pat, sizeof pat, "/files%s/*[%s]", file, field);
  char **m = guestfs_aug_match (f->g, pat);
  f->file = file;
  f->as_path = 0;
  f->partuuid_first = strcmp (entries, "crypttab") == 0;
  for (size_t i = 0; m && m[i]; i++) {
    char node[512], tnode[512];
    snprintf (node, sizeof node, "%s/%s", m[i], field);
    snprintf (tnode, sizeof tnode, "%s/vfstype", m[i]);
    char *spec = guestfs_aug_get (f->g, node);
    struct Pallet_convert_devname d;
    if (spec && Pallet_convert_parse_devname (spec, &d) == strlen (spec)) {
      char *type = strcmp (field, "spec") == 0 ? guestfs_aug_get (f->g, tnode) : NULL;
      size_t nth = 0;
      for (size_t k = 0; k < i; k++) { /* same spec earlier: a later line */
        char prev[512];
        snprintf (prev, sizeof prev, "%s/%s", m[k], field);
        char *p = guestfs_aug_get (f->g, prev);
        nth += p && strcmp (p, spec) == 0;
        free (p);
      }
      f->fstype = type;
      char *to = resolve (f, line_of (f->g, file, spec, nth), spec, &d);
      f->fstype = NULL;
      if (to && guestfs_aug_set (f->g, node, to) == 0)
        *changed = 1;
      free (to);
      free (type);
    }
    free (spec);
  }
  Pallet_convert_free_strings (m);
  f->partuuid_first = 0;
  return f->nomem ? -1 : 0;
}

/* ---- mounting the guest --------------------------------------------- */

/* The appliance device of an fstab spec: UUID=, LABEL=, PARTUUID=, an
 * EC2 name (resolved quietly: the fstab scan reports it) or a path. */
static char *
spec_dev (struct fixup *f, const char *spec)
{
  static const struct {
    const char *tag;
    size_t offset;
  } ids[] = {
    { "UUID=", offsetof (struct blk, uuid) },
    { "LABEL=", offsetof (struct blk, label) },
    { "PARTUUID=", offsetof (struct blk, partuuid) },
  };
  struct Pallet_convert_devname d;
  for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
    if (strncmp (spec, ids[k].tag, strlen (ids[k].tag)) == 0)
      for (size_t i = 0; i < f->nblk; i++) {
        const char *v = *(char **) ((char *) &f->blk[i] + ids[k].offset);
        if (v && strcasecmp (v, spec + strlen (ids[k].tag)) == 0)
          return strdup (f->blk[i].dev);
      }
  if (Pallet_convert_parse_devname (spec, &d) == strlen (spec)) {
    FILE *saved = f->findings;
    size_t nf = f->nfindings;
    char *buf = NULL, *dev = NULL;
    size_t blen = 0;
    if ((f->findings = open_memstream (&buf, &blen)) != NULL) {
      dev = appliance_dev (f, 0, spec, &d);
      fclose (f->findings);
    }
    free (buf);
    f->findings = saved;
    f->nfindings = nf;
    return dev;
  }
  return strncmp (spec, "/dev/", 5) == 0 ? strdup (spec) : NULL;
}

/* Mounts /boot and /boot/efi as the guest's fstab (in Augeas) says, so
 * grub.cfg and BLS entries there are seen; a failure only hides them. */
static void
mount_boot (struct fixup *f, int rw)
{
  static const char *const wanted[] = { "/boot", "/boot/efi", NULL };
  for (size_t w = 0; wanted[w]; w++) {
    char pat[128];
    snprintf (pat, sizeof pat, "/files/etc/fstab/*[file = '%s']/spec", wanted[w]);
    char **m = guestfs_aug_match (f->g, pat);
    char *spec = m && m[0] ? guestfs_aug_get (f->g, m[0]) : NULL;
    char *dev = spec ? spec_dev (f, spec) : NULL;
    if (dev && guestfs_is_dir (f->g, wanted[w]) == 1)
      rw ? guestfs_mount (f->g, dev, wanted[w]) : guestfs_mount_ro (f->g, dev, wanted[w]);
    free (dev);
    free (spec);
    Pallet_convert_free_strings (m);
  }
}

static guestfs_h *
open_rw (const char *const *disks, size_t ndisks, const struct Pallet_convert_fixup_options *o,
         const char *who, char **message, enum Pallet_convert_error *err)
{
  guestfs_h *g = guestfs_create ();
  const char *fmt = o->disk_format ? o->disk_format : "raw";
  if (g == NULL) {
    *err = Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                                "fixing device names on %s: cannot create a libguestfs handle; "
                                "fix: install libguestfs (scripts/install-deps.sh)",
                                who);
    return NULL;
  }
  guestfs_set_error_handler (g, NULL, NULL);
  if (o->force_tcg) {
    char *settings[] = { (char *) "force_tcg", NULL };
    guestfs_set_backend (g, "direct");
    guestfs_set_backend_settings (g, settings);
  }
  for (size_t i = 0; i < ndisks; i++)
    if (guestfs_add_drive_opts (g, disks[i], GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt, -1) == -1) {
      *err = Pallet_convert_fail (message, PALLET_CONVERT_E_DISK,
                                  "fixing device names: cannot open disk %s: %s; fix: check the "
                                  "path and format (%s)",
                                  disks[i], guestfs_last_error (g), fmt);
      guestfs_close (g);
      return NULL;
    }
  if (guestfs_launch (g) == -1) {
    *err = Pallet_convert_fail (message, PALLET_CONVERT_E_TOOL,
                                "fixing device names on %s: cannot start the libguestfs "
                                "appliance: %s; fix: run libguestfs-test-tool; on hosts "
                                "without KVM set force_tcg",
                                who, guestfs_last_error (g));
    guestfs_close (g);
    return NULL;
  }
  return g;
}

/* Finds every name on ROOT; with APPLY (mounted read-write) also writes
 * them: Augeas, then the texts.  The first pass is read-only so that a
 * refused or clean guest's disks are not touched at all. */
static enum Pallet_convert_error
fix_guest (struct fixup *f, const char *root, int apply, const char *who, char **message)
{
  struct edit *edits = NULL;
  size_t nedits = 0;
  int aug_changed = 0;
  enum Pallet_convert_error e = PALLET_CONVERT_OK;

  if ((apply ? guestfs_mount (f->g, root, "/") : guestfs_mount_ro (f->g, root, "/")) == -1)
    return Pallet_convert_fail (message, PALLET_CONVERT_E_FAILED,
                                "fixing device names on %s: cannot mount the root %s: %s; fix: "
                                "check the guest filesystem (fsck)",
                                who, root, guestfs_last_error (f->g));
  if (guestfs_aug_init (f->g, "/", AUG_NO_LOAD) == -1
      || guestfs_aug_transform (f->g, "Fstab", "/etc/fstab", -1) == -1
      || guestfs_aug_transform (f->g, "Crypttab", "/etc/crypttab", -1) == -1
      || guestfs_aug_load (f->g) == -1) {
    e = Pallet_convert_fail (message, PALLET_CONVERT_E_FAILED,
                             "fixing device names on %s: Augeas: %s; fix: check the guest's "
                             "/etc/fstab and /etc/crypttab parse",
                             who, guestfs_last_error (f->g));
    guestfs_umount_all (f->g);
    return e;
  }
  mount_boot (f, apply);
  if (scan_augeas (f, "/etc/fstab", "fstab", "spec", &aug_changed) < 0
      || scan_augeas (f, "/etc/crypttab", "crypttab", "device", &aug_changed) < 0
      || scan_text_files (f, &edits, &nedits) < 0 || f->nomem) {
    e = Pallet_convert_fail (message, PALLET_CONVERT_E_NOMEM, "fixing device names: out of memory");
    goto out;
  }
  fflush (f->findings);
  if (f->nfindings) {
    e = Pallet_convert_fail (
        message, PALLET_CONVERT_E_DEVICE_NAME,
        "converting %s: the guest names %zu device%s that cannot be resolved to one filesystem "
        "(nothing was changed): %s; fix: name them by UUID= or LABEL= in the guest (or correct "
        "the instance's block-device mapping), take a new snapshot and retry, or set "
        "fix-device-names: false to convert without this step",
        who, f->nfindings, f->nfindings == 1 ? "" : "s", f->findings_buf);
    goto out;
  }
  if (!apply)
    goto out;
  if (aug_changed && guestfs_aug_save (f->g) == -1) {
    e = Pallet_convert_fail (message, PALLET_CONVERT_E_FAILED,
                             "fixing device names on %s: saving /etc/fstab or /etc/crypttab: %s; "
                             "fix: check the guest filesystem is not read-only or full",
                             who, guestfs_last_error (f->g));
    goto out;
  }
  for (size_t i = 0; i < nedits; i++)
    if (guestfs_write (f->g, edits[i].path, edits[i].text, strlen (edits[i].text)) == -1) {
      e = Pallet_convert_fail (message, PALLET_CONVERT_E_GUEST_SPACE,
                               "fixing device names on %s: writing %s: %s; fix: free space on "
                               "that guest filesystem",
                               who, edits[i].path, guestfs_last_error (f->g));
      goto out;
    }
out:
  for (size_t i = 0; i < nedits; i++) {
    free (edits[i].path);
    free (edits[i].text);
  }
  free (edits);
  guestfs_aug_close (f->g);
  if (guestfs_umount_all (f->g) == -1 && e == PALLET_CONVERT_OK)
    e = Pallet_convert_fail (message, PALLET_CONVERT_E_IO,
                             "fixing device names on %s: unmounting: %s; fix: retry", who,
                             guestfs_last_error (f->g));
  return e;
}

enum Pallet_convert_error
Pallet_convert_fixup (const char *const *disks, size_t ndisks,
                      const struct Pallet_convert_fixup_options *opts,
                      struct Pallet_convert_rewrite **rewrites, size_t *nrewrites, char **message)
{
  static const struct Pallet_convert_fixup_options defaults;
  const struct Pallet_convert_fixup_options *o = opts ? opts : &defaults;
  struct fixup f = { .o = o, .ndisks = ndisks };
  enum Pallet_convert_error e = PALLET_CONVERT_OK;
  char **roots = NULL;

  *rewrites = NULL;
  *nrewrites = 0;
  if (message)
    *message = NULL;
  if (disks == NULL || ndisks == 0)
    return Pallet_convert_fail (message, PALLET_CONVERT_E_INVALID,
                                "fixing device names: no disks given; fix: pass the disks");
  char *who = Pallet_convert_join_disks (disks, ndisks);
  f.findings = open_memstream (&f.findings_buf, &f.findings_len);
  if (who == NULL || f.findings == NULL) {
    free (who);
    if (f.findings)
      fclose (f.findings);
    free (f.findings_buf);
    return PALLET_CONVERT_E_NOMEM;
  }
  f.g = open_rw (disks, ndisks, o, who, message, &e);
  if (f.g == NULL)
    goto out;
  f.devices = guestfs_list_devices (f.g);
  roots = guestfs_inspect_os (f.g);
  if (f.devices == NULL || roots == NULL || roots[0] == NULL)
    goto out; /* no OS: virt-v2v reports it */
  if (load_blkid (&f) < 0) {
    e = PALLET_CONVERT_E_NOMEM;
    goto out;
  }
  e = fix_guest (&f, roots[0], 0, who, message);
  if (e == PALLET_CONVERT_OK && f.nrw > 0 && !o->dry_run) {
    Pallet_convert_rewrites_free (f.rw, f.nrw);
    f.rw = NULL;
    f.nrw = 0;
    e = fix_guest (&f, roots[0], 1, who, message);
  }
  if (e == PALLET_CONVERT_OK && guestfs_shutdown (f.g) == -1)
    e = Pallet_convert_fail (message, PALLET_CONVERT_E_IO,
                             "fixing device names on %s: the appliance did not shut down "
                             "cleanly: %s; fix: retry",
                             who, guestfs_last_error (f.g));
out:
  if (f.g)
    guestfs_close (f.g);
  Pallet_convert_free_strings (roots);
  Pallet_convert_free_strings (f.devices);
  for (size_t i = 0; i < f.nblk; i++) {
    free (f.blk[i].dev);
    free (f.blk[i].type);
    free (f.blk[i].uuid);
    free (f.blk[i].label);
    free (f.blk[i].partuuid);
  }
  free (f.blk);
  fclose (f.findings);
  free (f.findings_buf);
  free (who);
  if (e == PALLET_CONVERT_OK) {
    *rewrites = f.rw;
    *nrewrites = f.nrw;
  }
  else
    Pallet_convert_rewrites_free (f.rw, f.nrw);
  return e;
}

void
Pallet_convert_rewrites_free (struct Pallet_convert_rewrite *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) {
    free (v[i].file);
    free (v[i].from);
    free (v[i].to);
  }
  free (v);
}

json_t *
Pallet_convert_rewrites_json (const struct Pallet_convert_rewrite *v, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new (a,
                               json_pack ("{s:s,s:I,s:s,s:s}", "file", v[i].file, "line",
                                          (json_int_t) v[i].line, "from", v[i].from, "to", v[i].to))
        == -1) {
      json_decref (a);
      return NULL;
    }
  return a;
}
