package sidecar

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// Trace headers are caller input like any other: with tracing on, a call
// whose traceparent is garbage, whose tracestate has far more members than
// W3C allows and whose baggage is near the header limit is answered as
// usual, and the upstream gets the
// attempt's own well-formed traceparent, never the caller's garbage.
func TestHostileTraceHeadersAreAnsweredAndNotTrusted(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(up.Close)
	cfg := testConfig()
	cfg.Tracing = policies.Tracing{Enabled: true, Protocol: policies.TracingHTTP}
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"search": {Name: "search", URL: up.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	exp := keptSpans{tracetest.NewInMemoryExporter()}
	_, _, e := startSidecar(t, cfg, Options{TraceExporter: exp})

	var members []string
	for i := range 2000 {
		members = append(members, fmt.Sprintf("v%d=%d", i, i))
	}
	for _, tc := range []struct{ name, traceparent, tracestate, baggage string }{
		{"garbage traceparent", "00-" + strings.Repeat("z", 32) + "-" + strings.Repeat("{", 16) + "-01", "", ""},
		{"oversized traceparent", "00-" + strings.Repeat("a", 20000), "", ""},
		{"2000 tracestate members", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", strings.Join(members, ","), ""},
		{"50 KB of baggage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", strings.Join(members, ",") + "," +
			"k=" + strings.Repeat("%", 30000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := e.GET("/call/search/q").WithHeader("Traceparent", tc.traceparent)
			if tc.tracestate != "" {
				req = req.WithHeader("Tracestate", tc.tracestate)
			}
			if tc.baggage != "" {
				req = req.WithHeader("Baggage", tc.baggage)
			}
			req.Expect().Status(http.StatusOK)

			mu.Lock()
			last := got[len(got)-1]
			mu.Unlock()
			tp := last.Get("Traceparent")
			if parts := strings.Split(tp, "-"); len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
				t.Fatalf("the upstream got traceparent %q, want the attempt's own", tp)
			}
			if tp == tc.traceparent {
				t.Fatalf("the upstream got the caller's traceparent unchanged")
			}
			if ts := last.Get("Tracestate"); strings.Count(ts, ",") >= 32 {
				t.Errorf("the upstream got a tracestate of %d members; W3C allows 32", strings.Count(ts, ",")+1)
			}
		})
	}
}
