package translate

import (
	"strings"
	"testing"
)

// Requests that use what the other provider cannot do are refused with an
// *Untranslatable whose reason names the field, so the gateway skips the
// model and says why.

// userHi is a user message, the same in both APIs.
const userHi = `{"role":"user","content":"Hi"}`

func TestChatToMessagesRefuses(t *testing.T) {
	tests := []struct {
		name, body, reason string
	}{
		{"several choices", `{"n":2,"messages":[` + userHi + `]}`, `"n": 2`},
		{"logprobs", `{"logprobs":true,"messages":[` + userHi + `]}`, `"logprobs"`},
		{"top logprobs", `{"top_logprobs":3,"messages":[` + userHi + `]}`, `"top_logprobs"`},
		{"audio answer", `{"audio":{"voice":"alloy","format":"wav"},"messages":[` + userHi + `]}`, `"audio"`},
		{"audio modality", `{"modalities":["text","audio"],"messages":[` + userHi + `]}`, `"modalities"`},
		{"legacy functions", `{"functions":[{"name":"f"}],"messages":[` + userHi + `]}`, `"functions"`},
		{"legacy function_call", `{"function_call":"auto","messages":[` + userHi + `]}`, `"function_call"`},
		{"logit bias", `{"logit_bias":{"50256":-100},"messages":[` + userHi + `]}`, `"logit_bias"`},
		{"web search", `{"web_search_options":{},"messages":[` + userHi + `]}`, `"web_search_options"`},
		{"audio input part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`, `messages[0].content[0] is audio input`},
		{"file part", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, `messages[0].content[0] is a file`},
		{"unknown part", `{"messages":[{"role":"user","content":[{"type":"video","video":{}}]}]}`, `"video"`},
		{"image in a system message", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},` + userHi + `]}`, `messages[0].content[0]`},
		{"function role", `{"messages":[` + userHi + `,{"role":"function","name":"f","content":"1"}]}`, `messages[1] has the role "function"`},
		{"assistant function_call", `{"messages":[` + userHi + `,{"role":"assistant","function_call":{"name":"f","arguments":"{}"}},` + userHi + `]}`, `messages[1] has a "function_call"`},
		{"assistant audio", `{"messages":[` + userHi + `,{"role":"assistant","audio":{"id":"audio_abc"}},` + userHi + `]}`, `messages[1] refers to an earlier spoken answer`},
		{"custom tool", `{"tools":[{"type":"custom","custom":{"name":"grammar"}}],"messages":[` + userHi + `]}`, `tools[0] is of type "custom"`},
		{"custom tool call", `{"messages":[` + userHi + `,{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"g","input":"x"}}]},` + userHi + `]}`, `messages[1].tool_calls[0]`},
		{"allowed tools", `{"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}},"messages":[` + userHi + `]}`, `"tool_choice" of type "allowed_tools"`},
		{"unknown response format", `{"response_format":{"type":"grammar"},"messages":[` + userHi + `]}`, `"response_format" of type "grammar"`},
		{"bmp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`, `"image/bmp"`},
		{"ftp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, `neither http(s) nor a base64 data: URL`},
		{"whitespace stop", `{"stop":["\n"],"messages":[` + userHi + `]}`, `whitespace only`},
		{"ends with the assistant", `{"messages":[` + userHi + `,{"role":"assistant","content":"The answer is"}]}`, `ends with an assistant message`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ChatToAnthropic.Request([]byte(tc.body), Options{})
			assertUntranslatable(t, out, err, tc.reason)
		})
	}
}

func TestMessagesToChatRefuses(t *testing.T) {
	tests := []struct {
		name, body, reason string
	}{
		{"thinking", `{"thinking":{"type":"enabled","budget_tokens":2048},"messages":[` + userHi + `]}`, `"thinking"`},
		{"adaptive thinking", `{"thinking":{"type":"adaptive"},"messages":[` + userHi + `]}`, `"thinking"`},
		{"container", `{"container":"container_abc","messages":[` + userHi + `]}`, `"container"`},
		{"mcp servers", `{"mcp_servers":[{"type":"url","url":"https://mcp.example.com/sse","name":"x"}],"messages":[` + userHi + `]}`, `"mcp_servers"`},
		{"server tool", `{"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}],"messages":[` + userHi + `]}`, `tools[0] is the Anthropic-defined tool "web_search_20250305"`},
		{"too many stop sequences", `{"stop_sequences":["a","b","c","d","e"],"messages":[` + userHi + `]}`, `"stop_sequences" has 5 entries`},
		{"document", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}`, `messages[0].content[0] is a block of type "document"`},
		{"search result", `{"messages":[{"role":"user","content":[{"type":"search_result","source":"https://x","title":"t","content":[]}]}]}`, `"search_result"`},
		{"file image", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_abc"}}]}]}`, `Files API`},
		{"document in a tool result", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}]}`, `messages[2].content[0].content[0] is a block of type "document"`},
		{"server tool use in history", `{"messages":[` + userHi + `,{"role":"assistant","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}}]},` + userHi + `]}`, `messages[1].content[0] is a block of type "server_tool_use"`},
		{"image in the system prompt", `{"system":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}],"messages":[` + userHi + `]}`, `system[0]`},
		{"prefill", `{"messages":[` + userHi + `,{"role":"assistant","content":"{"}]}`, `prefill`},
		{"text output format", `{"output_format":{"type":"text"},"messages":[` + userHi + `]}`, `output format of type "text"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := MessagesToOpenAI.Request([]byte(tc.body), Options{})
			assertUntranslatable(t, out, err, tc.reason)
		})
	}
}

func assertUntranslatable(t *testing.T, out []byte, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("translated to %s, want it refused", out)
	}
	if !IsUntranslatable(err) {
		t.Fatalf("error %v is not an *Untranslatable", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("reason %q does not say %q", err, reason)
	}
}

// TestMalformedRequestsAreErrors checks that a request that is not what
// its API takes is an error saying what is wrong, not a refusal (the
// model could serve a well-formed one).
func TestMalformedRequestsAreErrors(t *testing.T) {
	tests := []struct {
		name string
		d    Direction
		body string
		want string
	}{
		{"not JSON", ChatToAnthropic, `{"messages":`, "not valid JSON"},
		{"not an object", MessagesToOpenAI, `[1,2]`, "not a JSON object"},
		{"messages not an array", ChatToAnthropic, `{"messages":"hi"}`, `"messages" must be an array`},
		{"unknown role", ChatToAnthropic, `{"messages":[{"role":"robot","content":"x"}]}`, `messages[0] has the role "robot"`},
		{"message not an object", MessagesToOpenAI, `{"messages":[1]}`, "messages[0] must be an object"},
		{"system role in messages", MessagesToOpenAI, `{"messages":[{"role":"system","content":"x"}]}`, `messages[0] has the role "system"`},
		{"max_tokens a string", ChatToAnthropic, `{"max_tokens":"many","messages":[` + userHi + `]}`, `"max_tokens" is "many"`},
		{"stop a number", ChatToAnthropic, `{"stop":5,"messages":[` + userHi + `]}`, `"stop" must be a string or an array`},
		{"tool_choice unknown", ChatToAnthropic, `{"tool_choice":"sometimes","messages":[` + userHi + `]}`, `"tool_choice" is "sometimes"`},
		{"too deep", MessagesToOpenAI, `{"messages":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "nested deeper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.d.Request([]byte(tc.body), Options{})
			if err == nil {
				t.Fatalf("translated to %s, want an error", out)
			}
			if IsUntranslatable(err) {
				t.Errorf("error %v is a refusal; want a malformed-request error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
