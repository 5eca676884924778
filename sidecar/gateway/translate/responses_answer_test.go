package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestResponsesAnswerRefusesNonMessages(t *testing.T) {
	tests := []struct {
		name, body, wantIn string
	}{
		{"not JSON", `{"id":`, "not valid JSON"},
		{"an array", `[{"type":"text","text":"Hi"}]`, "not a message"},
		{"no content", `{"id":"msg_1","type":"message"}`, "not a message"},
		{"an error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "not a message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResponsesToAnthropic.Answer([]byte(tt.body), nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Answer = %s, %v; want an error saying %q", got, err, tt.wantIn)
			}
		})
	}
}

func TestResponsesAnswerContent(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string // type:text-or-arguments of each output item
	}{
		{"empty text left out", `[{"type":"text","text":""},{"type":"text","text":"Hi"}]`, []string{"message:Hi"}},
		{"text blocks kept apart", `[{"type":"text","text":"A"},{"type":"text","text":"B"}]`, []string{"message:A", "message:B"}},
		{"thinking left out", `[{"type":"thinking","thinking":"…","signature":"s"},{"type":"redacted_thinking","data":"d"},{"type":"text","text":"Hi"}]`, []string{"message:Hi"}},
		{"tool input compacted", `[{"type":"tool_use","id":"t1","name":"f","input":{ "a" : [1, 2] }}]`, []string{`function_call:{"a":[1,2]}`}},
		{"tool without input", `[{"type":"tool_use","id":"t1","name":"f"}]`, []string{"function_call:{}"}},
		{"unknown blocks left out", `[{"type":"server_tool_use","id":"s","name":"web_search","input":{}},{"type":"text","text":"Hi"}]`, []string{"message:Hi"}},
		{"nothing", `[]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResponsesToAnthropic.Answer([]byte(`{"id":"msg_9","type":"message","role":"assistant","model":"m","content":`+tt.content+`,"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`), nil)
			if err != nil {
				t.Fatal(err)
			}
			var items []string
			for i, it := range gjson.GetBytes(got, "output").Array() {
				v := it.Get("content.0.text").Str
				if it.Get("type").Str == "function_call" {
					v = it.Get("arguments").Str
				}
				items = append(items, it.Get("type").Str+":"+v)
				if prefix := map[string]string{"message": "msg_9_", "function_call": "fc_9_"}[it.Get("type").Str]; it.Get("id").Str != prefix+string(rune('0'+i)) {
					t.Errorf("output[%d].id = %s, want %s%d", i, it.Get("id").Str, prefix, i)
				}
			}
			if strings.Join(items, "|") != strings.Join(tt.want, "|") {
				t.Errorf("output = %q, want %q", items, tt.want)
			}
			if raw := gjson.GetBytes(got, "output").Raw; raw == "null" {
				t.Error("output is null, want a list")
			}
		})
	}
}

func TestResponsesAnswerUsage(t *testing.T) {
	got, err := ResponsesToAnthropic.Answer([]byte(`{"id":"msg_1","type":"message","content":[],"usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":300,"output_tokens":50}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"input_tokens":420,"input_tokens_details":{"cached_tokens":300},"output_tokens":50,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":470}`
	if u := gjson.GetBytes(got, "usage").Raw; u != want {
		t.Errorf("usage = %s, want %s (input counts cache reads and writes)", u, want)
	}
}

func TestResponsesAnswerIDs(t *testing.T) {
	for _, upstream := range []string{"", "msg with spaces", strings.Repeat("x", 200)} {
		t.Run(upstream, func(t *testing.T) {
			body := `{"id":"` + upstream + `","type":"message","content":[{"type":"text","text":"Hi"}]}`
			got, err := ResponsesToAnthropic.Answer([]byte(body), nil)
			if err != nil {
				t.Fatal(err)
			}
			id, item := gjson.GetBytes(got, "id").Str, gjson.GetBytes(got, "output.0.id").Str
			base := strings.TrimPrefix(id, "resp_")
			if len(base) != 24 || item != "msg_"+base+"_0" {
				t.Errorf("id %q and item id %q; want resp_<24 hex> and msg_<same>_0", id, item)
			}
		})
	}
}

func TestResponsesAnswerEchoesRequest(t *testing.T) {
	answer := []byte(`{"id":"msg_1","type":"message","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn"}`)
	tests := []struct {
		name, request, path, want string
	}{
		{"no request: defaults", "", "tool_choice", `"auto"`},
		{"no request: parallel calls", "", "parallel_tool_calls", "true"},
		{"no request: tools", "", "tools", "[]"},
		{"no request: temperature", "", "temperature", "null"},
		{"instructions", responsesWith(`"instructions":"Be brief."`), "instructions", `"Be brief."`},
		{"max_output_tokens", responsesWith(`"max_output_tokens":64`), "max_output_tokens", "64"},
		{"temperature as sent upstream", responsesWith(`"temperature":2`), "temperature", "1"},
		{"parallel_tool_calls", responsesWith(`"parallel_tool_calls":false`), "parallel_tool_calls", "false"},
		{"tools", responsesWith(responsesWeatherTool), "tools.#", "1"},
		{"metadata", responsesWith(`"metadata":{"a":"b"}`), "metadata", `{"a":"b"}`},
		{"store is false", responsesWith(`"store":true`), "store", "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := responsesAnswer(answer, []byte(tt.request))
			if err != nil {
				t.Fatal(err)
			}
			if v := gjson.GetBytes(got, tt.path).Raw; v != tt.want {
				t.Errorf("%s = %s, want %s", tt.path, v, tt.want)
			}
		})
	}
}
