//go:build e2e

package clients_test

import (
	"path/filepath"
	"testing"
)

// TestNodeClient runs the Node client's tests (clients/node/test, node
// --test) against the sidecar binary and Consul. Under CI=true a missing
// node fails.
func TestNodeClient(t *testing.T) {
	consul := consulAddr(t)
	files, _ := filepath.Glob(filepath.Join(repoRoot(), "clients/node/test/*.test.mjs"))
	if len(files) == 0 {
		t.Fatal("no tests in clients/node/test")
	}
	args := append([]string{"--test", "--test-reporter=spec"}, files...)
	out := runTool(t, "node", []string{"SIDECAR_BIN=" + sidecarBin, "CONSUL_HTTP_ADDR=" + consul}, "node", args...)
	t.Log(out)
}
