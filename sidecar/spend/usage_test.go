package spend

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
)

// near says whether two amounts of dollars are the same to a billionth.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestUsageCost(t *testing.T) {
	gpt4o := &policies.Price{Input: 2.5, Output: 10, CachedInput: 1.25, CacheWrite: 2.5}
	claude := &policies.Price{Input: 3, Output: 15, CachedInput: 0.3, CacheWrite: 3.75}
	tests := []struct {
		name   string
		price  *policies.Price
		usage  gateway.Usage
		want   float64
		priced bool
	}{
		{"input and output", gpt4o, gateway.Usage{Input: 1000, Output: 500}, (1000*2.5 + 500*10) / 1e6, true},
		{"cached input at its own price", gpt4o, gateway.Usage{Input: 200, CachedInput: 800, Output: 100},
			(200*2.5 + 800*1.25 + 100*10) / 1e6, true},
		{"cache writes", claude, gateway.Usage{Input: 10, CacheWrite: 2000, CachedInput: 0, Output: 50},
			(10*3 + 2000*3.75 + 50*15) / 1e6, true},
		{"a million output tokens cost the output price", gpt4o, gateway.Usage{Output: 1_000_000}, 10, true},
		{"no tokens", gpt4o, gateway.Usage{}, 0, true},
		{"no price", nil, gateway.Usage{Input: 1000, Output: 500}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, priced := usageCost(tt.price, tt.usage)
			if !near(got, tt.want) || priced != tt.priced {
				t.Errorf("got $%g priced %t, want $%g priced %t", got, priced, tt.want, tt.priced)
			}
		})
	}
}

// testKeeper is a keeper without budgets on clk over models priced as given
// (nil: no price block), with its own counters.
func testKeeper(clk func() time.Time, prices map[string]*policies.Price) *Keeper {
	cfg := &policies.Config{Models: map[string]policies.Model{}}
	for label, p := range prices {
		cfg.Models[label] = policies.Model{Label: label, Price: p}
	}
	tokens := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokens"}, []string{"model", "served_by", "type"})
	cost := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cost"}, []string{"model", "served_by"})
	return New(cfg, Options{Now: clk, Config: func() *policies.Config { return cfg }, Tokens: tokens, Cost: cost})
}

func TestUsageCountsAgainstTheServingModel(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	k := testKeeper(clk.Now, map[string]*policies.Price{
		"big":   {Input: 10, Output: 30, CachedInput: 10, CacheWrite: 10},
		"small": {Input: 1, Output: 2, CachedInput: 0.5, CacheWrite: 1},
		"local": nil,
	})
	if got := k.Today(); got != nil {
		t.Fatalf("before any answer: %+v, want nil", got)
	}

	// Given one answer from big, one degraded answer of big served by small,
	// and one from a model without a price
	k.Record(gateway.Usage{Model: "big", ServedBy: "big", Input: 1000, Output: 100})
	k.Record(gateway.Usage{Model: "big", ServedBy: "small", Input: 600, CachedInput: 400, Output: 200})
	k.Record(gateway.Usage{Model: "local", ServedBy: "local", Input: 50, Output: 5})

	// Then the degraded answer costs small's price, and counts against small
	got := k.Today()
	want := map[string]ModelUsage{
		"big":   {Answers: 1, Input: 1000, Output: 100, CostUSD: (1000*10 + 100*30) / 1e6, Priced: true},
		"small": {Answers: 1, Input: 600, CachedInput: 400, Output: 200, CostUSD: (600*1 + 400*0.5 + 200*2) / 1e6, Priced: true},
		"local": {Answers: 1, Input: 50, Output: 5, Priced: false},
	}
	if got.Day != "2026-12-02" {
		t.Errorf("day %q, want 2026-12-02", got.Day)
	}
	for label, w := range want {
		g := got.Models[label]
		if !near(g.CostUSD, w.CostUSD) {
			t.Errorf("%s cost $%g, want $%g", label, g.CostUSD, w.CostUSD)
		}
		g.CostUSD = w.CostUSD
		if g != w {
			t.Errorf("%s: got %+v, want %+v", label, g, w)
		}
	}
	if wantTotal := want["big"].CostUSD + want["small"].CostUSD; !near(got.TotalCostUSD, wantTotal) {
		t.Errorf("total $%g, want $%g", got.TotalCostUSD, wantTotal)
	}

	// And the counters say which model was asked for and which answered
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"big", "small", TokensInput}, 600},
		{[]string{"big", "small", TokensCachedInput}, 400},
		{[]string{"big", "small", TokensOutput}, 200},
		{[]string{"big", "big", TokensInput}, 1000},
	} {
		if got := promtest.ToFloat64(k.opts.Tokens.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("tokens%v = %g, want %g", c.labels, got, c.want)
		}
	}
	if got := promtest.ToFloat64(k.opts.Cost.WithLabelValues("big", "small")); !near(got, (600*1+400*0.5+200*2)/1e6) {
		t.Errorf("cost of big served by small = %g", got)
	}
	// A model without a price has no cost series
	if n := promtest.CollectAndCount(k.opts.Cost); n != 2 {
		t.Errorf("%d cost series, want 2 (big and small; local has no price)", n)
	}
}

func TestUsageStartsAfreshEachUTCDay(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 2, 23, 59, 0, 0, time.UTC))
	k := testKeeper(clk.Now, map[string]*policies.Price{"m": {Input: 1, Output: 1, CachedInput: 1, CacheWrite: 1}})
	k.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})
	if got := k.Today(); got == nil || got.Day != "2026-12-02" || !near(got.TotalCostUSD, 1) {
		t.Fatalf("on the first day: %+v, want $1 on 2026-12-02", got)
	}

	// When the UTC day changes, today's totals start from nothing
	clk.Advance(2 * time.Minute)
	if got := k.Today(); got != nil {
		t.Errorf("after midnight UTC: %+v, want nil", got)
	}
	k.Record(gateway.Usage{Model: "m", ServedBy: "m", Output: 500_000})
	got := k.Today()
	if got == nil || got.Day != "2026-12-03" || !near(got.TotalCostUSD, 0.5) || got.Models["m"].Input != 0 {
		t.Errorf("on the next day: %+v, want only $0.50 of output on 2026-12-03", got)
	}
	// The counters never go back
	if v := promtest.ToFloat64(k.opts.Cost.WithLabelValues("m", "m")); !near(v, 1.5) {
		t.Errorf("cost counter %g, want 1.5", v)
	}

	// A day in another time zone is still the UTC day
	clk.Set(time.Date(2026, 12, 3, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))) // 04:30 UTC on the 4th
	if got := k.Today(); got != nil {
		t.Errorf("on the 4th (UTC): %+v, want nil", got)
	}
}

func TestUsageIgnoresNegativeCounts(t *testing.T) {
	k := testKeeper(time.Now, map[string]*policies.Price{"m": {Input: 1, Output: 1, CachedInput: 1, CacheWrite: 1}})
	k.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: -5, Output: 10})
	got := k.Today().Models["m"]
	if got.Input != 0 || got.Output != 10 || !near(got.CostUSD, 10/1e6) {
		t.Errorf("got %+v, want the negative count as 0", got)
	}
	if n := promtest.CollectAndCount(k.opts.Tokens); n != 1 {
		t.Errorf("%d token series, want 1 (output; no input series for a negative count)", n)
	}
}

func TestSpendForTheFleetReport(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	k := testKeeper(clk.Now, map[string]*policies.Price{"a": {Input: 1, Output: 2}, "b": nil})
	if got := k.Spend(); got != nil {
		t.Fatalf("before any answer: %+v, want nil", got)
	}
	k.Record(gateway.Usage{Model: "a", ServedBy: "a", Input: 1_000_000, Output: 500_000})
	k.Record(gateway.Usage{Model: "a", ServedBy: "b", Input: 10, CachedInput: 20, CacheWrite: 30})
	got := k.Spend()
	if got == nil || got.Day != "2026-12-02" || !near(got.CostUSD, 2) || got.Tokens != 1_500_060 {
		t.Errorf("spend %+v, want $2 and 1500060 tokens on 2026-12-02", got)
	}
}
