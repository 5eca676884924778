package budget

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// fakeKV is a KV with Consul's check-and-set semantics: every write bumps
// the index; conflicts makes the next writes lose as if another sidecar
// had written first (adding other to the total each time).
type fakeKV struct {
	mu        sync.Mutex
	value     []byte
	index     uint64
	conflicts int
	other     Spend
	err       error
	writes    int
}

func (f *fakeKV) KVGet(_ context.Context, _ string) ([]byte, uint64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, 0, false, f.err
	}
	return f.value, f.index, f.index != 0, nil
}

func (f *fakeKV) KVCAS(_ context.Context, _ string, value []byte, index uint64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	if f.conflicts > 0 {
		f.conflicts--
		var t Total
		_ = json.Unmarshal(value, &t)
		cur := f.total()
		b, _ := json.Marshal(Total{WindowStart: t.WindowStart, Window: t.Window, Tokens: cur.Tokens + f.other.Tokens,
			CostUSD: cur.CostUSD + f.other.CostUSD})
		f.value, f.index = b, f.index+1
		return false, nil
	}
	if index != f.index {
		return false, nil
	}
	f.value, f.index, f.writes = value, f.index+1, f.writes+1
	return true, nil
}

// total is the spend held, whatever its window. Called with f.mu held.
func (f *fakeKV) total() Spend {
	var t Total
	_ = json.Unmarshal(f.value, &t)
	return Spend{Tokens: t.Tokens, CostUSD: t.CostUSD}
}

// fleetLedger is a ledger of one shared budget of 1000 tokens a day.
func fleetLedger() *Ledger {
	return New(map[string]policies.Budget{"fleet": {Name: "fleet", Window: 24 * time.Hour, Tokens: 1000,
		Action: policies.BudgetReject, WarnAt: 80, Scope: policies.BudgetScopeService, SyncEvery: time.Second}})
}

// sync runs one sync of every shared budget of l against kv, as the
// sidecar does, and returns the transitions.
func syncOnce(t *testing.T, l *Ledger, kv KV, now time.Time) ([]Transition, error) {
	t.Helper()
	var out []Transition
	for _, p := range l.Pending(now) {
		total, err := Sync(context.Background(), kv, Key("sidecar/fleet/", "writer", p.Budget), p, now)
		if err != nil {
			return out, err
		}
		out = append(out, l.Settle(now, p, p.Delta, total)...)
	}
	return out, nil
}

func TestSharedBudgetSpendIsTheFleetTotalPlusTheLocalDelta(t *testing.T) {
	// Given three sidecars of one service sharing a budget in one KV
	kv := &fakeKV{}
	a, b, c := fleetLedger(), fleetLedger(), fleetLedger()

	// When each spends and syncs
	a.Record(t0, "gpt-4o", 300, 0)
	b.Record(t0, "gpt-4o", 200, 0)
	for _, l := range []*Ledger{a, b} {
		if _, err := syncOnce(t, l, kv, t0); err != nil {
			t.Fatal(err)
		}
	}
	// Then the KV holds the sum, and a sidecar that spent nothing reads it
	if _, err := syncOnce(t, c, kv, t0); err != nil {
		t.Fatal(err)
	}
	if got := c.Statuses(t0)[0].Spent.Tokens; got != 500 {
		t.Errorf("c's spend after reading = %d, want 500", got)
	}
	// And local spend not yet synced counts on top of the last total read
	c.Record(t0, "gpt-4o", 350, 0)
	if got := c.Statuses(t0)[0].Spent.Tokens; got != 850 {
		t.Errorf("c's spend before its sync = %d, want 850 (500 read + 350 local)", got)
	}
	if got := a.Statuses(t0)[0].Spent.Tokens; got != 300 {
		t.Errorf("a's spend before reading again = %d, want 300", got)
	}

	// When c's sync crosses 80 % and the others read
	trs, err := syncOnce(t, c, kv, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 0 {
		t.Errorf("c's transitions at its sync = %v, want none (it warned at its Record)", trs)
	}
	trs, _ = syncOnce(t, a, kv, t0)
	if len(trs) != 1 || trs[0].Type != EventWarning {
		t.Errorf("a's transitions on reading 850 of 1000 = %v, want one warning", trs)
	}
	// Then going over the limit on one sidecar rejects on all once read
	b.Record(t0, "gpt-4o", 300, 0)
	for _, l := range []*Ledger{b, a, c} {
		if _, err := syncOnce(t, l, kv, t0); err != nil {
			t.Fatal(err)
		}
	}
	for name, l := range map[string]*Ledger{"a": a, "b": b, "c": c} {
		if got := l.Admit(t0, "gpt-4o"); !got.Reject {
			t.Errorf("%s admits at 1150 of 1000 tokens, want a rejection", name)
		}
	}
}

func TestSharedBudgetSyncRetriesConflictsAndKeepsTheDeltaOnErrors(t *testing.T) {
	tests := []struct {
		name       string
		conflicts  int
		err        error
		wantErr    error
		wantSpent  int64 // on the ledger after the sync
		wantInKV   int64
		wantWrites int
	}{
		{"no conflict", 0, nil, nil, 100, 100, 1},
		{"two conflicts, then written on the read total", 2, nil, nil, 120, 120, 1},
		{"conflicts every time: kept for the next sync", SyncAttempts, nil, ErrConflict, 100, 10 * SyncAttempts, 0},
		{"Consul down: kept", 0, errors.New("connection refused"), errors.New("connection refused"), 100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := &fakeKV{conflicts: tt.conflicts, other: Spend{Tokens: 10}, err: tt.err}
			l := fleetLedger()
			l.Record(t0, "gpt-4o", 100, 0)
			_, err := syncOnce(t, l, kv, t0)
			if (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got := l.Statuses(t0)[0].Spent.Tokens; got != tt.wantSpent {
				t.Errorf("spent = %d, want %d", got, tt.wantSpent)
			}
			kv.mu.Lock()
			inKV, writes := kv.total().Tokens, kv.writes
			kv.mu.Unlock()
			if inKV != tt.wantInKV || writes != tt.wantWrites {
				t.Errorf("KV holds %d tokens after %d writes, want %d after %d", inKV, writes, tt.wantInKV, tt.wantWrites)
			}
			// And the delta kept is written at the next sync once Consul answers
			kv.mu.Lock()
			kv.err, kv.conflicts = nil, 0
			before := kv.total().Tokens
			kv.mu.Unlock()
			if _, err := syncOnce(t, l, kv, t0); err != nil {
				t.Fatal(err)
			}
			kv.mu.Lock()
			after := kv.total().Tokens
			kv.mu.Unlock()
			if tt.wantErr != nil && after-before != 100 {
				t.Errorf("the next sync added %d tokens, want the 100 kept", after-before)
			}
			if tt.wantErr == nil && after != before {
				t.Errorf("the next sync added %d tokens, want none (already synced)", after-before)
			}
		})
	}
}

func TestSharedBudgetTotalOfAnotherWindowCountsAsZero(t *testing.T) {
	// Given yesterday's total in KV
	old, _ := json.Marshal(Total{WindowStart: WindowStart(t0, 24*time.Hour).Add(-24 * time.Hour), Window: "24h0m0s", Tokens: 5000})
	kv := &fakeKV{value: old, index: 7}
	l := fleetLedger()

	// When a sidecar spends today and syncs
	l.Record(t0, "gpt-4o", 40, 0)
	if _, err := syncOnce(t, l, kv, t0); err != nil {
		t.Fatal(err)
	}
	// Then today's total is its spend alone, and it admits
	if got := l.Statuses(t0)[0].Spent.Tokens; got != 40 {
		t.Errorf("spent = %d, want 40", got)
	}
	var got Total
	_ = json.Unmarshal(kv.value, &got)
	if !got.WindowStart.Equal(WindowStart(t0, 24*time.Hour)) || got.Tokens != 40 {
		t.Errorf("KV holds %+v, want today's window with 40 tokens", got)
	}
	if l.Admit(t0, "gpt-4o").Reject {
		t.Error("rejects on yesterday's total")
	}

	// And a sync of a window that has ended changes nothing
	p := l.Pending(t0)[0]
	next := t0.Add(24 * time.Hour)
	if trs := l.Settle(next, p, p.Delta, Spend{Tokens: 9999}); trs != nil {
		t.Errorf("settling an ended window = %v, want nothing", trs)
	}
	if got := l.Statuses(next)[0].Spent.Tokens; got != 0 {
		t.Errorf("spend in the new window = %d, want 0", got)
	}
}

func TestSharedBudgetsAreNotInTheStateFile(t *testing.T) {
	l := New(map[string]policies.Budget{
		"mine":  {Name: "mine", Window: time.Hour, Tokens: 100, Scope: policies.BudgetScopeAgent},
		"fleet": {Name: "fleet", Window: time.Hour, Tokens: 100, Scope: policies.BudgetScopeService, SyncEvery: time.Second},
	})
	l.Record(t0, "gpt-4o", 10, 0)
	st := l.Snapshot()
	if _, ok := st.Budgets["fleet"]; ok || len(st.Budgets) != 1 {
		t.Errorf("state file budgets = %v, want only the agent budget", st.Budgets)
	}
}
