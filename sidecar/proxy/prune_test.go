package proxy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// staleDiscovery answers with a fixed set, marked stale or not.
type staleDiscovery struct{ set discovery.InstanceSet }

func (d *staleDiscovery) Instances(discovery.Query) discovery.InstanceSet { return d.set }
func (d *staleDiscovery) Wait(context.Context, discovery.Query) discovery.InstanceSet {
	return d.set
}

func TestPruneKeepsInstancesWhileConsulCannotSay(t *testing.T) {
	cfg := testConfig()
	bcfg := sidecartest.Breaker(time.Second) // max_open_for 8s
	cfg.Breakers = map[string]policies.Breaker{"default": bcfg}
	cfg.Upstreams = map[string]policies.Upstream{
		"svc":    {Name: "svc", Service: "svc", Breaker: "default"},
		"static": {Name: "static", URL: "http://10.0.0.9:80", Breaker: "default"},
	}
	cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default"}
	in := discovery.Instance{ID: "svc-1", Service: "svc", Address: "10.0.0.1", Port: 80}
	d := &staleDiscovery{set: discovery.InstanceSet{Known: true, Instances: []discovery.Instance{in}}}
	r := newRouter(d, breaker.NewSet())
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
	if !static || !agent || len(r.owners) != 2 || len(r.outstanding) != 2 {
		t.Fatalf("owners left: %v; %d in-flight counters", r.owners, len(r.outstanding))
	}
}
