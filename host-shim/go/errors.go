// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
)

// Status is a pallet_status (abi/pallet/provider.h).
type Status int

// The statuses of the provider ABI.
const (
	StatusOK          Status = C.PALLET_OK
	StatusPending     Status = C.PALLET_PENDING
	StatusInvalid     Status = C.PALLET_E_INVALID
	StatusUnsupported Status = C.PALLET_E_UNSUPPORTED
	StatusNotFound    Status = C.PALLET_E_NOT_FOUND
	StatusAuth        Status = C.PALLET_E_AUTH
	StatusTransient   Status = C.PALLET_E_TRANSIENT
	StatusTimeout     Status = C.PALLET_E_TIMEOUT
	StatusFailed      Status = C.PALLET_E_FAILED
	StatusCancelled   Status = C.PALLET_E_CANCELLED
	StatusNoMem       Status = C.PALLET_E_NOMEM
	StatusIO          Status = C.PALLET_E_IO
	StatusConflict    Status = C.PALLET_E_CONFLICT
	StatusABI         Status = C.PALLET_E_ABI
)

// String is the enum name, "PALLET_E_NOT_FOUND".
func (s Status) String() string { return C.GoString(C.pallet_status_name(C.int(s))) }

// Retryable reports whether the host would call again (PENDING,
// TRANSIENT, TIMEOUT).
func (s Status) Retryable() bool {
	return s == StatusPending || s == StatusTransient || s == StatusTimeout
}

// StatusFromName parses "PALLET_E_AUTH" or "AUTH"; ok is false if unknown.
func StatusFromName(name string) (s Status, ok bool) {
	cs := cstring(name)
	defer freeC(cs)
	n := C.pallet_status_from_name(cs)
	return Status(n), n >= 0
}

// Error is a failure of libpallet-host or of a provider: the status and
// the message the host recorded (naming the thing, the problem, the fix).
type Error struct {
	Op      string // "load", "open", "transfer", "inventory", ...
	Status  Status
	Message string
	// Origin says whose fault it is (pallet_last_error_origin): the host
	// refused the call or its input (a bad query, say), or the provider
	// failed. OriginNone when the binding itself refused the call.
	Origin Origin
	// ctx is the context error when the call failed because its context
	// was cancelled.
	ctx error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = C.GoString(C.pallet_strerror(C.int(e.Status)))
	}
	return fmt.Sprintf("pallet: %s: %s: %s", e.Op, e.Status, msg)
}

// Is matches another *Error by status (so errors.Is(err, host.ErrNotFound)
// works), and the context error a cancelled call carries.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Status == e.Status && (t.Op == "" || t.Op == e.Op)
	}
	return e.ctx != nil && errors.Is(e.ctx, target)
}

// Origin is enum pallet_error_origin.
type Origin int

// The origins of an Error.
const (
	OriginNone     Origin = C.PALLET_ORIGIN_NONE
	OriginHost     Origin = C.PALLET_ORIGIN_HOST
	OriginProvider Origin = C.PALLET_ORIGIN_PROVIDER
)

// Sentinels for errors.Is.
var (
	ErrInvalid     = &Error{Status: StatusInvalid}
	ErrUnsupported = &Error{Status: StatusUnsupported}
	ErrNotFound    = &Error{Status: StatusNotFound}
	ErrAuth        = &Error{Status: StatusAuth}
	ErrFailed      = &Error{Status: StatusFailed}
	ErrCancelled   = &Error{Status: StatusCancelled}
	ErrIO          = &Error{Status: StatusIO}
	ErrABI         = &Error{Status: StatusABI}
)

// Exit is an exit code of a plan run (enum pallet_exit, the pallet CLI's).
type Exit int

// The exit codes of pallet_migrate and its siblings.
const (
	ExitOK        Exit = C.PALLET_EXIT_OK
	ExitVMFailed  Exit = C.PALLET_EXIT_VM_FAILED
	ExitUsage     Exit = C.PALLET_EXIT_USAGE
	ExitLoad      Exit = C.PALLET_EXIT_LOAD
	ExitCancelled Exit = C.PALLET_EXIT_CANCELLED
	ExitInput     Exit = C.PALLET_EXIT_INPUT
	ExitLocked    Exit = C.PALLET_EXIT_LOCKED
)

var exitNames = map[Exit]string{
	ExitOK: "ok", ExitVMFailed: "a VM failed", ExitUsage: "bad options",
	ExitLoad: "provider not loadable", ExitCancelled: "cancelled",
	ExitInput:  "plan, config or state unreadable or invalid",
	ExitLocked: "another run holds the state dir",
}

func (x Exit) String() string {
	if s, ok := exitNames[x]; ok {
		return s
	}
	return fmt.Sprintf("exit %d", int(x))
}

// ExitError is a plan run that did not succeed. Summary is the run's
// summary event when there was one (not for ExitInput, ExitLocked...).
type ExitError struct {
	Op      string // "migrate", "cleanup", "validate"
	Code    Exit
	Message string
	Summary *Summary
	ctx     error
}

func (e *ExitError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("pallet: %s: %s: %s", e.Op, e.Code, e.Message)
	}
	return fmt.Sprintf("pallet: %s: %s", e.Op, e.Code)
}

// Is matches the context error of a run cancelled through its context.
func (e *ExitError) Is(target error) bool {
	if t, ok := target.(*ExitError); ok {
		return t.Code == e.Code
	}
	return e.ctx != nil && errors.Is(e.ctx, target)
}

// ctxErr is the context's error if the context is done, else nil.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}
