package translate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tidwall/gjson"
)

// The grammar each agent's SDK expects of a stream, checked on converted
// output by the golden tests and the fuzz targets.

// streamIncludeUsage reports whether an OpenAI request asked for the usage chunk.
func streamIncludeUsage(request []byte) bool {
	return gjson.GetBytes(request, "stream_options.include_usage").Type == gjson.True
}

// checkStreamEventData checks what every converted event must be: one line of
// valid JSON (or OpenAI's [DONE]).
func checkStreamEventData(i int, ev streamTestEvent) error {
	if bytes.ContainsAny(ev.data, "\r\n") {
		return fmt.Errorf("event %d: data spans lines: %q", i, ev.data)
	}
	if string(ev.data) != "[DONE]" && !json.Valid(ev.data) {
		return fmt.Errorf("event %d: data is not valid JSON: %q", i, ev.data)
	}
	return nil
}

// checkChatStreamGrammar checks an OpenAI Chat Completions stream: chunks of one
// id, model and created time; the role first; tool calls numbered from 0
// in order; one finish_reason chunk with an empty delta; with include_usage
// "usage": null on every chunk and a usage chunk (choices []) last; then
// [DONE] once, or an error event. done is the converter's Done().
func checkChatStreamGrammar(events []streamTestEvent, done, withUsage bool) error {
	var (
		head            [3]string // id, model, created of the first chunk
		chunks, tools   int
		finished, usage bool
		ended, sawDone  bool
		errorEvent      bool
	)
	for i, ev := range events {
		if ended {
			return fmt.Errorf("event %d comes after the end of the stream", i)
		}
		if err := checkStreamEventData(i, ev); err != nil {
			return err
		}
		if string(ev.data) == "[DONE]" {
			if ev.name != "" {
				return fmt.Errorf("event %d: [DONE] has the name %q", i, ev.name)
			}
			ended, sawDone = true, true
			continue
		}
		doc := gjson.ParseBytes(ev.data)
		if ev.name == "error" {
			if doc.Get("error.message").Type != gjson.String || doc.Get("error.type").Type != gjson.String {
				return fmt.Errorf("event %d: an error event without error.message and error.type: %s", i, ev.data)
			}
			ended, errorEvent = true, true
			continue
		}
		if ev.name != "" {
			return fmt.Errorf("event %d: a chunk has the event name %q", i, ev.name)
		}
		if doc.Get("object").Str != "chat.completion.chunk" {
			return fmt.Errorf("event %d: object is not chat.completion.chunk: %s", i, ev.data)
		}
		h := [3]string{doc.Get("id").Raw, doc.Get("model").Raw, doc.Get("created").Raw}
		if chunks == 0 {
			head = h
		} else if h != head {
			return fmt.Errorf("event %d: id, model or created changed: %v, first %v", i, h, head)
		}
		chunks++
		u := doc.Get("usage")
		if withUsage != u.Exists() {
			return fmt.Errorf("event %d: usage present is %v, include_usage %v", i, u.Exists(), withUsage)
		}
		choices := doc.Get("choices")
		if !choices.IsArray() {
			return fmt.Errorf("event %d: choices is not an array", i)
		}
		if len(choices.Array()) == 0 {
			if !withUsage || !u.IsObject() || !finished || usage {
				return fmt.Errorf("event %d: a chunk without choices that is not the one usage chunk after finish_reason", i)
			}
			usage = true
			continue
		}
		if usage || finished {
			return fmt.Errorf("event %d: a chunk with choices after the finish_reason or usage chunk", i)
		}
		if withUsage && u.Type != gjson.Null {
			return fmt.Errorf("event %d: usage is not null before the usage chunk", i)
		}
		if len(choices.Array()) != 1 || choices.Get("0.index").Raw != "0" {
			return fmt.Errorf("event %d: not exactly one choice of index 0", i)
		}
		c := choices.Get("0")
		delta := c.Get("delta")
		if (chunks == 1) != (delta.Get("role").Str == "assistant") {
			return fmt.Errorf("event %d: the role must come in the first chunk, and only there", i)
		}
		if fr := c.Get("finish_reason"); fr.Type != gjson.Null {
			if fr.Type != gjson.String || delta.Raw != "{}" {
				return fmt.Errorf("event %d: finish_reason %s with delta %s", i, fr.Raw, delta.Raw)
			}
			finished = true
		}
		for _, tc := range delta.Get("tool_calls").Array() {
			index := int(tc.Get("index").Int())
			if tc.Get("id").Exists() {
				if index != tools || tc.Get("type").Str != "function" || tc.Get("function.name").Type != gjson.String {
					return fmt.Errorf("event %d: tool call %d starts out of order or without type and name: %s", i, index, tc.Raw)
				}
				tools++
			} else if index >= tools || tc.Get("function.arguments").Type != gjson.String {
				return fmt.Errorf("event %d: arguments for tool call %d, which has not started: %s", i, index, tc.Raw)
			}
		}
	}
	switch {
	case done != ended:
		return fmt.Errorf("Done() is %v but the stream's end was seen: %v", done, ended)
	case sawDone && !finished:
		return fmt.Errorf("[DONE] without a finish_reason chunk")
	case sawDone && withUsage && !usage:
		return fmt.Errorf("[DONE] without the usage chunk include_usage asks for")
	case errorEvent && sawDone:
		return fmt.Errorf("both an error event and [DONE]")
	}
	return nil
}

// checkMessagesStreamGrammar checks an Anthropic Messages stream: message_start
// first, then blocks numbered from 0, each started, given deltas of its
// kind and stopped before the next starts, then one message_delta and
// message_stop last; or an error event last. done is the converter's
// Done().
func checkMessagesStreamGrammar(events []streamTestEvent, done bool) error {
	var (
		started, delta, ended bool
		open                  = int64(-1)
		openKind              string
		next                  int64
	)
	for i, ev := range events {
		if ended {
			return fmt.Errorf("event %d comes after the end of the stream", i)
		}
		if err := checkStreamEventData(i, ev); err != nil {
			return err
		}
		doc := gjson.ParseBytes(ev.data)
		typ := doc.Get("type").Str
		if ev.name != typ {
			return fmt.Errorf("event %d: named %q with data of type %q", i, ev.name, typ)
		}
		if typ != "error" && typ != "message_start" && !started {
			return fmt.Errorf("event %d: %s before message_start", i, typ)
		}
		index := doc.Get("index").Int()
		switch typ {
		case "error":
			if doc.Get("error.type").Type != gjson.String || doc.Get("error.message").Type != gjson.String {
				return fmt.Errorf("event %d: an error without error.type and error.message: %s", i, ev.data)
			}
			ended = true
		case "message_start":
			m := doc.Get("message")
			if started || m.Get("type").Str != "message" || m.Get("role").Str != "assistant" || m.Get("content").Raw != "[]" ||
				m.Get("id").Type != gjson.String || m.Get("model").Type != gjson.String {
				return fmt.Errorf("event %d: a second or malformed message_start: %s", i, ev.data)
			}
			started = true
		case "content_block_start":
			kind := doc.Get("content_block.type").Str
			if delta || open >= 0 || index != next || (kind != "text" && kind != "tool_use") {
				return fmt.Errorf("event %d: block %d (%s) starts while %d is open or %d is next", i, index, kind, open, next)
			}
			if kind == "tool_use" && (doc.Get("content_block.id").Str == "" || doc.Get("content_block.input").Raw != "{}") {
				return fmt.Errorf("event %d: a tool_use block without id or with input: %s", i, ev.data)
			}
			open, openKind = index, kind
		case "content_block_delta":
			want := map[string]string{"text": "text_delta", "tool_use": "input_json_delta"}[openKind]
			if index != open || doc.Get("delta.type").Str != want {
				return fmt.Errorf("event %d: a delta for block %d (%s) while %d (%s) is open", i, index, doc.Get("delta.type").Str, open, openKind)
			}
		case "content_block_stop":
			if index != open {
				return fmt.Errorf("event %d: block %d stops while %d is open", i, index, open)
			}
			open, next = -1, next+1
		case "message_delta":
			if open >= 0 || delta || doc.Get("delta.stop_reason").Type != gjson.String || doc.Get("usage.output_tokens").Type != gjson.Number {
				return fmt.Errorf("event %d: message_delta with a block open, twice, or without stop_reason and usage: %s", i, ev.data)
			}
			delta = true
		case "message_stop":
			if !delta {
				return fmt.Errorf("event %d: message_stop without message_delta", i)
			}
			ended = true
		default:
			return fmt.Errorf("event %d: unknown event type %q", i, typ)
		}
	}
	if done != ended {
		return fmt.Errorf("Done() is %v but the stream's end was seen: %v", done, ended)
	}
	return nil
}
