package policies

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Protocols of the OTLP trace exporter.
const (
	TracingHTTP = "http/protobuf" // OTLP over HTTP, protobuf bodies (port 4318)
	TracingGRPC = "grpc"          // OTLP over gRPC (port 4317)
)

// Samplers, named as OTEL_TRACES_SAMPLER names them.
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

var samplers = []string{SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio,
	SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio}

// IsRatioSampler reports whether sampler takes a ratio.
func IsRatioSampler(sampler string) bool {
	return sampler == SamplerTraceIDRatio || sampler == SamplerParentBasedTraceIDRatio
}

// The standard OpenTelemetry variables read here; the SDK and its
// exporters read the others (endpoint, headers, sampler, resource).
const (
	envOTelSDKDisabled     = "OTEL_SDK_DISABLED"
	envOTelTracesExporter  = "OTEL_TRACES_EXPORTER"
	envOTelProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envOTelTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envOTelTracesSampler   = "OTEL_TRACES_SAMPLER"
	envOTelTracesSamplerAr = "OTEL_TRACES_SAMPLER_ARG"
)

// tracingFile is the `tracing { ... }` block.
type tracingFile struct {
	Enabled     *bool             `mapstructure:"enabled"`
	Endpoint    *string           `mapstructure:"endpoint"`
	Protocol    *string           `mapstructure:"protocol"`
	Sampler     *string           `mapstructure:"sampler"`
	SampleRatio *float64          `mapstructure:"sample_ratio"`
	Headers     map[string]string `mapstructure:"headers" secret:"true"`
	ServiceName *string           `mapstructure:"service_name"`
}

// Tracing is how the sidecar exports OpenTelemetry traces. A setting the
// files leave unset is taken from the standard OTEL_* variables; "" (or
// nil) here means that the exporter and the SDK read their own variables
// (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _INSECURE,
// OTEL_TRACES_SAMPLER[_ARG], OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
type Tracing struct {
	// Enabled turns tracing on. Default: on when OTEL_TRACES_EXPORTER
	// names otlp, else off; OTEL_SDK_DISABLED=true turns it off whatever
	// the files say.
	Enabled bool
	// Endpoint is the collector's URL, http(s)://host:port; for
	// http/protobuf "/v1/traces" is the path when the URL has none.
	// Default: the OTEL_EXPORTER_OTLP_* variables, else
	// http://localhost:4318 (http/protobuf) or http://localhost:4317 (grpc).
	Endpoint string
	// Protocol is TracingHTTP or TracingGRPC. Default:
	// $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, $OTEL_EXPORTER_OTLP_PROTOCOL,
	// else TracingHTTP.
	Protocol string
	// Sampler is one of the Sampler* names; "" lets the SDK read
	// OTEL_TRACES_SAMPLER (default parentbased_always_on). Setting
	// sample_ratio alone picks parentbased_traceidratio, unless
	// OTEL_TRACES_SAMPLER names a ratio sampler.
	Sampler string
	// SampleRatio is the share of traces a ratio sampler keeps, 0 to 1:
	// sample_ratio, else $OTEL_TRACES_SAMPLER_ARG, else 1. Used only when
	// Sampler is a ratio sampler.
	SampleRatio float64
	// Headers are sent with every export (replacing
	// OTEL_EXPORTER_OTLP_HEADERS when set); values are secrets.
	Headers map[string]string
	// ServiceName is the resource's service.name. Default:
	// $OTEL_SERVICE_NAME, else agent.name.
	ServiceName string
}

// tracingDefaults resolves what the tracing block leaves to the
// environment and must be decided here: whether tracing is on, the
// protocol, and the sampler when only a ratio is given.
func tracingDefaults(fc *fileConfig, getenv func(string) string, fromEnv map[string]string) {
	setDefault(&fc.Tracing, tracingFile{})
	t := fc.Tracing
	if t.Enabled == nil {
		on := slices.Contains(splitList(getenv(envOTelTracesExporter)), "otlp")
		t.Enabled = &on
	}
	if strings.EqualFold(strings.TrimSpace(getenv(envOTelSDKDisabled)), "true") {
		t.Enabled = ptr(false)
	}
	if t.Protocol == nil {
		for _, env := range []string{envOTelTracesProtocol, envOTelProtocol} {
			if v := strings.TrimSpace(getenv(env)); v != "" {
				t.Protocol = ptr(v)
				fromEnv["tracing.protocol"] = env
				break
			}
		}
		setDefault(&t.Protocol, TracingHTTP)
	}
	if t.SampleRatio != nil && t.Sampler == nil {
		if s := strings.TrimSpace(getenv(envOTelTracesSampler)); IsRatioSampler(s) {
			t.Sampler = ptr(s)
		} else {
			t.Sampler = ptr(SamplerParentBasedTraceIDRatio)
		}
	}
	if t.Sampler != nil && IsRatioSampler(*t.Sampler) && t.SampleRatio == nil {
		ratio := 1.0
		if r, err := strconv.ParseFloat(strings.TrimSpace(getenv(envOTelTracesSamplerAr)), 64); err == nil && r >= 0 && r <= 1 {
			ratio = r
		}
		t.SampleRatio = &ratio
	}
}

// splitList splits a comma-separated variable into its trimmed elements.
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func resolveTracing(t *tracingFile) Tracing {
	return Tracing{
		Enabled:     deref(t.Enabled),
		Endpoint:    deref(t.Endpoint),
		Protocol:    deref(t.Protocol),
		Sampler:     deref(t.Sampler),
		SampleRatio: deref(t.SampleRatio),
		Headers:     t.Headers,
		ServiceName: deref(t.ServiceName),
	}
}

const exampleTracingEndpoint = "http://localhost:4318"

// tracing checks the tracing block. The protocol taken from the
// environment is checked only when tracing is on, so a variable meant for
// another program does not stop the sidecar.
func (v *validator) tracing(t *tracingFile) {
	if t.Protocol != nil && (deref(t.Enabled) || v.pos.written("tracing.protocol")) {
		switch *t.Protocol {
		case TracingHTTP, TracingGRPC:
		case "http/json":
			v.errorf("tracing.protocol", `"http/json" is not supported: use "http/protobuf" or "grpc"`)
		default:
			v.errorf("tracing.protocol", `must be "http/protobuf" or "grpc", got %q`, *t.Protocol)
		}
	}
	if t.Endpoint != nil {
		v.tracingEndpoint(*t.Endpoint, deref(t.Protocol))
	}
	if s := t.Sampler; s != nil && !slices.Contains(samplers, *s) {
		v.errorf("tracing.sampler", "must be one of %s, got %q", strings.Join(samplers, ", "), *s)
	}
	if r := t.SampleRatio; r != nil && v.pos.written("tracing.sample_ratio") {
		switch {
		case *r < 0 || *r > 1:
			v.errorf("tracing.sample_ratio", "must be between 0 and 1 (the share of traces kept), got %v", *r)
		case v.pos.written("tracing.sampler") && !IsRatioSampler(deref(t.Sampler)):
			v.errorf("tracing.sample_ratio", "applies only to the samplers %s and %s, not %q: remove it or change the sampler",
				SamplerTraceIDRatio, SamplerParentBasedTraceIDRatio, deref(t.Sampler))
		}
	}
	v.headers("tracing.headers", t.Headers)
	if n := t.ServiceName; n != nil && strings.TrimSpace(*n) == "" {
		v.errorf("tracing.service_name", "must not be empty: remove it to use $OTEL_SERVICE_NAME or agent.name")
	}
}

// tracingEndpoint checks the collector's URL: http or https, a host, no
// user information, query or fragment (secrets go in headers), and no
// path for gRPC.
func (v *validator) tracingEndpoint(s, protocol string) {
	const key = "tracing.endpoint"
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.errorf(key, "must be an absolute http or https URL of the collector, e.g. %q, got %q", exampleTracingEndpoint, redactURL(s))
	case u.User != nil:
		v.errorf(key, "user information is not supported: put credentials in tracing.headers")
	case u.RawQuery != "" || u.Fragment != "":
		v.errorf(key, "a query or fragment is not supported: put credentials in tracing.headers")
	case protocol == TracingGRPC && u.Path != "" && u.Path != "/":
		v.errorf(key, "a gRPC endpoint has no path: use scheme://host:port, e.g. %q", "http://localhost:4317")
	}
}

// summary is the tracing block for GET /v1/status: header values
// redacted, the endpoint without user information, query or fragment.
func (t Tracing) summary() map[string]any {
	out := map[string]any{
		"enabled":      t.Enabled,
		"endpoint":     redactURL(t.Endpoint),
		"protocol":     t.Protocol,
		"sampler":      t.Sampler,
		"headers":      redactValues(t.Headers),
		"service_name": t.ServiceName,
	}
	if IsRatioSampler(t.Sampler) {
		out["sample_ratio"] = t.SampleRatio
	}
	return out
}
