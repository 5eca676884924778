package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/jaegertest"
	"github.com/agent-sidecar/sidecar/tools/internal/proc"
)

// TestTracingOffSaysWhy: without a Jaeger binary, or with DEMO_TRACING=0,
// the demo runs without traces and says so in one line, without starting
// anything.
func TestTracingOffSaysWhy(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name, jaegerBin, tracingEnv, want string
	}{
		{"no Jaeger", "", "", "make jaeger"},
		{"switched off", "/nonexistent/jaeger", "0", "DEMO_TRACING=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DEMO_TRACING", tt.tracingEnv)
			ps := &proc.Group{Root: root, Logs: t.TempDir()}
			defer ps.StopAll()
			var said []string
			say := func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }

			tr, err := startTracing(context.Background(), options{root: root, jaegerBin: tt.jaegerBin}, ps, say, say)

			if tr != nil || err != nil {
				t.Fatalf("startTracing = %v, %v; want no tracing and no error", tr, err)
			}
			if len(said) != 1 || !strings.Contains(said[0], "traces") || !strings.Contains(said[0], tt.want) {
				t.Errorf("said %q; want one line about traces with %q", said, tt.want)
			}
		})
	}
}

// TestDegradedTrace: among the traces of every service, the demo names
// one with a span tagged sidecar.degraded=true.
func TestDegradedTrace(t *testing.T) {
	j := jaegertest.Start(t)
	tr := &tracing{query: j.Query}
	const (
		plain    = "11111111111111111111111111111111"
		degraded = "22222222222222222222222222222222"
		other    = "33333333333333333333333333333333"
	)
	// Given a plain trace of the researcher, a degraded one of the indexer
	// and one of a writer
	sendSpan(t, j.OTLPEndpoint, "researcher", plain, "call researcher", false)
	sendSpan(t, j.OTLPEndpoint, "indexer", other, "llm gpt-4o-mini", true)
	sendSpan(t, j.OTLPEndpoint, "writer", degraded, "llm gpt-4o", true)
	for _, id := range []string{plain, other, degraded} {
		j.WaitTrace(t, id, 1, 10*time.Second)
	}

	// When the demo looks for a degraded trace, then it finds the writer's
	services, err := j.Query.Services(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id, service := tr.degradedTrace(context.Background(), services)
	if id != degraded || service != "writer" {
		t.Errorf("degradedTrace() = %q, %q; want %q, writer", id, service, degraded)
	}
	var said []string
	tr.report(context.Background(), func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) })
	if out := strings.Join(said, "\n"); !strings.Contains(out, degraded) || !strings.Contains(out, j.QueryURL+"/trace/"+degraded) {
		t.Errorf("report said:\n%s\nwant the degraded trace's id and its page", out)
	}
}

// sendSpan sends one root span over OTLP/HTTP in its JSON encoding.
func sendSpan(t *testing.T, endpoint, service, traceID, name string, degraded bool) {
	t.Helper()
	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},
"scopeSpans":[{"spans":[{"traceId":%q,"spanId":"0123456789abcdef","name":%q,"kind":2,
"startTimeUnixNano":"%d","endTimeUnixNano":"%d",
"attributes":[{"key":"sidecar.degraded","value":{"boolValue":%t}}]}]}]}]}`, service, traceID, name, now-int64(time.Millisecond), now, degraded)
	resp, err := http.Post(endpoint+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %s", resp.Status)
	}
}
