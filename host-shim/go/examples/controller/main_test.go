// SPDX-License-Identifier: Apache-2.0
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pallet.dev/host/internal/testenv"
)

type line = map[string]interface{}

func runController(t *testing.T, args ...string) (int, []line) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var m line
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		lines = append(lines, m)
	}
	if errb.Len() > 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return code, lines
}

// nullPlan is examples/demo-null/plan.yaml for provider type typ, named name.
func nullPlan(t *testing.T, typ, name string) string {
	src := testenv.SourceDir(t)
	b, err := os.ReadFile(filepath.Join(src, "examples", "demo-null", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `type: "null"`, `type: "`+typ+`"`, 1)
	s = strings.Replace(s, "name: demo-null\n", "name: "+name+"\n", 1)
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// maxInFlight is the most VMs of plan between their first step and their
// "done" or "failed" event.
func maxInFlight(lines []line, plan string) int {
	live := map[string]bool{}
	most := 0
	for _, l := range lines {
		if l["plan"] != plan {
			continue
		}
		vm, _ := l["vm"].(string)
		switch l["event"] {
		case "step":
			live[vm] = true
		case "done", "failed", "cancelled":
			delete(live, vm)
		}
		if len(live) > most {
			most = len(live)
		}
	}
	return most
}

func reconciled(lines []line) map[string]string {
	r := map[string]string{}
	for _, l := range lines {
		if l["event"] == "reconciled" {
			p, _ := l["plan"].(string)
			r[p], _ = l["status"].(string)
		}
	}
	return r
}

// Two plans of two provider types at once: the second provider is loaded
// while the first is, and each is unloaded when its plan is done.
func TestControllerNullSwap(t *testing.T) {
	a := nullPlan(t, "null", "plan-a")
	b := nullPlan(t, "null-parallel", "plan-b")
	code, lines := runController(t, "-state-root", t.TempDir(), "-max-in-flight", "1", "-plans", "2", a, b)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, lines)
	}
	both, unloaded := false, map[string]bool{}
	var last []interface{}
	for _, l := range lines {
		if l["event"] != "provider" {
			continue
		}
		last, _ = l["loaded"].([]interface{})
		if l["action"] == "loaded" && len(last) == 2 {
			both = true
		}
		if l["action"] == "unloaded" {
			unloaded[l["provider"].(string)] = true
		}
	}
	if !both || !unloaded["null"] || !unloaded["null-parallel"] || len(last) != 0 {
		t.Errorf("providers: both loaded at once %v, unloaded %v, loaded at the end %v", both, unloaded, last)
	}
	if r := reconciled(lines); r["plan-a"] != "succeeded" || r["plan-b"] != "succeeded" {
		t.Errorf("reconciled %v", r)
	}
	if n := maxInFlight(lines, "plan-a"); n != 1 {
		t.Errorf("plan-a had %d VMs in flight with -max-in-flight 1", n)
	}
}

func TestControllerBadInput(t *testing.T) {
	testenv.SourceDir(t)
	if code, _ := runController(t); code != 2 {
		t.Errorf("no plan: exit %d, want 2", code)
	}
	code, lines := runController(t, "-state-root", t.TempDir(), filepath.Join(t.TempDir(), "nope.yaml"))
	if code != 5 || len(lines) != 1 || !strings.Contains(lines[0]["message"].(string), "nope.yaml") {
		t.Errorf("a missing plan file: exit %d, %v", code, lines)
	}
	p := nullPlan(t, "no-such-type", "plan-x")
	if code, lines := runController(t, "-state-root", t.TempDir(), p); code != 3 {
		t.Errorf("an unknown provider type: exit %d, %v", code, lines)
	}
}

func clearAWS(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// SIGINT to the built controller cancels its context: the VM in flight is
// rolled back (snapshots and volumes deleted, the instance running) and
// the exit code is 4, as for `pallet migrate`.
func TestControllerSignalRollsBack(t *testing.T) {
	bin := os.Getenv("PALLET_GO_CONTROLLER")
	if bin == "" {
		t.Fatal("PALLET_GO_CONTROLLER is not set: run through ctest (go-controller)")
	}
	clearAWS(t)
	const id = "i-0c00000000000c0a1"
	seed := map[string]interface{}{"instances": []testenv.Object{testenv.Instance(id, "sig")}}
	ep := testenv.StartEndpoint(t, seed, "--stop-delay", "0.2", "--snapshot-delay", "30",
		"--volume-delay", "0.2")
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(ep.PlanYAML("go-sig", []string{id}, nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-state-root", t.TempDir(), plan)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ep.Wait("a CreateSnapshots call", 60*time.Second, func() bool { return ep.Calls("CreateSnapshots") >= 1 })
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != 4 {
		t.Fatalf("controller after SIGINT: %v, want exit 4\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"status":"cancelled"`) {
		t.Errorf("no cancelled reconcile in the output:\n%s", out.String())
	}
	if n := len(ep.Tagged("snapshots")) + len(ep.Tagged("volumes")); n != 0 {
		t.Errorf("%d snapshots/volumes left after the rollback", n)
	}
	ep.Wait("the instance running again (aws ec2 describe-instances)", 30*time.Second,
		func() bool { return ep.InstanceState(id) == "running" })
}

// The Go controller migrates two EC2 instances (zero copy) against the
// local endpoint, two at once, while a null plan runs beside it.
func TestControllerEC2(t *testing.T) {
	clearAWS(t)
	ids := []string{"i-0c0000000000000a1", "i-0c0000000000000a2"}
	seed := map[string]interface{}{"instances": []testenv.Object{
		testenv.Instance(ids[0], "web-a"), testenv.Instance(ids[1], "web-b")}}
	ep := testenv.StartEndpoint(t, seed, "--start-delay", "0.2", "--stop-delay", "0.3",
		"--snapshot-delay", "0.8", "--volume-delay", "0.3")
	ec2 := filepath.Join(t.TempDir(), "ec2.yaml")
	// No boot to wait for here: the snapshots go in the same run.
	keep := map[string]interface{}{"keep-snapshots-until-boot": false}
	if err := os.WriteFile(ec2, []byte(ep.PlanYAML("go-ec2", ids, keep)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, lines := runController(t, "-state-root", t.TempDir(), "-output-dir", out,
		"-max-in-flight", "2", ec2, nullPlan(t, "null", "beside"))
	if code != 0 {
		t.Fatalf("exit %d: %v", code, lines)
	}
	if r := reconciled(lines); r["go-ec2"] != "succeeded" || r["beside"] != "succeeded" {
		t.Fatalf("reconciled %v", r)
	}
	if n := len(ep.Tagged("volumes")); n != 6 {
		t.Errorf("%d plan-tagged volumes, want 6 (3 per instance)", n)
	}
	if n := len(ep.Tagged("snapshots")); n != 0 {
		t.Errorf("%d snapshots left with keep-snapshots-until-boot false", n)
	}
	for _, id := range ids {
		if st := ep.InstanceState(id); st != "stopped" {
			t.Errorf("aws: %s is %s, want stopped", id, st)
		}
		if m, _ := filepath.Glob(filepath.Join(out, "go-ec2", id, "*")); len(m) == 0 {
			t.Errorf("no manifests for %s", id)
		}
	}
	if n := maxInFlight(lines, "go-ec2"); n > 2 {
		t.Errorf("%d VMs in flight with -max-in-flight 2", n)
	}
}

// demoImage writes a sparse disk image of size bytes with data at a few
// offsets (as scripts/demo.sh builds the demo's data volume).
func demoImage(t *testing.T, path string, size int64, chunks map[int64][]byte) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range chunks {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// sameFile compares two files byte for byte.
func sameFile(t *testing.T, a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Error(err)
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 4<<20), make([]byte, 4<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

// The Go controller migrates the demo instance: examples/demo/plan.yaml.in
// and the endpoint seed of scripts/demo.sh (demo-web, a 2 GiB root and a
// 1 GiB data volume, copy mode to local disk files), through
// provider-ec2 against the local endpoint. skipGuestConversion is true:
// conversion is the same provider-ec2 code (virt-v2v-in-place) the CLI's
// slow e2e tests and the demo run, minutes under TCG; so the root image
// here is synthesized data, not a guest. The copied disk files must be
// byte-exact copies of the volume data the endpoint serves.
func TestControllerDemo(t *testing.T) {
	clearAWS(t)
	src := testenv.SourceDir(t)
	out := t.TempDir()
	images := filepath.Join(out, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(1))
	random := func(n int) []byte { b := make([]byte, n); rnd.Read(b); return b }
	root, data := filepath.Join(images, "root.raw"), filepath.Join(images, "data.raw")
	demoImage(t, root, 2<<30, map[int64][]byte{0: random(1 << 20), 1 << 30: random(3 << 20),
		(2 << 30) - 4096: random(4096)})
	demoImage(t, data, 1<<30, map[int64][]byte{3 << 20: []byte("pallet demo data volume\n"),
		100 << 20: random(4 << 20)})
	const id = "i-0de300000000d3e00"
	seed := map[string]interface{}{"instances": []testenv.Object{{
		"id": id, "name": "demo-web", "type": "t3.medium", "az": "us-east-1a",
		"state": "running", "bootMode": "legacy-bios",
		"tags": map[string]string{"app": "demo", "tier": "web"},
		"volumes": []testenv.Object{
			{"device": "/dev/xvda", "type": "gp3", "sizeGiB": 2, "image": root},
			{"device": "/dev/sdf", "type": "gp3", "sizeGiB": 1, "image": data}},
	}}}
	ep := testenv.StartEndpoint(t, seed, "--stop-delay", "1", "--snapshot-delay", "2")
	inst := ep.AWS("ec2", "describe-instances", "--instance-ids", id)["Reservations"].([]interface{})[0].(map[string]interface{})["Instances"].([]interface{})[0].(map[string]interface{})
	tmpl, err := os.ReadFile(filepath.Join(src, "examples", "demo", "plan.yaml.in"))
	if err != nil {
		t.Fatal(err)
	}
	// The demo runs in a cluster (--apply); this controller writes
	// manifests, so the copy goes to local files, as the settings say.
	plan := strings.NewReplacer("@PORT@", strconv.Itoa(ep.Port), "@SUBNET@", inst["SubnetId"].(string),
		"@OUT@", out, "@SKIP@", "true",
		"    force-tcg: \"true\"\n",
		"    force-tcg: \"true\"\n    transfer-mode: copy\n    copy-target-dir: "+out+"/disks\n").Replace(string(tmpl))
	if !strings.Contains(plan, "copy-target-dir") {
		t.Fatal("examples/demo/plan.yaml.in has no force-tcg setting line to add the copy settings after")
	}
	pp := filepath.Join(out, "plan.yaml")
	if err := os.WriteFile(pp, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	code, lines := runController(t, "-state-root", t.TempDir(), "-output-dir",
		filepath.Join(out, "manifests"), pp)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, lines)
	}
	if r := reconciled(lines); r["demo"] != "succeeded" {
		t.Fatalf("reconciled %v", r)
	}
	disks, _ := filepath.Glob(filepath.Join(out, "disks", "*"))
	want := []string{filepath.Join(out, "disks", "demo-web-disk-0.raw"),
		filepath.Join(out, "disks", "demo-web-disk-1.raw")}
	if strings.Join(disks, ",") != strings.Join(want, ",") {
		t.Fatalf("copied disks %v, want %v", disks, want)
	}
	for i, img := range []string{root, data} {
		if !sameFile(t, img, want[i]) {
			t.Errorf("%s is not a byte-exact copy of the endpoint's %s", want[i], img)
		}
	}
	if n := len(ep.Tagged("snapshots")); n != 0 {
		t.Errorf("%d snapshots left after the migration", n)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "manifests", "demo", id, "*")); len(m) == 0 {
		t.Errorf("no manifests for %s", id)
	}
}
