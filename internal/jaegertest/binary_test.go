package jaegertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordingTB captures how findBinary ends a test instead of ending it.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper()                   {}
func (r *recordingTB) Fatal(args ...any)         { r.fatal = fmt.Sprint(args...) }
func (r *recordingTB) Skip(args ...any)          { r.skip = fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "agent-sidecar")
	cached := filepath.Join(cacheDir, "jaeger-"+Version, "jaeger")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	explicit := filepath.Join(dir, "my-jaeger")
	if err := os.WriteFile(explicit, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		env       map[string]string
		wantPath  string
		wantFatal bool
		wantSkip  bool
	}{
		{name: "JAEGER_BIN wins", env: map[string]string{"JAEGER_BIN": explicit, "SIDECAR_CACHE_DIR": cacheDir}, wantPath: explicit},
		{name: "SIDECAR_CACHE_DIR", env: map[string]string{"SIDECAR_CACHE_DIR": cacheDir}, wantPath: cached},
		{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": dir}, wantPath: cached},
		{name: "missing skips", env: map[string]string{}, wantSkip: true},
		{name: "missing fails under CI", env: map[string]string{"CI": "true"}, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given only the environment of the case, and no jaeger on PATH
			for _, k := range []string{"JAEGER_BIN", "SIDECAR_CACHE_DIR", "XDG_CACHE_HOME", "CI"} {
				t.Setenv(k, tt.env[k])
			}
			t.Setenv("HOME", filepath.Join(dir, "home"))
			t.Setenv("PATH", filepath.Join(dir, "empty"))

			// When the binary is looked up
			rec := &recordingTB{TB: t}
			got := findBinary(rec)

			// Then the expected binary is found, or the test ends with the hint
			if tt.wantPath != "" && got != tt.wantPath {
				t.Errorf("path = %q, want %q", got, tt.wantPath)
			}
			if gotFatal := rec.fatal != ""; gotFatal != tt.wantFatal {
				t.Errorf("fatal = %q, want fatal: %v", rec.fatal, tt.wantFatal)
			}
			if gotSkip := rec.skip != ""; gotSkip != tt.wantSkip {
				t.Errorf("skip = %q, want skip: %v", rec.skip, tt.wantSkip)
			}
			if msg := rec.fatal + rec.skip; msg != "" && !strings.Contains(msg, "make jaeger") {
				t.Errorf("message %q does not say how to build Jaeger", msg)
			}
		})
	}
}

func TestStartFailureShowsJaegerOutput(t *testing.T) {
	// Given a "jaeger" that complains and exits at once
	bin := filepath.Join(t.TempDir(), "jaeger")
	script := "#!/bin/sh\necho 'Error: cannot start pipelines: listen tcp: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JAEGER_BIN", bin)

	// When a test starts it
	rec := &recordingTB{TB: t}
	j := Start(rec)

	// Then the test fails with the tail of Jaeger's output in the message
	if j != nil {
		t.Fatalf("Start returned a Jaeger for a binary that exits")
	}
	for _, want := range []string{"failed after", "exited before it was ready", "address already in use"} {
		if !strings.Contains(rec.fatal, want) {
			t.Errorf("failure message %q does not contain %q", rec.fatal, want)
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
