/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of pallet_plan; not installed. */
#ifndef PALLET_PLAN_INTERNAL_H
#define PALLET_PLAN_INTERNAL_H

#include <jansson.h>

/* Sets *errmsg (if errmsg and not already set) to a formatted message. */
void Pallet_plan_set_error (char **errmsg, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* "a mapping", "a sequence", "a string", ... in YAML's words. */
const char *Pallet_plan_type_name (const json_t *v);

#endif
