// Package health decides from heartbeats (or probes) whether the agent is
// healthy, waiting or isolated: the heartbeat tracker, the prober, the
// heartbeat request body, and the heartbeat check text written for Consul
// and read back by ParseCheck.
package health

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
)

// HealthState is the sidecar's verdict on its agent.
type HealthState int

const (
	// StateWaiting: no heartbeat since the sidecar (or the supervised agent)
	// started, and the agent is not yet overdue.
	StateWaiting HealthState = iota
	// StateHealthy: heartbeats arrive in time.
	StateHealthy
	// StateIsolated: heartbeats were missed, or the agent stalled.
	StateIsolated
)

func (s HealthState) String() string {
	switch s {
	case StateWaiting:
		return "waiting"
	case StateHealthy:
		return "healthy"
	case StateIsolated:
		return "isolated"
	}
	return fmt.Sprintf("HealthState(%d)", int(s))
}

// Reasons an agent is isolated.
const (
	ReasonMissedHeartbeats = "missed_heartbeats"
	ReasonStalled          = "stalled"
)

// Statuses an agent may report in a heartbeat.
const (
	ReportOK       = "ok"
	ReportDegraded = "degraded"
	ReportFailing  = "failing"
)

// Heartbeat is what an agent reports. Status defaults to "ok".
type Heartbeat struct {
	Status  string
	Note    string
	Metrics map[string]any // scalar values only (string, number, bool)
	// Progress is any string or number that changes while the agent gets
	// work done; "" means the heartbeat carried none.
	Progress string
	// Source says where the heartbeat came from ("api" or "probe").
	Source string
}

// Where a heartbeat came from.
const (
	SourceAPI   = "api"   // POST /v1/heartbeat
	SourceProbe = "probe" // a 2xx answer of the health URL
)

// TransitionKind names what changed in the agent's health.
type TransitionKind int

const (
	// Isolated: the agent just became isolated.
	Isolated TransitionKind = iota + 1
	// Recovered: an isolated agent sent a heartbeat (or made progress).
	Recovered
	// StillIsolated: an isolated agent stayed silent for another full TTL
	// (used to restart a supervised agent again; no new notification).
	StillIsolated
)

// Transition is one change of the agent's health, returned by the tracker
// and dispatched by the caller after the tracker's lock is released.
type Transition struct {
	Kind          TransitionKind
	Reason        string // for Isolated and StillIsolated
	Detail        string // a sentence for people
	LastHeartbeat time.Time
	At            time.Time
}

// trackerSettings are the parts of the health config the tracker uses.
type trackerSettings struct {
	interval   time.Duration
	missed     int
	grace      time.Duration
	stallAfter time.Duration
	// startup and livenessAfter are for the agent probes (verdict.go).
	startup       time.Duration
	livenessAfter time.Duration
}

func settingsFrom(h policies.Health) trackerSettings {
	return trackerSettings{interval: h.HeartbeatInterval, missed: h.MissedHeartbeats, grace: h.Grace, stallAfter: h.StallAfter,
		startup: h.StartupWindow(), livenessAfter: h.LivenessAfter}
}

// ttl is how long after the last sign of life the agent is isolated:
// missed × interval + grace.
func (s trackerSettings) ttl() time.Duration {
	return time.Duration(s.missed)*s.interval + s.grace
}

// HeartbeatTracker decides, from heartbeats alone, whether the agent is
// healthy, isolated for missed heartbeats, or isolated because it stalled.
// It owns no goroutine or timer: the caller feeds it heartbeats and the
// current time, and asks when it next needs to be evaluated. Safe for
// concurrent use.
type HeartbeatTracker struct {
	mu  sync.Mutex
	set trackerSettings

	// since is when the tracker started counting: sidecar start, or the
	// last (re)start of the supervised agent.
	since      time.Time
	lastBeat   time.Time
	last       Heartbeat
	heartbeats uint64

	hasProgress       bool
	progress          string
	progressChangedAt time.Time

	isolated   bool
	reason     string
	detail     string
	isolatedAt time.Time
	// recheckAt is when a still-isolated agent is reported again.
	recheckAt time.Time
}

// NewHeartbeatTracker starts tracking at now.
func NewHeartbeatTracker(h policies.Health, now time.Time) *HeartbeatTracker {
	return &HeartbeatTracker{set: settingsFrom(h), since: now}
}

// SetHealth applies new health settings (after a reload) and re-evaluates.
func (t *HeartbeatTracker) SetHealth(h policies.Health, now time.Time) []Transition {
	t.mu.Lock()
	t.set = settingsFrom(h)
	t.mu.Unlock()
	return t.Evaluate(now)
}

// Beat records a heartbeat and returns the transitions it caused.
func (t *HeartbeatTracker) Beat(now time.Time, hb Heartbeat) []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	if hb.Status == "" {
		hb.Status = ReportOK
	}
	t.lastBeat = now
	t.last = hb
	t.heartbeats++
	if hb.Progress != "" {
		if !t.hasProgress || hb.Progress != t.progress {
			t.progressChangedAt = now
		}
		t.hasProgress = true
		t.progress = hb.Progress
	}
	if t.isolated && !t.stalledLocked(now) {
		t.isolated = false
		tr := Transition{Kind: Recovered, LastHeartbeat: now, At: now,
			Detail: fmt.Sprintf("heartbeat received after %s isolated (%s)", readable.Duration(now.Sub(t.isolatedAt)), strings.ReplaceAll(t.reason, "_", " "))}
		t.reason, t.detail = "", ""
		return []Transition{tr}
	}
	return t.evaluateLocked(now)
}

// Restarted tells the tracker that the supervised agent process was
// (re)started: it gets a full TTL to send its first heartbeat, and its
// progress counter starts afresh. An isolated agent stays isolated until it
// sends a heartbeat.
func (t *HeartbeatTracker) Restarted(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.since = now
	t.hasProgress = false
	t.progress = ""
	if t.isolated {
		t.recheckAt = now.Add(t.set.ttl())
	}
}

// Evaluate checks deadlines at now and returns the transitions due.
func (t *HeartbeatTracker) Evaluate(now time.Time) []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evaluateLocked(now)
}

func (t *HeartbeatTracker) lastSignLocked() time.Time {
	if t.lastBeat.After(t.since) {
		return t.lastBeat
	}
	return t.since
}

func (t *HeartbeatTracker) stalledLocked(now time.Time) bool {
	return t.set.stallAfter > 0 && t.hasProgress && !now.Before(t.progressChangedAt.Add(t.set.stallAfter))
}

func (t *HeartbeatTracker) evaluateLocked(now time.Time) []Transition {
	if t.isolated {
		if !t.recheckAt.IsZero() && !now.Before(t.recheckAt) {
			t.recheckAt = now.Add(t.set.ttl())
			return []Transition{{Kind: StillIsolated, Reason: t.reason, Detail: t.detail, LastHeartbeat: t.lastBeat, At: now}}
		}
		return nil
	}
	ttl := t.set.ttl()
	last := t.lastSignLocked()
	var reason, detail string
	switch {
	case !now.Before(last.Add(ttl)):
		reason = ReasonMissedHeartbeats
		if t.waitingLocked() {
			detail = fmt.Sprintf("no heartbeat within %s of the agent starting (%d × %s interval + %s grace)",
				readable.Duration(ttl), t.set.missed, t.set.interval, t.set.grace)
		} else {
			detail = fmt.Sprintf("no heartbeat for %s (%d missed × %s interval + %s grace)",
				readable.Duration(now.Sub(t.lastBeat)), t.set.missed, t.set.interval, t.set.grace)
		}
	case t.stalledLocked(now):
		reason = ReasonStalled
		detail = fmt.Sprintf("heartbeats arrive but progress %q has not changed for %s (stall_after %s)",
			t.progress, readable.Duration(now.Sub(t.progressChangedAt)), t.set.stallAfter)
	default:
		return nil
	}
	t.isolated, t.reason, t.detail, t.isolatedAt = true, reason, detail, now
	t.recheckAt = now.Add(ttl)
	return []Transition{{Kind: Isolated, Reason: reason, Detail: detail, LastHeartbeat: t.lastBeat, At: now}}
}

// NextDeadline is the next time Evaluate may return a transition.
func (t *HeartbeatTracker) NextDeadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isolated {
		return t.recheckAt
	}
	next := t.lastSignLocked().Add(t.set.ttl())
	if t.set.stallAfter > 0 && t.hasProgress {
		if s := t.progressChangedAt.Add(t.set.stallAfter); s.Before(next) {
			next = s
		}
	}
	return next
}

// HealthSnapshot is the tracker's state, for status output and Consul.
type HealthSnapshot struct {
	State         string         `json:"state"` // waiting | healthy | isolated
	Reason        string         `json:"reason,omitempty"`
	Detail        string         `json:"detail,omitempty"`
	Since         time.Time      `json:"since,omitzero"` // isolated since
	LastHeartbeat time.Time      `json:"last_heartbeat,omitzero"`
	LastSource    string         `json:"last_source,omitempty"`
	Reported      string         `json:"reported_status,omitempty"` // ok | degraded | failing
	Note          string         `json:"note,omitempty"`
	Metrics       map[string]any `json:"metrics,omitempty"`
	Progress      string         `json:"progress,omitempty"`
	ProgressSince time.Time      `json:"progress_changed_at,omitzero"`
	Heartbeats    uint64         `json:"heartbeats"`
	NextDue       time.Time      `json:"next_due,omitzero"`
	IsolatedAfter time.Time      `json:"isolated_after,omitzero"`

	state HealthState
}

// Snapshot returns the current state.
func (t *HeartbeatTracker) Snapshot() HealthSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := HealthSnapshot{Heartbeats: t.heartbeats, LastHeartbeat: t.lastBeat, LastSource: t.last.Source}
	if t.heartbeats > 0 {
		s.Reported, s.Note, s.Metrics = t.last.Status, t.last.Note, t.last.Metrics
	}
	if t.hasProgress {
		s.Progress, s.ProgressSince = t.progress, t.progressChangedAt
	}
	switch s.state = t.stateLocked(); s.state {
	case StateIsolated:
		s.Reason, s.Detail, s.Since = t.reason, t.detail, t.isolatedAt
	case StateWaiting:
		s.IsolatedAfter = t.since.Add(t.set.ttl())
	default:
		s.NextDue = t.lastBeat.Add(t.set.interval)
		s.IsolatedAfter = t.lastBeat.Add(t.set.ttl())
	}
	s.State = s.state.String()
	return s
}

// stateLocked is the agent's state as last evaluated.
func (t *HeartbeatTracker) stateLocked() HealthState {
	switch {
	case t.isolated:
		return StateIsolated
	case t.waitingLocked():
		return StateWaiting
	}
	return StateHealthy
}

// waitingLocked reports whether no heartbeat arrived since the tracker
// started counting (the sidecar's start, or the supervised agent's last).
func (t *HeartbeatTracker) waitingLocked() bool {
	return t.lastBeat.IsZero() || t.lastBeat.Before(t.since)
}

// IsolatedNow reports whether the agent is isolated.
func (s HealthSnapshot) IsolatedNow() bool { return s.state == StateIsolated }
