package translate

// Golden tests of the Responses translation: OpenAI's documented request
// examples, Anthropic's documented answers and streams, under
// testdata/responses. go test -update rewrites the golden files.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestResponsesRequestGolden(t *testing.T) {
	for _, input := range responsesInputs(t, "requests", ".json") {
		t.Run(filepath.Base(input), func(t *testing.T) {
			body, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ResponsesToAnthropic.Request(body, Options{})
			if err != nil {
				t.Fatalf("Request: %v", err)
			}
			if err := responsesCheckMessages(got); err != nil {
				t.Errorf("Anthropic would refuse the request: %v\n%s", err, got)
			}
			responsesGolden(t, responsesGoldenName(input), got)
		})
	}
}

func TestResponsesAnswerGolden(t *testing.T) {
	responsesFixedClock(t)
	for _, input := range responsesInputs(t, "answers", ".json") {
		t.Run(filepath.Base(input), func(t *testing.T) {
			body, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ResponsesToAnthropic.Answer(body, nil)
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			responsesGolden(t, responsesGoldenName(input), got)
		})
	}
}

func TestResponsesStreamGolden(t *testing.T) {
	responsesFixedClock(t)
	for _, input := range responsesInputs(t, "streams", ".sse") {
		t.Run(filepath.Base(input), func(t *testing.T) {
			stream, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			request, _ := os.ReadFile(strings.TrimSuffix(input, ".sse") + ".request.json")
			got, s := responsesRun(t, request, stream)
			var g responsesGrammar
			if err := g.feed(got); err != nil {
				t.Errorf("the events break the Responses stream grammar: %v", err)
			}
			if !s.Done() || !g.ended {
				t.Errorf("Done() = %v, ended with a terminal event = %v; want both true", s.Done(), g.ended)
			}
			responsesGolden(t, responsesGoldenName(input), got)
		})
	}
}

// TestResponsesStreamEqualsAnswer streams each documented answer (split
// into Anthropic events as the API streams it) and checks that the
// response.completed event holds exactly the non-streamed translation.
func TestResponsesStreamEqualsAnswer(t *testing.T) {
	responsesFixedClock(t)
	request, err := os.ReadFile(filepath.Join("testdata", "responses", "streams", "tool_use.request.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, input := range responsesInputs(t, "answers", ".json") {
		for _, req := range [][]byte{nil, request} {
			t.Run(filepath.Base(input), func(t *testing.T) {
				body, err := os.ReadFile(input)
				if err != nil {
					t.Fatal(err)
				}
				want, err := responsesAnswer(body, req)
				if err != nil {
					t.Fatal(err)
				}
				out, s := responsesRun(t, req, responsesStreamOf(t, body))
				var g responsesGrammar
				if err := g.feed(out); err != nil {
					t.Fatalf("the events break the Responses stream grammar: %v\n%s", err, out)
				}
				if !s.Done() || !g.ended {
					t.Fatalf("the stream did not end with response.completed or response.incomplete:\n%s", out)
				}
				if g.final.Raw != string(want) {
					t.Errorf("streamed response:\n%s\nwant the answer's:\n%s", g.final.Raw, want)
				}
			})
		}
	}
}

// responsesStreamOf is the Anthropic stream of a whole answer: its
// blocks' text and input in small pieces (split between characters).
func responsesStreamOf(t testing.TB, answer []byte) []byte {
	t.Helper()
	msg := gjson.ParseBytes(answer)
	var b strings.Builder
	event := func(name, data string) { b.WriteString("event: " + name + "\ndata: " + data + "\n\n") }
	start, _ := responsesMarshal(map[string]any{"type": "message_start", "message": map[string]any{
		"id": msg.Get("id").Str, "type": "message", "role": "assistant", "content": []any{}, "model": msg.Get("model").Str,
		"stop_reason": nil, "stop_sequence": nil, "usage": gjsonValue(msg.Get("usage"))}})
	event("message_start", string(start))
	event("ping", `{"type": "ping"}`)
	for i, block := range msg.Get("content").Array() {
		typ := block.Get("type").Str
		var first map[string]any
		var deltaType, field, text string
		switch typ {
		case "text":
			first, deltaType, field, text = map[string]any{"type": "text", "text": ""}, "text_delta", "text", block.Get("text").Str
		case "tool_use":
			first = map[string]any{"type": "tool_use", "id": block.Get("id").Str, "name": block.Get("name").Str, "input": map[string]any{}}
			deltaType, field = "input_json_delta", "partial_json"
			compact, _ := responsesMarshal(gjsonValue(block.Get("input")))
			text = string(compact)
		case "thinking":
			first, deltaType, field, text = map[string]any{"type": "thinking", "thinking": ""}, "thinking_delta", "thinking", block.Get("thinking").Str
		default:
			first = gjsonValue(block).(map[string]any)
		}
		data, _ := responsesMarshal(map[string]any{"type": "content_block_start", "index": i, "content_block": first})
		event("content_block_start", string(data))
		for _, piece := range responsesPieces(text, 7) {
			data, _ := responsesMarshal(map[string]any{"type": "content_block_delta", "index": i,
				"delta": map[string]any{"type": deltaType, field: piece}})
			event("content_block_delta", string(data))
		}
		data, _ = responsesMarshal(map[string]any{"type": "content_block_stop", "index": i})
		event("content_block_stop", string(data))
	}
	delta, _ := responsesMarshal(map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": msg.Get("stop_reason").Str, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": msg.Get("usage.output_tokens").Int()}})
	event("message_delta", string(delta))
	event("message_stop", `{"type": "message_stop"}`)
	return []byte(b.String())
}

// responsesPieces cuts s into pieces of about n bytes, between characters.
func responsesPieces(s string, n int) []string {
	var pieces []string
	for len(s) > 0 {
		cut := min(n, len(s))
		for cut < len(s) && !isRuneStart(s[cut]) {
			cut++
		}
		pieces = append(pieces, s[:cut])
		s = s[cut:]
	}
	return pieces
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// gjsonValue is a JSON value as Go values.
func gjsonValue(r gjson.Result) any {
	if !r.Exists() {
		return map[string]any{}
	}
	return r.Value()
}
