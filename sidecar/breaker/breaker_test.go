package breaker

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

func TestTripsOnConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int // FailureStatuses; nil for the default (429, 5xx)
		outcomes []outcome
		want     State
	}{
		{"N-1 failures stay closed", nil, []outcome{fail, fail}, Closed},
		{"N failures open", nil, []outcome{fail, fail, fail}, Open},
		{"connection errors count", nil, []outcome{failed, failed, failed}, Open},
		{"a success in between resets the count", nil, []outcome{fail, fail, ok200, fail, fail}, Closed},
		{"4xx are the caller's fault", nil, []outcome{{status: 400}, {status: 404}, {status: 422}, {status: 401}}, Closed},
		{"a 4xx shows the target answers: it resets the count", nil, []outcome{fail, fail, {status: 404}, fail}, Closed},
		{"429 counts", nil, []outcome{{status: 429}, {status: 429}, {status: 429}}, Open},
		{"any 5xx counts", nil, []outcome{{status: 500}, {status: 502}, {status: 599}}, Open},
		{"custom statuses: 500 no longer counts", []int{502, 504}, []outcome{{status: 500}, {status: 500}, {status: 500}}, Closed},
		{"custom statuses: listed ones count", []int{502, 504}, []outcome{{status: 502}, {status: 504}, {status: 502}}, Open},
		{"custom statuses: a 4xx may count", []int{409}, []outcome{{status: 409}, {status: 409}, {status: 409}}, Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("t", testConfig(func(c *policies.Breaker) {
				if tt.statuses != nil {
					c.FailureStatuses = tt.statuses
				}
			}))
			for _, o := range tt.outcomes {
				call(b, o)
			}
			if got := b.State(); got != tt.want {
				t.Errorf("state = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestTripReasonAndSnapshot(t *testing.T) {
	// Given a breaker that saw two refused connections and a 503
	b, clk := clocked("researcher@10.0.0.5:8081", testConfig(nil))
	calls(t, b, 2, failed)
	clk.Advance(10 * ms)
	calls(t, b, 1, fail)

	// Then the snapshot explains the open state
	clk.Advance(10 * ms)
	s := b.Snapshot()
	if s.State != "open" || s.ConsecutiveFailures != 3 || s.LastFailureReason != "503" || s.Trips != 1 {
		t.Errorf("snapshot = %+v", s)
	}
	opened := t0.Add(10 * ms)
	if !s.OpenedAt.Equal(opened) || !s.LastFailure.Equal(opened) || s.HalfOpenIn != 40*ms || s.HalfOpenInText != "40ms" || s.OpenFor != "50ms" {
		t.Errorf("snapshot times = %+v", s)
	}
	if s.Calls != 3 || s.Failures != 3 {
		t.Errorf("calls/failures = %d/%d, want 3/3", s.Calls, s.Failures)
	}
}

func TestOpenAdmitsNothing(t *testing.T) {
	// Given an open breaker
	b, clk := clocked("t", testConfig(func(c *policies.Breaker) { c.OpenFor = time.Second }))
	trip(t, b)

	// When 100 calls arrive during its open period
	clk.Advance(999 * ms)
	admitted := 0
	for range 100 {
		if call(b, ok200) {
			admitted++
		}
	}

	// Then none reaches the target
	if admitted != 0 {
		t.Errorf("%d calls admitted while open", admitted)
	}
	if got := b.Snapshot().Rejected; got != 100 {
		t.Errorf("rejected = %d, want 100", got)
	}
	assertRemaining(t, b, ms)
}

func TestHalfOpenAdmitsExactlyTheProbes(t *testing.T) {
	for _, probes := range []int{1, 2, 3} {
		t.Run(strings.Repeat("probe ", probes), func(t *testing.T) {
			// Given a breaker that tripped and waited out its open period
			b, clk := clocked("t", testConfig(func(c *policies.Breaker) { c.HalfOpenProbes = probes }))
			trip(t, b)
			waitOut(t, b, clk)

			// When more calls arrive than there are probes
			var permits []Permit
			for range probes + 3 {
				if p, ok := b.Allow(); ok {
					permits = append(permits, p)
				}
			}

			// Then exactly the probes are admitted
			if len(permits) != probes {
				t.Fatalf("admitted %d, want %d", len(permits), probes)
			}

			// When a probe is cancelled, its place goes to another call
			permits[0].Cancel()
			p, ok := b.Allow()
			if !ok {
				t.Fatal("no call admitted after a probe was cancelled")
			}
			if _, ok := b.Allow(); ok {
				t.Fatal("more calls than probes admitted after a cancel")
			}

			// When every probe succeeds, the breaker closes
			p.Done(200, nil)
			for _, p := range permits[1:] {
				if got := b.State(); got != HalfOpen {
					t.Fatalf("closed before all probes succeeded: %s", got)
				}
				p.Done(200, nil)
			}
			if got := b.State(); got != Closed {
				t.Fatalf("after %d successful probes: %s, want closed", probes, got)
			}
		})
	}
}

func TestReTripDoublesOpenPeriod(t *testing.T) {
	// Given a breaker open for 50ms, at most 150ms
	b, clk := clocked("t", testConfig(func(c *policies.Breaker) { c.MaxOpenFor = 150 * ms }))
	trip(t, b)
	assertRemaining(t, b, 50*ms)

	// When the probe fails, the breaker opens for twice as long
	waitOut(t, b, clk)
	calls(t, b, 1, fail)
	assertRemaining(t, b, 100*ms)
	if got := b.Snapshot().OpenFor; got != "100ms" {
		t.Errorf("open_for = %q, want 100ms", got)
	}

	// When it fails again, the doubling stops at MaxOpenFor
	waitOut(t, b, clk)
	calls(t, b, 1, failed)
	assertRemaining(t, b, 150*ms)

	// When a probe succeeds, it closes, and the next trip is back to 50ms
	waitOut(t, b, clk)
	calls(t, b, 1, ok200)
	if got := b.State(); got != Closed {
		t.Fatalf("after a successful probe: %s", got)
	}
	trip(t, b)
	assertRemaining(t, b, 50*ms)
	if got := b.Snapshot().Trips; got != 4 {
		t.Errorf("trips = %d, want 4", got)
	}
}

func TestTripsOnFailureRate(t *testing.T) {
	tests := []struct {
		name     string
		failures int // of 10 calls, never two in a row
		want     State
	}{
		{"5 of 10 is 50%: open", 5, Open},
		{"4 of 10 is 40%: closed", 4, Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a breaker that opens at 50% of at least 10 calls in 1s
			b, _ := clocked("t", testConfig(func(c *policies.Breaker) {
				c.FailureRate, c.MinCalls, c.Window = 50, 10, time.Second
			}))
			var rec recorder
			b.OnChange(rec.listen)

			// When failures alternate with successes
			for i := range 10 {
				if i == 9 && b.State() != Closed {
					t.Fatalf("opened before MinCalls calls")
				}
				o := ok200
				if i%2 == 0 && i/2 < tt.failures {
					o = fail
				}
				calls(t, b, 1, o)
			}

			// Then only the rate can have opened it
			if got := b.State(); got != tt.want {
				t.Fatalf("state = %s, want %s", got, tt.want)
			}
			if tt.want == Open {
				want := "50% of 10 calls within 1s failed (last: 503)"
				if chs := rec.all(); len(chs) != 1 || chs[0].Reason != want {
					t.Errorf("changes = %+v, want one with reason %q", chs, want)
				}
			}
		})
	}
}

func TestFailureRateWindow(t *testing.T) {
	// A breaker that opens at 50% of at least 4 calls within 1s (kept in
	// buckets of 100ms); 3 failures in a row would open it too.
	type step struct {
		after    time.Duration // clock moved before the calls
		outcomes []outcome
	}
	tests := []struct {
		name  string
		steps []step
		want  State
	}{
		{"calls within the window count together",
			[]step{{0, []outcome{fail, ok200, fail}}, {900 * ms, []outcome{fail}}}, Open},
		{"calls older than the window are forgotten",
			[]step{{0, []outcome{fail, ok200, fail}}, {time.Second, []outcome{fail, ok200, ok200, ok200}}}, Closed},
		{"min_calls counts only calls within the window",
			[]step{{0, []outcome{ok200, ok200, ok200}}, {time.Second, []outcome{fail}}}, Closed},
		{"the window slides a bucket at a time",
			[]step{{0, []outcome{ok200, ok200}}, {500 * ms, []outcome{fail, ok200}}, {500 * ms, []outcome{fail}}}, Closed},
		{"the window slides a bucket at a time, and keeps the newer ones",
			[]step{{0, []outcome{ok200, ok200}}, {500 * ms, []outcome{fail, ok200}}, {500 * ms, []outcome{fail, fail}}}, Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := clocked("t", testConfig(func(c *policies.Breaker) {
				c.FailureRate, c.MinCalls, c.Window = 50, 4, time.Second
			}))
			for _, st := range tt.steps {
				clk.Advance(st.after)
				for _, o := range st.outcomes {
					call(b, o)
				}
			}
			if got := b.State(); got != tt.want {
				t.Fatalf("state = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFailureRateStartsAfreshAfterAClose(t *testing.T) {
	// Given a rate breaker opened by 2 failures of 4 calls, then closed
	b, _ := clocked("t", testConfig(func(c *policies.Breaker) {
		c.FailureRate, c.MinCalls, c.Window = 50, 4, 10*time.Second
	}))
	var rec recorder
	b.OnChange(rec.listen)
	calls(t, b, 1, fail)
	calls(t, b, 2, ok200)
	calls(t, b, 1, fail)
	if got := b.State(); got != Open {
		t.Fatalf("state = %s, want open", got)
	}
	if got := rec.all()[0].Reason; got != "50% of 4 calls within 10s failed (last: 503)" {
		t.Errorf("reason = %q", got)
	}
	b.Close()

	// When 2 of the next 3 calls fail, the rate has too few calls to apply
	calls(t, b, 1, fail)
	calls(t, b, 1, ok200)
	calls(t, b, 1, fail)
	if got := b.State(); got != Closed {
		t.Fatalf("calls from before the close still counted: %s", got)
	}
}

func TestFailurePercentRounds(t *testing.T) {
	tests := []struct {
		calls, failures uint64
		want            uint64
	}{
		{0, 0, 0},
		{3, 1, 33},
		{3, 2, 67},
		{200, 1, 1}, // 0.5% rounds up
		{201, 1, 0},
		{10, 10, 100},
	}
	for _, tt := range tests {
		w := newWindow(time.Second, t0)
		for i := range tt.calls {
			w.add(t0, i < tt.failures)
		}
		if n, got := w.failurePercent(); n != tt.calls || got != tt.want {
			t.Errorf("%d of %d failed: %d calls, %d%%, want %d%%", tt.failures, tt.calls, n, got, tt.want)
		}
	}
}

func TestRateBreakerStillTripsOnConsecutiveFailures(t *testing.T) {
	// Given a rate breaker that has not seen MinCalls calls yet
	b := New("t", testConfig(func(c *policies.Breaker) { c.FailureRate, c.MinCalls = 90, 100 }))
	calls(t, b, 5, ok200)

	// When 3 calls fail in a row, it opens
	calls(t, b, 2, fail)
	if got := b.State(); got != Closed {
		t.Fatalf("after 2 failures: %s", got)
	}
	calls(t, b, 1, fail)
	if got := b.State(); got != Open {
		t.Fatalf("after 3 failures: %s, want open", got)
	}
}

func TestSlowCallCountsAsFailure(t *testing.T) {
	// Given a breaker for which a call over 5ms is a failure
	b, clk := clocked("t", testConfig(func(c *policies.Breaker) { c.SlowCall = 5 * ms }))

	// When a call answers 200 after exactly 5ms, it is not slow
	p, _ := b.Allow()
	clk.Advance(5 * ms)
	p.Done(200, nil)
	if s := b.Snapshot(); s.Failures != 0 {
		t.Fatalf("a call of exactly slow_call counted as a failure: %+v", s)
	}

	// When three calls answer 200 after 10ms
	for range 3 {
		p, ok := b.Allow()
		if !ok {
			t.Fatal("call not admitted")
		}
		clk.Advance(10 * ms)
		p.Done(200, nil)
	}

	// Then the breaker is open because of slowness
	s := b.Snapshot()
	if s.State != "open" || s.LastFailureReason != "slow: 10ms" {
		t.Fatalf("snapshot = %+v, want open with a slow reason", s)
	}
}

func TestManualControl(t *testing.T) {
	t.Run("ForceOpen holds until Close", func(t *testing.T) {
		b, clk := clocked("t", testConfig(nil))
		b.ForceOpen()
		clk.Advance(3 * b.Config().OpenFor)
		if got := b.State(); got != Open {
			t.Fatalf("forced open, after 3× open_for: %s", got)
		}
		if call(b, ok200) {
			t.Fatal("a forced-open breaker admitted a call")
		}
		if s := b.Snapshot(); !s.Forced || s.HalfOpenIn != 0 || b.RemainingOpen() != 0 {
			t.Fatalf("snapshot = %+v", s)
		}
		b.Close()
		if s := b.Snapshot(); s.State != "closed" || s.Forced {
			t.Fatalf("after Close: %+v", s)
		}
		calls(t, b, 1, ok200)
	})
	t.Run("ForceOpen on an open breaker holds it", func(t *testing.T) {
		b, clk := clocked("t", testConfig(nil))
		trip(t, b)
		b.ForceOpen()
		clk.Advance(3 * b.Config().OpenFor)
		if got := b.State(); got != Open {
			t.Fatalf("state = %s, want open", got)
		}
	})
	t.Run("Close forgets failures and the doubled period", func(t *testing.T) {
		b, clk := clocked("t", testConfig(nil))
		trip(t, b)
		waitOut(t, b, clk)
		calls(t, b, 1, fail) // open for 100ms now
		b.Close()
		calls(t, b, 2, fail)
		if got := b.State(); got != Closed {
			t.Fatalf("failures before Close still counted: %s", got)
		}
		calls(t, b, 1, fail)
		assertRemaining(t, b, 50*ms)
		if got := b.Snapshot().Trips; got != 3 {
			t.Errorf("Close cleared trips: %d, want 3", got)
		}
	})
	t.Run("Reset also clears trips and the last failure", func(t *testing.T) {
		b := New("t", testConfig(nil))
		trip(t, b)
		b.Reset()
		s := b.Snapshot()
		if s.State != "closed" || s.Trips != 0 || s.ConsecutiveFailures != 0 || s.LastFailureReason != "" || !s.LastFailure.IsZero() {
			t.Fatalf("after Reset: %+v", s)
		}
		if s.Calls != 3 || s.Failures != 3 {
			t.Errorf("totals = %d/%d, want kept 3/3", s.Calls, s.Failures)
		}
	})
}

func TestDoneSuccessCountsNoFailure(t *testing.T) {
	// Given a breaker that counts 400 as a failure, one failure away from
	// opening
	b := New("m", testConfig(func(c *policies.Breaker) { c.FailureStatuses = []int{400, 503}; c.ConsecutiveFailures = 1 }))

	// When a call its caller judged sound (a 400 that is the agent's
	// fault, a slow stream whose first event came in time) is finished
	p, _ := b.Allow()
	p.DoneSuccess()

	// Then it is a call without failure, and the breaker stays closed
	if s := b.Snapshot(); s.State != Closed.String() || s.Calls != 1 || s.Failures != 0 {
		t.Errorf("snapshot %+v", s)
	}
}
