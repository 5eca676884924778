package sidecar

import (
	"net/http"
	"testing"
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
