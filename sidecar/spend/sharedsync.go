package spend

import (
	"context"
	"errors"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar/budget"
)

// syncTick is how often the service budgets are looked at; each is synced
// when its sync_every has passed (at least 1s).
const syncTick = time.Second

// finalSyncTimeout bounds the last sync at shutdown, which adds the spend
// not yet synced to the service's totals.
const finalSyncTimeout = 3 * time.Second

// syncShared keeps the service budgets in step with their totals in
// Consul KV, until ctx is done: at start it reads them, then every
// sync_every it adds this sidecar's spend since the last sync (check-and-
// set) and reads what the other sidecars of the service spent; at the end
// it adds the spend not yet synced. Without a store it does nothing.
func (k *Keeper) syncShared(ctx context.Context) {
	if k.totals == nil {
		return
	}
	last := map[string]time.Time{}
	k.syncErr = map[string]string{}
	k.syncDue(ctx, last, true)
	t := time.NewTicker(syncTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalSyncTimeout)
			k.syncDue(final, nil, true)
			cancel()
			return
		case <-t.C:
			k.syncDue(ctx, last, false)
		}
	}
}

// syncDue syncs every service budget whose sync_every has passed since
// its last sync in last (every one with all; with last nil, only those
// with spend to add), and publishes the thresholds the totals read have
// crossed.
func (k *Keeper) syncDue(ctx context.Context, last map[string]time.Time, all bool) {
	now := k.opts.Now()
	service := k.opts.Config().Agent.Name
	for _, p := range k.ledger.Pending(now) {
		switch {
		case last == nil && p.Delta == (budget.Spend{}):
			continue
		case !all && time.Since(last[p.Budget]) < p.SyncEvery-syncTick/2:
			continue
		}
		if last != nil {
			last[p.Budget] = time.Now()
		}
		key := budget.Key(k.prefix, service, p.Budget)
		total, err := budget.Sync(ctx, k.totals, key, p, now)
		k.syncResult(p.Budget, key, err)
		if err != nil {
			continue
		}
		k.publish(now, "", k.ledger.Settle(now, p, p.Delta, total))
	}
}

// syncResult logs a failed sync of a budget once per kind of failure, and
// its recovery.
// Called from the goroutine of syncShared only.
func (k *Keeper) syncResult(name, key string, err error) {
	kind := ""
	switch {
	case errors.Is(err, budget.ErrConflict):
		kind = "conflict"
	case err != nil:
		kind = "consul"
	}
	prev := k.syncErr[name]
	k.syncErr[name] = kind
	switch {
	case kind == prev:
	case kind == "":
		k.log.Info("service budget synced with Consul KV again", "budget", name, "key", key)
	case kind == "conflict":
		k.log.Warn("service budget not synced: too many sidecars wrote its total at once; the spend is kept for the next sync",
			"budget", name, "key", key)
	default:
		k.log.Warn("service budget not synced with Consul KV: enforcing on the last total read plus this sidecar's spend, "+
			"which is kept for the next sync", "budget", name, "key", key, "error", err)
	}
}
