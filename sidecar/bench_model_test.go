package sidecar

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// chatAnswer is a 600-byte chat completion.
var chatAnswer = func() string {
	head := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	return head + strings.Repeat("x", 600-len(head)-len(tail)) + tail
}()

const chatRequest = `{"model":"bench","messages":[{"role":"user","content":"Summarise the report in one line."}],"temperature":0.2}`

// benchModelPaths starts a fake model (plain and streaming chat
// completions), a plain httputil.ReverseProxy in front of it and a sidecar
// whose model "bench" is that model, and returns the base URLs (…/v1) of
// the three.
func benchModelPaths(b *testing.B) (direct, plain, side string) {
	b.Helper()
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			f := w.(http.Flusher)
			for i := 0; i < 5; i++ {
				fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"}}]}\n\n", i)
				f.Flush()
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatAnswer)
	}))
	b.Cleanup(model.Close)
	target, _ := url.Parse(model.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	rp.FlushInterval = -1
	proxy := httptest.NewServer(rp)
	b.Cleanup(proxy.Close)

	cfg := benchConfig()
	cfg.Models = map[string]policies.Model{"bench": {Label: "bench", Name: "bench", Provider: policies.ProviderOpenAI,
		BaseURL: model.URL + "/v1", Breaker: "default", Timeout: time.Minute, FirstByteTimeout: 10 * time.Second,
		StreamIdleTimeout: 10 * time.Second}}
	return model.URL + "/v1", proxy.URL + "/v1", "http://" + runBenchSidecar(b, cfg) + "/llm/v1"
}

// postChat sends a chat completion and returns the time to the first body
// byte and to the end of the answer.
func postChat(b *testing.B, c *http.Client, base string, stream bool) (first, total time.Duration) {
	body := chatRequest
	if stream {
		body = strings.Replace(body, `"temperature"`, `"stream":true,"temperature"`, 1)
	}
	t0 := time.Now()
	resp, err := c.Post(base+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadByte(); err != nil {
		b.Fatal(err)
	}
	first = time.Since(t0)
	_, _ = io.Copy(io.Discard, br)
	_ = resp.Body.Close()
	total = time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", base, resp.Status)
	}
	return first, total
}

// BenchmarkModelPath compares, interleaved in rounds on one connection,
// chat completions sent straight to a fake model, through a plain
// httputil.ReverseProxy and through the sidecar's /llm/ gateway (model
// lookup, breaker, rewrite, degradation logic included): the p50 latency a
// proxy adds to a plain answer, and the time to first byte it adds to a
// streamed one.
func BenchmarkModelPath(b *testing.B) {
	direct, plain, side := benchModelPaths(b)
	bases := []string{direct, plain, side}
	names := []string{"direct", "reverseproxy", "sidecar"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for _, u := range bases {
		for i := 0; i < 100; i++ {
			postChat(b, client, u, i%2 == 0)
		}
	}
	lat := make([][]time.Duration, 3)
	ttfb := make([][]time.Duration, 3)
	const round = 25
	b.ResetTimer()
	for n := 0; n < b.N; n += round {
		for v, u := range bases {
			for i := 0; i < round; i++ {
				_, total := postChat(b, client, u, false)
				first, _ := postChat(b, client, u, true)
				lat[v] = append(lat[v], total)
				ttfb[v] = append(ttfb[v], first)
			}
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	var latP, ttfbP [3]time.Duration
	for v := range bases {
		latP[v], ttfbP[v] = p50(lat[v]), p50(ttfb[v])
		b.ReportMetric(float64(latP[v].Microseconds()), names[v]+"-p50-µs")
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	b.ReportMetric(us(latP[1]-latP[0]), "reverseproxy-added-µs")
	b.ReportMetric(us(latP[2]-latP[0]), "sidecar-added-µs")
	b.ReportMetric(us(ttfbP[1]-ttfbP[0]), "reverseproxy-added-ttfb-µs")
	b.ReportMetric(us(ttfbP[2]-ttfbP[0]), "sidecar-added-ttfb-µs")
}
