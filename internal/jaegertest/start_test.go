package jaegertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestStartFailureShowsJaegerOutput(t *testing.T) {
	// Given a "jaeger" that complains and exits at once
	bin := filepath.Join(t.TempDir(), "jaeger")
	script := "#!/bin/sh\necho 'Error: cannot start pipelines: listen tcp: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JAEGER_BIN", bin)

	// When a test starts it
	rec := &testutil.TBRecorder{TB: t}
	j := Start(rec)

	// Then the test fails with the tail of Jaeger's output in the message
	if j != nil {
		t.Fatalf("Start returned a Jaeger for a binary that exits")
	}
	for _, want := range []string{"failed after", "exited before it was ready", "address already in use"} {
		if !strings.Contains(rec.FatalMsg, want) {
			t.Errorf("failure message %q does not contain %q", rec.FatalMsg, want)
		}
	}
}

func TestUIAssets(t *testing.T) {
	dir := t.TempDir()
	built := filepath.Join(dir, "agent-sidecar", "jaeger-ui")
	if err := os.MkdirAll(built, 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("SIDECAR_CACHE_DIR", filepath.Join(dir, "agent-sidecar"))
	t.Setenv("JAEGER_UI_ASSETS", empty)

	// Given a cache directory without index.html: no assets
	if got := UIAssets(); got != "" {
		t.Errorf("UIAssets() = %q before index.html exists, want none", got)
	}
	// Given the built UI in the cache: that directory, even when
	// JAEGER_UI_ASSETS names one without an index.html
	if err := os.WriteFile(filepath.Join(built, "index.html"), []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := UIAssets(); got != built {
		t.Errorf("UIAssets() = %q, want %q", got, built)
	}
	// and the configuration hands it to the query service
	cfg := Config(Ports{OTLPHTTP: 1, OTLPGRPC: 2, QueryHTTP: 3, QueryGRPC: 4}, built)
	if !strings.Contains(cfg, "ui:\n      assets_path: \""+built+"\"") {
		t.Errorf("configuration does not point the query service at the assets:\n%s", cfg)
	}
	if cfg := Config(Ports{1, 2, 3, 4}, ""); strings.Contains(cfg, "assets_path") {
		t.Errorf("configuration without assets names some:\n%s", cfg)
	}
}
