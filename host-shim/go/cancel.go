package host

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"sync"
)

// The host's cancel flag (pallet_cancel) is one per process: raising it
// stops every op and run in flight. This gate maps a context to it:
//   - an op or run that starts waits while the flag is up, so a new call
//     is never cancelled by an older one's context;
//   - a done context raises the flag while its op is still in flight;
//   - the last op to return lowers it (pallet_cancel_reset).
//
// A plan run also raises it itself when `pallet cancel` writes its
// marker; the same last-one-out rule lowers it then.
var gate struct {
	mu       sync.Mutex
	cond     *sync.Cond
	inflight int
	raised   bool
}

func init() { gate.cond = sync.NewCond(&gate.mu) }

// ticket is one op or run in flight.
type ticket struct {
	done      bool
	cancelled bool // this ticket's context raised the flag
	stop      chan struct{}
}

// enter waits for a lowered flag, then watches ctx while the op runs.
func enter(ctx context.Context) (*ticket, error) {
	gate.mu.Lock()
	for gate.raised {
		gate.cond.Wait()
	}
	if err := ctxErr(ctx); err != nil {
		gate.mu.Unlock()
		return nil, err
	}
	gate.inflight++
	gate.mu.Unlock()
	t := &ticket{stop: make(chan struct{})}
	if ctx.Done() != nil {
		go t.watch(ctx)
	}
	return t, nil
}

func (t *ticket) watch(ctx context.Context) {
	select {
	case <-ctx.Done():
		gate.mu.Lock()
		if !t.done {
			t.cancelled = true
			gate.raised = true
			C.pallet_cancel()
		}
		gate.mu.Unlock()
	case <-t.stop:
	}
}

// leave ends the op; it reports whether this op's context cancelled it.
func (t *ticket) leave() bool {
	gate.mu.Lock()
	t.done = true
	close(t.stop)
	gate.inflight--
	if C.pallet_cancel_requested() != 0 {
		gate.raised = true
	}
	if gate.inflight == 0 && gate.raised {
		C.pallet_cancel_reset()
		gate.raised = false
		gate.cond.Broadcast()
	}
	c := t.cancelled
	gate.mu.Unlock()
	return c
}
