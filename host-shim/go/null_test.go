// SPDX-License-Identifier: Apache-2.0
package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pallet.dev/host"
	"pallet.dev/host/internal/testenv"
)

func loadNull(t *testing.T, name string) *host.Provider {
	t.Helper()
	testenv.SourceDir(t)
	p, err := host.Load(name)
	if err != nil {
		t.Fatalf("Load(%q): %v", name, err)
	}
	t.Cleanup(func() { _ = p.Unload() })
	return p
}

var nullSettings = map[string]interface{}{"settings": map[string]interface{}{
	"vms": []map[string]interface{}{
		{"id": "vm-1", "name": "web-1", "cpus": 2},
		{"id": "vm-2", "name": "web-2", "cpus": 4},
		{"id": "vm-3", "name": "db-1", "cpus": 8},
	},
	"pending":        map[string]int{"transfer": 1},
	"retry_after_ms": 250,
	"delay_ms":       map[string]int{"convert": 5000},
}}

func vmInput(id string) map[string]interface{} {
	return map[string]interface{}{"plan": map[string]string{"name": "p"},
		"vm": map[string]string{"id": id}, "state": map[string]interface{}{}}
}

func TestNullLoadInfoDump(t *testing.T) {
	p := loadNull(t, "null")
	i := p.Info()
	if i.Name != "null" || i.ABIMajor != 1 || !strings.HasSuffix(i.Path, "pallet-provider-null.so") {
		t.Fatalf("Info = %+v", i)
	}
	if i.ThreadModel != host.SerializePerHandle {
		t.Errorf("thread model %v, want serialize_per_handle (null.c)", i.ThreadModel)
	}
	for _, op := range host.Ops {
		if op != host.OpBuildVM && op != host.OpConvert && op != host.OpPrepareSource && !i.Ops[op] {
			t.Errorf("required op %v reported missing", op)
		}
	}
	d, err := p.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if d["name"] != "null" || d["path"] != i.Path || d["thread_model"] != i.ThreadModel.String() {
		t.Errorf("Dump = %v, Info = %+v", d, i)
	}
}

func TestNullLoadErrors(t *testing.T) {
	testenv.SourceDir(t)
	_, err := host.Load("no-such-provider")
	if !errors.Is(err, host.ErrNotFound) {
		t.Fatalf("Load(no-such-provider) = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "no-such-provider") {
		t.Errorf("the error does not name the provider: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "pallet-provider-bad.so")
	if err := os.WriteFile(bad, []byte("not an ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	var he *host.Error
	if _, err := host.Load(bad); !errors.As(err, &he) || he.Status != host.StatusIO {
		t.Fatalf("Load(non-ELF) = %v, want PALLET_E_IO", err)
	}

	p := loadNull(t, "null")
	if _, err := p.Open(`{"settings": `); err == nil {
		t.Error("Open with truncated JSON succeeded")
	}
	s, err := p.Open(nullSettings)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Unload(); !errors.Is(err, &host.Error{Status: host.StatusConflict}) {
		t.Fatalf("Unload with a session open = %v, want PALLET_E_CONFLICT", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if _, err := s.Validate(context.Background(), "vm-1", vmInput("vm-1")); err == nil {
		t.Error("a call on a closed session succeeded")
	}
	if err := p.Unload(); err != nil {
		t.Fatal(err)
	}
	if err := p.Unload(); err == nil {
		t.Error("second Unload succeeded")
	}
	if _, err := p.Open(nullSettings); err == nil || !strings.Contains(err.Error(), "unloaded") {
		t.Errorf("Open after Unload = %v", err)
	}
}

func TestNullOps(t *testing.T) {
	p := loadNull(t, "null")
	s, err := p.Open(nullSettings)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	r, err := s.InventoryOp(ctx, map[string]string{"kind": "instances"})
	if err != nil || len(r.Items) != 3 {
		t.Fatalf("inventory op: %v, %d items", err, len(r.Items))
	}
	if _, err := s.InventoryOp(ctx, map[string]string{"kind": "disks"}); !errors.Is(err, host.ErrUnsupported) {
		t.Errorf("inventory of an unknown kind = %v, want ErrUnsupported", err)
	}
	if _, err := s.Validate(ctx, "vm-9", vmInput("vm-9")); !errors.Is(err, host.ErrNotFound) {
		t.Errorf("validate of an unknown VM = %v, want ErrNotFound", err)
	}
	var he *host.Error
	if _, err := s.Transfer(ctx, "vm-1", `{"vm": 1}`); !errors.As(err, &he) || he.Status != host.StatusInvalid ||
		he.Op != "transfer" || he.Message == "" {
		t.Errorf("transfer with a bad input = %#v", err)
	}
	r, err = s.Transfer(ctx, "vm-1", vmInput("vm-1"))
	if err != nil || !r.Pending() || !r.HasRetry || r.RetryAfter != 250*time.Millisecond {
		t.Fatalf("first transfer: %v %+v, want PENDING after 250ms", err, r)
	}
	in := vmInput("vm-1")
	in["state"] = r.State
	r, err = s.Transfer(ctx, "vm-1", in)
	if err != nil || r.Status != host.StatusOK || r.State == nil {
		t.Fatalf("second transfer: %v %+v", err, r)
	}
	r, err = s.BuildVM(ctx, "vm-1", vmInput("vm-1"))
	if err != nil {
		t.Fatalf("build_vm: %v", err)
	}
	if _, err := s.Cleanup(ctx, "vm-1", vmInput("vm-1")); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
}

// Session ops report their log lines and progress to the process-wide
// handler, labelled with the VM.
func TestNullGlobalEvents(t *testing.T) {
	p := loadNull(t, "null")
	s, err := p.Open(nullSettings)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var got []host.Event
	host.SetEventHandler(func(ev host.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() })
	defer host.SetEventHandler(nil)
	if _, err := s.PrepareSource(context.Background(), "vm-2", vmInput("vm-2")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range got {
		if ev.Type == host.EventProgress && ev.VM == "vm-2" && ev.Step == "prepare_source" && ev.Unit != "" {
			var j map[string]interface{}
			if err := json.Unmarshal(ev.JSON, &j); err != nil || j["event"] != "progress" {
				t.Errorf("progress JSON %s: %v", ev.JSON, err)
			}
			return
		}
	}
	t.Fatalf("no progress event for vm-2 among %+v", got)
}

func TestNullInventoryQuery(t *testing.T) {
	p := loadNull(t, "null")
	s, err := p.Open(nullSettings)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var names []string
	err = s.Inventory(context.Background(), "instances", "where cpus >= 4 order by name", func(item json.RawMessage) {
		var v struct{ Name string }
		if err := json.Unmarshal(item, &v); err != nil {
			t.Error(err)
		}
		names = append(names, v.Name)
	}, nil)
	if err != nil || strings.Join(names, ",") != "db-1,web-2" {
		t.Fatalf("Inventory = %v, %v; want db-1,web-2", names, err)
	}
	err = s.Inventory(context.Background(), "instances", "where cpus >>= 4", nil, nil)
	if !errors.Is(err, host.ErrInvalid) || !strings.Contains(err.Error(), "^") {
		t.Fatalf("a bad query = %v, want ErrInvalid with a caret", err)
	}
	var he *host.Error
	if !errors.As(err, &he) || he.Origin != host.OriginHost {
		t.Errorf("a bad query's origin = %+v, want OriginHost", err)
	}
}

// A cancelled context stops the op within the provider's cancel bound,
// and the next op is not cancelled by it.
func TestNullCancelOp(t *testing.T) {
	p := loadNull(t, "null")
	s, err := p.Open(nullSettings)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Convert(ctx, "vm-3", vmInput("vm-3"))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the cancelled convert took %v (5s when not cancelled)", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, host.ErrCancelled) {
		t.Fatalf("cancelled convert = %v, want PALLET_E_CANCELLED and DeadlineExceeded", err)
	}
	if he := (*host.Error)(nil); !errors.As(err, &he) || he.Origin != host.OriginProvider {
		t.Errorf("the provider's PALLET_E_CANCELLED has origin %+v, want OriginProvider", err)
	}
	if _, err := s.Validate(context.Background(), "vm-3", vmInput("vm-3")); err != nil {
		t.Fatalf("the op after a cancel failed: %v", err)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := s.Validate(done, "vm-3", vmInput("vm-3")); !errors.Is(err, context.Canceled) {
		t.Errorf("an op with a done context = %v", err)
	}
}

func TestNullMigrate(t *testing.T) {
	src := testenv.SourceDir(t)
	plan, err := host.LoadPlan("", filepath.Join(src, "examples", "demo-null", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Name != "demo-null" || plan.SourceType != "null" {
		t.Fatalf("plan %v", plan)
	}
	if strings.Contains(plan.String(), "not-a-real-password") {
		t.Error("Plan.String shows the secret")
	}
	p := loadNull(t, plan.SourceType)
	var mu sync.Mutex
	steps := map[string]int{}
	dir := t.TempDir()
	sum, err := p.Migrate(context.Background(), plan.SourceConfig, plan.JSON, host.RunOptions{
		StateDir: filepath.Join(dir, "state"), OutputDir: filepath.Join(dir, "out"),
		MaxInFlight: 2, Backoff: 10 * time.Millisecond,
		OnEvent: func(ev host.Event) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Type == host.EventStep && ev.Status == "done" {
				steps[ev.Step]++
			}
		}})
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if sum == nil || sum.Succeeded != 3 || sum.VMs != 3 || sum.Exit != host.ExitOK {
		t.Fatalf("summary %+v", sum)
	}
	if steps["transfer"] != 3 || steps["build_vm"] != 3 {
		t.Errorf("step done events %v", steps)
	}
	st, err := host.ReadState(filepath.Join(dir, "state"))
	if err != nil || !strings.Contains(string(st), "vm-0002") {
		t.Errorf("ReadState: %v %s", err, st)
	}
}

// Two providers loaded at once, used from many goroutines (run with
// -race and GODEBUG=cgocheck=2).
func TestNullConcurrent(t *testing.T) {
	a := loadNull(t, "null")
	b := loadNull(t, "null-parallel")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		p := a
		if i%2 == 1 {
			p = b
		}
		wg.Add(1)
		go func(p *host.Provider) {
			defer wg.Done()
			s, err := p.Open(nullSettings)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for j := 0; j < 20; j++ {
				n := 0
				if err := s.Inventory(context.Background(), "instances", "where cpus > 2",
					func(json.RawMessage) { n++ }, nil); err != nil || n != 2 {
					t.Errorf("%s inventory: %v, %d items", p.Name(), err, n)
				}
				if _, err := s.Validate(context.Background(), "vm-1", vmInput("vm-1")); err != nil {
					t.Error(err)
				}
			}
		}(p)
	}
	wg.Wait()
}

func TestBindingLoadPlanErrors(t *testing.T) {
	testenv.SourceDir(t)
	if _, err := host.LoadPlan(""); !errors.Is(err, host.ErrInvalid) {
		t.Errorf("LoadPlan() = %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := host.LoadPlan("", missing); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("LoadPlan(missing) = %v, want an error naming the file", err)
	}
}

func TestBindingNames(t *testing.T) {
	if host.StatusNotFound.String() != "PALLET_E_NOT_FOUND" || host.OpPrepareSource.String() != "prepare_source" {
		t.Fatal(host.StatusNotFound, host.OpPrepareSource)
	}
	if s, ok := host.StatusFromName("AUTH"); !ok || s != host.StatusAuth {
		t.Error(s, ok)
	}
	if op, ok := host.OpFromName("build_vm"); !ok || op != host.OpBuildVM {
		t.Error(op, ok)
	}
	if _, ok := host.OpFromName("bulid_vm"); ok {
		t.Error("a misspelt op parsed")
	}
	if !host.StatusTransient.Retryable() || host.StatusFailed.Retryable() {
		t.Error("Retryable")
	}
	if host.Version() == "" {
		t.Error("no version")
	}
}

// RequestCancel (the `pallet cancel` marker) cancels a run, and only
// that run: the call after it is not cancelled.
func TestNullRequestCancel(t *testing.T) {
	src := testenv.SourceDir(t)
	plan, err := host.LoadPlan("", filepath.Join(src, "examples", "demo-null", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := loadNull(t, "null")
	var cfg map[string]interface{}
	if err := json.Unmarshal(plan.SourceConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["settings"].(map[string]interface{})["delay_ms"] = map[string]int{"transfer": 20000}
	slow, _ := json.Marshal(cfg)
	sd := filepath.Join(t.TempDir(), "state")
	started := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		_, err := p.Migrate(context.Background(), slow, plan.JSON, host.RunOptions{StateDir: sd,
			OnEvent: func(ev host.Event) {
				if ev.Type == host.EventStep && ev.Step == "transfer" && ev.Status == "started" {
					started <- struct{}{}
				}
			}})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("no transfer started")
	}
	if err := host.RequestCancel(sd); err != nil {
		t.Fatal(err)
	}
	var xe *host.ExitError
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the run did not stop within 15s of RequestCancel (a transfer takes 20s)")
	}
	if !errors.As(err, &xe) || xe.Code != host.ExitCancelled || errors.Is(err, context.Canceled) {
		t.Fatalf("Migrate after RequestCancel = %v, want ExitCancelled (not a context error)", err)
	}
	// A validate that polls cancelled() for 50 ms: a flag left raised
	// would fail it.
	s, err := p.Open(map[string]interface{}{"settings": map[string]interface{}{
		"delay_ms": map[string]int{"validate": 50}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Validate(context.Background(), "vm-1", vmInput("vm-1")); err != nil {
		t.Fatalf("the call after a cancelled run: %v", err)
	}
	if err := host.RequestCancel(filepath.Join(t.TempDir(), "no", "such")); err == nil {
		t.Error("RequestCancel on a missing state dir succeeded")
	}
	if d := host.DefaultStateDir("p1"); !strings.HasSuffix(d, ".pallet-state/p1") {
		t.Errorf("DefaultStateDir = %q", d)
	}
}

// Cancelling one of two concurrent plan runs (each its own token) rolls
// that one back and leaves the other to finish untouched; likewise for
// two concurrent op calls.
func TestNullCancelOneOfTwo(t *testing.T) {
	src := testenv.SourceDir(t)
	plan, err := host.LoadPlan("", filepath.Join(src, "examples", "demo-null", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := loadNull(t, "null")
	var cfg map[string]interface{}
	if err := json.Unmarshal(plan.SourceConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["settings"].(map[string]interface{})["delay_ms"] = map[string]int{"transfer": 1500}
	slow, _ := json.Marshal(cfg)
	type out struct {
		sum  *host.Summary
		err  error
		took time.Duration
	}
	started := make(chan struct{}, 64)
	run := func(ctx context.Context, sd string, res chan<- out) {
		t0 := time.Now()
		sum, err := p.Migrate(ctx, slow, plan.JSON, host.RunOptions{StateDir: sd,
			OnEvent: func(ev host.Event) {
				if ev.Type == host.EventStep && ev.Step == "transfer" && ev.Status == "started" {
					started <- struct{}{}
				}
			}})
		res <- out{sum, err, time.Since(t0)}
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	resA, resB := make(chan out, 1), make(chan out, 1)
	go run(ctxA, filepath.Join(t.TempDir(), "a"), resA)
	go run(context.Background(), filepath.Join(t.TempDir(), "b"), resB)
	for i := 0; i < 2; i++ {
		select {
		case <-started:
		case <-time.After(60 * time.Second):
			t.Fatal("the two transfers did not start")
		}
	}
	cancelA()
	a, b := <-resA, <-resB
	var xe *host.ExitError
	if !errors.As(a.err, &xe) || xe.Code != host.ExitCancelled || !errors.Is(a.err, context.Canceled) {
		t.Fatalf("the cancelled run = %v, want ExitCancelled with context.Canceled", a.err)
	}
	if b.err != nil || b.sum == nil || b.sum.Failed != 0 || b.sum.Cancelled != 0 || b.sum.Succeeded == 0 {
		t.Fatalf("the other run = %+v, %v; want every VM succeeded", b.sum, b.err)
	}
	if b.took < 1500*time.Millisecond {
		t.Errorf("the other run took %v, under its 1.5 s transfer: it was cut short", b.took)
	}

	// Two op calls at once (two sessions: provider-null serializes per
	// handle): cancel one, the other runs its full 1.5 s.
	slowOp := map[string]interface{}{"settings": map[string]interface{}{
		"delay_ms": map[string]int{"transfer": 1500}}}
	s, err := p.Open(slowOp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := p.Open(slowOp)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctxC, cancelC := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelC()
	errs := make(chan error, 2)
	var tookD time.Duration
	go func() { _, err := s.Transfer(ctxC, "vm-1", vmInput("vm-1")); errs <- err }()
	t0 := time.Now()
	var progress int
	_, errD := s2.CallWithEvents(context.Background(), host.OpTransfer, "vm-2", vmInput("vm-2"),
		func(ev host.Event) {
			if ev.Type == host.EventProgress {
				progress++
			}
		})
	tookD = time.Since(t0)
	if err := <-errs; !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, host.ErrCancelled) {
		t.Errorf("the cancelled call = %v, want PALLET_E_CANCELLED and DeadlineExceeded", err)
	}
	if errD != nil || tookD < 1500*time.Millisecond {
		t.Errorf("the other call = %v after %v, want OK after 1.5 s", errD, tookD)
	}
	if progress == 0 {
		t.Error("CallWithEvents: no progress event reached the call's callback")
	}
}

// A failing VM: the run's error names the VM and the provider's message,
// never a stale message of an earlier call on the thread.
func TestNullMigrateFails(t *testing.T) {
	src := testenv.SourceDir(t)
	plan, err := host.LoadPlan("", filepath.Join(src, "examples", "demo-null", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]interface{}
	if err := json.Unmarshal(plan.SourceConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	set := cfg["settings"].(map[string]interface{})
	set["fail_at"], set["fail_vm"], set["fail_code"] = "convert", "vm-0002", "AUTH"
	set["pending"] = map[string]int{}
	bad, _ := json.Marshal(cfg)
	p := loadNull(t, "null")
	s, err := p.Open(nullSettings)
	if err != nil {
		t.Fatal(err)
	}
	// An earlier failure on this goroutine's thread leaves a message behind.
	_ = s.Inventory(context.Background(), "instances", "where cpus >>= 1", nil, nil)
	s.Close()
	var failed []host.Event
	sum, err := p.Migrate(context.Background(), bad, plan.JSON, host.RunOptions{
		StateDir: filepath.Join(t.TempDir(), "state"), MaxInFlight: 3,
		OnEvent: func(ev host.Event) {
			if ev.What == "failed" {
				failed = append(failed, ev)
			}
		}})
	var xe *host.ExitError
	if !errors.As(err, &xe) || xe.Code != host.ExitVMFailed {
		t.Fatalf("Migrate = %v, want ExitVMFailed", err)
	}
	t.Logf("the run's error: %v", err)
	if sum == nil || sum.Failed != 1 || sum.Succeeded != 2 {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(err.Error(), "vm-0002") || strings.Contains(err.Error(), "query") {
		t.Errorf("the error does not blame vm-0002's convert: %v", err)
	}
	if len(failed) != 1 || failed[0].VM != "vm-0002" || failed[0].Step != "convert" {
		t.Errorf("failed events %+v", failed)
	}
	if err := p.ValidatePlan(context.Background(), []byte(`{"settings": {"vms": [{"id": "other"}]}}`), plan.JSON,
		host.RunOptions{StateDir: filepath.Join(t.TempDir(), "v")}); !errors.As(err, &xe) || xe.Code != host.ExitVMFailed {
		t.Errorf("ValidatePlan with VMs the source lacks = %v, want ExitVMFailed", err)
	}
}

// The cluster-mode options reach the library (the struct as the header
// lays it out): a kubeconfig that does not exist is the preflight's
// finding in ValidatePlan, and stops Migrate with Apply before any VM.
func TestNullClusterOptions(t *testing.T) {
	src := testenv.SourceDir(t)
	plan, err := host.LoadPlan("", filepath.Join(src, "examples", "demo-null", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := loadNull(t, plan.SourceType)
	kc := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	var mu sync.Mutex
	var findings []host.Event
	steps := 0
	o := host.RunOptions{StateDir: filepath.Join(t.TempDir(), "state"), Kubeconfig: kc,
		WaitTimeout: 1500 * time.Millisecond,
		OnEvent: func(ev host.Event) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Type == host.EventFinding && strings.Contains(string(ev.JSON), "ClusterConfigInvalid") {
				findings = append(findings, ev)
			}
			if ev.Type == host.EventStep && ev.What == "step" {
				steps++
			}
		}}
	var xe *host.ExitError
	if err := p.ValidatePlan(context.Background(), plan.SourceConfig, plan.JSON, o); !errors.As(err, &xe) || xe.Code != host.ExitVMFailed {
		t.Fatalf("ValidatePlan with a missing kubeconfig = %v, want ExitVMFailed", err)
	}
	if len(findings) != 3 || !strings.Contains(string(findings[0].JSON), kc) {
		t.Fatalf("ClusterConfigInvalid findings naming %s: %+v", kc, findings)
	}
	findings = nil
	o.Apply = true
	if _, err := p.Migrate(context.Background(), plan.SourceConfig, plan.JSON, o); !errors.As(err, &xe) || xe.Code != host.ExitVMFailed {
		t.Fatalf("Migrate --apply with a missing kubeconfig = %v, want ExitVMFailed", err)
	}
	if len(findings) != 1 || steps != 0 {
		t.Errorf("Migrate --apply: %d ClusterConfigInvalid findings (want 1), %d steps run (want 0)",
			len(findings), steps)
	}
}
