package sidecar

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	clock "github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/test/fakellm"
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

// testAccountant is an accountant on clk over models priced as given (nil:
// no price block), with its own counters.
func testAccountant(clk func() time.Time, prices map[string]*policies.Price) *usageAccountant {
	cfg := &policies.Config{Models: map[string]policies.Model{}}
	for label, p := range prices {
		cfg.Models[label] = policies.Model{Label: label, Price: p}
	}
	tokens := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokens"}, []string{"model", "served_by", "type"})
	cost := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cost"}, []string{"model", "served_by"})
	return newUsageAccountant(clk, func() *policies.Config { return cfg }, tokens, cost)
}

// exposition is the accountant's counters as /metrics would serve them.
func exposition(a *usageAccountant) string {
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.tokens, a.cost)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestUsageAccountantCountsAgainstTheServingModel(t *testing.T) {
	clk := clock.NewClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	a := testAccountant(clk.Now, map[string]*policies.Price{
		"big":   {Input: 10, Output: 30, CachedInput: 10, CacheWrite: 10},
		"small": {Input: 1, Output: 2, CachedInput: 0.5, CacheWrite: 1},
		"local": nil,
	})
	if got := a.today(); got != nil {
		t.Fatalf("before any answer: %+v, want nil", got)
	}

	// Given one answer from big, one degraded answer of big served by small,
	// and one from a model without a price
	a.record(gateway.Usage{Model: "big", ServedBy: "big", Input: 1000, Output: 100})
	a.record(gateway.Usage{Model: "big", ServedBy: "small", Input: 600, CachedInput: 400, Output: 200})
	a.record(gateway.Usage{Model: "local", ServedBy: "local", Input: 50, Output: 5})

	// Then the degraded answer costs small's price, and counts against small
	got := a.today()
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
	text := exposition(a)
	for sample, want := range map[string]float64{
		`tokens{model="big",served_by="small",type="input"}`:        600,
		`tokens{model="big",served_by="small",type="cached_input"}`: 400,
		`tokens{model="big",served_by="small",type="output"}`:       200,
		`tokens{model="big",served_by="big",type="input"}`:          1000,
		`cost{model="big",served_by="small"}`:                       (600*1 + 400*0.5 + 200*2) / 1e6,
		`cost{model="local",served_by="local"}`:                     -1, // absent: no price
	} {
		if got := metricValue(t, text, sample); !near(got, want) {
			t.Errorf("%s = %g, want %g", sample, got, want)
		}
	}
}

func TestUsageAccountantStartsAfreshEachUTCDay(t *testing.T) {
	clk := clock.NewClock(time.Date(2026, 12, 2, 23, 59, 0, 0, time.UTC))
	a := testAccountant(clk.Now, map[string]*policies.Price{"m": {Input: 1, Output: 1, CachedInput: 1, CacheWrite: 1}})
	a.record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})
	if got := a.today(); got == nil || got.Day != "2026-12-02" || !near(got.TotalCostUSD, 1) {
		t.Fatalf("on the first day: %+v, want $1 on 2026-12-02", got)
	}

	// When the UTC day changes, today's totals start from nothing
	clk.Advance(2 * time.Minute)
	if got := a.today(); got != nil {
		t.Errorf("after midnight UTC: %+v, want nil", got)
	}
	a.record(gateway.Usage{Model: "m", ServedBy: "m", Output: 500_000})
	got := a.today()
	if got == nil || got.Day != "2026-12-03" || !near(got.TotalCostUSD, 0.5) || got.Models["m"].Input != 0 {
		t.Errorf("on the next day: %+v, want only $0.50 of output on 2026-12-03", got)
	}
	// The counters never go back
	if v := metricValue(t, exposition(a), `cost{model="m",served_by="m"}`); !near(v, 1.5) {
		t.Errorf("cost counter %g, want 1.5", v)
	}

	// A day in another time zone is still the UTC day
	clk.Set(time.Date(2026, 12, 3, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))) // 04:30 UTC on the 4th
	if got := a.today(); got != nil {
		t.Errorf("on the 4th (UTC): %+v, want nil", got)
	}
}

func TestUsageAccountantIgnoresNegativeCounts(t *testing.T) {
	a := testAccountant(time.Now, map[string]*policies.Price{"m": {Input: 1, Output: 1, CachedInput: 1, CacheWrite: 1}})
	a.record(gateway.Usage{Model: "m", ServedBy: "m", Input: -5, Output: 10})
	got := a.today().Models["m"]
	if got.Input != 0 || got.Output != 10 || !near(got.CostUSD, 10/1e6) {
		t.Errorf("got %+v, want the negative count as 0", got)
	}
}

func TestUsageShowsInMetricsStatusAndReport(t *testing.T) {
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	clk := clock.NewClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	cfg := testConfig()
	model := func(label string, price *policies.Price) policies.Model {
		return policies.Model{Label: label, Name: label, Provider: policies.ProviderOpenAI, BaseURL: up.URL,
			Breaker: "default", Timeout: time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second, Price: price}
	}
	cfg.Models = map[string]policies.Model{
		"gpt-4o":      model("gpt-4o", &policies.Price{Input: 2.5, Output: 10, CachedInput: 1.25, CacheWrite: 2.5}),
		"gpt-4o-mini": model("gpt-4o-mini", &policies.Price{Input: 0.15, Output: 0.6, CachedInput: 0.075, CacheWrite: 0.15}),
		"llama":       model("llama", nil),
	}
	s, _, e := startSidecar(t, cfg, Options{Now: clk.Now, Discovery: &sidecartest.Discovery{}})

	// Before any answer, status has no usage
	e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object().NotContainsKey("usage")

	// Given answers reported by the gateway, a degraded one among them
	s.usage.record(gateway.Usage{Model: "gpt-4o", ServedBy: "gpt-4o", Input: 1_000_000, CachedInput: 200_000, Output: 100_000})
	s.usage.record(gateway.Usage{Model: "gpt-4o", ServedBy: "gpt-4o-mini", Input: 1_000_000, Output: 1_000_000})
	s.usage.record(gateway.Usage{Model: "llama", ServedBy: "llama", Input: 10, Output: 20})

	// Then /metrics has the tokens and cost series
	text := scrape(e)
	for sample, want := range map[string]float64{
		`sidecar_model_tokens_total{model="gpt-4o",served_by="gpt-4o",type="input"}`:             1_000_000,
		`sidecar_model_tokens_total{model="gpt-4o",served_by="gpt-4o",type="cached_input"}`:      200_000,
		`sidecar_model_tokens_total{model="gpt-4o",served_by="gpt-4o-mini",type="output"}`:       1_000_000,
		`sidecar_model_tokens_total{model="llama",served_by="llama",type="output"}`:              20,
		`sidecar_model_cost_usd_total{model="gpt-4o",served_by="gpt-4o"}`:                        2.5 + 0.25 + 1,
		`sidecar_model_cost_usd_total{model="gpt-4o",served_by="gpt-4o-mini"}`:                   0.15 + 0.6,
		`sidecar_model_cost_usd_total{model="llama",served_by="llama"}`:                          -1, // absent: no price
		`sidecar_model_tokens_total{model="gpt-4o",served_by="gpt-4o",type="cache_write"}`:       -1, // absent: none written
		`sidecar_model_tokens_total{model="gpt-4o",served_by="gpt-4o-mini",type="cached_input"}`: -1,
	} {
		if got := metricValue(t, text, sample); !near(got, want) {
			t.Errorf("%s = %g, want %g", sample, got, want)
		}
	}

	// And status shows today's totals by serving model
	usage := e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object().Value("usage").Object()
	usage.HasValue("day", "2026-12-02")
	usage.Value("total_cost_usd").Number().InDelta(3.75+0.75, 1e-9)
	models := usage.Value("models").Object()
	models.Keys().ContainsOnly("gpt-4o", "gpt-4o-mini", "llama")
	big := models.Value("gpt-4o").Object()
	big.HasValue("answers", 1).HasValue("input", 1_000_000).HasValue("cached_input", 200_000).
		HasValue("output", 100_000).HasValue("cache_write", 0).HasValue("priced", true)
	big.Value("cost_usd").Number().InDelta(3.75, 1e-9)
	models.Value("llama").Object().HasValue("priced", false).HasValue("cost_usd", 0).HasValue("input", 10)

	// And the fleet report carries today's spend
	r := s.fleetReport()
	if r.SpendToday == nil || r.SpendToday.Day != "2026-12-02" || !near(r.SpendToday.CostUSD, 4.5) ||
		r.SpendToday.Tokens != 1_300_000+2_000_000+30 {
		t.Errorf("report spend %+v, want $4.50 and 3300030 tokens on 2026-12-02", r.SpendToday)
	}
}

func TestUsagePriceReadAtTheTimeOfTheAnswer(t *testing.T) {
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	cfg := testConfig()
	cfg.Models = map[string]policies.Model{"m": {Label: "m", Name: "m", Provider: policies.ProviderOpenAI, BaseURL: up.URL,
		Breaker: "default", Timeout: time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second}}
	next := testConfig()
	m := cfg.Models["m"]
	m.Price = &policies.Price{Input: 2, Output: 4, CachedInput: 2, CacheWrite: 2}
	next.Models = map[string]policies.Model{"m": m}
	s, _, _ := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{},
		Reload: func() (*policies.Config, error) { return next, nil }})
	s.usage.record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})

	// When a reload gives the model a price, the next answers cost it
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	s.usage.record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})
	got := s.usage.today().Models["m"]
	if !near(got.CostUSD, 2) || got.Priced || got.Input != 2_000_000 {
		t.Errorf("got %+v, want $2 (only the answer after the price), not all priced", got)
	}
}

// A model call through the sidecar's /llm/ reaches the accountant: the
// usage the model reported is in /v1/status and /metrics, priced, with a
// streamed call counted too (the agent did not ask for usage; the sidecar
// asked the model for it).
func TestUsageOfRealModelCallsReachesStatusAndMetrics(t *testing.T) {
	model := httptest.NewServer(fakellm.New(fakellm.Options{Name: "gpt-4o", Reply: "Counted answer."}))
	t.Cleanup(model.Close)
	cfg := testConfig()
	cfg.Models = map[string]policies.Model{"gpt-4o": {Label: "gpt-4o", Name: "gpt-4o", Provider: policies.ProviderOpenAI,
		BaseURL: model.URL + "/v1", Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: 5 * time.Second,
		StreamIdleTimeout: 5 * time.Second, Price: &policies.Price{Input: 2.5, Output: 10, CachedInput: 1.25, CacheWrite: 2.5}}}
	_, _, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})

	e.POST("/llm/v1/chat/completions").WithJSON(map[string]any{"model": "gpt-4o",
		"messages": []any{map[string]any{"role": "user", "content": "Count me."}}}).
		Expect().Status(http.StatusOK)
	stream := e.POST("/llm/v1/chat/completions").WithJSON(map[string]any{"model": "gpt-4o", "stream": true,
		"messages": []any{map[string]any{"role": "user", "content": "Count me too."}}}).
		Expect().Status(http.StatusOK).Body().Raw()
	if strings.Contains(stream, `"choices":[]`) {
		t.Errorf("the agent did not ask for usage, yet its stream has the usage chunk:\n%s", stream)
	}

	usage := e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object().Value("usage").Object()
	m := usage.Value("models").Object().Value("gpt-4o").Object()
	m.HasValue("answers", 2).HasValue("priced", true)
	in, out := m.Value("input").Number().Raw(), m.Value("output").Number().Raw()
	if in <= 0 || out <= 0 {
		t.Fatalf("usage of two answers: input %v, output %v", in, out)
	}
	m.Value("cost_usd").Number().InDelta((in*2.5+out*10)/1e6, 1e-12)
	text := scrape(e)
	if got := metricValue(t, text, `sidecar_model_tokens_total{model="gpt-4o",served_by="gpt-4o",type="output"}`); got != out {
		t.Errorf("output tokens in /metrics %v, status %v", got, out)
	}
}
