package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// maxExportBytes bounds one export's body: the SDK's batches (512 spans
// at most) are far smaller.
const maxExportBytes = 16 << 20

// otlpSink stands in for an OpenTelemetry collector: it accepts OTLP/HTTP
// exports (POST /v1/traces, protobuf), counts the requests, the bytes and
// the spans they carry, and discards them. It runs inside the harness, so
// its CPU is not the traced sidecar's; it decodes each export, as a
// collector would, so that a run whose spans never arrived is caught.
type otlpSink struct {
	srv  *http.Server
	addr string
	done chan struct{}

	exports, sent, spans, rejected atomic.Int64
}

// SinkStats is what the sink received over the run.
type SinkStats struct {
	Exports  int64 `json:"exports"`  // POST /v1/traces answered 200
	Bytes    int64 `json:"bytes"`    // their bodies, as sent
	Spans    int64 `json:"spans"`    // spans in them
	Rejected int64 `json:"rejected"` // requests that were not a valid export
}

// startSink listens on a free loopback port and serves until close.
func startSink() (*otlpSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{addr: l.Addr().String(), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.export)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { defer close(s.done); _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *otlpSink) export(w http.ResponseWriter, r *http.Request) {
	body, n, err := readExport(r)
	if err != nil {
		s.rejected.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		s.rejected.Add(1)
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	var spans int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			spans += int64(len(ss.GetSpans()))
		}
	}
	s.exports.Add(1)
	s.sent.Add(n)
	s.spans.Add(spans)
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// readExport reads an export's body (gzip undone), bounded, and the
// number of bytes sent.
func readExport(r *http.Request) ([]byte, int64, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxExportBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(raw) > maxExportBytes {
		return nil, 0, errors.New("export too large")
	}
	if r.Header.Get("Content-Encoding") != "gzip" {
		return raw, int64(len(raw)), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(io.LimitReader(zr, maxExportBytes+1))
	if err != nil || len(body) > maxExportBytes {
		return nil, 0, errors.New("bad or too large gzip body")
	}
	return body, int64(len(raw)), nil
}

func (s *otlpSink) stats() SinkStats {
	return SinkStats{Exports: s.exports.Load(), Bytes: s.sent.Load(), Spans: s.spans.Load(), Rejected: s.rejected.Load()}
}

// close stops the sink and waits for it.
func (s *otlpSink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
