package fakellm_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// Conversations the providers accept, used as bases below.
const (
	// an Anthropic conversation with two tools called at once, answered,
	// then a text exchange
	anthropicToolTurns = `[
		{"role":"user","content":"Weather in Paris and Rome?"},
		{"role":"assistant","content":[{"type":"text","text":"Let me look."},
			{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}},
			{"type":"tool_use","id":"toolu_2","name":"weather","input":{"city":"Rome"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
			{"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"24C"}],"is_error":false},
			{"type":"text","text":"And?"}]},
		{"role":"assistant","content":"Paris 18C, Rome 24C."},
		{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
			{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
			{"type":"document","source":{"type":"text","media_type":"text/plain","data":"notes"}},
			{"type":"text","text":"Thanks.","cache_control":{"type":"ephemeral"}}]}]`
	anthropicTools = `[{"name":"weather","description":"Weather of a city","input_schema":{"type":"object",
		"properties":{"city":{"type":"string"}},"required":["city"]}},{"type":"web_search_20250305","name":"web_search"}]`

	// an OpenAI conversation with two tool calls answered, then more
	openAIToolTurns = `[
		{"role":"system","content":"Be brief."},
		{"role":"developer","content":[{"type":"text","text":"Use the tools."}]},
		{"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"},
			{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
		{"role":"assistant","content":null,"tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
			{"id":"call_2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"18C"},
		{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"24C"}]},
		{"role":"assistant","content":"Paris 18C, Rome 24C."},
		{"role":"user","content":"Thanks."}]`
	openAITools = `[{"type":"function","function":{"name":"weather","parameters":{"type":"object",
		"properties":{"city":{"type":"string"}},"required":["city"]}}}]`
)

// anthropicRequest is a Messages request with messages and more top-level
// fields (a JSON object's members, without braces).
func anthropicRequest(messages, more string) string {
	if more != "" {
		more = "," + more
	}
	return `{"model":"claude-x","max_tokens":64,"messages":` + messages + more + `}`
}

// openAIRequest is a chat completion request with messages and more
// top-level fields.
func openAIRequest(messages, more string) string {
	if more != "" {
		more = "," + more
	}
	return `{"model":"gpt-4o","messages":` + messages + more + `}`
}

const userHi = `[{"role":"user","content":"Hi."}]`

func TestAnthropicRequestsAreCheckedAsTheAPIDoes(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	for _, tc := range []struct {
		name, path, body, want string // want "" for a request the API accepts
	}{
		{"tools, images, documents and a final user turn", "", anthropicRequest(anthropicToolTurns,
			`"tools":`+anthropicTools+`,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],`+
				`"tool_choice":{"type":"auto"},"temperature":0.5,"stop_sequences":["END"],"metadata":{"user_id":"u1"}`), ""},
		{"ends on the assistant's tool_use", "", anthropicRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}]}]`,
			`"tools":`+anthropicTools), ""},
		{"an empty final assistant turn", "", anthropicRequest(`[{"role":"user","content":"Hi."},{"role":"assistant","content":""}]`, ""), ""},
		{"count_tokens without max_tokens", "/v1/messages/count_tokens", `{"model":"claude-x","messages":` + userHi + `}`, ""},

		{"OpenAI's response_format", "", anthropicRequest(userHi, `"response_format":{"type":"json_object"}`),
			"response_format: Extra inputs are not permitted"},
		{"OpenAI's stop", "", anthropicRequest(userHi, `"stop":["END"]`), "stop: Extra inputs are not permitted"},
		{"OpenAI's n", "", anthropicRequest(userHi, `"n":1`), "n: Extra inputs are not permitted"},
		{"count_tokens with max_tokens", "/v1/messages/count_tokens", anthropicRequest(userHi, ""),
			"max_tokens: Extra inputs are not permitted"},
		{"max_tokens 0", "", `{"model":"c","max_tokens":0,"messages":` + userHi + `}`,
			"max_tokens: Input should be greater than or equal to 1"},
		{"max_tokens not a number", "", `{"model":"c","max_tokens":"lots","messages":` + userHi + `}`,
			"max_tokens: Input should be a valid integer"},
		{"max_tokens with a fraction", "", `{"model":"c","max_tokens":1.5,"messages":` + userHi + `}`,
			"max_tokens: Input should be a valid integer"},
		{"temperature above 1", "", anthropicRequest(userHi, `"temperature":1.5`),
			"temperature: Input should be less than or equal to 1"},
		{"stop_sequences a string", "", anthropicRequest(userHi, `"stop_sequences":"END"`),
			"stop_sequences: Input should be a valid list"},
		{"OpenAI's metadata", "", anthropicRequest(userHi, `"metadata":{"session":"s1"}`),
			"metadata.session: Extra inputs are not permitted"},
		{"system an object", "", anthropicRequest(userHi, `"system":{"text":"x"}`),
			"system: Input should be a valid string or a list of text blocks"},
		{"system with an image", "", anthropicRequest(userHi, `"system":[{"type":"image","source":{}}]`),
			"system.0.type: Input should be 'text'"},
		{"system with empty text", "", anthropicRequest(userHi, `"system":[{"type":"text","text":""}]`),
			"system: text content blocks must be non-empty"},

		{"no messages", "", anthropicRequest(`[]`, ""), "messages: at least one message is required"},
		{"messages not a list", "", anthropicRequest(`{}`, ""), "messages: Input should be a valid list"},
		{"a system message", "", anthropicRequest(`[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi."}]`, ""),
			`messages: Unexpected role "system". The Messages API accepts a top-level ` + "`system`" +
				` parameter, not "system" as an input message role.`},
		{"a tool message", "", anthropicRequest(`[{"role":"user","content":"Hi."},{"role":"tool","content":"x"}]`, ""),
			"messages.1.role: Input should be 'user' or 'assistant'"},
		{"the assistant first", "", anthropicRequest(`[{"role":"assistant","content":"Hi."}]`, ""),
			`messages: first message must use the "user" role`},
		{"two user turns in a row", "", anthropicRequest(`[{"role":"user","content":"Hi."},{"role":"user","content":"Hello?"}]`, ""),
			`messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row`},
		{"two assistant turns in a row", "", anthropicRequest(`[{"role":"user","content":"Hi."},{"role":"assistant","content":"A"},
			{"role":"assistant","content":"B"}]`, ""),
			`messages: roles must alternate between "user" and "assistant", but found multiple "assistant" roles in a row`},
		{"OpenAI's tool_calls on a turn", "", anthropicRequest(`[{"role":"user","content":"Hi."},
			{"role":"assistant","content":"x","tool_calls":[]}]`, ""), "messages.1.tool_calls: Extra inputs are not permitted"},
		{"no content", "", anthropicRequest(`[{"role":"user"}]`, ""), "messages.0.content: Field required"},
		{"empty content", "", anthropicRequest(`[{"role":"user","content":""}]`, ""),
			"messages.0: all messages must have non-empty content except for the optional final assistant message"},
		{"no blocks", "", anthropicRequest(`[{"role":"user","content":[]}]`, ""),
			"messages.0: all messages must have non-empty content except for the optional final assistant message"},
		{"an empty text block", "", anthropicRequest(`[{"role":"user","content":[{"type":"text","text":""}]}]`, ""),
			"messages: text content blocks must be non-empty"},
		{"a blank text block", "", anthropicRequest(`[{"role":"user","content":[{"type":"text","text":" \n"}]}]`, ""),
			"messages: text content blocks must contain non-whitespace text"},
		{"OpenAI's image_url part", "", anthropicRequest(`[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]`, ""),
			"messages.0.content.0: Input tag 'image_url' found using 'type' does not match any of the expected tags: "},
		{"a block without type", "", anthropicRequest(`[{"role":"user","content":[{"text":"Hi."}]}]`, ""),
			"messages.0.content.0: Unable to extract tag using discriminator 'type'"},
		{"a text block with more", "", anthropicRequest(`[{"role":"user","content":[{"type":"text","text":"Hi.","name":"x"}]}]`, ""),
			"messages.0.content.0.text.name: Extra inputs are not permitted"},
		{"an image without source", "", anthropicRequest(`[{"role":"user","content":[{"type":"image"}]}]`, ""),
			"messages.0.content.0.image.source: Field required"},
		{"an image of a bad type", "", anthropicRequest(`[{"role":"user","content":[{"type":"image","source":{"type":"base64",
			"media_type":"image/bmp","data":"x"}}]}]`, ""),
			"messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"},
		{"an image url without url", "", anthropicRequest(`[{"role":"user","content":[{"type":"image","source":{"type":"url"}}]}]`, ""),
			"messages.0.content.0.image.source.url.url: Field required"},
		{"tool_use from the user", "", anthropicRequest(`[{"role":"user","content":[{"type":"tool_use","id":"t","name":"n","input":{}}]}]`, ""),
			"messages.0.content.0: `tool_use` blocks can only be in `assistant` messages"},
		{"tool_use input as a string of JSON", "", anthropicRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":"{\"city\":\"Paris\"}"}]}]`, ""),
			"messages.1.content.0.tool_use.input: Input should be a valid dictionary"},
		{"tool_use without id", "", anthropicRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","content":[{"type":"tool_use","name":"weather","input":{}}]}]`, ""),
			"messages.1.content.0.tool_use.id: Field required"},
		{"tool_result from the assistant", "", anthropicRequest(`[{"role":"user","content":"Hi."},
			{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"toolu_1"}]}]`, ""),
			"messages.1.content.0: `tool_result` blocks can only be in `user` messages"},
		{"a tool_result answering nothing", "", anthropicRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","content":"Sunny."},
			{"role":"user","content":[{"type":"text","text":"And?"},{"type":"tool_result","tool_use_id":"toolu_9","content":"x"}]}]`, ""),
			"messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` " +
				"block must have a corresponding `tool_use` block in the previous message."},
		{"tool_use left unanswered", "", anthropicRequest(`[{"role":"user","content":"Weather?"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{}},
				{"type":"tool_use","id":"toolu_2","name":"weather","input":{}}]},
			{"role":"user","content":"Well?"}]`, ""),
			"messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1, toolu_2. " +
				"Each `tool_use` block must have a corresponding `tool_result` block in the next message."},
		{"one tool_use of two answered", "", anthropicRequest(`[{"role":"user","content":"Weather?"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{}},
				{"type":"tool_use","id":"toolu_2","name":"weather","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_2","content":"x"}]}]`, ""),
			"messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. " +
				"Each `tool_use` block must have a corresponding `tool_result` block in the next message."},

		{"OpenAI's tool shape", "", anthropicRequest(userHi, `"tools":`+openAITools),
			"tools.0: Input tag 'function' found using 'type' does not match any of the expected tags: 'custom' or a " +
				"server tool's versioned type such as 'web_search_20250305'"},
		{"a tool without input_schema", "", anthropicRequest(userHi, `"tools":[{"name":"weather","parameters":{"type":"object"}}]`),
			"tools.0.custom.input_schema: Field required"},
		{"a tool's schema not an object", "", anthropicRequest(userHi, `"tools":[{"name":"w","input_schema":{"type":"string"}}]`),
			"tools.0.custom.input_schema.type: Input should be 'object'"},
		{"two tools of a name", "", anthropicRequest(userHi,
			`"tools":[{"name":"w","input_schema":{"type":"object"}},{"name":"w","input_schema":{"type":"object"}}]`),
			"tools: Tool names must be unique."},
		{"OpenAI's tool_choice string", "", anthropicRequest(userHi, `"tools":`+anthropicTools+`,"tool_choice":"auto"`),
			"tool_choice: Input should be a valid dictionary or object to extract fields from"},
		{"OpenAI's tool_choice required", "", anthropicRequest(userHi, `"tools":`+anthropicTools+`,"tool_choice":{"type":"required"}`),
			"tool_choice: Input tag 'required' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"},
		{"tool_choice tool without name", "", anthropicRequest(userHi, `"tools":`+anthropicTools+`,"tool_choice":{"type":"tool"}`),
			"tool_choice.tool.name: Field required"},
		{"tool_choice of an unknown tool", "", anthropicRequest(userHi, `"tools":`+anthropicTools+`,"tool_choice":{"type":"tool","name":"x"}`),
			"tool_choice.tool.name: tool 'x' is not among the tools provided"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v1/messages"
			}
			resp, body := post(t, url+path, tc.body)
			if tc.want == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("got %s %s, want 200", resp.Status, body)
				}
				return
			}
			var e anthropicError
			decode(t, body, &e)
			if resp.StatusCode != http.StatusBadRequest || e.Type != "error" || e.Error == nil ||
				e.Error.Type != "invalid_request_error" || !strings.HasPrefix(e.Error.Message, tc.want) {
				t.Fatalf("got %s %s\nwant 400 invalid_request_error %q", resp.Status, body, tc.want)
			}
			if last, _ := s.Last(); last.Rejected != e.Error.Message {
				t.Fatalf("Last().Rejected = %q, want the message answered", last.Rejected)
			}
		})
	}
}

func TestOpenAIRequestsAreCheckedAsTheAPIDoes(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	for _, tc := range []struct {
		name, body        string
		want, param, code string // want "" for a request the API accepts; param and code "" for null
	}{
		{"tool calls answered, images, developer", openAIRequest(openAIToolTurns,
			`"tools":`+openAITools+`,"tool_choice":"auto","parallel_tool_calls":true,"temperature":1.5,"stop":["a","b"]`), "", "", ""},
		{"ends on the assistant's tool calls", openAIRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}}]}]`,
			`"tools":`+openAITools), "", "", ""},
		{"json_object with the word", openAIRequest(`[{"role":"user","content":"Answer in JSON."}]`,
			`"response_format":{"type":"json_object"}`), "", "", ""},

		{"Anthropic's top_k", openAIRequest(userHi, `"top_k":5`), "Unrecognized request argument supplied: top_k", "", ""},
		{"Anthropic's system", openAIRequest(userHi, `"system":"Be brief."`), "Unrecognized request argument supplied: system", "", ""},
		{"Anthropic's stop_sequences", openAIRequest(userHi, `"stop_sequences":["END"]`),
			"Unrecognized request argument supplied: stop_sequences", "", ""},
		{"temperature above 2", openAIRequest(userHi, `"temperature":3`),
			"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
			"temperature", "decimal_above_max_value"},
		{"temperature below 0", openAIRequest(userHi, `"temperature":-1`),
			"Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -1 instead.",
			"temperature", "decimal_below_min_value"},
		{"five stop strings", openAIRequest(userHi, `"stop":["a","b","c","d","e"]`),
			"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead.",
			"stop", "array_above_max_length"},
		{"no messages", `{"model":"gpt-4o"}`, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"},
		{"empty messages", openAIRequest(`[]`, ""),
			"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
			"messages", "empty_array"},
		{"an unknown role", openAIRequest(`[{"role":"human","content":"Hi."}]`, ""),
			"Invalid value: 'human'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
			"messages[0].role", "invalid_value"},
		{"a user message without content", openAIRequest(`[{"role":"user"}]`, ""),
			"Missing required parameter: 'messages[0].content'.", "messages[0].content", "missing_required_parameter"},
		{"Anthropic's image block", openAIRequest(`[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]`, ""),
			"Invalid value: 'image'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'.",
			"messages[0].content[0].type", "invalid_value"},
		{"Anthropic's tool_result block", openAIRequest(`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]`, ""),
			"Invalid value: 'tool_result'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'.",
			"messages[0].content[0].type", "invalid_value"},
		{"an image_url without url", openAIRequest(`[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]`, ""),
			"Missing required parameter: 'messages[0].content[0].image_url.url'.",
			"messages[0].content[0].image_url.url", "missing_required_parameter"},
		{"an image in a system message", openAIRequest(`[{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]},
			{"role":"user","content":"Hi."}]`, ""),
			"Invalid value: 'image_url'. Supported values are: 'text'.", "messages[0].content[0].type", "invalid_value"},
		{"a tool message after a user message", openAIRequest(`[{"role":"user","content":"Hi."},
			{"role":"tool","tool_call_id":"call_1","content":"18C"}]`, ""),
			"Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
			"messages.[1].role", ""},
		{"a tool message answering another call", openAIRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"call_9","content":"18C"}]`, `"tools":`+openAITools),
			"Invalid parameter: 'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message.",
			"messages.[2].tool_call_id", ""},
		{"a tool message without tool_call_id", openAIRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}}]},
			{"role":"tool","content":"18C"}]`, `"tools":`+openAITools),
			"Missing required parameter: 'messages[2].tool_call_id'.", "messages[2].tool_call_id", "missing_required_parameter"},
		{"tool calls left unanswered", openAIRequest(`[{"role":"user","content":"Weather?"},
			{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}},
				{"id":"call_2","type":"function","function":{"name":"weather","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"call_2","content":"18C"},
			{"role":"user","content":"Well?"}]`, `"tools":`+openAITools),
			"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
				"The following tool_call_ids did not have response messages: call_1", "messages.[1].role", ""},
		{"arguments as an object", openAIRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":{"city":"Paris"}}}]}]`,
			`"tools":`+openAITools),
			"Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but got an object instead.",
			"messages[1].tool_calls[0].function.arguments", "invalid_type"},
		{"a tool call without id", openAIRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"weather","arguments":"{}"}}]}]`, `"tools":`+openAITools),
			"Missing required parameter: 'messages[1].tool_calls[0].id'.", "messages[1].tool_calls[0].id", "missing_required_parameter"},
		{"Anthropic's tool shape", openAIRequest(userHi, `"tools":[{"name":"weather","input_schema":{"type":"object"}}]`),
			"Missing required parameter: 'tools[0].type'.", "tools[0].type", "missing_required_parameter"},
		{"a function tool without function", openAIRequest(userHi, `"tools":[{"type":"function","name":"weather"}]`),
			"Missing required parameter: 'tools[0].function'.", "tools[0].function", "missing_required_parameter"},
		{"a tool name with a space", openAIRequest(userHi, `"tools":[{"type":"function","function":{"name":"get weather"}}]`),
			"Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern " +
				"'^[a-zA-Z0-9_-]{1,64}$'.", "tools[0].function.name", "invalid_value"},
		{"Anthropic's tool_choice any", openAIRequest(userHi, `"tools":`+openAITools+`,"tool_choice":"any"`),
			"Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.", "tool_choice", "invalid_value"},
		{"Anthropic's tool_choice object", openAIRequest(userHi, `"tools":`+openAITools+`,"tool_choice":{"type":"tool","name":"weather"}`),
			"Invalid value: 'tool'. Supported values are: 'function', 'allowed_tools', and 'custom'.", "tool_choice.type", "invalid_value"},
		{"tool_choice without tools", openAIRequest(userHi, `"tool_choice":"none"`),
			"Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice", ""},
		{"tool_choice of an unknown function", openAIRequest(userHi, `"tools":`+openAITools+
			`,"tool_choice":{"type":"function","function":{"name":"x"}}`),
			"Invalid value for 'tool_choice': tool choice 'x' not found in 'tools' parameter.", "tool_choice", ""},
		{"json_object without the word", openAIRequest(userHi, `"response_format":{"type":"json_object"}`),
			"'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", "messages", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, url+"/v1/chat/completions", tc.body)
			if tc.want == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("got %s %s, want 200", resp.Status, body)
				}
				return
			}
			var e openAIError
			decode(t, body, &e)
			if resp.StatusCode != http.StatusBadRequest || e.Error == nil || e.Error.Type != "invalid_request_error" ||
				e.Error.Message != tc.want || deref(e.Error.Param) != tc.param || deref(e.Error.Code) != tc.code {
				t.Fatalf("got %s %s\nwant 400 %q param %q code %q", resp.Status, body, tc.want, tc.param, tc.code)
			}
		})
	}
}

// deref is *s, "" for nil (JSON null).
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestBadRequestsAreCounted(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	post(t, url+"/v1/chat/completions", chatBody)
	post(t, url+"/v1/chat/completions", openAIRequest(userHi, `"top_k":1`))
	post(t, url+"/v1/messages", anthropicRequest(`[{"role":"system","content":"x"}]`, ""))
	post(t, url+"/v1/nothing", `{}`)
	if st := s.Stats(); st.Calls != 4 || st.Failed != 3 || st.BadRequests != 3 {
		t.Fatalf("%+v", st)
	}
	if last, _ := s.Last(); last.Rejected != "Invalid URL (POST /v1/nothing)" {
		t.Fatalf("%+v", last)
	}
	post(t, url+"/v1/chat/completions", chatBody)
	if last, _ := s.Last(); last.Rejected != "" {
		t.Fatalf("an accepted call has Rejected %q", last.Rejected)
	}
	s.ResetStats()
	if st := s.Stats(); st.BadRequests != 0 {
		t.Fatalf("%+v", st)
	}
}
