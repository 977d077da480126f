// SPDX-License-Identifier: Apache-2.0
package host

// The build gives CGO_CFLAGS / CGO_LDFLAGS the header and library
// directories (a build tree or an install prefix).

/*
#cgo LDFLAGS: -lpallet-host -lpallet_plan
#cgo pkg-config: jansson yaml-0.1 libcrypto
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

func cstring(s string) *C.char { return C.CString(s) }

// cstringOrNil is NULL for "", which the host reads as "not given".
func cstringOrNil(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

func freeC(p *C.char) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}

// takeErr copies and frees the message a shim helper kept.
func takeErr(e *C.struct_palletgo_err) string {
	if e.message == nil {
		return ""
	}
	s := C.GoString(e.message)
	C.free(unsafe.Pointer(e.message))
	e.message = nil
	return s
}

// lastError reads the host's thread-local message; the caller must have
// made the failing call on the same OS thread (lockThread).
func lastError() string { return C.GoString(C.pallet_last_error()) }

// lockThread keeps the goroutine on its OS thread until unlock, so a
// thread-local error is read on the thread that set it.
func lockThread() (unlock func()) {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// Version is libpallet-host's version, "0.1.0".
func Version() string { return C.GoString(C.pallet_host_version()) }
