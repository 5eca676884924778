package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// IngressHandler takes tasks for the local agent: to the agent through its
// breaker; when the agent is isolated or its breaker is open, to a passing
// peer of the same service, then to the fallback upstreams. Peers the task
// has already passed through (X-Sidecar-Hops) are skipped, and a task
// another sidecar passed on tries one peer at most, so sidecars never bounce
// a task between them and a task visits few of them. The local agent does
// not see X-Sidecar-Hops.
//
// With a tracer, each task gets a server span named after the agent's
// service.
func (p *Proxy) IngressHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cfg := p.cfg.Load()
		var sv *served
		if p.opts.Tracer != nil {
			req, sv = startServerSpan(p.opts.Tracer, req, "task "+cfg.Agent.Name, cfg.Agent.Name)
			defer sv.end()
		}
		p.serveTask(w, req, cfg, sv)
	})
}

// serveTask serves a task of the ingress; sv, when tracing is on, gets what
// its server span reports.
func (p *Proxy) serveTask(w http.ResponseWriter, req *http.Request, cfg *policies.Config, sv *served) {
	in := cfg.Ingress
	body, err := readReplayBody(req)
	if err != nil {
		writeJSONError(w, req, sv, http.StatusBadRequest, errInvalidRequest, "could not read the request body: "+err.Error())
		return
	}
	defer body.release()
	passed, ok := p.router.passHop(w, req, sv, cfg.Agent.ID)
	if !ok {
		return
	}
	hops := req.Header.Get(HeaderHops)
	req.Header.Del(HeaderHops)
	bcfg := cfg.Breakers[in.Breaker]
	stages := []stage{{
		name: "agent", retries: 0, timeout: in.Timeout,
		targets: func(context.Context) ([]target, string) { return p.localAgentTarget(cfg, bcfg) },
	}}
	if in.MaxConcurrent > 0 {
		stages[0].limit, stages[0].inflight = in.MaxConcurrent, p.router.inflightOf(ingressInflight)
	}
	peerRetries := 1
	if len(passed.entries) > 0 {
		peerRetries = 0
	}
	stages = append(stages, stage{
		name: "peer", fallback: true, retries: peerRetries, timeout: in.Timeout, forwarded: true,
		targets:      func(ctx context.Context) ([]target, string) { return p.peerTargets(ctx, cfg, bcfg, passed.ids) },
		ingressToken: in.Token, tokenKey: peerTokenKey,
	})
	for _, st := range p.router.upstreamStages(cfg, upstreamChain(cfg, in.Fallback...), true) {
		st.forwarded = true
		stages = append(stages, st)
	}
	plan := &callPlan{stages: stages, path: req.URL.Path, rawPath: req.URL.RawPath, body: body,
		idempotent: isIdempotent(req), hops: hops, kind: KindTask, target: cfg.Agent.Name, served: sv}
	p.rp.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), planKey{}, plan)))
}

// ingressInflight names the counter of tasks in flight to the local agent
// (ingress.max_concurrent); no upstream can have this name.
const ingressInflight = "/ingress"

// localAgentTarget is the local agent, unless it is isolated.
func (p *Proxy) localAgentTarget(cfg *policies.Config, bcfg policies.Breaker) ([]target, string) {
	if p.opts.AgentIsolated != nil {
		if reason, isolated := p.opts.AgentIsolated(); isolated {
			return nil, fmt.Sprintf("agent %s is isolated (%s)", cfg.Agent.ID, strings.ReplaceAll(reason, "_", " "))
		}
	}
	hp := joinHostPort(cfg.Agent.Address, cfg.Agent.Port)
	return []target{p.router.newTarget(ingressOwner, "agent:"+cfg.Agent.ID, "agent", cfg.Agent.ID, "http", hp, bcfg)}, ""
}

// peerTargets are the other passing instances of the agent's own service,
// reached through their sidecars' ingress, but those in skip (the agent ids
// of the sidecars the task has passed through).
func (p *Proxy) peerTargets(ctx context.Context, cfg *policies.Config, bcfg policies.Breaker, skip map[string]bool) ([]target, string) {
	d := p.router.discovery
	if d == nil {
		return nil, "no Consul discovery"
	}
	q := discovery.Query{Service: cfg.Agent.Name}
	set := d.Instances(q)
	if !set.Known {
		wctx, cancel := context.WithTimeout(ctx, firstDiscoveryWait)
		set = d.Wait(wctx, q)
		cancel()
	}
	ts := make([]target, 0, len(set.Instances))
	for _, in := range set.Instances {
		if in.ID == cfg.Agent.ID || skip[in.ID] {
			continue
		}
		hp := in.HostPort()
		t := p.router.newTarget(ingressOwner, "peer:"+in.ID+"@"+hp, "peer", in.ID, in.Scheme(), hp, bcfg)
		t.ingress = isIngressInstance(in)
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		if len(skip) > 0 {
			return nil, fmt.Sprintf("no passing peer of service %q the task has not already passed through", cfg.Agent.Name)
		}
		return nil, fmt.Sprintf("no passing peer of service %q", cfg.Agent.Name)
	}
	return p.router.order("peer", policies.BalanceRoundRobin, ts), ""
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
