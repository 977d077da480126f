/* SPDX-License-Identifier: Apache-2.0 */
/* Inspection facts beyond libguestfs's inspect_get_*: the guest's newest
 * kernel, its filesystems and mount points, and whether it could already
 * boot on virtio before conversion (the kernel has virtio_blk and
 * virtio_net, the initramfs carries virtio_blk).  Read-only mounts on the
 * inspection handle: no second appliance. */
#include <stdlib.h>
#include <string.h>

#include "convert-guestfs.h"
#include <jansson.h>

#include "pallet-convert.h"
#include "convert-internal.h"

/* [{device, type, mountpoint|null}] of every filesystem libguestfs finds. */
static json_t *
filesystems (guestfs_h *g, const char *root)
{
  char **fs = guestfs_list_filesystems (g);
  char **mps = guestfs_inspect_get_mountpoints (g, root);
  json_t *a = json_array ();

  for (size_t i = 0; a && fs && fs[i] && fs[i + 1]; i += 2) {
    const char *mp = NULL;
    if (strcmp (fs[i + 1], "unknown") == 0)
      continue;
    for (size_t k = 0; mps && mps[k] && mps[k + 1]; k += 2)
      if (strcmp (mps[k + 1], fs[i]) == 0)
        mp = mps[k];
    json_array_append_new (
        a, json_pack ("{s:s, s:s, s:s?}", "device", fs[i], "type", fs[i + 1], "mountpoint", mp));
  }
  Pallet_convert_free_strings (fs);
  Pallet_convert_free_strings (mps);
  return a;
}

/* {kernel: bool, initramfs: bool|null}: virtio drivers before conversion. */
static json_t *
virtio_before (guestfs_h *g, const char *kver)
{
  char path[4096], **files, **builtin, **initrd_files = NULL;
  char *initrd;
  const char *how = NULL;
  int blk, net, in_initrd = -1;

  snprintf (path, sizeof path, "/lib/modules/%s", kver);
  files = guestfs_find (g, path);
  builtin = Pallet_convert_read_builtin (g, kver);
  blk = Pallet_convert_list_has_module (files, "virtio_blk")
        || Pallet_convert_list_has_module (builtin, "virtio_blk");
  net = Pallet_convert_list_has_module (files, "virtio_net")
        || Pallet_convert_list_has_module (builtin, "virtio_net");
  initrd = Pallet_convert_find_initramfs (g, kver);
  if (initrd && (initrd_files = Pallet_convert_list_initramfs (g, initrd, &how)) != NULL)
    in_initrd = Pallet_convert_list_has_module (initrd_files, "virtio_blk")
                || Pallet_convert_list_has_module (builtin, "virtio_blk");
  free (initrd);
  Pallet_convert_free_strings (files);
  Pallet_convert_free_strings (builtin);
  Pallet_convert_free_strings (initrd_files);
  return json_pack ("{s:b, s:o}", "kernel", blk && net, "initramfs",
                    in_initrd < 0 ? json_null () : json_boolean (in_initrd));
}

int
Pallet_convert_guest_facts (guestfs_h *g, const char *root, json_t *o)
{
  json_t *fs = filesystems (g, root);
  char *kver = NULL;
  int e = 0;

  e |= json_object_set_new (o, "filesystems", fs ? fs : json_array ());
  if (Pallet_convert_mount_guest (g, root) == 0)
    kver = Pallet_convert_newest_kernel (g);
  e |= json_object_set_new (o, "kernel", kver ? json_string (kver) : json_null ());
  e |= json_object_set_new (o, "virtioBefore", kver ? virtio_before (g, kver) : json_null ());
  free (kver);
  guestfs_umount_all (g);
  return e ? -1 : 0;
}
