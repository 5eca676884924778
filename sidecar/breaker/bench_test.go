package breaker

import (
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

func benchBreaker(rate int) *Breaker {
	cfg := policies.BreakerDefaults()
	cfg.FailureRate, cfg.SlowCall = rate, time.Minute
	return New("bench", cfg)
}

// BenchmarkAllowDoneClosed measures the cost the breaker adds to every call
// while closed: Allow, then Done with a 200.
func BenchmarkAllowDoneClosed(b *testing.B) {
	br := benchBreaker(0)
	b.ReportAllocs()
	for b.Loop() {
		p, ok := br.Allow()
		if !ok {
			b.Fatal("not admitted")
		}
		p.Done(200, nil)
	}
}

// BenchmarkAllowDoneClosedRate is the same with the failure-rate rule on:
// every result goes into the window.
func BenchmarkAllowDoneClosedRate(b *testing.B) {
	br := benchBreaker(50)
	b.ReportAllocs()
	for b.Loop() {
		p, _ := br.Allow()
		p.Done(200, nil)
	}
}

// BenchmarkAllowDoneClosedParallel is the closed path with every
// goroutine calling through one breaker.
func BenchmarkAllowDoneClosedParallel(b *testing.B) {
	br := benchBreaker(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, _ := br.Allow()
			p.Done(200, nil)
		}
	})
}

// BenchmarkAllowOpen measures a refused call.
func BenchmarkAllowOpen(b *testing.B) {
	br := benchBreaker(0)
	br.ForceOpen()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := br.Allow(); ok {
			b.Fatal("admitted while open")
		}
	}
}
