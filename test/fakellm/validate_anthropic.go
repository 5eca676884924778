package fakellm

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/tidwall/gjson"
)

// Anthropic's Messages API refuses what it does not know, with messages
// in the style of its validator ("max_tokens: Field required",
// "response_format: Extra inputs are not permitted"); the checks here
// answer the same, so a request translated from OpenAI's shape that keeps
// a trace of it fails a test instead of passing. Paths in the messages
// are dotted with indexes ("messages.1.content.0.tool_use.input").

// anthropicFields are the top-level fields of a Messages request.
var anthropicFields = fieldSet("model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
	"temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
	"context_management", "output_format", "output_config", "cache_control", "inference_geo")

// anthropicCountFields are the top-level fields of a count_tokens request:
// no max_tokens, no sampling, no stream.
var anthropicCountFields = fieldSet("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
	"context_management", "output_format", "output_config", "cache_control")

// validateAnthropic checks a Messages request (count: a count_tokens
// request) as the API does; it returns the first problem found, nil for
// none.
func validateAnthropic(root gjson.Result, count bool) *apiError {
	fields := anthropicFields
	if count {
		fields = anthropicCountFields
	}
	if k := extraField(root, fields); k != "" {
		return anthropicBad(k + ": Extra inputs are not permitted")
	}
	if !count {
		if e := checkMaxTokens(root.Get("max_tokens")); e != nil {
			return e
		}
	}
	for _, check := range []func(gjson.Result) *apiError{checkAnthropicSampling, checkAnthropicSystem,
		checkAnthropicTools, checkAnthropicMessages} {
		if e := check(root); e != nil {
			return e
		}
	}
	return nil
}

// anthropicBad is a 400 in Anthropic's words.
func anthropicBad(message string) *apiError { return badRequest(message, "", "") }

// checkMaxTokens wants a whole number of at least 1.
func checkMaxTokens(v gjson.Result) *apiError {
	switch {
	case !v.Exists():
		return anthropicBad("max_tokens: Field required")
	case !isInteger(v):
		return anthropicBad("max_tokens: Input should be a valid integer")
	case v.Float() < 1:
		return anthropicBad("max_tokens: Input should be greater than or equal to 1")
	}
	return nil
}

// checkAnthropicSampling checks temperature and top_p (0 to 1), top_k (a
// whole number) and stop_sequences (a list of strings, where OpenAI's
// "stop" may be a lone string), and metadata (user_id only).
func checkAnthropicSampling(root gjson.Result) *apiError {
	for _, name := range []string{"temperature", "top_p"} {
		v := root.Get(name)
		switch {
		case !v.Exists():
		case v.Type != gjson.Number:
			return anthropicBad(name + ": Input should be a valid number")
		case v.Float() < 0:
			return anthropicBad(name + ": Input should be greater than or equal to 0")
		case v.Float() > 1:
			return anthropicBad(name + ": Input should be less than or equal to 1")
		}
	}
	if v := root.Get("top_k"); v.Exists() && (!isInteger(v) || v.Float() < 0) {
		return anthropicBad("top_k: Input should be a valid integer greater than or equal to 0")
	}
	if v := root.Get("stop_sequences"); v.Exists() {
		if !v.IsArray() {
			return anthropicBad("stop_sequences: Input should be a valid list")
		}
		for i, s := range v.Array() {
			if s.Type != gjson.String {
				return anthropicBad(fmt.Sprintf("stop_sequences.%d: Input should be a valid string", i))
			}
		}
	}
	if v := root.Get("metadata"); v.Exists() {
		if !v.IsObject() {
			return anthropicBad("metadata: Input should be a valid dictionary or object to extract fields from")
		}
		if k := extraField(v, fieldSet("user_id")); k != "" {
			return anthropicBad("metadata." + k + ": Extra inputs are not permitted")
		}
	}
	return nil
}

// checkAnthropicSystem wants system a string or a list of text blocks:
// there is no "system" role among the messages.
func checkAnthropicSystem(root gjson.Result) *apiError {
	sys := root.Get("system")
	switch {
	case !sys.Exists() || sys.Type == gjson.String:
		return nil
	case !sys.IsArray():
		return anthropicBad("system: Input should be a valid string or a list of text blocks")
	}
	for i, b := range sys.Array() {
		at := fmt.Sprintf("system.%d", i)
		if !b.IsObject() {
			return anthropicBad(at + ": Input should be a valid dictionary or object to extract fields from")
		}
		if b.Get("type").String() != "text" {
			return anthropicBad(at + ".type: Input should be 'text'")
		}
		if e := checkTextBlock(b, at, "system"); e != nil {
			return e
		}
	}
	return nil
}

// toolNamePattern is what Anthropic accepts as a tool's name.
var toolNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// serverToolType matches the versioned types of Anthropic's own tools
// ("web_search_20250305", "bash_20250124"), which need no input_schema.
var serverToolType = regexp.MustCompile(`^[a-z_]+_[0-9]{8}$`)

// checkAnthropicTools checks tools (a name and an input_schema object
// each, or a server tool's versioned type; OpenAI's {"type":"function",
// "function":…} is refused) and tool_choice (an object whose type is auto,
// any, tool or none; tool names one of the tools).
func checkAnthropicTools(root gjson.Result) *apiError {
	tools := root.Get("tools")
	names := map[string]bool{}
	if tools.Exists() {
		if !tools.IsArray() {
			return anthropicBad("tools: Input should be a valid list")
		}
		for i, tool := range tools.Array() {
			at := fmt.Sprintf("tools.%d", i)
			if !tool.IsObject() {
				return anthropicBad(at + ": Input should be a valid dictionary or object to extract fields from")
			}
			typ := tool.Get("type")
			if typ.Exists() && typ.String() != "custom" {
				if !serverToolType.MatchString(typ.String()) {
					return anthropicBad(fmt.Sprintf("%s: Input tag '%s' found using 'type' does not match any of the "+
						"expected tags: 'custom' or a server tool's versioned type such as 'web_search_20250305'", at, typ.String()))
				}
				names[tool.Get("name").String()] = true
				continue
			}
			at += ".custom"
			name := tool.Get("name")
			switch {
			case !name.Exists():
				return anthropicBad(at + ".name: Field required")
			case name.Type != gjson.String || !toolNamePattern.MatchString(name.Str):
				return anthropicBad(at + ".name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
			case names[name.Str]:
				return anthropicBad("tools: Tool names must be unique.")
			}
			names[name.Str] = true
			schema := tool.Get("input_schema")
			switch {
			case !schema.Exists():
				return anthropicBad(at + ".input_schema: Field required")
			case !schema.IsObject():
				return anthropicBad(at + ".input_schema: Input should be a valid dictionary")
			case !schema.Get("type").Exists():
				return anthropicBad(at + ".input_schema.type: Field required")
			case schema.Get("type").String() != "object":
				return anthropicBad(at + ".input_schema.type: Input should be 'object'")
			}
		}
	}

	choice := root.Get("tool_choice")
	if !choice.Exists() {
		return nil
	}
	if !choice.IsObject() {
		return anthropicBad("tool_choice: Input should be a valid dictionary or object to extract fields from")
	}
	typ := choice.Get("type")
	switch typ.String() {
	case "auto", "none":
	case "any":
		if len(names) == 0 {
			return anthropicBad("tool_choice: tool_choice may only be specified while providing tools")
		}
	case "tool":
		name := choice.Get("name")
		switch {
		case !name.Exists():
			return anthropicBad("tool_choice.tool.name: Field required")
		case !names[name.String()]:
			return anthropicBad(fmt.Sprintf("tool_choice.tool.name: tool '%s' is not among the tools provided", name.String()))
		}
	default:
		if !typ.Exists() {
			return anthropicBad("tool_choice: Unable to extract tag using discriminator 'type'")
		}
		return anthropicBad(fmt.Sprintf("tool_choice: Input tag '%s' found using 'type' does not match any of the "+
			"expected tags: 'auto', 'any', 'tool', 'none'", typ.String()))
	}
	return nil
}

// turn is what the checks across messages need of one message.
type turn struct {
	role    string
	uses    []string  // the ids of its tool_use blocks, in order
	results []toolRef // its tool_result blocks
}

// toolRef is a tool_result block: the tool_use id it answers, and its
// index in the message's content.
type toolRef struct {
	id    string
	index int
}

// checkAnthropicMessages checks the messages one by one (checkTurn), that
// they start with the user's and alternate, and that tool_use and
// tool_result blocks pair up across neighbouring turns.
func checkAnthropicMessages(root gjson.Result) *apiError {
	msgs := root.Get("messages")
	switch {
	case !msgs.Exists():
		return anthropicBad("messages: Field required")
	case !msgs.IsArray():
		return anthropicBad("messages: Input should be a valid list")
	}
	list := msgs.Array()
	if len(list) == 0 {
		return anthropicBad("messages: at least one message is required")
	}
	turns := make([]turn, len(list))
	for i, m := range list {
		t, e := checkTurn(i, m, i == len(list)-1)
		if e != nil {
			return e
		}
		switch {
		case i == 0 && t.role != "user":
			return anthropicBad(`messages: first message must use the "user" role`)
		case i > 0 && t.role == turns[i-1].role:
			return anthropicBad(fmt.Sprintf(`messages: roles must alternate between "user" and "assistant", `+
				`but found multiple "%s" roles in a row`, t.role))
		}
		turns[i] = t
	}
	return checkToolPairs(turns)
}

// checkTurn checks message i: a role of user or assistant, no other field
// than role and content, and content a non-empty string or a non-empty
// list of known blocks (an empty one only as the final assistant turn).
func checkTurn(i int, m gjson.Result, last bool) (turn, *apiError) {
	at := fmt.Sprintf("messages.%d", i)
	if !m.IsObject() {
		return turn{}, anthropicBad(at + ": Input should be a valid dictionary or object to extract fields from")
	}
	if k := extraField(m, fieldSet("role", "content")); k != "" {
		return turn{}, anthropicBad(at + "." + k + ": Extra inputs are not permitted")
	}
	role := m.Get("role")
	switch {
	case !role.Exists():
		return turn{}, anthropicBad(at + ".role: Field required")
	case role.String() == "system":
		return turn{}, anthropicBad(`messages: Unexpected role "system". The Messages API accepts a top-level ` +
			"`system` parameter, not \"system\" as an input message role.")
	case role.Type != gjson.String || (role.Str != "user" && role.Str != "assistant"):
		return turn{}, anthropicBad(at + ".role: Input should be 'user' or 'assistant'")
	}
	t := turn{role: role.Str}
	emptyOK := last && t.role == "assistant"
	nonEmpty := anthropicBad(at + ": all messages must have non-empty content except for the optional final assistant message")
	content := m.Get("content")
	switch {
	case !content.Exists():
		return t, anthropicBad(at + ".content: Field required")
	case content.Type == gjson.String:
		if content.Str == "" && !emptyOK {
			return t, nonEmpty
		}
		return t, nil
	case !content.IsArray():
		return t, anthropicBad(at + ".content: Input should be a valid string or a list of content blocks")
	}
	blocks := content.Array()
	if len(blocks) == 0 && !emptyOK {
		return t, nonEmpty
	}
	for j, b := range blocks {
		if e := checkBlock(&t, fmt.Sprintf("%s.content.%d", at, j), j, b); e != nil {
			return t, e
		}
	}
	return t, nil
}

// checkToolPairs wants every tool_result to answer a tool_use of the turn
// just before, and every tool_use of an assistant turn answered by a
// tool_result in the next turn, when there is one (a conversation may
// end on the assistant's tool_use).
func checkToolPairs(turns []turn) *apiError {
	for i, t := range turns {
		if len(t.results) > 0 {
			asked := map[string]bool{}
			if i > 0 {
				for _, id := range turns[i-1].uses {
					asked[id] = true
				}
			}
			for _, r := range t.results {
				if !asked[r.id] {
					return anthropicBad(fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in "+
						"`tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` "+
						"block in the previous message.", i, r.index, r.id))
				}
			}
		}
		if len(t.uses) == 0 || i+1 == len(turns) {
			continue
		}
		answered := map[string]bool{}
		for _, r := range turns[i+1].results {
			answered[r.id] = true
		}
		var missing []string
		for _, id := range t.uses {
			if !answered[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return anthropicBad(fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks "+
				"immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the "+
				"next message.", i, strings.Join(missing, ", ")))
		}
	}
	return nil
}

// isInteger tells whether v is a number without a fractional part.
func isInteger(v gjson.Result) bool {
	if v.Type != gjson.Number {
		return false
	}
	f := v.Float()
	return !math.IsInf(f, 0) && f == math.Trunc(f)
}
