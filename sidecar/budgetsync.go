package sidecar

import (
	"context"
	"errors"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar/budget"
)

// budgetSyncTick is how often the service budgets are looked at; each is
// synced when its sync_every has passed (at least 1s).
const budgetSyncTick = time.Second

// budgetFinalSyncTimeout bounds the last sync at shutdown, which adds the
// spend not yet synced to the service's totals.
const budgetFinalSyncTimeout = 3 * time.Second

// syncSharedBudgets keeps the service budgets in step with their totals in
// Consul KV, until ctx is done: at start it reads them, then every
// sync_every it adds this sidecar's spend since the last sync (check-and-
// set) and reads what the other sidecars of the service spent; at the end
// it adds the spend not yet synced. Without a store it does nothing.
func (s *Sidecar) syncSharedBudgets(ctx context.Context) {
	if s.budgets.totals == nil {
		return
	}
	last := map[string]time.Time{}
	s.syncBudgetsDue(ctx, last, true)
	t := time.NewTicker(budgetSyncTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetFinalSyncTimeout)
			s.syncBudgetsDue(final, nil, true)
			cancel()
			return
		case <-t.C:
			s.syncBudgetsDue(ctx, last, false)
		}
	}
}

// syncBudgetsDue syncs every service budget whose sync_every has passed
// since its last sync in last (every one with all; with last nil, only
// those with spend to add), and publishes the thresholds the totals read
// have crossed.
func (s *Sidecar) syncBudgetsDue(ctx context.Context, last map[string]time.Time, all bool) {
	k := s.budgets
	now := s.now()
	service := s.Config().Agent.Name
	for _, p := range k.ledger.Pending(now) {
		switch {
		case last == nil && p.Delta == (budget.Spend{}):
			continue
		case !all && time.Since(last[p.Budget]) < p.SyncEvery-budgetSyncTick/2:
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
		s.publishBudget(now, "", k.ledger.Settle(now, p, p.Delta, total))
	}
}

// syncResult logs a failed sync of a budget once per kind of failure, and
// its recovery.
func (k *budgetKeeper) syncResult(name, key string, err error) {
	kind := ""
	switch {
	case errors.Is(err, budget.ErrConflict):
		kind = "conflict"
	case err != nil:
		kind = "consul"
	}
	k.mu.Lock()
	if k.syncErr == nil {
		k.syncErr = map[string]string{}
	}
	prev := k.syncErr[name]
	k.syncErr[name] = kind
	k.mu.Unlock()
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
