// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import "fmt"

// Op is one of the seven provider ops (enum pallet_op).
type Op int

// The ops, in the order a migration runs them (inventory aside).
const (
	OpValidate      Op = C.PALLET_OP_VALIDATE
	OpInventory     Op = C.PALLET_OP_INVENTORY
	OpPrepareSource Op = C.PALLET_OP_PREPARE_SOURCE
	OpTransfer      Op = C.PALLET_OP_TRANSFER
	OpConvert       Op = C.PALLET_OP_CONVERT
	OpBuildVM       Op = C.PALLET_OP_BUILD_VM
	OpCleanup       Op = C.PALLET_OP_CLEANUP
)

// Ops lists the seven ops.
var Ops = []Op{OpValidate, OpInventory, OpPrepareSource, OpTransfer, OpConvert, OpBuildVM, OpCleanup}

// String is the op's name, "prepare_source".
func (o Op) String() string {
	if c := C.pallet_op_name(C.int(o)); c != nil {
		return C.GoString(c)
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// OpFromName parses "transfer"; ok is false for an unknown name.
func OpFromName(name string) (op Op, ok bool) {
	cs := cstring(name)
	defer freeC(cs)
	n := C.pallet_op_from_name(cs)
	return Op(n), n >= 0
}
