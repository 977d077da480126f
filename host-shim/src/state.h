/* State directory helpers (internal). */
#ifndef PALLET_STATE_H
#define PALLET_STATE_H

#include <jansson.h>

#include "internal.h"

PALLET_HIDDEN int pallet__mkdirs (const char *dir);
/* write temp + fsync + rename + fsync dir, mode 0600. */
PALLET_HIDDEN int pallet__write_json_file (const char *path, const json_t *j);
PALLET_HIDDEN json_t *pallet__read_json_file (const char *path);
PALLET_HIDDEN char *pallet__now_iso (void);
PALLET_HIDDEN char *pallet__uuid4 (void);
PALLET_HIDDEN char *pallet__vm_state_path (const char *dir, const char *id);
/* fd holding an exclusive flock, -1 error, -2 busy. */
PALLET_HIDDEN int pallet__lock_dir (const char *dir);
PALLET_HIDDEN char *pallet__cancel_marker (const char *dir);
PALLET_HIDDEN json_t *pallet__state_load_all (const char *dir);

#endif
