package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealth checks the sidecar's own liveness (GET /v1/health), for
// container health checks: the image has no shell and no curl.
func runHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("SIDECAR_ADDR", defaultControlAddr), "the sidecar's control API, host:port or http(s)://host:port ($SIDECAR_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	quiet := fs.Bool("q", false, "print nothing when healthy")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar health [-addr URL] [-timeout D] [-q]

Checks that the sidecar itself is up (GET /v1/health), e.g. as a
container's health check. It says nothing about the agent: use
sidecar status for that.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), `
Exit codes: 0 up, 1 an unexpected answer, 2 bad flags, 3 no answer.
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sidecar health: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	url, err := controlURL(*addr, "/v1/health")
	if err != nil {
		fmt.Fprintf(stderr, "sidecar health: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar health: bad -addr %q: %v\n", *addr, err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar health: the sidecar at %s did not answer: %v\n", *addr, err)
		return exitUnreachable
	}
	defer resp.Body.Close()
	var h struct{ Status, Version string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h) != nil || h.Status != "ok" {
		fmt.Fprintf(stderr, "sidecar health: unexpected answer from %s: %s\n", url, resp.Status)
		return exitError
	}
	if !*quiet {
		fmt.Fprintf(stdout, "sidecar at %s is up (version %s)\n", *addr, h.Version)
	}
	return exitOK
}
