// SPDX-License-Identifier: Apache-2.0
package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"pallet.dev/host"
	"pallet.dev/host/internal/testenv"
)

// ec2Plan starts the endpoint with instances and writes a plan for vms.
func ec2Plan(t *testing.T, seed interface{}, vms []string, args ...string) (*testenv.Endpoint, *host.Plan) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	ep := testenv.StartEndpoint(t, seed, args...)
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(ep.PlanYAML("go-e2e", vms, nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := host.LoadPlan("", path)
	if err != nil {
		t.Fatal(err)
	}
	return ep, plan
}

func TestEC2Inventory(t *testing.T) {
	seed := map[string]interface{}{"instances": []testenv.Object{
		testenv.Instance("i-0a0000000000000a1", "go-a"), testenv.Instance("i-0a0000000000000a2", "go-b")}}
	ep, plan := ec2Plan(t, seed, []string{"i-0a0000000000000a1"})
	p, err := host.Load(plan.SourceType)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unload()
	if p.Info().Capabilities&host.CapZeroCopy == 0 {
		t.Error("provider-ec2 does not report zero copy")
	}
	s, err := p.Open(plan.SourceConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []string
	err = s.Inventory(context.Background(), "instances", "where name = 'go-b'", func(item json.RawMessage) {
		var v struct{ ID string }
		if err := json.Unmarshal(item, &v); err != nil {
			t.Error(err)
		}
		ids = append(ids, v.ID)
	}, nil)
	if err != nil || len(ids) != 1 || ids[0] != "i-0a0000000000000a2" {
		t.Fatalf("Inventory where name = 'go-b': %v %v", ids, err)
	}
	if st := ep.InstanceState(ids[0]); st != "running" {
		t.Errorf("aws says %s is %s", ids[0], st)
	}
	if err := s.Inventory(context.Background(), "instnces", "", nil, nil); !errors.Is(err, host.ErrInvalid) &&
		!errors.Is(err, host.ErrUnsupported) {
		t.Errorf("inventory of a misspelt kind = %v", err)
	}
}

func TestEC2ZeroCopyMigrate(t *testing.T) {
	const id = "i-0a0000000000000b1"
	seed := map[string]interface{}{"instances": []testenv.Object{testenv.Instance(id, "go-web")}}
	ep, plan := ec2Plan(t, seed, []string{id}, "--start-delay", "0.2", "--stop-delay", "0.3",
		"--snapshot-delay", "0.8", "--volume-delay", "0.3")
	p, err := host.Load(plan.SourceType)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unload()
	dir := t.TempDir()
	var progress int
	sum, err := p.Migrate(context.Background(), plan.SourceConfig, plan.JSON, host.RunOptions{
		StateDir: filepath.Join(dir, "state"), OutputDir: filepath.Join(dir, "out"),
		OnEvent: func(ev host.Event) {
			if ev.Type == host.EventProgress {
				progress++
			}
		}})
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if sum.Succeeded != 1 || sum.Exit != host.ExitOK {
		t.Fatalf("summary %+v", sum)
	}
	vols := ep.Tagged("volumes")
	if len(vols) != 3 {
		t.Fatalf("%d plan-tagged volumes, want one per source volume (3)", len(vols))
	}
	for _, v := range vols {
		if v["az"] != "us-east-1b" || v["state"] != "available" {
			t.Errorf("volume %v: want available in target-az us-east-1b", v)
		}
	}
	// Zero copy keeps the snapshots until the VM boots; CleanupPlan
	// (pallet cleanup) then deletes them.
	if s := ep.Tagged("snapshots"); len(s) != 3 {
		t.Errorf("%d snapshots kept after success, want 3 (keep-snapshots-until-boot)", len(s))
	}
	if _, err := p.CleanupPlan(context.Background(), plan.SourceConfig, plan.JSON, host.RunOptions{
		StateDir: filepath.Join(dir, "state"), OutputDir: filepath.Join(dir, "out")}); err != nil {
		t.Fatalf("CleanupPlan: %v", err)
	}
	if s := ep.Tagged("snapshots"); len(s) != 0 {
		t.Errorf("%d snapshots left after CleanupPlan", len(s))
	}
	if n := ep.Calls("CreateSnapshots"); n != 1 {
		t.Errorf("%d CreateSnapshots calls, want one crash-consistent call", n)
	}
	if st := ep.InstanceState(id); st != "stopped" {
		t.Errorf("aws: the source is %s after a cold migration, want stopped", st)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "out", id, "*"))
	if len(m) == 0 {
		t.Error("no manifests written")
	}
	if progress == 0 {
		t.Error("no progress events")
	}
}

// A cancelled context rolls the VM back: snapshots and volumes deleted,
// the instance running again.
func TestEC2CancelRollsBack(t *testing.T) {
	const id = "i-0a0000000000000c1"
	seed := map[string]interface{}{"instances": []testenv.Object{testenv.Instance(id, "go-cancel")}}
	ep, plan := ec2Plan(t, seed, []string{id}, "--stop-delay", "0.2", "--snapshot-delay", "30",
		"--volume-delay", "0.2")
	p, err := host.Load(plan.SourceType)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Unload()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rollback bool
	done := make(chan error, 1)
	var sum *host.Summary
	go func() {
		var err error
		sum, err = p.Migrate(ctx, plan.SourceConfig, plan.JSON, host.RunOptions{
			StateDir: filepath.Join(t.TempDir(), "state"),
			OnEvent: func(ev host.Event) {
				if ev.What == "rollback" {
					rollback = true
				}
			}})
		done <- err
	}()
	ep.Wait("a CreateSnapshots call", 60*time.Second, func() bool { return ep.Calls("CreateSnapshots") >= 1 })
	time.Sleep(500 * time.Millisecond)
	cancel()
	var err2 error
	select {
	case err2 = <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("Migrate did not return within 120s of the cancel")
	}
	var xe *host.ExitError
	if !errors.As(err2, &xe) || xe.Code != host.ExitCancelled || !errors.Is(err2, context.Canceled) {
		t.Fatalf("Migrate = %v, want ExitCancelled matching context.Canceled", err2)
	}
	if sum == nil || sum.Cancelled != 1 {
		t.Errorf("summary %+v, want 1 cancelled", sum)
	}
	if !rollback {
		t.Error("no rollback event")
	}
	if s := ep.Tagged("snapshots"); len(s) != 0 {
		t.Errorf("%d snapshots left after the rollback", len(s))
	}
	if v := ep.Tagged("volumes"); len(v) != 0 {
		t.Errorf("%d volumes left after the rollback", len(v))
	}
	ep.Wait("the instance running again (aws ec2 describe-instances)", 30*time.Second,
		func() bool { return ep.InstanceState(id) == "running" })
}
