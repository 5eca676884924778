package main

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/sidecar"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/report"
	"github.com/agent-sidecar/sidecar/sidecar/spend"
)

func TestAmountsForPeople(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{usd(0), "$0.00"},
		{usd(0.0042), "$0.0042"},
		{usd(0.01), "$0.01"},
		{usd(12.345), "$12.35"},
		{tokenCount(950), "950"},
		{tokenCount(12_345), "12.3k"},
		{tokenCount(200_000), "200k"},
		{tokenCount(999_999), "1M"},
		{tokenCount(4_200_000), "4.2M"},
		{tokenCount(1_100_000_000), "1.1B"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestStatusPrintsTodaysUsage(t *testing.T) {
	st := sidecar.Status{Usage: &spend.UsageToday{Day: "2026-12-02", TotalCostUSD: 4.5, Models: map[string]spend.ModelUsage{
		"gpt-4o":      {Answers: 3, Input: 1_000_000, CachedInput: 200_000, Output: 100_000, CostUSD: 3.75, Priced: true},
		"gpt-4o-mini": {Answers: 1, Input: 1_000_000, Output: 1_000_000, CostUSD: 0.75, Priced: true},
		"llama":       {Answers: 2, Input: 10, Output: 20},
	}}}
	var out strings.Builder
	printUsage(&out, st.Usage, palette{})
	want := `usage      today (2026-12-02 UTC): $4.50 (models without a price not counted), 3.3M tokens
           gpt-4o: $3.75; 1M in, 200k cached, 100k out tokens in 3 answers
           gpt-4o-mini: $0.75; 1M in, 1M out tokens in 1 answer
           llama: no price; 10 in, 20 out tokens in 2 answers
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	printUsage(&out, nil, palette{})
	if out.String() != "" {
		t.Errorf("without usage today: %q, want nothing", out.String())
	}
}

func TestFleetShowsSpendToday(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	entry := func(id string) discovery.ServiceEntry {
		return discovery.ServiceEntry{ID: id, Name: "writer", Node: "n1",
			Checks: []discovery.CheckInfo{{Name: "heartbeat", Status: discovery.Passing}, {Name: "sidecar", Status: discovery.Passing}}}
	}
	spend := func(day string, usd float64, tokens int64) *report.Report {
		return &report.Report{Agent: "writer", ID: "x", Updated: now, SpendToday: &report.Spend{Day: day, CostUSD: usd, Tokens: tokens}}
	}
	list := []FleetInstance{
		fleetInstance(entry("writer-1"), spend("2026-12-02", 12.345, 4_200_000), now),
		fleetInstance(entry("writer-2"), spend("2026-12-01", 99, 1), now),                                    // yesterday's
		fleetInstance(entry("writer-3"), &report.Report{Agent: "writer", ID: "writer-3", Updated: now}, now), // an older sidecar
		fleetInstance(entry("writer-4"), nil, now),                                                           // no report
	}
	if s := list[0].SpendTodayUSD; s == nil || *s != 12.345 || list[0].TokensToday != 4_200_000 {
		t.Errorf("writer-1 spend %v, %d tokens; want 12.345, 4200000", s, list[0].TokensToday)
	}
	for _, in := range list[1:] {
		if in.SpendTodayUSD != nil || in.TokensToday != 0 {
			t.Errorf("%s has a spend today (%d tokens), want none", in.ID, in.TokensToday)
		}
	}

	var out strings.Builder
	printFleet(&out, list, now, palette{})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.HasSuffix(lines[0], "SPEND TODAY") {
		t.Fatalf("fleet output:\n%s", out.String())
	}
	if !strings.HasSuffix(lines[1], "$12.35 (4.2M tokens)") {
		t.Errorf("writer-1 line %q, want it to end with its spend", lines[1])
	}
	for _, l := range lines[2:] {
		if !strings.HasSuffix(l, " -") {
			t.Errorf("line %q, want it to end with - (no spend today)", l)
		}
	}
}

func TestStatusPrintsBudgets(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		budgets []budget.Status
		want    string
	}{
		{"none", nil, ""},
		{"tokens, exceeded", []budget.Status{{Name: "daily", Window: "10s", Action: "reject", State: "exceeded",
			Spent: budget.Spend{Tokens: 1200}, Limit: budget.Spend{Tokens: 1000}, ResetsAt: now.Add(5 * time.Second)}},
			"budgets    daily: exceeded (reject, 10s window), 1.2k/1k tokens spent, 0 tokens left, resets at 15:04:10 UTC\n"},
		{"cost and tokens, several", []budget.Status{
			{Name: "daily", Window: "24h0m0s", Action: "degrade", State: "warning",
				Spent: budget.Spend{CostUSD: 17, Tokens: 2_000_000}, Limit: budget.Spend{CostUSD: 20, Tokens: 5_000_000},
				Left: budget.Spend{CostUSD: 3, Tokens: 3_000_000}, ResetsAt: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
			{Name: "weekly", Window: "168h0m0s", Action: "reject", State: "ok",
				Spent: budget.Spend{CostUSD: 0.004}, Limit: budget.Spend{CostUSD: 100},
				Left: budget.Spend{CostUSD: 99.996}, ResetsAt: time.Date(2026, 12, 3, 0, 0, 0, 0, time.FixedZone("CET", 3600))},
		},
			"budgets    daily: warning (degrade, 24h0m0s window), $17.00/$20.00 and 2M/5M tokens spent, $3.00 and 3M tokens left, resets at 00:00:00 UTC\n" +
				"           weekly: ok (reject, 168h0m0s window), $0.0040/$100.00 spent, $100.00 left, resets at 23:00:00 UTC\n"},
		{"in a week", []budget.Status{{Name: "weekly", Window: "168h0m0s", Action: "reject", State: "ok",
			Limit: budget.Spend{Tokens: 10}, Left: budget.Spend{Tokens: 10}, ResetsAt: time.Date(2026, 12, 3, 15, 4, 6, 0, time.UTC)}},
			"budgets    weekly: ok (reject, 168h0m0s window), 0/10 tokens spent, 10 tokens left, resets at 2026-12-03 15:04:06 UTC\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			printBudgets(&out, tt.budgets, now, palette{})
			if got := out.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
