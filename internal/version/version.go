// Package version holds the sidecar's version string.
package version

// Version is the sidecar's version, set at build time with
// -ldflags "-X github.com/agent-sidecar/sidecar/internal/version.Version=v1.2.3".
var Version = "dev"
