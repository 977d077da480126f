// SPDX-License-Identifier: Apache-2.0
package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"pallet.dev/host"
	"pallet.dev/host/internal/testenv"
)

// The SYNOPSIS of docs/go-binding.md, compiled (not run: it needs a
// provider and a plan).
func Example_synopsis() {
	ctx := context.Background()
	run := func() error {
		// synopsis:begin
		plan, err := host.LoadPlan("", "plan.yaml") // Plan, Providers, Secret, maps
		if err != nil {
			return err
		}
		p, err := host.Load(plan.SourceType) // "ec2": pallet-provider-ec2.so
		if err != nil {
			return err
		}
		defer p.Unload()

		s, err := p.Open(plan.SourceConfig) // the provider's open()
		if err != nil {
			return err
		}
		err = s.Inventory(ctx, "instances", "where powerState = 'On' order by name",
			func(item json.RawMessage) { fmt.Printf("%s\n", item) }, nil)
		s.Close()
		if err != nil {
			return err
		}

		sum, err := p.Migrate(ctx, plan.SourceConfig, plan.JSON, host.RunOptions{
			StateDir:    "/var/lib/ctl/" + plan.Name,
			MaxInFlight: 4,
			OnEvent:     func(ev host.Event) { log.Printf("%s", ev.JSON) },
		})
		// synopsis:end
		_ = sum
		return err
	}
	_ = run
}

// The doc's SYNOPSIS is the example above, line for line.
func TestBindingDocSynopsis(t *testing.T) {
	src := testenv.SourceDir(t)
	doc, err := os.ReadFile(filepath.Join(src, "docs", "go-binding.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## SYNOPSIS\\s*```go\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/go-binding.md: no ```go block under SYNOPSIS")
	}
	ex, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile("(?s)// synopsis:begin\\n(.*?)// synopsis:end").FindSubmatch(ex)
	norm := func(b []byte) []string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.Join(strings.Fields(l), " "); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	want := norm(body[1])
	var got []string
	for _, l := range norm(m[1]) {
		if !strings.HasPrefix(l, "import ") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/go-binding.md SYNOPSIS differs from example_test.go:\n--- doc\n%s\n--- example\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
