//go:build e2e

package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmezard/go-difflib/difflib"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGoldenStatusOutput runs `sidecar status` (the built binary) against a
// server answering GET /v1/status with a fixed status, and compares what it
// prints and its exit status with testdata/golden. The input statuses are
// testdata/golden/status-*.json (in the shape sidecar/testdata/golden pins
// for the sidecar itself); the healthy one's last heartbeat is set to 42.5s
// ago when served, as "ago" is computed from the real clock. TZ=UTC fixes
// the times printed in local time.
//
// go test -run Golden ./cmd/sidecar/ -update rewrites the outputs; review
// them as a user would read them.
func TestGoldenStatusOutput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		input  string
		args   []string
		golden string
	}{
		{"healthy", "status-healthy.json", nil, "status-healthy.txt"},
		{"isolated", "status-isolated.json", nil, "status-isolated.txt"},
		{"isolated -json", "status-isolated.json", []string{"-json"}, "status-isolated-json.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join("testdata", "golden", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/status" {
					http.NotFound(w, r)
					return
				}
				recent := time.Now().Add(-42500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(bytes.ReplaceAll(input, []byte(`"RECENT"`), []byte(`"`+recent+`"`)))
			}))
			defer srv.Close()

			env := []string{"SIDECAR_ADDR=" + srv.URL, "SIDECAR_TOKEN=", "TZ=UTC", "NO_COLOR="}
			out, errOut, code := runCLI(t, env, append([]string{"status"}, tc.args...)...)
			if errOut != "" {
				t.Errorf("stderr: %s", errOut)
			}
			got := fmt.Sprintf("$ %s\n(exit status %d)\n%s", strings.Join(append([]string{"sidecar", "status"}, tc.args...), " "), code, out)
			compareGoldenText(t, tc.golden, got)
		})
	}
}

// compareGoldenText compares got with testdata/golden/name, or writes it
// there under -update.
func compareGoldenText(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(want)),
			B: difflib.SplitLines(got), FromFile: path, ToFile: "got", Context: 2})
		t.Errorf("%s differs from the golden file (go test -update rewrites it; review the diff):\n%s", path, diff)
	}
}
