package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// OpenAI chunks as an Anthropic agent receives them, beyond the documented
// streams of the golden tests.

// streamChunkEv is a chunk with one choice of index 0.
func streamChunkEv(delta, finish string) streamEv {
	return streamEv{"", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":` +
		delta + `,"logprobs":null,"finish_reason":` + finish + `}]}`}
}

// streamDoneEv is the end of an OpenAI stream.
var streamDoneEv = streamEv{"", "[DONE]"}

// messagesStreamSummary is a converted Anthropic stream in short: one line per
// event, its type and what matters of it.
func messagesStreamSummary(out []byte) []string {
	var lines []string
	for _, e := range splitStreamEvents(out) {
		doc := gjson.ParseBytes(e.data)
		line := e.name
		switch e.name {
		case "message_start":
			line += " " + doc.Get("message.id").Str + " " + doc.Get("message.model").Str
		case "content_block_start":
			line += " " + doc.Get("index").Raw + " " + doc.Get("content_block").Raw
		case "content_block_delta":
			line += " " + doc.Get("index").Raw + " " + doc.Get("delta").Raw
		case "content_block_stop":
			line += " " + doc.Get("index").Raw
		case "message_delta":
			line += " " + doc.Get("delta.stop_reason").Str + " " + doc.Get("usage").Raw
		case "error":
			line += " " + doc.Get("error").Raw
		}
		lines = append(lines, line)
	}
	return lines
}

func TestChatToMessagesStream(t *testing.T) {
	const (
		start = "message_start chatcmpl-1 gpt-x"
		role  = `{"role":"assistant","content":""}`
	)
	usageChunk := streamEv{"", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":5,"total_tokens":55,"prompt_tokens_details":{"cached_tokens":20}}}`}
	tests := []struct {
		name    string
		request string
		events  []streamEv
		want    []string
		content bool
		done    bool
	}{
		{
			name: "a refusal is text; the usage chunk after finish_reason reaches message_delta",
			events: []streamEv{streamChunkEv(role, "null"), streamChunkEv(`{"refusal":"I can't help with that."}`, "null"),
				streamChunkEv(`{}`, `"content_filter"`), usageChunk, streamDoneEv},
			want: []string{start,
				`content_block_start 0 {"type":"text","text":""}`,
				`content_block_delta 0 {"type":"text_delta","text":"I can't help with that."}`,
				"content_block_stop 0",
				`message_delta refusal {"input_tokens":30,"cache_read_input_tokens":20,"output_tokens":5}`,
				"message_stop"},
			content: true, done: true,
		},
		{
			name: "text after a tool call opens a new block; a call without id gets one; length is max_tokens",
			events: []streamEv{streamChunkEv(`{"tool_calls":[{"index":0,"type":"function","function":{"name":"f","arguments":"{}"}}]}`, "null"),
				streamChunkEv(`{"content":"done"}`, "null"), streamChunkEv(`{}`, `"length"`), streamDoneEv},
			want: []string{start,
				`content_block_start 0 {"type":"tool_use","id":"call_0","name":"f","input":{}}`,
				`content_block_delta 0 {"type":"input_json_delta","partial_json":"{}"}`,
				"content_block_stop 0",
				`content_block_start 1 {"type":"text","text":""}`,
				`content_block_delta 1 {"type":"text_delta","text":"done"}`,
				"content_block_stop 1",
				`message_delta max_tokens {"output_tokens":0}`,
				"message_stop"},
			content: true, done: true,
		},
		{
			name: "several tool calls in one chunk, each whole, become blocks in order",
			events: []streamEv{streamChunkEv(`{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},`+
				`{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]}`, `"tool_calls"`), streamDoneEv},
			want: []string{start,
				`content_block_start 0 {"type":"tool_use","id":"call_a","name":"f","input":{}}`,
				`content_block_delta 0 {"type":"input_json_delta","partial_json":"{\"x\":1}"}`,
				"content_block_stop 0",
				`content_block_start 1 {"type":"tool_use","id":"call_b","name":"g","input":{}}`,
				`content_block_delta 1 {"type":"input_json_delta","partial_json":"{}"}`,
				"content_block_stop 1",
				`message_delta tool_use {"output_tokens":0}`,
				"message_stop"},
			content: true, done: true,
		},
		{
			name:    "[DONE] alone still makes a whole message, named for the agent's model",
			request: `{"model":"claude-agent","stream":true}`,
			events:  []streamEv{streamDoneEv, streamChunkEv(`{"content":"late"}`, "null")},
			want:    []string{"message_start  claude-agent", `message_delta end_turn {"output_tokens":0}`, "message_stop"},
			done:    true,
		},
		{
			name:   "an error object ends the stream with Anthropic's error event",
			events: []streamEv{streamChunkEv(role, "null"), {"", `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`}, streamDoneEv},
			want:   []string{start, `error {"type":"api_error","message":"Rate limit reached"}`},
			done:   true,
		},
		{
			name:   "an error given as a string, first",
			events: []streamEv{{"", `{"error":"upstream timed out"}`}},
			want:   []string{`error {"type":"api_error","message":"upstream timed out"}`},
			done:   true,
		},
		{
			name:   "an error without a message",
			events: []streamEv{{"", `{"error":{"code":500}}`}},
			want:   []string{`error {"type":"api_error","message":"the model's stream ended with an error it did not describe"}`},
			done:   true,
		},
		{
			name: "empty content, other choices and malformed tool_calls carry nothing",
			events: []streamEv{streamChunkEv(`{"role":"assistant","content":"","tool_calls":"x"}`, "null"),
				{"", `{"id":"chatcmpl-1","model":"gpt-x","choices":[{"index":1,"delta":{"content":"other"}}]}`},
				streamChunkEv(`{"content":null,"tool_calls":{"index":0}}`, "null")},
			want: []string{start},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newChatToMessagesStream([]byte(tt.request))
			out, err := runStream(s, tt.events)
			if err != nil {
				t.Fatalf("Event: %v", err)
			}
			if got := messagesStreamSummary(out); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if s.Content() != tt.content || s.Done() != tt.done {
				t.Errorf("Content() %v, Done() %v; want %v, %v", s.Content(), s.Done(), tt.content, tt.done)
			}
			if err := checkMessagesStreamGrammar(splitStreamEvents(out), s.Done()); err != nil {
				t.Errorf("grammar: %v", err)
			}
		})
	}
}

func TestChatToMessagesStreamErrors(t *testing.T) {
	call := func(i int) streamEv {
		return streamChunkEv(`{"tool_calls":[{"index":`+streamItoa(i)+`,"id":"call_`+streamItoa(i)+`","type":"function","function":{"name":"f","arguments":""}}]}`, "null")
	}
	var many []streamEv
	for i := 0; i <= streamMaxToolCalls; i++ {
		many = append(many, call(i))
	}
	tests := []struct {
		name   string
		events []streamEv
		want   string
	}{
		{"data that is not JSON", []streamEv{{"", `data: {`}}, "an event of the OpenAI stream is not valid JSON"},
		{"arguments for a tool call already closed", []streamEv{call(0), call(1),
			streamChunkEv(`{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}`, "null")},
			"arguments for tool call 0 after another block had begun"},
		{"more tool calls than the bound", many, "more than 128 tool calls"},
		{"a huge id", []streamEv{{"", `{"id":"` + strings.Repeat("x", 600) + `","choices":[]}`}}, "answer id of the streamed answer is longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runStream(newChatToMessagesStream(nil), tt.events)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
