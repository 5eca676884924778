package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Anthropic events as an OpenAI agent receives them, beyond the documented
// streams of the golden tests.

// streamEv is an upstream event for a table: name and data.
type streamEv struct{ name, data string }

// streamStartEv is a message_start with usage.
var streamStartEv = streamEv{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":1}}}`}

// runStream feeds events to s and returns what it appended and the first error.
func runStream(s Stream, events []streamEv) ([]byte, error) {
	var out []byte
	for _, e := range events {
		var err error
		if out, err = s.Event(out, e.name, []byte(e.data)); err != nil {
			return out, err
		}
	}
	return out, nil
}

// chatStreamSummary is a converted OpenAI stream in short: each chunk's delta
// (and finish_reason), the usage chunk, errors and [DONE].
func chatStreamSummary(out []byte) []string {
	var lines []string
	for _, e := range splitStreamEvents(out) {
		doc := gjson.ParseBytes(e.data)
		switch {
		case string(e.data) == "[DONE]":
			lines = append(lines, "[DONE]")
		case e.name == "error":
			lines = append(lines, "error "+doc.Get("error.message").Str+" code="+doc.Get("error.code").Str)
		case len(doc.Get("choices").Array()) == 0:
			lines = append(lines, "usage "+doc.Get("usage").Raw)
		default:
			line := doc.Get("choices.0.delta").Raw
			if fr := doc.Get("choices.0.finish_reason"); fr.Type == gjson.String {
				line += " finish=" + fr.Str
			}
			lines = append(lines, line)
		}
	}
	return lines
}

func TestMessagesToChatStream(t *testing.T) {
	const role = `{"role":"assistant","content":""}`
	usage := `{"stream":true,"stream_options":{"include_usage":true}}`
	textStart := streamEv{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`}
	stop := streamEv{"message_stop", `{"type":"message_stop"}`}
	tests := []struct {
		name    string
		request string
		events  []streamEv
		want    []string
		content bool
		done    bool
	}{
		{
			name:    "cache reads and writes count as prompt tokens; message_delta's counts replace the start's",
			request: usage,
			events: []streamEv{streamStartEv, textStart,
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":12,"output_tokens":7}}`},
				stop},
			want: []string{role, `{"content":"Hi"}`, `{} finish=length`,
				`usage {"prompt_tokens":117,"completion_tokens":7,"total_tokens":124,"prompt_tokens_details":{"cached_tokens":100}}`, "[DONE]"},
			content: true, done: true,
		},
		{
			name: "a tool call without input pieces gets the arguments {}; tool calls count from 0",
			events: []streamEv{streamStartEv,
				{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"now","input":{}}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_b","name":"add","input":{}}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":1}`},
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}`},
				stop},
			want: []string{role,
				`{"tool_calls":[{"index":0,"id":"toolu_a","type":"function","function":{"name":"now","arguments":""}}]}`,
				`{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}`,
				`{"tool_calls":[{"index":1,"id":"toolu_b","type":"function","function":{"name":"add","arguments":""}}]}`,
				`{"tool_calls":[{"index":1,"function":{"arguments":"{\"a\":1}"}}]}`,
				`{} finish=tool_calls`, "[DONE]"},
			content: true, done: true,
		},
		{
			name: "events named only by their data's type; message_stop without message_delta still finishes",
			events: []streamEv{{"", streamStartEv.data}, {"", textStart.data},
				{"", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\u00e9\n"}}`},
				{"", `{"type":"message_stop"}`}},
			want:    []string{role, `{"content":"a\u00e9\n"}`, `{} finish=stop`, "[DONE]"},
			content: true, done: true,
		},
		{
			name: "thinking, signatures, citations and empty text are not content",
			events: []streamEv{streamStartEv,
				{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":""}}`},
				{"ping", ``}},
			want: []string{role},
		},
		{
			name:    "an error before message_start becomes OpenAI's error event and ends the stream",
			request: usage,
			events: []streamEv{{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
				streamStartEv},
			want: []string{"error Overloaded code=overloaded_error"},
			done: true,
		},
		{
			name:   "an error that says nothing still says something",
			events: []streamEv{streamStartEv, {"", `{"type":"error","error":{}}`}},
			want:   []string{role, "error the model's stream ended with an error it did not describe code=stream_interrupted"},
			done:   true,
		},
		{
			name:    "refusal maps to content_filter; events after message_stop are ignored",
			request: usage,
			events: []streamEv{streamStartEv,
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"refusal"},"usage":{"output_tokens":2}}`},
				stop, stop, textStart},
			want: []string{role, `{} finish=content_filter`,
				`usage {"prompt_tokens":115,"completion_tokens":2,"total_tokens":117,"prompt_tokens_details":{"cached_tokens":100}}`, "[DONE]"},
			done: true,
		},
		{
			name: "content after message_delta is dropped: the agent's answer has finished",
			events: []streamEv{streamStartEv,
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`},
				textStart,
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}`},
				stop},
			want: []string{role, `{} finish=stop`, "[DONE]"},
			done: true,
		},
		{
			name: "event types added later and a second message_start are ignored",
			events: []streamEv{{"message_annotation", `{"type":"message_annotation"}`}, streamStartEv, {"message_start", streamStartEv.data},
				{"content_block_annotation", `{"type":"content_block_annotation"}`}},
			want: []string{role},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMessagesToChatStream([]byte(tt.request))
			out, err := runStream(s, tt.events)
			if err != nil {
				t.Fatalf("Event: %v", err)
			}
			if got := chatStreamSummary(out); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if s.Content() != tt.content || s.Done() != tt.done {
				t.Errorf("Content() %v, Done() %v; want %v, %v", s.Content(), s.Done(), tt.content, tt.done)
			}
			if err := checkChatStreamGrammar(splitStreamEvents(out), s.Done(), streamIncludeUsage([]byte(tt.request))); err != nil {
				t.Errorf("grammar: %v", err)
			}
		})
	}
}

func TestMessagesToChatStreamErrors(t *testing.T) {
	long := strings.Repeat("x", streamMaxID)
	var manyBlocks []streamEv
	manyBlocks = append(manyBlocks, streamStartEv)
	for i := 0; i <= streamMaxOpenBlocks; i++ {
		manyBlocks = append(manyBlocks, streamEv{"content_block_start", `{"type":"content_block_start","index":` + streamItoa(i) + `,"content_block":{"type":"text","text":""}}`})
	}
	tests := []struct {
		name   string
		events []streamEv
		want   string
	}{
		{"data that is not JSON", []streamEv{{"message_start", `{"type":`}}, "not valid JSON"},
		{"data nested too deep", []streamEv{{"message_start", strings.Repeat("[", 10000)}}, "nested deeper"},
		{"content before message_start", []streamEv{{"content_block_delta", `{"type":"content_block_delta"}`}}, `"content_block_delta" before message_start`},
		{"a block without an index", []streamEv{streamStartEv, {"content_block_start", `{"type":"content_block_start","content_block":{"type":"text"}}`}}, "without a numeric index"},
		{"a huge model name", []streamEv{{"message_start", `{"type":"message_start","message":{"id":"m","model":"` + long + `"}}`}}, "model name of the streamed answer is longer than 512 bytes"},
		{"too many open blocks", manyBlocks, "more than 64 content blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runStream(newMessagesToChatStream(nil), tt.events)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// streamItoa is strconv.Itoa for small test numbers.
func streamItoa(i int) string { return string(appendStreamInt(nil, int64(i))) }
