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
