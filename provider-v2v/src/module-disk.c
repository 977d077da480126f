/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-provider-disk.so: the "disk" Provider type (see v2v.h). */
#include "v2v.h"

static const struct pallet_setting settings[] = { V2V_COMMON_SETTINGS, { NULL, 0, NULL, NULL } };

V2V_MODULE ("disk", V2V_DISK, "local disk images -> KubeVirt with virt-v2v", settings);
