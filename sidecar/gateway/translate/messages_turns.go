package translate

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// An Anthropic conversation becomes an OpenAI one: the system prompt is one
// leading system message; a user turn's tool_result blocks become tool
// messages placed before the rest of the turn (OpenAI wants them right
// after the assistant message that made the calls); an assistant turn's
// tool_use blocks become its tool_calls. Thinking blocks are dropped: an
// OpenAI model cannot read them, and Anthropic ignores them in turns
// before the last.

// A tool message whose tool_result had is_error set starts with "Error: "
// (or is "Error" when it has no text): OpenAI tool messages have no such
// flag.
const (
	toolError       = "Error"
	toolErrorPrefix = toolError + ": "
)

// messagesSystem is the leading system message of an Anthropic system
// prompt, a string or text blocks; none if it is absent or empty.
func messagesSystem(system gjson.Result) ([]ccMessage, error) {
	texts, err := messagesTexts(system, "system")
	if err != nil || len(texts) == 0 {
		return nil, err
	}
	return []ccMessage{{Role: "system", Content: textOrParts(texts)}}, nil
}

// messagesTexts reads content that may only hold text: a string or text
// blocks. Empty text is left out.
func messagesTexts(content gjson.Result, where string) ([]string, error) {
	switch {
	case !present(content):
		return nil, nil
	case content.Type == gjson.String:
		if content.Str == "" {
			return nil, nil
		}
		return []string{content.Str}, nil
	case !content.IsArray():
		return nil, fmt.Errorf("%s must be a string or an array of text blocks", where)
	}
	var texts []string
	var err error
	j := -1
	content.ForEach(func(_, b gjson.Result) bool {
		j++
		if t := b.Get("type").Str; t != "text" {
			err = untranslatable("%s[%d] is a block of type %q; OpenAI takes only text there", where, j, t)
			return false
		}
		if s := b.Get("text").Str; s != "" {
			texts = append(texts, s)
		}
		return true
	})
	return texts, err
}

// messagesConversation appends the OpenAI messages of Anthropic turns to
// out. A conversation that ends with an assistant turn asks Anthropic to
// continue that turn (a prefill); an OpenAI model would answer anew, so
// it is refused.
func messagesConversation(out []ccMessage, messages gjson.Result) ([]ccMessage, error) {
	if !messages.IsArray() {
		return nil, fmt.Errorf(`"messages" must be an array of messages`)
	}
	var err error
	last := ""
	i := -1
	messages.ForEach(func(_, m gjson.Result) bool {
		i++
		where := fmt.Sprintf("messages[%d]", i)
		if !m.IsObject() {
			err = fmt.Errorf("%s must be an object with a role and content", where)
			return false
		}
		switch last = m.Get("role").Str; last {
		case "user":
			out, err = messagesUser(out, m.Get("content"), where)
		case "assistant":
			out, err = messagesAssistant(out, m.Get("content"), where)
		default:
			err = fmt.Errorf(`%s has the role %q; it must be "user" or "assistant"`, where, last)
		}
		return err == nil
	})
	if err == nil && last == "assistant" {
		err = untranslatable(`messages[%d], the last message, is the assistant's: Anthropic continues it (a prefill), but an OpenAI model would answer anew`, i)
	}
	return out, err
}

// messagesUser appends the messages of a user turn: a tool message per
// tool_result block, then a user message with the rest. Images a tool
// returned (a tool message holds text only) open that user message, each
// group after a line naming its tool call.
func messagesUser(out []ccMessage, content gjson.Result, where string) ([]ccMessage, error) {
	if content.Type == gjson.String {
		return append(out, ccMessage{Role: "user", Content: content.Str}), nil
	}
	if !content.IsArray() {
		return nil, fmt.Errorf("%s.content must be a string or an array of content blocks", where)
	}
	var toolImages, rest []ccPart
	var err error
	j := -1
	content.ForEach(func(_, b gjson.Result) bool {
		j++
		at := fmt.Sprintf("%s.content[%d]", where, j)
		switch t := b.Get("type").Str; t {
		case "text":
			rest = textPart(rest, b.Get("text").Str)
		case "image":
			var url string
			url, err = imageURL(b.Get("source"), at)
			rest = append(rest, ccPart{Type: "image_url", ImageURL: &ccImageURL{URL: url}})
		case "tool_result":
			var msg ccMessage
			var images []ccPart
			msg, images, err = messagesToolResult(b, at)
			out = append(out, msg)
			if len(images) > 0 {
				toolImages = textPart(toolImages, fmt.Sprintf("Images returned by the tool call %s:", msg.ToolCallID))
				toolImages = append(toolImages, images...)
			}
		default:
			err = untranslatable("%s is a block of type %q, which an OpenAI chat model cannot read", at, t)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if parts := append(toolImages, rest...); len(parts) > 0 {
		out = append(out, ccMessage{Role: "user", Content: partsContent(parts)})
	}
	return out, nil
}

// messagesToolResult is the tool message of a tool_result block, and the
// images its content holds.
func messagesToolResult(b gjson.Result, where string) (ccMessage, []ccPart, error) {
	msg := ccMessage{Role: "tool", ToolCallID: b.Get("tool_use_id").Str}
	var texts []string
	var images []ccPart
	content := b.Get("content")
	switch {
	case !present(content):
	case content.Type == gjson.String:
		if content.Str != "" {
			texts = append(texts, content.Str)
		}
	case content.IsArray():
		var err error
		j := -1
		content.ForEach(func(_, c gjson.Result) bool {
			j++
			at := fmt.Sprintf("%s.content[%d]", where, j)
			switch t := c.Get("type").Str; t {
			case "text":
				if s := c.Get("text").Str; s != "" {
					texts = append(texts, s)
				}
			case "image":
				var url string
				url, err = imageURL(c.Get("source"), at)
				images = append(images, ccPart{Type: "image_url", ImageURL: &ccImageURL{URL: url}})
			default:
				err = untranslatable("%s is a block of type %q; an OpenAI tool message holds text only", at, t)
			}
			return err == nil
		})
		if err != nil {
			return msg, nil, err
		}
	default:
		return msg, nil, fmt.Errorf("%s.content must be a string or an array of content blocks", where)
	}
	if b.Get("is_error").Type == gjson.True {
		if len(texts) == 0 {
			texts = []string{toolError}
		} else {
			texts[0] = toolErrorPrefix + texts[0]
		}
	}
	msg.Content = ""
	if len(texts) > 0 {
		msg.Content = textOrParts(texts)
	}
	return msg, images, nil
}

// messagesAssistant appends the message of an assistant turn: its text as
// content (null when there is none but tool calls) and its tool_use blocks
// as tool_calls, ids kept.
func messagesAssistant(out []ccMessage, content gjson.Result, where string) ([]ccMessage, error) {
	if content.Type == gjson.String {
		return append(out, ccMessage{Role: "assistant", Content: content.Str}), nil
	}
	if !content.IsArray() {
		return nil, fmt.Errorf("%s.content must be a string or an array of content blocks", where)
	}
	msg := ccMessage{Role: "assistant"}
	var texts []string
	var err error
	j := -1
	content.ForEach(func(_, b gjson.Result) bool {
		j++
		switch t := b.Get("type").Str; t {
		case "text":
			if s := b.Get("text").Str; s != "" {
				texts = append(texts, s)
			}
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, ccToolCall{
				ID:       b.Get("id").Str,
				Type:     "function",
				Function: ccFunctionCall{Name: b.Get("name").Str, Arguments: inputArguments(b.Get("input"))},
			})
		case "thinking", "redacted_thinking":
		default:
			err = untranslatable("%s.content[%d] is a block of type %q, which an OpenAI chat model cannot read", where, j, t)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(texts) > 0:
		msg.Content = textOrParts(texts)
	case len(msg.ToolCalls) == 0:
		msg.Content = ""
	}
	return append(out, msg), nil
}

// textOrParts is OpenAI content of texts: one is a plain string, several
// are text parts.
func textOrParts(texts []string) any {
	if len(texts) == 1 {
		return texts[0]
	}
	parts := make([]ccPart, 0, len(texts))
	for _, t := range texts {
		parts = append(parts, ccPart{Type: "text", Text: t})
	}
	return parts
}

// partsContent is OpenAI content of parts: a single text part is a plain
// string.
func partsContent(parts []ccPart) any {
	if len(parts) == 1 && parts[0].Type == "text" {
		return parts[0].Text
	}
	return parts
}

// textPart appends a text part, unless text is empty.
func textPart(parts []ccPart, text string) []ccPart {
	if text == "" {
		return parts
	}
	return append(parts, ccPart{Type: "text", Text: text})
}
