package jaegertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/agent-sidecar/sidecar/internal/testbin"
)

// Version is the Jaeger version the project builds (scripts/jaeger.sh) and
// tests against.
const Version = "v1.76.0"

// Ports are the listeners of a Jaeger started with Config, all on 127.0.0.1.
type Ports struct {
	OTLPHTTP  int // OTLP over HTTP (/v1/traces)
	OTLPGRPC  int // OTLP over gRPC
	QueryHTTP int // the query API (/api/…) and the UI
	QueryGRPC int // the query service's gRPC API
}

// Config is a Jaeger v2 configuration (`jaeger --config FILE`): OTLP
// receivers, in-memory storage and the query service on the given ports,
// nothing else listening (no metrics endpoint, no remote sampling, no
// health check), no batching (a span is queryable as soon as it is
// received) and no traces of Jaeger's own. uiAssets, when not empty, is a
// directory of built jaeger-ui assets the query service serves as its UI;
// without it a Jaeger built from the module proxy serves a placeholder page.
func Config(p Ports, uiAssets string) string {
	addr := func(port int) string { return strconv.Quote("127.0.0.1:" + strconv.Itoa(port)) }
	ui := ""
	if uiAssets != "" {
		ui = "\n    ui:\n      assets_path: " + strconv.Quote(uiAssets)
	}
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: %s%s

receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
      grpc:
        endpoint: %s

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, addr(p.QueryHTTP), addr(p.QueryGRPC), ui, addr(p.OTLPHTTP), addr(p.OTLPGRPC))
}

// Program is Jaeger as the project builds it (`make jaeger`) and finds it.
var Program = testbin.Program{
	Name:       "Jaeger",
	Binary:     "jaeger",
	Version:    Version,
	EnvVar:     "JAEGER_BIN",
	MakeTarget: "jaeger",
	Fixture:    "jaegertest",
}

// FindBinary returns the Jaeger binary to run: $JAEGER_BIN, the one
// scripts/jaeger.sh caches, or jaeger on $PATH. It never builds one.
func FindBinary() (string, error) { return Program.Find() }

// UIAssets returns the directory of built jaeger-ui assets in the
// project's cache (…/agent-sidecar/jaeger-ui, holding index.html), or ""
// when there is none. $JAEGER_UI_ASSETS names another directory.
func UIAssets() string {
	var dirs []string
	if d := os.Getenv("JAEGER_UI_ASSETS"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, testbin.CachedPaths("jaeger-ui")...)
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "index.html")); err == nil && fi.Mode().IsRegular() {
			return d
		}
	}
	return ""
}
