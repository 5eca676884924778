package sidecar

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

func TestControlAPIErrorsCarryTheCallersTraceID(t *testing.T) {
	s, _, e := startSidecar(t, testConfig(), Options{})
	if s.tracing != nil || s.incidents != nil {
		t.Fatal("tracing is on without a tracing block or OTEL_TRACES_EXPORTER")
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	e.GET("/v1/nothing").WithHeader("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01").
		Expect().Status(http.StatusNotFound).JSON().Object().Value("error").Object().
		HasValue("type", errNotFound).HasValue("trace_id", traceID)
	e.POST("/v1/breakers/nope/open").WithHeader("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01").
		Expect().Status(http.StatusNotFound).JSON().Object().Value("error").Object().HasValue("trace_id", traceID)
	e.GET("/v1/nothing").Expect().Status(http.StatusNotFound).JSON().Object().Value("error").Object().
		NotContainsKey("trace_id")
}

func TestStartLogSaysTracingIsOnWithoutTheHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.Tracing = policies.Tracing{Enabled: true, Protocol: policies.TracingGRPC,
		Endpoint: "https://collector.example.com:4317", Sampler: policies.SamplerParentBasedTraceIDRatio, SampleRatio: 0.25,
		Headers: map[string]string{"x-api-key": "collector-key-secret"}}
	var out bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
	s, err := New(cfg, log, Options{Registry: newFakeRegistry(), TraceExporter: keptSpans{tracetest.NewInMemoryExporter()},
		Discovery: &sidecartest.Discovery{}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	var line string
	for l := range strings.SplitSeq(out.String(), "\n") {
		if strings.Contains(l, "tracing on") {
			line = l
		}
	}
	for _, want := range []string{"endpoint=collector.example.com:4317", "protocol=grpc", `sampler="parentbased_traceidratio 0.25"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the start line %q lacks %s", line, want)
		}
	}
	if strings.Contains(out.String(), "collector-key-secret") {
		t.Errorf("the log shows a header value:\n%s", out.String())
	}
}
