package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// RepoRoot is the repository's root directory, found from where this file
// sits in it.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// BuildGo compiles the Go package pkg, a path relative to the repository
// root ("./examples/go/agent"), into the executable out. The error carries
// the compiler's output.
func BuildGo(pkg, out string) error {
	build := exec.Command("go", "build", "-o", out, pkg)
	build.Dir = RepoRoot()
	if output, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, output)
	}
	return nil
}

// BuildSidecar builds the sidecar binary into a new temporary directory
// named after prefix, for a TestMain that builds it once for every test,
// and returns its path. The caller removes filepath.Dir(bin) when done.
func BuildSidecar(prefix string) (bin string, err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	bin = filepath.Join(dir, "sidecar")
	if err := BuildGo("./cmd/sidecar", bin); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return bin, nil
}
