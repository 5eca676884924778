package fakellm_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

const weatherQuestion = `[{"role":"user","content":"Weather in Paris?"}]`

func TestChatWithToolsCallsATool(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	for _, tc := range []struct {
		name, tools, choice, wantName, wantArgs string
	}{
		{"the first tool, its required string property", `[{"type":"function","function":{"name":"weather","parameters":{
			"type":"object","properties":{"days":{"type":"integer"},"unit":{"type":"string"},"city":{"type":"string"}},
			"required":["city"]}}}]`, "", "weather", `{"city":"Weather in Paris?"}`},
		{"a string property when none is required", `[{"type":"function","function":{"name":"search","parameters":{
			"type":"object","properties":{"q":{"type":["string","null"]}}}}}]`, `"required"`, "search", `{"q":"Weather in Paris?"}`},
		{"no string property", `[{"type":"function","function":{"name":"now"}}]`, `"auto"`, "now", `{}`},
		{"the tool forced", `[{"type":"function","function":{"name":"now"}},{"type":"function","function":{"name":"weather",
			"parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`,
			`{"type":"function","function":{"name":"weather"}}`, "weather", `{"city":"Weather in Paris?"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			more := `"tools":` + tc.tools
			if tc.choice != "" {
				more += `,"tool_choice":` + tc.choice
			}
			body := openAIRequest(weatherQuestion, more)
			resp, b := post(t, url+"/v1/chat/completions", body)
			choice := gjson.GetBytes(b, "choices.0")
			call := choice.Get("message.tool_calls.0")
			if resp.StatusCode != http.StatusOK || choice.Get("finish_reason").Str != "tool_calls" ||
				choice.Get("message.content").Type != gjson.Null || len(choice.Get("message.tool_calls").Array()) != 1 ||
				!strings.HasPrefix(call.Get("id").Str, "call_") || call.Get("type").Str != "function" ||
				call.Get("function.name").Str != tc.wantName || call.Get("function.arguments").Str != tc.wantArgs {
				t.Fatalf("%s %s\nwant a call to %s with %s", resp.Status, b, tc.wantName, tc.wantArgs)
			}

			// Streamed: the first chunk names the call, the next ones bring its arguments
			_, events, err := stream(t, url+"/v1/chat/completions", withStream(body))
			if err != nil || events[len(events)-1].Data != "[DONE]" {
				t.Fatalf("%v %+v", err, events)
			}
			head := gjson.Get(events[0].Data, "choices.0.delta")
			if head.Get("role").Str != "assistant" || head.Get("tool_calls.0.index").Raw != "0" ||
				!strings.HasPrefix(head.Get("tool_calls.0.id").Str, "call_") || head.Get("tool_calls.0.type").Str != "function" ||
				head.Get("tool_calls.0.function.name").Str != tc.wantName {
				t.Fatalf("first chunk: %s", events[0].Data)
			}
			var args strings.Builder
			pieces := 0
			for _, e := range events[1 : len(events)-2] {
				d := gjson.Get(e.Data, "choices.0.delta.tool_calls.0")
				if d.Get("index").Raw != "0" || d.Get("id").Exists() {
					t.Fatalf("argument chunk: %s", e.Data)
				}
				args.WriteString(d.Get("function.arguments").Str)
				pieces++
			}
			if args.String() != tc.wantArgs || pieces < 2 {
				t.Fatalf("arguments %q in %d pieces, want %s in several", args.String(), pieces, tc.wantArgs)
			}
			if fin := gjson.Get(events[len(events)-2].Data, "choices.0.finish_reason").Str; fin != "tool_calls" {
				t.Fatalf("finish_reason %q", fin)
			}

			// The call answered goes back to the model as the API wants it
			assistant := choice.Get("message").Raw
			next := openAIRequest(`[{"role":"user","content":"Weather in Paris?"},`+assistant+
				`,{"role":"tool","tool_call_id":"`+call.Get("id").Str+`","content":"Sunny, 18C."}]`, more)
			resp, b = post(t, url+"/v1/chat/completions", next)
			if text := gjson.GetBytes(b, "choices.0.message.content").Str; resp.StatusCode != http.StatusOK ||
				text != fakellm.DefaultReply+" (tool said: Sunny, 18C.)" {
				t.Fatalf("%s %s", resp.Status, b)
			}
		})
	}
	if st := s.Stats(); st.ToolCalls != 8 || st.Calls != 12 {
		t.Fatalf("%+v", st)
	}
}

func TestChatToolsAreNotCalledWhenTheyNeedNotBe(t *testing.T) {
	_, url := start(t, fakellm.Options{Reply: "Fine."})
	for _, tc := range []struct{ name, body, want string }{
		{"tool_choice none", openAIRequest(weatherQuestion, `"tools":`+openAITools+`,"tool_choice":"none"`), "Fine."},
		{"no tools", openAIRequest(weatherQuestion, ""), "Fine."},
		{"the last turn the assistant's", openAIRequest(`[{"role":"user","content":"Hi."},{"role":"assistant","content":"Hello."}]`,
			`"tools":`+openAITools), "Fine."},
		{"a long tool result, quoted in part", openAIRequest(`[{"role":"user","content":"Paris?"},
			{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{}"}},
				{"id":"call_2","type":"function","function":{"name":"weather","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"Sunny all day long in Paris, "},
				{"type":"text","text":"with a light breeze from the west."}]},
			{"role":"tool","tool_call_id":"call_2","content":"second"}]`, `"tools":`+openAITools),
			"Fine. (tool said: Sunny all day long in Paris, with a ligh)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := post(t, url+"/v1/chat/completions", tc.body)
			if got := answerText(t, "/v1/chat/completions", b); resp.StatusCode != http.StatusOK || got != tc.want {
				t.Fatalf("%s %s\nwant %q", resp.Status, b, tc.want)
			}
		})
	}
}

func TestMessagesWithToolsCallATool(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	body := anthropicRequest(weatherQuestion, `"tools":`+anthropicTools)
	resp, b := post(t, url+"/v1/messages", body)
	block := gjson.GetBytes(b, "content.0")
	if resp.StatusCode != http.StatusOK || gjson.GetBytes(b, "stop_reason").Str != "tool_use" ||
		len(gjson.GetBytes(b, "content").Array()) != 1 || block.Get("type").Str != "tool_use" ||
		!strings.HasPrefix(block.Get("id").Str, "toolu_") || block.Get("name").Str != "weather" ||
		block.Get("input").Raw != `{"city":"Weather in Paris?"}` {
		t.Fatalf("%s %s", resp.Status, b)
	}

	// Streamed: content_block_start of the tool_use, its input in input_json_delta pieces
	_, events, err := stream(t, url+"/v1/messages", withStream(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
		"content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if !slices.Equal(names(events), want) {
		t.Fatalf("events %v, want %v", names(events), want)
	}
	start := gjson.Get(events[1].Data, "content_block")
	if start.Get("type").Str != "tool_use" || start.Get("name").Str != "weather" || start.Get("input").Raw != "{}" ||
		!strings.HasPrefix(start.Get("id").Str, "toolu_") {
		t.Fatalf("%s", events[1].Data)
	}
	var input strings.Builder
	for _, e := range events[3:6] {
		if gjson.Get(e.Data, "delta.type").Str != "input_json_delta" {
			t.Fatalf("%s", e.Data)
		}
		input.WriteString(gjson.Get(e.Data, "delta.partial_json").Str)
	}
	if input.String() != `{"city":"Weather in Paris?"}` || gjson.Get(events[7].Data, "delta.stop_reason").Str != "tool_use" {
		t.Fatalf("input %q, %s", input.String(), events[7].Data)
	}

	// The tool_use answered goes back to the model as the API wants it
	next := anthropicRequest(`[{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":[`+block.Raw+`]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"`+block.Get("id").Str+`","content":"Sunny, 18C."}]}]`,
		`"tools":`+anthropicTools)
	resp, b = post(t, url+"/v1/messages", next)
	if text := answerText(t, "/v1/messages", b); resp.StatusCode != http.StatusOK ||
		text != fakellm.DefaultReply+" (tool said: Sunny, 18C.)" || gjson.GetBytes(b, "stop_reason").Str != "end_turn" {
		t.Fatalf("%s %s", resp.Status, b)
	}

	// tool_choice none, or a forced tool
	_, b = post(t, url+"/v1/messages", anthropicRequest(weatherQuestion, `"tools":`+anthropicTools+`,"tool_choice":{"type":"none"}`))
	if answerText(t, "/v1/messages", b) != fakellm.DefaultReply {
		t.Fatalf("tool_choice none: %s", b)
	}
	_, b = post(t, url+"/v1/messages", anthropicRequest(weatherQuestion, `"tools":[{"name":"now","input_schema":{"type":"object"}},
		{"name":"weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"tool","name":"weather"}`))
	if gjson.GetBytes(b, "content.0.name").Str != "weather" {
		t.Fatalf("forced tool: %s", b)
	}
	if st := s.Stats(); st.ToolCalls != 3 {
		t.Fatalf("%+v", st)
	}
}

func TestResponsesWithFunctionToolsCallOne(t *testing.T) {
	_, url := start(t, fakellm.Options{})
	tools := `"tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
	body := `{"model":"gpt-4.1","input":"Weather in Paris?",` + tools + `}`
	_, b := post(t, url+"/v1/responses", body)
	item := gjson.GetBytes(b, "output.0")
	if len(gjson.GetBytes(b, "output").Array()) != 1 || item.Get("type").Str != "function_call" ||
		!strings.HasPrefix(item.Get("call_id").Str, "call_") || item.Get("name").Str != "weather" ||
		item.Get("arguments").Str != `{"city":"Weather in Paris?"}` || item.Get("status").Str != "completed" ||
		gjson.GetBytes(b, "tools.0.name").Str != "weather" {
		t.Fatalf("%s", b)
	}

	_, events, err := stream(t, url+"/v1/responses", strings.Replace(body, `{`, `{"stream":true,`, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added",
		"response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.delta", "response.function_call_arguments.done",
		"response.output_item.done", "response.completed"}
	if !slices.Equal(names(events), want) {
		t.Fatalf("events %v, want %v", names(events), want)
	}
	var args strings.Builder
	for _, e := range events[3:6] {
		args.WriteString(gjson.Get(e.Data, "delta").Str)
	}
	if args.String() != `{"city":"Weather in Paris?"}` || gjson.Get(events[6].Data, "arguments").Str != args.String() ||
		gjson.Get(events[8].Data, "response.output.0.type").Str != "function_call" {
		t.Fatalf("%q %s", args.String(), events[8].Data)
	}

	// The function's output goes back in the next request
	next := `{"model":"gpt-4.1",` + tools + `,"input":[{"role":"user","content":"Weather in Paris?"},` + item.Raw +
		`,{"type":"function_call_output","call_id":"` + item.Get("call_id").Str + `","output":"Sunny, 18C."}]}`
	_, b = post(t, url+"/v1/responses", next)
	if text := answerText(t, "/v1/responses", b); text != fakellm.DefaultReply+" (tool said: Sunny, 18C.)" {
		t.Fatalf("%s", b)
	}
}

func TestEmptyWinsOverToolCalls(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{Empty: true}})
	_, b := post(t, url+"/v1/chat/completions", openAIRequest(weatherQuestion, `"tools":`+openAITools))
	if gjson.GetBytes(b, "choices.0.message.tool_calls").Exists() || answerText(t, "/v1/chat/completions", b) != "" {
		t.Fatalf("%s", b)
	}
	if st := s.Stats(); st.ToolCalls != 0 {
		t.Fatalf("%+v", st)
	}
}
