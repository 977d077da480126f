/* pallet-provider-ova.so: the "ova" Provider type (see v2v.h). */
#include "v2v.h"

V2V_MODULE ("ova", V2V_OVA, "OVA files -> KubeVirt with virt-v2v");
