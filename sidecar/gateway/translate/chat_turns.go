package translate

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// An OpenAI conversation becomes an Anthropic one: system and developer
// messages, wherever they are, join the top-level system prompt in their
// order; tool messages become tool_result blocks of a user turn; and
// consecutive turns of one role merge into one turn, since Anthropic wants
// user and assistant to alternate.

// chatConversation translates OpenAI messages into Anthropic system blocks
// and turns.
func chatConversation(messages gjson.Result) (system []amBlock, turns []amTurn, err error) {
	if !messages.IsArray() {
		return nil, nil, fmt.Errorf(`"messages" must be an array of messages`)
	}
	var c turnList
	i := -1
	messages.ForEach(func(_, m gjson.Result) bool {
		i++
		where := fmt.Sprintf("messages[%d]", i)
		if !m.IsObject() {
			err = fmt.Errorf("%s must be an object with a role and content", where)
			return false
		}
		var blocks []amBlock
		switch role := m.Get("role").Str; role {
		case "system", "developer":
			blocks, err = chatParts(m.Get("content"), where, false)
			system = append(system, blocks...)
		case "user":
			blocks, err = chatParts(m.Get("content"), where, true)
			c.add("user", blocks)
		case "assistant":
			blocks, err = chatAssistant(m, where)
			c.add("assistant", blocks)
		case "tool":
			var b amBlock
			b, err = chatToolResult(m, where)
			c.add("user", []amBlock{b})
		case "function":
			err = untranslatable(`%s has the role "function" of OpenAI's legacy function calling; send tool messages instead`, where)
		default:
			err = fmt.Errorf(`%s has the role %q; it must be "system", "developer", "user", "assistant" or "tool"`, where, role)
		}
		return err == nil
	})
	if err != nil {
		return nil, nil, err
	}
	if n := len(c.turns); n > 0 && c.turns[n-1].Role == "assistant" {
		return nil, nil, untranslatable("the conversation ends with an assistant message: Anthropic would continue it (a prefill), where OpenAI answers anew")
	}
	return system, c.finish(), nil
}

// chatParts translates the content of a system, developer or user message:
// a string, or an array of text parts (and, for a user, image parts).
// Empty text is left out: Anthropic refuses empty text blocks.
func chatParts(content gjson.Result, where string, user bool) ([]amBlock, error) {
	switch {
	case !present(content):
		return nil, nil
	case content.Type == gjson.String:
		return textBlock(nil, content.Str), nil
	case !content.IsArray():
		return nil, fmt.Errorf("%s.content must be a string or an array of content parts", where)
	}
	var blocks []amBlock
	var err error
	j := -1
	content.ForEach(func(_, p gjson.Result) bool {
		j++
		at := fmt.Sprintf("%s.content[%d]", where, j)
		switch t := p.Get("type").Str; {
		case t == "text":
			blocks = textBlock(blocks, p.Get("text").Str)
		case t == "image_url" && user:
			var src *amSource
			src, err = imageSource(chatImageURL(p), at)
			blocks = append(blocks, amBlock{Type: "image", Source: src})
		case t == "input_audio":
			err = untranslatable("%s is audio input; Anthropic reads text and images only", at)
		case t == "file":
			err = untranslatable("%s is a file; files cannot be sent to Anthropic in a chat request", at)
		default:
			err = untranslatable("%s is a content part of type %q, which Anthropic cannot read here", at, t)
		}
		return err == nil
	})
	return blocks, err
}

// chatImageURL is an image part's URL: {"image_url": {"url": …}}, or the
// older {"image_url": "…"}.
func chatImageURL(part gjson.Result) string {
	if u := part.Get("image_url"); u.Type == gjson.String {
		return u.Str
	}
	return part.Get("image_url.url").Str
}

// chatAssistant translates an assistant message: its text (content parts,
// or a refusal, which is text the model said) and then its tool calls as
// tool_use blocks, ids kept. A message of tool calls only has no text block.
func chatAssistant(m gjson.Result, where string) ([]amBlock, error) {
	if present(m.Get("function_call")) {
		return nil, untranslatable(`%s has a "function_call" of OpenAI's legacy function calling; send "tool_calls" instead`, where)
	}
	if present(m.Get("audio")) {
		return nil, untranslatable(`%s refers to an earlier spoken answer ("audio"); Anthropic cannot read it`, where)
	}
	var blocks []amBlock
	content := m.Get("content")
	switch {
	case !present(content):
	case content.Type == gjson.String:
		blocks = textBlock(blocks, content.Str)
	case content.IsArray():
		var err error
		j := -1
		content.ForEach(func(_, p gjson.Result) bool {
			j++
			switch t := p.Get("type").Str; t {
			case "text":
				blocks = textBlock(blocks, p.Get("text").Str)
			case "refusal":
				blocks = textBlock(blocks, p.Get("refusal").Str)
			default:
				err = untranslatable("%s.content[%d] is a content part of type %q, which an assistant message cannot carry to Anthropic", where, j, t)
			}
			return err == nil
		})
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s.content must be a string, an array of content parts or null", where)
	}
	blocks = textBlock(blocks, m.Get("refusal").Str)
	var err error
	j := -1
	m.Get("tool_calls").ForEach(func(_, call gjson.Result) bool {
		j++
		if t := call.Get("type"); t.Exists() && t.Str != "function" {
			err = untranslatable("%s.tool_calls[%d] is a call of type %q; only function calls can be sent to Anthropic", where, j, t.String())
			return false
		}
		blocks = append(blocks, amBlock{
			Type:  "tool_use",
			ID:    call.Get("id").Str,
			Name:  call.Get("function.name").Str,
			Input: argumentsInput(call.Get("function.arguments").Str),
		})
		return true
	})
	return blocks, err
}

// chatToolResult translates a tool message into a tool_result block. Its
// content is text: a string, or text parts. Empty content is left out.
func chatToolResult(m gjson.Result, where string) (amBlock, error) {
	b := amBlock{Type: "tool_result", ToolUseID: m.Get("tool_call_id").Str}
	content := m.Get("content")
	if content.Type == gjson.String {
		if content.Str != "" {
			b.Content = content.Str
		}
		return b, nil
	}
	parts, err := chatParts(content, where, false)
	if len(parts) > 0 {
		b.Content = parts
	}
	return b, err
}

// textBlock appends a text block to a request, unless text is empty or
// whitespace only: Anthropic refuses such blocks, and they say nothing.
func textBlock(blocks []amBlock, text string) []amBlock {
	if strings.TrimSpace(text) == "" {
		return blocks
	}
	return append(blocks, amBlock{Type: "text", Text: text})
}

// turnList builds an Anthropic conversation turn by turn.
type turnList struct{ turns []amTurn }

// add appends blocks as a turn of role, merged into the last turn if that
// has the same role. A turn without blocks is left out.
func (l *turnList) add(role string, blocks []amBlock) {
	if len(blocks) == 0 {
		return
	}
	if n := len(l.turns); n > 0 && l.turns[n-1].Role == role {
		l.turns[n-1].blocks = append(l.turns[n-1].blocks, blocks...)
		return
	}
	l.turns = append(l.turns, amTurn{Role: role, blocks: blocks})
}

// finish completes the conversation: it starts with a user turn, every
// user turn's tool_result blocks come before its other blocks (Anthropic
// requires it; a well-formed OpenAI conversation has them there already),
// and each turn's content is set from its blocks.
func (l *turnList) finish() []amTurn {
	if len(l.turns) > 0 && l.turns[0].Role != "user" {
		l.turns = append([]amTurn{{Role: "user", blocks: textBlock(nil, conversationStart)}}, l.turns...)
	}
	for i := range l.turns {
		t := &l.turns[i]
		if t.Role == "user" {
			t.blocks = toolResultsFirst(t.blocks)
		}
		t.Content = textOrBlocks(t.blocks)
	}
	if l.turns == nil {
		return []amTurn{}
	}
	return l.turns
}

// toolResultsFirst moves a turn's tool_result blocks before its other
// blocks, each group keeping its order.
func toolResultsFirst(blocks []amBlock) []amBlock {
	sorted := true
	for i := 1; i < len(blocks); i++ {
		if blocks[i].Type == "tool_result" && blocks[i-1].Type != "tool_result" {
			sorted = false
			break
		}
	}
	if sorted {
		return blocks
	}
	out := make([]amBlock, 0, len(blocks))
	for _, b := range blocks {
		if b.Type == "tool_result" {
			out = append(out, b)
		}
	}
	for _, b := range blocks {
		if b.Type != "tool_result" {
			out = append(out, b)
		}
	}
	return out
}
