//go:build e2e

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
)

// TestSmallFleet runs make fleet's program with 4 agents, one hung and one
// killed: each failure must be seen critical in Consul within the TTL, no
// task may be lost, and the Consul load must be measured.
func TestSmallFleet(t *testing.T) {
	consulBin := consultest.Binary(t)
	root := testbin.RepoRoot()
	for pkg, name := range map[string]string{"./cmd/sidecar": "sidecar", "./examples/go/agent": "agent-go"} {
		if err := testbin.BuildGo(pkg, filepath.Join(root, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := run(ctx, options{root: root, consulBin: consulBin, n: 4, failures: 2, duration: 15 * time.Second, rate: 20, out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Tasks < 250 || rep.Lost != 0 || rep.Errors != 0 || rep.Answered != rep.Tasks {
		t.Errorf("tasks: %+v\n%s", rep, out.String())
	}
	if len(rep.Failures) != 2 || rep.Failures[0].Kind == rep.Failures[1].Kind {
		t.Fatalf("want one hang and one kill, got %+v", rep.Failures)
	}
	for _, f := range rep.Failures {
		if !f.Within {
			t.Errorf("%s (%s) detected after %.1fs, bound %s", f.Agent, f.Kind, f.Detected, rep.DetectionBound)
		}
	}
	if rep.Writes <= 0 || rep.ConsulCPU <= 0 || rep.SidecarRSSMB <= 0 {
		t.Errorf("the Consul load and sidecar memory were not measured: %+v", rep)
	}
	if !strings.Contains(out.String(), "detected by Consul within 5s") {
		t.Errorf("report:\n%s", out.String())
	}
}
