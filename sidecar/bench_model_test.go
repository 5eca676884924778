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
	"sync/atomic"
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

// messageAnswer is chatAnswer's Anthropic twin: the same text in a message.
var messageAnswer = func() string {
	head := `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"`
	tail := `"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}`
	return head + strings.Repeat("x", 600-len(head)-len(tail)) + tail
}()

// messageRequest is chatRequest as an agent of Anthropic's API sends it.
const messageRequest = `{"model":"bench","max_tokens":1024,"messages":[{"role":"user","content":"Summarise the report in one line."}],"temperature":0.2}`

// answerMessages answers /v1/messages like answerChat answers chat
// completions: whole, or five text deltas in Anthropic's events.
func answerMessages(w http.ResponseWriter, stream bool) {
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, messageAnswer)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"+
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	f.Flush()
	for i := 0; i < 5; i++ {
		fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"w%d \"}}\n\n", i)
		f.Flush()
	}
	_, _ = io.WriteString(w, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n"+
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
}

// modelPaths are the base URLs (…/v1) of benchModelPaths's fake model,
// of a plain proxy and of a sidecar in front of it, the sidecar's
// configuration, and the count of requests the model got with a sampled
// traceparent (sent by a traced sidecar's attempt span).
type modelPaths struct {
	direct, plain, side string
	cfg                 *policies.Config
	sampled             *atomic.Int64
}

// benchModelPaths starts a fake model (plain and streaming chat
// completions), a plain httputil.ReverseProxy in front of it and a sidecar
// whose model "bench" is that model.
func benchModelPaths(b *testing.B) modelPaths {
	b.Helper()
	sampled := new(atomic.Int64)
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Traceparent"), "-01") {
			sampled.Add(1)
		}
		body, _ := io.ReadAll(r.Body)
		if strings.HasSuffix(r.URL.Path, "/messages") {
			answerMessages(w, strings.Contains(string(body), `"stream":true`))
			return
		}
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
	// The same fake behind a model of Anthropic's API: an agent's chat
	// completion for "bench-claude" is translated both ways.
	cfg.Models["bench-claude"] = policies.Model{Label: "bench-claude", Name: "bench", Provider: policies.ProviderAnthropic,
		BaseURL: model.URL, APIKey: "sk-bench", Breaker: "default", Timeout: time.Minute, FirstByteTimeout: 10 * time.Second,
		StreamIdleTimeout: 10 * time.Second}
	return modelPaths{direct: model.URL + "/v1", plain: proxy.URL + "/v1", side: "http://" + runBenchSidecar(b, cfg) + "/llm/v1",
		cfg: cfg, sampled: sampled}
}

// postMessage sends chatRequest's twin straight to the fake's Anthropic
// endpoint, as postChat does.
func postMessage(b *testing.B, c *http.Client, base string, stream bool) (first, total time.Duration) {
	body := messageRequest
	if stream {
		body = strings.Replace(body, `"temperature"`, `"stream":true,"temperature"`, 1)
	}
	return timePost(b, c, strings.TrimSuffix(base, "/v1")+"/v1/messages", body)
}

// postChat sends a chat completion and returns the time to the first body
// byte and to the end of the answer.
func postChat(b *testing.B, c *http.Client, base string, stream bool) (first, total time.Duration) {
	return postChatFor(b, c, base, "bench", stream)
}

// postChatFor is postChat asking for model.
func postChatFor(b *testing.B, c *http.Client, base, model string, stream bool) (first, total time.Duration) {
	body := strings.Replace(chatRequest, `"bench"`, `"`+model+`"`, 1)
	if stream {
		body = strings.Replace(body, `"temperature"`, `"stream":true,"temperature"`, 1)
	}
	return timePost(b, c, base+"/chat/completions", body)
}

// timePost posts body and returns the time to the first body byte and to
// the end of the answer.
func timePost(b *testing.B, c *http.Client, url, body string) (first, total time.Duration) {
	t0 := time.Now()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
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
		b.Fatalf("%s: %s", url, resp.Status)
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
	paths := benchModelPaths(b)
	direct, plain, side := paths.direct, paths.plain, paths.side
	// Each variant: how it posts a chat completion (or its Anthropic twin).
	type variant struct {
		name string
		post func(stream bool) (time.Duration, time.Duration)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	variants := []variant{
		{"direct", func(s bool) (time.Duration, time.Duration) { return postChat(b, client, direct, s) }},
		{"reverseproxy", func(s bool) (time.Duration, time.Duration) { return postChat(b, client, plain, s) }},
		{"sidecar", func(s bool) (time.Duration, time.Duration) { return postChat(b, client, side, s) }},
		{"direct-anthropic", func(s bool) (time.Duration, time.Duration) { return postMessage(b, client, direct, s) }},
		{"translated", func(s bool) (time.Duration, time.Duration) { return postChatFor(b, client, side, "bench-claude", s) }},
	}
	for _, v := range variants {
		for i := 0; i < 100; i++ {
			v.post(i%2 == 0)
		}
	}
	lat := make([][]time.Duration, len(variants))
	ttfb := make([][]time.Duration, len(variants))
	const round = 25
	b.ResetTimer()
	for n := 0; n < b.N; n += round {
		for v := range variants {
			for i := 0; i < round; i++ {
				_, total := variants[v].post(false)
				first, _ := variants[v].post(true)
				lat[v] = append(lat[v], total)
				ttfb[v] = append(ttfb[v], first)
			}
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	latP, ttfbP := make([]time.Duration, len(variants)), make([]time.Duration, len(variants))
	for v := range variants {
		latP[v], ttfbP[v] = p50(lat[v]), p50(ttfb[v])
		b.ReportMetric(float64(latP[v].Microseconds()), variants[v].name+"-p50-µs")
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	b.ReportMetric(us(latP[1]-latP[0]), "reverseproxy-added-µs")
	b.ReportMetric(us(latP[2]-latP[0]), "sidecar-added-µs")
	b.ReportMetric(us(ttfbP[1]-ttfbP[0]), "reverseproxy-added-ttfb-µs")
	b.ReportMetric(us(ttfbP[2]-ttfbP[0]), "sidecar-added-ttfb-µs")
	// A translated call against the same model called directly in its own
	// API: what the sidecar adds when the request crosses providers.
	b.ReportMetric(us(latP[4]-latP[3]), "translated-added-µs")
	b.ReportMetric(us(ttfbP[4]-ttfbP[3]), "translated-added-ttfb-µs")
}
