package translate

// The "input" of a Responses request → Anthropic messages and system text.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// responsesTurn is one Anthropic message.
type responsesTurn struct {
	Role    string `json:"role"`
	Content []any  `json:"content"`
}

type responsesTextBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type responsesImageBlock struct {
	Type   string               `json:"type"`
	Source responsesImageSource `json:"source"`
}

type responsesImageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type responsesToolUse struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type responsesToolResult struct {
	Type      string `json:"type"`
	ToolUseID string `json:"tool_use_id"`
	Content   any    `json:"content,omitempty"` // string or []any of text and image blocks
}

// responsesImageTypes are the image media types Anthropic accepts.
var responsesImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// responsesConversation collects the translated input: Anthropic messages,
// with consecutive turns of one role merged (Anthropic wants user and
// assistant to alternate), and the text of system and developer messages.
type responsesConversation struct {
	turns  []*responsesTurn
	system []string
}

// input translates the request's "input": a string (one user message) or
// a list of items.
func (c *responsesConversation) input(in gjson.Result) error {
	switch {
	case in.Type == gjson.String:
		c.add("user", c.text(in.Str)...)
	case in.IsArray():
		var err error
		i := 0
		in.ForEach(func(_, item gjson.Result) bool {
			err = c.item(i, item)
			i++
			return err == nil
		})
		if err != nil {
			return err
		}
	case !in.Exists() || in.Type == gjson.Null:
		return errors.New(`"input" is missing; send the conversation as a string or a list of items`)
	default:
		return errors.New(`"input" is neither a string nor a list of items`)
	}
	if len(c.turns) == 0 {
		return errors.New(`"input" has no user or assistant content; an Anthropic model needs at least one user message`)
	}
	if c.turns[0].Role != "user" {
		return untranslatable(`"input" starts with an assistant turn; an Anthropic conversation must start with the user's`)
	}
	if c.turns[len(c.turns)-1].Role != "user" {
		return untranslatable(`"input" ends with an assistant turn; an Anthropic model would continue that turn's text instead of answering after it`)
	}
	for _, t := range c.turns {
		responsesResultsFirst(t)
	}
	return c.checkCalls()
}

// checkCalls makes sure each tool_use is answered by a tool_result in the
// next turn and each tool_result answers a tool_use of the turn before, as
// Anthropic requires. OpenAI is laxer about where an output comes, so a
// conversation that breaks this is refused as untranslatable: the native
// provider can still judge it.
func (c *responsesConversation) checkCalls() error {
	calls := map[string]bool{} // the previous assistant turn's, true once answered
	var order []string         // their ids in order
	for _, t := range c.turns {
		if t.Role == "assistant" {
			calls, order = map[string]bool{}, order[:0]
			for _, b := range t.Content {
				if u, ok := b.(*responsesToolUse); ok {
					if _, dup := calls[u.ID]; dup {
						return untranslatable(`"input" has two function_calls with call_id %q in one turn; Anthropic needs each call's id to be unique`, responsesClip(u.ID))
					}
					calls[u.ID] = false
					order = append(order, u.ID)
				}
			}
			continue
		}
		for _, b := range t.Content {
			if r, ok := b.(*responsesToolResult); ok {
				answered, known := calls[r.ToolUseID]
				if !known || answered {
					return untranslatable(`"input" has a function_call_output for call_id %q that does not answer a function_call just before it; Anthropic needs each output right after its call`, responsesClip(r.ToolUseID))
				}
				calls[r.ToolUseID] = true
			}
		}
		for _, id := range order {
			if !calls[id] {
				return untranslatable(`"input" has a function_call with call_id %q and no function_call_output right after it; Anthropic needs each call answered in the next turn`, responsesClip(id))
			}
		}
		calls, order = map[string]bool{}, order[:0]
	}
	return nil
}

// item translates input item number i.
func (c *responsesConversation) item(i int, it gjson.Result) error {
	if !it.IsObject() {
		return fmt.Errorf(`"input[%d]" is not an object; an input item is a message, a function_call or a function_call_output`, i)
	}
	switch typ := it.Get("type"); typ.Str {
	case "", "message":
		if typ.Exists() && typ.Type != gjson.String {
			return fmt.Errorf(`"input[%d].type" is not a string`, i)
		}
		return c.message(i, it)
	case "function_call":
		return c.functionCall(i, it)
	case "function_call_output":
		return c.functionOutput(i, it)
	case "reasoning":
		// OpenAI's record of its own model's hidden reasoning (agents on
		// reasoning models with store:false resend it every turn). An
		// Anthropic model cannot read it and answers without it; the
		// conversation itself is in the other items.
		return nil
	case "item_reference":
		return untranslatable(`"input[%d]" is an item_reference to an item stored at OpenAI, which an Anthropic model cannot read; send the item itself`, i)
	default:
		return untranslatable(`"input[%d]" is a %q item, which belongs to a tool that runs at OpenAI or is not a function; an Anthropic model knows messages and function calls only`, i, responsesClip(typ.Str))
	}
}

// message translates a message item: {role, content}.
func (c *responsesConversation) message(i int, it gjson.Result) error {
	role := it.Get("role").Str
	content := it.Get("content")
	switch role {
	case "system", "developer":
		text, err := c.systemText(i, content)
		if err != nil {
			return err
		}
		if strings.TrimSpace(text) != "" {
			c.system = append(c.system, text)
		}
		return nil
	case "user", "assistant":
		blocks, err := c.content(sprintf("input[%d].content", i), role, content)
		if err != nil {
			return err
		}
		c.add(role, blocks...)
		return nil
	}
	return fmt.Errorf(`"input[%d].role" is not one of user, assistant, system and developer`, i)
}

// content translates a message's content: a string or a list of parts.
func (c *responsesConversation) content(where, role string, content gjson.Result) ([]any, error) {
	if content.Type == gjson.String {
		return c.text(content.Str), nil
	}
	if !content.IsArray() {
		return nil, fmt.Errorf(`"%s" is neither a string nor a list of parts`, where)
	}
	var blocks []any
	var err error
	j := 0
	content.ForEach(func(_, part gjson.Result) bool {
		here := sprintf("%s[%d]", where, j)
		j++
		switch typ := part.Get("type").Str; typ {
		case "input_text", "output_text":
			blocks = append(blocks, c.text(part.Get("text").Str)...)
		case "refusal":
			blocks = append(blocks, c.text(part.Get("refusal").Str)...)
		case "input_image":
			if role == "assistant" {
				err = untranslatable(`"%s" is an image in an assistant message; Anthropic takes images from the user only`, here)
				return false
			}
			var img any
			if img, err = responsesImage(here, part); err == nil {
				blocks = append(blocks, img)
			}
		case "input_file":
			err = untranslatable(`"%s" is an input_file part; files are not translated to Anthropic documents`, here)
		case "input_audio":
			err = untranslatable(`"%s" is an input_audio part; Anthropic models do not take audio`, here)
		default:
			err = untranslatable(`"%s" is a part of type %q, which has no Anthropic equivalent`, here, responsesClip(typ))
		}
		return err == nil
	})
	return blocks, err
}

// systemText is the text of a system or developer message.
func (c *responsesConversation) systemText(i int, content gjson.Result) (string, error) {
	if content.Type == gjson.String {
		return content.Str, nil
	}
	if !content.IsArray() {
		return "", fmt.Errorf(`"input[%d].content" is neither a string nor a list of parts`, i)
	}
	var texts []string
	var err error
	content.ForEach(func(_, part gjson.Result) bool {
		switch part.Get("type").Str {
		case "input_text", "output_text":
			texts = append(texts, part.Get("text").Str)
		default:
			err = untranslatable(`"input[%d]" is a system or developer message with a part that is not text; Anthropic's system prompt takes text only`, i)
		}
		return err == nil
	})
	return strings.Join(texts, "\n\n"), err
}

// functionCall translates a function_call item to an assistant tool_use.
func (c *responsesConversation) functionCall(i int, it gjson.Result) error {
	id, name := it.Get("call_id"), it.Get("name")
	if id.Type != gjson.String || id.Str == "" {
		return fmt.Errorf(`"input[%d]" is a function_call without "call_id"`, i)
	}
	if name.Type != gjson.String || name.Str == "" {
		return fmt.Errorf(`"input[%d]" is a function_call without "name"`, i)
	}
	input, err := responsesArguments(i, it.Get("arguments"))
	if err != nil {
		return err
	}
	c.add("assistant", &responsesToolUse{Type: "tool_use", ID: id.Str, Name: name.Str, Input: input})
	return nil
}

// responsesArgsDepth bounds the nesting of a function_call's arguments:
// as a tool_use input they sit five levels deep in the Anthropic request,
// which must stay within jsonguard.MaxDepth.
const responsesArgsDepth = jsonguard.MaxDepth - 8

// responsesArguments is the tool_use input for a function_call's
// arguments, a string holding a JSON object. The string's own nesting is
// bounded here: the caller's bound covered the request, not the JSON
// inside its strings.
func responsesArguments(i int, args gjson.Result) (json.RawMessage, error) {
	if args.Exists() && args.Type != gjson.String && args.Type != gjson.Null {
		return nil, fmt.Errorf(`"input[%d].arguments" is not a string; send the arguments as a JSON string`, i)
	}
	s := strings.TrimSpace(args.Str)
	if s == "" {
		return json.RawMessage(`{}`), nil
	}
	r, err := jsonguard.Scan([]byte(s), responsesArgsDepth)
	if jsonguard.TooDeep(err) {
		return nil, untranslatable(`"input[%d].arguments" nest deeper than %d levels, more than the translated request may`, i, responsesArgsDepth)
	}
	if err != nil || r.First != '{' {
		return nil, untranslatable(`"input[%d].arguments" is not a JSON object; Anthropic's tool_use input must be one`, i)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return nil, untranslatable(`"input[%d].arguments" is not a JSON object; Anthropic's tool_use input must be one`, i)
	}
	return b.Bytes(), nil
}

// functionOutput translates a function_call_output item to a user
// tool_result.
func (c *responsesConversation) functionOutput(i int, it gjson.Result) error {
	id := it.Get("call_id")
	if id.Type != gjson.String || id.Str == "" {
		return fmt.Errorf(`"input[%d]" is a function_call_output without "call_id"`, i)
	}
	res := &responsesToolResult{Type: "tool_result", ToolUseID: id.Str}
	switch out := it.Get("output"); {
	case out.Type == gjson.String:
		if strings.TrimSpace(out.Str) != "" {
			res.Content = out.Str
		}
	case out.IsArray():
		blocks, err := c.content(sprintf("input[%d].output", i), "user", out)
		if err != nil {
			return err
		}
		if len(blocks) > 0 {
			res.Content = blocks
		}
	case !out.Exists() || out.Type == gjson.Null:
	default:
		return fmt.Errorf(`"input[%d].output" is neither a string nor a list of parts`, i)
	}
	c.add("user", res)
	return nil
}

// text is a text block, or none for blank text (Anthropic refuses empty
// and whitespace-only text blocks).
func (c *responsesConversation) text(s string) []any {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return []any{&responsesTextBlock{Type: "text", Text: s}}
}

// add appends blocks to the conversation as role, merging them into the
// last turn when it has the same role.
func (c *responsesConversation) add(role string, blocks ...any) {
	if len(blocks) == 0 {
		return
	}
	if n := len(c.turns); n > 0 && c.turns[n-1].Role == role {
		c.turns[n-1].Content = append(c.turns[n-1].Content, blocks...)
		return
	}
	c.turns = append(c.turns, &responsesTurn{Role: role, Content: blocks})
}

// responsesResultsFirst moves a turn's tool results before its other
// blocks, keeping their order: Anthropic wants the results of the
// previous turn's tool calls to come first.
func responsesResultsFirst(t *responsesTurn) {
	var results, rest []any
	for _, b := range t.Content {
		if _, ok := b.(*responsesToolResult); ok {
			results = append(results, b)
		} else {
			rest = append(rest, b)
		}
	}
	if len(results) > 0 && len(rest) > 0 {
		t.Content = append(results, rest...)
	}
}

// responsesImage translates an input_image part: a data: URL becomes a
// base64 source, an http(s) URL a url source.
func responsesImage(where string, part gjson.Result) (any, error) {
	u := part.Get("image_url")
	if u.Type != gjson.String || u.Str == "" {
		if part.Get("file_id").Type == gjson.String {
			return nil, untranslatable(`"%s" refers to a file uploaded to OpenAI, which an Anthropic model cannot read; send the image as a data: or https: URL`, where)
		}
		return nil, fmt.Errorf(`"%s" is an input_image without "image_url"`, where)
	}
	url := u.Str
	lower := strings.ToLower(url[:min(len(url), 8)])
	switch {
	case strings.HasPrefix(lower, "data:"):
		meta, data, ok := strings.Cut(url[len("data:"):], ",")
		media, base64, _ := strings.Cut(strings.ToLower(meta), ";")
		if !ok || base64 != "base64" || data == "" {
			return nil, fmt.Errorf(`"%s.image_url" is a data: URL that is not base64-encoded; send data:<type>;base64,<data>`, where)
		}
		if !responsesImageTypes[media] {
			return nil, untranslatable(`"%s" is an image of type %q; Anthropic takes JPEG, PNG, GIF and WebP images`, where, responsesClip(media))
		}
		return &responsesImageBlock{Type: "image", Source: responsesImageSource{Type: "base64", MediaType: media, Data: data}}, nil
	case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		return &responsesImageBlock{Type: "image", Source: responsesImageSource{Type: "url", URL: url}}, nil
	}
	return nil, fmt.Errorf(`"%s.image_url" is neither a data: URL nor an http(s) URL`, where)
}
