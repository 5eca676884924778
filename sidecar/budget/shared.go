package budget

import "time"

// plus is the sum of two spends.
func (s Spend) plus(o Spend) Spend {
	return Spend{CostUSD: s.CostUSD + o.CostUSD, Tokens: s.Tokens + o.Tokens}
}

// minus is s less o, never below zero.
func (s Spend) minus(o Spend) Spend {
	return Spend{CostUSD: max(s.CostUSD-o.CostUSD, 0), Tokens: max(s.Tokens-o.Tokens, 0)}
}

// Pending is a shared budget's spend by this sidecar in the current window
// that the service's total in Consul KV does not hold yet.
type Pending struct {
	Budget      string
	Window      time.Duration
	WindowStart time.Time
	SyncEvery   time.Duration
	Delta       Spend // zero when nothing was spent since the last sync
}

// Pending returns every shared budget at now, by name, with the spend
// not yet synced (a budget with nothing to add is listed too, so that the
// others' spend is read).
func (l *Ledger) Pending(now time.Time) []Pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Pending
	for _, name := range l.names {
		b := l.budgets[name]
		if !b.Shared() {
			continue
		}
		e := l.current(name, b, now)
		out = append(out, Pending{Budget: name, Window: b.Window, WindowStart: e.start, SyncEvery: b.SyncEvery, Delta: e.delta})
	}
	return out
}

// Settle records a sync of a shared budget: synced, taken from Pending, is
// now in the service's total, which is total. The spend is then that total
// plus what was spent since Pending; the thresholds crossed are returned.
// A sync of a window that has ended, or of a budget that is no longer
// shared, changes nothing.
func (l *Ledger) Settle(now time.Time, p Pending, synced, total Spend) []Transition {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.budgets[p.Budget]
	if !ok || !b.Shared() || b.Window != p.Window {
		return nil
	}
	e := l.current(p.Budget, b, now)
	if !e.start.Equal(p.WindowStart) {
		return nil
	}
	e.delta = e.delta.minus(synced)
	e.fleet = Spend{CostUSD: max(total.CostUSD, 0), Tokens: max(total.Tokens, 0)}
	e.spent = e.fleet.plus(e.delta)
	return e.transitions(p.Budget, b, now)
}
