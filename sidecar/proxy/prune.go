package proxy

import (
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// pruneEvery is how often the state of instances gone from Consul is
// looked at.
const pruneEvery = time.Second

// prune returns the breakers of instances absent from discovery for longer
// than max_open_for, and drops them with their in-flight counters. While
// Consul has not answered about a service, or its answer is stale, none of
// its instances counts as absent.
func (r *router) prune(cfg *policies.Config, now time.Time) []prunedTarget {
	if r.discovery == nil {
		return nil
	}
	// live holds, for each owner whose instances come from Consul, the
	// breaker names of the instances Consul lists now; nil when unknown.
	live := map[string]map[string]bool{}
	known := func(q discovery.Query) (discovery.InstanceSet, bool) {
		set := r.discovery.Instances(q)
		return set, set.Known && !set.Stale
	}
	for name, u := range cfg.Upstreams {
		if u.Service == "" {
			continue
		}
		set, ok := known(queryOf(u))
		if !ok {
			live[name] = nil
			continue
		}
		names := make(map[string]bool, len(set.Instances))
		for _, in := range set.Instances {
			names[name+"@"+in.HostPort()] = true
		}
		live[name] = names
	}
	if cfg.Ingress != nil {
		if set, ok := known(discovery.Query{Service: cfg.Agent.Name}); ok {
			names := make(map[string]bool, len(set.Instances))
			for _, in := range set.Instances {
				names["peer:"+in.ID+"@"+in.HostPort()] = true
			}
			live[ingressOwner] = names
		} else {
			live[ingressOwner] = nil
		}
	}

	var out []prunedTarget
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone == nil {
		r.gone = map[string]time.Time{}
	}
	for name, owner := range r.owners {
		names, consul := live[owner]
		fromConsul := consul && (owner != ingressOwner || strings.HasPrefix(name, "peer:"))
		if owner != ingressOwner && !strings.HasPrefix(name, owner+"@") {
			fromConsul = false
		}
		if !fromConsul || names == nil || names[name] {
			delete(r.gone, name)
			continue
		}
		since, ok := r.gone[name]
		if !ok {
			r.gone[name] = now
			continue
		}
		// Without a breaker there is no open period to wait out.
		if b, ok := r.breakers.Lookup(name); ok && now.Sub(since) <= b.Config().MaxOpenFor {
			continue
		}
		out = append(out, prunedTarget{name: name, hostPort: name[strings.LastIndexByte(name, '@')+1:]})
		delete(r.gone, name)
		delete(r.owners, name)
		delete(r.outstanding, name)
	}
	for name := range r.gone {
		if _, ok := r.owners[name]; !ok {
			delete(r.gone, name)
		}
	}
	return out
}

// prunedTarget is an instance whose state is being forgotten.
type prunedTarget struct{ name, hostPort string }

// forgetDeparted forgets the Consul instances (upstream instances and
// ingress peers) that have been absent from discovery for longer than their
// breaker's max_open_for: breakers, in-flight counters and kept-alive
// connections here, the rest through Options.InstancesDeparted. An instance
// that comes back starts afresh.
func (p *Proxy) forgetDeparted() {
	gone := p.router.prune(p.cfg.Load(), p.opts.Now())
	if len(gone) == 0 {
		return
	}
	names := make([]string, len(gone))
	for i, g := range gone {
		names[i] = g.name
	}
	p.opts.Breakers.Remove(names...)
	if idle, ok := p.opts.Transport.(interface{ CloseIdleTo(addr string) }); ok {
		for _, g := range gone {
			idle.CloseIdleTo(g.hostPort)
		}
	}
	p.log.Debug("forgot instances gone from Consul", "breakers", names)
	if p.opts.InstancesDeparted != nil {
		p.opts.InstancesDeparted(names)
	}
}
