package main

import (
	"context"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar"
)

// kvPolicies holds the fleet-wide policies read from Consul KV under
// consul.policy_prefix: the fleet layer (keys directly below the prefix,
// and in folders other than service/) and this service's layer
// (service/<name>/…). Only keys ending in .hcl are policies.
type kvPolicies struct {
	prefix, service string
	client          *discovery.Client

	mu      sync.Mutex
	fleet   []policies.Source
	own     []policies.Source
	index   string // the keys and their indexes, to tell a real change
	lastErr string
}

func newKVPolicies(cfg *policies.Config) (*kvPolicies, error) {
	c, err := discovery.NewClient(sidecar.ConsulConfig(cfg))
	if err != nil {
		return nil, err
	}
	return &kvPolicies{prefix: cfg.Consul.PolicyPrefix, service: cfg.Agent.Name, client: c}, nil
}

// sources returns the policy layers for policies.LoadWithPolicies.
func (k *kvPolicies) sources() (fleet, own []policies.Source) {
	if k == nil {
		return nil, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fleet, k.own
}

// set takes a read of the prefix and says whether it changed anything.
func (k *kvPolicies) set(pairs []discovery.KVPair) bool {
	var fleet, own []policies.Source
	var sig strings.Builder
	for _, p := range pairs {
		rel := strings.TrimPrefix(p.Key, k.prefix)
		if !strings.HasSuffix(rel, ".hcl") {
			continue
		}
		src := policies.Source{Name: "consul:" + p.Key, Data: p.Value}
		if svc, ok := strings.CutPrefix(rel, "service/"); ok {
			if path.Dir(svc) != k.service {
				continue // another service's policy
			}
			own = append(own, src)
		} else {
			fleet = append(fleet, src)
		}
		sig.WriteString(p.Key + "\x00" + string(p.Value) + "\x00")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	changed := sig.String() != k.index
	k.fleet, k.own, k.index = fleet, own, sig.String()
	return changed
}

// first reads the prefix once, waiting at most limit.
func (k *kvPolicies) first(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	pairs, _, err := k.client.KVList(ctx, k.prefix, 0, 0)
	if err != nil {
		return err
	}
	k.set(pairs)
	return nil
}

// watch follows the prefix with blocking queries and calls reload after
// each change, until ctx ends. A Consul that does not answer keeps the
// policies last read.
func (k *kvPolicies) watch(ctx context.Context, log hclog.Logger, reload func()) {
	k.client.WatchKV(ctx, k.prefix, func(pairs []discovery.KVPair, err error) {
		if err != nil {
			k.mu.Lock()
			repeat := k.lastErr == err.Error()
			k.lastErr = err.Error()
			k.mu.Unlock()
			if !repeat {
				log.Warn("fleet policies: Consul KV does not answer; keeping the policies last read", "prefix", k.prefix, "error", err)
			}
			return
		}
		k.mu.Lock()
		k.lastErr = ""
		k.mu.Unlock()
		if k.set(pairs) {
			log.Info("fleet policies changed in Consul KV; reloading", "prefix", k.prefix)
			reload()
		}
	})
}

// rejectedAtStart says that the policies read at start do not load, and
// that the sidecar runs on its local files until a valid change arrives.
func (k *kvPolicies) rejectedAtStart(log hclog.Logger, err error) {
	log.Warn("fleet policies in Consul KV rejected; starting with the local files only, until a valid change "+
		"of the policies arrives", "prefix", k.prefix, "errors", strings.Count(err.Error(), "\n")+1)
}
