package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/internal/jaegertest"
	"github.com/agent-sidecar/sidecar/tools/internal/proc"
)

// The ports Jaeger uses when they are free (its own defaults, so a reader
// finds the UI where Jaeger's documentation says); taken ones are replaced
// by free ports.
const (
	jaegerOTLPHTTP  = 4318
	jaegerOTLPGRPC  = 4317
	jaegerQueryHTTP = 16686
	jaegerQueryGRPC = 16685
)

// tracing is the demo's Jaeger, when one runs.
type tracing struct {
	query  *jaegertest.Client // its BaseURL is the UI's address, "http://127.0.0.1:16686"
	config string             // the extra sidecar configuration turning tracing on
	hasUI  bool               // built jaeger-ui assets are served
}

// startTracing starts Jaeger from o.jaegerBin and writes the sidecar
// configuration that sends every sidecar's traces to it. It returns nil,
// and says why in one line, when there is no Jaeger binary or
// DEMO_TRACING=0.
func startTracing(ctx context.Context, o options, ps *proc.Group, head, say func(string, ...any)) (*tracing, error) {
	if o.jaegerBin == "" {
		say("   traces: none; `make jaeger` builds Jaeger once (about 15 minutes), then make demo sends every sidecar's traces to it")
		return nil, nil
	}
	if os.Getenv("DEMO_TRACING") == "0" {
		say("   traces: off (DEMO_TRACING=0)")
		return nil, nil
	}
	p := jaegertest.Ports{
		OTLPHTTP:  portOr(jaegerOTLPHTTP),
		OTLPGRPC:  portOr(jaegerOTLPGRPC),
		QueryHTTP: portOr(jaegerQueryHTTP),
		QueryGRPC: portOr(jaegerQueryGRPC),
	}
	if p.OTLPHTTP == 0 || p.OTLPGRPC == 0 || p.QueryHTTP == 0 || p.QueryGRPC == 0 {
		return nil, errors.New("no free ports for Jaeger")
	}
	tr := &tracing{query: &jaegertest.Client{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", p.QueryHTTP)}}
	assets := jaegertest.UIAssets()
	tr.hasUI = assets != ""
	jcfg := filepath.Join(ps.Logs, "jaeger.yaml")
	if err := os.WriteFile(jcfg, []byte(jaegertest.Config(p, assets)), 0o644); err != nil {
		return nil, err
	}
	head("starting Jaeger (%s) for the sidecars' traces", o.jaegerBin)
	if err := startProc(ps, "jaeger", nil, o.jaegerBin, "--config", jcfg); err != nil {
		return nil, err
	}
	if err := ps.WaitUntil(ctx, 30*time.Second, "Jaeger answering", func() bool {
		return jaegertest.Ready(ctx, tr.query, p) == nil
	}); err != nil {
		return nil, err
	}
	say("   OTLP/HTTP http://127.0.0.1:%d; UI %s", p.OTLPHTTP, tr.uiNote())

	cfg := filepath.Join(ps.Logs, "tracing.hcl")
	block := fmt.Sprintf(`# Written by the demo: every sidecar sends its traces to the demo's Jaeger.
tracing {
  enabled  = true
  endpoint = "http://127.0.0.1:%d"
  protocol = "http/protobuf"
}
`, p.OTLPHTTP)
	if err := os.WriteFile(cfg, []byte(block), 0o644); err != nil {
		return nil, err
	}
	tr.config = cfg
	say("   every sidecar sends its traces there (a tracing block: %s)", cfg)
	return tr, nil
}

// uiNote is the UI's address, with a word when only its API is served.
func (tr *tracing) uiNote() string {
	if tr.hasUI {
		return tr.query.BaseURL + "/search"
	}
	return tr.query.BaseURL + " (API only: this Jaeger has no UI assets, see docs/development.md)"
}

// degradedTrace looks for a trace with a span tagged sidecar.degraded=true
// (a model call answered by a fallback) among services (those Jaeger has
// seen), the writers' first (they take the tasks), and returns its id and
// service ("" when there is none).
func (tr *tracing) degradedTrace(ctx context.Context, services []string) (id, service string) {
	services = slices.Clone(services)
	slices.SortStableFunc(services, func(a, b string) int {
		return cmp.Compare(b2i(a != "writer"), b2i(b != "writer"))
	})
	for _, s := range services {
		found, err := tr.query.Find(ctx, jaegertest.Search{Service: s,
			Tags: map[string]string{"sidecar.degraded": "true"}, Limit: 1})
		if err == nil && len(found) > 0 {
			return found[0].ID, s
		}
	}
	return "", ""
}

// report says where the demo's traces are and names a degraded task's.
func (tr *tracing) report(ctx context.Context, say func(string, ...any)) {
	services, _ := tr.query.Services(ctx)
	if len(services) == 0 {
		say("   Jaeger has no traces")
		return
	}
	say("   Jaeger has the traces of %s", strings.Join(services, ", "))
	if id, service := tr.degradedTrace(ctx, services); id != "" {
		say("   a degraded task (a model call answered by a fallback), service %s: trace %s", service, id)
		say("   %s/trace/%s", tr.query.BaseURL, id)
	} else {
		say("   no span tagged sidecar.degraded=true")
	}
}

// portOr returns port when it is free on 127.0.0.1, else a free port the
// kernel picks (0 when there is none).
func portOr(port int) int {
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:0"} {
		if l, err := net.Listen("tcp", addr); err == nil {
			p := l.Addr().(*net.TCPAddr).Port
			l.Close()
			return p
		}
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
