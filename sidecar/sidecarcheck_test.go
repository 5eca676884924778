package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

func TestSidecarCheckSaysRateLimitedUntil(t *testing.T) {
	// Given a model's breaker opened by a 429 with Retry-After: 20
	clock := testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	set := breaker.NewSetWithClock(clock.Now)
	b := set.Get("model:gpt-4o", policies.BreakerDefaults())
	p, _ := b.Allow()
	p.DoneLimited(429, breaker.RateLimited, clock.Now().Add(20*time.Second))

	// When the sidecar check is written
	status, out := sidecarCheck(set.Snapshots(), nil, nil, clock.Now())

	// Then it warns, saying until when the model is rate limited
	want := "model:gpt-4o open since 03:04:05, 1 consecutive failures (last: rate limited until 03:04:25 (429)), half-open in 20s"
	if status != discovery.Warning || !strings.Contains(out, want) {
		t.Fatalf("check %s:\n%s\nwant a line %q", status, out, want)
	}
}

// Two breakers due to half-open at once: the first one's change runs the
// sidecar's listener, which writes the sidecar check, whose snapshot of
// every breaker moves the second to half-open, whose change runs the
// listener again on the same goroutine. That must neither deadlock (the
// call that took the first probe would hang, holding it, and the breaker
// would never close) nor lose the second change from the check.
func TestBreakerChangesDuringACheckWriteDoNotDeadlock(t *testing.T) {
	cfg := testConfig()
	s, reg, _ := startSidecar(t, cfg, Options{})
	bcfg := policies.BreakerDefaults()
	bcfg.ConsecutiveFailures, bcfg.OpenFor, bcfg.MaxOpenFor = 1, 50*time.Millisecond, time.Second
	a := s.breakers.Get("model:a", bcfg)
	b := s.breakers.Get("model:b", bcfg)
	for _, br := range []*breaker.Breaker{a, b} {
		p, ok := br.Allow()
		if !ok {
			t.Fatal("a closed breaker refused a call")
		}
		p.DoneFailure("503")
	}
	time.Sleep(60 * time.Millisecond) // both due to half-open

	done := make(chan bool, 1)
	go func() { _, ok := a.Allow(); done <- ok }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the half-open breaker refused its probe")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Allow on a half-open breaker did not return: the breaker listeners deadlocked")
	}
	testutil.Eventually(t, "the sidecar check shows both breakers half-open", 5*time.Second, func() bool {
		out := reg.check("writer-1:sidecar").output
		return strings.Contains(out, "model:a half-open") && strings.Contains(out, "model:b half-open")
	})
}
