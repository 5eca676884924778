//go:build e2e

package clients_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonClient runs the unittest suite of clients/python, whose tests
// start sidecars of the binary in SIDECAR_BIN against the Consul agent in
// CONSUL_HTTP_ADDR.
func TestPythonClient(t *testing.T) {
	addr := consulAddr(t)
	out := runTool(t, "python", []string{"SIDECAR_BIN=" + sidecarBin, "CONSUL_HTTP_ADDR=" + addr, "PYTHONDONTWRITEBYTECODE=1"},
		"python3", "-m", "unittest", "discover", "-v", "-s", "tests", "-t", ".")
	// The suite skips its sidecar tests without the two variables: make sure they ran.
	if strings.Contains(out, "skipped") {
		t.Fatalf("tests were skipped:\n%s", out)
	}
	t.Log(out)
}

// TestPythonClientInstalls installs clients/python into a new virtual
// environment without a network (pip's --no-index, the build backend in the
// package itself) and imports it from there, as the README says.
func TestPythonClientInstalls(t *testing.T) {
	// Debian's python3 makes venvs only with python3-venv (ensurepip).
	if out := runTool(t, ".", nil, "python3", "-c", "import importlib.util as u; print(u.find_spec('ensurepip') is not None)"); strings.TrimSpace(out) != "True" {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 cannot make a virtual environment: install python3-venv")
		}
		t.Skip("python3 cannot make a virtual environment (python3-venv is not installed)")
	}
	venv := filepath.Join(t.TempDir(), "venv")
	runTool(t, ".", nil, "python3", "-m", "venv", venv)
	pip := filepath.Join(venv, "bin", "pip")
	runTool(t, ".", []string{"PIP_NO_INDEX=1", "PIP_DISABLE_PIP_VERSION_CHECK=1"},
		pip, "install", "--no-index", "--no-build-isolation", "./python")
	out := runTool(t, t.TempDir(), nil, filepath.Join(venv, "bin", "python"), "-c",
		"import agent_sidecar, os; print(agent_sidecar.__file__); "+
			"print(os.path.exists(os.path.join(os.path.dirname(agent_sidecar.__file__), 'py.typed')))")
	if !strings.Contains(out, filepath.Join(venv, "lib")) || !strings.HasSuffix(strings.TrimSpace(out), "True") {
		t.Fatalf("agent_sidecar was not imported from the virtual environment with its py.typed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join("python", "build")); err == nil {
		t.Fatal("the install left a build directory in clients/python")
	}
}
