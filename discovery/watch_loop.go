package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Pacing of one query's requests to Consul.
const (
	// minQueryInterval is the least time between the starts of two
	// requests of one query, so an index that keeps changing (or a Consul
	// that answers at once by mistake) cannot make the loop spin.
	minQueryInterval = 100 * time.Millisecond
	// While Consul fails, retries wait from watchBackoffMin, doubling up to
	// watchBackoffMax, each shortened by up to a fifth at random.
	watchBackoffMin = 250 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// follow keeps qw's set current with blocking queries until ctx is done.
//
// Instances in rotation are those with no critical check, node or service
// (maintenance mode counts as critical). Consul's own "passing" filter would
// also drop instances with a warning check, but the sidecar reports an open
// breaker or degraded mode as a warning: such an agent still answers, so it
// stays in rotation. The filtering is therefore done here, not by Consul.
func (w *Watcher) follow(ctx context.Context, qw *queryWatch) {
	var index uint64
	var lastStart time.Time
	failures := 0
	for {
		if !sleep(ctx, minQueryInterval-time.Since(lastStart)) {
			return
		}
		lastStart = time.Now()
		entries, got, err := w.fetch(ctx, qw.q, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			retryIn := watchBackoff(failures)
			w.failed(qw, err, failures, retryIn)
			// The index may belong to a Consul that has since restarted
			// with a lower one; a blocking query with it would wait the
			// full WaitTime before answering. Start over with a plain read.
			index = 0
			if !sleep(ctx, retryIn) {
				return
			}
			continue
		}
		index = nextIndex(index, got)
		w.answered(qw, instancesOf(entries), failures)
		failures = 0
	}
}

// fetch runs one blocking query for q, waiting for a change past index (no
// waiting when index is 0). It returns the entries and Consul's index.
func (w *Watcher) fetch(ctx context.Context, q Query, index uint64) ([]*api.ServiceEntry, uint64, error) {
	wait := w.waitTime()
	ctx, cancel := context.WithTimeout(ctx, wait+wait/16+w.timeout)
	defer cancel()
	opts := (&api.QueryOptions{WaitIndex: index, WaitTime: wait, Filter: q.Filter}).WithContext(ctx)
	entries, meta, err := w.api.Health().ServiceMultipleTags(q.Service, q.Tags, false, opts)
	if err != nil {
		return nil, 0, fmt.Errorf("querying instances of service %q: %w", q.Service, err)
	}
	return entries, meta.LastIndex, nil
}

func (w *Watcher) waitTime() time.Duration {
	switch {
	case w.WaitTime <= 0:
		return DefaultWaitTime
	case w.WaitTime > maxWaitTime:
		return maxWaitTime
	default:
		return w.WaitTime
	}
}

// nextIndex applies Consul's rules for blocking query indexes: an index that
// went backwards (Consul restarted or restored a snapshot) starts over from
// 0, and an index below 1 becomes 1 so the next query does block.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got < 1:
		return 1
	default:
		return got
	}
}

// answered publishes the instances Consul returned. failures is how many
// queries failed before this one.
func (w *Watcher) answered(qw *queryWatch, ins []Instance, failures int) {
	old := qw.set.Load()
	same := old.Known && sameInstances(old.Instances, ins)
	if same {
		ins = old.Instances // keep the slice callers may already hold
	}
	set := &InstanceSet{Instances: ins, Known: true, Updated: time.Now()}
	qw.set.Store(set)
	if !old.Known {
		close(qw.known)
	}
	if failures > 0 {
		w.log.Info("consul answers again", "query", qw.key, "failed_attempts", failures,
			"instances", len(ins))
	}
	switch {
	case !old.Known:
		w.log.Debug("first answer from consul", "query", qw.key, "instances", len(ins))
	case !same:
		w.log.Info("instances changed", "query", qw.key, "instances", len(ins), "before", len(old.Instances))
	case !old.Stale:
		return // nothing changed: no callbacks
	}
	w.notify(qw, *set)
}

// failed keeps the last known instances, marks them stale and logs the
// error: a warning for the first failure of an outage, debug after.
func (w *Watcher) failed(qw *queryWatch, err error, failures int, retryIn time.Duration) {
	msg := scrubToken(err, w.token).Error()
	old := qw.set.Load()
	set := *old
	set.Stale, set.LastError = true, msg
	qw.set.Store(&set)
	if failures == 1 {
		w.log.Warn("consul query failed, serving the last known instances", "query", qw.key,
			"consul_address", w.address, "known", old.Known, "instances", len(old.Instances), "error", msg)
	} else {
		w.log.Debug("consul query failed again", "query", qw.key, "attempt", failures,
			"retry_in", retryIn, "error", msg)
	}
	if !old.Stale {
		w.notify(qw, set)
	}
}

func (w *Watcher) notify(qw *queryWatch, set InstanceSet) {
	for _, fn := range w.listeners() {
		fn(qw.q, set)
	}
}

// instanceFrom converts one Consul entry (with a service) to an Instance:
// the service address, else the node's.
func instanceFrom(e *api.ServiceEntry) Instance {
	in := Instance{
		ID:      e.Service.ID,
		Service: e.Service.Service,
		Address: e.Service.Address,
		Port:    e.Service.Port,
		Tags:    e.Service.Tags,
		Meta:    e.Service.Meta,
	}
	if e.Node != nil {
		in.Node = e.Node.Node
		if in.Address == "" {
			in.Address = e.Node.Address
		}
	}
	return in
}

// instancesOf converts Consul's entries to the instances that may receive
// traffic (see follow), sorted by ID and then node.
func instancesOf(entries []*api.ServiceEntry) []Instance {
	out := make([]Instance, 0, len(entries))
	for _, e := range entries {
		if e.Service == nil || hasCritical(e.Checks) {
			continue
		}
		out = append(out, instanceFrom(e))
	}
	slices.SortFunc(out, func(a, b Instance) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out
}

func hasCritical(checks api.HealthChecks) bool {
	for _, c := range checks {
		if c.Status == api.HealthCritical || c.Status == api.HealthMaint {
			return true
		}
	}
	return false
}

func sameInstances(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.ID == y.ID && x.Service == y.Service && x.Node == y.Node &&
			x.Address == y.Address && x.Port == y.Port &&
			slices.Equal(x.Tags, y.Tags) && maps.Equal(x.Meta, y.Meta)
	})
}

// sleep waits for d or ctx; it returns false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchBackoff returns the delay before retry number n (from 1).
func watchBackoff(n int) time.Duration {
	d := watchBackoffMax
	if n <= 5 { // 250ms << 5 = 8s is past the cap already
		d = min(watchBackoffMin<<(n-1), watchBackoffMax)
	}
	return d - rand.N(d/5)
}

// scrubToken removes token from err's text. consul/api sends the token in a
// header, so it should never be there; this is a second line of defence.
func scrubToken(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "[redacted]"))
}
