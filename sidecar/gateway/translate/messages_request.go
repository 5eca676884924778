package translate

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// maxOpenAIStops is how many stop sequences OpenAI takes.
const maxOpenAIStops = 4

// messagesToChatRequest translates an Anthropic Messages request into an
// OpenAI Chat Completions request. docs/translation.md lists every field's
// fate. The max_tokens is written as such; the gateway renames it for the
// models that want max_completion_tokens.
func messagesToChatRequest(body []byte, _ Options) ([]byte, error) {
	obj, err := readObject(body, "request")
	if err != nil {
		return nil, err
	}
	root := indexTop(obj)
	if err := refuseMessagesFields(root); err != nil {
		return nil, err
	}
	out := ccRequest{Model: raw(root.Get("model"))}
	if out.Messages, err = messagesSystem(root.Get("system")); err != nil {
		return nil, err
	}
	if out.Messages, err = messagesConversation(out.Messages, root.Get("messages")); err != nil {
		return nil, err
	}
	if mt := root.Get("max_tokens"); present(mt) {
		if mt.Type != gjson.Number {
			return nil, fmt.Errorf(`"max_tokens" is %s; it must be a whole number of tokens`, mt.Raw)
		}
		out.MaxTokens = raw(mt)
	}
	out.Temperature = raw(root.Get("temperature"))
	out.TopP = raw(root.Get("top_p"))
	if out.Stop, err = messagesStop(root.Get("stop_sequences")); err != nil {
		return nil, err
	}
	if s := root.Get("stream"); s.IsBool() {
		b := s.Bool()
		out.Stream = &b
		if b {
			out.StreamOptions = &ccStreamOptions{IncludeUsage: true}
		}
	}
	if out.Tools, err = messagesTools(root.Get("tools")); err != nil {
		return nil, err
	}
	choice := root.Get("tool_choice")
	if out.ToolChoice, err = messagesToolChoice(choice); err != nil {
		return nil, err
	}
	if choice.Get("disable_parallel_tool_use").Type == gjson.True && len(out.Tools) > 0 {
		no := false
		out.ParallelToolCalls = &no
	}
	out.ResponseFormat = messagesFormat(root)
	if user := root.Get("metadata.user_id"); user.Type == gjson.String {
		out.User = user.Str
	}
	return encode(out)
}

// refuseMessagesFields refuses the top-level fields OpenAI cannot honour.
func refuseMessagesFields(root topFields) error {
	if t := root.Get("thinking"); present(t) && t.Get("type").Str != "disabled" {
		return untranslatable(`"thinking" asks for extended thinking, whose blocks an OpenAI chat model neither gives nor reads back; send "thinking": {"type": "disabled"} or leave it out`)
	}
	if present(root.Get("container")) {
		return untranslatable(`"container" names an Anthropic code execution container; OpenAI has none`)
	}
	if s := root.Get("mcp_servers"); present(s) && !(s.IsArray() && len(s.Array()) == 0) {
		return untranslatable(`"mcp_servers" asks Anthropic to call MCP servers; an OpenAI chat model cannot`)
	}
	if f := messagesFormatSpec(root); present(f) && f.Get("type").Str != "json_schema" {
		return untranslatable(`the output format of type %q has no OpenAI equivalent; only "json_schema" can be translated`, f.Get("type").String())
	}
	if s := root.Get("stop_sequences"); s.IsArray() && len(s.Array()) > maxOpenAIStops {
		return untranslatable(`"stop_sequences" has %d entries; OpenAI takes at most %d`, len(s.Array()), maxOpenAIStops)
	}
	return nil
}

// messagesFormatSpec is the structured output format of a request:
// output_config.format, or the earlier output_format.
func messagesFormatSpec(root topFields) gjson.Result {
	if f := root.Get("output_config.format"); present(f) {
		return f
	}
	return root.Get("output_format")
}

// messagesFormat is the OpenAI response_format of a structured output
// format: a strict JSON schema, as Anthropic enforces it.
func messagesFormat(root topFields) *ccFormat {
	f := messagesFormatSpec(root)
	if !present(f) {
		return nil
	}
	schema := raw(f.Get("schema"))
	if schema == nil {
		return &ccFormat{Type: "json_object"}
	}
	return &ccFormat{Type: "json_schema", JSONSchema: &ccJSONSchema{Name: "output", Schema: schema, Strict: true}}
}

// messagesStop translates stop_sequences into OpenAI's stop.
func messagesStop(stops gjson.Result) ([]string, error) {
	if !present(stops) {
		return nil, nil
	}
	if !stops.IsArray() {
		return nil, fmt.Errorf(`"stop_sequences" must be an array of strings`)
	}
	var out []string
	var err error
	stops.ForEach(func(_, s gjson.Result) bool {
		if s.Type != gjson.String {
			err = fmt.Errorf(`"stop_sequences" must be an array of strings; it holds %s`, s.Raw)
			return false
		}
		out = append(out, s.Str)
		return true
	})
	return out, err
}

// messagesTools translates Anthropic client tools into OpenAI function
// tools; Anthropic-defined tools (web search, code execution, bash, the
// text editor, …) cannot be sent.
func messagesTools(tools gjson.Result) ([]ccTool, error) {
	if !present(tools) {
		return nil, nil
	}
	if !tools.IsArray() {
		return nil, fmt.Errorf(`"tools" must be an array of tools`)
	}
	var out []ccTool
	var err error
	i := -1
	tools.ForEach(func(_, t gjson.Result) bool {
		i++
		if typ := t.Get("type"); present(typ) && typ.Str != "custom" {
			err = untranslatable(`tools[%d] is the Anthropic-defined tool %q (a server tool or a built-in schema), which an OpenAI chat model does not have`, i, typ.String())
			return false
		}
		fn := ccFunction{Name: t.Get("name").Str, Description: t.Get("description").Str, Parameters: raw(t.Get("input_schema"))}
		if s := t.Get("strict"); s.IsBool() {
			b := s.Bool()
			fn.Strict = &b
		}
		out = append(out, ccTool{Type: "function", Function: fn})
		return true
	})
	return out, err
}

// messagesToolChoice translates an Anthropic tool_choice.
func messagesToolChoice(choice gjson.Result) (any, error) {
	if !present(choice) {
		return nil, nil
	}
	switch t := choice.Get("type").Str; t {
	case "auto":
		return "auto", nil
	case "any":
		return "required", nil
	case "none":
		return "none", nil
	case "tool":
		return ccNamedToolChoice{Type: "function", Function: ccFunctionName{Name: choice.Get("name").Str}}, nil
	default:
		return nil, fmt.Errorf(`"tool_choice" has the type %q; it must be "auto", "any", "tool" or "none"`, t)
	}
}
