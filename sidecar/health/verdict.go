package health

import (
	"fmt"
	"time"

	"github.com/agent-sidecar/sidecar/internal/readable"
)

// The agent probes tell an orchestrator about the agent, not the sidecar:
//
//	live   fails once the agent has been isolated (silent or stalled) for
//	       health.liveness_after, so that it is restarted. An agent that has
//	       not sent a heartbeat since it started passes during its start-up
//	       window (grace + 2 × heartbeat_interval), then counts as isolated
//	       from the window's end: it is hung at start.
//	ready  fails while the agent has sent no heartbeat since it started, is
//	       isolated, or reports "failing", so that no traffic is sent to it.
//
// Both are read from the tracker at the time asked, without waiting for the
// deadline watcher: a deadline that has passed counts as an isolation.

// Statuses of a Verdict.
const (
	VerdictOK      = "ok"
	VerdictFailing = "failing"
)

// Verdict is the answer of an agent probe. It holds nothing the agent
// wrote (no note, metrics or progress value): the probe listener answers
// whoever reaches it.
type Verdict struct {
	Status string `json:"status"` // VerdictOK or VerdictFailing
	State  string `json:"state"`  // the tracker's state: waiting | healthy | isolated
	// Reported is the status of the agent's last heartbeat (ok, degraded,
	// failing), when it sent one.
	Reported string `json:"reported_status,omitempty"`
	// Reason says why the probe fails, or (live, while it still passes)
	// why the agent is isolated.
	Reason string `json:"reason,omitempty"`
	// IsolatedFor is how long the agent has counted as isolated (live
	// only), e.g. "12s".
	IsolatedFor string `json:"isolated_for,omitempty"`
}

// OK reports whether the probe passes.
func (v Verdict) OK() bool { return v.Status == VerdictOK }

// Live is the liveness probe's verdict at now: failing once the agent has
// counted as isolated for at least liveness_after.
func (t *HeartbeatTracker) Live(now time.Time) Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.verdictLocked()
	since, reason, hung := t.hungLocked(now)
	if !hung {
		return v
	}
	isolatedFor := max(now.Sub(since), 0)
	v.Reason, v.IsolatedFor = reason, readable.Duration(isolatedFor).String()
	if isolatedFor >= t.set.livenessAfter {
		v.Status = VerdictFailing
	}
	return v
}

// Ready is the readiness probe's verdict at now.
func (t *HeartbeatTracker) Ready(now time.Time) Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.verdictLocked()
	_, overdue, hung := t.hungLocked(now)
	switch {
	case t.isolated:
		v.Status, v.Reason = VerdictFailing, "the agent is isolated: "+t.publicReasonLocked(now)
	case hung && !t.waitingLocked():
		v.Status, v.Reason = VerdictFailing, "the agent is isolated: "+overdue
	case t.waitingLocked() && t.heartbeats > 0:
		v.Status, v.Reason = VerdictFailing, "no heartbeat since the agent process was restarted"
	case t.waitingLocked():
		v.Status, v.Reason = VerdictFailing, "no heartbeat yet"
	case t.last.Status == ReportFailing:
		v.Status, v.Reason = VerdictFailing, "the agent reports it is failing"
	}
	return v
}

// verdictLocked is a passing verdict with the agent's state.
func (t *HeartbeatTracker) verdictLocked() Verdict {
	v := Verdict{Status: VerdictOK, State: t.stateLocked().String()}
	if t.heartbeats > 0 {
		v.Reported = t.last.Status
	}
	return v
}

// hungLocked reports whether the agent counts as isolated for the probes
// at now, since when, and why. An agent without a heartbeat since it
// started counts from the end of its start-up window (whether or not the
// tracker has isolated it yet); any other from its isolation, or from the
// deadline it missed when the watcher has not evaluated it yet.
func (t *HeartbeatTracker) hungLocked(now time.Time) (since time.Time, reason string, hung bool) {
	if t.waitingLocked() {
		end := t.since.Add(t.set.startup)
		if now.Before(end) {
			return time.Time{}, "", false
		}
		return end, fmt.Sprintf("no heartbeat within %s of the agent starting (grace %s + 2 × heartbeat_interval %s)",
			readable.Duration(t.set.startup), t.set.grace, t.set.interval), true
	}
	if t.isolated {
		return t.isolatedAt, t.publicReasonLocked(now), true
	}
	if deadline := t.lastBeat.Add(t.set.ttl()); !now.Before(deadline) {
		return deadline, fmt.Sprintf("no heartbeat for %s (%d missed × %s interval + %s grace)",
			readable.Duration(now.Sub(t.lastBeat)), t.set.missed, t.set.interval, t.set.grace), true
	}
	if t.stalledLocked(now) {
		return t.progressChangedAt.Add(t.set.stallAfter), t.stallReasonLocked(now), true
	}
	return time.Time{}, "", false
}

// publicReasonLocked says why the isolated agent is isolated, without the
// progress value the agent reported.
func (t *HeartbeatTracker) publicReasonLocked(now time.Time) string {
	if t.reason == ReasonStalled {
		return t.stallReasonLocked(now)
	}
	return t.detail // written by the tracker from times and settings only
}

// stallReasonLocked says for how long the agent's progress has not changed.
func (t *HeartbeatTracker) stallReasonLocked(now time.Time) string {
	return fmt.Sprintf("heartbeats arrive but their progress has not changed for %s (stall_after %s)",
		readable.Duration(now.Sub(t.progressChangedAt)), t.set.stallAfter)
}
