package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricList collects -metric k=v values.
type metricList map[string]any

func (m metricList) String() string { return "" }
func (m metricList) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	switch {
	case val == "true" || val == "false":
		m[k] = val == "true"
	default:
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			m[k] = f
		} else {
			m[k] = val
		}
	}
	return nil
}

func runHeartbeat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("heartbeat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("SIDECAR_ADDR", defaultControlAddr), "the sidecar's control API, host:port or http(s)://host:port ($SIDECAR_ADDR)")
	status := fs.String("status", "ok", "the agent's own status: ok, degraded or failing")
	note := fs.String("note", "", "a short note shown in status and the Consul UI")
	progress := fs.String("progress", "", "anything that changes while the agent gets work done (stall detection)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the sidecar")
	quiet := fs.Bool("q", false, "print nothing on success")
	metrics := metricList{}
	fs.Var(metrics, "metric", "a metric `key=value` (repeatable; numbers and true/false are sent as such)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar heartbeat [-status ok|degraded|failing] [-note TEXT] [-metric k=v]... [-progress V]

Sends one heartbeat to the local sidecar, for agents written as shell
scripts or run from cron. Each heartbeat keeps the agent's Consul check
passing (warning for degraded, critical for failing).

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), `
Exit codes: 0 accepted, 1 rejected by the sidecar, 2 bad flags,
3 the sidecar did not answer.
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sidecar heartbeat: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	switch *status {
	case "ok", "degraded", "failing":
	default:
		fmt.Fprintf(stderr, "sidecar heartbeat: -status %q is not valid: use ok, degraded or failing\n", *status)
		return exitUsage
	}

	body := map[string]any{"status": *status}
	if *note != "" {
		body["note"] = *note
	}
	if *progress != "" {
		body["progress"] = *progress
	}
	if len(metrics) > 0 {
		body["metrics"] = map[string]any(metrics)
	}
	payload, _ := json.Marshal(body)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	url, err := controlURL(*addr, "/v1/heartbeat")
	if err != nil {
		fmt.Fprintf(stderr, "sidecar heartbeat: %v\n", err)
		return exitUsage
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		fmt.Fprintf(stderr, "sidecar heartbeat: bad -addr %q: %v\n", *addr, err)
		return exitUsage
	}
	req.Header.Set("Content-Type", "application/json")
	setToken(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar heartbeat: the sidecar at %s did not answer: %v\n", *addr, err)
		return exitUnreachable
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Type, Message string }
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			fmt.Fprintf(stderr, "sidecar heartbeat: rejected (%s): %s\n", e.Error.Type, e.Error.Message)
		} else {
			fmt.Fprintf(stderr, "sidecar heartbeat: rejected: %s\n", resp.Status)
		}
		return exitError
	}
	var snap struct {
		State         string    `json:"state"`
		NextDue       time.Time `json:"next_due"`
		IsolatedAfter time.Time `json:"isolated_after"`
	}
	_ = json.Unmarshal(raw, &snap)
	if !*quiet {
		fmt.Fprintf(stdout, "heartbeat accepted: agent %s", snap.State)
		if !snap.NextDue.IsZero() {
			fmt.Fprintf(stdout, "; next due by %s", snap.NextDue.Local().Format(time.TimeOnly))
		}
		fmt.Fprintln(stdout)
	}
	return exitOK
}
