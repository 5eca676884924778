package sidecar

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
)

// runConsulSidecar runs a sidecar with the real registrar and watcher.
// Tests using it call testutil.VerifyNoLeaks before starting Consul, so that the
// check comes after Consul has stopped: the registrar's and watcher's
// Consul clients keep idle keep-alive connections after Run returns, and
// package discovery has no way yet to close them.
func runConsulSidecar(t *testing.T, cfg *policies.Config) *Sidecar {
	t.Helper()
	return runSidecarLoggingTo(t, cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}))
}

// runSidecarLoggingTo is runConsulSidecar with the given logger.
func runSidecarLoggingTo(t *testing.T, cfg *policies.Config, log hclog.Logger) *Sidecar {
	t.Helper()
	s, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func registerInstance(t *testing.T, c *api.Client, id string, u *sidecartest.Upstream) {
	t.Helper()
	host, p := sidecartest.SplitHostPort(t, u.HostPort())
	registerPassing(t, c, &api.AgentServiceRegistration{ID: id, Name: "svc", Address: host, Port: p})
}

func TestCallsFollowConsulHealth(t *testing.T) {
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	consul := consultest.Start(t)
	c := consul.Client(t)
	a, b := sidecartest.NewUpstream(t, "a", http.StatusOK), sidecartest.NewUpstream(t, "b", http.StatusOK)
	registerInstance(t, c, "svc-a", a)
	registerInstance(t, c, "svc-b", b)

	cfg := testConfig()
	cfg.Consul.Address, cfg.Consul.Token = consul.HTTPAddr, ""
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"svc": {Name: "svc", Service: "svc", Breaker: "default",
		Timeout: 5 * time.Second, Retries: 1, Balance: policies.BalanceRoundRobin}}
	s := runConsulSidecar(t, cfg)
	e := sidecartest.NewExpect(t, "http://"+s.Addr())

	// Given two passing instances, calls go to both
	for i := 0; i < 10; i++ {
		e.GET("/call/svc/x").Expect().Status(http.StatusOK)
	}
	if a.Calls.Load() == 0 || b.Calls.Load() == 0 {
		t.Fatalf("calls a=%d b=%d, want both used", a.Calls.Load(), b.Calls.Load())
	}

	// When instance a turns critical in Consul, then it leaves the rotation
	if err := c.Agent().UpdateTTL("svc-a:ttl", "made critical by the test", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a out of rotation", 5*time.Second, func() bool {
		for i := 0; i < 6; i++ {
			if e.GET("/call/svc/x").Expect().Status(http.StatusOK).Raw().Header.Get("X-Answered-By") != "b" {
				return false
			}
		}
		return true
	})

	// When Consul stops, then calls keep working on the last known set
	consul.Stop()
	before := b.Calls.Load()
	for i := 0; i < 5; i++ {
		e.GET("/call/svc/x").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("b")
	}
	if got := b.Calls.Load() - before; got != 5 {
		t.Fatalf("b answered %d of 5 calls with Consul down", got)
	}
	testutil.Eventually(t, "status says stale", 10*time.Second, func() bool {
		st := s.Status()
		for _, set := range st.Discovery {
			if set.Stale {
				return true
			}
		}
		return false
	})
	// And the event stream tells that Consul is lost
	testutil.Eventually(t, "a consul.lost event", 15*time.Second, func() bool {
		for _, ev := range s.RecentEvents(20) {
			if ev.Type == notify.EventConsulLost {
				return true
			}
		}
		return false
	})
}

func TestIngressReroutesToPeerAndNeverLoops(t *testing.T) {
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	consul := consultest.Start(t)
	agentA, agentB := sidecartest.NewUpstream(t, "agent-a", http.StatusOK), sidecartest.NewUpstream(t, "agent-b", http.StatusOK)
	mk := func(id string, agent *sidecartest.Upstream) *Sidecar {
		cfg := testConfig()
		cfg.Agent.ID = id
		cfg.Agent.Port = portOf(t, agent)
		cfg.Consul.Address, cfg.Consul.Token = consul.HTTPAddr, ""
		cfg.Consul.DeregisterCriticalAfter = time.Minute
		cfg.Health = policies.Health{HeartbeatInterval: 300 * time.Millisecond, MissedHeartbeats: 1, Grace: 200 * time.Millisecond}
		cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
		cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 5 * time.Second}
		return runConsulSidecar(t, cfg)
	}
	sa, sb := mk("writer-1", agentA), mk("writer-2", agentB)

	// Agent b heartbeats all along; agent a only at first
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				sb.Beat(health.Heartbeat{})
			}
		}
	}()
	sa.Beat(health.Heartbeat{})
	ia := sidecartest.NewExpect(t, "http://"+sa.IngressAddr())
	ib := sidecartest.NewExpect(t, "http://"+sb.IngressAddr())
	ia.POST("/task").WithText("t1").Expect().Status(http.StatusOK).Header(proxy.HeaderUpstream).IsEqual("agent")

	// When agent a misses its heartbeats, then its tasks go to the peer b
	testutil.Eventually(t, "a isolated", 5*time.Second, func() bool { return sa.tracker.Snapshot().IsolatedNow() })
	var r *httpexpect.Response
	testutil.Eventually(t, "b known as a passing peer", 10*time.Second, func() bool {
		r = ia.POST("/task").WithText("t2").Expect()
		return r.Raw().StatusCode == http.StatusOK
	})
	r.Header(proxy.HeaderUpstream).IsEqual("peer")
	r.Header(proxy.HeaderFallback).IsEqual("true")
	r.Header("X-Answered-By").IsEqual("agent-b")
	if got := agentB.LastBody(); got != "POST /task t2" {
		t.Fatalf("peer agent received %q", got)
	}

	// And X-Sidecar-Forwarded from a caller does not keep the task from the peer
	r = ia.POST("/task").WithHeader(proxy.HeaderForwarded, "writer-2").WithText("t3").Expect().Status(http.StatusOK)
	r.Header("X-Answered-By").IsEqual("agent-b")
	if got := agentB.LastBody(); got != "POST /task t3" {
		t.Fatalf("peer agent received %q", got)
	}
	// And a task that has passed through b is never sent back to it
	aCalls, bCalls := agentA.Calls.Load(), agentB.Calls.Load()
	ia.POST("/task").WithHeader(proxy.HeaderHops, "writer-2#00000000").WithText("t4").Expect().
		Status(http.StatusServiceUnavailable).JSON().Object().Value("error").Object().
		Value("message").String().Contains("isolated")
	if agentA.Calls.Load() != aCalls || agentB.Calls.Load() != bCalls {
		t.Fatal("a task was sent back to a sidecar it had passed through")
	}
	// b's own ingress serves its agent directly
	ib.POST("/task").WithText("t5").Expect().Status(http.StatusOK).Header(proxy.HeaderUpstream).IsEqual("agent")
}
