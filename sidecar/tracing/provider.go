package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/policies"
)

// ScopeName is the instrumentation scope of every span the sidecar starts.
const ScopeName = "github.com/agent-sidecar/sidecar"

// AttrAgentID is the resource attribute (and span attribute) naming the
// agent's Consul service id.
const AttrAgentID = "sidecar.agent.id"

// Options is what a Provider is built from.
type Options struct {
	// Config is the tracing block, resolved (policies.Config.Tracing).
	Config policies.Tracing
	// ServiceName is the agent's service (agent.name): service.name unless
	// tracing.service_name or OTEL_SERVICE_NAME says otherwise.
	ServiceName string
	// AgentID is the agent's Consul service id: service.instance.id and
	// sidecar.agent.id.
	AgentID string
	// HostName is host.name (the Consul node name when known); "" takes
	// the machine's host name.
	HostName string
	// Log receives the exporter's errors (a collector that cannot be
	// reached) and a partial resource. Default: none.
	Log hclog.Logger
	// Exporter replaces the OTLP exporter (tests).
	Exporter sdktrace.SpanExporter
}

// Provider is the sidecar's tracer provider: an OTLP exporter behind a
// batch span processor. A nil *Provider is tracing turned off; its
// methods are safe to call.
type Provider struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	// Endpoint is the collector's host:port, Protocol the OTLP protocol
	// and Sampler the sampler, for the line logged at start (no headers).
	Endpoint, Protocol, Sampler string
}

// New builds the provider the configuration asks for; nil, nil when
// tracing is off (Config.Enabled false).
func New(ctx context.Context, o Options) (*Provider, error) {
	c := o.Config
	if !c.Enabled {
		return nil, nil
	}
	protocol := c.Protocol
	if protocol == "" {
		protocol = policies.TracingHTTP
	}
	exp := o.Exporter
	if exp == nil {
		var err error
		if exp, err = newExporter(ctx, c, protocol); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	res, err := newResource(ctx, o)
	if err != nil {
		if res == nil {
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
		if o.Log != nil {
			o.Log.Warn("tracing resource is partial", "error", err)
		}
	}
	if o.Log != nil {
		setErrorHandler(o.Log)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if s := sampler(c); s != nil {
		opts = append(opts, sdktrace.WithSampler(s))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Provider{
		tp:       tp,
		tracer:   tp.Tracer(ScopeName, trace.WithInstrumentationVersion(version.Version)),
		Endpoint: endpointHost(c.Endpoint, protocol),
		Protocol: protocol,
		Sampler:  samplerName(c),
	}, nil
}

// Tracer is the tracer of the sidecar's spans; nil (tracing off) for a
// nil Provider.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return nil
	}
	return p.tracer
}

// Shutdown exports the spans still buffered and stops the exporter,
// giving up when ctx ends. Safe on a nil Provider and more than once.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// newExporter is the OTLP exporter of protocol. What the block leaves
// unset (endpoint, headers) the exporter reads from its OTEL_EXPORTER_OTLP_*
// variables.
func newExporter(ctx context.Context, c policies.Tracing, protocol string) (sdktrace.SpanExporter, error) {
	if c.Endpoint == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		// The specification's default, plaintext to a local collector (the
		// Go exporters alone would use TLS).
		c.Endpoint = "http://" + defaultEndpoint(protocol)
	}
	switch protocol {
	case policies.TracingGRPC:
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	case policies.TracingHTTP:
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			u, err := url.Parse(c.Endpoint)
			if err != nil {
				return nil, errors.New("the endpoint is not a URL")
			}
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("protocol %q is not supported: use %q or %q", protocol, policies.TracingHTTP, policies.TracingGRPC)
}

// newResource describes the sidecar: service.name (the agent's service),
// service.instance.id and sidecar.agent.id (the agent id), host.name,
// service.version; then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME;
// then tracing.service_name. A later source wins.
func newResource(ctx context.Context, o Options) (*resource.Resource, error) {
	host := o.HostName
	if host == "" {
		host, _ = os.Hostname()
	}
	attrs := []attribute.KeyValue{
		semconv.ServiceInstanceID(o.AgentID),
		semconv.ServiceVersion(version.Version),
		attribute.String(AttrAgentID, o.AgentID),
	}
	if o.ServiceName != "" {
		attrs = append(attrs, semconv.ServiceName(o.ServiceName))
	}
	if host != "" {
		attrs = append(attrs, semconv.HostName(host))
	}
	opts := []resource.Option{resource.WithTelemetrySDK(), resource.WithAttributes(attrs...), resource.WithFromEnv()}
	if o.Config.ServiceName != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceName(o.Config.ServiceName)))
	}
	return resource.New(ctx, opts...)
}

// sampler is the sampler the block names; nil lets the SDK read
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func sampler(c policies.Tracing) sdktrace.Sampler {
	switch c.Sampler {
	case policies.SamplerAlwaysOn:
		return sdktrace.AlwaysSample()
	case policies.SamplerAlwaysOff:
		return sdktrace.NeverSample()
	case policies.SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(c.SampleRatio)
	case policies.SamplerParentBasedAlwaysOn:
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	case policies.SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case policies.SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))
	}
	return nil
}

// samplerName describes the sampler in use, e.g.
// "parentbased_traceidratio 0.1", for the log line at start.
func samplerName(c policies.Tracing) string {
	name, ratio := c.Sampler, strconv.FormatFloat(c.SampleRatio, 'g', -1, 64)
	if name == "" {
		name, ratio = strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")), strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
		if name == "" {
			name = policies.SamplerParentBasedAlwaysOn
		}
		if ratio == "" {
			ratio = "1"
		}
	}
	if policies.IsRatioSampler(name) {
		return name + " " + ratio
	}
	return name
}

// endpointHost is the host:port spans are exported to: the block's
// endpoint, else the exporter's variables, else its default. Only the host
// is shown: a path or query may carry a secret.
func endpointHost(endpoint, protocol string) string {
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	}
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" {
		return defaultEndpoint(protocol)
	}
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	// A gRPC endpoint may be written host:port, without a scheme.
	host, _, _ := strings.Cut(endpoint, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	return host
}

// defaultEndpoint is the collector's address when nothing names one.
func defaultEndpoint(protocol string) string {
	if protocol == policies.TracingGRPC {
		return "localhost:4317"
	}
	return "localhost:4318"
}

var errorHandlerOnce sync.Once

// setErrorHandler sends the OpenTelemetry SDK's errors (an export that
// failed) to log rather than to the standard logger. The handler is
// global: the first sidecar of the process sets it.
func setErrorHandler(log hclog.Logger) {
	errorHandlerOnce.Do(func() {
		log = log.Named("tracing")
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing export failed", "error", err)
		}))
	})
}
