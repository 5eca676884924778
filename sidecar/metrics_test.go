package sidecar

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/spend"
)

// metricValue returns the value of the sample written exactly as name (with
// its labels, in the exposition's order), or -1 when absent.
func metricValue(t *testing.T, text, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return v
}

func scrape(e *httpexpect.Expect) string {
	return e.GET("/metrics").Expect().Status(http.StatusOK).Body().Raw()
}

func TestMetricsAfterATripAFallbackAndAnIsolation(t *testing.T) {
	flaky := sidecartest.NewUpstream(t, "flaky", http.StatusServiceUnavailable)
	backup := sidecartest.NewUpstream(t, "backup", http.StatusOK)
	modelDown := sidecartest.NewUpstream(t, "model-down", http.StatusInternalServerError)
	modelLite := sidecartest.NewUpstream(t, "model-lite", http.StatusOK)
	cfg := testConfig()
	cfg.Health = policies.Health{HeartbeatInterval: 200 * time.Millisecond, MissedHeartbeats: 1, Grace: 100 * time.Millisecond}
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{
		"primary": {Name: "primary", URL: flaky.URL, Breaker: "default", Timeout: 5 * time.Second,
			Fallback: []string{"backup"}, Balance: policies.BalanceRoundRobin},
		"backup": {Name: "backup", URL: backup.URL, Breaker: "default", Timeout: 5 * time.Second,
			Balance: policies.BalanceRoundRobin},
	}
	model := func(label, url, fallback string) policies.Model {
		return policies.Model{Label: label, Name: label, Provider: policies.ProviderOpenAI, BaseURL: url,
			Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second, Fallback: fallback}
	}
	cfg.Models = map[string]policies.Model{"big": model("big", modelDown.URL, "small"), "small": model("small", modelLite.URL, "")}
	s, reg, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})

	// Before any traffic: process and Go collectors, the agent waiting
	text := scrape(e)
	for _, name := range []string{"process_cpu_seconds_total", "go_goroutines", "sidecar_heartbeats_total 0"} {
		if !strings.Contains(text, name) {
			t.Errorf("metrics lack %q", name)
		}
	}
	if v := metricValue(t, text, `sidecar_agent_state{state="waiting"}`); v != 1 {
		t.Errorf("waiting state %v, want 1", v)
	}
	if strings.Contains(text, "sidecar_availability_ratio") {
		t.Errorf("an availability ratio without traffic")
	}

	// When 5 calls go to a failing upstream with a fallback, and 2 model
	// requests to a failing model with a lighter one
	for i := 0; i < 5; i++ {
		e.GET("/call/primary/x").Expect().Status(http.StatusOK)
	}
	backup.Status.Store(http.StatusServiceUnavailable)
	e.GET("/call/backup/x").Expect().Status(http.StatusServiceUnavailable)
	for i := 0; i < 2; i++ {
		e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").WithBytes([]byte(`{"model":"big"}`)).Expect().Status(http.StatusOK)
	}
	// And the agent heartbeats once, then falls silent until isolated
	s.Beat(health.Heartbeat{})
	// (the isolation is counted when it is dispatched, just after the
	// tracker's state changes: wait for the count a scrape shows)
	testutil.Eventually(t, "isolation", 3*time.Second, func() bool {
		return s.tracker.Snapshot().IsolatedNow() &&
			strings.Contains(scrape(e), `sidecar_agent_isolations_total{reason="missed_heartbeats"} 1`)
	})

	text = scrape(e)
	flakyBreaker := "primary@" + flaky.HostPort()
	for sample, want := range map[string]float64{
		`sidecar_requests_total{kind="upstream",outcome="fallback",target="primary"}`: 5,
		`sidecar_requests_total{kind="upstream",outcome="failure",target="backup"}`:   1,
		`sidecar_request_duration_seconds_count{kind="upstream",target="primary"}`:    5,
		`sidecar_breaker_transitions_total{breaker="` + flakyBreaker + `",to="open"}`: 1,
		`sidecar_breaker_state{breaker="` + flakyBreaker + `",state="open"}`:          1,
		`sidecar_breaker_state{breaker="` + flakyBreaker + `",state="closed"}`:        0,
		`sidecar_breaker_trips_total{breaker="` + flakyBreaker + `"}`:                 1,
		`sidecar_breaker_rejected_total{breaker="` + flakyBreaker + `"}`:              2,
		`sidecar_requests_total{kind="model",outcome="fallback",target="big"}`:        2,
		`sidecar_model_degraded_answers_total{model="big",served_by="small"}`:         2,
		`sidecar_model_calls_total{model="big",result="failed"}`:                      2,
		`sidecar_model_calls_total{model="small",result="answered"}`:                  2,
		`sidecar_heartbeats_total`:                                     1,
		`sidecar_agent_state{state="isolated"}`:                        1,
		`sidecar_agent_isolations_total{reason="missed_heartbeats"}`:   1,
		`sidecar_agent_isolations_total{reason="stalled"}`:             0,
		`sidecar_consul_registered`:                                    1,
		`sidecar_availability_requests{result="answered",window="1h"}`: 7,
		`sidecar_availability_requests{result="error",window="24h"}`:   1,
		`sidecar_availability_ratio{window="1h"}`:                      0.875,
	} {
		if got := metricValue(t, text, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if age := metricValue(t, text, "sidecar_last_heartbeat_age_seconds"); age < 0.2 || age > 10 {
		t.Errorf("last heartbeat age %v", age)
	}
	// No unbounded label values: no path or error text (a status as a
	// whole label value; a port such as :46503 in a breaker's name is fine)
	if bad := regexp.MustCompile(`\{[^}]*(/x|="503|Service Unavailable)[^}]*\}`).FindString(text); bad != "" {
		t.Errorf("a request path or error text appears as a label: %s", bad)
	}

	// And the sidecar check and status say the same
	s.pushSidecarCheck()
	if out := reg.check("writer-1:sidecar").output; !strings.Contains(out, "Answered (first choice or fallback): 1h 87.5% of 8, 24h 87.5% of 8.") {
		t.Errorf("sidecar check output %q", out)
	}
	e.GET("/v1/status").Expect().JSON().Object().Value("availability").Array().Value(0).Object().
		HasValue("window", "1h").HasValue("answered", 7).HasValue("errors", 1).HasValue("ratio", 0.875)

	// When the agent heartbeats again it recovers
	s.Beat(health.Heartbeat{})
	if v := metricValue(t, scrape(e), "sidecar_agent_recoveries_total"); v != 1 {
		t.Errorf("recoveries %v, want 1", v)
	}
}

// TestGrafanaDashboardUsesRealMetrics checks that every metric the example
// dashboard queries is one the sidecar serves.
func TestGrafanaDashboardUsesRealMetrics(t *testing.T) {
	raw, err := os.ReadFile("../examples/grafana/sidecar-fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: up.URL, Breaker: "default",
		Timeout: time.Second, Balance: policies.BalanceRoundRobin}}
	cfg.Models = map[string]policies.Model{"m": {Label: "m", Name: "m", Provider: policies.ProviderOpenAI, BaseURL: up.URL,
		Breaker: "default", Timeout: time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second}}
	s, _, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})
	s.Beat(health.Heartbeat{})
	e.GET("/call/up/x").Expect().Status(http.StatusOK)
	// Series that exist once a model degrades, and once one reports usage
	s.metrics.degraded.WithLabelValues("m", "n")
	s.metrics.tokens.WithLabelValues("m", "m", spend.TokensInput)
	s.metrics.costUSD.WithLabelValues("m", "m")
	text := scrape(e)
	name := regexp.MustCompile(`sidecar_[a-z0-9_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				if !regexp.MustCompile(`(?m)^` + m + `[{ ]`).MatchString(text) {
					t.Errorf("panel %q queries %s, which /metrics does not serve", p.Title, m)
				}
			}
		}
	}
}
