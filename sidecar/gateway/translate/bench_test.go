package translate

import (
	"strings"
	"testing"
)

// A 4 KiB chat request: a system prompt, a few turns and a tool (the
// gateway's BenchmarkParseAndRewrite body).
var benchChat = []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"` + strings.Repeat("You are careful. ", 120) +
	`"},{"role":"user","content":"` + strings.Repeat("Summarise. ", 120) + `"}],"tools":[{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}],"temperature":0.2,"max_tokens":4000}`)

// A 600-byte Anthropic answer.
var benchMessage = []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[{"type":"text","text":"` +
	strings.Repeat("x", 450) + `"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":120}}`)

// BenchmarkChatToMessagesRequest measures translating an agent's chat
// request for an Anthropic model.
func BenchmarkChatToMessagesRequest(b *testing.B) {
	b.SetBytes(int64(len(benchChat)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChatToAnthropic.Request(benchChat, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessageToChatAnswer measures translating the Anthropic answer
// back into a chat.completion.
func BenchmarkMessageToChatAnswer(b *testing.B) {
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChatToAnthropic.Answer(benchMessage, nil); err != nil {
			b.Fatal(err)
		}
	}
}
