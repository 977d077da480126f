// SPDX-License-Identifier: Apache-2.0
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"pallet.dev/host"
)

type config struct {
	stateRoot   string
	outputDir   string
	provider    string
	maxInFlight uint
	plans       int
	keepLoaded  bool
	verbose     bool
}

// run is main without the process: flags, reconcile, exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("pallet-go-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.stateRoot, "state-root", ".pallet-state", "each plan's state dir is `DIR`/<plan name>")
	fs.StringVar(&c.outputDir, "output-dir", "", "manifests go to `DIR`/<plan name>/<vm> (default: the state dir's manifests/)")
	fs.StringVar(&c.provider, "provider", "", "load `NAME|PATH` instead of the source Provider's type")
	fs.UintVar(&c.maxInFlight, "max-in-flight", 2, "VMs migrated at once per plan")
	fs.IntVar(&c.plans, "plans", 2, "plans reconciled at once")
	fs.BoolVar(&c.keepLoaded, "keep-loaded", false, "keep providers loaded when no plan needs them")
	fs.BoolVar(&c.verbose, "v", false, "report info log lines")
	if err := fs.Parse(args); err != nil {
		return int(host.ExitUsage)
	}
	if fs.NArg() == 0 || c.plans < 1 {
		fmt.Fprintln(stderr, "pallet-go-controller: give one or more PLAN files (a Plan with its Providers, Secrets and maps; files of one plan joined with commas)")
		return int(host.ExitUsage)
	}
	if c.verbose {
		host.SetLogLevel(host.LogInfo)
	}
	out := &output{w: stdout}
	reg := newRegistry(out, c.keepLoaded)
	defer reg.unloadAll()

	sem := make(chan struct{}, c.plans)
	codes := make([]host.Exit, fs.NArg())
	var wg sync.WaitGroup
	for i, arg := range fs.Args() {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, files []string) {
			defer func() { <-sem; wg.Done() }()
			codes[i] = reconcile(ctx, &c, reg, out, files)
		}(i, strings.Split(arg, ","))
	}
	wg.Wait()
	worst := host.ExitOK
	for _, x := range codes {
		if severity(x) > severity(worst) {
			worst = x
		}
	}
	return int(worst)
}

// severity orders exits: a cancel or a bad input outranks a failed VM.
func severity(x host.Exit) int {
	switch x {
	case host.ExitOK:
		return 0
	case host.ExitVMFailed:
		return 1
	case host.ExitCancelled:
		return 3
	}
	return 2
}

// reconcile brings one plan to its goal: validated, then migrated.
func reconcile(ctx context.Context, c *config, reg *registry, out *output, files []string) host.Exit {
	plan, err := host.LoadPlan("", files...)
	if err != nil {
		out.event(map[string]interface{}{"event": "reconciled", "files": files,
			"status": "invalid", "message": err.Error(), "exit": host.ExitInput})
		return host.ExitInput
	}
	name := c.provider
	if name == "" {
		name = plan.SourceType
	}
	p, err := reg.acquire(name)
	if err != nil {
		out.event(map[string]interface{}{"event": "reconciled", "plan": plan.Name,
			"status": "failed", "message": err.Error(), "exit": host.ExitLoad})
		return host.ExitLoad
	}
	defer reg.release(name)

	opts := host.RunOptions{
		StateDir:    filepath.Join(c.stateRoot, plan.Name),
		MaxInFlight: c.maxInFlight,
		OnEvent:     func(ev host.Event) { out.hostEvent(plan.Name, ev) },
	}
	if c.outputDir != "" {
		opts.OutputDir = filepath.Join(c.outputDir, plan.Name)
	}
	code := host.ExitOK
	status := "succeeded"
	if err := p.ValidatePlan(ctx, plan.SourceConfig, plan.JSON, opts); err != nil {
		code, status = exitOf(err), "invalid"
	} else if _, err := p.Migrate(ctx, plan.SourceConfig, plan.JSON, opts); err != nil {
		code, status = exitOf(err), "failed"
	}
	if errors.Is(ctx.Err(), context.Canceled) || code == host.ExitCancelled {
		status = "cancelled"
	}
	out.event(map[string]interface{}{"event": "reconciled", "plan": plan.Name,
		"provider": p.Name(), "status": status, "exit": code, "stateDir": opts.StateDir})
	return code
}

func exitOf(err error) host.Exit {
	var xe *host.ExitError
	if errors.As(err, &xe) {
		return xe.Code
	}
	return host.ExitInput
}

// registry keeps one loaded provider per name, shared by the plans that
// use it, and unloads it when the last one releases it.
type registry struct {
	mu     sync.Mutex
	out    *output
	keep   bool
	loaded map[string]*entry
}

type entry struct {
	p    *host.Provider
	refs int
}

func newRegistry(out *output, keep bool) *registry {
	return &registry{out: out, keep: keep, loaded: map[string]*entry{}}
}

func (r *registry) acquire(name string) (*host.Provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.loaded[name]; e != nil {
		e.refs++
		return e.p, nil
	}
	p, err := host.Load(name)
	if err != nil {
		return nil, err
	}
	r.loaded[name] = &entry{p: p, refs: 1}
	i := p.Info()
	r.out.event(map[string]interface{}{"event": "provider", "action": "loaded", "provider": name,
		"path": i.Path, "version": i.Version, "loaded": r.names()})
	return p, nil
}

func (r *registry) release(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.loaded[name]
	e.refs--
	if e.refs > 0 || r.keep {
		return
	}
	r.unload(name, e)
}

func (r *registry) unload(name string, e *entry) {
	if err := e.p.Unload(); err != nil {
		r.out.event(map[string]interface{}{"event": "provider", "action": "unload-failed",
			"provider": name, "message": err.Error()})
		return
	}
	delete(r.loaded, name)
	r.out.event(map[string]interface{}{"event": "provider", "action": "unloaded", "provider": name,
		"loaded": r.names()})
}

func (r *registry) unloadAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, e := range r.loaded {
		r.unload(name, e)
	}
}

func (r *registry) names() []string {
	n := make([]string, 0, len(r.loaded))
	for k := range r.loaded {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// output writes JSON lines from many goroutines, one line at a time.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *output) event(v map[string]interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"event":"error","message":%q}`, err.Error()))
	}
	o.mu.Lock()
	fmt.Fprintf(o.w, "%s\n", b)
	o.mu.Unlock()
}

// hostEvent adds "plan" to the host's event object.
func (o *output) hostEvent(plan string, ev host.Event) {
	m := map[string]interface{}{}
	if ev.Type == host.EventLog {
		m = map[string]interface{}{"event": "log", "level": ev.Level.String(), "message": ev.Message}
		if ev.VM != "" {
			m["vm"] = ev.VM
		}
	} else if err := json.Unmarshal(ev.JSON, &m); err != nil {
		m = map[string]interface{}{"event": ev.What, "raw": string(ev.JSON)}
	}
	m["plan"] = plan
	o.event(m)
}
