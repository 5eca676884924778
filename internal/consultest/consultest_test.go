package consultest_test

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

func TestAgentStartRestartStop(t *testing.T) {
	// Given a fresh dev agent
	start := time.Now()
	a := consultest.Start(t)
	t.Logf("consul ready on %s in %s", a.HTTPAddr, time.Since(start).Round(time.Millisecond))
	c := a.Client(t)

	leader, err := c.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("leader = %q, %v; want an elected leader", leader, err)
	}

	// When a service is registered and the agent restarts
	reg := &api.AgentServiceRegistration{ID: "probe-1", Name: "probe", Port: 1234}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register: %v", err)
	}
	start = time.Now()
	a.Restart(t)
	t.Logf("consul restarted in %s", time.Since(start).Round(time.Millisecond))

	// Then it answers on the same address and has forgotten the service
	if _, _, err := c.Agent().Service("probe-1", nil); err == nil {
		t.Fatalf("service probe-1 survived a dev agent restart; want it gone")
	}
	if self, err := c.Agent().Self(); err != nil || self == nil {
		t.Fatalf("agent self after restart: %v", err)
	}

	// And Stop is safe to call twice, after which nothing answers
	a.Stop()
	a.Stop()
	if _, err := c.Status().Leader(); err == nil {
		t.Fatalf("agent still answers after Stop")
	}
}

func TestAgentsRunSideBySide(t *testing.T) {
	// Given two agents started by the same test binary
	a, b := consultest.Start(t), consultest.Start(t)

	// Then they listen on different addresses and are separate clusters
	if a.HTTPAddr == b.HTTPAddr {
		t.Fatalf("both agents on %s", a.HTTPAddr)
	}
	if err := a.Client(t).Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "only-a", Name: "only-a"}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, _, err := b.Client(t).Agent().Service("only-a", nil); err == nil {
		t.Fatalf("service registered on agent a is visible on agent b")
	}
}
