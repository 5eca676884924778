package tracing

import (
	"context"
	"net"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/agent-sidecar/sidecar/policies"
)

// grpcCollector is an OTLP/gRPC endpoint that keeps what it receives.
type grpcCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
	keys  []string // the x-collector-key metadata of each export
}

func (c *grpcCollector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, md.Get("x-collector-key")...)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.names = append(c.names, s.Name)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestSpansReachTheOTLPGRPCEndpoint(t *testing.T) {
	clearOTelEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &grpcCollector{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	p, err := New(context.Background(), Options{Config: policies.Tracing{Enabled: true, Protocol: policies.TracingGRPC,
		Endpoint: "http://" + ln.Addr().String(), Headers: map[string]string{"x-collector-key": "hcl-key"}}, ServiceName: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer().Start(context.Background(), "llm gpt-4o")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.names) != 1 || c.names[0] != "llm gpt-4o" || len(c.keys) != 1 || c.keys[0] != "hcl-key" {
		t.Fatalf("the collector received spans %q with keys %q, want [llm gpt-4o] with [hcl-key]", c.names, c.keys)
	}
}
