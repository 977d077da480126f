/* pallet-provider-xen.so: the "xen" Provider type (see v2v.h). */
#include "v2v.h"

V2V_MODULE ("xen", V2V_XEN, "Xen (xen+ssh) -> KubeVirt with virt-v2v");
