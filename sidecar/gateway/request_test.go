package gateway

import (
	"io"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/policies"
)

func TestRewriteChangesOnlyWhatItMust(t *testing.T) {
	// The agent's bytes, with unusual spacing, key order, unicode escapes
	// and numbers that a decode/encode round trip would change.
	body := `{ "model" :"gpt-4o",  "messages":[{"role":"user","content":"caf\u00e9 \"x\""}],` +
		`"temperature": 0.70, "seed": 12345678901234567890, "tools":[{"type":"function"}], "max_tokens": 4000 ,"n":1}`
	chat := endpoints["/v1/chat/completions"]
	cases := []struct {
		name  string
		model policies.Model
		want  string
	}{
		{"same name: untouched", policies.Model{Name: "gpt-4o"}, body},
		{"renamed", policies.Model{Name: "gpt-4o-2024-08-06"},
			strings.Replace(body, `"gpt-4o"`, `"gpt-4o-2024-08-06"`, 1)},
		{"capped and tools dropped", policies.Model{Name: "gpt-4o-mini", MaxTokens: 1024, DropFields: []string{"tools", "absent"}},
			`{ "model" :"gpt-4o-mini",  "messages":[{"role":"user","content":"caf\u00e9 \"x\""}],` +
				`"temperature": 0.70, "seed": 12345678901234567890, "max_tokens": 1024 ,"n":1}`},
		{"cap above the request: untouched", policies.Model{Name: "gpt-4o", MaxTokens: 8000}, body},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rewrite([]byte(body), &tc.model, chat, false)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("rewrite:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestRewriteSetsACapWhenTheRequestHasNone(t *testing.T) {
	m := &policies.Model{Name: "mini", MaxTokens: 256}
	for path, want := range map[string]string{
		"/v1/chat/completions": `"max_tokens":256`,
		"/v1/responses":        `"max_output_tokens":256`,
		"/v1/messages":         `"max_tokens":256`,
	} {
		got, err := rewrite([]byte(`{"model":"big","input":"hi"}`), m, endpoints[path], false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), want) || !strings.Contains(string(got), `"model":"mini"`) {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	got, _ := rewrite([]byte(`{"model":"big","input":"hi"}`), m, endpoints["/v1/embeddings"], false)
	if strings.Contains(string(got), "max_") {
		t.Errorf("embeddings got a token cap: %s", got)
	}
}

func TestRewriteDoesNotModifyTheOriginal(t *testing.T) {
	body := []byte(`{"model":"a","tools":[1],"max_tokens":9000}`)
	orig := string(body)
	if _, err := rewrite(body, &policies.Model{Name: "b", MaxTokens: 10, DropFields: []string{"tools"}}, endpoints["/v1/chat/completions"], false); err != nil {
		t.Fatal(err)
	}
	if string(body) != orig {
		t.Fatalf("the agent's body was modified: %s", body)
	}
}

func TestParseRequestRejectsBadBodies(t *testing.T) {
	chat := endpoints["/v1/chat/completions"]
	for body, want := range map[string]string{
		``:                      "empty",
		`{"model":"a",`:         "not valid JSON",
		`[1,2]`:                 "must be a JSON object",
		`{"messages":[]}`:       `no "model"`,
		`{"model":42}`:          `no "model"`,
		`{"model":""}`:          `no "model"`,
		`{"model":"a"} trail`:   "not valid JSON",
		"{\"model\":\"a\xff\"}": "not valid JSON",
	} {
		if _, msg := parseRequest([]byte(body), chat); !strings.Contains(msg, want) {
			t.Errorf("%q: message %q, want it to contain %q", body, msg, want)
		}
	}
	req, msg := parseRequest([]byte(`{"model":"a","stream":true,"response_format":{"type":"json_object"}}`), chat)
	if msg != "" || !req.stream || !req.wantsJSON || req.model != "a" {
		t.Fatalf("parsed %+v, %q", req, msg)
	}
}

func TestEventReaderSplitsEventsVerbatim(t *testing.T) {
	stream := "event: message_start\ndata: {\"type\":\"message_start\"}\n\n" +
		": keep-alive\n\n" +
		"data: {\"a\":1}\r\ndata: {\"b\":2}\r\n\r\n" +
		"data: [DONE]\n\n" +
		"data: partial"
	er := newEventReader(strings.NewReader(stream))
	var raws []string
	for {
		ev, err := er.next()
		if err != nil {
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("end of a stream cut inside an event: %v, want io.ErrUnexpectedEOF", err)
			}
			break
		}
		raws = append(raws, string(ev.raw))
		switch len(raws) {
		case 1:
			if ev.name != "message_start" || ev.terminal(kindMessage) {
				t.Fatalf("event 1: %+v", ev)
			}
		case 2:
			if !ev.empty {
				t.Fatalf("a comment-only event is not marked empty")
			}
		case 3:
			if string(ev.data) != "{\"a\":1}\n{\"b\":2}" {
				t.Fatalf("multi-line data %q", ev.data)
			}
		case 4:
			if !ev.terminal(kindChat) {
				t.Fatalf("[DONE] is not terminal")
			}
		}
	}
	if strings.Join(raws, "") != stream[:strings.LastIndex(stream, "data: partial")] {
		t.Fatalf("events are not verbatim: %q", raws)
	}
}

func TestErrorEventsAreRecognised(t *testing.T) {
	for _, tc := range []struct {
		ev   event
		want bool
	}{
		{event{name: "error", data: []byte(`{"type":"error","error":{"type":"overloaded_error"}}`)}, true},
		{event{data: []byte(`{"error":{"message":"boom"}}`)}, true},
		{event{data: []byte(`{"error":null,"choices":[]}`)}, false},
		{event{data: []byte(`{"choices":[{"delta":{"content":"error"}}]}`)}, false},
		{event{name: "response.failed", data: []byte(`{"type":"response.failed","response":{"error":{}}}`)}, false},
	} {
		if got := tc.ev.isError(); got != tc.want {
			t.Errorf("%s %s: isError %v, want %v", tc.ev.name, tc.ev.data, got, tc.want)
		}
	}
}

func TestRewriteDropsFieldsWhoseNamesLookLikePaths(t *testing.T) {
	// Given field names that gjson and sjson would otherwise read as a
	// multipath, a query or a list
	body := `{"model":"big","[0":1,"{a,b}":2,"x,y":3,"keep":4}`
	m := &policies.Model{Name: "lite", DropFields: []string{"[0", "{a,b}", "x,y"}}

	// When the request is rewritten for the lighter model
	got, err := rewrite([]byte(body), m, endpoints["/v1/chat/completions"], false)
	if err != nil {
		t.Fatal(err)
	}

	// Then exactly those fields are gone
	if want := `{"model":"lite","keep":4}`; string(got) != want {
		t.Fatalf("rewrite:\n got %s\nwant %s", got, want)
	}
}

func TestRewriteForAReasoningModel(t *testing.T) {
	// A reasoning model takes its cap in max_completion_tokens and refuses
	// max_tokens: the agent's cap is moved, whatever field it came in.
	chat := endpoints["/v1/chat/completions"]
	o3 := policies.Model{Name: "o3-mini", MaxTokensField: "max_completion_tokens"}
	capped := o3
	capped.MaxTokens = 1024
	dropped := policies.Model{Name: "o3-mini", MaxTokens: 1024, DropFields: []string{"max_tokens", "temperature"}}
	cases := []struct {
		name  string
		model policies.Model
		body  string
		want  string
	}{
		{"max_tokens moved", o3,
			`{"model":"gpt-4o","max_tokens":4000,"n":1}`,
			`{"model":"o3-mini","n":1,"max_completion_tokens":4000}`},
		{"moved and capped", capped,
			`{"model":"gpt-4o","max_tokens":4000,"n":1}`,
			`{"model":"o3-mini","n":1,"max_completion_tokens":1024}`},
		{"no cap in the request: the model's", capped,
			`{"model":"gpt-4o","n":1}`,
			`{"model":"o3-mini","n":1,"max_completion_tokens":1024}`},
		{"both sent: max_tokens removed", capped,
			`{"model":"gpt-4o","max_tokens":4000,"max_completion_tokens":500}`,
			`{"model":"o3-mini","max_completion_tokens":500}`},
		{"already in its field: untouched", o3,
			`{"model":"o3-mini", "max_completion_tokens": 4000}`,
			`{"model":"o3-mini", "max_completion_tokens": 4000}`},
		// drop_fields come last: a cap field they name is never sent,
		// not even the model's own cap.
		{"dropped cap field stays dropped", dropped,
			`{"model":"gpt-4o","max_tokens":4000,"temperature":0.2,"n":1}`,
			`{"model":"o3-mini","n":1}`},
		{"dropped cap field is not added", dropped,
			`{"model":"gpt-4o","n":1}`,
			`{"model":"o3-mini","n":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rewrite([]byte(tc.body), &tc.model, chat, false)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("rewrite:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	// On an endpoint without that field the setting changes nothing.
	got, err := rewrite([]byte(`{"model":"o3-mini","max_output_tokens":10}`), &capped, endpoints["/v1/responses"], false)
	if err != nil || string(got) != `{"model":"o3-mini","max_output_tokens":10}` {
		t.Errorf("responses: %s %v", got, err)
	}
}
