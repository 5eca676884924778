package sidecartest

import (
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// BenchBreaker is breaker "default" as a configuration would commonly set
// it: open after 3 consecutive failures, for 30s doubling up to 10m, one
// half-open probe; 429 and every 5xx count as failures.
func BenchBreaker() policies.Breaker {
	statuses := []int{429}
	for c := 500; c < 600; c++ {
		statuses = append(statuses, c)
	}
	return policies.Breaker{Name: "default", ConsecutiveFailures: 3, MinCalls: 10, Window: time.Minute,
		OpenFor: 30 * time.Second, MaxOpenFor: 10 * time.Minute, HalfOpenProbes: 1, FailureStatuses: statuses}
}

// Breaker is BenchBreaker open for openFor, doubling up to 8×openFor.
func Breaker(openFor time.Duration) policies.Breaker {
	b := BenchBreaker()
	b.OpenFor, b.MaxOpenFor = openFor, 8*openFor
	return b
}
