// Command sidecar is a reliability sidecar for AI agents: it runs beside an
// agent, registers it in Consul, and turns its heartbeats into health,
// isolation, notifications and restarts.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes, documented in docs/operations.md#exit-codes.
const (
	exitOK          = 0   // success; a clean shutdown; a valid configuration
	exitError       = 1   // invalid configuration, a failed run, a rejected heartbeat
	exitUsage       = 2   // unknown command, bad flags or arguments
	exitUnreachable = 3   // heartbeat, status, health: the sidecar did not answer; fleet: Consul did not answer
	exitForced      = 130 // a second SIGINT/SIGTERM during a graceful shutdown
)

const usage = `Usage: sidecar <command> [flags]

Commands:
  agent      run the sidecar beside an agent
  validate   check configuration files and exit 0 (valid) or 1 (invalid)
  heartbeat  send one heartbeat to the local sidecar (for shell agents and cron)
  status     print the local sidecar's state (exit 1 when the agent is isolated)
  fleet      print every agent instance in Consul with its checks (exit 1 when one is unhealthy)
  health     check that the sidecar itself is up (for container health checks)
  policy     diff or push fleet-wide policies in Consul KV
  version    print the version

Run "sidecar <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "agent":
		return runAgent(args[1:], stderr)
	case "validate":
		return runValidate(args[1:], stdout, stderr)
	case "heartbeat":
		return runHeartbeat(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "fleet":
		return runFleet(args[1:], stdout, stderr)
	case "health":
		return runHealth(args[1:], stdout, stderr)
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		return runVersion(stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "sidecar: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
