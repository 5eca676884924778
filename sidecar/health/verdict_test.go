package health

import (
	"strings"
	"testing"
	"time"
)

func TestAgentProbeVerdicts(t *testing.T) {
	// 1m interval, 2 missed, 10s grace: isolated 2m10s after the last
	// heartbeat; the start-up window is 10s + 2 × 1m = 2m10s too.
	const livenessAfter = 30 * time.Second
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	beat := func(d time.Duration, hb Heartbeat) func(*HeartbeatTracker) {
		return func(tr *HeartbeatTracker) { tr.Beat(at(d), hb) }
	}
	evaluate := func(d time.Duration) func(*HeartbeatTracker) {
		return func(tr *HeartbeatTracker) { tr.Evaluate(at(d)) }
	}
	restarted := func(d time.Duration) func(*HeartbeatTracker) {
		return func(tr *HeartbeatTracker) { tr.Restarted(at(d)) }
	}
	steady := func(progress string, until time.Duration) func(*HeartbeatTracker) {
		return func(tr *HeartbeatTracker) {
			for d := time.Duration(0); d <= until; d += time.Minute {
				tr.Beat(at(d), Heartbeat{Progress: progress})
				tr.Evaluate(at(d + time.Second))
			}
		}
	}

	tests := []struct {
		name          string
		missed        int
		stallAfter    time.Duration
		livenessAfter time.Duration
		steps         []func(*HeartbeatTracker)
		ask           time.Duration

		live, ready             string // VerdictOK or VerdictFailing
		state                   string
		liveReason, readyReason string // a part of the reason; "" for none
		isolatedFor             string
	}{
		{name: "no heartbeat yet, within the start-up window",
			ask:  2 * time.Minute,
			live: VerdictOK, ready: VerdictFailing, state: "waiting", readyReason: "no heartbeat yet"},
		{name: "no heartbeat yet, the start-up window just over: hung at start, within liveness_after",
			steps: []func(*HeartbeatTracker){evaluate(2*time.Minute + 10*time.Second)},
			ask:   2*time.Minute + 20*time.Second,
			live:  VerdictOK, ready: VerdictFailing, state: "isolated", isolatedFor: "10s",
			liveReason:  "no heartbeat within 2m10s of the agent starting (grace 10s + 2 × heartbeat_interval 1m0s)",
			readyReason: "the agent is isolated: no heartbeat within 2m10s of the agent starting"},
		{name: "no heartbeat yet, liveness_after past the start-up window",
			steps: []func(*HeartbeatTracker){evaluate(2*time.Minute + 10*time.Second)},
			ask:   2*time.Minute + 40*time.Second,
			live:  VerdictFailing, ready: VerdictFailing, state: "isolated", isolatedFor: "30s",
			liveReason: "no heartbeat within 2m10s of the agent starting"},
		{name: "no heartbeat yet with 3 missed allowed: live fails at the start-up window, before the tracker isolates",
			missed: 3,
			ask:    2*time.Minute + 40*time.Second,
			live:   VerdictFailing, ready: VerdictFailing, state: "waiting", isolatedFor: "30s",
			liveReason: "no heartbeat within 2m10s of the agent starting", readyReason: "no heartbeat yet"},
		{name: "healthy",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{})},
			ask:   time.Minute,
			live:  VerdictOK, ready: VerdictOK, state: "healthy"},
		{name: "degraded is ready",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{Status: ReportDegraded, Note: "rate limited"})},
			ask:   time.Minute,
			live:  VerdictOK, ready: VerdictOK, state: "healthy"},
		{name: "failing is alive but not ready",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{Status: ReportFailing})},
			ask:   time.Minute,
			live:  VerdictOK, ready: VerdictFailing, state: "healthy", readyReason: "the agent reports it is failing"},
		{name: "isolated just now, liveness_after 30s",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{}), evaluate(2*time.Minute + 10*time.Second)},
			ask:   2*time.Minute + 10*time.Second,
			live:  VerdictOK, ready: VerdictFailing, state: "isolated", isolatedFor: "0s",
			liveReason:  "no heartbeat for 2m10s (2 missed × 1m0s interval + 10s grace)",
			readyReason: "the agent is isolated: no heartbeat for 2m10s"},
		{name: "isolated just now, liveness_after 0s (the default)",
			livenessAfter: -1, // 0
			steps:         []func(*HeartbeatTracker){beat(0, Heartbeat{}), evaluate(2*time.Minute + 10*time.Second)},
			ask:           2*time.Minute + 10*time.Second,
			live:          VerdictFailing, ready: VerdictFailing, state: "isolated", isolatedFor: "0s",
			liveReason: "no heartbeat for 2m10s"},
		{name: "isolated longer than liveness_after",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{}), evaluate(2*time.Minute + 10*time.Second)},
			ask:   2*time.Minute + 41*time.Second,
			live:  VerdictFailing, ready: VerdictFailing, state: "isolated", isolatedFor: "31s",
			liveReason: "no heartbeat for 2m10s (2 missed × 1m0s interval + 10s grace)"},
		{name: "a deadline passed that the watcher has not evaluated yet counts",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{})},
			ask:   3 * time.Minute,
			live:  VerdictFailing, ready: VerdictFailing, state: "healthy", isolatedFor: "50s",
			liveReason: "no heartbeat for 3m0s", readyReason: "the agent is isolated: no heartbeat for 3m0s"},
		{name: "recovered",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{}), evaluate(2*time.Minute + 10*time.Second),
				beat(5*time.Minute, Heartbeat{})},
			ask:  5 * time.Minute,
			live: VerdictOK, ready: VerdictOK, state: "healthy"},
		{name: "stalled longer than liveness_after; the progress value is not shown",
			stallAfter: 5 * time.Minute,
			steps:      []func(*HeartbeatTracker){steady("task-4711-secret", 5*time.Minute)}, // isolated at 5m
			ask:        5*time.Minute + 31*time.Second,
			live:       VerdictFailing, ready: VerdictFailing, state: "isolated", isolatedFor: "31s",
			liveReason:  "heartbeats arrive but their progress has not changed for 5m31s (stall_after 5m0s)",
			readyReason: "the agent is isolated: heartbeats arrive but their progress has not changed"},
		{name: "a supervised agent restarted after its isolation gets a start-up window",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{}), evaluate(2*time.Minute + 10*time.Second),
				restarted(3 * time.Minute)},
			ask:  4 * time.Minute,
			live: VerdictOK, ready: VerdictFailing, state: "isolated", readyReason: "the agent is isolated"},
		{name: "a supervised agent restarted for another reason is not ready until it heartbeats",
			steps: []func(*HeartbeatTracker){beat(0, Heartbeat{}), restarted(30 * time.Second)},
			ask:   time.Minute,
			live:  VerdictOK, ready: VerdictFailing, state: "waiting",
			readyReason: "no heartbeat since the agent process was restarted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			missed := 2
			if tc.missed > 0 {
				missed = tc.missed
			}
			h := health(time.Minute, missed, 10*time.Second, tc.stallAfter)
			h.LivenessAfter = livenessAfter
			if tc.livenessAfter < 0 {
				h.LivenessAfter = 0
			}
			tr := NewHeartbeatTracker(h, t0)
			for _, step := range tc.steps {
				step(tr)
			}

			live, ready := tr.Live(at(tc.ask)), tr.Ready(at(tc.ask))

			if live.Status != tc.live || live.State != tc.state {
				t.Errorf("live: got %s (%s), want %s (%s): %+v", live.Status, live.State, tc.live, tc.state, live)
			}
			if ready.Status != tc.ready || ready.State != tc.state {
				t.Errorf("ready: got %s (%s), want %s (%s): %+v", ready.Status, ready.State, tc.ready, tc.state, ready)
			}
			if live.OK() != (tc.live == VerdictOK) || ready.OK() != (tc.ready == VerdictOK) {
				t.Errorf("OK(): live %v, ready %v", live.OK(), ready.OK())
			}
			if !strings.Contains(live.Reason, tc.liveReason) || (tc.liveReason == "") != (live.Reason == "") {
				t.Errorf("live reason: got %q, want %q", live.Reason, tc.liveReason)
			}
			if !strings.Contains(ready.Reason, tc.readyReason) || (tc.ready == VerdictFailing) != (ready.Reason != "") {
				t.Errorf("ready reason: got %q, want %q", ready.Reason, tc.readyReason)
			}
			if live.IsolatedFor != tc.isolatedFor || ready.IsolatedFor != "" {
				t.Errorf("isolated_for: got live %q ready %q, want %q and none", live.IsolatedFor, ready.IsolatedFor, tc.isolatedFor)
			}
			for _, v := range []Verdict{live, ready} {
				if strings.Contains(v.Reason, "secret") || strings.Contains(v.Reason, "rate limited") {
					t.Errorf("a verdict shows what the agent wrote: %+v", v)
				}
			}
		})
	}
}

// The verdicts follow a reload of the health settings.
func TestAgentProbeVerdictsFollowReload(t *testing.T) {
	h := health(time.Minute, 2, 10*time.Second, 0)
	h.LivenessAfter = time.Hour
	tr := NewHeartbeatTracker(h, t0)
	tr.Beat(t0, Heartbeat{})
	tr.Evaluate(t0.Add(2*time.Minute + 10*time.Second))
	if v := tr.Live(t0.Add(3 * time.Minute)); !v.OK() {
		t.Fatalf("isolated 50s with liveness_after 1h: %+v, want ok", v)
	}
	h.LivenessAfter = 0
	tr.SetHealth(h, t0.Add(3*time.Minute))
	if v := tr.Live(t0.Add(3 * time.Minute)); v.OK() {
		t.Fatalf("isolated 50s with liveness_after 0s: %+v, want failing", v)
	}
}
