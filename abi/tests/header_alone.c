/* SPDX-License-Identifier: BSD-3-Clause */
/* Compiled once per public header with -std=c11 -pedantic -Werror. */
#include PALLET_HEADER_UNDER_TEST
#ifdef bool
#error "a public header leaked <stdbool.h>"
#endif
int
main (void)
{
  return 0;
}
