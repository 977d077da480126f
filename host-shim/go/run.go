// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"time"
	"unsafe"
)

// RunOptions are the options of Migrate, CleanupPlan and ValidatePlan
// (struct pallet_migrate_options). Zero values are the host's defaults.
type RunOptions struct {
	StateDir    string        // "": ./.pallet-state/<plan name>
	OutputDir   string        // "": <state dir>/manifests
	MaxInFlight uint          // VMs at once; 0 means 1
	MaxAttempts uint          // retryable errors per step; 0 means 5
	Backoff     time.Duration // first backoff; 0 means 500ms
	BackoffMax  time.Duration // backoff cap; 0 means 30s
	// OnEvent gets every event of the run (STEP, PROGRESS, LOG, FINDING,
	// RESULT), one at a time, from the library's threads. It must not
	// call back into this package, and should return quickly.
	OnEvent func(Event)
	// Cluster mode (Added-in: ABI 1.1; the host guide's "Cluster mode").
	// Apply applies build_vm's objects stage by stage, waits for the copy
	// and conversion Pods, then starts the VM; false writes manifests.
	Apply       bool
	Kubeconfig  string // "": $KUBECONFIG, in-cluster, ~/.kube/config
	KubeContext string // "": the kubeconfig's current-context
	Namespace   string // "": the plan's targetNamespace
	// Destination is the destination Provider's config (provider, secret,
	// settings; it holds secrets), or nil: the cluster of Kubeconfig.
	Destination []byte
	WaitTimeout time.Duration // each Pod wait, whole seconds; 0 means 1h
}

// Summary is the RESULT "summary" event that ends a migrate or cleanup.
type Summary struct {
	Plan      string `json:"plan"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Cancelled int    `json:"cancelled"`
	VMs       int    `json:"vms"`
	Exit      Exit   `json:"exit"`
	StateDir  string `json:"stateDir"`
	Message   string `json:"-"`
}

// Migrate runs every VM of the normalized plan (Plan.JSON) through the
// provider's ops on the host's driver: state persisted in the state dir,
// resumed where a previous run stopped, retries with backoff, at most
// MaxInFlight VMs at once. Cancelling ctx rolls the VMs in flight back
// (the error then matches context.Canceled). config is the provider's
// open() config (Plan.SourceConfig).
func (p *Provider) Migrate(ctx context.Context, config, plan []byte, o RunOptions) (*Summary, error) {
	return p.run(ctx, "migrate", C.PALLETGO_MIGRATE, config, plan, o)
}

// CleanupPlan rolls back every VM that has a state file in the state dir.
func (p *Provider) CleanupPlan(ctx context.Context, config, plan []byte, o RunOptions) (*Summary, error) {
	return p.run(ctx, "cleanup", C.PALLETGO_CLEANUP, config, plan, o)
}

// ValidatePlan runs validate for every VM: per VM, FINDING events and a
// RESULT ("validated") event. The Summary is nil (validate has none).
func (p *Provider) ValidatePlan(ctx context.Context, config, plan []byte, o RunOptions) error {
	_, err := p.run(ctx, "validate", C.PALLETGO_VALIDATE, config, plan, o)
	return err
}

func (p *Provider) run(ctx context.Context, op string, mode C.int, config, plan []byte,
	o RunOptions) (*Summary, error) {
	m, err := p.acquire(true)
	if err != nil {
		return nil, err
	}
	defer p.release(true)
	t, err := newToken(ctx)
	if err != nil {
		return nil, &ExitError{Op: op, Code: ExitCancelled, Message: err.Error(), ctx: ctxErr(ctx)}
	}
	var sum *Summary
	var lastErr string
	k := &sink{fn: func(ev Event) {
		if ev.Type == EventLog && ev.Level == LogError {
			lastErr = ev.Message
		} else if ev.Type == EventStep && ev.What == "failed" && ev.Message != "" {
			lastErr = ev.VM + ": " + ev.Message
		}
		if ev.Type == EventResult && ev.What == "summary" {
			var s Summary
			if json.Unmarshal(ev.JSON, &s) == nil {
				s.Message = ev.Message
				sum = &s
			}
		}
		if o.OnEvent != nil {
			o.OnEvent(ev)
		}
	}}
	rc, msg := runC(m, mode, config, plan, &o, t.c, k)
	cancelled := t.release()
	k.repanic()
	if rc == C.PALLET_EXIT_OK {
		return sum, nil
	}
	// The driver reports its failures as events; the thread's last error
	// is the run's own only when the options were refused (and may be
	// stale otherwise).
	e := &ExitError{Op: op, Code: Exit(rc), Message: lastErr, Summary: sum}
	if sum != nil && lastErr != "" {
		e.Message = sum.Message + "; " + lastErr
	} else if sum != nil {
		e.Message = sum.Message
	} else if rc == C.PALLET_EXIT_USAGE && lastErr == "" {
		e.Message = msg
	}
	if cancelled {
		e.ctx = ctx.Err()
	}
	return sum, e
}

// runC builds the C options (C memory: the library keeps pointers into
// them for the call) and runs the plan.
func runC(m *C.struct_pallet_module, mode C.int, config, plan []byte, o *RunOptions,
	cancel *C.struct_pallet_cancel, k *sink) (C.int, string) {
	// The size is this binding's view of the struct (the header it was
	// built with): the library never writes past it.
	size := C.size_t(C.sizeof_struct_pallet_migrate_options)
	mo := (*C.struct_pallet_migrate_options)(C.calloc(1, size))
	defer C.free(unsafe.Pointer(mo))
	C.pallet_migrate_options_init_size(mo, size)
	mo.state_dir = cstringOrNil(o.StateDir)
	defer freeC(mo.state_dir)
	mo.output_dir = cstringOrNil(o.OutputDir)
	defer freeC(mo.output_dir)
	mo.max_in_flight = C.uint(o.MaxInFlight)
	mo.max_attempts = C.uint(o.MaxAttempts)
	mo.backoff_ms = C.uint(o.Backoff / time.Millisecond)
	mo.backoff_max_ms = C.uint(o.BackoffMax / time.Millisecond)
	mo.cancel = cancel
	if o.Apply {
		mo.apply = 1
	}
	mo.kubeconfig = cstringOrNil(o.Kubeconfig)
	defer freeC(mo.kubeconfig)
	mo.kube_context = cstringOrNil(o.KubeContext)
	defer freeC(mo.kube_context)
	mo.namespace_ = cstringOrNil(o.Namespace)
	defer freeC(mo.namespace_)
	if o.Destination != nil {
		mo.destination_json = C.CString(string(o.Destination))
		defer C.palletgo_free_secret(mo.destination_json)
	}
	mo.wait_timeout_s = C.uint((o.WaitTimeout + time.Second - 1) / time.Second)
	cc := C.CString(string(config))
	defer C.palletgo_free_secret(cc)
	cp := C.CString(string(plan))
	defer freeC(cp)
	var rc C.int
	var e C.struct_palletgo_err
	withSink(k, func(h C.uintptr_t) { rc = C.palletgo_run(mode, m, cc, cp, mo, h, &e) })
	return rc, takeErr(&e)
}

// RequestCancel asks the plan run on stateDir (in this process or another,
// such as the pallet CLI) to cancel: it writes the marker the run polls.
func RequestCancel(stateDir string) error {
	defer lockThread()()
	cs := cstring(stateDir)
	defer freeC(cs)
	if rc := C.pallet_request_cancel(cs); rc != C.PALLET_OK {
		return &Error{Op: "cancel", Status: Status(rc), Message: lastError()}
	}
	return nil
}

// ReadState is the state of a plan run: {"plan": ..., "vms": [...]}.
func ReadState(stateDir string) (json.RawMessage, error) {
	defer lockThread()()
	cs := cstring(stateDir)
	defer freeC(cs)
	c := C.pallet_state_read(cs)
	if c == nil {
		return nil, &Error{Op: "state", Status: StatusNotFound, Message: lastError()}
	}
	defer C.free(unsafe.Pointer(c))
	return json.RawMessage(C.GoString(c)), nil
}

// DefaultStateDir is ./.pallet-state/<plan name>.
func DefaultStateDir(planName string) string {
	cs := cstring(planName)
	defer freeC(cs)
	c := C.pallet_default_state_dir(cs)
	if c == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(c))
	return C.GoString(c)
}
