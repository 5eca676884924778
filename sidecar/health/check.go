package health

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
)

// The heartbeat check's output is written for the person reading the
// Consul UI. FormatCheck writes it and ParseCheck reads it back; both live
// here so that rewording a sentence changes them together (the round-trip
// test fails otherwise).
//
//	healthy:  Heartbeat ok at 2026-11-26 12:00:00 UTC (probe). [The agent reports it is failing.]
//	          Next heartbeat due by …; isolated after … without one.
//	waiting:  Waiting for the first heartbeat; the agent is isolated if none arrives by ….
//	isolated: ISOLATED since …: <detail>.
//	          Last heartbeat: … (ok).  |  No heartbeat received yet.
//	          A new heartbeat recovers the agent.
//	then, each when present: Note: …, Metrics: k=v, …, Progress: … (changed …)
const (
	prefixHealthy   = "Heartbeat "
	prefixWaiting   = "Waiting for the first heartbeat; the agent is isolated if none arrives by "
	prefixIsolated  = "ISOLATED since "
	prefixLastBeat  = "Last heartbeat: "
	lineNoBeat      = "No heartbeat received yet."
	lineRecovers    = "A new heartbeat recovers the agent."
	prefixNextDue   = "Next heartbeat due by "
	infixIsolatedAt = "; isolated after "
	suffixNextDue   = " without one."
	sentenceFailing = " The agent reports it is failing."
	prefixNote      = "Note: "
	prefixMetrics   = "Metrics: "
	prefixProgress  = "Progress: "
	infixChanged    = " (changed "
	fromProbe       = " (probe)"
)

// StampLayout is how the check outputs write a time.
const StampLayout = "2006-01-02 15:04:05 UTC"

// Stamp writes t as the check outputs do, "never" for the zero time.
func Stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(StampLayout)
}

func parseStamp(s string) (time.Time, error) {
	if s == "never" {
		return time.Time{}, nil
	}
	return time.Parse(StampLayout, s)
}

// FormatCheck turns the tracker's state into a Consul check status and an
// output written for the person reading the Consul UI.
func FormatCheck(s HealthSnapshot) (discovery.CheckStatus, string) {
	var b strings.Builder
	status := discovery.Passing
	switch s.state {
	case StateIsolated:
		status = discovery.Critical
		fmt.Fprintf(&b, "%s%s: %s.", prefixIsolated, Stamp(s.Since), s.Detail)
		if !s.LastHeartbeat.IsZero() {
			fmt.Fprintf(&b, "\n%s%s (%s).", prefixLastBeat, Stamp(s.LastHeartbeat), s.Reported)
		} else {
			b.WriteString("\n" + lineNoBeat)
		}
		b.WriteString("\n" + lineRecovers)
	case StateWaiting:
		status = discovery.Critical
		fmt.Fprintf(&b, "%s%s.", prefixWaiting, Stamp(s.IsolatedAfter))
	default:
		switch s.Reported {
		case ReportDegraded:
			status = discovery.Warning
		case ReportFailing:
			status = discovery.Critical
		}
		fmt.Fprintf(&b, "%s%s at %s", prefixHealthy, s.Reported, Stamp(s.LastHeartbeat))
		if s.LastSource == SourceProbe {
			b.WriteString(fromProbe)
		}
		b.WriteString(".")
		if s.Reported == ReportFailing {
			b.WriteString(sentenceFailing)
		}
		fmt.Fprintf(&b, "\n%s%s%s%s%s", prefixNextDue, Stamp(s.NextDue), infixIsolatedAt, Stamp(s.IsolatedAfter), suffixNextDue)
	}
	if s.Note != "" {
		fmt.Fprintf(&b, "\n%s%s", prefixNote, s.Note)
	}
	if len(s.Metrics) > 0 {
		fmt.Fprintf(&b, "\n%s%s", prefixMetrics, formatMetrics(s.Metrics))
	}
	if s.Progress != "" {
		fmt.Fprintf(&b, "\n%s%s%s%s)", prefixProgress, s.Progress, infixChanged, Stamp(s.ProgressSince))
	}
	return status, b.String()
}

// formatMetrics renders metrics as "k=v, k=v" in key order.
func formatMetrics(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// ErrNotHeartbeatCheck is returned by ParseCheck for an output that
// FormatCheck did not write.
var ErrNotHeartbeatCheck = errors.New("not the output of a heartbeat check")

// ParseCheck reads back what FormatCheck wrote: the state, the reported
// status and its source, the times (to the second), the isolation's
// detail, the note and the progress. Metrics are not read back (their
// values lose their types in the text) and neither is Heartbeats. A note
// holding a line that starts like a later line ("Metrics: ", "Progress: ")
// is cut there. It is meant for tests and tools; the sidecar's status API
// serves the same data as JSON.
func ParseCheck(output string) (HealthSnapshot, error) {
	var s HealthSnapshot
	lines := strings.Split(output, "\n")
	first, rest := lines[0], lines[1:]
	bad := func(what string) (HealthSnapshot, error) {
		return HealthSnapshot{}, fmt.Errorf("%w: %s in %q", ErrNotHeartbeatCheck, what, clip(output, 120))
	}
	var err error
	switch {
	case strings.HasPrefix(first, prefixIsolated):
		s.state = StateIsolated
		at, detail, ok := strings.Cut(strings.TrimPrefix(first, prefixIsolated), ": ")
		if !ok {
			return bad("no detail after the isolation time")
		}
		if s.Since, err = parseStamp(at); err != nil {
			return bad("isolation time " + at)
		}
		s.Detail = strings.TrimSuffix(detail, ".")
		if len(rest) == 0 {
			return bad("no line about the last heartbeat")
		}
		switch line := rest[0]; {
		case line == lineNoBeat:
		case strings.HasPrefix(line, prefixLastBeat):
			at, reported, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, prefixLastBeat), ")."), " (")
			if !ok {
				return bad("last heartbeat line " + line)
			}
			if s.LastHeartbeat, err = parseStamp(at); err != nil {
				return bad("last heartbeat time " + at)
			}
			s.Reported = reported
		default:
			return bad("line " + line)
		}
		rest = rest[1:]
		if len(rest) > 0 && rest[0] == lineRecovers {
			rest = rest[1:]
		}
	case strings.HasPrefix(first, prefixWaiting):
		s.state = StateWaiting
		if s.IsolatedAfter, err = parseStamp(strings.TrimSuffix(strings.TrimPrefix(first, prefixWaiting), ".")); err != nil {
			return bad("isolation deadline")
		}
	case strings.HasPrefix(first, prefixHealthy):
		s.state = StateHealthy
		line := strings.TrimPrefix(first, prefixHealthy)
		line = strings.TrimSuffix(line, sentenceFailing)
		line = strings.TrimSuffix(line, ".")
		if l, ok := strings.CutSuffix(line, fromProbe); ok {
			line, s.LastSource = l, SourceProbe
		}
		reported, at, ok := strings.Cut(line, " at ")
		if !ok {
			return bad("heartbeat line " + first)
		}
		s.Reported = reported
		if s.LastHeartbeat, err = parseStamp(at); err != nil {
			return bad("heartbeat time " + at)
		}
		if len(rest) == 0 || !strings.HasPrefix(rest[0], prefixNextDue) {
			return bad("no line about the next heartbeat")
		}
		due, after, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(rest[0], prefixNextDue), suffixNextDue), infixIsolatedAt)
		if !ok {
			return bad("next heartbeat line " + rest[0])
		}
		if s.NextDue, err = parseStamp(due); err != nil {
			return bad("next heartbeat time " + due)
		}
		if s.IsolatedAfter, err = parseStamp(after); err != nil {
			return bad("isolation deadline " + after)
		}
		rest = rest[1:]
	default:
		return bad("first line")
	}
	s.State = s.state.String()

	// The optional lines, in order; a note may span lines.
	var note []string
	inNote := false
	for _, line := range rest {
		switch {
		case strings.HasPrefix(line, prefixMetrics):
			inNote = false
		case strings.HasPrefix(line, prefixProgress):
			inNote = false
			p := strings.TrimPrefix(line, prefixProgress)
			i := strings.LastIndex(p, infixChanged)
			if i < 0 || !strings.HasSuffix(p, ")") {
				return bad("progress line " + line)
			}
			s.Progress = p[:i]
			if s.ProgressSince, err = parseStamp(p[i+len(infixChanged) : len(p)-1]); err != nil {
				return bad("progress time")
			}
		case strings.HasPrefix(line, prefixNote) && note == nil:
			inNote = true
			note = append(note, strings.TrimPrefix(line, prefixNote))
		case inNote:
			note = append(note, line)
		}
	}
	s.Note = strings.Join(note, "\n")
	return s, nil
}
