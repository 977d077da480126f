/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-provider-ova.so: the "ova" Provider type (see v2v.h). */
#include "v2v.h"

static const struct pallet_setting settings[] = { V2V_COMMON_SETTINGS, { NULL, 0, NULL, NULL } };

V2V_MODULE ("ova", V2V_OVA, "OVA files -> KubeVirt with virt-v2v", settings);
