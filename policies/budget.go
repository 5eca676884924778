package policies

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Actions of a budget once spent.
const (
	BudgetReject  = "reject"  // answer 429 until the window resets
	BudgetDegrade = "degrade" // send every request to DegradeTo's chain
)

// Scopes of a budget: whose spend it counts.
const (
	BudgetScopeAgent   = "agent"   // this sidecar's agent only
	BudgetScopeService = "service" // every sidecar whose agent.name is the same, summed in Consul KV
)

// Budget defaults, as documented on Budget.
const (
	defaultBudgetWindow = "24h"
	defaultBudgetAction = BudgetReject
	defaultBudgetWarnAt = 80
	minBudgetWindow     = time.Second
	day                 = 24 * time.Hour
	defaultBudgetScope  = BudgetScopeAgent
	defaultSyncEvery    = "5s"
	minSyncEvery        = time.Second
)

// Budget is a limit on what the agent spends on models over a window. The
// windows are aligned: a window that divides a day evenly starts at 00:00
// UTC and every multiple of itself after; a window of several days starts
// at a multiple of itself since the Unix epoch.
type Budget struct {
	Name   string
	Window time.Duration // Default 24h; at least 1s, dividing 24h evenly or a multiple of 24h.
	// CostUSD is the money limit in US dollars (models without a price
	// cost nothing); 0 for none.
	CostUSD float64
	// Tokens is the token limit (input, output, cached input and cache
	// writes together); 0 for none. At least one of the two is set.
	Tokens int64
	Action string // BudgetReject (default) or BudgetDegrade.
	// DegradeTo is the model label whose chain every request takes once
	// the budget is spent; set with BudgetDegrade only.
	DegradeTo string
	WarnAt    int      // percent of the limit that raises budget.warning; default 80, 0 for none.
	Models    []string // the requested model labels that count; empty for all.
	// Scope is BudgetScopeAgent (default): the spend of this sidecar's
	// agent; or BudgetScopeService: the spend of every sidecar of the
	// same agent.name, kept in Consul KV under consul.fleet_prefix.
	Scope string
	// SyncEvery is how often a service budget adds this sidecar's spend
	// to the total in Consul KV and reads the others'; default 5s, at
	// least 1s; 0 for an agent budget.
	SyncEvery time.Duration
}

// Shared reports whether the budget is shared by the service's sidecars.
func (b Budget) Shared() bool { return b.Scope == BudgetScopeService }

// Counts reports whether a request for the model label counts against the
// budget (and is limited by it).
func (b Budget) Counts(model string) bool {
	return len(b.Models) == 0 || slices.Contains(b.Models, model)
}

// budgetDefaults fills the unset values of a budget block.
func budgetDefaults(b *budgetFile) {
	setDefault(&b.Window, defaultBudgetWindow)
	setDefault(&b.Action, defaultBudgetAction)
	setDefault(&b.WarnAt, defaultBudgetWarnAt)
	setDefault(&b.Scope, defaultBudgetScope)
	if deref(b.Scope) == BudgetScopeService {
		setDefault(&b.SyncEvery, defaultSyncEvery)
	}
}

// StatePath is the directory of the state kept across restarts: StateDir,
// or when unset "$XDG_STATE_HOME/agent-sidecar/<id>", else
// "~/.local/state/agent-sidecar/<id>", else "<temp dir>/agent-sidecar-<id>"
// when HOME is unset. It is resolved when used, so that loading a
// configuration never depends on the environment of the machine.
func (a Agent) StatePath() string {
	if a.StateDir != "" {
		return a.StateDir
	}
	return defaultStateDir(a.ID, os.Getenv)
}

// defaultStateDir is agent.state_dir when unset, for the agent id:
// $XDG_STATE_HOME/agent-sidecar/<id>, else ~/.local/state/agent-sidecar/<id>,
// else a directory under the system's temporary directory.
func defaultStateDir(id string, getenv func(string) string) string {
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "agent-sidecar", id)
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "agent-sidecar", id)
	}
	return filepath.Join(os.TempDir(), "agent-sidecar-"+id)
}

// budget checks one budget block, with defaults applied.
func (v *validator) budget(name string, b *budgetFile, fc *fileConfig) {
	key := "budget." + name
	if d, ok := v.duration(key+".window", b.Window, false); ok {
		if d < minBudgetWindow || (day%d != 0 && d%day != 0) {
			v.errorf(key+".window", `must be at least 1s and divide 24h evenly ("10s", "1h", "24h") or be a whole number `+
				`of days ("168h"), so that windows start at fixed times; got %q`, *b.Window)
		}
	}
	if b.CostUSD == nil && b.Tokens == nil {
		v.required(key+".cost_usd", "a limit: cost_usd (US dollars) or tokens, or both, e.g. cost_usd = 20")
	}
	if b.CostUSD != nil && *b.CostUSD <= 0 {
		v.errorf(key+".cost_usd", "must be greater than 0 (US dollars), got %s", strconv.FormatFloat(*b.CostUSD, 'g', -1, 64))
	}
	if b.Tokens != nil && *b.Tokens <= 0 {
		v.errorf(key+".tokens", "must be greater than 0, got %d", *b.Tokens)
	}
	if b.WarnAt != nil && (*b.WarnAt < 0 || *b.WarnAt > 100) {
		v.errorf(key+".warn_at", "must be a percentage from 0 (no warning) to 100, got %d", *b.WarnAt)
	}
	v.budgetScope(key, b, fc)
	labels := sortedKeys(fc.Model)
	switch action := deref(b.Action); action {
	case BudgetReject:
		if b.DegradeTo != nil {
			v.errorf(key+".degrade_to", `is used only with action = "degrade": remove it, or set action = "degrade"`)
		}
	case BudgetDegrade:
		switch {
		case b.DegradeTo == nil:
			v.required(key+".degrade_to", `the model label every request goes to once the budget is spent, e.g. degrade_to = "gpt-4o-mini"`)
		case fc.Model[*b.DegradeTo] == nil:
			v.errorf(key+".degrade_to", "no model block labelled %q; defined: %s%s", *b.DegradeTo,
				listOrNone(labels), didYouMean(*b.DegradeTo, labels))
		}
	default:
		v.errorf(key+".action", `must be "reject" or "degrade", got %q%s`, action,
			didYouMean(action, []string{BudgetReject, BudgetDegrade}))
	}
	for i, m := range b.Models {
		switch {
		case fc.Model[m] == nil:
			v.errorf(key+".models", "element %d: no model block labelled %q; defined: %s%s", i+1, m,
				listOrNone(labels), didYouMean(m, labels))
		case slices.Contains(b.Models[:i], m):
			v.errorf(key+".models", "%q is listed twice: remove one", m)
		}
	}
}

// budgetScope checks a budget's scope and sync_every: a service budget
// lives in Consul KV under consul.fleet_prefix, so it needs one.
func (v *validator) budgetScope(key string, b *budgetFile, fc *fileConfig) {
	switch scope := deref(b.Scope); scope {
	case BudgetScopeAgent:
		if b.SyncEvery != nil {
			v.errorf(key+".sync_every", `is used only with scope = "service": remove it, or set scope = "service"`)
		}
	case BudgetScopeService:
		var prefix *string
		if fc.Consul != nil {
			prefix = fc.Consul.FleetPrefix
		}
		if fleetPrefix(prefix) == "" {
			v.errorf(key+".scope", `"service" keeps the service's spend in Consul KV under consul.fleet_prefix, which is "": `+
				`set consul.fleet_prefix (default %q), or use scope = "agent"`, DefaultFleetPrefix)
		}
		if d, ok := v.duration(key+".sync_every", b.SyncEvery, false); ok && d < minSyncEvery {
			v.errorf(key+".sync_every", `must be at least 1s, so that the sidecars do not write Consul KV more often; got %q`, *b.SyncEvery)
		}
	default:
		v.errorf(key+".scope", `must be "agent" or "service", got %q%s`, scope,
			didYouMean(scope, []string{BudgetScopeAgent, BudgetScopeService}))
	}
}

// listOrNone joins names for a message, or says there are none.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// resolveBudget returns the runtime budget of a validated block.
func resolveBudget(name string, b *budgetFile) Budget {
	return Budget{
		Name:      name,
		Window:    duration(b.Window),
		CostUSD:   deref(b.CostUSD),
		Tokens:    int64(deref(b.Tokens)),
		Action:    deref(b.Action),
		DegradeTo: deref(b.DegradeTo),
		WarnAt:    deref(b.WarnAt),
		Models:    b.Models,
		Scope:     deref(b.Scope),
		SyncEvery: duration(b.SyncEvery),
	}
}

// budgetSummary is the budgets as status shows them.
func budgetSummary(budgets map[string]Budget) map[string]any {
	out := make(map[string]any, len(budgets))
	for name, b := range budgets {
		out[name] = map[string]any{
			"window":     b.Window.String(),
			"cost_usd":   b.CostUSD,
			"tokens":     b.Tokens,
			"action":     b.Action,
			"degrade_to": b.DegradeTo,
			"warn_at":    b.WarnAt,
			"models":     nonNil(b.Models),
			"scope":      b.Scope,
		}
		if b.Shared() {
			out[name].(map[string]any)["sync_every"] = b.SyncEvery.String()
		}
	}
	return out
}

// budgetWarnings lists, for each budget with a cost_usd limit, the models
// whose answers count against it but have no price: they cost nothing
// against cost_usd, so an agent running away on one of them is never
// stopped by it (only by tokens, when the budget has that limit too).
func (c *Config) budgetWarnings() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(c.Budgets)) {
		b := c.Budgets[name]
		if b.CostUSD <= 0 {
			continue
		}
		for _, label := range c.budgetServers(b) {
			if c.Models[label].Price != nil {
				continue
			}
			if b.Tokens > 0 {
				out = append(out, fmt.Sprintf("budget %q limits cost_usd but model %q has no price: its answers cost "+
					"nothing against cost_usd (only against tokens); give %q a price block", name, label, label))
				continue
			}
			out = append(out, fmt.Sprintf("budget %q limits cost_usd but model %q has no price: its answers cost "+
				"nothing against it; give %q a price block or limit tokens", name, label, label))
		}
	}
	return out
}

// budgetServers returns, sorted, the labels of the models that may serve
// a request the budget counts: the models it counts (all without a list),
// its degrade_to model, and every fallback and context_fallback reachable
// from them, since an answer's cost is that of the model that served it.
func (c *Config) budgetServers(b Budget) []string {
	seen := map[string]bool{}
	var queue []string
	add := func(label string) {
		if _, ok := c.Models[label]; ok && !seen[label] {
			seen[label] = true
			queue = append(queue, label)
		}
	}
	if len(b.Models) == 0 {
		for label := range c.Models {
			add(label)
		}
	}
	for _, label := range b.Models {
		add(label)
	}
	add(b.DegradeTo)
	for len(queue) > 0 {
		m := c.Models[queue[0]]
		queue = queue[1:]
		add(m.Fallback)
		add(m.ContextFallback)
	}
	return slices.Sorted(maps.Keys(seen))
}
