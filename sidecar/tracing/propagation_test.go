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
