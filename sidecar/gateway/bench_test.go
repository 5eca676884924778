package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// A 4 KiB chat request: a system prompt, a few turns and a tool.
var benchBody = []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"` + strings.Repeat("You are careful. ", 120) +
	`"},{"role":"user","content":"` + strings.Repeat("Summarise. ", 120) + `"}],"tools":[{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}],"temperature":0.2,"max_tokens":4000}`)

// BenchmarkParseAndRewrite measures what the gateway does to every request
// body: validate it, read model/stream/format, and rewrite it for a
// fallback (new name, capped max_tokens, a dropped field).
func BenchmarkParseAndRewrite(b *testing.B) {
	ep := endpoints["/v1/chat/completions"]
	m := &policies.Model{Name: "gpt-4o-mini", MaxTokens: 1024, DropFields: []string{"tools"}}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		req, msg := parseRequest(benchBody, ep)
		if msg != "" {
			b.Fatal(msg)
		}
		if _, err := rewrite(req.body, m, ep, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteSameModel is the primary's case: nothing to change.
func BenchmarkRewriteSameModel(b *testing.B) {
	ep := endpoints["/v1/chat/completions"]
	m := &policies.Model{Name: "gpt-4o"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rewrite(benchBody, m, ep, false); err != nil {
			b.Fatal(err)
		}
	}
}

// A chat answer of about 1 KiB with its usage last, as OpenAI sends it.
var benchAnswer = []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"` +
	strings.Repeat("The answer goes on. ", 40) + `","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":` + openAIUsageJSON + `}`)

// BenchmarkUsageWhole is what reading the usage of a plain answer costs.
func BenchmarkUsageWhole(b *testing.B) {
	b.SetBytes(int64(len(benchAnswer)))
	b.ReportAllocs()
	for b.Loop() {
		if u, ok := wholeUsage(kindChat, benchAnswer); !ok || u.Output != 85 {
			b.Fatal(u, ok)
		}
	}
}

// BenchmarkUsageStreamEvent is what the usage accounting costs per event
// of a stream: a content chunk (with "usage":null, as include_usage makes
// every chunk), an Anthropic content event, and the final usage chunk.
func BenchmarkUsageStreamEvent(b *testing.B) {
	for _, bc := range []struct {
		name, kind string
		ev         event
	}{
		{"chat-chunk", kindChat, event{data: []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" goes on"},"logprobs":null,"finish_reason":null}],"usage":null}`)}},
		{"chat-usage-chunk", kindChat, event{data: []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":` + openAIUsageJSON + `}`)}},
		{"messages-delta", kindMessage, event{name: "content_block_delta", data: []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" goes on"}}`)}},
		{"messages-usage", kindMessage, event{name: "message_delta", data: []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":503}}`)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := streamUsage{kind: bc.kind}
			b.ReportAllocs()
			for b.Loop() {
				s.see(bc.ev)
			}
		})
	}
}

// benchModel is a model answering chat completions whole (benchAnswer) or
// as a stream of five content chunks, a finish reason and a usage chunk.
func benchModel(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(benchAnswer)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 5 {
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"},\"finish_reason\":null}],\"usage\":null}\n\n", i)
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"+
			"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":"+openAIUsageJSON+"}\n\n"+
			"data: [DONE]\n\n")
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchServe runs chat completions, whole and streamed, through
// ServeHTTP to a model on loopback: the whole model path of the gateway
// (lookup, breaker, rewrite, transport, relay, usage) with opts.
func benchServe(b *testing.B, opts Options) {
	srv := benchModel(b)
	m := policies.Model{Label: "gpt-4o", Name: "gpt-4o", Provider: policies.ProviderOpenAI, BaseURL: srv.URL + "/v1",
		Breaker: "default", Timeout: time.Minute, FirstByteTimeout: 10 * time.Second, StreamIdleTimeout: 10 * time.Second}
	cfg := &policies.Config{Breakers: map[string]policies.Breaker{"default": sidecartest.BenchBreaker()},
		Models: map[string]policies.Model{"gpt-4o": m}, Gateway: policies.Gateway{MaxRequestBytes: 1 << 20}}
	g := New(cfg, opts)
	b.Cleanup(g.rt.(*Transport).CloseIdleConnections)
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"plain", benchBody},
		{"stream", bytes.Replace(benchBody, []byte(`"temperature"`), []byte(`"stream":true,"temperature"`), 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/llm/v1/chat/completions", bytes.NewReader(bc.body))
				req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkServe measures a chat completion through the gateway, whole
// and streamed, with tracing off and on (every request sampled, spans
// batched to an exporter that drops them: the cost of making them).
func BenchmarkServe(b *testing.B) {
	b.Run("tracing-off", func(b *testing.B) { benchServe(b, Options{}) })
	b.Run("tracing-on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardSpans{}))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		benchServe(b, Options{Tracer: tp.Tracer("github.com/agent-sidecar/sidecar")})
	})
}

// discardSpans is a span exporter that drops what it is given.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }
