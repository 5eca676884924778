package report

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Store is where reports are kept: Consul KV (discovery.Client), or a fake
// in unit tests.
type Store interface {
	KVPut(ctx context.Context, key string, value []byte) error
	KVDelete(ctx context.Context, key string) error
}

// Every is how often a report whose only change is a newer heartbeat or
// answered share is written at most; a change an operator acts on
// (isolation, breakers, degradation) is written at once.
const Every = 10 * time.Second

// Writer keeps one sidecar's report up to date in a Store. Run does all the
// I/O on one goroutine; Nudge says the state may have changed.
type Writer struct {
	store Store
	key   string
	build func() Report
	now   func() time.Time
	log   hclog.Logger
	wake  chan struct{}
}

// NewWriter returns a writer of the report build returns, at key.
func NewWriter(store Store, key string, build func() Report, now func() time.Time, log hclog.Logger) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{store: store, key: key, build: build, now: now, log: log, wake: make(chan struct{}, 1)}
}

// Nudge asks for a look at the state; it never blocks.
func (w *Writer) Nudge() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run writes the report when it changes, until ctx ends. A store that
// refuses a write (Consul down, no ACL write access to the key) is warned
// about once per kind of error and tried again after Every.
func (w *Writer) Run(ctx context.Context) {
	tick := time.NewTicker(Every)
	defer tick.Stop()
	var last Report
	var attempted time.Time // the last write tried
	ok := false             // and whether it went through
	var lastErr string
	for {
		r := w.build()
		now := w.now()
		changed := !ok || !Same(last, r)
		if changed && ((ok && Urgent(last, r)) || attempted.IsZero() || now.Sub(attempted) >= Every) {
			r.Updated = now.UTC()
			attempted = now
			if err := w.store.KVPut(ctx, w.key, Encode(r)); err != nil {
				if ctx.Err() != nil {
					return
				}
				if err.Error() != lastErr {
					w.log.Warn("cannot write the fleet report to Consul KV; sidecar fleet shows this agent without it "+
						"(grant the token key write on the prefix, or set consul.fleet_prefix = \"\")", "key", w.key, "error", err)
					lastErr = err.Error()
				}
				ok = false
			} else {
				last, ok, lastErr = r, true, ""
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-tick.C:
		}
	}
}

// Delete removes the report (at shutdown, after deregistering: the
// instance is gone from the fleet).
func (w *Writer) Delete(ctx context.Context) error { return w.store.KVDelete(ctx, w.key) }
