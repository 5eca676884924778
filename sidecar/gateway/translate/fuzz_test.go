package translate

import (
	"os"
	"testing"

	"github.com/tidwall/gjson"
)

// The fuzz targets feed any bytes to the translators: none may panic, and
// every translation they accept must be valid JSON with the properties its
// API requires (see invariants_test.go).

// addSeeds adds the inputs of a golden suite and extra bodies as seeds.
func addSeeds(f *testing.F, dir string, extra ...string) {
	for _, in := range goldenInputs(f, dir) {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

func FuzzChatToMessages(f *testing.F) {
	addSeeds(f, "chat_to_messages",
		`{"messages":[{"role":"assistant","content":"hi"},{"role":"tool","tool_call_id":"a","content":"x"},{"role":"user","content":" "}]}`,
		`{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"a","content":[{"type":"text","text":"r"}]}],"parallel_tool_calls":false,"tools":[{"function":{"name":"f"}}],"tool_choice":"none"}`,
		`{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"a\":"}}]},{"role":"tool","tool_call_id":"a"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/PNG;charset=x;base64,AA"}]}],"stop":"x","temperature":2}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := ChatToAnthropic.Request(body, Options{MaxTokens: 100})
		if err != nil {
			return
		}
		if err := checkMessagesRequest(out, wellPairedChat(body)); err != nil {
			t.Fatalf("%v\ninput: %s\noutput: %s", err, body, out)
		}
	})
}

func FuzzMessagesToChat(f *testing.F) {
	addSeeds(f, "messages_to_chat",
		`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","is_error":true}]}],"stream":true}`,
		`{"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"x"}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"b","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]},{"type":"text","text":""}]}]}`,
		`{"system":[{"type":"text","text":""}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},"output_config":{"format":{"type":"json_schema"}},"messages":[]}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := MessagesToOpenAI.Request(body, Options{})
		if err != nil {
			return
		}
		if err := checkChatRequest(out, wellPairedMessages(body)); err != nil {
			t.Fatalf("%v\ninput: %s\noutput: %s", err, body, out)
		}
	})
}

func FuzzMessageToChatAnswer(f *testing.F) {
	addSeeds(f, "message_to_chat_answer",
		`{"content":[{"type":"text","text":""},{"type":"tool_use","input":5}],"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":1}}`,
		`{"type":"message","content":null,"stop_reason":null}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := ChatToAnthropic.Answer(body, nil)
		if err != nil {
			return
		}
		if err := checkChatAnswer(out); err != nil {
			t.Fatalf("%v\ninput: %s", err, body)
		}
	})
}

func FuzzChatToMessageAnswer(f *testing.F) {
	addSeeds(f, "chat_to_message_answer",
		`{"choices":[{"message":{"content":[{"type":"text","text":"a"}],"refusal":"","tool_calls":[{"function":{"arguments":"[1]"}},{"function":{"arguments":" "}}]},"finish_reason":"function_call"}],"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":5}}}`,
		`{"choices":{}}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := MessagesToOpenAI.Answer(body, nil)
		if err != nil {
			return
		}
		if err := checkMessageAnswer(out); err != nil {
			t.Fatalf("%v\ninput: %s", err, body)
		}
	})
}

// FuzzErrorBody checks that any upstream error answer becomes a valid
// error body of either provider, with a message.
func FuzzErrorBody(f *testing.F) {
	f.Add(429, []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`))
	f.Add(500, []byte(`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`))
	f.Add(502, []byte("<html><body>Bad gateway \xff</body></html>"))
	f.Add(400, []byte(""))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, provider := range []string{OpenAI, Anthropic} {
			out := errorBody(provider, status, body)
			if !gjson.ValidBytes(out) {
				t.Fatalf("not valid JSON: %s", out)
			}
			if gjson.GetBytes(out, "error.message").Str == "" || gjson.GetBytes(out, "error.type").Str == "" {
				t.Fatalf("no message or type: %s", out)
			}
		}
	})
}

// wellPairedChat reports whether an OpenAI request answers every tool call
// right after the assistant message that made it (a well-formed
// conversation does): each tool message follows, over other tool
// messages, an assistant message with a call of its id.
func wellPairedChat(in []byte) bool {
	var calls map[string]bool
	for _, m := range gjson.GetBytes(in, "messages").Array() {
		switch m.Get("role").Str {
		case "tool":
			if !calls[m.Get("tool_call_id").Str] {
				return false
			}
		case "assistant":
			calls = map[string]bool{}
			for _, c := range m.Get("tool_calls").Array() {
				calls[c.Get("id").Str] = true
			}
		default:
			calls = nil
		}
	}
	return true
}
