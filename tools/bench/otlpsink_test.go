package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestSinkCountsSpans sends spans to the sink with the OTLP/HTTP exporter
// the sidecar uses, plain and gzipped, and a body that is not an export.
func TestSinkCountsSpans(t *testing.T) {
	sink, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()

	for _, tc := range []struct {
		name        string
		compression otlptracehttp.Compression
		spans       int
	}{
		{"plain", otlptracehttp.NoCompression, 3},
		{"gzip", otlptracehttp.GzipCompression, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := sink.stats()
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL("http://"+sink.addr+"/v1/traces"),
				otlptracehttp.WithCompression(tc.compression))
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
			for range tc.spans {
				_, span := tp.Tracer("bench").Start(context.Background(), "call up")
				span.End()
			}
			// Shutdown exports what is buffered and returns the export's error.
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Fatalf("export to the sink: %v", err)
			}
			got := sink.stats()
			if n := got.Spans - before.Spans; n != int64(tc.spans) {
				t.Errorf("spans counted = %d, want %d", n, tc.spans)
			}
			if got.Exports-before.Exports != 1 || got.Bytes <= before.Bytes {
				t.Errorf("exports %d → %d, bytes %d → %d: want one export with a body", before.Exports, got.Exports,
					before.Bytes, got.Bytes)
			}
		})
	}

	resp, err := http.Post("http://"+sink.addr+"/v1/traces", "application/x-protobuf", strings.NewReader("not protobuf \xff"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || sink.stats().Rejected != 1 {
		t.Errorf("a body that is not an export: %s, %d rejected; want 400 and 1", resp.Status, sink.stats().Rejected)
	}
}
