package sidecar

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// BenchmarkBodySize measures, for request and answer bodies of growing
// size, the bytes the sidecar allocates per request beyond what the same
// request costs sent straight to the upstream (the test's client and
// server allocate in the same process): through /call/ (a POST whose body
// is kept for a retry or a fallback) and through /llm/ (a chat completion,
// plain and streamed). A figure that grows with the size is a copy per
// request.
func BenchmarkBodySize(b *testing.B) {
	answers := map[int]string{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		size := int(n)
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Query().Get("stream") != "" || r.Header.Get("X-Stream") != "" {
				w.Header().Set("Content-Type", "text/event-stream")
			}
		}
		_, _ = io.WriteString(w, answers[bucket(size)])
	}))
	b.Cleanup(up.Close)
	cfg := benchConfig()
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: up.URL, Breaker: "default",
		Timeout: 10 * time.Second, Retries: 1, Balance: policies.BalanceRoundRobin}}
	cfg.Models = map[string]policies.Model{"bench": {Label: "bench", Name: "bench", Provider: policies.ProviderOpenAI,
		BaseURL: up.URL + "/v1", Breaker: "default", Timeout: time.Minute, FirstByteTimeout: 10 * time.Second,
		StreamIdleTimeout: 10 * time.Second}}
	side := "http://" + runBenchSidecar(b, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)

	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		content := strings.Repeat("x", size-100)
		chat := `{"model":"bench","messages":[{"role":"user","content":"` + content + `"}]}`
		answers[bucket(len(chat))] = `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` + content + `"},"finish_reason":"stop"}]}`
		for _, p := range []struct{ name, direct, side string }{
			{"call", up.URL + "/search", side + "/call/up/search"},
			{"llm", up.URL + "/v1/chat/completions", side + "/llm/v1/chat/completions"},
		} {
			b.Run(fmt.Sprintf("%s/%dKiB", p.name, size>>10), func(b *testing.B) {
				post := func(u string) {
					resp, err := client.Post(u, "application/json", strings.NewReader(chat))
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK || n < int64(size) {
						b.Fatalf("%s: %s, %d bytes", u, resp.Status, n)
					}
				}
				allocs := func(u string, n int) uint64 {
					var m0, m1 runtime.MemStats
					runtime.ReadMemStats(&m0)
					for range n {
						post(u)
					}
					runtime.ReadMemStats(&m1)
					return m1.TotalAlloc - m0.TotalAlloc
				}
				post(p.direct)
				post(p.side)
				b.ResetTimer()
				var direct, through uint64
				for i := 0; i < b.N; i += 10 {
					direct += allocs(p.direct, 10)
					through += allocs(p.side, 10)
				}
				n := float64((b.N + 9) / 10 * 10)
				b.ReportMetric(float64(direct)/n, "direct-B/req")
				b.ReportMetric((float64(through)-float64(direct))/n, "sidecar-added-B/req")
				b.ReportMetric((float64(through)-float64(direct))/n/float64(len(chat)), "added-per-body-byte")
			})
		}
	}
}

// bucket maps a request size to the answer of the same size class.
func bucket(n int) int {
	switch {
	case n < 32<<10:
		return 1
	case n < 512<<10:
		return 2
	}
	return 3
}
