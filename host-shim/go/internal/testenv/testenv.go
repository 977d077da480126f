// SPDX-License-Identifier: Apache-2.0
// Package testenv starts the real components the Go tests run against:
// the local EC2/EBS/STS endpoint (tests/endpoint, as tests/e2e's harness
// starts it) and /usr/bin/aws to check what it holds. The build sets
// PALLET_SOURCE_DIR and PALLET_PROVIDER_PATH.
package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The endpoint's two accounts (tests/endpoint/endpoint_fixture.py).
const (
	SourceKey    = "AKIAPALLETSOURCE0001"
	SourceSecret = "pallet/source/secret/key/0000000000000001"
	PlanUID      = "5a1d0000-0000-4000-8000-0000000000e2"
)

// SourceDir is the source tree; a test run outside the build fails.
func SourceDir(t testing.TB) string {
	d := os.Getenv("PALLET_SOURCE_DIR")
	if d == "" {
		t.Fatal("PALLET_SOURCE_DIR is not set: run the Go tests through ctest (go-binding-*, go-controller)")
	}
	if os.Getenv("PALLET_PROVIDER_PATH") == "" {
		t.Fatal("PALLET_PROVIDER_PATH is not set: run the Go tests through ctest")
	}
	return d
}

// Endpoint is a running tests/endpoint/pallet-endpoint.py.
type Endpoint struct {
	t    testing.TB
	cmd  *exec.Cmd
	Port int
	URL  string
	dir  string
}

// StartEndpoint starts the endpoint on a free port with seed (the world's
// instances and volumes) and extra arguments (delays); t.Cleanup stops it.
func StartEndpoint(t testing.TB, seed interface{}, args ...string) *Endpoint {
	src := SourceDir(t)
	dir := t.TempDir()
	sp := filepath.Join(dir, "seed.json")
	b, err := json.Marshal(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{filepath.Join(src, "tests", "endpoint", "pallet-endpoint.py"),
		"--port", "0", "--call-log", filepath.Join(dir, "calls.jsonl"), "--seed", sp}, args...)
	cmd := exec.Command("/usr/bin/python3", argv...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pallet-endpoint: %v", err)
	}
	ep := &Endpoint{t: t, cmd: cmd, dir: dir}
	t.Cleanup(ep.stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "PORT=") {
		t.Fatalf("pallet-endpoint did not start: %q %v", line, err)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "PORT=%d", &ep.Port); err != nil {
		t.Fatal(err)
	}
	ep.URL = fmt.Sprintf("http://127.0.0.1:%d", ep.Port)
	return ep
}

func (e *Endpoint) stop() {
	if e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
			<-done
		}
	}
}

// control GETs /_pallet/PATH (the endpoint's own view of its world).
func (e *Endpoint) control(path string, v interface{}) {
	c := http.Client{Timeout: 30 * time.Second}
	r, err := c.Get(e.URL + "/_pallet/" + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		e.t.Fatal(err)
	}
}

// Object is a JSON object of the endpoint's state.
type Object = map[string]interface{}

// Tagged are this plan's snapshots or volumes ("snapshots", "volumes")
// that still exist.
func (e *Endpoint) Tagged(kind string) []Object {
	var st map[string]json.RawMessage
	e.control("state", &st)
	var objs []Object
	if err := json.Unmarshal(st[kind], &objs); err != nil {
		var m map[string]Object
		if err := json.Unmarshal(st[kind], &m); err != nil {
			e.t.Fatalf("state %s: %v", kind, err)
		}
		for _, o := range m {
			objs = append(objs, o)
		}
	}
	var out []Object
	for _, o := range objs {
		tags, _ := o["tags"].(map[string]interface{})
		if tags["forklift.konveyor.io/plan"] == PlanUID && o["state"] != "deleted" {
			out = append(out, o)
		}
	}
	return out
}

// Calls counts the endpoint's successful calls of action.
func (e *Endpoint) Calls(action string) int {
	var c struct {
		Calls []struct {
			Action  string `json:"action"`
			Outcome string `json:"outcome"`
		} `json:"calls"`
	}
	e.control("calls", &c)
	n := 0
	for _, x := range c.Calls {
		if x.Action == action && x.Outcome == "ok" {
			n++
		}
	}
	return n
}

// Wait polls cond every 100 ms until it holds or timeout passes.
func (e *Endpoint) Wait(what string, timeout time.Duration, cond func() bool) {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// AWS runs /usr/bin/aws against the endpoint as the source account and
// decodes its JSON output.
func (e *Endpoint) AWS(args ...string) map[string]interface{} {
	argv := append([]string{"--endpoint-url", e.URL, "--region", "us-east-1", "--output", "json"}, args...)
	cmd := exec.Command("/usr/bin/aws", argv...)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+SourceKey, "AWS_SECRET_ACCESS_KEY="+SourceSecret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=",
		"HOME="+e.dir)
	b, err := cmd.Output()
	if err != nil {
		msg := ""
		if xe, ok := err.(*exec.ExitError); ok {
			msg = string(xe.Stderr)
		}
		e.t.Fatalf("aws %s: %v %s", strings.Join(args, " "), err, msg)
	}
	out := map[string]interface{}{}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("aws %s: not JSON: %v", strings.Join(args, " "), err)
		}
	}
	return out
}

// InstanceState is the instance's state name, as the aws CLI reads it.
func (e *Endpoint) InstanceState(id string) string {
	r := e.AWS("ec2", "describe-instances", "--instance-ids", id)
	for _, res := range r["Reservations"].([]interface{}) {
		for _, i := range res.(map[string]interface{})["Instances"].([]interface{}) {
			st := i.(map[string]interface{})["State"].(map[string]interface{})
			return st["Name"].(string)
		}
	}
	e.t.Fatalf("aws ec2 describe-instances: no instance %s", id)
	return ""
}

// Subnets are the source account's subnet ids (aws ec2 describe-subnets).
func (e *Endpoint) Subnets() []string {
	var ids []string
	for _, s := range e.AWS("ec2", "describe-subnets")["Subnets"].([]interface{}) {
		ids = append(ids, s.(map[string]interface{})["SubnetId"].(string))
	}
	return ids
}

// PlanYAML is a Forklift Plan for the endpoint (the shape of tests/e2e's
// plan_yaml): an ec2 source Provider, its Secret, the maps, the Plan.
func (e *Endpoint) PlanYAML(name string, vms []string, settings map[string]interface{}) string {
	set := map[string]interface{}{"target-az": "us-east-1b"}
	for k, v := range settings {
		set[k] = v
	}
	ref := func(n string) map[string]string { return map[string]string{"name": n, "namespace": "mtv"} }
	pair := map[string]interface{}{"source": ref("ec2-src"), "destination": ref("host")}
	var nets, stos []interface{}
	for _, s := range e.Subnets() {
		nets = append(nets, map[string]interface{}{"source": map[string]string{"id": s},
			"destination": map[string]string{"type": "pod"}})
	}
	for _, t := range []string{"gp3", "gp2", "io1", "io2", "standard"} {
		stos = append(stos, map[string]interface{}{"source": map[string]string{"name": t},
			"destination": map[string]string{"storageClass": "ebs-" + t}})
	}
	var vmList []interface{}
	for _, v := range vms {
		vmList = append(vmList, map[string]string{"id": v})
	}
	docs := []interface{}{
		map[string]interface{}{"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
			"metadata": ref("ec2-src"),
			"spec": map[string]interface{}{"type": "ec2", "url": e.URL, "secret": ref("ec2-creds"),
				"settings": set}},
		map[string]interface{}{"apiVersion": "v1", "kind": "Secret", "metadata": ref("ec2-creds"),
			"stringData": map[string]string{"region": "us-east-1", "accessKeyId": SourceKey,
				"secretAccessKey": SourceSecret}},
		map[string]interface{}{"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "NetworkMap",
			"metadata": ref("net"), "spec": map[string]interface{}{"provider": pair, "map": nets}},
		map[string]interface{}{"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "StorageMap",
			"metadata": ref("sto"), "spec": map[string]interface{}{"provider": pair, "map": stos}},
		map[string]interface{}{"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
			"metadata": map[string]string{"name": name, "namespace": "mtv", "uid": PlanUID},
			"spec": map[string]interface{}{"provider": pair, "targetNamespace": "vms", "type": "cold",
				"map": map[string]interface{}{"network": ref("net"), "storage": ref("sto")},
				"vms": vmList}},
	}
	var sb strings.Builder
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			e.t.Fatal(err)
		}
		// JSON is YAML: one document per line.
		fmt.Fprintf(&sb, "---\n%s\n", b)
	}
	return sb.String()
}

// Instance is a seed instance with three EBS volumes (no disk images:
// zero-copy migrations re-create volumes and never read blocks).
func Instance(id, name string) Object {
	return Object{"id": id, "name": name, "type": "m5.large", "az": "us-east-1a",
		"state": "running", "tags": map[string]string{"tier": "web"},
		"volumes": []Object{
			{"device": "/dev/xvda", "sizeGiB": 8, "type": "gp3", "iops": 3000, "throughput": 125},
			{"device": "/dev/sdf", "sizeGiB": 20, "type": "io2", "iops": 5000},
			{"device": "/dev/sdg", "sizeGiB": 10, "type": "gp3"}}}
}
