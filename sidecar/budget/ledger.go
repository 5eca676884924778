// Package budget keeps what an agent spends on models against the budgets
// of its configuration: spend per budget over aligned windows, the warning,
// exceeded and burn-rate transitions, and the decision to admit, degrade or
// reject a request. The Ledger is a state machine: it starts no goroutine
// and does no I/O, the time is passed in, and transitions are returned so
// the caller publishes them after the call.
package budget

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// Event types of the transitions, as published and sent to webhooks.
const (
	EventWarning  = notify.EventBudgetWarning  // spend crossed warn_at percent of the limit
	EventExceeded = notify.EventBudgetExceeded // spend reached the limit
	EventBurning  = notify.EventBudgetBurning  // the recent rate of spend would reach the limit before the window ends
)

// States of a budget in status.
const (
	StateOK       = "ok"
	StateWarning  = "warning"
	StateExceeded = "exceeded"
)

// BurnLookback is the recent period whose spend, extrapolated to the end
// of the window, raises budget.burning.
const BurnLookback = 5 * time.Minute

// burnBucket is the resolution of the recent spend: at most
// BurnLookback/burnBucket buckets are kept per budget.
const burnBucket = 10 * time.Second

// Spend is money and tokens spent.
type Spend struct {
	CostUSD float64 `json:"cost_usd"`
	Tokens  int64   `json:"tokens"`
}

// Transition is a budget crossing a threshold, to publish as an event.
type Transition struct {
	Type     string // EventWarning, EventExceeded or EventBurning
	Budget   string
	Spent    Spend
	Limit    Spend // 0 where the budget has no such limit
	ResetsAt time.Time
	Text     string // for people: which budget, how much of what, when it resets
}

// bucket is the spend of one burnBucket of the recent past.
type bucket struct {
	start time.Time
	spend Spend
}

// entry is one budget's spend in its current window.
type entry struct {
	start                     time.Time // the window's start
	spent                     Spend     // for a shared budget: fleet + delta
	fleet                     Spend     // shared budgets: the service's total last read from Consul KV
	delta                     Spend     // shared budgets: this sidecar's spend not yet added to that total
	warned, exceeded, burning bool      // each transition once per window
	recent                    []bucket
}

// Ledger keeps the spend of each budget. It is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	budgets map[string]policies.Budget
	names   []string // of budgets, sorted: the order of transitions and statuses
	entries map[string]*entry
}

// New returns a ledger of budgets, with nothing spent.
func New(budgets map[string]policies.Budget) *Ledger {
	l := &Ledger{entries: map[string]*entry{}}
	l.SetBudgets(budgets)
	return l
}

// SetBudgets replaces the budgets (a reload). A budget that keeps its name,
// window and scope keeps its spend; one whose window or scope changed
// starts afresh.
func (l *Ledger) SetBudgets(budgets map[string]policies.Budget) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.budgets
	l.budgets = maps.Clone(budgets)
	l.names = slices.Sorted(maps.Keys(budgets))
	for name := range l.entries {
		b, ok := budgets[name]
		if !ok || prev[name].Window != b.Window || prev[name].Shared() != b.Shared() {
			delete(l.entries, name)
		}
	}
}

// Empty reports whether there are no budgets.
func (l *Ledger) Empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.budgets) == 0
}

// WindowStart is the start of the aligned window of length w that holds
// now: a multiple of w since the Unix epoch (for a w that divides a day,
// that is 00:00 UTC and every multiple of w after).
func WindowStart(now time.Time, w time.Duration) time.Time {
	n := now.UnixNano()
	r := n % int64(w)
	if r < 0 {
		r += int64(w)
	}
	return time.Unix(0, n-r).UTC()
}

// current returns the entry of budget b at now, starting a new window
// when the old one has ended. Called with l.mu held.
func (l *Ledger) current(name string, b policies.Budget, now time.Time) *entry {
	start := WindowStart(now, b.Window)
	e := l.entries[name]
	if e == nil || !e.start.Equal(start) {
		e = &entry{start: start}
		l.entries[name] = e
	}
	return e
}

// Record counts what one answer for the requested model label cost
// against every budget that counts that model, and returns the
// transitions it caused, in the order of the budgets' names.
func (l *Ledger) Record(now time.Time, model string, tokens int64, costUSD float64) []Transition {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Transition
	for _, name := range l.names {
		b := l.budgets[name]
		if !b.Counts(model) {
			continue
		}
		e := l.current(name, b, now)
		s := Spend{CostUSD: max(costUSD, 0), Tokens: max(tokens, 0)}
		e.spent = e.spent.plus(s)
		if b.Shared() {
			e.delta = e.delta.plus(s)
		}
		e.addRecent(now, s)
		out = append(out, e.transitions(name, b, now)...)
	}
	return out
}

// addRecent adds spend to the bucket of now and drops the buckets older
// than BurnLookback.
func (e *entry) addRecent(now time.Time, s Spend) {
	start := now.Truncate(burnBucket)
	if n := len(e.recent); n > 0 && e.recent[n-1].start.Equal(start) {
		e.recent[n-1].spend = e.recent[n-1].spend.plus(s)
	} else {
		e.recent = append(e.recent, bucket{start: start, spend: s})
	}
	cut := 0
	for cut < len(e.recent) && !e.recent[cut].start.After(now.Add(-BurnLookback)) {
		cut++
	}
	e.recent = e.recent[cut:]
}

// fraction is the larger of the spend's fractions of the budget's limits.
func fraction(b policies.Budget, s Spend) float64 { return s.shareOf(limit(b)) }

// shareOf is the larger of s's fractions of the limits in l (a limit of 0
// is left out): 1 or more when the limit is reached.
func (s Spend) shareOf(l Spend) float64 {
	f := 0.0
	if l.Tokens > 0 {
		f = float64(s.Tokens) / float64(l.Tokens)
	}
	if l.CostUSD > 0 {
		f = max(f, s.CostUSD/l.CostUSD)
	}
	return f
}

// transitions returns the thresholds the entry has newly crossed. Called
// with l.mu held.
func (e *entry) transitions(name string, b policies.Budget, now time.Time) []Transition {
	f := fraction(b, e.spent)
	resets := e.start.Add(b.Window)
	tr := func(typ, text string) Transition {
		return Transition{Type: typ, Budget: name, Spent: e.spent, Limit: limit(b), ResetsAt: resets, Text: text}
	}
	var out []Transition
	switch {
	case f >= 1 && !e.exceeded:
		e.exceeded, e.warned = true, true
		then := "requests are refused until the window resets"
		if b.Action == policies.BudgetDegrade {
			then = fmt.Sprintf("requests go to %s until the window resets", b.DegradeTo)
		}
		out = append(out, tr(EventExceeded, fmt.Sprintf("budget %q is spent (%s of %s this %s window): %s at %s",
			name, spentText(b, e.spent), limitText(b), b.Window, then, resets.Format(time.RFC3339))))
	case b.WarnAt > 0 && f*100 >= float64(b.WarnAt) && !e.warned:
		e.warned = true
		out = append(out, tr(EventWarning, fmt.Sprintf("budget %q is %d%% spent (%s of %s this %s window); it resets at %s",
			name, int(f*100), spentText(b, e.spent), limitText(b), b.Window, resets.Format(time.RFC3339))))
	}
	if !e.exceeded && !e.burning {
		var recent Spend
		for _, bk := range e.recent {
			recent = recent.plus(bk.spend)
		}
		left := float64(resets.Sub(now)) / float64(BurnLookback)
		projected := Spend{Tokens: e.spent.Tokens + int64(float64(recent.Tokens)*left), CostUSD: e.spent.CostUSD + recent.CostUSD*left}
		if fraction(b, projected) >= 1 {
			e.burning = true
			out = append(out, tr(EventBurning, fmt.Sprintf("budget %q is burning: at the rate of the last %s (%s), "+
				"it will be spent before it resets at %s", name, BurnLookback, spentText(b, recent), resets.Format(time.RFC3339))))
		}
	}
	return out
}

// limit is the budget's limits as a Spend.
func limit(b policies.Budget) Spend { return Spend{CostUSD: b.CostUSD, Tokens: b.Tokens} }

// spentText writes the spend in the units the budget limits.
func spentText(b policies.Budget, s Spend) string { return amountText(b, s, "and") }

// limitText writes the budget's limits.
func limitText(b policies.Budget) string { return amountText(b, limit(b), "or") }

// amountText writes s in the units the budget limits, joining cost and
// tokens with conj when it limits both.
func amountText(b policies.Budget, s Spend, conj string) string {
	switch {
	case b.CostUSD > 0 && b.Tokens > 0:
		return fmt.Sprintf("$%.2f %s %d tokens", s.CostUSD, conj, s.Tokens)
	case b.CostUSD > 0:
		return fmt.Sprintf("$%.2f", s.CostUSD)
	}
	return fmt.Sprintf("%d tokens", s.Tokens)
}

// Admit decides what happens to a request for the model label at now: a
// spent budget in reject mode rejects it until its window resets (the
// latest reset when several are spent), one in degrade mode sends it to its
// degrade_to model; rejecting wins over degrading.
func (l *Ledger) Admit(now time.Time, model string) gateway.Admission {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out gateway.Admission
	for _, name := range l.names {
		b := l.budgets[name]
		if !b.Counts(model) {
			continue
		}
		e := l.current(name, b, now)
		if fraction(b, e.spent) < 1 {
			continue
		}
		resets := e.start.Add(b.Window)
		switch {
		case b.Action == policies.BudgetReject && resets.Sub(now) > out.RetryAfter:
			out.Reject, out.RetryAfter = true, resets.Sub(now)
			out.Reason = fmt.Sprintf("budget %q is spent (%s of %s this %s window); requests are refused until %s",
				name, spentText(b, e.spent), limitText(b), b.Window, resets.Format(time.RFC3339))
		case b.Action == policies.BudgetDegrade && out.DegradeTo == "":
			out.DegradeTo = b.DegradeTo
		}
	}
	if out.Reject {
		out.DegradeTo = ""
	}
	return out
}

// Status is one budget as GET /v1/status shows it.
type Status struct {
	Name     string    `json:"name"`
	Window   string    `json:"window"`
	Action   string    `json:"action"`
	Spent    Spend     `json:"spent"`
	Limit    Spend     `json:"limit"` // 0 where the budget has no such limit
	Left     Spend     `json:"left"`  // 0 where the budget has no such limit
	ResetsAt time.Time `json:"resets_at"`
	State    string    `json:"state"` // StateOK, StateWarning or StateExceeded
}

// SpentRatio is the share of the budget spent: the larger of cost and
// tokens over their limits (1 or more: spent).
func (st Status) SpentRatio() float64 { return st.Spent.shareOf(st.Limit) }

// Statuses returns every budget at now, by name.
func (l *Ledger) Statuses(now time.Time) []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Status, 0, len(l.budgets))
	for _, name := range l.names {
		b := l.budgets[name]
		e := l.current(name, b, now)
		st := Status{Name: name, Window: b.Window.String(), Action: b.Action, Spent: e.spent, Limit: limit(b),
			ResetsAt: e.start.Add(b.Window), State: StateOK}
		if b.Tokens > 0 {
			st.Left.Tokens = max(b.Tokens-e.spent.Tokens, 0)
		}
		if b.CostUSD > 0 {
			st.Left.CostUSD = max(b.CostUSD-e.spent.CostUSD, 0)
		}
		switch f := fraction(b, e.spent); {
		case f >= 1:
			st.State = StateExceeded
		case b.WarnAt > 0 && f*100 >= float64(b.WarnAt):
			st.State = StateWarning
		}
		out = append(out, st)
	}
	return out
}
