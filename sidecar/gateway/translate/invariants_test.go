package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// The properties every translation must have, whatever its input; the
// golden tests and the fuzz targets check them on each output.

// checkMessagesRequest checks a translated Anthropic request: max_tokens is
// set, turns alternate starting with the user, no text block is empty, a
// user turn's tool_result blocks come first, and every tool_use input is an
// object. With pairs, every tool_result answers a tool_use of the turn just
// before it.
func checkMessagesRequest(out []byte, pairs bool) error {
	if !gjson.ValidBytes(out) {
		return fmt.Errorf("not valid JSON: %s", out)
	}
	root := gjson.ParseBytes(out)
	if root.Get("max_tokens").Type != gjson.Number {
		return fmt.Errorf("no max_tokens: %s", out)
	}
	if err := checkTextBlocks(root.Get("system"), "system"); err != nil {
		return err
	}
	var prevUses map[string]bool
	for i, turn := range root.Get("messages").Array() {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if role := turn.Get("role").Str; role != want {
			return fmt.Errorf("messages[%d] has role %q, want %q (turns alternate starting with the user)", i, role, want)
		}
		content := turn.Get("content")
		if content.Type == gjson.String {
			if strings.TrimSpace(content.Str) == "" {
				return fmt.Errorf("messages[%d] has empty content", i)
			}
			prevUses = nil
			continue
		}
		blocks := content.Array()
		if len(blocks) == 0 {
			return fmt.Errorf("messages[%d] has no content blocks", i)
		}
		if err := checkTextBlocks(content, fmt.Sprintf("messages[%d].content", i)); err != nil {
			return err
		}
		uses := map[string]bool{}
		others := false
		for j, b := range blocks {
			switch b.Get("type").Str {
			case "tool_use":
				if !b.Get("input").IsObject() {
					return fmt.Errorf("messages[%d].content[%d]: tool_use input is not an object", i, j)
				}
				uses[b.Get("id").Str] = true
			case "tool_result":
				if others {
					return fmt.Errorf("messages[%d].content[%d]: tool_result after other content", i, j)
				}
				if pairs && !prevUses[b.Get("tool_use_id").Str] {
					return fmt.Errorf("messages[%d].content[%d]: tool_result for %q follows no tool_use with that id", i, j, b.Get("tool_use_id").Str)
				}
				if err := checkTextBlocks(b.Get("content"), "tool_result content"); err != nil {
					return err
				}
			default:
				others = true
			}
		}
		prevUses = uses
	}
	return nil
}

// checkTextBlocks checks that no text block of content is empty or (in a
// request) whitespace only.
func checkTextBlocks(content gjson.Result, where string) error {
	for j, b := range content.Array() {
		if b.Get("type").Str == "text" && strings.TrimSpace(b.Get("text").Str) == "" {
			return fmt.Errorf("%s[%d] is a text block of whitespace only", where, j)
		}
	}
	return nil
}

// checkChatRequest checks an OpenAI request: roles are known, an assistant
// message has content or tool calls, and a streamed one asks for usage.
// With pairs, every tool message follows (over other tool messages) the
// assistant message that made a call with its id, and a system message
// can only be the first.
func checkChatRequest(out []byte, pairs bool) error {
	if !gjson.ValidBytes(out) {
		return fmt.Errorf("not valid JSON: %s", out)
	}
	root := gjson.ParseBytes(out)
	if root.Get("stream").Bool() && !root.Get("stream_options.include_usage").Bool() {
		return fmt.Errorf("a streamed request without stream_options.include_usage")
	}
	if root.Get("parallel_tool_calls").Exists() && len(root.Get("tools").Array()) == 0 {
		return fmt.Errorf("parallel_tool_calls without tools")
	}
	var calls map[string]bool // of the last assistant message, while tool messages follow it
	for i, m := range root.Get("messages").Array() {
		switch role := m.Get("role").Str; role {
		case "system":
			if pairs && i > 0 {
				return fmt.Errorf("messages[%d]: a system message after the first", i)
			}
			calls = nil
		case "user":
			calls = nil
		case "assistant":
			if !present(m.Get("content")) && len(m.Get("tool_calls").Array()) == 0 {
				return fmt.Errorf("messages[%d]: an assistant message with neither content nor tool calls", i)
			}
			calls = map[string]bool{}
			for _, c := range m.Get("tool_calls").Array() {
				if !gjson.Valid(c.Get("function.arguments").Str) {
					return fmt.Errorf("messages[%d]: tool call arguments are not JSON", i)
				}
				calls[c.Get("id").Str] = true
			}
		case "tool":
			if pairs && !calls[m.Get("tool_call_id").Str] {
				return fmt.Errorf("messages[%d]: tool message for %q follows no assistant call with that id", i, m.Get("tool_call_id").Str)
			}
		default:
			return fmt.Errorf("messages[%d] has role %q", i, role)
		}
	}
	return nil
}

// wellPairedMessages reports whether an Anthropic request pairs every
// tool_result with a tool_use of the assistant turn just before it (a
// well-formed conversation does).
func wellPairedMessages(in []byte) bool {
	root := gjson.ParseBytes(in)
	var prev map[string]bool
	for _, turn := range root.Get("messages").Array() {
		uses := map[string]bool{}
		for _, b := range turn.Get("content").Array() {
			switch b.Get("type").Str {
			case "tool_use":
				uses[b.Get("id").Str] = true
			case "tool_result":
				if turn.Get("role").Str != "user" || !prev[b.Get("tool_use_id").Str] {
					return false
				}
			}
		}
		if turn.Get("role").Str == "assistant" {
			prev = uses
		} else {
			prev = nil
		}
	}
	return true
}

// checkChatAnswer checks a translated chat.completion.
func checkChatAnswer(out []byte) error {
	if !gjson.ValidBytes(out) {
		return fmt.Errorf("not valid JSON: %s", out)
	}
	root := gjson.ParseBytes(out)
	if root.Get("object").Str != "chat.completion" || len(root.Get("choices").Array()) != 1 {
		return fmt.Errorf("not a chat.completion with one choice: %s", out)
	}
	msg := root.Get("choices.0.message")
	if msg.Get("role").Str != "assistant" || (msg.Get("content").Type != gjson.String && msg.Get("content").Type != gjson.Null) {
		return fmt.Errorf("not an assistant message with string or null content: %s", out)
	}
	switch root.Get("choices.0.finish_reason").Str {
	case "stop", "length", "tool_calls", "content_filter":
	default:
		return fmt.Errorf("unknown finish_reason: %s", out)
	}
	u := root.Get("usage")
	if u.Get("total_tokens").Int() != u.Get("prompt_tokens").Int()+u.Get("completion_tokens").Int() {
		return fmt.Errorf("total_tokens is not the sum: %s", out)
	}
	for _, c := range msg.Get("tool_calls").Array() {
		if c.Get("type").Str != "function" || c.Get("function.arguments").Type != gjson.String {
			return fmt.Errorf("a tool call without string arguments: %s", out)
		}
	}
	return nil
}

// checkMessageAnswer checks a translated Anthropic message.
func checkMessageAnswer(out []byte) error {
	if !gjson.ValidBytes(out) {
		return fmt.Errorf("not valid JSON: %s", out)
	}
	root := gjson.ParseBytes(out)
	if root.Get("type").Str != "message" || root.Get("role").Str != "assistant" || !root.Get("content").IsArray() {
		return fmt.Errorf("not an assistant message with a content array: %s", out)
	}
	for _, b := range root.Get("content").Array() {
		if b.Get("type").Str == "text" && b.Get("text").Str == "" {
			return fmt.Errorf("an empty text block: %s", out)
		}
		if b.Get("type").Str == "tool_use" && !b.Get("input").IsObject() {
			return fmt.Errorf("a tool_use input that is not an object: %s", out)
		}
	}
	switch root.Get("stop_reason").Str {
	case "end_turn", "max_tokens", "tool_use", "refusal":
	default:
		return fmt.Errorf("unknown stop_reason: %s", out)
	}
	return nil
}

// compact is JSON without insignificant space, for comparing.
func compact(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return buf.String()
}
