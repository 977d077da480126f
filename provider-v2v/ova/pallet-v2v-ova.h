/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_ova: checks an OVA before virt-v2v unpacks it.  virt-v2v
 * extracts the archive with tar; a member named ../x or /x, or a link,
 * could write outside its temporary directory.  Read with libarchive. */
#ifndef PALLET_V2V_OVA_H
#define PALLET_V2V_OVA_H

#include <jansson.h>

/* Checks the .ova (tar or zip) or OVA directory at path.  PALLET_OK and
 * *members (new array of {"name", "size"}), or a pallet_status with *err
 * naming the member and the problem: an absolute name, a ".." component,
 * a link, a device or other non-regular member, no .ovf or more than one,
 * a file that is not an archive. */
int pallet_v2v_ova_check (const char *path, json_t **members, char **err);

#endif
