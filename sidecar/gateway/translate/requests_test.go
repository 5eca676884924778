package translate

import (
	"testing"

	"github.com/tidwall/gjson"
)

// Each case translates a small request and compares one part of the
// result, as JSON, with what the target provider must receive.

func TestChatToMessagesRequest(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		body string
		path string // gjson path in the translated request
		want string // its JSON; "" means absent
	}{
		{"the model's cap when the agent sets none", Options{MaxTokens: 1000}, `{"messages":[` + userHi + `]}`, "max_tokens", `1000`},
		{"the default cap", Options{}, `{"messages":[` + userHi + `]}`, "max_tokens", `4096`},
		{"max_completion_tokens wins", Options{}, `{"max_tokens":10,"max_completion_tokens":20,"messages":[` + userHi + `]}`, "max_tokens", `20`},
		{"the model is kept", Options{}, `{"model":"gpt-4o","messages":[` + userHi + `]}`, "model", `"gpt-4o"`},
		{"consecutive user messages merge", Options{}, `{"messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"}]}]}`,
			"messages", `[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]`},
		{"an empty assistant message is left out", Options{}, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"user","content":"b"}]}`,
			"messages", `[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]`},
		{"whitespace text is left out", Options{}, `{"messages":[{"role":"system","content":" \n"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"  "}]}]}`,
			"@this", `{"max_tokens":4096,"messages":[{"role":"user","content":"a"}]}`},
		{"tool calls only: tool_use blocks only", Options{}, `{"messages":[` + userHi + `,{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`,
			"messages.1.content", `[{"type":"tool_use","id":"c1","name":"f","input":{"x":1}}]`},
		{"arguments that are not JSON are kept as text", Options{}, `{"messages":[` + userHi + `,{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]},{"role":"tool","tool_call_id":"c1","content":"bad"}]}`,
			"messages.1.content.0.input", `{"invalid_json_arguments":"{\"x\":"}`},
		{"empty arguments are an empty object", Options{}, `{"messages":[` + userHi + `,{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":""}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`,
			"messages.1.content.0.input", `{}`},
		{"a user message after tool results joins their turn", Options{}, `{"messages":[` + userHi + `,{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":""},{"role":"user","content":"and?"}]}`,
			"messages.2", `{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1"},{"type":"text","text":"and?"}]}`},
		{"tool results go before text in a turn", Options{}, `{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"r"}]}`,
			"messages.0.content", `[{"type":"tool_result","tool_use_id":"c1","content":"r"},{"type":"text","text":"x"}]`},
		{"a conversation opened by the assistant gets a user turn first", Options{}, `{"messages":[{"role":"assistant","content":"Hello!"},` + userHi + `]}`,
			"messages.0", `{"role":"user","content":"(conversation start)"}`},
		{"the older image_url string", Options{}, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"https://example.com/a.png"}]}]}`,
			"messages.0.content.0.source", `{"type":"url","url":"https://example.com/a.png"}`},
		{"a data URL's media type is lower-cased", Options{}, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"DATA:Image/PNG;base64,AAAA"}}]}]}`,
			"messages.0.content.0.source", `{"type":"base64","media_type":"image/png","data":"AAAA"}`},
		{"temperature above 1 is lowered to 1", Options{}, `{"temperature":1.8,"messages":[` + userHi + `]}`, "temperature", `1`},
		{"top_p alone passes", Options{}, `{"top_p":0.9,"messages":[` + userHi + `]}`, "top_p", `0.9`},
		{"with a temperature, top_p is left out", Options{}, `{"temperature":0.2,"top_p":0.9,"messages":[` + userHi + `]}`, "top_p", ``},
		{"safety_identifier is the user id", Options{}, `{"safety_identifier":"hash-1","messages":[` + userHi + `]}`, "metadata", `{"user_id":"hash-1"}`},
		{"user wins over safety_identifier", Options{}, `{"user":"u","safety_identifier":"hash-1","messages":[` + userHi + `]}`, "metadata", `{"user_id":"u"}`},
		{"temperature at most 1 passes", Options{}, `{"temperature":0.25,"messages":[` + userHi + `]}`, "temperature", `0.25`},
		{"no parallel calls without a tool_choice", Options{}, `{"parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + userHi + `]}`,
			"tool_choice", `{"type":"auto","disable_parallel_tool_use":true}`},
		{"no parallel calls with required", Options{}, `{"parallel_tool_calls":false,"tool_choice":"required","tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + userHi + `]}`,
			"tool_choice", `{"type":"any","disable_parallel_tool_use":true}`},
		{"tool_choice none stays plain", Options{}, `{"parallel_tool_calls":false,"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + userHi + `]}`,
			"tool_choice", `{"type":"none"}`},
		{"parallel_tool_calls without tools adds nothing", Options{}, `{"parallel_tool_calls":false,"messages":[` + userHi + `]}`, "tool_choice", ``},
		{"empty parameters become an empty object schema", Options{}, `{"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"messages":[` + userHi + `]}`,
			"tools.0.input_schema", `{"type":"object","properties":{}}`},
		{"json_schema without a schema asks for an object", Options{}, `{"response_format":{"type":"json_schema","json_schema":{"name":"x"}},"messages":[` + userHi + `]}`,
			"system", `"Respond with a single JSON object and nothing else."`},
		{"text format adds nothing", Options{}, `{"response_format":{"type":"text"},"messages":[` + userHi + `]}`, "system", ``},
		{"empty stop strings are left out", Options{}, `{"stop":["", "x"],"messages":[` + userHi + `]}`, "stop_sequences", `["x"]`},
		{"stream false passes", Options{}, `{"stream":false,"messages":[` + userHi + `]}`, "stream", `false`},
		{"n 1 is fine", Options{}, `{"n":1,"messages":[` + userHi + `]}`, "n", ``},
		{"text in HTML stays readable", Options{}, `{"messages":[{"role":"user","content":"<b>&</b>"}]}`, "messages.0.content", `"<b>&</b>"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ChatToAnthropic.Request([]byte(tc.body), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONAt(t, out, tc.path, tc.want)
		})
	}
}

func TestMessagesToChatRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		path string
		want string
	}{
		{"stream asks for usage", `{"stream":true,"messages":[` + userHi + `]}`, "stream_options", `{"include_usage":true}`},
		{"no stream, no stream_options", `{"stream":false,"messages":[` + userHi + `]}`, "stream_options", ``},
		{"an error result without content", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true}]}]}`,
			"messages.2", `{"role":"tool","content":"Error","tool_call_id":"t1"}`},
		{"an error result with text blocks", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}]}`,
			"messages.2.content", `[{"type":"text","text":"Error: a"},{"type":"text","text":"b"}]`},
		{"a result without content", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1"}]}]}`,
			"messages.2", `{"role":"tool","content":"","tool_call_id":"t1"}`},
		{"several assistant texts are text parts", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},` + userHi + `]}`,
			"messages.1.content", `[{"type":"text","text":"a"},{"type":"text","text":"b"}]`},
		{"an assistant turn of thinking only is empty text", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"redacted_thinking","data":"x"}]},` + userHi + `]}`,
			"messages.1", `{"role":"assistant","content":""}`},
		{"no parallel tool use without tools adds nothing", `{"tool_choice":{"type":"auto","disable_parallel_tool_use":true},"messages":[` + userHi + `]}`, "parallel_tool_calls", ``},
		{"tool_choice none", `{"tool_choice":{"type":"none"},"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[` + userHi + `]}`, "tool_choice", `"none"`},
		{"a strict tool stays strict", `{"tools":[{"name":"f","strict":true,"input_schema":{"type":"object"}}],"messages":[` + userHi + `]}`,
			"tools.0", `{"type":"function","function":{"name":"f","parameters":{"type":"object"},"strict":true}}`},
		{"a custom tool", `{"tools":[{"type":"custom","name":"f","input_schema":{"type":"object"}}],"messages":[` + userHi + `]}`, "tools.0.function.name", `"f"`},
		{"output_config format", `{"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}},"effort":"low"},"messages":[` + userHi + `]}`,
			"response_format", `{"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object"},"strict":true}}`},
		{"cache_control is dropped", `{"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[` + userHi + `]}`, "messages.0", `{"role":"system","content":"s"}`},
		{"thinking disabled is fine", `{"thinking":{"type":"disabled"},"messages":[` + userHi + `]}`, "messages.0.content", `"Hi"`},
		{"an empty system prompt is left out", `{"system":"","messages":[` + userHi + `]}`, "messages.0.role", `"user"`},
		{"text in HTML stays readable", `{"messages":[{"role":"user","content":"<b>&</b>"}]}`, "messages.0.content", `"<b>&</b>"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := MessagesToOpenAI.Request([]byte(tc.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			assertJSONAt(t, out, tc.path, tc.want)
		})
	}
}

// assertJSONAt compares the value at path in out with want, both
// compacted; want "" means the value must be absent.
func assertJSONAt(t *testing.T, out []byte, path, want string) {
	t.Helper()
	got := gjson.GetBytes(out, path)
	if want == "" {
		if got.Exists() {
			t.Errorf("%s = %s, want it absent\nin %s", path, got.Raw, out)
		}
		return
	}
	if g, w := compact(t, got.Raw), compact(t, want); g != w {
		t.Errorf("%s = %s, want %s\nin %s", path, g, w, out)
	}
}
