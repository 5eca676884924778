//go:build e2e

package chaos_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// TestMultiNodeCluster runs the sidecars against a real Consul cluster on
// this machine: three servers and two client agents, each on its own
// loopback address. writer-1's sidecar registers with client-1; writer-2's
// and the dispatcher's with client-2. Under steady load it checks that a
// heartbeat seen by one client is visible fleet-wide, that a KV policy
// change reaches every sidecar, that an isolated agent's traffic moves to
// its peer on the other client, that losing one server changes nothing,
// and that losing a client agent marks its agents critical and moves their
// traffic to the others. No request may be lost.
func TestMultiNodeCluster(t *testing.T) {
	need(t, "python3")
	cl := consultest.StartCluster(t, 3, 2)
	server, client1, client2 := cl.Servers[0], cl.Clients[0], cl.Clients[1]
	viaServer, viaClient2 := server.Client(t), client2.Client(t)

	f := &fleet{t: t}
	f.lite = httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(f.lite.Close)
	f.primary = fakellm.New(fakellm.Options{Name: "gpt-4o"})
	f.mini = fakellm.New(fakellm.Options{Name: "gpt-4o-mini"})
	primarySrv, miniSrv := httptest.NewServer(f.primary), httptest.NewServer(f.mini)
	t.Cleanup(primarySrv.Close)
	t.Cleanup(miniSrv.Close)
	f.flaky = newFlaky(t, f)
	f.steady = httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(f.steady.Close)
	f.writers = []*sidecarProc{f.startWriter(1, client1.HTTPAddr), f.startWriter(2, client2.HTTPAddr)}
	f.startDispatcher(client2.HTTPAddr, primarySrv.URL, miniSrv.URL)

	// A heartbeat seen by one client is visible fleet-wide.
	f.waitFor("both writers passing, seen through a server and the other client", 30*time.Second, func() bool {
		for _, c := range []*api.Client{viaServer, viaClient2} {
			if heartbeatStatus(c, "writer-1") != api.HealthPassing || heartbeatStatus(c, "writer-2") != api.HealthPassing {
				return false
			}
		}
		return true
	})
	if out := heartbeatOutput(viaClient2, "writer-1"); !strings.Contains(out, "handled") {
		t.Fatalf("writer-1's heartbeat note, registered with client-1, as client-2 sees it: %q", out)
	}
	f.waitFor("the dispatcher to know both writers", 20*time.Second, func() bool { return f.dispatcherKnows(2) })
	l := f.startLoad(20, taskCall)

	// A KV policy change, pushed to a server, reaches every sidecar.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "breakers.hcl"), []byte("breaker \"fleet\" {\n  consecutive_failures = 5\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	push := exec.Command(sidecarBin, "policy", "push", "-consul", server.HTTPAddr, dir)
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("policy push: %v\n%s", err, out)
	}
	f.waitFor("the policy on both writers", 15*time.Second, func() bool {
		return breakerThreshold(f.writers[0], "fleet") == 5 && breakerThreshold(f.writers[1], "fleet") == 5
	})

	// writer-1 hangs: isolated, critical fleet-wide, its traffic moves to
	// writer-2 on the other client; its sidecar restarts it.
	if err := f.writers[0].agentControl("/hang", ""); err != nil {
		t.Fatal(err)
	}
	f.waitFor("writer-1 critical as client-2 sees it", 15*time.Second, func() bool {
		return heartbeatStatus(viaClient2, "writer-1") == api.HealthCritical
	})
	f.waitFor("the dispatcher sending every task to writer-2", 10*time.Second, func() bool { return onlyWriter2(t, f) })
	f.waitFor("writer-1 restarted and passing again", 30*time.Second, func() bool {
		return f.writers[0].restarts() > 0 && heartbeatStatus(viaClient2, "writer-1") == api.HealthPassing
	})

	// Losing one server (no quorum loss) changes nothing for the sidecars.
	server.Kill()
	viaServer = cl.Servers[1].Client(t)
	before := heartbeatOutput(viaServer, "writer-2")
	f.waitFor("heartbeats still reaching the catalog", 15*time.Second, func() bool {
		out := heartbeatOutput(viaServer, "writer-2")
		return out != "" && out != before && heartbeatStatus(viaServer, "writer-1") == api.HealthPassing &&
			heartbeatStatus(viaServer, "writer-2") == api.HealthPassing
	})

	// Losing a client agent marks its agents critical; traffic moves.
	client1.Kill()
	f.waitFor("writer-1 critical once client-1 is gone", 30*time.Second, func() bool {
		return serviceStatus(viaClient2, "writer-1") == api.HealthCritical
	})
	f.waitFor("the dispatcher sending every task to writer-2", 10*time.Second, func() bool { return onlyWriter2(t, f) })

	results := l.stop()
	r, lostOnes := tally("multi-node cluster", results)
	t.Logf("%d requests: %d primary, %d fallback, %d clear errors, %d lost", r.Requests, r.Primary, r.Fallback, r.Errors, r.Lost)
	if r.Lost > 0 || r.Errors > 0 {
		t.Errorf("%d lost and %d errors of %d requests: %v\n%s", r.Lost, r.Errors, r.Requests, lostOnes, f.logs())
	}
}

// heartbeatStatus is the status of an agent's heartbeat check in the
// catalog, as the node c talks to sees it.
func heartbeatStatus(c *api.Client, id string) string {
	for _, ch := range checksOf(c, id) {
		if ch.Name == "heartbeat" {
			return ch.Status
		}
	}
	return ""
}

func heartbeatOutput(c *api.Client, id string) string {
	for _, ch := range checksOf(c, id) {
		if ch.Name == "heartbeat" {
			return ch.Output
		}
	}
	return ""
}

// serviceStatus is the worst status of an instance's checks, its node's
// (serfHealth) included.
func serviceStatus(c *api.Client, id string) string {
	return api.HealthChecks(checksOf(c, id)).AggregatedStatus()
}

func checksOf(c *api.Client, id string) []*api.HealthCheck {
	entries, _, err := c.Health().Service("writer", "", false, nil)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if e.Service != nil && e.Service.ID == id {
			return e.Checks
		}
	}
	return nil
}

func breakerThreshold(p *sidecarProc, name string) float64 {
	cfg, _ := p.status()["config"].(map[string]any)
	bs, _ := cfg["breakers"].(map[string]any)
	b, _ := bs[name].(map[string]any)
	n, _ := b["consecutive_failures"].(float64)
	return n
}

// onlyWriter2 sends five tasks through the dispatcher and says whether
// writer-2 answered each of them itself.
func onlyWriter2(t *testing.T, f *fleet) bool {
	c := http.Client{Timeout: 10 * time.Second}
	for range 5 {
		resp, err := c.Post(f.dispatcher.control+"/call/writer/task", "application/json", strings.NewReader(`{"input":"x"}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Sidecar-Instance") != "writer-2" ||
			resp.Header.Get("X-Sidecar-Fallback") == "true" {
			return false
		}
	}
	return true
}
