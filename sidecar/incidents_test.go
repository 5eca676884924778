package sidecar

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// keptSpans is an in-memory exporter that keeps its spans when the
// sidecar shuts it down (tracetest's forgets them).
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

func spanAttrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value
	}
	return out
}

func eventNames(s tracetest.SpanStub) []string {
	var out []string
	for _, e := range s.Events {
		out = append(out, e.Name)
	}
	return out
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %q", name, names)
	return tracetest.SpanStub{}
}

func TestIncidentSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	is := tracing.NewIncidents(tp.Tracer("test"), "writer-1")
	t0 := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	// Given a breaker that opens, probes, opens again, probes and closes
	for i, to := range []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Open, breaker.HalfOpen, breaker.Closed} {
		is.BreakerChanged(breaker.Change{Name: "checkout@10.0.0.1:80", To: to, Reason: "3 consecutive failures (last: 503)", At: at(i)})
	}
	// And an agent isolated, notified, restarted twice and recovered
	is.AgentChanged(health.Transition{Kind: health.Isolated, Reason: "missed_heartbeats", At: at(10)})
	is.Notified(2, at(10))
	is.Restarted(1, "isolated: missed_heartbeats", at(11))
	is.Restarted(2, "still isolated: missed_heartbeats", at(20))
	is.AgentChanged(health.Transition{Kind: health.Recovered, At: at(30)})

	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans ended, want 2", len(ended))
	}
	spans := tracetest.SpanStubsFromReadOnlySpans(ended)
	b := spanNamed(t, spans, "breaker open checkout@10.0.0.1:80")
	if b.SpanKind != trace.SpanKindInternal || b.Parent.IsValid() || !b.StartTime.Equal(at(0)) || !b.EndTime.Equal(at(4)) {
		t.Errorf("breaker span: kind %s, parent %v, %s → %s; want an internal root span from the opening to the close",
			b.SpanKind, b.Parent.IsValid(), b.StartTime, b.EndTime)
	}
	if got := eventNames(b); len(got) != 3 || got[0] != "half_open" || got[1] != "reopened" || got[2] != "half_open" {
		t.Errorf("breaker events %q, want [half_open reopened half_open]", got)
	}
	if a := spanAttrs(b); a["sidecar.breaker"].AsString() != "checkout@10.0.0.1:80" ||
		a["sidecar.breaker.reason"].AsString() != "3 consecutive failures (last: 503)" {
		t.Errorf("breaker attributes %v", a)
	}
	iso := spanNamed(t, spans, "agent isolated writer-1")
	if iso.Parent.IsValid() || !iso.StartTime.Equal(at(10)) || !iso.EndTime.Equal(at(30)) {
		t.Errorf("isolation span %s → %s, want from the isolation to the recovery", iso.StartTime, iso.EndTime)
	}
	if a := spanAttrs(iso); a["sidecar.agent.id"].AsString() != "writer-1" || a["sidecar.isolation.reason"].AsString() != "missed_heartbeats" {
		t.Errorf("isolation attributes %v", a)
	}
	if got := eventNames(iso); len(got) != 3 || got[0] != "notified" || got[1] != "restart" || got[2] != "restart" {
		t.Errorf("isolation events %q, want [notified restart restart]", got)
	}
	if n := iso.Events[2].Attributes; len(n) == 0 || n[0].Value.AsInt64() != 2 {
		t.Errorf("the second restart's attributes %v, want attempt 2", n)
	}

	// A breaker that goes away while open ends its span
	is.BreakerChanged(breaker.Change{Name: "gone", To: breaker.Open, At: at(35)})
	is.BreakersGone([]string{"gone", "never-opened"}, at(36))
	if ended := rec.Ended(); len(ended) != 3 || ended[2].Name() != "breaker open gone" || !ended[2].EndTime().Equal(at(36)) {
		t.Errorf("the span of a breaker that went away did not end when it went")
	}

	// A restart outside an isolation, and a half-open breaker never seen
	// open, add nothing
	is.Restarted(3, "exit status 1", at(40))
	is.BreakerChanged(breaker.Change{Name: "other", To: breaker.HalfOpen, At: at(40)})
	if len(rec.Started()) != 3 {
		t.Errorf("%d spans started, want 3", len(rec.Started()))
	}

	// Tracing off: nothing at all
	off := tracing.NewIncidents(nil, "writer-1")
	off.BreakerChanged(breaker.Change{Name: "x", To: breaker.Open})
	off.AgentChanged(health.Transition{Kind: health.Isolated})
	off.Notified(1, t0)
	off.Restarted(1, "", t0)
	off.Shutdown(t0)
	if off != nil {
		t.Fatal("incident spans without a tracer")
	}
}

// TestIncidentSpansOfARunningSidecar drives the sidecar itself: an
// operator opens and closes a breaker, the agent is isolated (a webhook
// notified) and recovers, then an open breaker and a second isolation are
// ended by the shutdown.
func TestIncidentSpansOfARunningSidecar(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	cfg := testConfig()
	cfg.Tracing = policies.Tracing{Enabled: true, Protocol: policies.TracingHTTP}
	cfg.Health = policies.Health{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 1, Grace: 50 * time.Millisecond,
		Notify: []string{"ops"}}
	cfg.Notify = map[string]policies.Notify{"ops": {Name: "ops", Webhook: hook.URL, Timeout: time.Second}}
	exp := keptSpans{tracetest.NewInMemoryExporter()}
	reg := newFakeRegistry()
	s, err := New(cfg, hclog.NewNullLogger(), Options{Registry: reg, TraceExporter: exp, Discovery: &sidecartest.Discovery{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e := sidecartest.NewExpect(t, "http://"+s.Addr())

	// Given two breakers that exist
	s.breakers.Ensure("checkout", sidecartest.Breaker(time.Minute))
	s.breakers.Ensure("payments", sidecartest.Breaker(time.Minute))
	// When an operator opens and closes one, and opens the other
	e.POST("/v1/breakers/checkout/open").Expect().Status(http.StatusOK)
	e.POST("/v1/breakers/checkout/close").Expect().Status(http.StatusOK)
	e.POST("/v1/breakers/payments/open").Expect().Status(http.StatusOK)
	// And the agent heartbeats, falls silent until isolated, recovers, and
	// falls silent again
	// (an isolation's span starts when the isolation is dispatched, just
	// after the tracker's state changes: wait for the span)
	isolationSpan := s.incidents.Isolated
	for range 2 {
		s.Beat(health.Heartbeat{})
		if isolationSpan() {
			t.Fatal("the isolation's span is still open after a heartbeat")
		}
		testutil.Eventually(t, "isolation span", 3*time.Second, isolationSpan)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	spans := exp.GetSpans()
	var closed, shutdown, isolations int
	for _, sp := range spans {
		a := spanAttrs(sp)
		byShutdown := a["sidecar.ended_by_shutdown"].AsBool()
		switch sp.Name {
		case "breaker open checkout":
			closed++
			if byShutdown {
				t.Errorf("the closed breaker's span says it was ended by the shutdown")
			}
		case "breaker open payments":
			shutdown++
			if !byShutdown {
				t.Errorf("the breaker open at shutdown: sidecar.ended_by_shutdown not set")
			}
		case "agent isolated writer-1":
			isolations++
			if got := eventNames(sp); len(got) != 1 || got[0] != "notified" {
				t.Errorf("isolation events %q, want [notified]", got)
			}
			if a["sidecar.isolation.reason"].AsString() != "missed_heartbeats" {
				t.Errorf("isolation reason %v", a["sidecar.isolation.reason"])
			}
			if isolations == 2 && !byShutdown {
				t.Errorf("the isolation open at shutdown: sidecar.ended_by_shutdown not set")
			}
		default:
			t.Errorf("unexpected span %q", sp.Name)
		}
		if got := sp.Resource.Attributes(); len(got) == 0 {
			t.Errorf("span %q without a resource", sp.Name)
		}
	}
	if closed != 1 || shutdown != 1 || isolations != 2 {
		t.Fatalf("spans: %d closed breaker, %d breaker ended by shutdown, %d isolations; want 1, 1, 2 (%d spans)",
			closed, shutdown, isolations, len(spans))
	}
}
