package translate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestChatRoundTrip translates OpenAI requests to Anthropic and back: the
// conversation (system text, who said what, images, tool calls and their
// results) and the tools must come back equivalent, with the documented
// changes only (temperature at most 1, JSON mode as a system instruction,
// a user turn before a conversation the assistant opens).
func TestChatRoundTrip(t *testing.T) {
	bodies := map[string]string{
		"merged turns and parts": `{"model":"m","max_tokens":5,"stop":"x","temperature":0.5,"top_p":0.5,"user":"u","stream":true,
			"messages":[{"role":"system","content":"s"},{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"},{"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lG"}}]},
			{"role":"assistant","content":[{"type":"text","text":"c"},{"type":"refusal","refusal":"d"}],"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"k\": [1, {\"z\": null}]}"}}]},
			{"role":"tool","tool_call_id":"1","content":[{"type":"text","text":"r1"},{"type":"text","text":"r2"}]},{"role":"developer","content":"late"},{"role":"user","content":"e"}],
			"tools":[{"type":"function","function":{"name":"f","description":"does f","parameters":{"type":"object","properties":{"k":{"type":"array"}}},"strict":false}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
	}
	for _, in := range goldenInputs(t, "chat_to_messages") {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		bodies[strings.TrimSuffix(filepath.Base(in), ".json")] = string(b)
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			there, err := ChatToAnthropic.Request([]byte(body), Options{})
			if err != nil {
				t.Fatalf("to Anthropic: %v", err)
			}
			back, err := MessagesToOpenAI.Request(there, Options{})
			if err != nil {
				t.Fatalf("back to OpenAI: %v\n%s", err, there)
			}
			want, got := chatGist(t, []byte(body), true), chatGist(t, back, false)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the request\ngot:  %#v\nwant: %#v\nvia %s", got, want, there)
			}
		})
	}
}

// gist is what an OpenAI request means, as a comparable value.
type gist struct {
	System     []string
	Events     []string // who said what, in order
	Tools      []string
	ToolChoice string
	Params     map[string]string
}

// chatGist reads the gist of an OpenAI request. With original, it also
// applies the documented changes a round trip makes.
func chatGist(t *testing.T, body []byte, original bool) gist {
	root := gjson.ParseBytes(body)
	g := gist{Params: map[string]string{}}
	texts := func(content gjson.Result) []string {
		if content.Type == gjson.String {
			return nonBlank(nil, content.Str)
		}
		var out []string
		for _, p := range content.Array() {
			out = nonBlank(out, p.Get("text").Str)
			out = nonBlank(out, p.Get("refusal").Str)
		}
		return out
	}
	for _, m := range root.Get("messages").Array() {
		role := m.Get("role").Str
		switch role {
		case "system", "developer":
			g.System = append(g.System, texts(m.Get("content"))...)
		case "tool":
			g.Events = append(g.Events, "tool "+m.Get("tool_call_id").Str+": "+strings.Join(texts(m.Get("content")), "|"))
		default:
			for _, s := range texts(m.Get("content")) {
				g.Events = append(g.Events, role+" text: "+s)
			}
			for _, p := range m.Get("content").Array() {
				if p.Get("type").Str == "image_url" {
					g.Events = append(g.Events, role+" image: "+chatImageURL(p))
				}
			}
			for _, s := range nonBlank(nil, m.Get("refusal").Str) {
				g.Events = append(g.Events, role+" text: "+s)
			}
			for _, c := range m.Get("tool_calls").Array() {
				g.Events = append(g.Events, role+" call "+c.Get("id").Str+" "+c.Get("function.name").Str+" "+compact(t, c.Get("function.arguments").Str))
			}
		}
	}
	for _, tool := range root.Get("tools").Array() {
		params := tool.Get("function.parameters")
		schema := `{"type":"object","properties":{}}`
		if params.Exists() && hasKeys(params) {
			schema = compact(t, params.Raw)
		}
		g.Tools = append(g.Tools, tool.Get("function.name").Str+" "+tool.Get("function.description").Str+" "+schema)
	}
	if c := root.Get("tool_choice"); c.Exists() {
		g.ToolChoice = compact(t, c.Raw)
	}
	for _, p := range []string{"max_tokens", "max_completion_tokens", "temperature", "top_p", "stream", "user", "parallel_tool_calls"} {
		if v := root.Get(p); v.Exists() {
			g.Params[strings.Replace(p, "max_completion_tokens", "max_tokens", 1)] = v.Raw
		}
	}
	if stop := root.Get("stop"); stop.Exists() {
		var stops []string
		for _, s := range stop.Array() { // a string is an array of one
			stops = nonBlank(stops, s.Str)
		}
		g.Params["stop"] = strings.Join(stops, "|")
	}
	if original {
		if v := root.Get("temperature"); v.Exists() && v.Num > 1 {
			g.Params["temperature"] = "1"
		}
		if _, ok := g.Params["temperature"]; ok {
			delete(g.Params, "top_p")
		}
		if len(g.Tools) == 0 {
			delete(g.Params, "parallel_tool_calls")
		}
		if instruction, _ := jsonInstruction(root.Get("response_format")); instruction != "" {
			g.System = append(g.System, instruction)
		}
		if len(g.Events) > 0 && strings.HasPrefix(g.Events[0], "assistant ") {
			g.Events = append([]string{"user text: " + conversationStart}, g.Events...)
		}
	}
	if g.Params["max_tokens"] == "" {
		g.Params["max_tokens"] = "4096"
	}
	return g
}

// nonBlank appends s unless it is whitespace only.
func nonBlank(list []string, s string) []string {
	if strings.TrimSpace(s) == "" {
		return list
	}
	return append(list, s)
}
