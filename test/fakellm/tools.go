package fakellm

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// How a request with tools is answered, the same way for every API: a
// request that ends with the user's turn calls a tool (the one tool_choice
// forces, else the first), with arguments built from the user's text; a
// request that ends with a tool's result is answered with the reply and
// the start of that result, so a test sees the result reached the model.

const (
	// argRunes bounds the user's text put in a tool call's arguments.
	argRunes = 80
	// saidRunes bounds the tool result quoted in the reply.
	saidRunes = 40
)

// toolPlan is how the tools of a request shape its answer.
type toolPlan struct {
	// call: answer with a call to tool name with args (a JSON object)
	call bool
	name string
	args string
	// result: the request ends with a tool's result, whose text is said
	result bool
	said   string
}

// chatToolPlan reads an OpenAI chat completion request: tools of type
// function, tool_choice "none", "auto", "required" or a named function,
// tool messages answering.
func chatToolPlan(root gjson.Result) toolPlan {
	msgs := root.Get("messages").Array()
	if len(msgs) == 0 {
		return toolPlan{}
	}
	last := len(msgs) - 1
	switch msgs[last].Get("role").Str {
	case "tool":
		first := last
		for first > 0 && msgs[first-1].Get("role").Str == "tool" {
			first--
		}
		return toolPlan{result: true, said: openAIText(msgs[first].Get("content"))}
	case "user":
	default:
		return toolPlan{}
	}
	choice := root.Get("tool_choice")
	if choice.Str == "none" {
		return toolPlan{}
	}
	forced := ""
	if choice.IsObject() {
		forced = choice.Get("function.name").Str
	}
	for _, t := range root.Get("tools").Array() {
		name := t.Get("function.name").Str
		if t.Get("type").Str == "function" && name != "" && (forced == "" || name == forced) {
			return toolPlan{call: true, name: name,
				args: toolArgs(t.Get("function.parameters"), openAIText(msgs[last].Get("content")))}
		}
	}
	return toolPlan{}
}

// messagesToolPlan reads an Anthropic Messages request: custom tools with
// an input_schema, tool_choice of type none, auto, any or tool, tool_result
// blocks answering.
func messagesToolPlan(root gjson.Result) toolPlan {
	msgs := root.Get("messages").Array()
	if len(msgs) == 0 || msgs[len(msgs)-1].Get("role").Str != "user" {
		return toolPlan{}
	}
	content := msgs[len(msgs)-1].Get("content")
	for _, b := range content.Array() {
		if b.Get("type").Str == "tool_result" {
			return toolPlan{result: true, said: anthropicText(b.Get("content"))}
		}
	}
	choice := root.Get("tool_choice")
	if choice.Get("type").Str == "none" {
		return toolPlan{}
	}
	forced := ""
	if choice.Get("type").Str == "tool" {
		forced = choice.Get("name").Str
	}
	for _, t := range root.Get("tools").Array() {
		typ, name := t.Get("type").Str, t.Get("name").Str
		if (typ == "" || typ == "custom") && name != "" && (forced == "" || name == forced) {
			return toolPlan{call: true, name: name, args: toolArgs(t.Get("input_schema"), anthropicText(content))}
		}
	}
	return toolPlan{}
}

// responsesToolPlan reads a Responses API request: function tools,
// tool_choice "none", "auto", "required" or a named function, input a
// string or items ending with the user's message or function_call_output
// items.
func responsesToolPlan(root gjson.Result) toolPlan {
	input := root.Get("input")
	var text string
	switch {
	case input.Type == gjson.String:
		text = input.Str
	case input.IsArray():
		items := input.Array()
		if len(items) == 0 {
			return toolPlan{}
		}
		last := len(items) - 1
		if items[last].Get("type").Str == "function_call_output" {
			first := last
			for first > 0 && items[first-1].Get("type").Str == "function_call_output" {
				first--
			}
			return toolPlan{result: true, said: responsesText(items[first].Get("output"))}
		}
		if typ := items[last].Get("type").Str; items[last].Get("role").Str != "user" || (typ != "" && typ != "message") {
			return toolPlan{}
		}
		text = responsesText(items[last].Get("content"))
	default:
		return toolPlan{}
	}
	choice := root.Get("tool_choice")
	if choice.Str == "none" {
		return toolPlan{}
	}
	forced := ""
	if choice.IsObject() && choice.Get("type").Str == "function" {
		forced = choice.Get("name").Str
	}
	for _, t := range root.Get("tools").Array() {
		name := t.Get("name").Str
		if t.Get("type").Str == "function" && name != "" && (forced == "" || name == forced) {
			return toolPlan{call: true, name: name, args: toolArgs(t.Get("parameters"), text)}
		}
	}
	return toolPlan{}
}

// toolArgs are the arguments of a call to a tool whose parameters are
// schema: {"<property>": text (clipped)} for its first required string
// property, else its first string property, else {}.
func toolArgs(schema gjson.Result, text string) string {
	required := map[string]bool{}
	for _, r := range schema.Get("required").Array() {
		required[r.String()] = true
	}
	first, firstRequired := "", ""
	schema.Get("properties").ForEach(func(k, p gjson.Result) bool {
		if !isStringType(p.Get("type")) {
			return true
		}
		if first == "" {
			first = k.String()
		}
		if required[k.String()] {
			firstRequired = k.String()
			return false
		}
		return true
	})
	key := firstRequired
	if key == "" {
		key = first
	}
	if key == "" {
		return "{}"
	}
	b, _ := json.Marshal(map[string]string{key: clip(text, argRunes)})
	return string(b)
}

// isStringType tells whether a JSON Schema "type" allows strings.
func isStringType(t gjson.Result) bool {
	if t.IsArray() {
		for _, e := range t.Array() {
			if e.Str == "string" {
				return true
			}
		}
		return false
	}
	return t.Str == "string"
}

// clip is s cut to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// openAIText is the text of a chat message's content: the string, or its
// text parts joined.
func openAIText(content gjson.Result) string {
	return joinedText(content, "text")
}

// anthropicText is the text of a message's or tool_result's content: the
// string, or its text blocks joined.
func anthropicText(content gjson.Result) string {
	return joinedText(content, "text")
}

// responsesText is the text of a Responses item's content or output: the
// string, or its text parts joined.
func responsesText(content gjson.Result) string {
	return joinedText(content, "input_text", "output_text", "text")
}

// joinedText is content itself when a string, else the text of its parts
// of the types given, joined.
func joinedText(content gjson.Result, types ...string) string {
	if content.Type == gjson.String {
		return content.Str
	}
	var out []byte
	for _, p := range content.Array() {
		for _, t := range types {
			if p.Get("type").Str == t {
				out = append(out, p.Get("text").Str...)
				break
			}
		}
	}
	return string(out)
}
