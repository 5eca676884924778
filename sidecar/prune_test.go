package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// countSeries counts the metric samples whose line starts with prefix.
func countSeries(text, prefix string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// Instances that come and go in Consul leave nothing behind once gone for
// longer than max_open_for: the breakers, metric series and in-flight
// counters come back to those of the live instances, and an open breaker of
// an instance that left stops making the sidecar check warn.
func TestStateOfInstancesGoneFromConsulIsPruned(t *testing.T) {
	verifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	consul := consultest.Start(t)
	c := consul.Client(t)

	cfg := consulUpstreamConfig(consul.HTTPAddr, "svc", testBreaker(100*time.Millisecond)) // max_open_for 800ms
	s := runConsulSidecar(t, cfg)
	e := newExpect(t, "http://"+s.Addr())
	sidecarCheck := func() string {
		checks, err := c.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		if ch, ok := checks[sidecarCheckID(cfg.Agent.ID)]; ok {
			return ch.Status
		}
		return ""
	}

	// Given an instance whose breaker is open, so the sidecar check warns
	bad := newScripted(t, "bad", http.StatusInternalServerError)
	registerInstance(t, c, "svc-bad", bad)
	waitFor(t, "the bad instance known", 5*time.Second, func() bool {
		return e.GET("/call/svc/x").Expect().Raw().Header.Get("X-Answered-By") == "bad"
	})
	for i := 0; i < 3; i++ {
		e.GET("/call/svc/x").Expect()
	}
	waitFor(t, "the sidecar check warning", 5*time.Second, func() bool { return sidecarCheck() == api.HealthWarning })

	// When it leaves and many instances come and go after it
	if err := c.Agent().ServiceDeregister("svc-bad"); err != nil {
		t.Fatal(err)
	}
	const rounds = 25
	for i := 0; i < rounds; i++ {
		u := newScripted(t, fmt.Sprintf("u%d", i), http.StatusOK)
		id := fmt.Sprintf("svc-%d", i)
		registerInstance(t, c, id, u)
		waitFor(t, id+" answering", 5*time.Second, func() bool {
			return e.GET("/call/svc/x").Expect().Raw().Header.Get("X-Answered-By") == u.name
		})
		if i < rounds-1 {
			if err := c.Agent().ServiceDeregister(id); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Then once they have been gone for longer than max_open_for, only the live instance's state is left
	waitFor(t, "the state of departed instances pruned", 10*time.Second, func() bool { return s.breakers.Len() == 1 })
	last := fmt.Sprintf("svc@%s", hostOfName(t, s))
	if snaps := s.breakers.Snapshots(); snaps[0].Name != last {
		t.Fatalf("the breaker left is %s, want %s", snaps[0].Name, last)
	}
	s.router.mu.Lock()
	owners, outstanding := len(s.router.owners), len(s.router.outstanding)
	s.router.mu.Unlock()
	if owners != 1 || outstanding != 1 {
		t.Fatalf("router keeps %d owners and %d in-flight counters, want 1", owners, outstanding)
	}
	text := scrape(e)
	if n := countSeries(text, "sidecar_breaker_state{"); n != 3 {
		t.Errorf("%d sidecar_breaker_state series, want 3 (one breaker)", n)
	}
	if n := countSeries(text, `sidecar_breaker_transitions_total{breaker="svc@`+hostOf(bad)); n != 0 {
		t.Errorf("the departed bad instance keeps %d transition series", n)
	}
	// And the departed instance's open breaker no longer makes the sidecar check warn
	waitFor(t, "the sidecar check passing", 5*time.Second, func() bool { return sidecarCheck() == api.HealthPassing })
}

// hostOfName is the host:port of the one live instance, from the sidecar's
// view of Consul.
func hostOfName(t *testing.T, s *Sidecar) string {
	t.Helper()
	for _, b := range s.breakers.Snapshots() {
		if _, hp, ok := strings.Cut(b.Name, "@"); ok {
			return hp
		}
	}
	t.Fatal("no breaker")
	return ""
}

// staleDiscovery answers with a fixed set, marked stale or not.
type staleDiscovery struct{ set discovery.InstanceSet }

func (d *staleDiscovery) Instances(discovery.Query) discovery.InstanceSet { return d.set }
func (d *staleDiscovery) Wait(context.Context, discovery.Query) discovery.InstanceSet {
	return d.set
}

func TestPruneKeepsInstancesWhileConsulCannotSay(t *testing.T) {
	cfg := testConfig()
	bcfg := testBreaker(time.Second) // max_open_for 8s
	cfg.Breakers = map[string]policies.Breaker{"default": bcfg}
	cfg.Upstreams = map[string]policies.Upstream{
		"svc":    {Name: "svc", Service: "svc", Breaker: "default"},
		"static": {Name: "static", URL: "http://10.0.0.9:80", Breaker: "default"},
	}
	cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default"}
	in := discovery.Instance{ID: "svc-1", Service: "svc", Address: "10.0.0.1", Port: 80}
	d := &staleDiscovery{set: discovery.InstanceSet{Known: true, Instances: []discovery.Instance{in}}}
	r := newRouter(nil, d, breaker.NewSet())
	r.newTarget("svc", "svc@10.0.0.1:80", "svc", in.ID, "http", in.HostPort(), bcfg)
	r.newTarget("static", "static@10.0.0.9:80", "static", "10.0.0.9:80", "http", "10.0.0.9:80", bcfg)
	r.newTarget(ingressOwner, "agent:writer-1", "agent", "writer-1", "http", "127.0.0.1:8081", bcfg)
	r.newTarget(ingressOwner, "peer:svc-1@10.0.0.1:80", "peer", in.ID, "http", in.HostPort(), bcfg)
	t0 := time.Now()

	// While Consul's answer is stale or missing, an instance it no longer lists is kept
	d.set = discovery.InstanceSet{Known: true, Stale: true}
	for _, at := range []time.Duration{0, time.Minute} {
		if gone := r.prune(cfg, t0.Add(at)); len(gone) != 0 {
			t.Fatalf("pruned %v while Consul's answer is stale", gone)
		}
	}
	d.set = discovery.InstanceSet{}
	if gone := r.prune(cfg, t0.Add(2*time.Minute)); len(gone) != 0 {
		t.Fatalf("pruned %v before Consul answered", gone)
	}
	// Once Consul says it is gone, it is kept for max_open_for, then pruned; a static upstream never is
	d.set = discovery.InstanceSet{Known: true}
	t1 := t0.Add(3 * time.Minute)
	for _, at := range []time.Duration{0, bcfg.MaxOpenFor} {
		if gone := r.prune(cfg, t1.Add(at)); len(gone) != 0 {
			t.Fatalf("pruned %v after %s", gone, at)
		}
	}
	gone := r.prune(cfg, t1.Add(bcfg.MaxOpenFor+time.Second))
	slices.SortFunc(gone, func(a, b prunedTarget) int { return strings.Compare(a.name, b.name) })
	want := []prunedTarget{{"peer:svc-1@10.0.0.1:80", "10.0.0.1:80"}, {"svc@10.0.0.1:80", "10.0.0.1:80"}}
	if !slices.Equal(gone, want) {
		t.Fatalf("pruned %v, want %v", gone, want)
	}
	// The local agent and a static upstream are never pruned
	_, static := r.owners["static@10.0.0.9:80"]
	_, agent := r.owners["agent:writer-1"]
	if !static || !agent || len(r.owners) != 2 {
		t.Fatalf("owners left: %v", r.owners)
	}
}
