package policies

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestTracingSettingsFromTheFilesAndTheEnvironment(t *testing.T) {
	const agent = `agent { name = "writer" }
`
	for _, tc := range []struct {
		name  string
		block string
		env   map[string]string
		want  Tracing
	}{
		{"off by default", "", nil, Tracing{Protocol: TracingHTTP}},
		{"on with OTEL_TRACES_EXPORTER=otlp and no block", "",
			map[string]string{envOTelTracesExporter: "console, otlp"}, Tracing{Enabled: true, Protocol: TracingHTTP}},
		{"a block without enabled follows OTEL_TRACES_EXPORTER", `tracing { service_name = "w" }`,
			map[string]string{envOTelTracesExporter: "otlp"}, Tracing{Enabled: true, Protocol: TracingHTTP, ServiceName: "w"}},
		{"enabled = false wins over OTEL_TRACES_EXPORTER", `tracing { enabled = false }`,
			map[string]string{envOTelTracesExporter: "otlp"}, Tracing{Protocol: TracingHTTP}},
		{"OTEL_SDK_DISABLED wins over enabled = true", `tracing { enabled = true }`,
			map[string]string{envOTelSDKDisabled: "TRUE"}, Tracing{Protocol: TracingHTTP}},
		{"the traces protocol variable wins over the general one", `tracing { enabled = true }`,
			map[string]string{envOTelProtocol: "http/protobuf", envOTelTracesProtocol: "grpc"},
			Tracing{Enabled: true, Protocol: TracingGRPC}},
		{"the file's protocol wins over the variables", `tracing {
  enabled  = true
  protocol = "http/protobuf"
}`, map[string]string{envOTelProtocol: "grpc", envOTelTracesProtocol: "grpc"}, Tracing{Enabled: true, Protocol: TracingHTTP}},
		{"sample_ratio alone samples by ratio, following the parent", `tracing {
  enabled      = true
  sample_ratio = 0.1
}`, nil, Tracing{Enabled: true, Protocol: TracingHTTP, Sampler: SamplerParentBasedTraceIDRatio, SampleRatio: 0.1}},
		{"sample_ratio keeps the ratio sampler OTEL_TRACES_SAMPLER names", `tracing {
  enabled      = true
  sample_ratio = 0.1
}`, map[string]string{envOTelTracesSampler: "traceidratio", envOTelTracesSamplerAr: "0.9"},
			Tracing{Enabled: true, Protocol: TracingHTTP, Sampler: SamplerTraceIDRatio, SampleRatio: 0.1}},
		{"a ratio sampler without sample_ratio takes OTEL_TRACES_SAMPLER_ARG", `tracing {
  enabled = true
  sampler = "traceidratio"
}`, map[string]string{envOTelTracesSamplerAr: "0.25"}, Tracing{Enabled: true, Protocol: TracingHTTP, Sampler: SamplerTraceIDRatio, SampleRatio: 0.25}},
		{"a ratio sampler without any ratio keeps every trace", `tracing {
  enabled = true
  sampler = "parentbased_traceidratio"
}`, map[string]string{envOTelTracesSamplerAr: "2"}, Tracing{Enabled: true, Protocol: TracingHTTP, Sampler: SamplerParentBasedTraceIDRatio, SampleRatio: 1}},
		{"every key", `tracing {
  enabled      = true
  endpoint     = "https://otel.example.com:4318/custom/traces"
  protocol     = "http/protobuf"
  sampler      = "always_on"
  headers      = { "x-honeycomb-team" = "key" }
  service_name = "writer-svc"
}`, nil, Tracing{Enabled: true, Endpoint: "https://otel.example.com:4318/custom/traces", Protocol: TracingHTTP,
			Sampler: SamplerAlwaysOn, Headers: map[string]string{"x-honeycomb-team": "key"}, ServiceName: "writer-svc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(writeFile(t, "sidecar.hcl", agent+tc.block))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(cfg.Tracing)
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestTracingErrors(t *testing.T) {
	for _, tc := range []struct {
		name, block string
		env         map[string]string
		key, want   string
		line        int
	}{
		{"protocol", `  protocol = "http"`, nil, "tracing.protocol", `must be "http/protobuf" or "grpc", got "http"`, 3},
		{"http/json", `  protocol = "http/json"`, nil, "tracing.protocol", `"http/json" is not supported`, 3},
		{"protocol from the environment", ``, map[string]string{envOTelTracesProtocol: "thrift"},
			"tracing.protocol", `got "thrift" (the value comes from the OTEL_EXPORTER_OTLP_TRACES_PROTOCOL environment variable)`, 0},
		{"sampler", `  sampler = "sometimes"`, nil, "tracing.sampler", `must be one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, got "sometimes"`, 3},
		{"ratio above 1", `  sample_ratio = 1.5`, nil, "tracing.sample_ratio", "must be between 0 and 1", 3},
		{"ratio with a sampler that takes none", "  sampler = \"always_on\"\n  sample_ratio = 0.5", nil,
			"tracing.sample_ratio", `applies only to the samplers traceidratio and parentbased_traceidratio, not "always_on"`, 4},
		{"endpoint without a scheme", `  endpoint = "collector:4318"`, nil, "tracing.endpoint", "must be an absolute http or https URL", 3},
		{"endpoint with credentials", `  endpoint = "https://user:pw-secret@collector:4318"`, nil, "tracing.endpoint", "user information is not supported", 3},
		{"endpoint with a query", `  endpoint = "https://collector:4318/v1/traces?key=q-secret"`, nil, "tracing.endpoint", "a query or fragment is not supported", 3},
		{"gRPC endpoint with a path", "  protocol = \"grpc\"\n  endpoint = \"http://collector:4317/v1/traces\"", nil,
			"tracing.endpoint", "a gRPC endpoint has no path", 4},
		{"header value", `  headers = { "authorization" = "Bearer h-secret\n" }`, nil, "tracing.headers",
			`the value of header "authorization" contains a line break`, 3},
		{"header name", `  headers = { "bad header" = "h-secret" }`, nil, "tracing.headers", `"bad header" is not a valid HTTP header name`, 3},
		{"service name", `  service_name = " "`, nil, "tracing.service_name", "must not be empty", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConsulEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load(writeFile(t, "sidecar.hcl", "agent { name = \"writer\" }\ntracing {\n  enabled = true\n"+tc.block+"\n}\n"))
			var diags Diagnostics
			if !errors.As(err, &diags) {
				t.Fatalf("got error %v, want Diagnostics", err)
			}
			if len(diags) != 1 || diags[0].Key != tc.key || !strings.Contains(diags[0].Message, tc.want) {
				t.Fatalf("got %v, want one error at %s saying %s", diags, tc.key, tc.want)
			}
			if tc.line > 0 && diags[0].Line != tc.line+1 {
				t.Errorf("line %d, want %d", diags[0].Line, tc.line+1)
			}
			if strings.Contains(diags.Error(), "secret") {
				t.Errorf("the error shows a secret: %v", diags)
			}
		})
	}
}

func TestTracingProtocolFromTheEnvironmentIsNotCheckedWhenOff(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv(envOTelTracesProtocol, "thrift")
	if _, err := Load(writeFile(t, "sidecar.hcl", `agent { name = "writer" }`)); err != nil {
		t.Fatalf("a variable for another program stopped the sidecar: %v", err)
	}
}

func TestTracingSummaryRedactsHeaders(t *testing.T) {
	clearConsulEnv(t)
	cfg, err := Load(writeFile(t, "sidecar.hcl", `agent { name = "writer" }
tracing {
  enabled  = true
  endpoint = "https://collector.example.com:4318"
  headers  = { "x-honeycomb-team" = "hc-secret-key" }
}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(cfg.Summary()["tracing"])
	want := `{"enabled":true,"endpoint":"https://collector.example.com:4318","headers":{"x-honeycomb-team":"\u003credacted\u003e"},` +
		`"protocol":"http/protobuf","sampler":"","service_name":""}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}
