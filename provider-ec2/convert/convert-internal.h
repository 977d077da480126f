/* SPDX-License-Identifier: Apache-2.0 */
/* Internal helpers shared by the pallet_convert sources. */
#ifndef PALLET_CONVERT_INTERNAL_H
#define PALLET_CONVERT_INTERNAL_H

#include <stddef.h>
#include "pallet-convert.h"

/* "a, b and c" style list of disk paths ("(no disks)" when empty).
 * NULL on ENOMEM. */
char *Pallet_convert_join_disks (const char *const *disks, size_t ndisks);

/* A copy of TEXT with each run of whitespace made one space, trimmed,
 * cut to at most MAX bytes (with "..." appended).  NULL on ENOMEM. */
char *Pallet_convert_condense (const char *text, size_t max);

/* Frees a NULL-terminated array of strings (libguestfs returns them). */
void Pallet_convert_free_strings (char **v);

/* Sets *MESSAGE from a printf format and returns ERR.  ENOMEM leaves
 * *MESSAGE NULL. */
enum Pallet_convert_error Pallet_convert_fail (char **message, enum Pallet_convert_error err,
                                               const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* virt-customize's command line for the overlays (FORMAT) with the
 * first-boot and run scripts of O; the strings are borrowed, free only the
 * array.  NULL with *MESSAGE set when a script is not a readable file
 * (NULL *MESSAGE: out of memory). */
char **Pallet_convert_customize_argv (const char *prog, char *const *overlays, size_t n,
                                      const char *format, const struct Pallet_convert_options *o,
                                      char **message);

/* The index of the first error rule TEXT matches (rules earlier in the
 * table are more specific); (size_t) -1 if none. */
size_t Pallet_convert_error_rule (const char *text);
/* Shared by verification and inspection (convert-verify.c); G is a
 * launched libguestfs handle (struct guestfs_h). */
struct guestfs_h;
/* The newest kernel version under /lib/modules (one with /boot/vmlinuz-
 * preferred), malloc'd, or NULL. */
char *Pallet_convert_newest_kernel (struct guestfs_h *g);
/* /boot/initrd.img-KVER or another usual name, malloc'd, or NULL. */
char *Pallet_convert_find_initramfs (struct guestfs_h *g, const char *kver);
/* INITRD's file list by the guest's own lsinitramfs/lsinitrd; *HOW says
 * which tool. */
char **Pallet_convert_list_initramfs (struct guestfs_h *g, const char *initrd, const char **how);
/* Lines of modules.builtin of KVER (an empty list when none). */
char **Pallet_convert_read_builtin (struct guestfs_h *g, const char *kver);
/* Whether LIST (paths, or ls -l lines) holds module MOD (.ko, any compression). */
int Pallet_convert_list_has_module (char *const *list, const char *mod);
/* Mounts ROOT's filesystems read-only at their mount points. */
int Pallet_convert_mount_guest (struct guestfs_h *g, const char *root);
/* Adds kernel, filesystems and virtioBefore to inspection object O
 * (convert-facts.c); -1 on ENOMEM. */
int Pallet_convert_guest_facts (struct guestfs_h *g, const char *root, json_t *o);

#endif
