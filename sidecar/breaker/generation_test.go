package breaker

import (
	"testing"
)

// A result of a call admitted before the breaker changed state must not
// move the new state.
func TestGenerations(t *testing.T) {
	t.Run("slow successes from before a trip do not close it", func(t *testing.T) {
		// Given three slow calls admitted while closed
		b := New("t", testConfig(nil))
		slow := admit(t, b, 3)

		// When other calls trip the breaker, then the slow calls succeed
		trip(t, b)
		for _, p := range slow {
			p.Done(200, nil)
		}

		// Then it is still open, with the failures that tripped it
		s := b.Snapshot()
		if s.State != "open" || s.ConsecutiveFailures != 3 {
			t.Fatalf("snapshot = %+v, want open with 3 consecutive failures", s)
		}
		if s.Calls != 6 {
			t.Errorf("calls = %d, want 6 (late results still count in the totals)", s.Calls)
		}
	})

	t.Run("successes from before a trip are not probes", func(t *testing.T) {
		// Given a slow call admitted while closed, and a breaker that
		// tripped and is now half-open
		b, clk := clocked("t", testConfig(nil))
		slow := admit(t, b, 1)
		trip(t, b)
		waitOut(t, b, clk)

		// When the slow call succeeds
		slow[0].Done(200, nil)

		// Then the breaker is still half-open, its probe still available
		if got := b.State(); got != HalfOpen {
			t.Fatalf("state = %s, want half-open", got)
		}
		calls(t, b, 1, ok200)
		if got := b.State(); got != Closed {
			t.Fatalf("after the probe: %s, want closed", got)
		}
	})

	t.Run("failures from before a close do not count after it", func(t *testing.T) {
		// Given three calls admitted while closed, then a trip and a
		// successful probe that closed the breaker again
		b, clk := clocked("t", testConfig(nil))
		late := admit(t, b, 3)
		trip(t, b)
		waitOut(t, b, clk)
		calls(t, b, 1, ok200)

		// When the late calls fail
		for _, p := range late {
			p.Done(0, errRefused)
		}

		// Then the closed breaker did not count them
		if s := b.Snapshot(); s.State != "closed" || s.ConsecutiveFailures != 0 {
			t.Fatalf("snapshot = %+v, want closed with no failures", s)
		}
	})

	t.Run("a probe from an earlier half-open period is not counted", func(t *testing.T) {
		// Given a probe admitted in the first half-open period, then the
		// breaker forced open and closed again
		b, clk := clocked("t", testConfig(nil))
		trip(t, b)
		waitOut(t, b, clk)
		probe := admit(t, b, 1)
		b.ForceOpen()
		b.Close()
		calls(t, b, 2, fail)

		// When the old probe fails
		probe[0].Done(503, nil)

		// Then it is not the third consecutive failure
		if got := b.State(); got != Closed {
			t.Fatalf("state = %s, want closed", got)
		}
	})

	t.Run("cancelling a stale probe does not free a place", func(t *testing.T) {
		// Given a probe from a previous half-open period, and a new
		// half-open period whose probe is taken
		b, clk := clocked("t", testConfig(nil))
		trip(t, b)
		waitOut(t, b, clk)
		old := admit(t, b, 1)
		old[0].Done(503, nil) // re-trips
		waitOut(t, b, clk)
		admit(t, b, 1)

		// When the stale permit is cancelled
		old[0].Cancel()

		// Then no second probe is admitted
		if _, ok := b.Allow(); ok {
			t.Fatal("a stale Cancel freed a probe place")
		}
	})
}

// admit takes n permits.
func admit(t *testing.T, b *Breaker, n int) []Permit {
	t.Helper()
	var ps []Permit
	for range n {
		p, ok := b.Allow()
		if !ok {
			t.Fatalf("call not admitted (state %s)", b.State())
		}
		ps = append(ps, p)
	}
	return ps
}

func TestZeroPermitIsHarmless(t *testing.T) {
	var p Permit
	p.Done(503, nil)
	p.DoneFailure("timeout")
	p.Cancel()
}
