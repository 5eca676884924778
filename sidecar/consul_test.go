package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// consulSidecar runs a sidecar registered in a real Consul dev agent.
type consulSidecar struct {
	s      *Sidecar
	consul *consultest.Agent
	client *discovery.Client
	hook   *hook
	e      *httpexpect.Expect
}

func startConsulSidecar(t *testing.T, interval, grace time.Duration) *consulSidecar {
	t.Helper()
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	agent := consultest.Start(t)
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	cfg := policies.Dev()
	cfg.Agent.Name, cfg.Agent.ID, cfg.Agent.Port = "writer", "writer-1", 8081
	cfg.Agent.Tags = []string{"python"}
	cfg.Agent.Meta = map[string]string{"team": "a"}
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Consul.Address = agent.HTTPAddr
	cfg.Consul.SyncInterval = 500 * time.Millisecond
	cfg.Consul.DeregisterCriticalAfter = time.Minute
	cfg.Health = policies.Health{HeartbeatInterval: interval, MissedHeartbeats: 2, Grace: grace, Notify: []string{"ops"}}
	cfg.Notify = map[string]policies.Notify{"ops": {Webhook: srv.URL, Timeout: time.Second, Retries: 2}}

	s := runConsulSidecar(t, cfg)
	client, err := discovery.NewClient(discovery.Config{Address: agent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	return &consulSidecar{s: s, consul: agent, client: client, hook: h, e: sidecartest.NewExpect(t, "http://"+s.Addr())}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// heartbeatCheckState reads the heartbeat check from the local agent API,
// where outputs are current.
func (c *consulSidecar) heartbeatCheckState(t *testing.T) (discovery.CheckStatus, string) {
	t.Helper()
	checks, err := c.client.AgentChecks(context.Background(), "writer-1")
	if err != nil {
		return "", "error: " + err.Error()
	}
	for _, ch := range checks {
		if ch.Name == "heartbeat" {
			return ch.Status, ch.Output
		}
	}
	return "", "absent"
}

func (c *consulSidecar) waitCheck(t *testing.T, want discovery.CheckStatus, limit time.Duration) string {
	t.Helper()
	var out string
	testutil.EventuallySeen(t, "heartbeat check "+string(want), limit, func() (bool, string) {
		var st discovery.CheckStatus
		st, out = c.heartbeatCheckState(t)
		return st == want, fmt.Sprintf("%s (%q)", st, out)
	})
	return out
}

func (c *consulSidecar) beat(note string) {
	c.e.POST("/v1/heartbeat").WithJSON(map[string]any{"note": note, "metrics": map[string]any{"tasks": 3}}).
		Expect().Status(http.StatusOK)
}

func TestConsulHeartbeatIsolationRecovery(t *testing.T) {
	const interval, grace = time.Second, 500 * time.Millisecond
	c := startConsulSidecar(t, interval, grace)

	// Given an agent that heartbeats
	c.beat("warming up")
	out := c.waitCheck(t, discovery.Passing, 15*time.Second)
	if !strings.Contains(out, "Note: warming up") || !strings.Contains(out, "Metrics: tasks=3") {
		t.Fatalf("passing output %q lacks the note and metrics", out)
	}

	// Then the agent is registered as a service with its tags, meta and port
	entries, err := c.client.ServiceHealth(context.Background(), "writer")
	if err != nil || len(entries) != 1 {
		t.Fatalf("/v1/health/service/writer: %v %+v", err, entries)
	}
	got := entries[0]
	if got.ID != "writer-1" || got.Port != 8081 || got.Meta["team"] != "a" || strings.Join(got.Tags, ",") != "ai-agent,python" {
		t.Fatalf("registered %+v", got)
	}
	if got.Meta["sidecar_control"] != c.s.Addr() || got.Meta["sidecar_version"] == "" {
		t.Fatalf("meta %v lacks the sidecar's version and control address %s", got.Meta, c.s.Addr())
	}

	// And it stays passing while heartbeats arrive
	for i := 0; i < 4; i++ {
		c.beat("working")
		time.Sleep(interval / 2)
	}
	last := time.Now()
	c.beat("last words")

	// When the heartbeats stop, then one interval later the check is still passing
	time.Sleep(time.Until(last.Add(interval)))
	if st, out := c.heartbeatCheckState(t); st != discovery.Passing {
		t.Fatalf("one interval after the last heartbeat: %s (%q), want passing", st, out)
	}

	// And after two intervals + grace it is critical, with one isolation notification
	out = c.waitCheck(t, discovery.Critical, 10*time.Second)
	if elapsed := time.Since(last); elapsed < 2*interval {
		t.Fatalf("critical after %s, sooner than two intervals", elapsed)
	}
	// Consul's own TTL may fire a moment before the sidecar's isolation
	// output arrives: both say critical; wait for the sidecar's words.
	testutil.EventuallySeen(t, "the isolation output", 5*time.Second, func() (bool, string) {
		_, out = c.heartbeatCheckState(t)
		return strings.Contains(out, "ISOLATED"), out
	})
	if !strings.Contains(out, "Note: last words") {
		t.Fatalf("critical output %q", out)
	}
	c.e.GET("/v1/status").Expect().JSON().Object().Value("health").Object().
		HasValue("state", "isolated").HasValue("reason", "missed_heartbeats")
	testutil.Eventually(t, "the isolation notification", 5*time.Second, func() bool { return len(c.hook.events()) >= 1 })
	// another TTL: no second notification may follow
	testutil.Poll(2*interval+grace, func() bool { return len(c.hook.events()) > 1 })
	evs := c.hook.events()
	if len(evs) != 1 || evs[0].Type != notify.EventAgentIsolated || evs[0].AgentID != "writer-1" || evs[0].Reason != health.ReasonMissedHeartbeats {
		t.Fatalf("notifications %+v, want exactly one agent.isolated", evs)
	}

	// When a heartbeat arrives, then the agent is passing again and a recovery is notified once
	c.beat("back")
	c.waitCheck(t, discovery.Passing, 10*time.Second)
	testutil.Eventually(t, "the recovery notification", 5*time.Second, func() bool { return len(c.hook.events()) >= 2 })
	if evs := c.hook.events(); len(evs) != 2 || evs[1].Type != notify.EventAgentRecovered {
		t.Fatalf("notifications %+v, want isolated then recovered", evs)
	}
}

func TestConsulReregistersAfterRestart(t *testing.T) {
	c := startConsulSidecar(t, 2*time.Second, time.Second)
	c.beat("before restart")
	c.waitCheck(t, discovery.Passing, 15*time.Second)

	testutil.Eventually(t, "the sidecar to have seen the registration", 5*time.Second, func() bool {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
		return c.s.consulSeen && c.s.consulRegistrations == 1
	})

	// When the Consul agent restarts and loses its state
	c.consul.Restart(t)

	// Then the sidecar registers the agent again within seconds, still passing
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the agent keeps heartbeating meanwhile
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if resp, err := http.Post("http://"+c.s.Addr()+"/v1/heartbeat", "application/json", nil); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	c.waitCheck(t, discovery.Passing, 15*time.Second)
	// (the new agent may show the check a moment before the registrar has
	// recorded that its registration went through)
	testutil.EventuallySeen(t, "registered at least twice", 5*time.Second, func() (bool, string) {
		st := c.s.Status().Registration
		return st.Registered && st.Registrations >= 2, fmt.Sprintf("%+v", st)
	})
	// And the event stream says it was registered again
	defer func() {
		if t.Failed() {
			t.Logf("events: %+v; registration %+v", c.s.RecentEvents(20), c.s.Status().Registration)
		}
	}()
	testutil.Eventually(t, "a consul.regained event", 5*time.Second, func() bool {
		for _, ev := range c.s.RecentEvents(20) {
			if ev.Type == notify.EventConsulRegained && strings.Contains(ev.Text, "had lost the registration") {
				return true
			}
		}
		return false
	})
}

// A sidecar that has stopped leaves no connection to Consul behind while
// Consul goes on running (a process that embeds the sidecar, or runs
// several in turn, does not accumulate them).
func TestStoppedSidecarLeavesNoConsulConnections(t *testing.T) {
	agent := consultest.Start(t)
	// Goroutines running now (the test binary's, Consul's output readers)
	// are not the sidecar's; the check runs before Consul stops.
	testutil.VerifyNoLeaks(t)

	cfg := policies.Dev()
	cfg.Agent.Name, cfg.Agent.ID = "writer", "writer-1"
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Consul.Address = agent.HTTPAddr
	cfg.Consul.SyncInterval = 200 * time.Millisecond
	cfg.Upstreams = map[string]policies.Upstream{"researcher": {Name: "researcher", Service: "researcher",
		Breaker: "default", Timeout: time.Second, Balance: policies.BalanceRoundRobin}}
	s, err := New(cfg, hclog.NewNullLogger(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Registered, watching a service (a blocking query held open), and
	// its checks pushed: every Consul client of the sidecar has been used.
	client, err := discovery.NewClient(discovery.Config{Address: agent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallySeen(t, "the sidecar's checks in Consul", 10*time.Second, func() (bool, string) {
		checks, err := client.AgentChecks(context.Background(), "writer-1")
		return err == nil && len(checks) > 0, fmt.Sprintf("%d checks, error %v", len(checks), err)
	})
	client.CloseIdleConnections()
	resp, err := http.Get("http://" + s.Addr() + "/call/researcher/x") // starts the watch
	if err == nil {
		resp.Body.Close()
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
