package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar"
)

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("SIDECAR_ADDR", defaultControlAddr), "the sidecar's control API, host:port or http(s)://host:port ($SIDECAR_ADDR)")
	asJSON := fs.Bool("json", false, "print the raw status (GET /v1/status) as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the sidecar")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar status [-addr URL] [-json]

Prints what the local sidecar knows: the agent's health and last heartbeat,
what its liveness and readiness probes answer, its Consul registration, the
supervised process, breakers, models and which one is serving, today's
tokens and cost by model, each budget's spend, what is left and when it
resets, the latest events, and the share of calls answered.

Exit status: 0 when the agent is healthy or waiting for its first heartbeat,
1 when it is isolated, 3 when the sidecar does not answer.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sidecar status: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	url, err := controlURL(*addr, "/v1/status")
	if err != nil {
		fmt.Fprintf(stderr, "sidecar status: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	raw, err := fetchStatus(ctx, url)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar status: %v (is the sidecar running there? set -addr or SIDECAR_ADDR)\n", err)
		return exitUnreachable
	}
	var st sidecar.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		fmt.Fprintf(stderr, "sidecar status: the answer of %s is not a sidecar status: %v\n", *addr, err)
		return exitUnreachable
	}
	if *asJSON {
		var buf bytes.Buffer
		_ = json.Indent(&buf, raw, "", "  ")
		buf.WriteByte('\n')
		_, _ = stdout.Write(buf.Bytes())
	} else {
		printStatus(stdout, st, time.Now(), colorsFor(stdout))
	}
	if st.Health.State == "isolated" {
		return exitError
	}
	return exitOK
}

func fetchStatus(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	setToken(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the sidecar did not answer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%s needs the sidecar's token: set SIDECAR_TOKEN to its listen.token", url)
	default:
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return body, nil
}

// palette colours words on a terminal, and does nothing elsewhere.
type palette struct{ on bool }

func (p palette) wrap(code, s string) string {
	if !p.on {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}
func (p palette) good(s string) string { return p.wrap("32", s) }
func (p palette) warn(s string) string { return p.wrap("33", s) }
func (p palette) bad(s string) string  { return p.wrap("31;1", s) }
func (p palette) dim(s string) string  { return p.wrap("2", s) }

// colorsFor turns colours on for a terminal, unless NO_COLOR is set.
func colorsFor(w io.Writer) palette {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return palette{}
	}
	fi, err := f.Stat()
	return palette{on: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

// ago prints how long ago t was, for people.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func printStatus(w io.Writer, st sidecar.Status, now time.Time, p palette) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) { fmt.Fprintf(w, "%-10s %s\n", "", fmt.Sprintf(format, args...)) }

	h := st.Health
	state := h.State
	switch state {
	case "healthy":
		state = p.good(state)
	case "isolated":
		state = p.bad("ISOLATED") + " (" + strings.ReplaceAll(h.Reason, "_", " ") + ")"
	default:
		state = p.warn(state)
	}
	beat := "no heartbeat yet"
	if !h.LastHeartbeat.IsZero() {
		beat = fmt.Sprintf("last heartbeat %s (%s), %d in all", ago(now, h.LastHeartbeat), orDefault(h.Reported, "ok"), h.Heartbeats)
	}
	line("agent", "%s (%s) %s, %s", st.Agent.ID, st.Agent.Name, state, beat)
	if h.State == "isolated" && h.Detail != "" {
		more("%s", h.Detail)
	}
	if h.Note != "" {
		more("note: %s", h.Note)
	}
	// What a kubelet's probes of the agent see (absent from an older
	// sidecar's status).
	if pr := st.AgentProbes; pr.Live.Status != "" {
		live, ready := p.good("live"), p.good("ready")
		if !pr.Live.OK() {
			live = p.bad("not live")
		}
		switch {
		case pr.Ready.OK():
		case h.State == "isolated": // the reason is the line above
			ready = p.warn("not ready")
		default:
			ready = p.warn("not ready") + " (" + pr.Ready.Reason + ")"
		}
		where := ""
		if st.Sidecar.ProbeAPI != "" {
			where = ", probe listener " + st.Sidecar.ProbeAPI
		}
		line("probes", "%s, %s%s", live, ready, where)
	}

	reg := st.Registration
	switch {
	case reg.Registered:
		line("consul", "%s as %s at %s", p.good("registered"), reg.ServiceID, reg.ConsulAddress)
	default:
		why := ""
		if reg.LastError != "" {
			why = ": " + reg.LastError
		}
		line("consul", "%s at %s%s", p.bad("not registered"), reg.ConsulAddress, why)
	}

	if pr := st.Process; pr != nil {
		run := p.bad("not running")
		if pr.Running {
			run = p.good("running") + fmt.Sprintf(" (pid %d)", pr.PID)
		}
		extra := ""
		if pr.Restarts > 0 {
			extra = fmt.Sprintf(", %d restart(s), last: %s", pr.Restarts, orDefault(pr.LastRestartReason, pr.LastExit))
		}
		line("process", "%s%s", run, extra)
	}

	var closed int
	var notClosed []string
	for _, b := range st.Breakers {
		if b.State == "closed" {
			closed++
			continue
		}
		s := fmt.Sprintf("%s %s", b.Name, p.bad(b.State))
		if b.Forced {
			s += " (held open by an operator)"
		} else if b.ConsecutiveFailures > 0 {
			s += fmt.Sprintf(", %d consecutive failures (last: %s)", b.ConsecutiveFailures, b.LastFailureReason)
		}
		if b.HalfOpenInText != "" {
			s += ", half-open in " + b.HalfOpenInText
		}
		notClosed = append(notClosed, s)
	}
	if len(st.Breakers) > 0 {
		summary := p.good(fmt.Sprintf("%d closed", closed))
		if len(notClosed) > 0 {
			summary += ", " + p.bad(fmt.Sprintf("%d not closed", len(notClosed)))
		}
		line("breakers", "%s", summary)
		for _, s := range notClosed {
			more("%s", s)
		}
	}

	if len(st.Models) > 0 {
		degraded := map[string]string{}
		for _, d := range st.Degraded {
			degraded[d.Model] = fmt.Sprintf("%s by %s since %s (%s)", p.warn("served"), d.ServedBy,
				d.Since.Local().Format("15:04:05"), d.Reason)
		}
		for i, m := range st.Models {
			label := ""
			if i == 0 {
				label = "models"
			}
			chain := m.Label
			if m.Fallback != "" {
				chain += " → " + m.Fallback
			}
			s := fmt.Sprintf("%s: %d calls, %d failures, %d skipped, %d answers as a fallback", chain,
				m.Calls, m.Failures, m.Skipped, m.FallbackAnswers)
			if d, ok := degraded[m.Label]; ok {
				s += "; " + d
			}
			fmt.Fprintf(w, "%-10s %s\n", label, s)
		}
	}

	printUsage(w, st.Usage, p)
	printBudgets(w, st.Budgets, now, p)

	if n := len(st.Events); n > 0 {
		recent := st.Events[max(0, n-5):]
		for i, ev := range recent {
			label := ""
			if i == 0 {
				label = "events"
			}
			fmt.Fprintf(w, "%-10s %s %s\n", label, p.dim(ev.Time.Local().Format("15:04:05")), ev.Text)
		}
	}

	var avail []string
	for _, a := range st.Availability {
		if a.Ratio == nil {
			continue
		}
		pct := fmt.Sprintf("%.1f%%", math.Floor(*a.Ratio*1000)/10)
		switch {
		case *a.Ratio >= 0.99:
			pct = p.good(pct)
		case *a.Ratio >= 0.9:
			pct = p.warn(pct)
		default:
			pct = p.bad(pct)
		}
		avail = append(avail, fmt.Sprintf("%s %s of %d", a.Window, pct, a.Answered+a.Errors))
	}
	if len(avail) > 0 {
		line("answered", "%s", strings.Join(avail, ", "))
	} else {
		line("answered", "%s", p.dim("no calls or tasks yet"))
	}
	line("sidecar", "%s, up %s, control API %s", st.Sidecar.Version, st.Sidecar.Uptime, st.Sidecar.ControlAPI)
}

// setToken sends $SIDECAR_TOKEN, the control API's token, when it is set.
func setToken(req *http.Request) {
	if tok := os.Getenv("SIDECAR_TOKEN"); tok != "" {
		req.Header.Set("X-Sidecar-Token", tok)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
