package jaegertest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestSpansRoundTrip sends a parent and a child span with the OpenTelemetry
// SDK over OTLP/HTTP, as the sidecar does, and reads the tree back from
// Jaeger's query API: names, parent, kinds, attributes of every type,
// status, events, resource and timing.
func TestSpansRoundTrip(t *testing.T) {
	j := Start(t)

	// Given an SDK tracer provider exporting to Jaeger
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(j.OTLPEndpoint+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "jaegertest-writer"),
		attribute.String("service.instance.id", "writer-1"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	defer tp.Shutdown(ctx)
	tracer := tp.Tracer("github.com/agent-sidecar/sidecar")

	// When it records a server span with a client span as its child
	start := time.Now()
	ctx, server := tracer.Start(ctx, "llm gpt-4o", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Bool("sidecar.degraded", true), attribute.Int("sidecar.attempts", 2)))
	_, attempt := tracer.Start(ctx, "chat gpt-4o-mini", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("gen_ai.request.model", "gpt-4o-mini"),
			attribute.Float64("sidecar.time_to_first_token_ms", 12.5),
			attribute.StringSlice("gen_ai.response.finish_reasons", []string{"stop"})))
	attempt.AddEvent("first_token", trace.WithAttributes(attribute.Int("sidecar.attempt", 2)))
	attempt.End()
	server.SetStatus(codes.Error, "gpt-4o: 503 from upstream")
	server.End()
	traceID := server.SpanContext().TraceID().String()

	// Then Jaeger has both, the attempt under the server span
	tr := j.WaitTrace(t, traceID, 2, 10*time.Second)
	if len(tr.Spans) != 2 || tr.ID != traceID {
		t.Fatalf("trace %s: %d spans, want 2:\n%s", tr.ID, len(tr.Spans), tr.Tree())
	}
	roots := tr.Roots()
	if len(roots) != 1 || roots[0].Name != "llm gpt-4o" {
		t.Fatalf("roots = %v, want the server span alone:\n%s", roots, tr.Tree())
	}
	root := roots[0]
	kids := tr.Children(root)
	if len(kids) != 1 || kids[0].Name != "chat gpt-4o-mini" {
		t.Fatalf("children of the server span = %v, want the attempt:\n%s", kids, tr.Tree())
	}
	child := kids[0]
	if root.SpanID != server.SpanContext().SpanID().String() || child.ParentID != root.SpanID {
		t.Errorf("ids: root %s (sent %s), child's parent %s", root.SpanID, server.SpanContext().SpanID(), child.ParentID)
	}
	if want := "llm gpt-4o (jaegertest-writer)\n  chat gpt-4o-mini (jaegertest-writer)"; tr.Tree() != want {
		t.Errorf("Tree() =\n%s\nwant\n%s", tr.Tree(), want)
	}

	// with their attributes as Go values of the types sent
	for _, c := range []struct {
		span Span
		key  string
		want any
	}{
		{root, "span.kind", "server"},
		{root, "sidecar.degraded", true},
		{root, "sidecar.attempts", int64(2)},
		{root, "otel.status_code", "ERROR"},
		{root, "otel.status_description", "gpt-4o: 503 from upstream"},
		{root, "otel.scope.name", "github.com/agent-sidecar/sidecar"},
		{child, "span.kind", "client"},
		{child, "gen_ai.request.model", "gpt-4o-mini"},
		{child, "sidecar.time_to_first_token_ms", 12.5},
		{child, "gen_ai.response.finish_reasons", `["stop"]`},
	} {
		if got := c.span.Tags[c.key]; got != c.want {
			t.Errorf("%s: tag %s = %#v, want %#v", c.span.Name, c.key, got, c.want)
		}
	}
	// the resource, the event and the timing
	if root.Service != "jaegertest-writer" || root.Resource["service.instance.id"] != "writer-1" {
		t.Errorf("service %q, resource %v", root.Service, root.Resource)
	}
	if len(child.Events) != 1 || child.Events[0].Name != "first_token" || child.Events[0].Attrs["sidecar.attempt"] != int64(2) {
		t.Errorf("child's events = %+v, want first_token with sidecar.attempt=2", child.Events)
	}
	if d := root.Start.Sub(start); d < -time.Second || d > 5*time.Second || root.Duration < child.Duration {
		t.Errorf("root starts %s after the test's clock, lasts %s; child lasts %s", d, root.Duration, child.Duration)
	}

	// and a search by tag finds the trace, as the demo looks for a degraded one
	found, err := j.Query.Find(context.Background(), Search{Service: "jaegertest-writer",
		Tags: map[string]string{"sidecar.degraded": "true"}})
	if err != nil || len(found) != 1 || found[0].ID != traceID {
		t.Errorf("Find(sidecar.degraded=true) = %d traces, %v; want trace %s", len(found), err, traceID)
	}
	none, err := j.Query.Find(context.Background(), Search{Service: "jaegertest-writer",
		Tags: map[string]string{"sidecar.degraded": "false"}})
	if err != nil || len(none) != 0 {
		t.Errorf("Find(sidecar.degraded=false) = %d traces, %v; want none", len(none), err)
	}
}

func TestUnknownTraceIsEmpty(t *testing.T) {
	j := Start(t)
	const id = "0123456789abcdef0123456789abcdef"
	if tr := j.Trace(t, id); len(tr.Spans) != 0 {
		t.Errorf("Trace(%s) = %d spans, want none", id, len(tr.Spans))
	}
}

func TestUIServed(t *testing.T) {
	// Given a Jaeger with the built UI assets, when there are some
	assets := UIAssets()
	if assets == "" {
		t.Skip("no jaeger-ui assets in the cache (see docs/development.md)")
	}
	j := Start(t)

	// When the UI's page is asked for
	resp, err := http.Get(j.QueryURL + "/search")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))

	// Then it is the UI's page, not the placeholder of a build without it
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<div id="jaeger-ui-root">`) {
		t.Errorf("GET /search: %s, body starts %.300q", resp.Status, body)
	}
}
