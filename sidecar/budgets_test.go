package sidecar

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	clock "github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// fakeModel is a fake OpenAI model labelled label, served for the test.
func fakeModel(t *testing.T, label string) (policies.Model, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(fakellm.New(fakellm.Options{Name: label, Reply: "An answer that costs tokens."}))
	t.Cleanup(srv.Close)
	return policies.Model{Label: label, Name: label, Provider: policies.ProviderOpenAI, BaseURL: srv.URL + "/v1",
		Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: 5 * time.Second, StreamIdleTimeout: 5 * time.Second}, srv
}

// webhookEvents is a notify target that records the events POSTed to it
// as "type budget agent_id".
type webhookEvents struct {
	mu    sync.Mutex
	types []string
}

func newWebhook(t *testing.T) (*webhookEvents, string) {
	w := &webhookEvents{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type    string `json:"type"`
			Budget  string `json:"budget"`
			AgentID string `json:"agent_id"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &ev)
		w.mu.Lock()
		w.types = append(w.types, ev.Type+" "+ev.Budget+" "+ev.AgentID)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

func (w *webhookEvents) has(ev string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.types {
		if e == ev {
			return true
		}
	}
	return false
}

// String is the events received, for a failure message.
func (w *webhookEvents) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.types, ", ")
}

func chat(model string) map[string]any {
	return map[string]any{"model": model, "messages": []any{map[string]any{"role": "user", "content": "Loop again."}}}
}

func TestBudgetRejectStopsALoopingAgentUntilTheWindowResets(t *testing.T) {
	// Given a budget of a few tokens a minute, rejecting, and a webhook
	m, _ := fakeModel(t, "gpt-4o")
	hook, hookURL := newWebhook(t)
	cfg := testConfig()
	cfg.Agent.StateDir = t.TempDir()
	cfg.Models = map[string]policies.Model{"gpt-4o": m}
	cfg.Notify = map[string]policies.Notify{"ops": {Name: "ops", Webhook: hookURL, Timeout: time.Second}}
	cfg.Health.Notify = []string{"ops"}
	cfg.Budgets = map[string]policies.Budget{"loop": {Name: "loop", Window: time.Minute, Tokens: 60,
		Action: policies.BudgetReject, WarnAt: 80}}
	clk := clock.NewClock(time.Date(2030, 1, 2, 10, 0, 30, 0, time.UTC))
	_, _, e := startSidecar(t, cfg, Options{Now: clk.Now, Discovery: &sidecartest.Discovery{}})

	if got := metricValue(t, scrape(e), `sidecar_budget_exceeded{budget="loop"}`); got != 0 {
		t.Errorf("sidecar_budget_exceeded before any call = %v, want 0", got)
	}

	// When the agent loops on calls
	served := 0
	var last *http.Response
	for range 50 {
		resp := e.POST("/llm/v1/chat/completions").WithJSON(chat("gpt-4o")).Expect()
		if resp.Raw().StatusCode != http.StatusOK {
			last = resp.Raw()
			// Then the call after the limit is a 429 naming the budget, with Retry-After at the reset
			resp.Status(http.StatusTooManyRequests).Header("Retry-After").IsEqual("30")
			msg := resp.JSON().Object().Value("error").Object()
			msg.Value("type").IsEqual("rate_limit_error")
			msg.Value("code").IsEqual("budget_exceeded")
			msg.Value("message").String().Contains(`budget "loop" is spent`)
			break
		}
		served++
	}
	if last == nil || served == 0 {
		t.Fatalf("served %d calls and then %v, want some calls and then a 429", served, last)
	}
	b := e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object().Value("budgets").Array().Value(0).Object()
	b.HasValue("name", "loop").HasValue("state", "exceeded").HasValue("window", "1m0s").
		HasValue("resets_at", "2030-01-02T10:01:00Z")
	b.Value("left").Object().HasValue("tokens", 0)
	clock.EventuallySeen(t, "budget.exceeded for loop of writer-1 at the webhook", 5*time.Second, func() (bool, string) {
		return hook.has("budget.exceeded loop writer-1"), hook.String()
	})

	metrics := scrape(e)
	if got := metricValue(t, metrics, `sidecar_budget_exceeded{budget="loop"}`); got != 1 {
		t.Errorf("sidecar_budget_exceeded once spent = %v, want 1", got)
	}
	if got := metricValue(t, metrics, `sidecar_budget_spent_ratio{budget="loop"}`); got < 1 {
		t.Errorf("sidecar_budget_spent_ratio once spent = %v, want at least 1", got)
	}

	// And once the window has reset, the agent is served again
	clk.Advance(30 * time.Second)
	if got := metricValue(t, scrape(e), `sidecar_budget_exceeded{budget="loop"}`); got != 0 {
		t.Errorf("sidecar_budget_exceeded after the reset = %v, want 0", got)
	}
	e.POST("/llm/v1/chat/completions").WithJSON(chat("gpt-4o")).Expect().Status(http.StatusOK)
}

func TestBudgetSpentRatio(t *testing.T) {
	tests := []struct {
		name  string
		spent budget.Spend
		limit budget.Spend
		want  float64
	}{
		{"tokens only", budget.Spend{Tokens: 250}, budget.Spend{Tokens: 1000}, 0.25},
		{"cost only", budget.Spend{CostUSD: 15, Tokens: 999}, budget.Spend{CostUSD: 20}, 0.75},
		{"the larger of the two", budget.Spend{CostUSD: 5, Tokens: 900}, budget.Spend{CostUSD: 20, Tokens: 1000}, 0.9},
		{"overspent", budget.Spend{Tokens: 1500}, budget.Spend{Tokens: 1000}, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (budget.Status{Spent: tt.spent, Limit: tt.limit}).SpentRatio(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBudgetDegradeSendsEverythingToTheCheaperModel(t *testing.T) {
	big, bigSrv := fakeModel(t, "gpt-4o")
	mini, _ := fakeModel(t, "gpt-4o-mini")
	_ = bigSrv
	cfg := testConfig()
	cfg.Agent.StateDir = t.TempDir()
	cfg.Models = map[string]policies.Model{"gpt-4o": big, "gpt-4o-mini": mini}
	cfg.Budgets = map[string]policies.Budget{"big-model": {Name: "big-model", Window: 24 * time.Hour, Tokens: 1,
		Action: policies.BudgetDegrade, DegradeTo: "gpt-4o-mini", WarnAt: 80, Models: []string{"gpt-4o"}}}
	_, _, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})

	// The first call spends the budget; every call after goes to gpt-4o-mini
	e.POST("/llm/v1/chat/completions").WithJSON(chat("gpt-4o")).Expect().Status(http.StatusOK).
		Header(gateway.HeaderModel).IsEqual("gpt-4o")
	for range 3 {
		r := e.POST("/llm/v1/chat/completions").WithJSON(chat("gpt-4o")).Expect().Status(http.StatusOK)
		r.Header(gateway.HeaderModel).IsEqual("gpt-4o-mini")
		r.Header(gateway.HeaderDegraded).IsEqual("true")
	}
	// A model the budget does not count is not degraded
	e.POST("/llm/v1/chat/completions").WithJSON(chat("gpt-4o-mini")).Expect().Status(http.StatusOK).
		Header(gateway.HeaderDegraded).IsEqual("false")
}

func TestBudgetSpendSurvivesARestart(t *testing.T) {
	m, _ := fakeModel(t, "gpt-4o")
	cfg := testConfig()
	cfg.Agent.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Models = map[string]policies.Model{"gpt-4o": m}
	cfg.Budgets = map[string]policies.Budget{"daily": {Name: "daily", Window: 24 * time.Hour, Tokens: 1_000_000,
		Action: policies.BudgetReject, WarnAt: 80}}
	spent := func(s *Sidecar) int64 { return s.Status().Budgets[0].Spent.Tokens }

	// Given a sidecar that spent some tokens and was stopped
	s, stop := runSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})
	e := sidecartest.NewExpect(t, "http://"+s.Addr())
	for range 3 {
		e.POST("/llm/v1/chat/completions").WithJSON(chat("gpt-4o")).Expect().Status(http.StatusOK)
	}
	before := spent(s)
	stop()
	if before <= 0 {
		t.Fatalf("spent %d tokens, want some", before)
	}

	// When another starts with the same state_dir, it has the spend
	s, stop = runSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})
	if got := spent(s); got != before {
		t.Errorf("after a restart: spent %d, want %d", got, before)
	}
	stop()

	// And a corrupt state file is ignored: the budget starts from nothing
	if err := os.WriteFile(filepath.Join(cfg.Agent.StateDir, budget.FileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, stop = runSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})
	defer stop()
	if got := spent(s); got != 0 {
		t.Errorf("with a corrupt state file: spent %d, want 0", got)
	}
}

func TestStatusHasNoBudgetsWithoutBudgetBlocks(t *testing.T) {
	_, _, e := startSidecar(t, testConfig(), Options{Discovery: &sidecartest.Discovery{}})
	body := e.GET("/v1/status").Expect().Status(http.StatusOK).Body().Raw()
	if strings.Contains(body, `"budgets"`) {
		t.Errorf("status without budgets shows budgets: %s", body)
	}
}
