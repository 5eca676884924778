package tracing

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTraceIDComesFromTheSpanOrTheCallersHeader(t *testing.T) {
	const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
	span := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4}})
	withSpan := trace.ContextWithSpanContext(context.Background(), span)
	header := http.Header{"Traceparent": {"00-" + caller + "-00f067aa0ba902b7-01"}}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		h    http.Header
		want string
	}{
		{"the span wins", withSpan, header, span.TraceID().String()},
		{"the caller's header when there is no span", context.Background(), header, caller},
		{"neither", context.Background(), http.Header{}, ""},
		{"nil header", context.Background(), nil, ""},
		{"malformed header", context.Background(), http.Header{"Traceparent": {"00-xyz-00f067aa0ba902b7-01"}}, ""},
		{"all-zero trace id", context.Background(), http.Header{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TraceID(tc.ctx, tc.h); got != tc.want {
				t.Fatalf("TraceID = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInjectReplacesTheCallersTraceContext(t *testing.T) {
	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4}, TraceFlags: trace.FlagsSampled})
	h := http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":  {"vendor=caller"},
		"X-Other":     {"kept"},
	}
	Inject(trace.ContextWithSpanContext(context.Background(), span), h)
	want := "00-" + span.TraceID().String() + "-" + span.SpanID().String() + "-01"
	if got := h.Values("Traceparent"); len(got) != 1 || got[0] != want {
		t.Fatalf("traceparent %q, want [%s]", got, want)
	}
	if got := h.Values("Tracestate"); len(got) != 0 {
		t.Fatalf("the caller's tracestate stayed: %q", got)
	}
	if h.Get("X-Other") != "kept" {
		t.Fatalf("other headers changed: %v", h)
	}
}
