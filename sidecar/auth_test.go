package sidecar

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

const plantedToken = "planted-token-5f2a9c0d7e"

func TestTokenRequiredOnEveryEndpointButHealth(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	var seen strings.Builder
	var seenMu sync.Mutex
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	inner := up.Config.Handler
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seen.WriteString(r.Header.Get("Authorization") + r.Header.Get("X-Sidecar-Token") + r.Header.Get("X-Api-Key") + "|")
		seenMu.Unlock()
		inner.ServeHTTP(w, r)
	})
	cfg := testConfig()
	cfg.Listen.Token, cfg.Listen.TokenScope = plantedToken, policies.TokenAll
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: up.URL, Breaker: "default",
		Timeout: time.Second, Balance: policies.BalanceRoundRobin}}
	cfg.Models = map[string]policies.Model{"m": {Label: "m", Name: "m", Provider: policies.ProviderOpenAI, BaseURL: up.URL,
		Breaker: "default", Timeout: time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second}}
	var logs bytes.Buffer
	s, err := New(cfg, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace}), Options{Registry: newFakeRegistry(), Discovery: &sidecartest.Discovery{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e := sidecartest.NewExpect(t, "http://"+s.Addr())

	// Without the token: 401 everywhere but /v1/health, and nothing is called
	e.GET("/v1/health").Expect().Status(http.StatusOK)
	for _, r := range []*httpexpect.Request{
		e.GET("/v1/status"), e.POST("/v1/heartbeat"), e.GET("/v1/breakers"), e.GET("/metrics"), e.GET("/v1/events"),
		e.POST("/v1/reload"), e.GET("/call/up/x"), e.POST("/llm/v1/chat/completions").WithJSON(map[string]any{"model": "m"}),
		e.GET("/v1/status").WithHeader("X-Sidecar-Token", "wrong-token-0000000000"),
		e.GET("/v1/status").WithHeader("Authorization", "Bearer "+plantedToken[:10]),
	} {
		r.Expect().Status(http.StatusUnauthorized).Header("WWW-Authenticate").Contains("Bearer").
			Raw()
	}
	if up.Calls.Load() != 0 {
		t.Fatalf("unauthorized requests reached the upstream %d times", up.Calls.Load())
	}

	// With it (either header): answers, and the token is never forwarded
	e.GET("/v1/status").WithHeader("X-Sidecar-Token", plantedToken).Expect().Status(http.StatusOK)
	e.GET("/call/up/x").WithHeader("Authorization", "Bearer "+plantedToken).Expect().Status(http.StatusOK)
	e.POST("/llm/v1/chat/completions").WithHeader("X-Sidecar-Token", plantedToken).
		WithJSON(map[string]any{"model": "m"}).Expect().Status(http.StatusOK)
	seenMu.Lock()
	got := seen.String()
	seenMu.Unlock()
	if up.Calls.Load() != 2 || strings.Contains(got, plantedToken) {
		t.Fatalf("the upstream got %d calls with credential headers %q", up.Calls.Load(), got)
	}

	// And the token appears nowhere: status, breakers, events, metrics, logs
	var everything strings.Builder
	for _, path := range []string{"/v1/status", "/v1/breakers", "/metrics"} {
		everything.WriteString(e.GET(path).WithHeader("X-Sidecar-Token", plantedToken).Expect().Body().Raw())
	}
	everything.WriteString(logs.String())
	if strings.Contains(everything.String(), plantedToken) {
		t.Fatal("the token appears in status, metrics or logs")
	}
}

func TestOversizedHeadersGet431(t *testing.T) {
	_, _, e := startSidecar(t, testConfig(), Options{})
	e.GET("/v1/status").WithHeader("X-Big", strings.Repeat("x", MaxHeaderBytes+16<<10)).
		Expect().Status(http.StatusRequestHeaderFieldsTooLarge)
	e.GET("/v1/status").WithHeader("X-Fine", strings.Repeat("x", 8<<10)).Expect().Status(http.StatusOK)
}

func TestSupervisedAgentGetsAHeartbeatOnlyTokenUnderMutatingScope(t *testing.T) {
	needCurl(t)
	// Given a control token for mutating endpoints and a supervised agent
	// that heartbeats with $SIDECAR_TOKEN, then tries to open a breaker and
	// reload with it, and writes down the token and the answers
	out := filepath.Join(t.TempDir(), "out")
	script := `{ echo "token=$SIDECAR_TOKEN"; ` +
		`curl -s -o /dev/null -w "heartbeat=%{http_code}\n" -X POST -H "X-Sidecar-Token: $SIDECAR_TOKEN" "$SIDECAR_HEARTBEAT_URL"; ` +
		`curl -s -o /dev/null -w "breaker=%{http_code}\n" -X POST -H "X-Sidecar-Token: $SIDECAR_TOKEN" "$SIDECAR_ADDR/v1/breakers/default/open"; ` +
		`curl -s -o /dev/null -w "reload=%{http_code}\n" -X POST -H "X-Sidecar-Token: $SIDECAR_TOKEN" "$SIDECAR_ADDR/v1/reload"; ` +
		`} > ` + out + `.tmp; mv ` + out + `.tmp ` + out + `; while :; do sleep 0.05; done`
	ex := execCfg(policies.RestartNever, script)
	cfg := testConfig()
	cfg.Agent.Exec = &ex
	cfg.Listen.Token, cfg.Listen.TokenScope = plantedToken, policies.TokenMutating
	_, _, e := startSidecar(t, cfg, Options{AgentOutput: io.Discard})

	var got string
	testutil.Eventually(t, "the agent's answers", 10*time.Second, func() bool {
		b, err := os.ReadFile(out)
		got = string(b)
		return err == nil
	})
	// Then the agent holds a token that is not the control token, its
	// heartbeat is taken, and it can neither open a breaker nor reload
	if strings.Contains(got, plantedToken) || strings.Contains(got, "token=\n") {
		t.Errorf("the agent's SIDECAR_TOKEN is the control token or empty:\n%s", got)
	}
	for _, want := range []string{"heartbeat=200", "breaker=401", "reload=401"} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("the agent's answers lack %s:\n%s", want, got)
		}
	}
	// And the control token still does everything
	e.POST("/v1/breakers/x/open").WithHeader("X-Sidecar-Token", plantedToken).Expect().Status(http.StatusNotFound)
}
