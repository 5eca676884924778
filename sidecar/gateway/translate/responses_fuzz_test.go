package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// FuzzResponsesToMessages translates arbitrary request bodies (bounded in
// nesting, as the gateway bounds them): no panic, and whatever is
// translated is JSON within the nesting bound that Anthropic's rules for
// turns, content and tool calls accept.
func FuzzResponsesToMessages(f *testing.F) {
	for _, input := range responsesInputs(f, "requests", ".json") {
		body, err := os.ReadFile(input)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, body := range []string{
		responsesWith(`"input":[{"role":"user","content":"Hi"},{"type":"function_call","call_id":"c","name":"f","arguments":"{\"a\":[[[1]]]}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]}]`),
		responsesWith(`"input":[{"role":"assistant","content":"x"}]`),
		responsesWith(`"text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"}}}`),
		`{"input":"` + strings.Repeat(`\u00e9`, 10) + `","tools":[{"type":"function","name":"f"}],"tool_choice":"required"}`,
		`[]`, `"input"`, `{}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := jsonguard.Scan(body, jsonguard.MaxDepth); err != nil {
			return // the gateway refuses it before any translation
		}
		out, err := responsesToMessagesRequest(body, Options{})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if _, err := jsonguard.Scan(out, jsonguard.MaxDepth); err != nil {
			t.Fatalf("the translated request is not JSON within the nesting bound: %v\n%s", err, out)
		}
		if err := responsesCheckMessages(out); err != nil {
			t.Fatalf("Anthropic would refuse the translated request: %v\n%s\nfrom %s", err, out, body)
		}
	})
}

// FuzzMessagesToResponsesStream converts arbitrary event streams: no
// panic, and every event written is JSON in the grammar the OpenAI SDKs
// accumulate, ending with a terminal event exactly when Done says so.
func FuzzMessagesToResponsesStream(f *testing.F) {
	request, err := os.ReadFile(filepath.Join("testdata", "responses", "streams", "tool_use.request.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, input := range responsesInputs(f, "streams", ".sse") {
		stream, err := os.ReadFile(input)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(request, stream)
		f.Add([]byte(nil), stream)
	}
	for _, input := range responsesInputs(f, "answers", ".json") {
		answer, err := os.ReadFile(input)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(nil), responsesStreamOf(f, answer))
	}
	f.Fuzz(func(t *testing.T, request, stream []byte) {
		s := newMessagesToResponsesStream(request)
		var g responsesGrammar
		for _, ev := range responsesSplitSSE(stream) {
			out, err := s.Event(nil, ev.name, ev.data)
			if ferr := g.feed(out); ferr != nil {
				t.Fatalf("%v\nafter event %s %s", ferr, ev.name, ev.data)
			}
			if err != nil {
				if err.Error() == "" {
					t.Fatal("an error without a message")
				}
				return
			}
			if s.Done() != g.ended {
				t.Fatalf("Done() = %v but a terminal event written = %v, after %s %s", s.Done(), g.ended, ev.name, ev.data)
			}
			if s.Content() && len(g.items) == 0 {
				t.Fatalf("Content() is true with no output item written")
			}
		}
	})
}
