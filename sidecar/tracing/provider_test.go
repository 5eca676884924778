package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/policies"
)

// clearOTelEnv unsets the variables the SDK and its exporters read, so the
// machine's environment does not leak into a test.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, env := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_INSECURE"} {
		t.Setenv(env, "")
	}
}

func TestOffIsNil(t *testing.T) {
	p, err := New(context.Background(), Options{Config: policies.Tracing{Endpoint: "http://127.0.0.1:1"}})
	if p != nil || err != nil {
		t.Fatalf("New = %v, %v; want nil, nil", p, err)
	}
	if p.Tracer() != nil || p.Shutdown(context.Background()) != nil {
		t.Fatal("a nil provider must have a nil tracer and shut down without error")
	}
}

// export starts and ends one span through a provider built from o, shuts
// it down (flushing), and returns the exported spans.
func export(t *testing.T, o Options) tracetest.SpanStubs {
	t.Helper()
	mem := tracetest.NewInMemoryExporter()
	o.Exporter = mem
	p, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer().Start(context.Background(), "call writer")
	span.End()
	// The in-memory exporter forgets its spans when shut down: flush first.
	if err := p.tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := mem.GetSpans()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return spans
}

func resourceOf(spans tracetest.SpanStubs) map[string]string {
	out := map[string]string{}
	if len(spans) == 0 {
		return out
	}
	for _, kv := range spans[0].Resource.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

func TestResource(t *testing.T) {
	base := Options{Config: policies.Tracing{Enabled: true}, ServiceName: "writer", AgentID: "writer-1", HostName: "node-7"}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		serviceName string // tracing.service_name
		want        map[string]string
	}{
		{"the agent's", nil, "", map[string]string{"service.name": "writer", "service.instance.id": "writer-1",
			"host.name": "node-7", "service.version": version.Version, "sidecar.agent.id": "writer-1"}},
		{"OTEL_RESOURCE_ATTRIBUTES added, OTEL_SERVICE_NAME wins over the agent's",
			map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod", "OTEL_SERVICE_NAME": "writer-env"}, "",
			map[string]string{"service.name": "writer-env", "deployment.environment.name": "prod", "sidecar.agent.id": "writer-1"}},
		{"service_name wins over OTEL_SERVICE_NAME", map[string]string{"OTEL_SERVICE_NAME": "writer-env"}, "writer-hcl",
			map[string]string{"service.name": "writer-hcl", "service.instance.id": "writer-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			o := base
			o.Config.ServiceName = tc.serviceName
			spans := export(t, o)
			if len(spans) != 1 {
				t.Fatalf("%d spans exported, want 1", len(spans))
			}
			if got := spans[0].InstrumentationScope.Name; got != ScopeName {
				t.Errorf("scope %q, want %q", got, ScopeName)
			}
			got := resourceOf(spans)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("resource %s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestSampler(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sampler string
		env     string // OTEL_TRACES_SAMPLER
		want    int
	}{
		{"default keeps every root span", "", "", 1},
		{"OTEL_TRACES_SAMPLER when the block names none", "", "always_off", 0},
		{"the block's sampler wins", "always_on", "always_off", 1},
		{"the block's sampler", "parentbased_always_off", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_TRACES_SAMPLER", tc.env)
			spans := export(t, Options{Config: policies.Tracing{Enabled: true, Sampler: tc.sampler}, ServiceName: "writer"})
			if len(spans) != tc.want {
				t.Fatalf("%d spans exported, want %d", len(spans), tc.want)
			}
		})
	}
}

// collector is an OTLP/HTTP endpoint that decodes what it receives.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	headers  []http.Header
	requests []*collectortrace.ExportTraceServiceRequest
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &collectortrace.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			t.Errorf("collector: undecodable export: %v", err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.paths = append(c.paths, r.URL.Path)
		c.headers = append(c.headers, r.Header.Clone())
		c.requests = append(c.requests, req)
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// spans returns the names of the spans received, and the resource
// attributes of the first.
func (c *collector) spans() (names []string, res map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res = map[string]string{}
	for _, req := range c.requests {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.Key] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
	}
	return names, res
}

func TestSpansReachTheOTLPEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name       string
		block      func(hcl *collector) policies.Tracing
		env        func(hcl, env *collector) map[string]string
		wantHeader [2]string
		wantPath   string
	}{
		{"the block's endpoint and headers",
			func(hcl *collector) policies.Tracing {
				return policies.Tracing{Endpoint: hcl.URL, Headers: map[string]string{"X-Collector-Key": "hcl-key"}}
			},
			func(_, _ *collector) map[string]string { return nil },
			[2]string{"X-Collector-Key", "hcl-key"}, "/v1/traces"},
		{"the OTEL_* variables when the block sets nothing",
			func(*collector) policies.Tracing { return policies.Tracing{} },
			func(hcl, _ *collector) map[string]string {
				return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": hcl.URL + "/otlp", "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=env-key"}
			},
			[2]string{"X-Collector-Key", "env-key"}, "/otlp/v1/traces"},
		{"the block wins over the variables",
			func(hcl *collector) policies.Tracing {
				return policies.Tracing{Endpoint: hcl.URL + "/custom/traces", Headers: map[string]string{"X-Collector-Key": "hcl-key"}}
			},
			func(_, env *collector) map[string]string {
				return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": env.URL + "/v1/traces", "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=env-key"}
			},
			[2]string{"X-Collector-Key", "hcl-key"}, "/custom/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			hcl, env := newCollector(t), newCollector(t)
			for k, v := range tc.env(hcl, env) {
				t.Setenv(k, v)
			}
			cfg := tc.block(hcl)
			cfg.Enabled, cfg.Protocol = true, policies.TracingHTTP
			p, err := New(context.Background(), Options{Config: cfg, ServiceName: "writer", AgentID: "writer-1", HostName: "node-7"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Endpoint != hcl.Listener.Addr().String() || p.Protocol != "http/protobuf" {
				t.Errorf("described as %s over %s, want %s over http/protobuf", p.Endpoint, p.Protocol, hcl.Listener.Addr())
			}
			_, span := p.Tracer().Start(context.Background(), "call writer")
			span.SetAttributes(attribute.String("sidecar.upstream", "writer"))
			span.End()
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			names, res := hcl.spans()
			if len(names) != 1 || names[0] != "call writer" {
				t.Fatalf("the collector received %q, want [call writer]", names)
			}
			if res["service.name"] != "writer" || res["sidecar.agent.id"] != "writer-1" || res["host.name"] != "node-7" {
				t.Errorf("resource %v", res)
			}
			hcl.mu.Lock()
			if got := hcl.headers[0].Get(tc.wantHeader[0]); got != tc.wantHeader[1] {
				t.Errorf("header %s = %q, want %q", tc.wantHeader[0], got, tc.wantHeader[1])
			}
			if hcl.paths[0] != tc.wantPath {
				t.Errorf("path %q, want %q", hcl.paths[0], tc.wantPath)
			}
			hcl.mu.Unlock()
			if names, _ := env.spans(); len(names) != 0 {
				t.Errorf("the variables' endpoint received %q too", names)
			}
		})
	}
}

func TestEndpointHostShowsNoSecret(t *testing.T) {
	clearOTelEnv(t)
	for _, tc := range []struct{ endpoint, protocol, want string }{
		{"https://collector.example.com:4318/v1/traces", "http/protobuf", "collector.example.com:4318"},
		{"", "http/protobuf", "localhost:4318"},
		{"", "grpc", "localhost:4317"},
	} {
		if got := endpointHost(tc.endpoint, tc.protocol); got != tc.want {
			t.Errorf("endpointHost(%q, %s) = %q, want %q", tc.endpoint, tc.protocol, got, tc.want)
		}
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://user:pw-secret@collector:4317/path?key=q-secret")
	if got := endpointHost("", "grpc"); got != "collector:4317" {
		t.Errorf("from the variable: %q, want collector:4317", got)
	}
}
