// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
)

// token is one op's or run's own cancel token (pallet_cancel_new): its
// context being done triggers it, and it cancels that op or run only, so
// cancelling one of several concurrent runs leaves the others alone.
// The process-wide flag (pallet_cancel) is never touched.
type token struct {
	c    *C.struct_pallet_cancel
	stop chan struct{}
	done chan struct{}
}

// newToken makes the token of one op or run and watches ctx while it runs.
func newToken(ctx context.Context) (*token, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	c := C.pallet_cancel_new()
	if c == nil {
		return nil, errors.New(lastError())
	}
	t := &token{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	if ctx.Done() == nil {
		close(t.done)
		return t, nil
	}
	go func() {
		defer close(t.done)
		select {
		case <-ctx.Done():
			C.pallet_cancel_trigger(t.c)
		case <-t.stop:
		}
	}()
	return t, nil
}

// release ends the op and frees the token; it reports whether the
// context cancelled it.
func (t *token) release() bool {
	close(t.stop)
	<-t.done
	cancelled := C.pallet_cancel_level(t.c) > 0
	C.pallet_cancel_free(t.c)
	return cancelled
}
