package sidecar

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// budgetSaveInterval is how often, at most, the budgets' spend is written
// to the state file (and once more at shutdown).
const budgetSaveInterval = 2 * time.Second

// budgetKeeper holds the budget ledger and its state file: it loads the
// file at start, and writes it, from one goroutine, when spend changed.
type budgetKeeper struct {
	ledger *budget.Ledger
	path   string // the state file; its directory is agent.state_dir
	log    hclog.Logger

	mu      sync.Mutex
	dirty   bool
	failing bool // the last write failed (logged once until one succeeds)

	// totals keeps the service budgets' totals under prefix
	// (consul.fleet_prefix); nil without Consul, and then service
	// budgets count this sidecar's spend only.
	totals budget.KV
	prefix string
	// syncErr is, by budget, the kind of the last failed sync ("" once
	// one succeeds), so each kind of failure is warned about once.
	syncErr map[string]string
}

// newBudgetKeeper returns the budgets of cfg, with the spend of the current
// windows read from the state file. A file that cannot be read is warned
// about and ignored: the budgets then start from nothing.
func newBudgetKeeper(cfg *policies.Config, now time.Time, log hclog.Logger) *budgetKeeper {
	k := &budgetKeeper{ledger: budget.New(cfg.Budgets), log: log.Named("budget"),
		path: filepath.Join(cfg.Agent.StatePath(), budget.FileName)}
	if len(cfg.Budgets) == 0 {
		return k
	}
	st, err := budget.ReadState(k.path)
	if err != nil {
		k.log.Warn("budget state file ignored: the budgets start from nothing this window; it is rewritten at the next spend",
			"path", k.path, "error", err)
		return k
	}
	if restored := k.ledger.Restore(st, now); len(restored) > 0 {
		k.log.Info("budget spend restored from the state file", "path", k.path, "budgets", restored)
	}
	return k
}

// markDirty notes that spend changed since the last write.
func (k *budgetKeeper) markDirty() {
	k.mu.Lock()
	k.dirty = true
	k.mu.Unlock()
}

// save writes the state file when spend changed since the last write.
func (k *budgetKeeper) save() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.dirty {
		return
	}
	if err := budget.WriteState(k.path, k.ledger.Snapshot()); err != nil {
		if !k.failing {
			k.log.Error("cannot write the budget state file: spend would be lost at a restart; check agent.state_dir",
				"path", k.path, "error", err)
		}
		k.failing = true
		return
	}
	k.dirty, k.failing = false, false
}

// run writes the state file every budgetSaveInterval when spend changed,
// until ctx is done, and once more then.
func (k *budgetKeeper) run(ctx context.Context) {
	t := time.NewTicker(budgetSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			k.save()
			return
		case <-t.C:
			k.save()
		}
	}
}

// recordUsage is gateway.Options.OnUsage: the accountant counts the
// answer, then its tokens and cost count against the budgets, and the
// thresholds crossed are published and sent to the notify targets.
func (s *Sidecar) recordUsage(u gateway.Usage) {
	usd := s.usage.record(u)
	if s.budgets.ledger.Empty() {
		return
	}
	tokens := max(u.Input, 0) + max(u.Output, 0) + max(u.CachedInput, 0) + max(u.CacheWrite, 0)
	now := s.now()
	transitions := s.budgets.ledger.Record(now, u.Model, tokens, usd)
	s.budgets.markDirty()
	s.publishBudget(now, u.Model, transitions)
}

// publishBudget publishes the budget transitions and sends them to the
// notify targets; model is the requested model whose answer caused them,
// "" for a sync of a service budget.
func (s *Sidecar) publishBudget(now time.Time, model string, transitions []budget.Transition) {
	// The webhook's receiver learns whose budget it is from the event, as
	// it does for the other events (publish fills these for the stream only).
	agent := s.Config().Agent
	for _, tr := range transitions {
		ev := notify.Event{Type: tr.Type, Agent: agent.Name, AgentID: agent.ID, Budget: tr.Budget, Model: model,
			Time: now.UTC(), Text: tr.Text}
		s.publish(ev)
		s.notifier.Send(ev)
	}
}

// admit is gateway.Options.Admit: what the budgets say of a request for
// the model label.
func (s *Sidecar) admit(model string) gateway.Admission {
	if s.budgets.ledger.Empty() {
		return gateway.Admission{}
	}
	return s.budgets.ledger.Admit(s.now(), model)
}

// budgetStatuses is the budgets for status; nil without budgets, so that
// status shows none.
func (s *Sidecar) budgetStatuses() []budget.Status {
	if s.budgets.ledger.Empty() {
		return nil
	}
	return s.budgets.ledger.Statuses(s.now())
}
