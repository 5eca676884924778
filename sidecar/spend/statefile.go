package spend

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
)

// saveInterval is how often, at most, the budgets' spend is written to the
// state file (and once more at shutdown).
const saveInterval = 2 * time.Second

// budgetFile is the budgets' state file: read at start, and written, from
// one goroutine, when spend changed.
type budgetFile struct {
	ledger *budget.Ledger
	path   string // the state file; its directory is agent.state_dir
	log    hclog.Logger

	// dirty is set by every answer that counted against a budget, so it
	// is never held across the write of the file.
	dirty   atomic.Bool
	failing bool // the last write failed (logged once until one succeeds); used by save only
}

// openBudgetFile restores the spend of the current windows into ledger
// from the state file of cfg. A file that cannot be read is warned about
// and ignored: the budgets then start from nothing.
func openBudgetFile(ledger *budget.Ledger, cfg *policies.Config, now time.Time, log hclog.Logger) *budgetFile {
	f := &budgetFile{ledger: ledger, log: log, path: filepath.Join(cfg.Agent.StatePath(), budget.FileName)}
	if len(cfg.Budgets) == 0 {
		return f
	}
	st, err := budget.ReadState(f.path)
	if err != nil {
		f.log.Warn("budget state file ignored: the budgets start from nothing this window; it is rewritten at the next spend",
			"path", f.path, "error", err)
		return f
	}
	if restored := ledger.Restore(st, now); len(restored) > 0 {
		f.log.Info("budget spend restored from the state file", "path", f.path, "budgets", restored)
	}
	return f
}

// markDirty notes that spend changed since the last write.
func (f *budgetFile) markDirty() { f.dirty.Store(true) }

// save writes the state file when spend changed since the last write.
// Called from the goroutine of run only. Spend recorded while the file
// is written marks it dirty again, for the next save.
func (f *budgetFile) save() {
	if !f.dirty.Swap(false) {
		return
	}
	if err := budget.WriteState(f.path, f.ledger.Snapshot()); err != nil {
		f.dirty.Store(true)
		if !f.failing {
			f.log.Error("cannot write the budget state file: spend would be lost at a restart; check agent.state_dir",
				"path", f.path, "error", err)
		}
		f.failing = true
		return
	}
	f.failing = false
}

// run writes the state file every saveInterval when spend changed, until
// ctx is done, and once more then.
func (f *budgetFile) run(ctx context.Context) {
	t := time.NewTicker(saveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.save()
			return
		case <-t.C:
			f.save()
		}
	}
}
