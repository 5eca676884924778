package sidecar

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
)

func TestDurationHistogramCarriesTheSampledTraceAsAnExemplar(t *testing.T) {
	cfg := testConfig()
	cfg.Tracing = policies.Tracing{Enabled: true, Protocol: policies.TracingHTTP}
	s, _, e := startSidecar(t, cfg, Options{TraceExporter: keptSpans{tracetest.NewInMemoryExporter()}})
	sampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{1},
		TraceFlags: trace.FlagsSampled})
	notSampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0x0a, 0xbc, 2}, SpanID: trace.SpanID{2}})

	// Given a call whose span is sampled and one whose span is not
	s.metrics.observe("upstream", "sampled", outcome.Success, 30*time.Millisecond, sampled)
	s.metrics.observe("upstream", "unsampled", outcome.Success, 30*time.Millisecond, notSampled)

	// When Prometheus scrapes in OpenMetrics, the sampled call's bucket
	// names its trace
	om := e.GET("/metrics").WithHeader("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8").
		Expect().Status(http.StatusOK)
	om.Header("Content-Type").HasPrefix("application/openmetrics-text")
	text := om.Body().Raw()
	bucket := regexp.MustCompile(`(?m)^sidecar_request_duration_seconds_bucket\{kind="upstream",target="sampled",le="0.05"\} 1 # \{trace_id="` +
		sampled.TraceID().String() + `"\} 0.03 \S+$`)
	if !bucket.MatchString(text) {
		t.Errorf("no exemplar with the trace id on the sampled call's bucket:\n%s", grepLines(text, "target=\"sampled\""))
	}
	if strings.Contains(text, notSampled.TraceID().String()) {
		t.Errorf("an unsampled trace left an exemplar")
	}
	// And a plain text scrape is what it was: no exemplar, no OpenMetrics
	plain := e.GET("/metrics").Expect().Status(http.StatusOK)
	plain.Header("Content-Type").HasPrefix("text/plain; version=0.0.4")
	if raw := plain.Body().Raw(); strings.Contains(raw, "trace_id") || strings.Contains(raw, "# EOF") ||
		!strings.Contains(raw, `sidecar_request_duration_seconds_bucket{kind="upstream",target="sampled",le="0.05"} 1`+"\n") {
		t.Errorf("the text format changed:\n%s", grepLines(raw, "target=\"sampled\""))
	}
}

func grepLines(text, substr string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestWithoutTracingMetricsStayInTheTextFormat(t *testing.T) {
	s, _, e := startSidecar(t, testConfig(), Options{})
	s.metrics.observe("upstream", "api", outcome.Success, 30*time.Millisecond, trace.SpanContext{})

	// When a scraper asks for OpenMetrics from a sidecar without tracing,
	// it gets the text format it got before exemplars existed
	resp := e.GET("/metrics").WithHeader("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8").
		Expect().Status(http.StatusOK)
	resp.Header("Content-Type").HasPrefix("text/plain; version=0.0.4")
	if raw := resp.Body().Raw(); !strings.Contains(raw, `sidecar_request_duration_seconds_bucket{kind="upstream",target="api",le="0.05"} 1`+"\n") {
		t.Errorf("the bucket is not in the text format:\n%s", grepLines(raw, "target=\"api\""))
	}
}
