package fakellm

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tidwall/gjson"
)

// The content blocks of an Anthropic request's messages, checked as the
// Messages API does: each type's fields, who may send it, what it needs.

// blockSpec is what a content block type may hold and who may send it.
type blockSpec struct {
	fields map[string]bool // its fields; nil when not checked
	role   string          // the only role whose turns may hold it; "" for both
	check  func(b gjson.Result, at string) *apiError
}

// anthropicBlocks are the content blocks a request's messages may hold.
var anthropicBlocks = map[string]blockSpec{
	"text": {fields: fieldSet("type", "text", "cache_control", "citations"),
		check: func(b gjson.Result, at string) *apiError { return checkTextBlock(b, at, "messages") }},
	"image":    {fields: fieldSet("type", "source", "cache_control"), check: checkImageBlock},
	"document": {fields: fieldSet("type", "source", "cache_control", "citations", "context", "title"), check: checkDocumentBlock},
	"tool_use": {fields: fieldSet("type", "id", "name", "input", "cache_control", "caller"), role: "assistant",
		check: checkToolUseBlock},
	"tool_result": {fields: fieldSet("type", "tool_use_id", "content", "is_error", "cache_control"), role: "user",
		check: checkToolResultBlock},
	"thinking": {fields: fieldSet("type", "thinking", "signature"), role: "assistant",
		check: requireStrings("thinking", "signature")},
	"redacted_thinking":                      {fields: fieldSet("type", "data"), role: "assistant", check: requireStrings("data")},
	"search_result":                          {},
	"container_upload":                       {},
	"server_tool_use":                        {role: "assistant"},
	"web_search_tool_result":                 {role: "assistant"},
	"web_fetch_tool_result":                  {role: "assistant"},
	"code_execution_tool_result":             {role: "assistant"},
	"bash_code_execution_tool_result":        {role: "assistant"},
	"text_editor_code_execution_tool_result": {role: "assistant"},
	"tool_search_tool_result":                {role: "assistant"},
	"mcp_tool_use":                           {role: "assistant"},
	"mcp_tool_result":                        {role: "user"},
}

// blockTags lists the known block types for error messages.
var blockTags = quotedKeys(anthropicBlocks)

// checkBlock checks block j of a turn (at is its path) and records its
// tool_use or tool_result in t.
func checkBlock(t *turn, at string, j int, b gjson.Result) *apiError {
	if !b.IsObject() {
		return anthropicBad(at + ": Input should be a valid dictionary or object to extract fields from")
	}
	typ := b.Get("type")
	if !typ.Exists() {
		return anthropicBad(at + ": Unable to extract tag using discriminator 'type'")
	}
	spec, ok := anthropicBlocks[typ.String()]
	if !ok {
		return anthropicBad(fmt.Sprintf("%s: Input tag '%s' found using 'type' does not match any of the expected tags: %s",
			at, typ.String(), blockTags))
	}
	if spec.fields != nil {
		if k := extraField(b, spec.fields); k != "" {
			return anthropicBad(at + "." + typ.String() + "." + k + ": Extra inputs are not permitted")
		}
	}
	if spec.role != "" && spec.role != t.role {
		return anthropicBad(fmt.Sprintf("%s: `%s` blocks can only be in `%s` messages", at, typ.String(), spec.role))
	}
	if spec.check != nil {
		if e := spec.check(b, at+"."+typ.String()); e != nil {
			return e
		}
	}
	switch typ.String() {
	case "tool_use":
		t.uses = append(t.uses, b.Get("id").Str)
	case "tool_result":
		t.results = append(t.results, toolRef{id: b.Get("tool_use_id").Str, index: j})
	}
	return nil
}

// checkTextBlock wants text that is not empty nor only white space; scope
// ("messages" or "system") starts the message about empty text.
func checkTextBlock(b gjson.Result, at, scope string) *apiError {
	text := b.Get("text")
	switch {
	case !text.Exists():
		return anthropicBad(at + ".text: Field required")
	case text.Type != gjson.String:
		return anthropicBad(at + ".text: Input should be a valid string")
	case text.Str == "":
		return anthropicBad(scope + ": text content blocks must be non-empty")
	case strings.TrimSpace(text.Str) == "":
		return anthropicBad(scope + ": text content blocks must contain non-whitespace text")
	}
	return nil
}

// imageTypes are the media types of base64 images.
var imageTypes = fieldSet("image/jpeg", "image/png", "image/gif", "image/webp")

// checkImageBlock wants a source: base64 data of an image type, a url or
// a file_id.
func checkImageBlock(b gjson.Result, at string) *apiError {
	src, typ, e := blockSource(b, at, "'base64', 'file', 'url'", "base64", "file", "url")
	if e != nil {
		return e
	}
	at += ".source." + typ
	switch typ {
	case "base64":
		if !imageTypes[src.Get("media_type").String()] {
			return anthropicBad(at + ".media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
		}
		return requireStrings("data")(src, at)
	case "url":
		return requireStrings("url")(src, at)
	}
	return requireStrings("file_id")(src, at)
}

// checkDocumentBlock wants a source: base64 or text data, content, a url
// or a file_id.
func checkDocumentBlock(b gjson.Result, at string) *apiError {
	src, typ, e := blockSource(b, at, "'base64', 'content', 'file', 'text', 'url'", "base64", "content", "file", "text", "url")
	if e != nil {
		return e
	}
	at += ".source." + typ
	switch typ {
	case "base64", "text":
		return requireStrings("media_type", "data")(src, at)
	case "url":
		return requireStrings("url")(src, at)
	case "file":
		return requireStrings("file_id")(src, at)
	}
	if !src.Get("content").Exists() {
		return anthropicBad(at + ".content: Field required")
	}
	return nil
}

// blockSource reads the source of an image or document block and its
// type, one of types (tags lists them for the message).
func blockSource(b gjson.Result, at, tags string, types ...string) (gjson.Result, string, *apiError) {
	src := b.Get("source")
	switch {
	case !src.Exists():
		return src, "", anthropicBad(at + ".source: Field required")
	case !src.IsObject():
		return src, "", anthropicBad(at + ".source: Input should be a valid dictionary or object to extract fields from")
	}
	typ := src.Get("type")
	if !typ.Exists() {
		return src, "", anthropicBad(at + ".source: Unable to extract tag using discriminator 'type'")
	}
	for _, t := range types {
		if typ.String() == t {
			return src, t, nil
		}
	}
	return src, "", anthropicBad(fmt.Sprintf("%s.source: Input tag '%s' found using 'type' does not match any of the "+
		"expected tags: %s", at, typ.String(), tags))
}

// toolIDPattern is what Anthropic accepts as a tool_use id.
var toolIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// checkToolUseBlock wants an id, a name and an input object (OpenAI's
// arguments are a string of JSON: a translation must decode them).
func checkToolUseBlock(b gjson.Result, at string) *apiError {
	if e := requireStrings("id", "name")(b, at); e != nil {
		return e
	}
	if !toolIDPattern.MatchString(b.Get("id").Str) {
		return anthropicBad(at + ".id: String should match pattern '^[a-zA-Z0-9_-]+$'")
	}
	input := b.Get("input")
	switch {
	case !input.Exists():
		return anthropicBad(at + ".input: Field required")
	case !input.IsObject():
		return anthropicBad(at + ".input: Input should be a valid dictionary")
	}
	return nil
}

// checkToolResultBlock wants a tool_use_id, content (if any) a string or
// a list of text, image, document or search_result blocks, and is_error
// (if any) a boolean.
func checkToolResultBlock(b gjson.Result, at string) *apiError {
	if e := requireStrings("tool_use_id")(b, at); e != nil {
		return e
	}
	if !toolIDPattern.MatchString(b.Get("tool_use_id").Str) {
		return anthropicBad(at + ".tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
	}
	if v := b.Get("is_error"); v.Exists() && v.Type != gjson.True && v.Type != gjson.False {
		return anthropicBad(at + ".is_error: Input should be a valid boolean")
	}
	content := b.Get("content")
	switch {
	case !content.Exists() || content.Type == gjson.String:
		return nil
	case !content.IsArray():
		return anthropicBad(at + ".content: Input should be a valid string or a list of content blocks")
	}
	for k, cb := range content.Array() {
		cat := fmt.Sprintf("%s.content.%d", at, k)
		if !cb.IsObject() {
			return anthropicBad(cat + ": Input should be a valid dictionary or object to extract fields from")
		}
		var e *apiError
		switch typ := cb.Get("type").String(); typ {
		case "text":
			e = checkTextBlock(cb, cat+".text", "messages")
		case "image":
			e = checkImageBlock(cb, cat+".image")
		case "document":
			e = checkDocumentBlock(cb, cat+".document")
		case "search_result":
		default:
			e = anthropicBad(fmt.Sprintf("%s: Input tag '%s' found using 'type' does not match any of the expected "+
				"tags: 'document', 'image', 'search_result', 'text'", cat, typ))
		}
		if e != nil {
			return e
		}
	}
	return nil
}

// requireStrings is a check that each of names is a string field.
func requireStrings(names ...string) func(b gjson.Result, at string) *apiError {
	return func(b gjson.Result, at string) *apiError {
		for _, n := range names {
			switch v := b.Get(n); {
			case !v.Exists():
				return anthropicBad(at + "." + n + ": Field required")
			case v.Type != gjson.String:
				return anthropicBad(at + "." + n + ": Input should be a valid string")
			}
		}
		return nil
	}
}
