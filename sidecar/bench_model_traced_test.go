package sidecar

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agent-sidecar/sidecar/policies"
)

// countSpans is a span exporter that counts the spans it is given and
// drops them.
type countSpans struct{ n atomic.Int64 }

func (c *countSpans) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.n.Add(int64(len(spans)))
	return nil
}
func (*countSpans) Shutdown(context.Context) error { return nil }

// BenchmarkModelPathTraced compares, interleaved in rounds on one
// connection, chat completions through two sidecars of the same
// configuration in front of the same fake model, one with tracing off and
// one tracing every request (sampler always_on, the spans batched to an
// exporter that drops them: the cost of making them, not of sending them).
// It reports each one's p50 latency and time to first byte, and what
// tracing adds per request: latency, CPU and allocations (of the whole
// process, the client and the model being the same for both).
func BenchmarkModelPathTraced(b *testing.B) {
	paths := benchModelPaths(b)
	cfg := *paths.cfg
	cfg.Tracing = policies.Tracing{Enabled: true, Sampler: policies.SamplerAlwaysOn}
	exp := &countSpans{}
	s, err := New(&cfg, hclog.NewNullLogger(), Options{Registry: newFakeRegistry(), TraceExporter: exp})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	bases := []string{paths.side, "http://" + s.Addr() + "/llm/v1"}
	names := []string{"sidecar", "traced"}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for _, base := range bases {
		for i := 0; i < 100; i++ {
			postChat(b, client, base, i%2 == 0)
		}
	}
	var lat, ttfb [2][]time.Duration
	var cpu [2]time.Duration
	var mallocs [2]uint64
	var count [2]int
	const round = 25
	b.ResetTimer()
	for n := 0; n < b.N; n += round {
		for v, base := range bases {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			c0 := cpuTime()
			for i := 0; i < round; i++ {
				_, total := postChat(b, client, base, false)
				first, _ := postChat(b, client, base, true)
				lat[v] = append(lat[v], total)
				ttfb[v] = append(ttfb[v], first)
			}
			cpu[v] += cpuTime() - c0
			runtime.ReadMemStats(&m1)
			mallocs[v] += m1.Mallocs - m0.Mallocs
			count[v] += 2 * round
		}
	}
	b.StopTimer()
	if paths.sampled.Load() == 0 {
		b.Fatal("the model got no request with a sampled traceparent from the traced sidecar: it traced nothing")
	}
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	var latP, ttfbP [2]time.Duration
	for v := range bases {
		latP[v], ttfbP[v] = p50(lat[v]), p50(ttfb[v])
		b.ReportMetric(us(latP[v]), names[v]+"-p50-µs")
	}
	perReq := func(v int) (time.Duration, float64) {
		return cpu[v] / time.Duration(count[v]), float64(mallocs[v]) / float64(count[v])
	}
	cpu0, allocs0 := perReq(0)
	cpu1, allocs1 := perReq(1)
	b.ReportMetric(us(latP[1]-latP[0]), "tracing-added-µs")
	b.ReportMetric(us(ttfbP[1]-ttfbP[0]), "tracing-added-ttfb-µs")
	b.ReportMetric(us(cpu1-cpu0), "tracing-added-cpu-µs")
	b.ReportMetric(allocs0, "sidecar-allocs/req")
	b.ReportMetric(allocs1-allocs0, "tracing-added-allocs/req")
}

// cpuTime is the CPU the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
