//go:build e2e

// Package clients_test runs the client libraries' own test suites against
// the real sidecar binary and a real Consul: each suite gets the binary in
// SIDECAR_BIN and a Consul agent in CONSUL_HTTP_ADDR, and starts the
// sidecars it needs itself.
package clients_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// toolTimeout bounds one run of a client's test suite.
const toolTimeout = 10 * time.Minute

// sidecarBin is the sidecar binary, built once for every test.
var sidecarBin string

func TestMain(m *testing.M) {
	bin, err := testbin.BuildSidecar("clients-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sidecarBin = bin
	code := m.Run()
	_ = os.RemoveAll(filepath.Dir(bin))
	os.Exit(code)
}

func repoRoot() string { return testbin.RepoRoot() }

// consulAddr starts a Consul dev agent for the test (stopped when it ends)
// and returns its HTTP address, host:port.
func consulAddr(t *testing.T) string {
	t.Helper()
	return consultest.Start(t).HTTPAddr
}

// runTool runs name with args in dir (relative to clients/), with env
// (KEY=VALUE) added to a small environment of its own (PATH, HOME, TMPDIR,
// LANG: never the test's whole environment), and returns its output. The
// test fails with the output when the tool exits non-zero or runs longer
// than 10 minutes; it is skipped when name is not installed, and fails
// then under CI=true. Processes the tool leaves behind are killed.
func runTool(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed for this test: %v", name, err)
		}
		t.Skipf("%s not found", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	// Its own process group, so that whatever it started goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers; ESRCH when none
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s %v: still running after %s\n%s", name, args, toolTimeout, out.String())
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.String()
}

func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "CI"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
