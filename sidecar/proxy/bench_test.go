package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// answer600 is a 600-byte JSON answer, the size of a typical tool reply.
var answer600 = `{"result":"` + strings.Repeat("x", 600-13) + `"}`

// benchPaths starts an upstream, a plain httputil.ReverseProxy in front of
// it, and the sidecar's call proxy whose upstream "up" is that upstream
// (static URL), and returns the three URLs to call. opts are the call
// proxy's options (a tracer, say).
func benchPaths(b *testing.B, opts Options) (direct, plain, side string) {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer600)
	}))
	b.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	rp.ErrorLog = nil
	proxy := httptest.NewServer(rp)
	b.Cleanup(proxy.Close)

	cfg := testConfig()
	cfg.Agent.Name, cfg.Agent.ID = "bench", "bench-1"
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.BenchBreaker()}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: up.URL, Breaker: "default",
		Timeout: 10 * time.Second, Retries: 1, Balance: policies.BalanceRoundRobin}}
	return up.URL + "/search", proxy.URL + "/search", "http://" + serveBenchProxy(b, cfg, opts) + "/call/up/search"
}

// serveBenchProxy serves a proxy for cfg on loopback until the benchmark
// ends and returns the address of its /call/.
func serveBenchProxy(b *testing.B, cfg *policies.Config, opts Options) string {
	b.Helper()
	p, _ := startProxy(b, cfg, opts)
	return p.Addr()
}

func get(b *testing.B, c *http.Client, u string) {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", u, resp.Status)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCallPath compares, in one run and interleaved in rounds, direct
// calls to an upstream, calls through a plain httputil.ReverseProxy, and
// calls through the sidecar's /call/ (breaker, balancing, fallback logic
// included), one connection at a time. It reports the median latency of
// each, the latency and CPU each proxy adds per request, and the ratio of
// the sidecar's added cost to the plain proxy's (goal: at most 1.2).
// Tracing is off. Allocations are those of the whole process (the client,
// the upstream and both proxies) per op, an op being three requests, one
// by each path.
func BenchmarkCallPath(b *testing.B) { benchCallPath(b, Options{}) }

// BenchmarkCallPathTraced is BenchmarkCallPath with tracing on: every call
// sampled, its spans batched to an exporter that drops them (the cost of
// making and queueing spans, not of sending them).
func BenchmarkCallPathTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
		sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	benchCallPath(b, Options{Tracer: tp.Tracer("github.com/agent-sidecar/sidecar")})
}

func benchCallPath(b *testing.B, opts Options) {
	b.ReportAllocs()
	direct, plain, side := benchPaths(b, opts)
	urls := []string{direct, plain, side}
	names := []string{"direct", "reverseproxy", "sidecar"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for _, u := range urls { // warm connections and breakers
		for i := 0; i < 200; i++ {
			get(b, client, u)
		}
	}
	lat := make([][]time.Duration, 3)
	cpu := make([]time.Duration, 3)
	count := make([]int, 3)
	const round = 50
	b.ResetTimer()
	for n := 0; n < b.N; n += round {
		for v, u := range urls {
			c0 := cpuTime()
			for i := 0; i < round; i++ {
				t0 := time.Now()
				get(b, client, u)
				lat[v] = append(lat[v], time.Since(t0))
			}
			cpu[v] += cpuTime() - c0
			count[v] += round
		}
	}
	b.StopTimer()
	p50 := make([]time.Duration, 3)
	cpuPer := make([]time.Duration, 3)
	for v := range urls {
		slices.Sort(lat[v])
		p50[v] = lat[v][len(lat[v])/2]
		cpuPer[v] = cpu[v] / time.Duration(count[v])
		b.ReportMetric(float64(p50[v].Microseconds()), names[v]+"-p50-µs")
	}
	addLat := func(v int) float64 { return float64(p50[v] - p50[0]) }
	addCPU := func(v int) float64 { return float64(cpuPer[v] - cpuPer[0]) }
	b.ReportMetric(addLat(1)/1e3, "reverseproxy-added-µs")
	b.ReportMetric(addLat(2)/1e3, "sidecar-added-µs")
	b.ReportMetric(addCPU(1)/1e3, "reverseproxy-added-cpu-µs")
	b.ReportMetric(addCPU(2)/1e3, "sidecar-added-cpu-µs")
	if addLat(1) > 0 {
		b.ReportMetric(addLat(2)/addLat(1), "latency-ratio")
	}
	if addCPU(1) > 0 {
		b.ReportMetric(addCPU(2)/addCPU(1), "cpu-ratio")
	}
}

// BenchmarkCallPathParallel measures throughput through each path with
// concurrent callers (ns/op is the time per request across all of them).
func BenchmarkCallPathParallel(b *testing.B) {
	direct, plain, side := benchPaths(b, Options{})
	for _, p := range []struct{ name, url string }{{"direct", direct}, {"reverseproxy", plain}, {"sidecar", side}} {
		b.Run(p.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var once sync.Once
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(p.url)
					if err != nil {
						once.Do(func() { b.Error(err) })
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			})
		})
	}
}
