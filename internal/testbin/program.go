// Package testbin finds and runs the third-party programs that test
// fixtures start for real (Consul, Jaeger): the binary looked up the way
// the project's build scripts cache it, its output kept in a bounded tail,
// and the process stopped (or killed) when the test ends.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Program is a program a fixture runs, and how the project builds it.
type Program struct {
	Name       string // for people: "Consul"
	Binary     string // the executable's name: "consul"
	Version    string // the version the project builds and tests against
	EnvVar     string // names a binary to use instead: "CONSUL_BIN"
	MakeTarget string // builds it into the cache: "consul" (scripts/consul.sh)
	Fixture    string // the package that runs it, naming where a message comes from
}

// Find returns the binary to run, looked up in this order: $EnvVar; the
// project's cache (CachedPaths of Binary-Version/Binary, where `make
// MakeTarget` puts it); Binary on $PATH. It never builds one; the error
// names every place tried and how to build it.
func (p Program) Find() (string, error) {
	var tried []string
	if path := os.Getenv(p.EnvVar); path != "" {
		if isExecutable(path) {
			return path, nil
		}
		tried = append(tried, path+" ($"+p.EnvVar+")")
	}
	for _, path := range CachedPaths(filepath.Join(p.Binary+"-"+p.Version, p.Binary)) {
		if isExecutable(path) {
			return path, nil
		}
		tried = append(tried, path)
	}
	if path, err := exec.LookPath(p.Binary); err == nil {
		return path, nil
	}
	tried = append(tried, p.Binary+" on $PATH")
	return "", fmt.Errorf("%s: no %s binary found (tried %s); run `make %s` (or scripts/%s.sh) to build %s %s, or set %s",
		p.Fixture, p.Name, strings.Join(tried, ", "), p.MakeTarget, p.MakeTarget, p.Name, p.Version, p.EnvVar)
}

// Need returns the binary to run, or ends the test when there is none:
// skipped, or failed when CI=true (where a skipped test would hide that
// nothing ran).
func (p Program) Need(t testing.TB) string {
	t.Helper()
	bin, err := p.Find()
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err.Error())
	} else {
		t.Skip(err.Error())
	}
	return ""
}

// CachedPaths are the places rel may be in the project's cache, in order:
// $SIDECAR_CACHE_DIR, $XDG_CACHE_HOME/agent-sidecar, ~/.cache/agent-sidecar
// (the places scripts/*.sh build into).
func CachedPaths(rel string) []string {
	var paths []string
	if d := os.Getenv("SIDECAR_CACHE_DIR"); d != "" {
		paths = append(paths, filepath.Join(d, rel))
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		paths = append(paths, filepath.Join(d, "agent-sidecar", rel))
	}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".cache", "agent-sidecar", rel))
	}
	return paths
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
