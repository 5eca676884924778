package policies

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	cfg := loadText(t, `agent {
  name      = "writer"
  state_dir = "/var/lib/agent-sidecar/writer"
}
model "gpt-4o" { provider = "openai" }
model "gpt-4o-mini" { provider = "openai" }
budget "daily" {
  cost_usd = 20
}
budget "hourly-tokens" {
  window     = "1h"
  tokens     = 5000000
  action     = "degrade"
  degrade_to = "gpt-4o-mini"
  warn_at    = 0
  models     = ["gpt-4o"]
}
budget "weekly" {
  window   = "168h"
  cost_usd = 100
  tokens   = 90000000
  warn_at  = 90
}
budget "fleet" {
  tokens = 1000000
  scope  = "service"
}
budget "fleet-slow" {
  tokens     = 1000000
  scope      = "service"
  sync_every = "30s"
}
`)
	want := map[string]Budget{
		"daily": {Name: "daily", Window: 24 * time.Hour, CostUSD: 20, Action: BudgetReject, WarnAt: 80, Scope: "agent"},
		"hourly-tokens": {Name: "hourly-tokens", Window: time.Hour, Tokens: 5000000, Action: BudgetDegrade,
			DegradeTo: "gpt-4o-mini", WarnAt: 0, Models: []string{"gpt-4o"}, Scope: "agent"},
		"weekly": {Name: "weekly", Window: 168 * time.Hour, CostUSD: 100, Tokens: 90000000, Action: BudgetReject, WarnAt: 90,
			Scope: "agent"},
		"fleet": {Name: "fleet", Window: 24 * time.Hour, Tokens: 1000000, Action: BudgetReject, WarnAt: 80,
			Scope: "service", SyncEvery: 5 * time.Second},
		"fleet-slow": {Name: "fleet-slow", Window: 24 * time.Hour, Tokens: 1000000, Action: BudgetReject, WarnAt: 80,
			Scope: "service", SyncEvery: 30 * time.Second},
	}
	if !reflect.DeepEqual(cfg.Budgets, want) {
		t.Errorf("budgets\ngot  %+v\nwant %+v", cfg.Budgets, want)
	}
	if got := cfg.Agent.StatePath(); got != "/var/lib/agent-sidecar/writer" {
		t.Errorf("state path = %q, want the state_dir written", got)
	}
	summary := cfg.Summary()
	got := summary["budgets"].(map[string]any)["hourly-tokens"]
	wantSummary := map[string]any{"window": "1h0m0s", "cost_usd": 0.0, "tokens": int64(5000000), "action": "degrade",
		"degrade_to": "gpt-4o-mini", "warn_at": 0, "models": []string{"gpt-4o"}, "scope": "agent"}
	if !reflect.DeepEqual(got, wantSummary) {
		t.Errorf("summary = %v, want %v", got, wantSummary)
	}
	if d := summary["agent"].(map[string]any)["state_dir"]; d != "/var/lib/agent-sidecar/writer" {
		t.Errorf("summary state_dir = %v, want the state_dir written", d)
	}
}

func TestNoBudgetLeavesSummaryAlone(t *testing.T) {
	cfg := loadText(t, `agent { name = "writer" }`)
	if cfg.Budgets != nil {
		t.Errorf("budgets = %v, want nil", cfg.Budgets)
	}
	s := cfg.Summary()
	if _, ok := s["budgets"]; ok {
		t.Error("summary has budgets without a budget block")
	}
	if _, ok := s["agent"].(map[string]any)["state_dir"]; ok {
		t.Error("summary has agent.state_dir without a budget block")
	}
}

func TestStatePathDefault(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"XDG_STATE_HOME", map[string]string{"XDG_STATE_HOME": "/xdg", "HOME": "/home/a"}, "/xdg/agent-sidecar/w-1"},
		{"relative XDG_STATE_HOME is ignored", map[string]string{"XDG_STATE_HOME": "xdg", "HOME": "/home/a"},
			"/home/a/.local/state/agent-sidecar/w-1"},
		{"HOME", map[string]string{"HOME": "/home/a"}, "/home/a/.local/state/agent-sidecar/w-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultStateDir("w-1", func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := defaultStateDir("w-1", func(string) string { return "" }); got == "" {
		t.Error("no HOME: got an empty directory, want one under the temporary directory")
	}
}

func TestBudgetErrors(t *testing.T) {
	const path = "testdata/invalid/budget.hcl"
	want := Diagnostics{
		{Line: 5, Column: 3, Key: "budget.odd-window.window", Message: `must be at least 1s and divide 24h evenly ("10s", "1h", "24h") ` +
			`or be a whole number of days ("168h"), so that windows start at fixed times; got "7m"`},
		{Line: 8, Column: 1, Key: "budget.no-limit.cost_usd", Message: "required: a limit: cost_usd (US dollars) or tokens, or both, e.g. cost_usd = 20"},
		{Line: 11, Column: 1, Key: "budget.degrade-nowhere.degrade_to",
			Message: `required: the model label every request goes to once the budget is spent, e.g. degrade_to = "gpt-4o-mini"`},
		{Line: 16, Column: 3, Key: "budget.bad-values.cost_usd", Message: "must be greater than 0 (US dollars), got -1"},
		{Line: 17, Column: 3, Key: "budget.bad-values.tokens", Message: "must be greater than 0, got 0"},
		{Line: 18, Column: 3, Key: "budget.bad-values.action", Message: `must be "reject" or "degrade", got "block"`},
		{Line: 19, Column: 3, Key: "budget.bad-values.warn_at", Message: "must be a percentage from 0 (no warning) to 100, got 120"},
		{Line: 20, Column: 3, Key: "budget.bad-values.models", Message: `element 2: no model block labelled "gpt-4"; defined: gpt-4o, gpt-4o-mini; did you mean "gpt-4o"?`},
		{Line: 20, Column: 3, Key: "budget.bad-values.models", Message: `"gpt-4o" is listed twice: remove one`},
		{Line: 24, Column: 3, Key: "budget.stray-degrade.degrade_to", Message: `is used only with action = "degrade": remove it, or set action = "degrade"`},
		{Line: 29, Column: 3, Key: "budget.unknown-target.degrade_to",
			Message: `no model block labelled "gpt-40-mini"; defined: gpt-4o, gpt-4o-mini; did you mean "gpt-4o-mini"?`},
	}
	got := loadDiagnostics(t, path)
	for i := range want {
		want[i].File = path
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSharedBudgetErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       Diagnostics
	}{
		{"unknown scope", `budget "b" {
  tokens = 10
  scope  = "servce"
}`, Diagnostics{{Line: 3, Column: 3, Key: "budget.b.scope", Message: `must be "agent" or "service", got "servce"; did you mean "service"?`}}},
		{"sync_every of an agent budget", `budget "b" {
  tokens     = 10
  sync_every = "2s"
}`, Diagnostics{{Line: 3, Column: 3, Key: "budget.b.sync_every",
			Message: `is used only with scope = "service": remove it, or set scope = "service"`}}},
		{"sync_every too short", `budget "b" {
  tokens     = 10
  scope      = "service"
  sync_every = "500ms"
}`, Diagnostics{{Line: 4, Column: 3, Key: "budget.b.sync_every",
			Message: `must be at least 1s, so that the sidecars do not write Consul KV more often; got "500ms"`}}},
		{"no fleet prefix", `consul { fleet_prefix = "" }
budget "b" {
  tokens = 10
  scope  = "service"
}`, Diagnostics{{Line: 4, Column: 3, Key: "budget.b.scope",
			Message: `"service" keeps the service's spend in Consul KV under consul.fleet_prefix, which is "": ` +
				`set consul.fleet_prefix (default "sidecar/fleet/"), or use scope = "agent"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sidecar.hcl")
			if err := os.WriteFile(path, []byte("agent { name = \"writer\" }\n"+tt.text+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			got := loadDiagnostics(t, path)
			for i := range tt.want {
				tt.want[i].File = path
				tt.want[i].Line++ // the agent block's line
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestBudgetWindow(t *testing.T) {
	tests := []struct {
		window string
		want   time.Duration // 0: refused
	}{
		{"1s", time.Second},
		{"5s", 5 * time.Second},
		{"10s", 10 * time.Second},
		{"1m", time.Minute},
		{"168h", 168 * time.Hour},
		{"500ms", 0},
		{"7s", 0},
		{"7m", 0},
		{"36h", 0},
	}
	for _, tt := range tests {
		t.Run(tt.window, func(t *testing.T) {
			clearConsulEnv(t)
			f := filepath.Join(t.TempDir(), "sidecar.hcl")
			text := `agent { name = "writer" }
model "gpt-4o" { provider = "openai" }
budget "b" {
  window = "` + tt.window + `"
  tokens = 10
}
`
			if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(f)
			if tt.want == 0 {
				if err == nil || !strings.Contains(err.Error(), "must be at least 1s and divide 24h evenly") {
					t.Errorf("got error %v, want the window refused", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := cfg.Budgets["b"].Window; got != tt.want {
				t.Errorf("window = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBudgetWarnsOfModelsWithoutPrice(t *testing.T) {
	const models = `agent { name = "writer" }
model "gpt-4o" {
  provider = "openai"
  fallback = "local"
  price {
    input  = 2.5
    output = 10
  }
}
model "gpt-4o-mini" {
  provider = "openai"
  price {
    input  = 0.15
    output = 0.6
  }
}
model "local" { provider = "openai" }
model "cheap" { provider = "openai" }
`
	tests := []struct {
		name   string
		budget string
		want   []string
	}{
		{"tokens only", `budget "daily" { tokens = 1000 }`, nil},
		{"every model", `budget "daily" { cost_usd = 20 }`, []string{
			`budget "daily" limits cost_usd but model "cheap" has no price: its answers cost nothing against it; give "cheap" a price block or limit tokens`,
			`budget "daily" limits cost_usd but model "local" has no price: its answers cost nothing against it; give "local" a price block or limit tokens`,
		}},
		{"the fallback of a model counted", `budget "daily" {
  cost_usd = 20
  models   = ["gpt-4o"]
}`, []string{
			`budget "daily" limits cost_usd but model "local" has no price: its answers cost nothing against it; give "local" a price block or limit tokens`,
		}},
		{"the degrade_to model", `budget "daily" {
  cost_usd   = 20
  tokens     = 100000
  models     = ["gpt-4o-mini"]
  action     = "degrade"
  degrade_to = "cheap"
}`, []string{
			`budget "daily" limits cost_usd but model "cheap" has no price: its answers cost nothing against cost_usd (only against tokens); give "cheap" a price block`,
		}},
		{"every model priced", `budget "daily" {
  cost_usd = 20
  models   = ["gpt-4o-mini"]
}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadText(t, models+tt.budget+"\n").Warnings()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
