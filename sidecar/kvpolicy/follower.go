// Package kvpolicy follows the fleet-wide policies a sidecar reads from
// Consul KV under consul.policy_prefix, and loads the local files over
// them.
package kvpolicy

import (
	"context"
	"errors"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// Rejected is what Load returns, together with a configuration, when the
// fleet policies read from Consul KV do not load but the local files do
// over the policies in force (or over none, when none was ever accepted):
// the configuration is to be applied, and Err is why the policies were
// rejected.
type Rejected struct {
	Err error
}

func (e *Rejected) Error() string { return e.Err.Error() }

func (e *Rejected) Unwrap() error { return e.Err }

// Follower follows the fleet-wide policies in Consul KV under
// consul.policy_prefix: the fleet layer (keys directly below the prefix,
// and in folders other than service/) and this service's layer
// (service/<name>/…). Only keys ending in .hcl are policies. Give it to
// the sidecar in sidecar.Options.Policies: Run follows the prefix and
// reloads on each change.
type Follower struct {
	prefix, service string
	paths           []string // the local files, loaded over the policies
	client          *discovery.Client
	// What Follow saw at start, reported by the sidecar's Run: the
	// prefix could not be read, or its policies were rejected.
	unreadAtStart, rejectedAtStart error

	mu      sync.Mutex
	fleet   []policies.Source
	own     []policies.Source
	index   string // the keys and their values, to tell a real change
	lastErr string
	// The policies in force: the last that loaded with the files (none
	// before any did).
	goodFleet, goodOwn []policies.Source
	goodIndex          string
}

// Follow reads the policies under cfg's consul.policy_prefix
// once, waiting at most limit (Consul may be down), and returns their
// follower and the configuration to start with: the files at paths (cfg is
// what they loaded) over the policies, or the files alone when the prefix
// cannot be read or its policies do not load; Run reports either. The error
// is for a Consul configuration the client refuses.
func Follow(cfg *policies.Config, consul discovery.Config, paths []string, limit time.Duration) (*Follower, *policies.Config, error) {
	c, err := discovery.NewClient(consul)
	if err != nil {
		return nil, nil, err
	}
	k := &Follower{prefix: cfg.Consul.PolicyPrefix, service: cfg.Agent.Name, paths: paths, client: c}
	if err := k.first(limit); err != nil {
		k.unreadAtStart = err
		return k, cfg, nil
	}
	withKV, err := k.Load()
	var rejected *Rejected
	switch {
	case errors.As(err, &rejected) && withKV != nil:
		k.rejectedAtStart = rejected.Err
		return k, withKV, nil
	case err != nil: // the files no longer load: they changed since cfg was read
		return nil, nil, err
	}
	return k, withKV, nil
}

// CloseIdleConnections closes the Consul client's kept-alive connections.
func (k *Follower) CloseIdleConnections() { k.client.CloseIdleConnections() }

// Load loads the files over the policies last read (sidecar.Options.Reload).
func (k *Follower) Load() (*policies.Config, error) { return k.load(k.paths) }

// load loads the files over the policies last read. When that fails
// because of the policies (the files load over the policies in force), it
// returns the files over the policies in force, with a
// *Rejected error saying why the policies were rejected: a
// bad policy does not hold back a change of the local files. When the files
// do not load, the error lists their problems and, if they differ from
// those in force, the policies' own. Loads run one at a time: at start,
// then only through Sidecar.Reload, which runs one reload at a time.
func (k *Follower) load(paths []string) (*policies.Config, error) {
	if k == nil {
		return policies.LoadWithPolicies(nil, nil, paths...)
	}
	k.mu.Lock()
	fleet, own, index := k.fleet, k.own, k.index
	goodFleet, goodOwn, goodIndex := k.goodFleet, k.goodOwn, k.goodIndex
	k.mu.Unlock()

	cfg, err := policies.LoadWithPolicies(fleet, own, paths...)
	if err == nil {
		k.mu.Lock()
		k.goodFleet, k.goodOwn, k.goodIndex = fleet, own, index
		k.mu.Unlock()
		return cfg, nil
	}
	if index == goodIndex {
		return nil, err // the policies in force: the files are at fault
	}
	local, localErr := policies.LoadWithPolicies(goodFleet, goodOwn, paths...)
	if localErr != nil {
		return nil, joinDiagnostics(localErr, err)
	}
	return local, &Rejected{Err: err}
}

// joinDiagnostics is the diagnostics of first followed by those of second
// that first does not have.
func joinDiagnostics(first, second error) error {
	var a, b policies.Diagnostics
	if !errors.As(first, &a) || !errors.As(second, &b) {
		return errors.Join(first, second)
	}
	seen := make(map[string]bool, len(a))
	for _, d := range a {
		seen[d.Error()] = true
	}
	out := append(policies.Diagnostics(nil), a...)
	for _, d := range b {
		if !seen[d.Error()] {
			out = append(out, d)
		}
	}
	return out
}

// set takes a read of the prefix and says whether it changed anything.
func (k *Follower) set(pairs []discovery.KVPair) bool {
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
func (k *Follower) first(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	pairs, _, err := k.client.KVList(ctx, k.prefix, 0, 0)
	if err != nil {
		return err
	}
	k.set(pairs)
	return nil
}

// Watch follows the prefix with blocking queries and calls reload after
// each change, until ctx ends. A Consul that does not answer keeps the
// policies last read.
func (k *Follower) Watch(ctx context.Context, log hclog.Logger, reload func()) {
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

// Prefix is the KV prefix followed.
func (k *Follower) Prefix() string { return k.prefix }

// AtStart says what Follow saw: the prefix could not be read (unread), or
// its policies were rejected (rejected); the sidecar started on its local
// files.
func (k *Follower) AtStart() (unread, rejected error) { return k.unreadAtStart, k.rejectedAtStart }
