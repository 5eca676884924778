package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/agent-sidecar/sidecar/internal/version"
)

func runVersion(stdout io.Writer) int {
	commit := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				commit = s.Value[:12]
			}
		}
	}
	if commit != "" {
		fmt.Fprintf(stdout, "sidecar %s (commit %s, %s)\n", version.Version, commit, runtime.Version())
	} else {
		fmt.Fprintf(stdout, "sidecar %s (%s)\n", version.Version, runtime.Version())
	}
	return exitOK
}
