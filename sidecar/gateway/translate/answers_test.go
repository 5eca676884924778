package translate

import (
	"strings"
	"testing"
)

func TestMessageToChatAnswer(t *testing.T) {
	tests := []struct {
		name, body, path, want string
	}{
		{"created is now", `{"type":"message","content":[]}`, "created", `1741569952`},
		{"no text is null content", `{"content":[{"type":"thinking","thinking":"x","signature":"s"}],"stop_reason":"end_turn"}`, "choices.0.message.content", `null`},
		{"an empty text is null content", `{"content":[{"type":"text","text":""}]}`, "choices.0.message.content", `null`},
		{"a refusal is filtered content", `{"content":[{"type":"text","text":"I can't help."}],"stop_reason":"refusal"}`, "choices.0.finish_reason", `"content_filter"`},
		{"the context window is a length stop", `{"content":[],"stop_reason":"model_context_window_exceeded"}`, "choices.0.finish_reason", `"length"`},
		{"a paused turn is a stop", `{"content":[],"stop_reason":"pause_turn"}`, "choices.0.finish_reason", `"stop"`},
		{"no usage is zero", `{"content":[]}`, "usage", `{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}`},
		{"tool input is compact arguments", `{"content":[{"type":"tool_use","id":"t","name":"f","input":{ "a" : [1, 2] }}]}`, "choices.0.message.tool_calls.0.function.arguments", `"{\"a\":[1,2]}"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ChatToAnthropic.Answer([]byte(tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONAt(t, out, tc.path, tc.want)
		})
	}
}

func TestChatToMessageAnswer(t *testing.T) {
	tests := []struct {
		name, body, path, want string
	}{
		{"content and refusal are two texts", `{"choices":[{"message":{"content":"a","refusal":"b"},"finish_reason":"stop"}]}`, "content", `[{"type":"text","text":"a"},{"type":"text","text":"b"}]`},
		{"text parts are joined", `{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}`, "content", `[{"type":"text","text":"ab"}]`},
		{"whitespace text is kept", `{"choices":[{"message":{"content":"\n"}}]}`, "content", `[{"type":"text","text":"\n"}]`},
		{"arguments that are not an object are kept as text", `{"choices":[{"message":{"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]},"finish_reason":"tool_calls"}]}`,
			"content.0.input", `{"invalid_json_arguments":"[1]"}`},
		{"the legacy function_call reason is tool use", `{"choices":[{"message":{"content":"x"},"finish_reason":"function_call"}]}`, "stop_reason", `"tool_use"`},
		{"content_filter is a refusal", `{"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]}`, "stop_reason", `"refusal"`},
		{"cached tokens are read from the cache", `{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":60}}}`,
			"usage", `{"input_tokens":40,"cache_read_input_tokens":60,"output_tokens":5}`},
		{"stop_sequence is null", `{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`, "stop_sequence", `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := MessagesToOpenAI.Answer([]byte(tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONAt(t, out, tc.path, tc.want)
		})
	}
}

func TestAnswersThatAreNotAnswers(t *testing.T) {
	tests := []struct {
		name string
		d    Direction
		body string
		want string
	}{
		{"an Anthropic error", ChatToAnthropic, `{"type":"error","error":{"type":"api_error","message":"x"}}`, `of type "error", not an Anthropic message`},
		{"content not an array", ChatToAnthropic, `{"type":"message","content":"hi"}`, `"content" must be an array`},
		{"a chunk", MessagesToOpenAI, `{"object":"chat.completion.chunk","choices":[]}`, `of type "chat.completion.chunk"`},
		{"choices not an array", MessagesToOpenAI, `{"choices":{"0":{}}}`, `"choices" must be an array`},
		{"not JSON", MessagesToOpenAI, `{"choices":[`, `not valid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.d.Answer([]byte(tc.body), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %s, %v; want an error saying %q", out, err, tc.want)
			}
		})
	}
}
