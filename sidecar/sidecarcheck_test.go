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
