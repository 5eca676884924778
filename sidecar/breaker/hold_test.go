package breaker

import (
	"github.com/agent-sidecar/sidecar/policies"
	"testing"
	"time"
)

// limited makes one call through b that the target answers with status,
// limited until until.
func limited(t *testing.T, b *Breaker, status int, l Limit, until time.Time) string {
	t.Helper()
	p, ok := b.Allow()
	if !ok {
		t.Fatalf("the call was not admitted (state %s)", b.State())
	}
	return p.DoneLimited(status, l, until)
}

func TestRateLimitHoldsOpenUntilTheTimeNamed(t *testing.T) {
	// Given a closed breaker whose open_for is 50ms
	b, c := clocked("model:gpt-4o", testConfig(nil))
	var r recorder
	b.OnChange(r.listen)

	// When a single call is answered 429 with Retry-After: 20
	reason := limited(t, b, 429, RateLimited, t0.Add(20*time.Second))

	// Then the breaker opens at once, for 20s, and says why
	if want := "rate limited until 09:27:13 (429)"; reason != want {
		t.Fatalf("reason = %q, want %q", reason, want)
	}
	assertRemaining(t, b, 20*time.Second)
	s := b.Snapshot()
	if s.State != "open" || s.Held != "rate limited until 09:27:13" || s.LastFailureReason != reason || s.OpenFor != "50ms" {
		t.Fatalf("snapshot = %+v", s)
	}
	changes := r.all()
	if len(changes) != 1 || changes[0].Reason != reason || changes[0].OpenFor != 20*time.Second {
		t.Fatalf("changes = %+v", changes)
	}

	// And it half-opens at that time, not before
	waitOut(t, b, c)
	if got := r.all()[1].Reason; got != "rate limited until 09:27:13: letting a probe through" {
		t.Fatalf("half-open reason = %q", got)
	}
	if s := b.Snapshot(); s.Held != "" {
		t.Fatalf("half-open snapshot still held: %q", s.Held)
	}

	// When the probe fails as usual
	calls(t, b, 1, fail)

	// Then the open period is open_for, not doubled by the hold
	assertRemaining(t, b, 50*ms)
}

func TestRateLimitedProbeDoesNotDouble(t *testing.T) {
	// Given a breaker half-open after an ordinary trip
	b, c := clocked("m", testConfig(nil))
	trip(t, b)
	waitOut(t, b, c)

	// When the probe is answered 429 with a reset 5s away
	limited(t, b, 429, RateLimited, c.Now().Add(5*time.Second))
	assertRemaining(t, b, 5*time.Second)
	waitOut(t, b, c)

	// Then the next ordinary failure opens it for open_for
	calls(t, b, 1, fail)
	assertRemaining(t, b, 50*ms)
}

func TestLimitedWithoutATimeOpensLikeATrip(t *testing.T) {
	b, _ := clocked("m", testConfig(nil))
	reason := limited(t, b, 429, QuotaExhausted, time.Time{})
	if reason != "quota exhausted (429)" {
		t.Fatalf("reason = %q", reason)
	}
	assertRemaining(t, b, 50*ms)
	if s := b.Snapshot(); s.Held != "" || s.LastFailureReason != reason {
		t.Fatalf("snapshot = %+v", s)
	}
}

func TestQuotaExhaustedUntil(t *testing.T) {
	b, _ := clocked("m", testConfig(nil))
	limited(t, b, 429, QuotaExhausted, t0.Add(time.Minute))
	if s := b.Snapshot(); s.Held != "quota exhausted until 09:27:53" {
		t.Fatalf("held = %q", s.Held)
	}
}

func TestLimitOnAnOpenBreakerHoldsItLonger(t *testing.T) {
	// Given two calls admitted, and the first one trips the breaker
	b, _ := clocked("m", testConfig(func(c *policies.Breaker) { c.ConsecutiveFailures = 1 }))
	p1, _ := b.Allow()
	p2, _ := b.Allow()
	p1.Done(503, nil)
	assertRemaining(t, b, 50*ms)

	// When the second is answered 429 naming a later time
	p2.DoneLimited(429, RateLimited, t0.Add(3*time.Second))

	// Then the breaker stays open until then
	assertRemaining(t, b, 3*time.Second)

	// And an earlier time does not shorten it
	p3 := Permit{b: b, gen: b.gen - 1}
	p3.DoneLimited(429, RateLimited, t0.Add(time.Second))
	assertRemaining(t, b, 3*time.Second)
}

func TestLimitLeavesAnOperatorsOpenAlone(t *testing.T) {
	b, _ := clocked("m", testConfig(nil))
	p, _ := b.Allow()
	b.ForceOpen()
	p.DoneLimited(429, RateLimited, t0.Add(time.Second))
	if s := b.Snapshot(); !s.Forced || s.Held != "" || s.HalfOpenIn != 0 {
		t.Fatalf("snapshot = %+v", s)
	}
}

func TestLimitInThePastIsATripWithoutTime(t *testing.T) {
	b, _ := clocked("m", testConfig(nil))
	reason := limited(t, b, 503, RateLimited, t0.Add(-time.Second))
	if reason != "rate limited (503)" {
		t.Fatalf("reason = %q", reason)
	}
	assertRemaining(t, b, 50*ms)
}
