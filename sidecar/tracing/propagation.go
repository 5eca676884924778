// Package tracing holds what the sidecar's OpenTelemetry traces share:
// the W3C propagator, reading a request's trace id for logs and error
// bodies, and (provider.go) the tracer provider built from the
// configuration and the OTEL_* variables.
package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Propagation is the propagator of W3C Trace Context (traceparent,
// tracestate) and Baggage: the caller's context is read with it and each
// attempt's is written into its outgoing request.
func Propagation() propagation.TextMapPropagator { return propagator }

// Inject writes the trace context of ctx into h in place of the one h
// carried. A valid tracestate of the caller is in ctx (a child span keeps
// it) and is written again; the propagator writes tracestate only when ctx
// has one, so h's own is removed first: one ctx did not take up (malformed,
// or beside a traceparent that was not valid) never travels beside the new
// traceparent.
func Inject(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// LogPairs returns kv, the key/value pairs of a log line about the
// request r, with "trace_id" added when r has one (see TraceID).
func LogPairs(r *http.Request, kv ...any) []any {
	if id := TraceID(r.Context(), r.Header); id != "" {
		kv = append(kv, "trace_id", id)
	}
	return kv
}

// TraceID is the trace id of the span in ctx or, when ctx has none
// (tracing is off), of the W3C traceparent header in h; "" when neither
// has a valid one. It is what log lines and error bodies about a request
// carry, so a user can paste it into the tracing UI.
func TraceID(ctx context.Context, h http.Header) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	if h == nil || h.Get("Traceparent") == "" {
		return ""
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
