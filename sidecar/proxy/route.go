package proxy

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
)

// Headers the sidecar sets or reads on proxied calls.
const (
	HeaderUpstream = "X-Sidecar-Upstream" // which upstream answered
	HeaderFallback = "X-Sidecar-Fallback" // "true" when it was not the first choice
	HeaderInstance = "X-Sidecar-Instance" // which instance answered
	// HeaderForwarded was set by older sidecars on tasks they forwarded to
	// a peer; it is removed from every request and trusted for nothing.
	HeaderForwarded = "X-Sidecar-Forwarded"
)

// firstDiscoveryWait bounds how long the first call of an upstream waits for
// Consul's first answer about its instances.
const firstDiscoveryWait = 3 * time.Second

// Discovery is what the call proxy needs from Consul: the passing instances
// of a service, from memory. discovery.Watcher implements it.
type Discovery interface {
	Instances(q discovery.Query) discovery.InstanceSet
	Wait(ctx context.Context, q discovery.Query) discovery.InstanceSet
}

// target is one place a call may go: an instance of an upstream, the local
// agent, or a peer, each behind its own breaker.
type target struct {
	stage    string // the upstream (or "agent", "peer") name, for headers and errors
	instance string // instance ID or host:port, for headers
	scheme   string
	hostPort string
	basePath string // a static URL's path prefix
	breaker  *breaker.Breaker
	// outstanding counts calls in flight (least_outstanding balancing).
	outstanding *atomic.Int64
	// ingress says the target is a sidecar's ingress: the stage's
	// ingressToken is sent to it.
	ingress bool
}

// stage is one upstream of a call's chain: the first one, then its
// fallbacks in order.
type stage struct {
	name     string
	fallback bool // not the first choice
	retries  int
	timeout  time.Duration
	// targets lists the candidates in the order to try them; when there are
	// none, why says so for the error message.
	targets func(ctx context.Context) (ts []target, why string)
	// forwarded marks the stages of the ingress past the local agent: their
	// requests carry the plan's X-Sidecar-Hops.
	forwarded bool
	// limit caps the calls in flight to the stage (max_concurrent; 0: no
	// cap), counted in inflight.
	limit    int
	inflight *atomic.Int64
	// ingressToken is sent as HeaderIngressToken to the targets that are
	// sidecars' ingresses; tokenKey names where it is configured, for
	// errors.
	ingressToken string
	tokenKey     string
}

// router builds call plans from the configuration and discovery.
type router struct {
	discovery Discovery
	breakers  *breaker.Set

	// plans caches, for the configuration in force, the stages of a call
	// to each upstream, so the hot path builds nothing per request.
	plans atomic.Pointer[planCache]

	mu          sync.Mutex
	rr          map[string]*atomic.Uint64 // round-robin counters by stage
	inflightMu  sync.Mutex                // guards inflight (taken while mu is held)
	inflight    map[string]*atomic.Int64  // calls in flight by upstream, for max_concurrent
	outstanding map[string]*atomic.Int64  // in-flight calls by breaker name
	// owners maps each breaker name to the upstream whose breaker setting it
	// follows ("" for the ingress's agent and peer breakers), for reloads.
	owners map[string]string
	// hopNonce tells this sidecar's hops from another's with the same
	// agent id (see HeaderHops).
	hopNonce string
	hopSelf  atomic.Pointer[[2]string] // agent id and its hop name
	// gone holds when each Consul instance's breaker was first seen
	// without its instance in discovery (see prune).
	gone map[string]time.Time
}

// ingressOwner is the owner of the agent's and peers' breakers.
const ingressOwner = ""

func newRouter(d Discovery, set *breaker.Set) *router {
	return &router{discovery: d, breakers: set,
		rr: map[string]*atomic.Uint64{}, outstanding: map[string]*atomic.Int64{}, owners: map[string]string{},
		inflight: map[string]*atomic.Int64{}, hopNonce: newHopNonce()}
}

// entry returns m[name], created when missing, and whether it was; the
// caller holds the lock that guards m.
func entry[T any](m map[string]*T, name string) (*T, bool) {
	c, ok := m[name]
	if !ok {
		c = new(T)
		m[name] = c
	}
	return c, !ok
}

func (r *router) counter(name string) *atomic.Uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, _ := entry(r.rr, name)
	return c
}

// newTarget returns a target whose breaker (created on first use) and
// in-flight counter are named name; owner is the upstream whose breaker
// setting it follows (ingressOwner for the agent and peers).
func (r *router) newTarget(owner, name, stage, instance, scheme, hostPort string, cfg policies.Breaker) target {
	r.mu.Lock()
	c, created := entry(r.outstanding, name)
	if created {
		r.owners[name] = owner
	}
	r.mu.Unlock()
	b := r.breakers.Ensure(name, cfg)
	return target{stage: stage, instance: instance, scheme: scheme, hostPort: hostPort, breaker: b, outstanding: c}
}

// rebind gives existing breakers the settings cfg assigns to their owner. A
// breaker whose settings did not change keeps its state; one whose settings
// changed starts afresh; breakers whose owner is gone are dropped, and
// their names returned.
func (r *router) rebind(cfg *policies.Config) []string {
	r.mu.Lock()
	owners := make(map[string]string, len(r.owners))
	for name, owner := range r.owners {
		owners[name] = owner
	}
	r.mu.Unlock()
	keep := map[string]bool{}
	for name, owner := range owners {
		var bname string
		if owner == ingressOwner {
			if cfg.Ingress == nil {
				continue
			}
			bname = cfg.Ingress.Breaker
		} else {
			u, ok := cfg.Upstreams[owner]
			if !ok {
				continue
			}
			bname = u.Breaker
		}
		keep[name] = true
		r.breakers.Get(name, cfg.Breakers[bname])
	}
	for name, bcfg := range gateway.BreakerConfigs(cfg) {
		if _, ok := r.breakers.Lookup(name); ok {
			keep[name] = true
			r.breakers.Get(name, bcfg)
		}
	}
	r.breakers.Retain(keep)
	r.mu.Lock()
	var dropped []string
	for name := range owners {
		if !keep[name] {
			delete(r.owners, name)
			delete(r.outstanding, name)
			dropped = append(dropped, name)
		}
	}
	r.mu.Unlock()
	return dropped
}

// upstreamChain returns the named upstreams and their fallbacks, depth
// first, each once.
func upstreamChain(cfg *policies.Config, first ...string) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		u, ok := cfg.Upstreams[name]
		if !ok {
			return
		}
		out = append(out, name)
		for _, f := range u.Fallback {
			walk(f)
		}
	}
	for _, name := range first {
		walk(name)
	}
	return out
}

// inflightOf is the in-flight counter of an upstream, kept across reloads.
func (r *router) inflightOf(name string) *atomic.Int64 {
	r.inflightMu.Lock()
	defer r.inflightMu.Unlock()
	c, _ := entry(r.inflight, name)
	return c
}

// planCache holds the stages of a call to each upstream for one
// configuration.
type planCache struct {
	cfg    *policies.Config
	stages map[string][]stage
}

// callStages returns the stages of a call to the named upstream (it, then
// its fallbacks), built once per configuration.
func (r *router) callStages(cfg *policies.Config, name string) []stage {
	if pc := r.plans.Load(); pc != nil && pc.cfg == cfg {
		if st, ok := pc.stages[name]; ok {
			return st
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pc := r.plans.Load()
	if pc == nil || pc.cfg != cfg {
		pc = &planCache{cfg: cfg, stages: map[string][]stage{}}
	}
	if st, ok := pc.stages[name]; ok {
		return st
	}
	next := &planCache{cfg: cfg, stages: make(map[string][]stage, len(pc.stages)+1)}
	for k, v := range pc.stages {
		next.stages[k] = v
	}
	st := r.upstreamStages(cfg, upstreamChain(cfg, name), false)
	next.stages[name] = st
	r.plans.Store(next)
	return st
}

// upstreamStages builds the stages of a call to the named upstreams (the
// first, then fallbacks).
func (r *router) upstreamStages(cfg *policies.Config, names []string, firstIsFallback bool) []stage {
	stages := make([]stage, 0, len(names))
	for i, name := range names {
		u := cfg.Upstreams[name]
		bcfg := cfg.Breakers[u.Breaker]
		targets := func(ctx context.Context) ([]target, string) { return r.upstreamTargets(ctx, u, bcfg) }
		if u.URL != "" {
			targets = r.staticTargets(u, bcfg)
		}
		st := stage{
			name: name, fallback: firstIsFallback || i > 0, retries: u.Retries, timeout: u.Timeout,
			targets: targets, ingressToken: u.IngressToken, tokenKey: "ingress_token",
		}
		if u.MaxConcurrent > 0 {
			st.limit, st.inflight = u.MaxConcurrent, r.inflightOf(name)
		}
		stages = append(stages, st)
	}
	return stages
}

// staticTargets returns the target function of an upstream with a static
// URL, parsed once.
func (r *router) staticTargets(u policies.Upstream, bcfg policies.Breaker) func(context.Context) ([]target, string) {
	base, err := url.Parse(u.URL)
	if err != nil {
		return func(context.Context) ([]target, string) { return nil, "invalid url" }
	}
	name, basePath := u.Name+"@"+base.Host, strings.TrimSuffix(base.Path, "/")
	return func(context.Context) ([]target, string) {
		t := r.newTarget(u.Name, name, u.Name, base.Host, base.Scheme, base.Host, bcfg)
		t.basePath = basePath
		// A static URL is a sidecar's ingress when its block says so by
		// giving it a token.
		t.ingress = u.IngressToken != ""
		return []target{t}, ""
	}
}

// queryOf is the discovery query of a Consul upstream.
func queryOf(u policies.Upstream) discovery.Query {
	return discovery.Query{Service: u.Service, Tags: u.Tags, Filter: u.Filter}
}

// upstreamTargets lists an upstream's candidates in balancing order.
func (r *router) upstreamTargets(ctx context.Context, u policies.Upstream, bcfg policies.Breaker) ([]target, string) {
	if u.URL != "" {
		return r.staticTargets(u, bcfg)(ctx)
	}
	q := queryOf(u)
	set := r.discovery.Instances(q)
	if !set.Known {
		wctx, cancel := context.WithTimeout(ctx, firstDiscoveryWait)
		set = r.discovery.Wait(wctx, q)
		cancel()
		if !set.Known {
			return nil, fmt.Sprintf("Consul has not answered about service %q yet", u.Service)
		}
	}
	if len(set.Instances) == 0 {
		return nil, fmt.Sprintf("no passing instance of service %q%s", u.Service, describeSelector(u))
	}
	ts := make([]target, len(set.Instances))
	for i, in := range set.Instances {
		hp := in.HostPort()
		ts[i] = r.newTarget(u.Name, u.Name+"@"+hp, u.Name, in.ID, in.Scheme(), hp, bcfg)
		ts[i].ingress = isIngressInstance(in)
	}
	return r.order(u.Name, u.Balance, ts), ""
}

func describeSelector(u policies.Upstream) string {
	var parts []string
	if len(u.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(u.Tags, ","))
	}
	if u.Filter != "" {
		parts = append(parts, "filter "+u.Filter)
	}
	if len(parts) == 0 {
		return ""
	}
	return " with " + strings.Join(parts, " and ")
}

// order puts targets in the order to try them: rotated round robin, or by
// fewest calls in flight.
func (r *router) order(name, balance string, ts []target) []target {
	if len(ts) < 2 {
		return ts
	}
	start := int(r.counter(name).Add(1) % uint64(len(ts)))
	rotated := append(ts[start:len(ts):len(ts)], ts[:start]...)
	if balance == policies.BalanceLeastOutstanding {
		sort.SliceStable(rotated, func(i, j int) bool {
			return rotated[i].outstanding.Load() < rotated[j].outstanding.Load()
		})
	}
	return rotated
}
