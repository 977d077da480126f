/* SPDX-License-Identifier: Apache-2.0 */
/* libguestfs on first use (convert-guestfs.h). */
#define PALLET_GUESTFS_LOADER
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "convert-guestfs.h"

struct Pallet_guestfs Pallet_guestfs;
static void *lib;
static char load_error[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
load (void)
{
  lib = dlopen ("libguestfs.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf (load_error, sizeof load_error, "%s", dlerror ());
    return;
  }
  const char *missing = NULL;
#define PALLET_GUESTFS_SYM(f)                                        \
  if (!missing && !(*(void **) &Pallet_guestfs.f = dlsym (lib, #f))) \
    missing = #f;
  PALLET_GUESTFS_FUNCS (PALLET_GUESTFS_SYM)
#undef PALLET_GUESTFS_SYM
  if (!missing && !(*(void **) &Pallet_guestfs.create = dlsym (lib, "guestfs_create")))
    missing = "guestfs_create";
  if (missing) {
    snprintf (load_error, sizeof load_error, "libguestfs.so.0 has no %s", missing);
    memset (&Pallet_guestfs, 0, sizeof Pallet_guestfs);
    dlclose (lib);
    lib = NULL;
  }
}

guestfs_h *
Pallet_guestfs_create (void)
{
  pthread_once (&once, load);
  return lib ? Pallet_guestfs.create () : NULL;
}

const char *
Pallet_guestfs_load_error (void)
{
  return load_error[0] ? load_error : NULL;
}

/* Unloaded with the provider, as a linked libguestfs was. */
__attribute__ ((destructor)) static void
unload (void)
{
  if (lib)
    dlclose (lib);
}
