/* SPDX-License-Identifier: Apache-2.0 */
/* convert's first-boot scripts and boot verification (verify_boot.c). */
#ifndef EC2_VERIFY_BOOT_H
#define EC2_VERIFY_BOOT_H

#include <stddef.h>
#include <jansson.h>

struct ec2;

#define EC2_MAX_SCRIPTS 64

/* The scripts of one conversion: first-boot ones in run order, and the
 * ones virt-customize runs during conversion.  ConfigMap scripts are
 * written to DIR (removed by ec2_scripts_free). */
struct ec2_scripts {
  char *path[EC2_MAX_SCRIPTS];
  int tmp[EC2_MAX_SCRIPTS]; /* path[i] is ours to delete */
  size_t n;
  char *run[EC2_MAX_SCRIPTS];
  size_t nrun;
  char *dir;
};

/* The plan's pallet.dev/ annotations (and near misses of the prefix):
 * -1 with WHY naming the first that is not a plan option, and the
 * nearest one. */
int ec2_annotations_check (const json_t *plan, char *why, size_t len);

/* verify-boot (PALLET_CONVERT_BOOT_*) and verify-boot-timeout (seconds),
 * from the plan's pallet.dev/ annotations or the settings; -1 with WHY
 * for a bad value (validate and convert report it). */
int ec2_boot_settings (struct ec2 *s, const json_t *plan, int *mode, unsigned *timeout, char *why,
                       size_t len);

/* Checks the plan's customizationScripts keys and the firstboot-scripts
 * files without writing anything; -1 with WHY for the first bad one.
 * *COUNT (if not NULL) is the number of scripts. */
int ec2_scripts_check (struct ec2 *s, const json_t *plan, size_t *count, char *why, size_t len);

/* The plan's customizationScripts and the firstboot-scripts option;
 * reports and returns an error for a bad name or file. */
int ec2_scripts_collect (struct ec2 *s, const json_t *plan, const char *vm, const char *work,
                         struct ec2_scripts *sc);
void ec2_scripts_free (struct ec2_scripts *sc);
/* {"firstboot": [names], "run": [names]} for the state. */
json_t *ec2_scripts_json (const struct ec2_scripts *sc);

/* Boots DISKS and records state.bootVerification; a guest that did not
 * come up fails the op unless MODE is warn. */
int ec2_verify_boot (struct ec2 *s, const char *vm, const char **disks, size_t n, int mode,
                     unsigned timeout, int compat, json_t *state);

/* pallet.dev/ annotations on the VirtualMachine VM from the state's
 * inspection and boot check (os, kernel, firmware, root, virtio-before,
 * boot-verified). */
void ec2_annotate_guest (json_t *vm, const json_t *state);
/* The boot check the host runs in cluster mode, as annotations on the
 * VirtualMachine VM: pallet.dev/verify-boot (true|false|warn),
 * pallet.dev/verify-boot-timeout and, when set, pallet.dev/boot-pattern. */
void ec2_annotate_boot (struct ec2 *s, json_t *vm, const json_t *plan);

#endif
