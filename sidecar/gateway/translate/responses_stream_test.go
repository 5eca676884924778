package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

const (
	responsesStart      = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}`
	responsesTextStart  = `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	responsesToolStart  = `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}`
	responsesThinkStart = `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`
	responsesStop0      = `{"type":"content_block_stop","index":0}`
	responsesMsgStop    = `{"type":"message_stop"}`
)

// responsesTextDelta is a text_delta event for block 0.
func responsesTextDelta(text string) string {
	data, _ := responsesMarshal(map[string]any{"type": "content_block_delta", "index": 0,
		"delta": map[string]any{"type": "text_delta", "text": text}})
	return string(data)
}

func TestResponsesStreamContentAndDone(t *testing.T) {
	steps := []struct {
		data          string
		content, done bool
	}{
		{responsesStart, false, false},
		{`{"type":"ping"}`, false, false},
		{responsesThinkStart, false, false},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm."}}`, false, false},
		{responsesStop0, false, false},
		{strings.Replace(responsesTextStart, `"index":0`, `"index":1`, 1), false, false},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":""}}`, false, false},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}`, true, false},
		{`{"type":"content_block_stop","index":1}`, true, false},
		{`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}`, true, false},
		{responsesMsgStop, true, true},
	}
	s := newMessagesToResponsesStream(nil)
	var out []byte
	for i, step := range steps {
		var err error
		// the event name is left out: the converter reads the data's type
		if out, err = s.Event(out, "", []byte(step.data)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if s.Content() != step.content || s.Done() != step.done {
			t.Errorf("after %s: Content() = %v, Done() = %v; want %v, %v", step.data, s.Content(), s.Done(), step.content, step.done)
		}
	}
	var g responsesGrammar
	if err := g.feed(out); err != nil {
		t.Fatal(err)
	}
	if got := g.final.Get("output.#").Int(); got != 1 {
		t.Errorf("the response has %d output items, want 1 (thinking is not shown)", got)
	}
	after, err := s.Event(nil, "message_start", []byte(responsesStart))
	if err != nil || len(after) != 0 {
		t.Errorf("an event after the end gave %q, %v; want nothing", after, err)
	}
}

func TestResponsesStreamToolCallIsContent(t *testing.T) {
	s := newMessagesToResponsesStream(nil)
	out, _ := s.Event(nil, "message_start", []byte(responsesStart))
	out, err := s.Event(out, "content_block_start", []byte(responsesToolStart))
	if err != nil || !s.Content() {
		t.Fatalf("after a tool_use start: Content() = %v, err %v; want true", s.Content(), err)
	}
	out, _ = s.Event(out, "content_block_stop", []byte(responsesStop0))
	out, _ = s.Event(out, "message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"input_tokens":12,"output_tokens":5}}`))
	out, _ = s.Event(out, "message_stop", []byte(responsesMsgStop))
	var g responsesGrammar
	if err := g.feed(out); err != nil {
		t.Fatal(err)
	}
	if args := g.final.Get("output.0.arguments").Str; args != "{}" {
		t.Errorf("a call without input has arguments %q, want {}", args)
	}
	if u := g.final.Get("usage"); u.Get("input_tokens").Int() != 12 || u.Get("total_tokens").Int() != 17 {
		t.Errorf("usage = %s; want message_delta's input_tokens 12 and total 17", u.Raw)
	}
}

func TestResponsesStreamEndings(t *testing.T) {
	tests := []struct {
		stopReason, wantEvent, wantReason string
	}{
		{"end_turn", "response.completed", ""},
		{"stop_sequence", "response.completed", ""},
		{"tool_use", "response.completed", ""},
		{"max_tokens", "response.incomplete", "max_output_tokens"},
		{"refusal", "response.incomplete", "content_filter"},
	}
	for _, tt := range tests {
		t.Run(tt.stopReason, func(t *testing.T) {
			s := newMessagesToResponsesStream(nil)
			var out []byte
			for _, data := range []string{responsesStart, responsesTextStart, responsesTextDelta("Hi"),
				`{"type":"message_delta","delta":{"stop_reason":"` + tt.stopReason + `"}}`, responsesMsgStop} {
				out, _ = s.Event(out, "", []byte(data))
			}
			var g responsesGrammar
			if err := g.feed(out); err != nil {
				t.Fatalf("%v (message_stop closes a block left open)", err)
			}
			if !strings.Contains(string(out), "event: "+tt.wantEvent+"\n") {
				t.Errorf("no %s event in\n%s", tt.wantEvent, out)
			}
			if got := g.final.Get("incomplete_details.reason").Str; got != tt.wantReason {
				t.Errorf("incomplete_details.reason = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

func TestResponsesStreamErrorEvent(t *testing.T) {
	tests := []struct {
		errType, wantCode string
	}{
		{"overloaded_error", "server_error"},
		{"api_error", "server_error"},
		{"rate_limit_error", "rate_limit_exceeded"},
		{"invalid_request_error", "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.errType, func(t *testing.T) {
			// an error may come first, before message_start
			s := newMessagesToResponsesStream(nil)
			out, err := s.Event(nil, "error", []byte(`{"type":"error","error":{"type":"`+tt.errType+`","message":"Overloaded"}}`))
			if err != nil || !s.Done() {
				t.Fatalf("Event = %v, Done() = %v; want no error and done", err, s.Done())
			}
			want := `event: error` + "\n" + `data: {"type":"error","sequence_number":0,"code":"` + tt.wantCode + `","message":"Overloaded","param":null}` + "\n\n"
			if string(out) != want {
				t.Errorf("got %q, want %q", out, want)
			}
		})
	}
}

func TestResponsesStreamRefusesBrokenStreams(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		wantIn string
	}{
		{"content before message_start", []string{responsesTextStart}, "before message_start"},
		{"message_stop before message_start", []string{responsesMsgStop}, "before message_start"},
		{"second message_start", []string{responsesStart, responsesStart}, "second message_start"},
		{"delta of a block not open", []string{responsesStart, responsesTextDelta("x")}, "not open"},
		{"delta of another block", []string{responsesStart, responsesTextStart,
			`{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}`}, "not open"},
		{"stop of a block not open", []string{responsesStart, responsesStop0}, "not open"},
		{"block inside a block", []string{responsesStart, responsesTextStart, responsesToolStart}, "before the previous one stopped"},
		{"block without index", []string{responsesStart, `{"type":"content_block_start","content_block":{"type":"text","text":""}}`}, "without an index"},
		{"data not JSON", []string{responsesStart, `{"type":`}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMessagesToResponsesStream(nil)
			var err error
			for _, data := range tt.events {
				if _, err = s.Event(nil, "", []byte(data)); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("err = %v, want one saying %q", err, tt.wantIn)
			}
		})
	}
}

func TestResponsesStreamIgnoresUnknownEvents(t *testing.T) {
	s := newMessagesToResponsesStream(nil)
	for _, ev := range []struct{ name, data string }{
		{"ping", `{"type":"ping"}`},
		{"some_future_event", `{"type":"some_future_event","x":1}`},
	} {
		out, err := s.Event(nil, ev.name, []byte(ev.data))
		if err != nil || len(out) != 0 || s.Done() {
			t.Errorf("%s gave %q, %v, Done() = %v; want nothing", ev.name, out, err, s.Done())
		}
	}
}

// TestResponsesStreamBoundsOutput checks that a stream whose text passes
// the bound (64 MiB; 1 MiB here, to be quick) fails instead of holding
// ever more.
func TestResponsesStreamBoundsOutput(t *testing.T) {
	s := newMessagesToResponsesStream(nil).(*responsesStream)
	if s.limit != 64<<20 {
		t.Errorf("the bound is %d bytes, want 64 MiB", s.limit)
	}
	s.limit = 1 << 20
	if _, err := s.Event(nil, "", []byte(responsesStart)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Event(nil, "", []byte(responsesTextStart)); err != nil {
		t.Fatal(err)
	}
	delta := []byte(responsesTextDelta(strings.Repeat("a", 64<<10)))
	var err error
	for i := 0; i < 17 && err == nil; i++ {
		_, err = s.Event(nil, "content_block_delta", delta)
	}
	if err == nil || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("past the bound err = %v, want one about the 64 MiB bound", err)
	}
}

// TestResponsesStreamEchoesRequest checks the settings the response
// repeats from the agent's request.
func TestResponsesStreamEchoesRequest(t *testing.T) {
	request := responsesWith(`"instructions":"Be brief.","max_output_tokens":50,"temperature":1.5,"top_p":0.5,` +
		responsesWeatherTool + `,"tool_choice":"required","parallel_tool_calls":false,"user":"u1","metadata":{"k":"v"},` +
		`"text":{"format":{"type":"json_object"}}`)
	s := newMessagesToResponsesStream([]byte(request))
	out, err := s.Event(nil, "message_start", []byte(responsesStart))
	if err != nil {
		t.Fatal(err)
	}
	r := gjson.Get(string(responsesSplitSSE(out)[0].data), "response")
	for path, want := range map[string]string{
		"instructions": `"Be brief."`, "max_output_tokens": "50", "temperature": "1", "top_p": "0.5",
		"tools.0.name": `"get_weather"`, "tool_choice": `"required"`, "parallel_tool_calls": "false",
		"user": `"u1"`, "metadata": `{"k":"v"}`, "text.format.type": `"json_object"`, "usage": "null",
		"model": `"claude-x"`, "id": `"resp_1"`, "previous_response_id": "null",
	} {
		if got := r.Get(path).Raw; got != want {
			t.Errorf("response.%s = %s, want %s", path, got, want)
		}
	}
}
