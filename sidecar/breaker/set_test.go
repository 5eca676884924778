package breaker

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
)

func TestSetGet(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*policies.Breaker)
		wantSame  bool
		wantState State
	}{
		{"unchanged settings keep the breaker and its state", func(*policies.Breaker) {}, true, Open},
		{"changed settings start afresh", func(c *policies.Breaker) { c.ConsecutiveFailures = 5 }, false, Closed},
		{"changed statuses start afresh", func(c *policies.Breaker) { c.FailureStatuses = []int{502} }, false, Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a set with an open breaker
			s := NewSet()
			var rec recorder
			s.OnChange(rec.listen)
			cfg := testConfig(func(c *policies.Breaker) { c.OpenFor = time.Minute })
			b := s.Get("researcher@10.0.0.5:8081", cfg)
			trip(t, b)

			// When it is asked for again
			tt.change(&cfg)
			got := s.Get("researcher@10.0.0.5:8081", cfg)

			// Then it is the same breaker, or a fresh one
			if (got == b) != tt.wantSame {
				t.Fatalf("same breaker = %v, want %v", got == b, tt.wantSame)
			}
			if st := got.State(); st != tt.wantState {
				t.Fatalf("state = %s, want %s", st, tt.wantState)
			}
			if l, _ := s.Lookup("researcher@10.0.0.5:8081"); l != got {
				t.Fatal("Lookup does not return the current breaker")
			}
			want := []string{"closed>open"}
			if !tt.wantSame {
				want = append(want, "open>closed")
			}
			if got := rec.transitions(); !slices.Equal(got, want) {
				t.Errorf("changes = %v, want %v", got, want)
			}

			// And the replaced breaker no longer speaks for the name
			if !tt.wantSame {
				b.Reset()
				if got := rec.transitions(); len(got) != len(want) {
					t.Errorf("the replaced breaker still notifies: %v", got)
				}
			}
		})
	}
}

func TestSetKeepsABreakerWhoseSettingsReloadUnchanged(t *testing.T) {
	// The default settings, resolved afresh (as a reload does), keep the
	// same breaker; so do statuses listed out of order, which the breaker
	// sorts.
	s := NewSet()
	b := s.Get("agent:writer", policies.BreakerDefaults())
	if got := s.Get("agent:writer", policies.BreakerDefaults()); got != b {
		t.Fatal("the same settings, resolved again, replaced the breaker")
	}
	if !reflect.DeepEqual(b.Config(), policies.BreakerDefaults()) {
		t.Fatalf("Config() = %+v, want the settings given", b.Config())
	}
	cfg := policies.BreakerDefaults()
	cfg.FailureStatuses = []int{503, 429}
	b = s.Get("model:gpt-4o", cfg)
	cfg.FailureStatuses = []int{429, 503}
	if got := s.Get("model:gpt-4o", cfg); got != b {
		t.Fatal("the same statuses in another order replaced the breaker")
	}
}

func TestNewUsesItsSettingsAsGiven(t *testing.T) {
	// Defaults are policies' business: a breaker given one consecutive
	// failure and no failure statuses opens on the first error, and no
	// status counts.
	b := New("t", policies.Breaker{ConsecutiveFailures: 1, OpenFor: time.Minute, MaxOpenFor: time.Minute, HalfOpenProbes: 1})
	calls(t, b, 3, fail)
	if got := b.State(); got != Closed {
		t.Fatalf("after three 503s with no failure statuses: %s, want closed", got)
	}
	calls(t, b, 1, failed)
	if got := b.State(); got != Open {
		t.Fatalf("after one error: %s, want open", got)
	}
}

func TestSetSnapshotsRetainAndListeners(t *testing.T) {
	// Given a set with a listener and three breakers, one created later
	s := NewSet()
	var rec recorder
	s.OnChange(rec.listen)
	s.Get("peer:b", testConfig(nil))
	s.Get("agent:a", testConfig(nil))
	late := s.Get("researcher@c", testConfig(nil))

	// When the late one trips, the set's listener hears of it
	trip(t, late)
	if got := rec.transitions(); !slices.Equal(got, []string{"closed>open"}) || rec.all()[0].Name != "researcher@c" {
		t.Fatalf("changes = %+v", rec.all())
	}

	// Snapshots are sorted by name
	var names []string
	for _, sn := range s.Snapshots() {
		names = append(names, sn.Name)
	}
	if want := []string{"agent:a", "peer:b", "researcher@c"}; !slices.Equal(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}

	// Retain drops the others
	s.Retain(map[string]bool{"agent:a": true})
	if _, ok := s.Lookup("peer:b"); ok {
		t.Fatal("peer:b kept")
	}
	if _, ok := s.Lookup("agent:a"); !ok {
		t.Fatal("agent:a dropped")
	}
	if got := len(s.Snapshots()); got != 1 {
		t.Fatalf("%d snapshots, want 1", got)
	}
}

func TestSnapshotJSON(t *testing.T) {
	b, clk := clocked("agent:writer", testConfig(func(c *policies.Breaker) { c.OpenFor = 20 * time.Second }))
	closed, _ := json.Marshal(b.Snapshot())
	for _, absent := range []string{"last_failure", "opened_at", "half_open_in", "open_for", "forced"} {
		if strings.Contains(string(closed), absent) {
			t.Errorf("closed snapshot has %q: %s", absent, closed)
		}
	}
	trip(t, b)
	clk.Advance(2500 * ms)
	open, _ := json.Marshal(b.Snapshot())
	var m map[string]any
	if err := json.Unmarshal(open, &m); err != nil {
		t.Fatal(err)
	}
	if m["state"] != "open" || m["open_for"] != "20s" || m["last_failure_reason"] != "503" || m["opened_at"] != t0.Format(time.RFC3339) {
		t.Errorf("open snapshot = %s", open)
	}
	if m["half_open_in"] != "17.5s" {
		t.Errorf("half_open_in = %v, want 17.5s", m["half_open_in"])
	}
}

func TestRoundDur(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{12345 * ms, "12.3s"},
		{46 * time.Second, "46s"},
		{40*ms + 400*time.Microsecond, "40ms"},
		{90*time.Second + 400*ms, "1m30s"},
	}
	for _, tt := range tests {
		if got := readable.Duration(tt.in).String(); got != tt.want {
			t.Errorf("readable.Duration(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSetClock(t *testing.T) {
	// Given a set whose breakers read a test clock
	clk := newClock()
	s := NewSetWithClock(clk.Now)
	b := s.Get("researcher@10.0.0.5:8081", testConfig(nil))
	trip(t, b)

	// Then they open and half-open by that clock
	if got := b.Snapshot().OpenedAt; !got.Equal(t0) {
		t.Fatalf("opened at %s, want %s", got, t0)
	}
	waitOut(t, b, clk)

	// And a change of settings is announced at the clock's time
	var rec recorder
	s.OnChange(rec.listen)
	clk.Advance(time.Minute)
	s.Get("researcher@10.0.0.5:8081", testConfig(func(c *policies.Breaker) { c.ConsecutiveFailures = 5 }))
	if chs := rec.all(); len(chs) != 1 || !chs[0].At.Equal(clk.Now()) {
		t.Fatalf("changes = %+v, want one at %s", chs, clk.Now())
	}
}
