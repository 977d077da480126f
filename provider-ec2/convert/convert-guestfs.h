/* SPDX-License-Identifier: Apache-2.0 */
/* libguestfs, loaded on first use.  It and the ~25 libraries it pulls in
 * (libvirt, GLib, libtirpc...) cost a provider load most of its time, and
 * only inspection and verification need them: the sources include this
 * header instead of <guestfs.h>, so each guestfs_* call goes through a
 * pointer that Pallet_guestfs_create() fills (dlopen) the first time. */
#ifndef PALLET_CONVERT_GUESTFS_H
#define PALLET_CONVERT_GUESTFS_H

#include <guestfs.h>

/* Every libguestfs function called, but guestfs_create. */
#define PALLET_GUESTFS_FUNCS(X)              \
  X (guestfs_aug_close)                      \
  X (guestfs_aug_get)                        \
  X (guestfs_aug_init)                       \
  X (guestfs_aug_load)                       \
  X (guestfs_aug_match)                      \
  X (guestfs_aug_save)                       \
  X (guestfs_aug_set)                        \
  X (guestfs_aug_transform)                  \
  X (guestfs_blkid)                          \
  X (guestfs_glob_expand)                    \
  X (guestfs_list_devices)                   \
  X (guestfs_lvs)                            \
  X (guestfs_mount)                          \
  X (guestfs_umount_all)                     \
  X (guestfs_read_file)                      \
  X (guestfs_write)                          \
  X (guestfs_add_drive_opts)                 \
  X (guestfs_close)                          \
  X (guestfs_command_lines)                  \
  X (guestfs_find)                           \
  X (guestfs_initrd_list)                    \
  X (guestfs_inspect_get_arch)               \
  X (guestfs_inspect_get_distro)             \
  X (guestfs_inspect_get_hostname)           \
  X (guestfs_inspect_get_major_version)      \
  X (guestfs_inspect_get_minor_version)      \
  X (guestfs_inspect_get_mountpoints)        \
  X (guestfs_inspect_get_osinfo)             \
  X (guestfs_inspect_get_package_format)     \
  X (guestfs_inspect_get_package_management) \
  X (guestfs_inspect_get_product_name)       \
  X (guestfs_inspect_get_type)               \
  X (guestfs_inspect_os)                     \
  X (guestfs_is_dir)                         \
  X (guestfs_is_file_opts)                   \
  X (guestfs_last_error)                     \
  X (guestfs_launch)                         \
  X (guestfs_list_filesystems)               \
  X (guestfs_list_partitions)                \
  X (guestfs_ls)                             \
  X (guestfs_mount_ro)                       \
  X (guestfs_part_get_gpt_type)              \
  X (guestfs_part_get_mbr_id)                \
  X (guestfs_part_get_parttype)              \
  X (guestfs_part_to_dev)                    \
  X (guestfs_part_to_partnum)                \
  X (guestfs_read_lines)                     \
  X (guestfs_set_backend)                    \
  X (guestfs_set_backend_settings)           \
  X (guestfs_set_error_handler)              \
  X (guestfs_shutdown)                       \
  X (guestfs_vfs_type)

struct Pallet_guestfs {
#define PALLET_GUESTFS_PTR(f) __typeof__ (f) *f;
  PALLET_GUESTFS_FUNCS (PALLET_GUESTFS_PTR)
#undef PALLET_GUESTFS_PTR
  __typeof__ (guestfs_create) *create;
};
extern struct Pallet_guestfs Pallet_guestfs;

/* Loads libguestfs (once, thread-safe) and creates a handle; NULL when
 * it cannot be loaded, as guestfs_create's NULL: callers say "install
 * libguestfs".  Every other call needs a handle, so it is loaded by then. */
guestfs_h *Pallet_guestfs_create (void);
/* Why the last load failed (dlerror's words), or NULL. */
const char *Pallet_guestfs_load_error (void);

#ifndef PALLET_GUESTFS_LOADER
#define guestfs_create                     Pallet_guestfs_create
#define guestfs_aug_close                  (*Pallet_guestfs.guestfs_aug_close)
#define guestfs_aug_get                    (*Pallet_guestfs.guestfs_aug_get)
#define guestfs_aug_init                   (*Pallet_guestfs.guestfs_aug_init)
#define guestfs_aug_load                   (*Pallet_guestfs.guestfs_aug_load)
#define guestfs_aug_match                  (*Pallet_guestfs.guestfs_aug_match)
#define guestfs_aug_save                   (*Pallet_guestfs.guestfs_aug_save)
#define guestfs_aug_set                    (*Pallet_guestfs.guestfs_aug_set)
#define guestfs_aug_transform              (*Pallet_guestfs.guestfs_aug_transform)
#define guestfs_blkid                      (*Pallet_guestfs.guestfs_blkid)
#define guestfs_glob_expand                (*Pallet_guestfs.guestfs_glob_expand)
#define guestfs_list_devices               (*Pallet_guestfs.guestfs_list_devices)
#define guestfs_lvs                        (*Pallet_guestfs.guestfs_lvs)
#define guestfs_mount                      (*Pallet_guestfs.guestfs_mount)
#define guestfs_umount_all                 (*Pallet_guestfs.guestfs_umount_all)
#define guestfs_read_file                  (*Pallet_guestfs.guestfs_read_file)
#define guestfs_write                      (*Pallet_guestfs.guestfs_write)
#define guestfs_add_drive_opts             (*Pallet_guestfs.guestfs_add_drive_opts)
#define guestfs_close                      (*Pallet_guestfs.guestfs_close)
#define guestfs_command_lines              (*Pallet_guestfs.guestfs_command_lines)
#define guestfs_find                       (*Pallet_guestfs.guestfs_find)
#define guestfs_initrd_list                (*Pallet_guestfs.guestfs_initrd_list)
#define guestfs_inspect_get_arch           (*Pallet_guestfs.guestfs_inspect_get_arch)
#define guestfs_inspect_get_distro         (*Pallet_guestfs.guestfs_inspect_get_distro)
#define guestfs_inspect_get_hostname       (*Pallet_guestfs.guestfs_inspect_get_hostname)
#define guestfs_inspect_get_major_version  (*Pallet_guestfs.guestfs_inspect_get_major_version)
#define guestfs_inspect_get_minor_version  (*Pallet_guestfs.guestfs_inspect_get_minor_version)
#define guestfs_inspect_get_mountpoints    (*Pallet_guestfs.guestfs_inspect_get_mountpoints)
#define guestfs_inspect_get_osinfo         (*Pallet_guestfs.guestfs_inspect_get_osinfo)
#define guestfs_inspect_get_package_format (*Pallet_guestfs.guestfs_inspect_get_package_format)
#define guestfs_inspect_get_package_management \
  (*Pallet_guestfs.guestfs_inspect_get_package_management)
#define guestfs_inspect_get_product_name (*Pallet_guestfs.guestfs_inspect_get_product_name)
#define guestfs_inspect_get_type         (*Pallet_guestfs.guestfs_inspect_get_type)
#define guestfs_inspect_os               (*Pallet_guestfs.guestfs_inspect_os)
#define guestfs_is_dir                   (*Pallet_guestfs.guestfs_is_dir)
#define guestfs_is_file_opts             (*Pallet_guestfs.guestfs_is_file_opts)
#define guestfs_last_error               (*Pallet_guestfs.guestfs_last_error)
#define guestfs_launch                   (*Pallet_guestfs.guestfs_launch)
#define guestfs_list_filesystems         (*Pallet_guestfs.guestfs_list_filesystems)
#define guestfs_list_partitions          (*Pallet_guestfs.guestfs_list_partitions)
#define guestfs_ls                       (*Pallet_guestfs.guestfs_ls)
#define guestfs_mount_ro                 (*Pallet_guestfs.guestfs_mount_ro)
#define guestfs_part_get_gpt_type        (*Pallet_guestfs.guestfs_part_get_gpt_type)
#define guestfs_part_get_mbr_id          (*Pallet_guestfs.guestfs_part_get_mbr_id)
#define guestfs_part_get_parttype        (*Pallet_guestfs.guestfs_part_get_parttype)
#define guestfs_part_to_dev              (*Pallet_guestfs.guestfs_part_to_dev)
#define guestfs_part_to_partnum          (*Pallet_guestfs.guestfs_part_to_partnum)
#define guestfs_read_lines               (*Pallet_guestfs.guestfs_read_lines)
#define guestfs_set_backend              (*Pallet_guestfs.guestfs_set_backend)
#define guestfs_set_backend_settings     (*Pallet_guestfs.guestfs_set_backend_settings)
#define guestfs_set_error_handler        (*Pallet_guestfs.guestfs_set_error_handler)
#define guestfs_shutdown                 (*Pallet_guestfs.guestfs_shutdown)
#define guestfs_vfs_type                 (*Pallet_guestfs.guestfs_vfs_type)
#endif

#endif
