package sidecarclient

import (
	"context"
	"net/http"
	"strings"
)

// traceNames are the W3C headers of a task's trace context.
var traceNames = []string{"Traceparent", "Tracestate", "Baggage"}

const maxTraceHeader = 8 << 10

type traceKey struct{}

// WithTraceHeaders returns a context carrying the W3C trace context
// (traceparent, tracestate, baggage) of header, the headers of the task
// being handled: Call and Chat with that context send them on, so the
// task's trace goes on through the sidecar to the upstream or model.
func WithTraceHeaders(ctx context.Context, header http.Header) context.Context {
	kept := http.Header{}
	for _, name := range traceNames {
		v := strings.Join(header.Values(name), ",")
		if v != "" && len(v) <= maxTraceHeader && !strings.ContainsAny(v, "\r\n") {
			kept.Set(name, v)
		}
	}
	return context.WithValue(ctx, traceKey{}, kept)
}

// TraceHeaders returns the trace headers WithTraceHeaders put in ctx (none
// when it did not), for requests made with another client.
func TraceHeaders(ctx context.Context) http.Header {
	h, _ := ctx.Value(traceKey{}).(http.Header)
	return h.Clone()
}
