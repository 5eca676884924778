//go:build e2e

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// TestDemoShort runs the whole fleet demo in its short form, as make demo
// does: real Consul, real sidecars and agents in four languages, the fake
// models. Every task must be handled, each failure must be handled the way
// the narration says, and every process must be gone afterwards.
func TestDemoShort(t *testing.T) {
	consulBin := consultest.Binary(t)
	for _, bin := range []string{"python3", "node", "sh", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the demo needs %s (.ci/run installs it)", bin)
			}
			t.Skipf("the demo needs %s", bin)
		}
	}
	root := testbin.RepoRoot()
	if _, err := os.Stat(filepath.Join(root, "examples/node/node_modules/openai")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("examples/node needs its packages: make sdk-deps")
		}
		t.Skip("examples/node/node_modules missing: run make sdk-deps")
	}
	// The same binaries make build makes, where the demo's configurations
	// expect them.
	for pkg, name := range map[string]string{"./cmd/sidecar": "sidecar", "./test/fakellm/cmd/fakellm": "fakellm",
		"./examples/go/agent": "agent-go"} {
		if err := testbin.BuildGo(pkg, filepath.Join(root, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}

	out := &testutil.SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := run(ctx, options{root: root, consulBin: consulBin, short: true, out: out})
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	show := func() string { return out.String() }

	if rep.Total.Sent < 50 {
		t.Errorf("only %d tasks sent\n%s", rep.Total.Sent, show())
	}
	if n := rep.Total.Unhandled(); n != 0 {
		t.Errorf("%d of %d tasks not handled: %v\n%s", n, rep.Total.Sent, rep.Errors, show())
	}
	steady, model, outage, runaway, hang, service, recovered := rep.Counts[0], rep.Counts[1], rep.Counts[2],
		rep.Counts[3], rep.Counts[4], rep.Counts[5], rep.Counts[6]
	if steady.Primary != steady.Sent || steady.Sent == 0 {
		t.Errorf("steady state: %+v, want every task by the primary\n%s", steady, show())
	}
	if model.LiteModel == 0 {
		t.Errorf("primary model failing: no answer from the lighter model: %+v\n%s", model, show())
	}
	if outage.OtherProvider == 0 {
		t.Errorf("OpenAI down: no answer from claude-haiku (the other provider): %+v\n%s", outage, show())
	}
	// The indexer's runaway job is stopped by its budget, with a 429 that
	// names the budget and says when to retry; the writers' tasks meanwhile
	// are all handled as in the steady state.
	if rw := rep.Runaway; rw.Rejected == 0 || rw.Answered == 0 || !strings.Contains(rw.Message, `"`+runawayBudget+`"`) ||
		rw.Code != "budget_exceeded" || rw.RetryAfter == "" {
		t.Errorf("indexer runs away: %+v; want answers, then a 429 budget_exceeded naming budget %q with Retry-After\n%s",
			rw, runawayBudget, show())
	}
	if runaway.Primary != runaway.Sent || runaway.Sent == 0 {
		t.Errorf("indexer runs away: the writers' tasks %+v, want every one by the primary\n%s", runaway, show())
	}
	if hang.Peer == 0 || rep.Restarts < 1 {
		t.Errorf("writer-1 hung: %d answers by its peer, %d restarts; want both > 0\n%s", hang.Peer, rep.Restarts, show())
	}
	if service.Service == 0 {
		t.Errorf("service writer failing: no answer from writer-lite: %+v\n%s", service, show())
	}
	if recovered.Primary == 0 {
		t.Errorf("after recovery: no answer by the primary: %+v\n%s", recovered, show())
	}
	for _, want := range []string{
		"Breaker model:gpt-4o opened",            // from a sidecar's event stream
		"ops notified  agent.isolated: writer-1", // the webhook
		"ops notified  budget.warning: indexer-1, budget \"" + runawayBudget + "\"",
		"ops notified  budget.exceeded: indexer-1, budget \"" + runawayBudget + "\"",
		"Agent process restarted",
		"phase", "total", // the summary table
		"writer-lite-1", // sidecar fleet
	} {
		if !strings.Contains(show(), want) {
			t.Errorf("the demo's output lacks %q\n%s", want, show())
		}
	}
	// Everything the demo started is gone: its ports are free again.
	for _, port := range demoPorts {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("port %d still in use after the demo: %v", port, err)
			continue
		}
		l.Close()
	}
}
