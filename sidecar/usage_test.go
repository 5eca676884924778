package sidecar

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	clock "github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// near says whether two amounts of dollars are the same to a billionth.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

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
	s.spend.Record(gateway.Usage{Model: "gpt-4o", ServedBy: "gpt-4o", Input: 1_000_000, CachedInput: 200_000, Output: 100_000})
	s.spend.Record(gateway.Usage{Model: "gpt-4o", ServedBy: "gpt-4o-mini", Input: 1_000_000, Output: 1_000_000})
	s.spend.Record(gateway.Usage{Model: "llama", ServedBy: "llama", Input: 10, Output: 20})

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
	s.spend.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})

	// When a reload gives the model a price, the next answers cost it
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	s.spend.Record(gateway.Usage{Model: "m", ServedBy: "m", Input: 1_000_000})
	got := s.spend.Today().Models["m"]
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
