package spend

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// budgetConfig is the configuration of an agent with a rejecting budget of
// 100 tokens a minute, its state in dir.
func budgetConfig(dir string) *policies.Config {
	return &policies.Config{Agent: policies.Agent{Name: "writer", ID: "writer-1", StateDir: dir},
		Models: map[string]policies.Model{"m": {Label: "m"}},
		Budgets: map[string]policies.Budget{"loop": {Name: "loop", Window: time.Minute, Tokens: 100,
			Action: policies.BudgetReject, WarnAt: 80}}}
}

// budgetKeeper is a keeper of cfg on clk that records the events it raises.
func budgetKeeper(cfg *policies.Config, clk func() time.Time, events *[]notify.Event, mu *sync.Mutex) *Keeper {
	return New(cfg, Options{Now: clk, Config: func() *policies.Config { return cfg },
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokens"}, []string{"model", "served_by", "type"}),
		Cost:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cost"}, []string{"model", "served_by"}),
		OnEvent: func(ev notify.Event) {
			mu.Lock()
			*events = append(*events, ev)
			mu.Unlock()
		}})
}

func TestKeeperRejectsOnceSpentAndKeepsTheSpendAcrossARestart(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	dir := t.TempDir()
	cfg := budgetConfig(dir)
	clk := testutil.NewClock(time.Date(2030, 1, 2, 10, 0, 30, 0, time.UTC))
	var mu sync.Mutex
	var events []notify.Event
	k := budgetKeeper(cfg, clk.Now, &events, &mu)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()

	// Given answers that spend the budget's 100 tokens
	if a := k.Admit("m"); a.Reject {
		t.Fatalf("before any spend: %+v, want admitted", a)
	}
	k.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: 60, Output: 25})
	k.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: 10, Output: 10})

	// Then the next request is rejected until the window resets, and the
	// warning and the exceeded event name the agent, the budget and the model
	a := k.Admit("m")
	if !a.Reject || a.RetryAfter != 30*time.Second {
		t.Errorf("once spent: %+v, want rejected for the 30s left of the window", a)
	}
	mu.Lock()
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
		if ev.Agent != "writer" || ev.AgentID != "writer-1" || ev.Budget != "loop" || ev.Model != "m" || ev.Time.IsZero() {
			t.Errorf("event %+v, want writer-1's budget loop for model m, timed", ev)
		}
	}
	mu.Unlock()
	if len(types) != 2 || types[0] != budget.EventWarning || types[1] != budget.EventExceeded {
		t.Errorf("events %v, want %s then %s", types, budget.EventWarning, budget.EventExceeded)
	}
	if b := k.Budgets(); len(b) != 1 || b[0].Spent.Tokens != 105 || b[0].State != budget.StateExceeded {
		t.Errorf("budgets %+v, want loop exceeded with 105 tokens spent", b)
	}

	// When the keeper stops, the state file has the spend, and a new keeper
	// on the same state_dir starts from it
	cancel()
	<-done
	if _, err := os.Stat(filepath.Join(dir, budget.FileName)); err != nil {
		t.Fatalf("state file after shutdown: %v", err)
	}
	again := budgetKeeper(cfg, clk.Now, &events, &mu)
	if b := again.Budgets(); len(b) != 1 || b[0].Spent.Tokens != 105 {
		t.Errorf("after a restart: %+v, want 105 tokens spent", b)
	}
	if a := again.Admit("m"); !a.Reject {
		t.Errorf("after a restart: %+v, want still rejected", a)
	}
}

func TestKeeperWithoutBudgets(t *testing.T) {
	cfg := &policies.Config{Models: map[string]policies.Model{"m": {Label: "m"}}}
	var mu sync.Mutex
	var events []notify.Event
	k := budgetKeeper(cfg, time.Now, &events, &mu)
	k.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})
	if a := k.Admit("m"); a != (gateway.Admission{}) {
		t.Errorf("admission %+v, want none", a)
	}
	if b := k.Budgets(); b != nil {
		t.Errorf("budgets %+v, want nil: status shows none", b)
	}
	if len(events) != 0 {
		t.Errorf("events %+v, want none", events)
	}
}
