package health

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func health(interval time.Duration, missed int, grace, stall time.Duration) policies.Health {
	return policies.Health{HeartbeatInterval: interval, MissedHeartbeats: missed, Grace: grace, StallAfter: stall}
}

func kinds(trs []Transition) []TransitionKind {
	out := make([]TransitionKind, 0, len(trs))
	for _, tr := range trs {
		out = append(out, tr.Kind)
	}
	return out
}

func TestTrackerIsolatesAfterMissedHeartbeats(t *testing.T) {
	cases := []struct {
		name     string
		missed   int
		beats    []time.Duration // offsets from t0
		evalAt   time.Duration
		isolated bool
	}{
		{"one interval after the last heartbeat is still healthy", 2, []time.Duration{0}, 1 * time.Minute, false},
		{"one late heartbeat within grace never isolates", 2, []time.Duration{0, 70 * time.Second}, 140 * time.Second, false},
		{"two missed plus grace isolates", 2, []time.Duration{0}, 2*time.Minute + 10*time.Second, true},
		{"just before two missed plus grace is not isolated", 2, []time.Duration{0}, 2*time.Minute + 9*time.Second, false},
		{"three missed configured: two are not enough", 3, []time.Duration{0}, 2*time.Minute + 10*time.Second, false},
		{"no heartbeat ever: isolated a full TTL after start", 2, nil, 2*time.Minute + 10*time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewHeartbeatTracker(health(time.Minute, tc.missed, 10*time.Second, 0), t0)
			for _, off := range tc.beats {
				tr.Beat(t0.Add(off), Heartbeat{})
			}
			got := tr.Evaluate(t0.Add(tc.evalAt))
			if tc.isolated {
				if len(got) != 1 || got[0].Kind != Isolated || got[0].Reason != ReasonMissedHeartbeats {
					t.Fatalf("got transitions %+v, want one isolation for missed heartbeats", got)
				}
			} else if len(got) != 0 {
				t.Fatalf("got transitions %+v, want none", got)
			}
		})
	}
}

func TestTrackerIsolationAndRecoveryHappenOnce(t *testing.T) {
	// Given a tracker with a 1m interval, 2 missed and 10s grace
	tr := NewHeartbeatTracker(health(time.Minute, 2, 10*time.Second, 0), t0)
	tr.Beat(t0, Heartbeat{Note: "working"})
	if d := tr.NextDeadline(); !d.Equal(t0.Add(2*time.Minute + 10*time.Second)) {
		t.Fatalf("next deadline %v, want last heartbeat + 2m10s", d)
	}

	// When the deadline passes and is evaluated twice
	first := tr.Evaluate(t0.Add(2*time.Minute + 10*time.Second))
	second := tr.Evaluate(t0.Add(2*time.Minute + 20*time.Second))

	// Then exactly one isolation is reported
	if got := kinds(first); len(got) != 1 || got[0] != Isolated {
		t.Fatalf("first evaluation: %v, want [Isolated]", got)
	}
	if len(second) != 0 {
		t.Fatalf("second evaluation: %+v, want nothing", second)
	}
	if s := tr.Snapshot(); s.State != "isolated" || s.Reason != ReasonMissedHeartbeats || !strings.Contains(s.Detail, "no heartbeat for 2m10s") {
		t.Fatalf("snapshot %+v, want isolated for missed heartbeats", s)
	}

	// When a heartbeat arrives, then the agent recovers once
	rec := tr.Beat(t0.Add(3*time.Minute), Heartbeat{})
	if got := kinds(rec); len(got) != 1 || got[0] != Recovered {
		t.Fatalf("recovery: %v, want [Recovered]", got)
	}
	if again := tr.Beat(t0.Add(3*time.Minute+time.Second), Heartbeat{}); len(again) != 0 {
		t.Fatalf("second heartbeat after recovery: %+v, want nothing", again)
	}
	if s := tr.Snapshot(); s.State != "healthy" {
		t.Fatalf("state %q, want healthy", s.State)
	}
}

func TestTrackerStillIsolatedAfterAnotherTTL(t *testing.T) {
	tr := NewHeartbeatTracker(health(time.Minute, 2, 0, 0), t0)
	tr.Evaluate(t0.Add(2 * time.Minute))
	if got := kinds(tr.Evaluate(t0.Add(4 * time.Minute))); len(got) != 1 || got[0] != StillIsolated {
		t.Fatalf("got %v, want [StillIsolated] a TTL after isolation", got)
	}
	// A restart of the supervised agent gives it a full TTL again.
	tr.Restarted(t0.Add(5 * time.Minute))
	if got := tr.Evaluate(t0.Add(6 * time.Minute)); len(got) != 0 {
		t.Fatalf("got %+v within a TTL of the restart, want nothing", got)
	}
}

func TestTrackerStall(t *testing.T) {
	// Given stall detection after 10m and heartbeats every minute
	tr := NewHeartbeatTracker(health(time.Minute, 2, 10*time.Second, 10*time.Minute), t0)
	var got []Transition
	for i := 0; i <= 12; i++ {
		// When the progress stays at 42 for 12 minutes
		got = append(got, tr.Beat(t0.Add(time.Duration(i)*time.Minute), Heartbeat{Progress: "42"})...)
		got = append(got, tr.Evaluate(t0.Add(time.Duration(i)*time.Minute+time.Second))...)
	}
	// Then the agent is isolated once, as stalled
	if len(got) != 1 || got[0].Kind != Isolated || got[0].Reason != ReasonStalled {
		t.Fatalf("got %+v, want one isolation as stalled", got)
	}
	// And a heartbeat with the same progress does not recover it
	for _, tr := range tr.Beat(t0.Add(13*time.Minute), Heartbeat{Progress: "42"}) {
		if tr.Kind == Recovered {
			t.Fatalf("same progress: %+v, want no recovery", tr)
		}
	}
	// But new progress does
	if rec := tr.Beat(t0.Add(14*time.Minute), Heartbeat{Progress: "43"}); len(rec) != 1 || rec[0].Kind != Recovered {
		t.Fatalf("new progress: %+v, want recovery", rec)
	}
}

func TestTrackerProgressKeepsAgentHealthy(t *testing.T) {
	tr := NewHeartbeatTracker(health(time.Minute, 2, 0, 5*time.Minute), t0)
	for i := 0; i <= 20; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		if trs := append(tr.Beat(at, Heartbeat{Progress: string(rune('a' + i))}), tr.Evaluate(at.Add(30*time.Second))...); len(trs) != 0 {
			t.Fatalf("minute %d: %+v, want no transition while progress changes", i, trs)
		}
	}
}
