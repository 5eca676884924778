package discovery_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// testWaitTime keeps blocking queries short in tests, so the "nothing
// changed, Consul answers anyway" path runs too.
const testWaitTime = 3 * time.Second

// runningWatcher is a Watcher whose Run loop belongs to the test.
type runningWatcher struct {
	*discovery.Watcher
	logs   *testutil.SyncBuffer
	events *changeLog
	stop   func() // cancels Run and waits (at most 5s) for it to return; safe to call twice
}

// startWatcher builds a Watcher for cfg (WaitTime testWaitTime), applies
// before (e.g. Watch calls), and runs it until the test ends.
func startWatcher(t testing.TB, cfg discovery.Config, before func(*discovery.Watcher)) *runningWatcher {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "discovery", Output: logs, Level: hclog.Debug})
	w, err := discovery.NewWatcher(cfg, log)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	w.WaitTime = testWaitTime
	events := &changeLog{}
	w.OnChange(events.record)
	if before != nil {
		before(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of its context being cancelled")
		}
	})
	t.Cleanup(stop)
	return &runningWatcher{Watcher: w, logs: logs, events: events, stop: stop}
}

// changeLog records OnChange calls.
type changeLog struct {
	mu   sync.Mutex
	list []string // "key: ids [stale]"
}

func (c *changeLog) record(q discovery.Query, set discovery.InstanceSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, q.Key()+": "+describe(set))
}

func (c *changeLog) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}

// member is a service instance a test registers.
type member struct {
	id      string
	address string // "" leaves the node's address
	port    int
	tags    []string
	meta    map[string]string
}

// register registers in as an instance of service, with a passing TTL
// check "<id>:ttl".
func register(t testing.TB, c *api.Client, service string, in member) {
	t.Helper()
	reg := &api.AgentServiceRegistration{
		ID: in.id, Name: service, Address: in.address, Port: in.port, Tags: in.tags, Meta: in.meta,
		Check: &api.AgentServiceCheck{CheckID: in.id + ":ttl", Name: "heartbeat", TTL: "10m", Status: api.HealthPassing},
	}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("registering %s: %v", in.id, err)
	}
}

// setStatus sets the TTL check of instance id.
func setStatus(t testing.TB, c *api.Client, id, status string) {
	t.Helper()
	if err := c.Agent().UpdateTTL(id+":ttl", "set by the test", status); err != nil {
		t.Fatalf("setting %s %s: %v", id, status, err)
	}
}

// threeInstances registers c-3, a-1 and b-2 (in that order) of service.
func threeInstances(t testing.TB, c *api.Client, service string) {
	t.Helper()
	for _, in := range []member{
		{id: "c-3", address: "10.0.0.3", port: 9003},
		{id: "a-1", address: "10.0.0.1", port: 9001, tags: []string{"gpu"}},
		{id: "b-2", port: 9002, tags: []string{"gpu", "fast"}, meta: map[string]string{"tier": "gold"}},
	} {
		register(t, c, service, in)
	}
}

// has returns a condition for eventually: Consul has answered about q, the
// set is not stale, and it holds exactly these IDs, in this order.
func has(w *discovery.Watcher, q discovery.Query, ids ...string) func() (bool, string) {
	return func() (bool, string) {
		set := w.Instances(q)
		return set.Known && !set.Stale && slices.Equal(idsOf(set), ids), describe(set)
	}
}

func idsOf(set discovery.InstanceSet) []string {
	ids := []string{}
	for _, in := range set.Instances {
		ids = append(ids, in.ID)
	}
	return ids
}

func describe(set discovery.InstanceSet) string {
	s := "[" + strings.Join(idsOf(set), " ") + "]"
	if !set.Known {
		s += " unknown"
	}
	if set.Stale {
		s += fmt.Sprintf(" stale (%s)", set.LastError)
	}
	return s
}
