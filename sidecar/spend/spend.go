// Package spend keeps the account of the models' answers: the tokens and
// cost of each (Prometheus counters and today's totals) and the budgets
// they count against, with the budgets' state file and the service
// budgets' totals in Consul KV. The sidecar hands it its collaborators
// and callbacks in Options; it holds no pointer back to the sidecar.
package spend

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/report"
)

// Options are the collaborators of a Keeper.
type Options struct {
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Config is the configuration in force: the models' prices at the
	// time of an answer, and the agent whose events these are.
	Config func() *policies.Config
	// Tokens (model, served_by, type) and Cost (model, served_by) count
	// every answer's tokens and cost in US dollars.
	Tokens, Cost *prometheus.CounterVec
	// Log is the logger; the keeper logs as "budget". Default: none.
	Log hclog.Logger
	// OnEvent receives each budget threshold crossed (budget.warning,
	// budget.exceeded, ...), with the agent filled in, to publish and
	// send to the notify targets. Default: none.
	OnEvent func(notify.Event)
}

// Keeper counts the usage of each answer, and keeps the budgets that
// usage counts against. It is safe for concurrent use.
type Keeper struct {
	opts    Options
	log     hclog.Logger
	usage   *accountant
	budgets *budgetFile
	ledger  *budget.Ledger
	// totals keeps the service budgets' totals under prefix
	// (consul.fleet_prefix); nil without Consul, and then service budgets
	// count this sidecar's spend only. Set before Run.
	totals budget.KV
	prefix string
	// syncErr is, by budget, the kind of the last failed sync ("" once
	// one succeeds), so each kind of failure is warned about once; used by
	// the goroutine of syncShared only.
	syncErr map[string]string
}

// New returns the keeper of cfg's budgets, with the spend of the current
// windows read from the state file in agent.state_dir. A file that cannot
// be read is warned about and ignored: the budgets then start from nothing.
func New(cfg *policies.Config, opts Options) *Keeper {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.OnEvent == nil {
		opts.OnEvent = func(notify.Event) {}
	}
	k := &Keeper{opts: opts, log: opts.Log.Named("budget"), ledger: budget.New(cfg.Budgets),
		usage: &accountant{now: opts.Now, tokens: opts.Tokens, cost: opts.Cost, models: map[string]*ModelUsage{}}}
	k.budgets = openBudgetFile(k.ledger, cfg, opts.Now(), k.log)
	return k
}

// ShareTotals keeps the service budgets' totals in kv under fleetPrefix.
// Call it before Run; without it, service budgets count this sidecar's
// spend only.
func (k *Keeper) ShareTotals(kv budget.KV, fleetPrefix string) {
	k.totals, k.prefix = kv, fleetPrefix
}

// Run writes the budgets' state file when spend changed, and syncs the
// service budgets with their totals in Consul KV, until ctx is done; then
// it writes the file and syncs once more, and returns.
func (k *Keeper) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); k.syncShared(ctx) }()
	k.budgets.run(ctx)
	<-done
}

// SetBudgets applies the budgets of a reloaded configuration.
func (k *Keeper) SetBudgets(budgets map[string]policies.Budget) { k.ledger.SetBudgets(budgets) }

// Record is gateway.Options.OnUsage: the answer's tokens and cost are
// counted, then count against the budgets; the thresholds crossed go to
// OnEvent.
func (k *Keeper) Record(u gateway.Usage) {
	u.Input, u.Output, u.CachedInput, u.CacheWrite = max(u.Input, 0), max(u.Output, 0), max(u.CachedInput, 0), max(u.CacheWrite, 0)
	var price *policies.Price
	if m, ok := k.opts.Config().Models[u.ServedBy]; ok {
		price = m.Price
	}
	usd := k.usage.record(u, price)
	if k.ledger.Empty() {
		return
	}
	now := k.opts.Now()
	transitions := k.ledger.Record(now, u.Model, u.Input+u.Output+u.CachedInput+u.CacheWrite, usd)
	k.budgets.markDirty()
	k.publish(now, u.Model, transitions)
}

// publish sends the budget transitions to OnEvent; model is the requested
// model whose answer caused them, "" for a sync of a service budget.
func (k *Keeper) publish(now time.Time, model string, transitions []budget.Transition) {
	// The webhook's receiver learns whose budget it is from the event, as
	// it does for the other events.
	agent := k.opts.Config().Agent
	for _, tr := range transitions {
		k.opts.OnEvent(notify.Event{Type: tr.Type, Agent: agent.Name, AgentID: agent.ID, Budget: tr.Budget, Model: model,
			Time: now.UTC(), Text: tr.Text})
	}
}

// Admit is gateway.Options.Admit: what the budgets say of a request for
// the model label.
func (k *Keeper) Admit(model string) gateway.Admission {
	if k.ledger.Empty() {
		return gateway.Admission{}
	}
	return k.ledger.Admit(k.opts.Now(), model)
}

// Budgets is the budgets for status and metrics; nil without budgets, so
// that status shows none.
func (k *Keeper) Budgets() []budget.Status {
	if k.ledger.Empty() {
		return nil
	}
	return k.ledger.Statuses(k.opts.Now())
}

// Today is the usage of the current UTC day, for status; nil when nothing
// has been counted today.
func (k *Keeper) Today() *UsageToday { return k.usage.today() }

// Spend is today's spend for the fleet report; nil when nothing has been
// counted today.
func (k *Keeper) Spend() *report.Spend {
	t := k.usage.today()
	if t == nil {
		return nil
	}
	s := &report.Spend{Day: t.Day, CostUSD: t.TotalCostUSD}
	for _, m := range t.Models {
		s.Tokens += m.Tokens()
	}
	return s
}
