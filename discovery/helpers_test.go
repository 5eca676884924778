package discovery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// testService is a service with the two checks the sidecar registers.
func testService(name string) discovery.Service {
	return discovery.Service{
		ID:      name + "-1",
		Name:    name,
		Address: "127.0.0.1",
		Port:    8081,
		Tags:    []string{"ai-agent", "writer"},
		Meta:    map[string]string{"version": "1.2.3"},
		Checks: []discovery.Check{
			{ID: name + "-1:heartbeat", Name: "heartbeat", Notes: "the agent heartbeats to its sidecar", TTL: time.Minute},
			{ID: name + "-1:sidecar", Name: "sidecar", Notes: "breakers and degradation", TTL: time.Minute},
		},
	}
}

// running is a Registrar whose Run loop belongs to the test.
type running struct {
	*discovery.Registrar
	logs *testutil.SyncBuffer
	stop func() // cancels Run and waits for it; safe to call twice
}

// startRegistrar builds a Registrar for svc against addr (SyncInterval 1s
// unless cfg says otherwise), applies before (e.g. SetCheck calls), and runs
// it until the test ends.
func startRegistrar(t *testing.T, cfg discovery.Config, svc discovery.Service, before func(*discovery.Registrar)) *running {
	t.Helper()
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = time.Second
	}
	logs := &testutil.SyncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "discovery", Output: logs, Level: hclog.Debug})
	r, err := discovery.NewRegistrar(cfg, svc, log)
	if err != nil {
		t.Fatalf("NewRegistrar: %v", err)
	}
	if before != nil {
		before(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	stop := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	return &running{Registrar: r, logs: logs, stop: stop}
}

func newClient(t *testing.T, a *consultest.Agent) *discovery.Client {
	t.Helper()
	c, err := discovery.NewClient(discovery.Config{Address: a.HTTPAddr})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// agentCheck returns the local agent's view of one check, or ok=false.
func agentCheck(c *discovery.Client, serviceID, checkID string) (discovery.CheckInfo, bool, string) {
	checks, err := c.AgentChecks(context.Background(), serviceID)
	if err != nil {
		return discovery.CheckInfo{}, false, err.Error()
	}
	for _, ch := range checks {
		if ch.CheckID == checkID {
			return ch, true, fmt.Sprintf("%+v", ch)
		}
	}
	return discovery.CheckInfo{}, false, fmt.Sprintf("check %q not in %+v", checkID, checks)
}

// checkIs returns a condition for eventually: the agent has the check with
// this status and output.
func checkIs(c *discovery.Client, serviceID, checkID string, status discovery.CheckStatus, output string) func() (bool, string) {
	return func() (bool, string) {
		ch, ok, detail := agentCheck(c, serviceID, checkID)
		return ok && ch.Status == status && ch.Output == output, detail
	}
}

// instance returns the catalog entry of serviceID in service, or ok=false.
func instance(c *discovery.Client, service, serviceID string) (discovery.ServiceEntry, bool, string) {
	entries, err := c.ServiceHealth(context.Background(), service)
	if err != nil {
		return discovery.ServiceEntry{}, false, err.Error()
	}
	for _, e := range entries {
		if e.ID == serviceID {
			return e, true, fmt.Sprintf("%+v", e)
		}
	}
	return discovery.ServiceEntry{}, false, fmt.Sprintf("%q not among %d instances", serviceID, len(entries))
}
