/* pallet-provider-vsphere.so: the "vsphere" Provider type (see v2v.h). */
#include "v2v.h"

V2V_MODULE ("vsphere", V2V_VSPHERE, "VMware vCenter/ESXi -> KubeVirt with virt-v2v (HTTPS or VDDK)");
