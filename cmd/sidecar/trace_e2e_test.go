//go:build e2e

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/jaegertest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// traceAgent is the writer's agent: it answers a task by asking its
// sidecar's model gateway, and passes the task's traceparent on to that
// request (as the example agents do), so the model call joins the task's
// trace.
func traceAgent(t *testing.T, control *string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(http.MethodPost, *control+"/llm/v1/chat/completions", strings.NewReader(
			`{"model":"gpt-4o","messages":[{"role":"user","content":"write one line"}]}`))
		req.Header.Set("Content-Type", "application/json")
		for _, h := range []string{"Traceparent", "Tracestate", "Baggage"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestTraceOfADegradedTaskInJaeger sends a task from a dispatcher's agent
// through the dispatcher's sidecar (/call/writer) to the writer's ingress
// and agent, whose model call finds the primary failing and is answered by
// the lighter model, with a real Jaeger receiving both sidecars' spans over
// OTLP. The task is one trace: the caller's span, then each sidecar's
// server span, attempt spans and model attempts, parent to child, with the
// attributes and timings an operator reads, and the models themselves see
// their attempt as the parent.
func TestTraceOfADegradedTaskInJaeger(t *testing.T) {
	jaeger := jaegertest.Start(t)
	consul := consultest.Start(t)

	// Given a primary model that answers 503 and a lighter one that works
	primary := fakellm.New(fakellm.Options{Name: "primary", Reply: "unused",
		Faults: fakellm.Faults{FailRate: 100, FailStatus: http.StatusServiceUnavailable}})
	lite := fakellm.New(fakellm.Options{Name: "lite", Reply: "A line from the lighter model."})
	primarySrv, liteSrv := httptest.NewServer(primary), httptest.NewServer(lite)
	t.Cleanup(primarySrv.Close)
	t.Cleanup(liteSrv.Close)

	tracing := fmt.Sprintf(`
tracing {
  enabled  = true
  endpoint = %q
  protocol = "http/protobuf"
}
`, jaeger.OTLPEndpoint)
	consulBlock := fmt.Sprintf(`
consul {
  address = %q
  sync_interval = "1s"
  deregister_critical_after = "1m"
}
health { heartbeat_interval = "1h" }
`, consul.HTTPAddr)

	// And a writer: its agent behind an ingress, a chain gpt-4o → gpt-4o-mini
	var writerControl string
	agent := traceAgent(t, &writerControl)
	agentPort := mustPort(t, agent.URL)
	wControl, wIngress := testutil.FreePort(t), testutil.FreePort(t)
	writerFile := writeFile(t, t.TempDir(), "writer.hcl", fmt.Sprintf(`
agent {
  name = "writer"
  id   = "writer-1"
  port = %d
}
listen { address = "127.0.0.1:%d" }
ingress { address = "127.0.0.1:%d" }
`, agentPort, wControl, wIngress)+consulBlock+tracing+
		modelBlock("gpt-4o", "openai", primarySrv.URL+"/v1", "sk-trace-primary", "gpt-4o", "default", "gpt-4o-mini")+
		modelBlock("gpt-4o-mini", "openai", liteSrv.URL+"/v1", "sk-trace-lite", "gpt-4o-mini", "default", "")+
		modelBlock("gpt-4o-only", "openai", primarySrv.URL+"/v1", "sk-trace-primary", "gpt-4o-2024-08-06", "default", ""))
	writerControl, _ = startHealthySidecar(t, "writer", writerFile, wControl)

	// And a dispatcher that calls the writers through Consul
	dControl := testutil.FreePort(t)
	dispatcherFile := writeFile(t, t.TempDir(), "dispatcher.hcl", fmt.Sprintf(`
agent {
  name = "dispatcher"
  id   = "dispatcher-1"
}
listen { address = "127.0.0.1:%d" }
upstream "writer" {}
`, dControl)+consulBlock+tracing)
	dispatcherControl, _ := startHealthySidecar(t, "dispatcher", dispatcherFile, dControl)

	// When the writer's agent has heartbeated (so it is passing in Consul)
	// and the dispatcher's agent sends a task with its own traceparent
	resp, err := http.Post(writerControl+"/v1/heartbeat", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	const callerSpan = "00f067aa0ba902b7"
	var traceID string
	var answer string
	testutil.Eventually(t, "the dispatcher's call reaches the writer", 30*time.Second, func() bool {
		traceID = randomHex(16)
		req, _ := http.NewRequest(http.MethodPost, dispatcherControl+"/call/writer/task", strings.NewReader(`{"task":"write"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Traceparent", "00-"+traceID+"-"+callerSpan+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer = string(body)
		return resp.StatusCode == http.StatusOK
	})
	if !strings.Contains(answer, "A line from the lighter model.") {
		t.Fatalf("the task's answer is not the lighter model's: %s", answer)
	}

	// Then Jaeger has the whole task as one trace
	tr := jaeger.WaitTrace(t, traceID, 7, 30*time.Second)
	t.Logf("trace %s:\n%s", traceID, tr.Tree())
	span := func(name, service string) jaegertest.Span {
		t.Helper()
		for _, s := range tr.Spans {
			if s.Name == name && s.Service == service {
				return s
			}
		}
		t.Fatalf("no span %q of %s in the trace:\n%s", name, service, tr.Tree())
		return jaegertest.Span{}
	}
	call := span("call writer", "dispatcher")
	callAttempt := span("attempt writer", "dispatcher")
	task := span("task writer", "writer")
	agentAttempt := span("attempt agent", "writer")
	llm := span("llm gpt-4o", "writer")
	failed := span("chat gpt-4o", "writer")
	served := span("chat gpt-4o-mini", "writer")

	// parent to child, from the caller's span down to each model attempt
	for _, edge := range []struct {
		child  jaegertest.Span
		parent string
		what   string
	}{
		{call, callerSpan, "the dispatcher's call continues the caller's span"},
		{callAttempt, call.SpanID, "the attempt is the call's child"},
		{task, callAttempt.SpanID, "the writer's task continues the dispatcher's attempt"},
		{agentAttempt, task.SpanID, "the agent attempt is the task's child"},
		{llm, agentAttempt.SpanID, "the agent's model call continues the attempt that reached the agent"},
		{failed, llm.SpanID, "the primary's attempt is the model request's child"},
		{served, llm.SpanID, "the lighter model's attempt is the model request's child"},
	} {
		if edge.child.ParentID != edge.parent {
			t.Errorf("%s: %q has parent %s, want %s\n%s", edge.what, edge.child.Name, edge.child.ParentID, edge.parent, tr.Tree())
		}
	}

	// each child inside its parent's time, the primary tried before the
	// lighter model
	within := func(child, parent jaegertest.Span) {
		t.Helper()
		const skew = 2 * time.Millisecond // Jaeger keeps microseconds
		if child.Start.Before(parent.Start.Add(-skew)) || child.Start.Add(child.Duration).After(parent.Start.Add(parent.Duration+skew)) {
			t.Errorf("%q (%s + %s) is not within %q (%s + %s)", child.Name, child.Start.Format(time.RFC3339Nano), child.Duration,
				parent.Name, parent.Start.Format(time.RFC3339Nano), parent.Duration)
		}
	}
	within(callAttempt, call)
	within(task, callAttempt)
	within(agentAttempt, task)
	within(llm, agentAttempt)
	within(failed, llm)
	within(served, llm)
	if !failed.Start.Before(served.Start) {
		t.Errorf("the lighter model was tried at %s, before the primary at %s", served.Start, failed.Start)
	}

	// the attributes an operator reads
	want := func(s jaegertest.Span, key string, value any) {
		t.Helper()
		if got, ok := s.Tags[key]; !ok || fmt.Sprint(got) != fmt.Sprint(value) {
			t.Errorf("%q: %s = %v, want %v (tags %v)", s.Name, key, got, value, s.Tags)
		}
	}
	want(call, "span.kind", "server")
	want(call, "sidecar.answered_by", "writer")
	want(callAttempt, "span.kind", "client")
	want(callAttempt, "sidecar.instance", "writer-1")
	want(task, "span.kind", "server")
	want(agentAttempt, "sidecar.outcome", "ok")
	want(llm, "sidecar.degraded", true)
	want(llm, "sidecar.served_by", "gpt-4o-mini")
	want(llm, "gen_ai.request.model", "gpt-4o")
	if reason, _ := llm.Tags["sidecar.degraded_reason"].(string); !strings.Contains(reason, "gpt-4o") || !strings.Contains(reason, "503") {
		t.Errorf("degraded reason %q does not name the primary and its 503", reason)
	}
	want(failed, "http.response.status_code", 503)
	want(failed, "otel.status_code", "ERROR")
	want(failed, "sidecar.fallback_index", 0)
	want(served, "gen_ai.provider.name", "openai")
	want(served, "gen_ai.operation.name", "chat")
	want(served, "gen_ai.request.model", "gpt-4o-mini")
	want(served, "sidecar.fallback_index", 1)
	if n, _ := served.Tags["gen_ai.usage.output_tokens"].(int64); n <= 0 {
		t.Errorf("the lighter model's attempt has no output tokens: %v", served.Tags)
	}
	if _, ok := served.Tags["sidecar.time_to_first_token_ms"]; !ok {
		t.Errorf("the lighter model's attempt has no time to first token: %v", served.Tags)
	}

	// the resource names each agent
	if call.Resource["service.instance.id"] != "dispatcher-1" || llm.Resource["service.instance.id"] != "writer-1" {
		t.Errorf("resources: dispatcher %v, writer %v", call.Resource, llm.Resource)
	}

	// And the lighter model saw its own attempt as the parent of its request
	last, _ := lite.Last()
	if got, want := last.Header.Get("Traceparent"), "00-"+traceID+"-"+served.SpanID+"-01"; got != want {
		t.Errorf("the lighter model received traceparent %q, want %q", got, want)
	}

	// And the duration histogram of model requests points at the trace
	req, _ := http.NewRequest(http.MethodGet, writerControl+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(metrics, []byte(`trace_id="`)) {
			t.Errorf("no exemplar with a trace id in the OpenMetrics scrape")
		}
	}

	// And an error the sidecar writes carries the trace id to paste into the UI
	failTrace := randomHex(16)
	req, _ = http.NewRequest(http.MethodPost, writerControl+"/llm/v1/chat/completions", strings.NewReader(
		`{"model":"gpt-4o-only","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+failTrace+"-"+callerSpan+"-01")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			TraceID string `json:"trace_id"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode < 500 || body.Error.TraceID != failTrace {
		t.Errorf("a failed model request answered %d %s, want a 5xx carrying trace_id %s", resp.StatusCode, raw, failTrace)
	}
}

// mustPort is the port of a server's URL.
func mustPort(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// randomHex is n random bytes in hex: a fresh trace id for each request.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
