package testbin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/jaegertest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func writeExecutable(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestNeed(t *testing.T) {
	for _, prog := range []testbin.Program{consultest.Program, jaegertest.Program} {
		t.Run(prog.Name, func(t *testing.T) {
			dir := t.TempDir()
			cacheDir := filepath.Join(dir, "agent-sidecar")
			cached := filepath.Join(cacheDir, prog.Binary+"-"+prog.Version, prog.Binary)
			writeExecutable(t, cached)
			explicit := filepath.Join(dir, "my-"+prog.Binary)
			writeExecutable(t, explicit)
			notExecutable := filepath.Join(dir, "not-executable")
			if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			pathDir := filepath.Join(dir, "bin")
			onPath := filepath.Join(pathDir, prog.Binary)
			writeExecutable(t, onPath)

			tests := []struct {
				name      string
				env       map[string]string
				wantPath  string
				wantFatal bool
				wantSkip  bool
			}{
				{name: prog.EnvVar + " wins", env: map[string]string{prog.EnvVar: explicit, "SIDECAR_CACHE_DIR": cacheDir}, wantPath: explicit},
				{name: prog.EnvVar + " not executable", env: map[string]string{prog.EnvVar: notExecutable, "SIDECAR_CACHE_DIR": cacheDir}, wantPath: cached},
				{name: "SIDECAR_CACHE_DIR", env: map[string]string{"SIDECAR_CACHE_DIR": cacheDir}, wantPath: cached},
				{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": dir}, wantPath: cached},
				{name: "HOME cache", env: map[string]string{"HOME": dir + "/home-with-cache"}, wantPath: filepath.Join(dir, "home-with-cache", ".cache", "agent-sidecar", prog.Binary+"-"+prog.Version, prog.Binary)},
				{name: "PATH", env: map[string]string{"PATH": pathDir}, wantPath: onPath},
				{name: "missing skips", env: map[string]string{}, wantSkip: true},
				{name: "missing fails under CI", env: map[string]string{"CI": "true"}, wantFatal: true},
			}
			writeExecutable(t, tests[4].wantPath)
			homeCached := filepath.Join(dir, "home", ".cache", "agent-sidecar", prog.Binary+"-"+prog.Version, prog.Binary)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// Given only the environment of the case, and no binary on PATH
					// or in the home cache unless the case puts one there
					for _, k := range []string{prog.EnvVar, "SIDECAR_CACHE_DIR", "XDG_CACHE_HOME", "CI"} {
						t.Setenv(k, tt.env[k])
					}
					t.Setenv("HOME", filepath.Join(dir, "home"))
					t.Setenv("PATH", filepath.Join(dir, "empty"))
					for _, k := range []string{"HOME", "PATH"} {
						if v, ok := tt.env[k]; ok {
							t.Setenv(k, v)
						}
					}

					// When the binary is looked up
					rec := &testutil.TBRecorder{TB: t}
					got := prog.Need(rec)

					// Then the expected binary is found, or the test ends with the hint
					if got != tt.wantPath {
						t.Errorf("path = %q, want %q", got, tt.wantPath)
					}
					if gotFatal := rec.FatalMsg != ""; gotFatal != tt.wantFatal {
						t.Errorf("fatal = %q, want fatal: %v", rec.FatalMsg, tt.wantFatal)
					}
					if gotSkip := rec.SkipMsg != ""; gotSkip != tt.wantSkip {
						t.Errorf("skip = %q, want skip: %v", rec.SkipMsg, tt.wantSkip)
					}
					msg := rec.FatalMsg + rec.SkipMsg
					for _, want := range []string{prog.Fixture + ": no " + prog.Name + " binary found", homeCached,
						"make " + prog.MakeTarget, "set " + prog.EnvVar} {
						if msg != "" && !strings.Contains(msg, want) {
							t.Errorf("message %q does not contain %q", msg, want)
						}
					}
				})
			}
		})
	}
}

func TestTailKeepsTheLastBytes(t *testing.T) {
	tail := testbin.NewTail(8)
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := tail.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
		}
	}
	if got, want := tail.String(), "defghijk"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := tail.Last(3), "ijk"; got != want {
		t.Errorf("Last(3) = %q, want %q", got, want)
	}
	if got, want := testbin.NewTail(8).Last(3), ""; got != want {
		t.Errorf("Last(3) of nothing = %q, want %q", got, want)
	}
}
