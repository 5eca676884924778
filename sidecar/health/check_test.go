package health

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
)

func TestHeartbeatCheckOutput(t *testing.T) {
	tr := NewHeartbeatTracker(health(time.Minute, 2, 10*time.Second, 0), t0)
	status, out := FormatCheck(tr.Snapshot())
	if status != discovery.Critical || !strings.Contains(out, "Waiting for the first heartbeat") {
		t.Fatalf("before any heartbeat: %s %q", status, out)
	}
	cases := []struct {
		report string
		want   discovery.CheckStatus
	}{
		{ReportOK, discovery.Passing},
		{ReportDegraded, discovery.Warning},
		{ReportFailing, discovery.Critical},
	}
	for _, tc := range cases {
		t.Run(tc.report, func(t *testing.T) {
			tr.Beat(t0, Heartbeat{Status: tc.report, Note: "queue is long", Metrics: map[string]any{"queue": 12, "tokens": 3.5}})
			got, out := FormatCheck(tr.Snapshot())
			if got != tc.want {
				t.Errorf("status %s, want %s", got, tc.want)
			}
			for _, want := range []string{"Heartbeat " + tc.report + " at 2026-11-26 12:00:00 UTC", "Note: queue is long", "Metrics: queue=12, tokens=3.5", "isolated after 2026-11-26 12:02:10 UTC"} {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
		})
	}
	tr.Evaluate(t0.Add(time.Hour))
	status, out = FormatCheck(tr.Snapshot())
	if status != discovery.Critical || !strings.HasPrefix(out, "ISOLATED since") || !strings.Contains(out, "A new heartbeat recovers the agent") {
		t.Fatalf("isolated: %s %q", status, out)
	}
}

// TestCheckRoundTrip writes the check of each state the tracker can be in
// and reads it back: what ParseCheck promises to read must survive.
func TestCheckRoundTrip(t *testing.T) {
	h := health(time.Minute, 2, 10*time.Second, 5*time.Minute)
	cases := []struct {
		name  string
		given func(tr *HeartbeatTracker)
	}{
		{"waiting", func(*HeartbeatTracker) {}},
		{"healthy", func(tr *HeartbeatTracker) { tr.Beat(t0, Heartbeat{Source: SourceAPI}) }},
		{"degraded from the probe, with a note, metrics and progress", func(tr *HeartbeatTracker) {
			tr.Beat(t0, Heartbeat{Status: ReportDegraded, Source: SourceProbe, Note: "queue is long (12)",
				Metrics: map[string]any{"queue": 12}, Progress: "step 4 (changed 2026-01-01 00:00:00 UTC)"})
		}},
		{"failing, with a note over lines", func(tr *HeartbeatTracker) {
			tr.Beat(t0, Heartbeat{Status: ReportFailing, Source: SourceAPI, Note: "disk full\nretrying: in 1m"})
		}},
		{"isolated without a heartbeat", func(tr *HeartbeatTracker) { tr.Evaluate(t0.Add(time.Hour)) }},
		{"isolated after heartbeats", func(tr *HeartbeatTracker) {
			tr.Beat(t0, Heartbeat{Status: ReportDegraded, Note: "slow"})
			tr.Evaluate(t0.Add(10 * time.Minute))
		}},
		{"isolated as stalled", func(tr *HeartbeatTracker) {
			for i := 0; i <= 6; i++ {
				tr.Beat(t0.Add(time.Duration(i)*time.Minute), Heartbeat{Progress: "42"})
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewHeartbeatTracker(h, t0)
			tc.given(tr)
			snap := tr.Snapshot()
			_, out := FormatCheck(snap)

			got, err := ParseCheck(out)
			if err != nil {
				t.Fatalf("ParseCheck(%q): %v", out, err)
			}

			// What the output does not carry: the reason (in the detail's
			// words instead), metrics, the count, the source of an API
			// heartbeat, and the next deadlines of an isolated agent.
			want := snap
			want.Reason, want.Metrics, want.Heartbeats = "", nil, 0
			if want.LastSource != SourceProbe || want.state != StateHealthy {
				want.LastSource = ""
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("read back\n%+v\nwant\n%+v\nfrom %q", got, want, out)
			}
		})
	}
}

func TestParseCheckRefusesOtherText(t *testing.T) {
	for _, out := range []string{"", "TTL expired", "Heartbeat ok at yesterday.", "ISOLATED since 2026-11-26 12:00:00 UTC: x."} {
		if _, err := ParseCheck(out); !errors.Is(err, ErrNotHeartbeatCheck) {
			t.Errorf("ParseCheck(%q) = %v, want ErrNotHeartbeatCheck", out, err)
		}
	}
}
