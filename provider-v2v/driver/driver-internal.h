/* SPDX-License-Identifier: Apache-2.0 */
/* pallet_v2v_driver internals shared by its files. */
#ifndef PALLET_V2V_DRIVER_INTERNAL_H
#define PALLET_V2V_DRIVER_INTERNAL_H
#include <sys/types.h>

/* The run journal: virt-v2v's pid and start time while it runs. */
void Pallet_v2v_journal_started (const char *dir, pid_t pid);
void Pallet_v2v_journal_ended (const char *dir);

#endif
