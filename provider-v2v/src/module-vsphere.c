/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-provider-vsphere.so: the "vsphere" Provider type (see v2v.h). */
#include "v2v.h"

static const struct pallet_setting settings[] = { V2V_COMMON_SETTINGS,
                                                  V2V_VSPHERE_SETTINGS,
                                                  { NULL, 0, NULL, NULL } };

V2V_MODULE ("vsphere", V2V_VSPHERE, "VMware vCenter/ESXi -> KubeVirt with virt-v2v (HTTPS or VDDK)",
            settings);
