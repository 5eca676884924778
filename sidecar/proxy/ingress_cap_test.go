package proxy

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// ingressProxy serves a proxy with an ingress in front of agent, taking at
// most maxConcurrent tasks at once, with fake discovery d.
func ingressProxy(t *testing.T, agent *sidecartest.Upstream, maxConcurrent int, d Discovery, ups map[string]policies.Upstream, fallback ...string) *testProxy {
	t.Helper()
	return ingressProxyWith(t, agent, maxConcurrent, d, ups, Options{}, fallback...)
}

// ingressProxyWith is ingressProxy with more options (a tracer,
// AgentIsolated).
func ingressProxyWith(t *testing.T, agent *sidecartest.Upstream, maxConcurrent int, d Discovery, ups map[string]policies.Upstream, opts Options, fallback ...string) *testProxy {
	t.Helper()
	cfg := testConfig()
	cfg.Agent.Port = agent.Listener.Addr().(*net.TCPAddr).Port
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	for name, u := range ups {
		u.Name, u.Breaker, u.Timeout, u.Balance = name, "default", 5*time.Second, policies.BalanceRoundRobin
		ups[name] = u
	}
	cfg.Upstreams = ups
	cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 5 * time.Second,
		MaxConcurrent: maxConcurrent, Fallback: fallback}
	opts.Discovery = d
	p, _ := startProxy(t, cfg, opts)
	return p
}

func TestIngressAtItsCapSendsTasksToAPeerOrAFallback(t *testing.T) {
	agent := sidecartest.NewUpstream(t, "agent", http.StatusOK)
	agent.Delay.Store(int64(500 * time.Millisecond))
	peer := sidecartest.NewUpstream(t, "peer", http.StatusOK)
	backup := sidecartest.NewUpstream(t, "backup", http.StatusOK)
	d := &sidecartest.Discovery{}
	d.Set("writer", instanceOf(t, "writer-2", peer))
	s := ingressProxy(t, agent, 1, d, map[string]policies.Upstream{"backup": {URL: backup.URL}}, "backup")
	in := sidecartest.NewExpect(t, "http://"+s.ingressAddr)

	// Given one task in flight at an agent that takes one at a time
	first := make(chan string, 1)
	go func() { first <- in.POST("/task").WithText("t1").Expect().Raw().Header.Get("X-Answered-By") }()
	testutil.Eventually(t, "the first task at the agent", 2*time.Second, func() bool { return agent.Calls.Load() == 1 })

	// When a second task comes, it goes to the peer at once
	in.POST("/task").WithText("t2").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("peer")
	// And with no peer left, to the fallback
	d.Set("writer")
	in.POST("/task").WithText("t3").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("backup")
	if agent.Calls.Load() != 1 {
		t.Fatalf("the agent received %d tasks", agent.Calls.Load())
	}
	if got := <-first; got != "agent" {
		t.Fatalf("the first task was answered by %q", got)
	}
	// And once the first is done, the agent takes tasks again
	in.POST("/task").WithText("t4").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("agent")
}

func TestIngressAtItsCapWithNowhereElseAnswers503(t *testing.T) {
	agent := sidecartest.NewUpstream(t, "agent", http.StatusOK)
	agent.Delay.Store(int64(500 * time.Millisecond))
	d := &sidecartest.Discovery{}
	d.Set("writer", discovery.Instance{ID: "writer-1", Service: "writer", Address: "127.0.0.1", Port: 1})
	s := ingressProxy(t, agent, 1, d, map[string]policies.Upstream{})
	in := sidecartest.NewExpect(t, "http://"+s.ingressAddr)

	done := make(chan struct{})
	go func() { defer close(done); in.POST("/task").WithText("t1").Expect() }()
	testutil.Eventually(t, "the first task at the agent", 2*time.Second, func() bool { return agent.Calls.Load() == 1 })
	r := in.POST("/task").WithText("t2").Expect().Status(http.StatusServiceUnavailable)
	r.Header("Retry-After").IsEqual("1")
	r.JSON().Object().Value("error").Object().Value("message").String().Contains("max_concurrent")
	<-done
}
