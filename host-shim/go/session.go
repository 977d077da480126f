// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// SessionParams are the host parameters a provider reads with get_param.
type SessionParams struct {
	StateDir string // "state.dir"
	WorkDir  string // "work.dir"
}

// Session is an open provider session (the provider's open() handle). Its
// methods are safe for concurrent use: the host serializes calls as the
// provider's thread model requires.
type Session struct {
	p  *Provider
	mu sync.RWMutex // held for reading by calls, for writing by Close
	s  *C.struct_pallet_session
}

// Open calls the provider's open() with config, a JSON text or any value
// json.Marshal accepts ({"provider", "secret", "settings"}, as
// Plan.SourceConfig gives it).
func (p *Provider) Open(config interface{}) (*Session, error) {
	return p.OpenWith(config, SessionParams{})
}

// OpenWith is Open with host parameters.
func (p *Provider) OpenWith(config interface{}, params SessionParams) (*Session, error) {
	text, err := jsonText(config)
	if err != nil {
		return nil, &Error{Op: "open", Status: StatusInvalid, Message: "config: " + err.Error()}
	}
	m, err := p.acquire(false)
	if err != nil {
		return nil, err
	}
	cc := cstring(text)
	defer C.palletgo_free_secret(cc)
	sd, wd := cstringOrNil(params.StateDir), cstringOrNil(params.WorkDir)
	defer freeC(sd)
	defer freeC(wd)
	var e C.struct_palletgo_err
	s := C.palletgo_open(m, cc, sd, wd, &e)
	msg := takeErr(&e)
	if s == nil {
		p.release(false)
		return nil, &Error{Op: "open", Status: StatusFailed, Message: msg}
	}
	return &Session{p: p, s: s}, nil
}

// Close calls the provider's close(). It waits for calls in flight.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return &Error{Op: "close", Status: StatusInvalid, Message: "session already closed"}
	}
	C.pallet_session_close(s.s)
	s.s = nil
	s.p.release(false)
	return nil
}

func (s *Session) use(op string, fn func(*C.struct_pallet_session) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return &Error{Op: op, Status: StatusInvalid, Message: "session is closed: Open a new one"}
	}
	return fn(s.s)
}

// Result is what one op call produced, copied out of the host.
type Result struct {
	Status     Status
	State      json.RawMessage   // the VM's new state, or nil
	Items      []json.RawMessage // emitted items, in order
	Result     json.RawMessage   // the op's summary object, or nil
	RetryAfter time.Duration     // with StatusPending (HasRetryAfter)
	HasRetry   bool
	Skipped    bool // an optional op the provider lacks: the host's default ran
}

// Pending reports a PENDING result: call again after RetryAfter.
func (r *Result) Pending() bool { return r.Status == StatusPending }

// Call runs one op. input is a JSON text ([]byte, string,
// json.RawMessage) or a value for json.Marshal; vm labels the op's log
// lines and progress ("" for none), which go to the process-wide handler
// (SetEventHandler). The result comes back for every status; err is nil
// for OK and PENDING, else an *Error with the status and message (and,
// when ctx cancelled the op, its context error: errors.Is(err,
// context.Canceled)). Cancelling ctx cancels this op only.
func (s *Session) Call(ctx context.Context, op Op, vm string, input interface{}) (*Result, error) {
	return s.CallWithEvents(ctx, op, vm, input, nil)
}

// CallWithEvents is Call with the op's own event callback: its log lines
// and progress go to onEvent (nil: the process-wide handler).
func (s *Session) CallWithEvents(ctx context.Context, op Op, vm string, input interface{},
	onEvent func(Event)) (*Result, error) {
	text, err := jsonText(input)
	if err != nil {
		return nil, &Error{Op: op.String(), Status: StatusInvalid, Message: "input: " + err.Error()}
	}
	var res *Result
	var k *sink
	if onEvent != nil {
		k = &sink{fn: onEvent}
	}
	err = s.use(op.String(), func(cs *C.struct_pallet_session) error {
		t, err := newToken(ctx)
		if err != nil {
			return &Error{Op: op.String(), Status: StatusCancelled, Message: err.Error(), ctx: ctxErr(ctx)}
		}
		cin, cvm := cstring(text), cstringOrNil(vm)
		defer freeC(cvm)
		defer C.palletgo_free_secret(cin)
		var r C.struct_pallet_call_result
		var rc, origin C.int
		if k != nil {
			withSink(k, func(h C.uintptr_t) { rc = C.palletgo_call(cs, C.int(op), cvm, cin, t.c, h, &r, &origin) })
		} else {
			rc = C.palletgo_call(cs, C.int(op), cvm, cin, t.c, 0, &r, &origin)
		}
		cancelled := t.release()
		res = copyResult(&r)
		msg := goStr(r.error)
		C.pallet_call_result_free(&r)
		if rc == C.PALLET_OK || rc == C.PALLET_PENDING {
			return nil
		}
		e := &Error{Op: op.String(), Status: Status(rc), Message: msg, Origin: Origin(origin)}
		if cancelled {
			e.ctx = ctx.Err()
		}
		return e
	})
	if k != nil {
		k.repanic()
	}
	return res, err
}

func copyResult(r *C.struct_pallet_call_result) *Result {
	out := &Result{
		Status:     Status(r.status),
		RetryAfter: time.Duration(r.retry_after_ms) * time.Millisecond,
		HasRetry:   r.has_retry_after != 0,
		Skipped:    r.skipped != 0,
	}
	if r.state != nil {
		out.State = json.RawMessage(C.GoString(r.state))
	}
	if r.result != nil {
		out.Result = json.RawMessage(C.GoString(r.result))
	}
	n := int(r.n_items)
	for i := 0; i < n; i++ {
		out.Items = append(out.Items, json.RawMessage(C.GoString(C.palletgo_cstr_at(r.items, C.size_t(i)))))
	}
	return out
}

// Validate runs the validate op for one VM.
func (s *Session) Validate(ctx context.Context, vm string, input interface{}) (*Result, error) {
	return s.Call(ctx, OpValidate, vm, input)
}

// InventoryOp runs the raw inventory op ({"kind": ...}); Inventory is the
// host's streaming, query-applying form.
func (s *Session) InventoryOp(ctx context.Context, input interface{}) (*Result, error) {
	return s.Call(ctx, OpInventory, "", input)
}

// PrepareSource runs the prepare_source op for one VM.
func (s *Session) PrepareSource(ctx context.Context, vm string, input interface{}) (*Result, error) {
	return s.Call(ctx, OpPrepareSource, vm, input)
}

// Transfer runs the transfer op for one VM.
func (s *Session) Transfer(ctx context.Context, vm string, input interface{}) (*Result, error) {
	return s.Call(ctx, OpTransfer, vm, input)
}

// Convert runs the convert op for one VM.
func (s *Session) Convert(ctx context.Context, vm string, input interface{}) (*Result, error) {
	return s.Call(ctx, OpConvert, vm, input)
}

// BuildVM runs the build_vm op for one VM.
func (s *Session) BuildVM(ctx context.Context, vm string, input interface{}) (*Result, error) {
	return s.Call(ctx, OpBuildVM, vm, input)
}

// Cleanup runs the cleanup op for one VM.
func (s *Session) Cleanup(ctx context.Context, vm string, input interface{}) (*Result, error) {
	return s.Call(ctx, OpCleanup, vm, input)
}

// Inventory lists the source objects of one kind ("instances", ...)
// matching query ("where ... order by ... limit N", "" for all), calling
// onItem once per item as the host reports it. The host applies the
// query unless the provider pushes it down. onEvent, when not nil, gets
// the run's other events (log lines, progress).
func (s *Session) Inventory(ctx context.Context, kind, query string,
	onItem func(json.RawMessage), onEvent func(Event)) error {
	k := &sink{fn: func(ev Event) {
		if ev.Type == EventItem {
			if onItem != nil {
				onItem(ev.JSON)
			}
		} else if onEvent != nil {
			onEvent(ev)
		}
	}}
	err := s.use("inventory", func(cs *C.struct_pallet_session) error {
		t, err := newToken(ctx)
		if err != nil {
			return &Error{Op: "inventory", Status: StatusCancelled, Message: err.Error(), ctx: ctxErr(ctx)}
		}
		ck, cq := cstring(kind), cstringOrNil(query)
		defer freeC(ck)
		defer freeC(cq)
		var rc C.int
		var e C.struct_palletgo_err
		withSink(k, func(h C.uintptr_t) { rc = C.palletgo_inventory(cs, ck, cq, t.c, h, &e) })
		cancelled := t.release()
		origin := Origin(e.origin)
		msg := takeErr(&e)
		if rc == C.PALLET_OK {
			return nil
		}
		ee := &Error{Op: "inventory", Status: Status(rc), Message: msg, Origin: origin}
		if cancelled {
			ee.ctx = ctx.Err()
		}
		return ee
	})
	k.repanic()
	return err
}

// jsonText turns an input into JSON text: texts as they are, other values
// through json.Marshal. nil is "{}".
func jsonText(v interface{}) (string, error) {
	switch x := v.(type) {
	case nil:
		return "{}", nil
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case json.RawMessage:
		return string(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cannot encode as JSON: %w", err)
	}
	return string(b), nil
}
