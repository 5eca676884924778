package translate

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tidwall/gjson"
)

// Semantic checks: a stream is accumulated the way each provider's SDK
// builds the whole answer from it, and the converted stream must mean
// what the upstream stream meant: the same text, the same tool calls
// (ids, names, arguments as JSON values), the mapped stop reason, the
// same token counts and error message.

// streamAnswer is what a whole streamed answer says.
type streamAnswer struct {
	Text   string
	Tools  []streamToolCall
	Stop   string // the provider's own stop_reason or finish_reason
	Error  string
	Prompt int64 // input tokens, cached ones included
	Output int64
}

// streamToolCall is one tool call of an answer; Args is compacted JSON.
type streamToolCall struct{ ID, Name, Args string }

// compactStreamArgs is a tool call's arguments as compact JSON ("{}" for none),
// or a note that they are not JSON.
func compactStreamArgs(args string) string {
	if args == "" {
		return "{}"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(args)); err != nil {
		return "not JSON: " + args
	}
	return b.String()
}

// accumulateMessagesStream builds the answer of an Anthropic stream, as the
// Anthropic SDKs' accumulators do (text and tool_use blocks; thinking and
// server tool blocks say nothing an OpenAI agent can receive).
func accumulateMessagesStream(events []streamTestEvent) streamAnswer {
	var (
		a          streamAnswer
		blocks     = map[int64]string{} // index → block type
		args       = map[int64]*string{}
		order      []int64
		ids, names = map[int64]string{}, map[int64]string{}
		input      int64
	)
	for _, ev := range events {
		doc := gjson.ParseBytes(ev.data)
		index := doc.Get("index").Int()
		switch doc.Get("type").Str {
		case "message_start":
			u := doc.Get("message.usage")
			input = u.Get("input_tokens").Int() + u.Get("cache_read_input_tokens").Int() + u.Get("cache_creation_input_tokens").Int()
		case "content_block_start":
			cb := doc.Get("content_block")
			blocks[index] = cb.Get("type").Str
			switch blocks[index] {
			case "text":
				a.Text += cb.Get("text").Str
			case "tool_use":
				ids[index], names[index] = cb.Get("id").Str, cb.Get("name").Str
				args[index] = new(string)
				order = append(order, index)
			}
		case "content_block_delta":
			d := doc.Get("delta")
			switch {
			case d.Get("type").Str == "text_delta" && blocks[index] == "text":
				a.Text += d.Get("text").Str
			case d.Get("type").Str == "input_json_delta" && blocks[index] == "tool_use":
				*args[index] += d.Get("partial_json").Str
			}
		case "message_delta":
			a.Stop = doc.Get("delta.stop_reason").Str
			u := doc.Get("usage")
			a.Output = u.Get("output_tokens").Int()
			if u.Get("input_tokens").Exists() {
				input = u.Get("input_tokens").Int() + u.Get("cache_read_input_tokens").Int() + u.Get("cache_creation_input_tokens").Int()
			}
		case "error":
			a.Error = doc.Get("error.message").Str
		}
	}
	a.Prompt = input
	for _, i := range order {
		a.Tools = append(a.Tools, streamToolCall{ids[i], names[i], compactStreamArgs(*args[i])})
	}
	return a
}

// accumulateChatStream builds the answer of an OpenAI Chat Completions stream,
// as the OpenAI SDKs' accumulators do: content appended, tool calls merged
// by index, the finish_reason, the usage chunk, an error object.
func accumulateChatStream(events []streamTestEvent) streamAnswer {
	var (
		a     streamAnswer
		calls = map[int64]*streamToolCall{}
		order []int64
	)
	for _, ev := range events {
		if string(ev.data) == "[DONE]" {
			break
		}
		doc := gjson.ParseBytes(ev.data)
		if e := doc.Get("error"); e.Exists() {
			a.Error = e.Get("message").Str
			break
		}
		if u := doc.Get("usage"); u.IsObject() {
			a.Prompt, a.Output = u.Get("prompt_tokens").Int(), u.Get("completion_tokens").Int()
		}
		c := doc.Get("choices.0")
		a.Text += c.Get("delta.content").Str + c.Get("delta.refusal").Str
		for _, tc := range c.Get("delta.tool_calls").Array() {
			i := tc.Get("index").Int()
			call := calls[i]
			if call == nil {
				call = &streamToolCall{}
				calls[i] = call
				order = append(order, i)
			}
			call.ID += tc.Get("id").Str
			call.Name += tc.Get("function.name").Str
			call.Args += tc.Get("function.arguments").Str
		}
		if fr := c.Get("finish_reason"); fr.Type == gjson.String {
			a.Stop = fr.Str
		}
	}
	for _, i := range order {
		call := *calls[i]
		call.Args = compactStreamArgs(call.Args)
		a.Tools = append(a.Tools, call)
	}
	return a
}

// sameStreamAnswer reports the differences between two answers.
func sameStreamAnswer(t *testing.T, got, want streamAnswer) {
	t.Helper()
	if got.Text != want.Text {
		t.Errorf("text:\n got %q\nwant %q", got.Text, want.Text)
	}
	if !reflect.DeepEqual(got.Tools, want.Tools) {
		t.Errorf("tool calls:\n got %+v\nwant %+v", got.Tools, want.Tools)
	}
	if got.Stop != want.Stop {
		t.Errorf("stop: got %q, want %q", got.Stop, want.Stop)
	}
	if got.Error != want.Error {
		t.Errorf("error: got %q, want %q", got.Error, want.Error)
	}
	if got.Prompt != want.Prompt || got.Output != want.Output {
		t.Errorf("usage: got %d in, %d out; want %d in, %d out", got.Prompt, got.Output, want.Prompt, want.Output)
	}
}

// mustConvertStream converts a whole stream, failing the test on an error.
func mustConvertStream(t *testing.T, s Stream, upstream []byte) []streamTestEvent {
	t.Helper()
	out, err := convertStream(s, upstream)
	if err != nil {
		t.Fatalf("converting: %v", err)
	}
	return splitStreamEvents(out)
}

func TestStreamMeaningMessagesToChat(t *testing.T) {
	for _, c := range streamCases(t, "messages_to_chat") {
		t.Run(c.name, func(t *testing.T) {
			want := accumulateMessagesStream(splitStreamEvents(c.upstream))
			if want.Stop != "" {
				want.Stop = finishReason(want.Stop)
			}
			if !streamIncludeUsage(c.request) || want.Error != "" {
				want.Prompt, want.Output = 0, 0 // no usage chunk
			}
			got := accumulateChatStream(mustConvertStream(t, newMessagesToChatStream(c.request), c.upstream))
			sameStreamAnswer(t, got, want)
		})
	}
}

func TestStreamMeaningChatToMessages(t *testing.T) {
	for _, c := range streamCases(t, "chat_to_messages") {
		t.Run(c.name, func(t *testing.T) {
			want := accumulateChatStream(splitStreamEvents(c.upstream))
			if want.Stop != "" {
				want.Stop = stopReason(want.Stop)
			}
			got := accumulateMessagesStream(mustConvertStream(t, newChatToMessagesStream(c.request), c.upstream))
			sameStreamAnswer(t, got, want)
		})
	}
}

// An answer converted to the other provider's stream and back means what
// it meant, the stop reason mapped both ways.
func TestStreamMeaningRoundTrip(t *testing.T) {
	usage := []byte(`{"stream":true,"stream_options":{"include_usage":true}}`)
	for _, c := range streamCases(t, "messages_to_chat") {
		t.Run("anthropic/"+c.name, func(t *testing.T) {
			want := accumulateMessagesStream(splitStreamEvents(c.upstream))
			if want.Stop != "" {
				want.Stop = stopReason(finishReason(want.Stop))
			}
			chat := mustConvertStream(t, newMessagesToChatStream(usage), c.upstream)
			back := mustConvertStream(t, newChatToMessagesStream(nil), joinStreamEvents(chat))
			got := accumulateMessagesStream(back)
			if want.Error != "" {
				want.Prompt, want.Output = 0, 0
			}
			sameStreamAnswer(t, got, want)
		})
	}
	for _, c := range streamCases(t, "chat_to_messages") {
		t.Run("openai/"+c.name, func(t *testing.T) {
			want := accumulateChatStream(splitStreamEvents(c.upstream))
			if want.Stop != "" {
				want.Stop = finishReason(stopReason(want.Stop))
			}
			messages := mustConvertStream(t, newChatToMessagesStream(nil), c.upstream)
			back := mustConvertStream(t, newMessagesToChatStream(usage), joinStreamEvents(messages))
			sameStreamAnswer(t, accumulateChatStream(back), want)
		})
	}
}

// joinStreamEvents frames events again.
func joinStreamEvents(events []streamTestEvent) []byte {
	var b []byte
	for _, ev := range events {
		b = appendEvent(b, ev.name, ev.data)
	}
	return b
}
