package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// responsesWith is a minimal valid request with extra top-level fields
// (a JSON object's members, without braces) or a replaced input.
func responsesWith(fields string) string {
	if fields == "" {
		return `{"model":"gpt-4.1","input":"Hello"}`
	}
	if strings.HasPrefix(fields, `"input"`) {
		return `{"model":"gpt-4.1",` + fields + `}`
	}
	return `{"model":"gpt-4.1","input":"Hello",` + fields + `}`
}

const responsesWeatherTool = `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]`

func TestResponsesRefusesUntranslatable(t *testing.T) {
	tests := []struct {
		name, body, wantIn string
	}{
		{"previous_response_id", responsesWith(`"previous_response_id":"resp_123"`), `"previous_response_id"`},
		{"conversation id", responsesWith(`"conversation":"conv_123"`), `"conversation"`},
		{"conversation object", responsesWith(`"conversation":{"id":"conv_123"}`), `"conversation"`},
		{"prompt template", responsesWith(`"prompt":{"id":"pmpt_123","version":"2"}`), `"prompt"`},
		{"background", responsesWith(`"background":true`), `"background"`},
		{"truncation auto", responsesWith(`"truncation":"auto"`), `"truncation"`},
		{"top_logprobs", responsesWith(`"top_logprobs":5`), `"top_logprobs"`},
		{"include logprobs", responsesWith(`"include":["reasoning.encrypted_content","message.output_text.logprobs"]`), `message.output_text.logprobs`},
		{"n", responsesWith(`"n":2`), `"n"`},
		{"unknown field", responsesWith(`"frequency_penalty":0.5`), `"frequency_penalty"`},
		{"web_search tool", responsesWith(`"tools":[{"type":"web_search"}]`), `"web_search" tool`},
		{"web_search_preview tool", responsesWith(`"tools":[{"type":"web_search_preview"}]`), `"web_search_preview" tool`},
		{"file_search tool", responsesWith(`"tools":[{"type":"file_search","vector_store_ids":["vs_1"]}]`), `"file_search" tool`},
		{"computer_use tool", responsesWith(`"tools":[{"type":"computer_use_preview","display_width":1024,"display_height":768,"environment":"browser"}]`), `"computer_use_preview" tool`},
		{"code_interpreter tool", responsesWith(`"tools":[{"type":"code_interpreter","container":{"type":"auto"}}]`), `"code_interpreter" tool`},
		{"mcp tool", responsesWith(`"tools":[{"type":"mcp","server_label":"x","server_url":"https://x"}]`), `"mcp" tool`},
		{"image_generation tool", responsesWith(`"tools":[{"type":"image_generation"}]`), `"image_generation" tool`},
		{"local_shell tool", responsesWith(`"tools":[{"type":"local_shell"}]`), `"local_shell" tool`},
		{"custom tool", responsesWith(`"tools":[{"type":"custom","name":"grammar"}]`), `"custom" tool`},
		{"tool_choice allowed_tools", responsesWith(responsesWeatherTool + `,"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[]}`), `"tool_choice"`},
		{"tool_choice built-in", responsesWith(responsesWeatherTool + `,"tool_choice":{"type":"web_search_preview"}`), `"tool_choice"`},
		{"text format grammar", responsesWith(`"text":{"format":{"type":"grammar"}}`), `"text.format"`},
		{"input_file", responsesWith(`"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]`), `input_file`},
		{"input_audio", responsesWith(`"input":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]`), `input_audio`},
		{"image by file_id", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]`), `uploaded to OpenAI`},
		{"bmp image", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/bmp;base64,Qk0="}]}]`), `"image/bmp"`},
		{"image in system message", responsesWith(`"input":[{"role":"system","content":[{"type":"input_image","image_url":"https://x/a.png"}]},{"role":"user","content":"Hi"}]`), `system prompt takes text only`},
		{"image in assistant message", responsesWith(`"input":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"input_image","image_url":"https://x/a.png"}]},{"role":"user","content":"So?"}]`), `assistant message`},
		{"item_reference", responsesWith(`"input":[{"type":"item_reference","id":"msg_1"},{"role":"user","content":"So?"}]`), `item_reference`},
		{"web_search_call item", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"web_search_call","id":"ws_1","status":"completed"}]`), `"web_search_call" item`},
		{"computer_call_output item", responsesWith(`"input":[{"type":"computer_call_output","call_id":"c","output":{}}]`), `"computer_call_output" item`},
		{"arguments not an object", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"[1,2]"},{"type":"function_call_output","call_id":"c1","output":"ok"}]`), `"input[1].arguments"`},
		{"arguments not JSON", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":"},{"type":"function_call_output","call_id":"c1","output":"ok"}]`), `"input[1].arguments"`},
		{"starts with assistant", responsesWith(`"input":[{"role":"assistant","content":"Hello! How can I help?"},{"role":"user","content":"Hi"}]`), `starts with an assistant turn`},
		{"ends with assistant", responsesWith(`"input":[{"role":"user","content":"Hi"},{"role":"assistant","content":"The answer is"}]`), `ends with an assistant turn`},
		{"output without its call", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call_output","call_id":"c9","output":"ok"}]`), `"c9"`},
		{"call without its output", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"role":"user","content":"Go on"}]`), `"c1"`},
		{"output a turn late", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call","call_id":"c2","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"1"},{"role":"assistant","content":"One done."},{"type":"function_call_output","call_id":"c2","output":"2"}]`), `"c2"`},
		{"arguments nested too deep", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"` +
			strings.Repeat(`{\"a\":`, 121) + `1` + strings.Repeat(`}`, 121) + `"},{"type":"function_call_output","call_id":"c1","output":"1"}]`), `nest deeper`},
		{"two calls with one id", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"1"}]`), `unique`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResponsesToAnthropic.Request([]byte(tt.body), Options{})
			if !IsUntranslatable(err) {
				t.Fatalf("Request = %s, %v; want an *Untranslatable error", got, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not name %s", err, tt.wantIn)
			}
		})
	}
}

func TestResponsesRefusesMalformed(t *testing.T) {
	tests := []struct {
		name, body, wantIn string
	}{
		{"not JSON", `{"model":`, "not valid JSON"},
		{"not an object", `["Hello"]`, "not a JSON object"},
		{"no input", `{"model":"gpt-4.1"}`, `"input" is missing`},
		{"input a number", responsesWith(`"input":42`), `"input"`},
		{"blank input", responsesWith(`"input":"  "`), "no user or assistant content"},
		{"empty item list", responsesWith(`"input":[]`), "no user or assistant content"},
		{"item not an object", responsesWith(`"input":["Hello"]`), `"input[0]"`},
		{"unknown role", responsesWith(`"input":[{"role":"tool","content":"x"}]`), `"input[0].role"`},
		{"content a number", responsesWith(`"input":[{"role":"user","content":7}]`), `"input[0].content"`},
		{"function_call without call_id", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","name":"f","arguments":"{}"}]`), `"call_id"`},
		{"function_call without name", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c","arguments":"{}"}]`), `"name"`},
		{"output without call_id", responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call_output","output":"x"}]`), `"call_id"`},
		{"image without url", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image"}]}]`), `"image_url"`},
		{"image data URL not base64", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png,abc"}]}]`), "not base64"},
		{"image ftp URL", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image","image_url":"ftp://x/a.png"}]}]`), "neither a data: URL nor an http(s) URL"},
		{"model a number", `{"model":4,"input":"Hi"}`, `"model"`},
		{"instructions a list", responsesWith(`"instructions":["a"]`), `"instructions"`},
		{"max_output_tokens zero", responsesWith(`"max_output_tokens":0`), `"max_output_tokens"`},
		{"max_output_tokens fractional", responsesWith(`"max_output_tokens":10.5`), `"max_output_tokens"`},
		{"max_output_tokens a string", responsesWith(`"max_output_tokens":"100"`), `"max_output_tokens"`},
		{"temperature too high", responsesWith(`"temperature":2.5`), `"temperature"`},
		{"top_p too high", responsesWith(`"top_p":1.5`), `"top_p"`},
		{"stream a string", responsesWith(`"stream":"yes"`), `"stream"`},
		{"tools an object", responsesWith(`"tools":{"type":"function"}`), `"tools"`},
		{"tool without type", responsesWith(`"tools":[{"name":"f"}]`), `"tools[0]"`},
		{"tool without name", responsesWith(`"tools":[{"type":"function"}]`), `"tools[0]"`},
		{"parameters not an object", responsesWith(`"tools":[{"type":"function","name":"f","parameters":"{}"}]`), `"tools[0].parameters"`},
		{"tool_choice unknown function", responsesWith(responsesWeatherTool + `,"tool_choice":{"type":"function","name":"nope"}`), `"nope"`},
		{"tool_choice required without tools", responsesWith(`"tool_choice":"required"`), `no "tools"`},
		{"tool_choice unknown word", responsesWith(responsesWeatherTool + `,"tool_choice":"sometimes"`), `"tool_choice"`},
		{"text not an object", responsesWith(`"text":"json"`), `"text"`},
		{"json_schema without schema", responsesWith(`"text":{"format":{"type":"json_schema","name":"x"}}`), `"text.format.schema"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResponsesToAnthropic.Request([]byte(tt.body), Options{})
			if err == nil || IsUntranslatable(err) {
				t.Fatalf("Request = %s, %v; want an error about a malformed request", got, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not name %s", err, tt.wantIn)
			}
		})
	}
}

// TestResponsesDropsWhatChangesNothing checks that the fields documented
// as dropped leave the Anthropic request as it is without them.
func TestResponsesDropsWhatChangesNothing(t *testing.T) {
	want, err := ResponsesToAnthropic.Request([]byte(responsesWith("")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{
		`"store":true`, `"store":false`, `"metadata":{"session":"s1"}`, `"service_tier":"flex"`,
		`"truncation":"disabled"`, `"truncation":null`, `"reasoning":{"effort":"high","summary":"auto"}`,
		`"include":["reasoning.encrypted_content","file_search_call.results"]`, `"prompt_cache_key":"k"`,
		`"prompt_cache_retention":"24h"`, `"stream_options":{"include_obfuscation":false}`, `"max_tool_calls":3`,
		`"top_logprobs":0`, `"background":false`, `"previous_response_id":null`, `"conversation":null`,
		`"top_p":1`, `"text":{"format":{"type":"text"},"verbosity":"low"}`, `"parallel_tool_calls":false`,
		`"tool_choice":"auto"`, `"tool_choice":"none"`, `"stream":false`, `"instructions":""`, `"user":""`,
		`"user":"` + strings.Repeat("u", 257) + `"`,
	} {
		t.Run(field, func(t *testing.T) {
			got, err := ResponsesToAnthropic.Request([]byte(responsesWith(field)), Options{})
			if err != nil {
				t.Fatalf("Request: %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("with %s the request is\n%s\nwant\n%s", field, got, want)
			}
		})
	}
}

func TestResponsesRequestSettings(t *testing.T) {
	tests := []struct {
		name, body string
		o          Options
		path, want string // a gjson path of the Anthropic request and its raw value ("" for absent)
	}{
		{"default max_tokens", responsesWith(""), Options{}, "max_tokens", "4096"},
		{"the model's max_tokens", responsesWith(""), Options{MaxTokens: 1000}, "max_tokens", "1000"},
		{"the request's max_output_tokens", responsesWith(`"max_output_tokens":300`), Options{MaxTokens: 1000}, "max_tokens", "300"},
		{"temperature kept", responsesWith(`"temperature":0.3`), Options{}, "temperature", "0.3"},
		{"temperature above Anthropic's range", responsesWith(`"temperature":1.7`), Options{}, "temperature", "1"},
		{"top_p kept", responsesWith(`"top_p":0.5`), Options{}, "top_p", "0.5"},
		{"stream", responsesWith(`"stream":true`), Options{}, "stream", "true"},
		{"user", responsesWith(`"user":"u-1"`), Options{}, "metadata", `{"user_id":"u-1"}`},
		{"safety_identifier before user", responsesWith(`"user":"u-1","safety_identifier":"s-1"`), Options{}, "metadata.user_id", `"s-1"`},
		{"instructions and system items in order", responsesWith(`"input":[{"role":"system","content":"B"},{"role":"user","content":"Hi"},{"role":"developer","content":"C"},{"role":"user","content":"Again"}],"instructions":"A"`),
			Options{}, "system", `"A\n\nB\n\nC"`},
		{"json_object", responsesWith(`"text":{"format":{"type":"json_object"}}`), Options{}, "system", `"Answer with one JSON object and nothing else: no prose, no code fences."`},
		{"tool_choice none", responsesWith(responsesWeatherTool + `,"tool_choice":"none","parallel_tool_calls":false`), Options{}, "tool_choice", `{"type":"none"}`},
		{"parallel_tool_calls false", responsesWith(responsesWeatherTool + `,"parallel_tool_calls":false`), Options{}, "tool_choice", `{"type":"auto","disable_parallel_tool_use":true}`},
		{"no tool_choice by default", responsesWith(responsesWeatherTool), Options{}, "tool_choice", ``},
		{"function tool_choice", responsesWith(responsesWeatherTool + `,"tool_choice":{"type":"function","name":"get_weather"}`), Options{}, "tool_choice", `{"type":"tool","name":"get_weather"}`},
		{"https image", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image","image_url":"HTTPS://example.com/a.png","detail":"high"}]}]`),
			Options{}, "messages.0.content.0", `{"type":"image","source":{"type":"url","url":"HTTPS://example.com/a.png"}}`},
		{"png data URL", responsesWith(`"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:IMAGE/PNG;base64,iVBORw0KGgo="}]}]`),
			Options{}, "messages.0.content.0.source", `{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}`},
		{"refusal part as text", responsesWith(`"input":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"refusal","refusal":"I can't help with that."}]},{"role":"user","content":"Why?"}]`),
			Options{}, "messages.1.content.0.text", `"I can't help with that."`},
		{"text with markup kept", responsesWith(`"input":"<b>a & b</b>"`), Options{}, "messages.0.content.0.text", `"<b>a & b</b>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResponsesToAnthropic.Request([]byte(tt.body), tt.o)
			if err != nil {
				t.Fatalf("Request: %v", err)
			}
			if v := gjson.GetBytes(got, tt.path); v.Raw != tt.want {
				t.Errorf("%s = %s, want %s\nin %s", tt.path, v.Raw, tt.want, got)
			}
			if err := responsesCheckMessages(got); err != nil {
				t.Errorf("Anthropic would refuse the request: %v\n%s", err, got)
			}
		})
	}
}

// TestResponsesArgumentsWithinNestingBound checks that the deepest
// arguments accepted keep the Anthropic request within the nesting bound
// the gateway applies to every body.
func TestResponsesArgumentsWithinNestingBound(t *testing.T) {
	args := strings.Repeat(`{\"a\":`, responsesArgsDepth) + `1` + strings.Repeat(`}`, responsesArgsDepth)
	body := responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c1","name":"f","arguments":"` + args +
		`"},{"type":"function_call_output","call_id":"c1","output":"1"}]`)
	got, err := ResponsesToAnthropic.Request([]byte(body), Options{})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if _, err := jsonguard.Scan(got, jsonguard.MaxDepth); err != nil {
		t.Errorf("the translated request is refused by the nesting bound: %v", err)
	}
}

// A reasoning item (an agent on an OpenAI reasoning model with store:false
// resends it every turn) is left out: the conversation is the same without
// it, so such an agent can still fail over to Anthropic.
func TestResponsesLeavesOutReasoningItems(t *testing.T) {
	with := `"input":[{"role":"user","content":"Hi"},{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAA"},{"role":"assistant","content":"Hello."},{"role":"user","content":"So?"}]`
	without := `"input":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."},{"role":"user","content":"So?"}]`
	got, err := ResponsesToAnthropic.Request([]byte(responsesWith(with)), Options{})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	want, err := ResponsesToAnthropic.Request([]byte(responsesWith(without)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("with a reasoning item:\n%s\nwant\n%s", got, want)
	}
}
