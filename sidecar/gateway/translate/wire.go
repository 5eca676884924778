package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/tidwall/gjson"
)

// The wire shapes the translators write, fields in each provider's
// documented order. Names starting with cc are OpenAI Chat Completions
// shapes, names starting with am Anthropic Messages shapes. Values passed
// through unchanged (model names, numbers, JSON schemas, tool inputs) are
// json.RawMessage, so they are neither re-parsed nor re-ordered.

// amRequest is an Anthropic Messages request.
type amRequest struct {
	Model         json.RawMessage `json:"model,omitempty"`
	MaxTokens     json.RawMessage `json:"max_tokens"`
	System        any             `json:"system,omitempty"` // string or []amBlock
	Messages      []amTurn        `json:"messages"`
	Metadata      *amMetadata     `json:"metadata,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        *bool           `json:"stream,omitempty"`
	Temperature   json.RawMessage `json:"temperature,omitempty"`
	TopP          json.RawMessage `json:"top_p,omitempty"`
	ToolChoice    *amToolChoice   `json:"tool_choice,omitempty"`
	Tools         []amTool        `json:"tools,omitempty"`
}

// amTurn is one message of an Anthropic conversation. Content is a string
// (a turn of one text block) or []amBlock; blocks collects the turn while
// it is built.
type amTurn struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
	blocks  []amBlock
}

// amBlock is one content block: text, image, tool_use or tool_result. Only
// the fields of its type are set; no block is written with empty text.
type amBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *amSource       `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   any             `json:"content,omitempty"` // tool_result: string or []amBlock
}

// amSource is an image's source: base64 data or a URL.
type amSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type amMetadata struct {
	UserID string `json:"user_id"`
}

type amToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type amTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// ccRequest is an OpenAI Chat Completions request.
type ccRequest struct {
	Model             json.RawMessage  `json:"model,omitempty"`
	Messages          []ccMessage      `json:"messages"`
	MaxTokens         json.RawMessage  `json:"max_tokens,omitempty"`
	Temperature       json.RawMessage  `json:"temperature,omitempty"`
	TopP              json.RawMessage  `json:"top_p,omitempty"`
	Stop              []string         `json:"stop,omitempty"`
	Stream            *bool            `json:"stream,omitempty"`
	StreamOptions     *ccStreamOptions `json:"stream_options,omitempty"`
	Tools             []ccTool         `json:"tools,omitempty"`
	ToolChoice        any              `json:"tool_choice,omitempty"` // string or ccNamedToolChoice
	ParallelToolCalls *bool            `json:"parallel_tool_calls,omitempty"`
	ResponseFormat    *ccFormat        `json:"response_format,omitempty"`
	User              string           `json:"user,omitempty"`
}

// ccMessage is one message of an OpenAI conversation. Content is a string,
// []ccPart, or nil (null: an assistant message of tool calls only).
type ccMessage struct {
	Role       string       `json:"role"`
	Content    any          `json:"content"`
	ToolCalls  []ccToolCall `json:"tool_calls,omitempty"`
	ToolCallID string       `json:"tool_call_id,omitempty"`
}

// ccPart is a content part: text or image_url.
type ccPart struct {
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	ImageURL *ccImageURL `json:"image_url,omitempty"`
}

type ccImageURL struct {
	URL string `json:"url"`
}

type ccToolCall struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Function ccFunctionCall `json:"function"`
}

type ccFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type ccTool struct {
	Type     string     `json:"type"`
	Function ccFunction `json:"function"`
}

type ccFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type ccNamedToolChoice struct {
	Type     string         `json:"type"`
	Function ccFunctionName `json:"function"`
}

type ccFunctionName struct {
	Name string `json:"name"`
}

type ccStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type ccFormat struct {
	Type       string        `json:"type"`
	JSONSchema *ccJSONSchema `json:"json_schema,omitempty"`
}

type ccJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

// readObject checks that body is one JSON object, nested no deeper than
// jsonguard.MaxDepth (callers have checked, but the functions here take no
// one's word for it), and returns its root for gjson reads. what names the
// body in the error ("request", "answer").
func readObject(body []byte, what string) (gjson.Result, error) {
	res, err := jsonguard.Scan(body, jsonguard.MaxDepth)
	if err != nil {
		return gjson.Result{}, fmt.Errorf("the %s is not valid JSON: %v", what, err)
	}
	if res.First != '{' {
		return gjson.Result{}, fmt.Errorf("the %s is not a JSON object: it must be {…}", what)
	}
	return gjson.ParseBytes(body), nil
}

// topFields indexes an object's top-level members, so that reading twenty
// of them walks the body once instead of twenty times.
type topFields map[string]gjson.Result

// indexTop indexes root's members; of a key given twice, the first counts,
// as for gjson's Get.
func indexTop(root gjson.Result) topFields {
	t := make(topFields, 32)
	root.ForEach(func(k, v gjson.Result) bool {
		if _, seen := t[k.Str]; !seen {
			t[k.Str] = v
		}
		return true
	})
	return t
}

// Get returns the member named by the first element of path, and below
// it the rest of path (gjson's syntax): "metadata.user_id".
func (t topFields) Get(path string) gjson.Result {
	name, rest, nested := strings.Cut(path, ".")
	v := t[name]
	if nested {
		return v.Get(rest)
	}
	return v
}

// encode writes v as compact JSON without escaping <, > and & (text such
// as HTML in a prompt stays readable; the JSON means the same either way).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// raw is a value as written, for passing through; nil when it is absent or
// null. gjson's Raw of a value inside a valid document is valid JSON.
func raw(v gjson.Result) json.RawMessage {
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	return json.RawMessage(v.Raw)
}

// present reports whether a field is set to something other than null.
func present(v gjson.Result) bool { return v.Exists() && v.Type != gjson.Null }

// invalidArgumentsKey wraps tool call arguments that are not a JSON object
// (see argumentsInput).
const invalidArgumentsKey = "invalid_json_arguments"

// argumentsInput is an Anthropic tool_use input (a JSON object) for an
// OpenAI tool call's arguments (a string meant to hold JSON). Empty
// arguments are {}; arguments that are not one JSON object (a model cut
// short by its token cap writes half an object) are kept as text under
// invalidArgumentsKey, so the conversation can go on and the model sees
// what was sent. The string was never checked by the caller, so it is
// scanned here before it is written as JSON.
func argumentsInput(args string) json.RawMessage {
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		return json.RawMessage("{}")
	}
	if res, err := jsonguard.Scan([]byte(trimmed), jsonguard.MaxDepth); err == nil && res.First == '{' {
		return json.RawMessage(trimmed)
	}
	b, _ := encode(map[string]string{invalidArgumentsKey: args})
	return b
}

// inputArguments is an OpenAI tool call's arguments string for an
// Anthropic tool_use input: the input's JSON, compacted. A missing input
// is "{}".
func inputArguments(input gjson.Result) string {
	if !present(input) {
		return "{}"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(input.Raw)); err != nil {
		return input.Raw
	}
	return buf.String()
}

// textOrBlocks is a turn's or a system prompt's content: one text block is
// written as a plain string, anything else as blocks.
func textOrBlocks(blocks []amBlock) any {
	if len(blocks) == 1 && blocks[0].Type == "text" {
		return blocks[0].Text
	}
	return blocks
}
