/* SPDX-License-Identifier: Apache-2.0 */
/* State directory helpers (internal). */
#ifndef PALLET_STATE_H
#define PALLET_STATE_H

#include <jansson.h>

#include "internal.h"

PALLET_HIDDEN int Pallet_mkdirs (const char *dir);
/* write temp + fsync + rename + fsync dir, mode 0600. */
PALLET_HIDDEN int Pallet_write_json_file (const char *path, const json_t *j);
PALLET_HIDDEN json_t *Pallet_read_json_file (const char *path);
PALLET_HIDDEN char *Pallet_now_iso (void);
PALLET_HIDDEN char *Pallet_uuid4 (void);
PALLET_HIDDEN char *Pallet_vm_state_path (const char *dir, const char *id);
/* fd holding an exclusive flock, -1 error, -2 busy. */
PALLET_HIDDEN int Pallet_lock_dir (const char *dir);
PALLET_HIDDEN char *Pallet_cancel_marker (const char *dir);
PALLET_HIDDEN json_t *Pallet_state_load_all (const char *dir);

#endif
