package gateway

import (
	"strings"
	"testing"

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
