package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/agent-sidecar/sidecar/policies"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar validate FILE|DIR...

Loads the given configuration files and directories (every *.hcl in a
directory, in name order) as one configuration, as "sidecar agent" would,
and reports every error with file:line:col.

Exit codes: 0 valid, 1 invalid, 2 no arguments.
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := policies.Load(fs.Args()...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "configuration valid: %d file(s); agent %q (id %q), heartbeat every %s, isolated after %s without one\n",
		len(cfg.Sources), cfg.Agent.Name, cfg.Agent.ID, cfg.Health.HeartbeatInterval, cfg.Health.TTL())
	return exitOK
}
