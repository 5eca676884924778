package sidecar

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

func TestDegradedModelShowsInStatusBreakersAndSidecarCheck(t *testing.T) {
	primary := sidecartest.NewUpstream(t, "primary", http.StatusInternalServerError)
	lite := sidecartest.NewUpstream(t, "lite", http.StatusOK)
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	model := func(label, url, fallback string) policies.Model {
		return policies.Model{Label: label, Name: label, Provider: policies.ProviderOpenAI, BaseURL: url + "/v1",
			APIKey: "sk-secret-" + label, Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: time.Second,
			StreamIdleTimeout: time.Second, Fallback: fallback}
	}
	cfg.Models = map[string]policies.Model{
		"gpt-4o":      model("gpt-4o", primary.URL, "gpt-4o-mini"),
		"gpt-4o-mini": model("gpt-4o-mini", lite.URL, ""),
	}
	_, reg, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})

	// Given no call yet, both model breakers are listed and the check passes
	e.GET("/v1/breakers").Expect().JSON().Object().Value("breakers").Array().Length().IsEqual(2)
	if c := reg.check("writer-1:sidecar"); c.status != discovery.Passing || !strings.Contains(c.output, "All 2 breakers closed") {
		t.Fatalf("sidecar check %s %q", c.status, c.output)
	}

	// When the primary fails, the agent's call is answered by the lighter model
	e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").WithBytes([]byte(`{"model":"gpt-4o","messages":[]}`)).
		WithHeader("Content-Type", "application/json").Expect().Status(http.StatusOK).
		Header("X-Sidecar-Degraded").IsEqual("true")

	// Then the sidecar check warns, and status says who serves and why
	testutil.Eventually(t, "sidecar check warning", 2*time.Second, func() bool { return reg.check("writer-1:sidecar").status == discovery.Warning })
	if out := reg.check("writer-1:sidecar").output; !strings.Contains(out, "model gpt-4o answered by gpt-4o-mini since") ||
		!strings.Contains(out, "gpt-4o: 500") {
		t.Fatalf("sidecar check output %q", out)
	}
	status := e.GET("/v1/status").Expect().Status(http.StatusOK)
	body := status.Body().Raw()
	if strings.Contains(body, "sk-secret") {
		t.Fatalf("a model key appears in status: %s", body)
	}
	obj := status.JSON().Object()
	obj.Value("degraded").Array().Value(0).Object().HasValue("model", "gpt-4o").HasValue("served_by", "gpt-4o-mini")
	obj.Value("models").Array().Value(0).Object().HasValue("label", "gpt-4o").HasValue("calls", 1).HasValue("failures", 1).
		HasValue("breaker", "model:gpt-4o")
	obj.Value("models").Array().Value(1).Object().HasValue("fallback_answers", 1)

	// When the primary answers again, the chain is no longer degraded
	primary.Status.Store(http.StatusOK)
	e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").WithBytes([]byte(`{"model":"gpt-4o","messages":[]}`)).
		Expect().Status(http.StatusOK).Header("X-Sidecar-Degraded").IsEqual("false")
	testutil.Eventually(t, "sidecar check passing", 2*time.Second, func() bool { return reg.check("writer-1:sidecar").status == discovery.Passing })
	if h := primary.LastBody(); !strings.Contains(h, `"model":"gpt-4o"`) {
		t.Fatalf("the primary got %q", h)
	}
}
