/* SPDX-License-Identifier: Apache-2.0 */
/* Loads the provider named on the command line through libpallet-host
 * and dumps its vtable: proves <pallet/host.h> and -lpallet-host work
 * out of tree. */
#include <stdio.h>

#include <pallet/host.h>

int
main (int argc, char **argv)
{
  struct pallet_module *m;
  int r;

  if (argc != 2) {
    fprintf (stderr, "usage: host-load PROVIDER.so\n");
    return 2;
  }
  r = pallet_module_load (argv[1], 0, &m);
  if (r != PALLET_OK) {
    fprintf (stderr, "host-load: cannot load %s: %s: %s\n", argv[1], pallet_status_name (r),
             pallet_last_error ());
    return 1;
  }
  pallet_module_dump (m, stdout);
  pallet_module_free (m);
  return 0;
}
