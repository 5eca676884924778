package consultest

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
	cached := filepath.Join(cacheDir, "consul-"+Version, "consul")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	explicit := filepath.Join(dir, "my-consul")
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
		{name: "CONSUL_BIN wins", env: map[string]string{"CONSUL_BIN": explicit, "SIDECAR_CACHE_DIR": cacheDir}, wantPath: explicit},
		{name: "SIDECAR_CACHE_DIR", env: map[string]string{"SIDECAR_CACHE_DIR": cacheDir}, wantPath: cached},
		{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": dir}, wantPath: cached},
		{name: "missing skips", env: map[string]string{}, wantSkip: true},
		{name: "missing fails under CI", env: map[string]string{"CI": "true"}, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given only the environment of the case, and no consul on PATH
			for _, k := range []string{"CONSUL_BIN", "SIDECAR_CACHE_DIR", "XDG_CACHE_HOME", "CI"} {
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
			if msg := rec.fatal + rec.skip; msg != "" && !strings.Contains(msg, "make consul") {
				t.Errorf("message %q does not say how to build Consul", msg)
			}
		})
	}
}

func TestStartFailureShowsConsulOutput(t *testing.T) {
	// Given a "consul" that complains and exits at once
	bin := filepath.Join(t.TempDir(), "consul")
	script := "#!/bin/sh\necho '==> Error starting agent: bind: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_BIN", bin)

	// When a test starts it
	rec := &recordingTB{TB: t}
	a := Start(rec)

	// Then the test fails with the tail of Consul's output in the message
	if a != nil {
		t.Fatalf("Start returned an agent for a binary that exits")
	}
	for _, want := range []string{"failed after", "bind: address already in use"} {
		if !strings.Contains(rec.fatal, want) {
			t.Errorf("failure message %q does not contain %q", rec.fatal, want)
		}
	}
}
