//go:build e2e

// Package clients_test runs the client libraries' own tests (Node's with
// node --test, Go's with go test) against the real sidecar binary and a real
// Consul: TestMain builds the sidecar once and starts one Consul dev agent
// for every test of the package.
package clients_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

var (
	sidecarBin string // the sidecar binary, built once
	consulAddr string // host:port of the Consul dev agent; "" when none was found
	consulSkip string // why there is no Consul
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "clients-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sidecarBin = filepath.Join(dir, "sidecar")
	build := exec.Command("go", "build", "-o", sidecarBin, "./cmd/sidecar")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the sidecar: %v\n%s", err, out)
		return 1
	}

	tb := &mainTB{}
	defer tb.cleanup()
	if err := tb.do(func() { consulAddr = consultest.Start(tb).HTTPAddr }); err != nil {
		if !tb.skipped {
			fmt.Fprintf(os.Stderr, "starting Consul: %v\n", err)
			return 1
		}
		consulSkip = err.Error()
	}
	return m.Run()
}

// needConsul ends a test that has no Consul: skipped, or failed under CI=true.
func needConsul(t *testing.T) {
	t.Helper()
	if consulAddr == "" {
		t.Skip(consulSkip)
	}
}

// needTool ends a test whose tool is not installed: skipped, or failed
// under CI=true (.ci/run installs them).
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed for this test (.ci/run installs it)", name)
		}
		t.Skipf("%s not found", name)
	}
	return path
}

// runTool runs name with args in dir (relative to the repository root) with
// env added to a minimal environment, and fails the test, with the output,
// when it fails.
func runTool(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needTool(t, name), args...)
	cmd.Dir = filepath.Join(repoRoot(), dir)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CI=" + os.Getenv("CI")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// mainTB lets TestMain start Consul with consultest, which reports through a
// testing.TB: a failure or skip ends do with an error, cleanups run at exit.
type mainTB struct {
	testing.TB // nil: only the methods below are called
	cleanups   []func()
	skipped    bool
}

type stop struct{ msg string }

func (m *mainTB) Helper()                   {}
func (m *mainTB) Cleanup(f func())          { m.cleanups = append(m.cleanups, f) }
func (m *mainTB) Fatal(args ...any)         { panic(stop{fmt.Sprint(args...)}) }
func (m *mainTB) Fatalf(f string, a ...any) { panic(stop{fmt.Sprintf(f, a...)}) }
func (m *mainTB) Skip(args ...any)          { m.skipped = true; panic(stop{fmt.Sprint(args...)}) }

func (m *mainTB) do(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(stop)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", s.msg)
		}
	}()
	f()
	return nil
}

func (m *mainTB) cleanup() {
	for i := len(m.cleanups) - 1; i >= 0; i-- {
		m.cleanups[i]()
	}
}
