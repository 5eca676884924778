package fakellm

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// OpenAI's Chat Completions API refuses what it does not know, with
// messages naming the parameter ("Unrecognized request argument supplied:
// top_k", "Missing required parameter: 'messages[1].tool_call_id'.") and
// an error "param" and "code"; the checks here answer the same, so a
// request translated from Anthropic's shape that keeps a trace of it fails
// a test instead of passing.

// openAIChatFields are the top-level fields of a chat completion request.
var openAIChatFields = fieldSet("model", "messages", "audio", "frequency_penalty", "function_call", "functions",
	"logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n",
	"parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_retention",
	"reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
	"stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
	"web_search_options")

// openAIRoles are the roles of chat messages.
var openAIRoles = []string{"system", "assistant", "user", "function", "tool", "developer"}

// openAIParts are the content part types, and those each role may send.
var (
	openAIParts     = []string{"text", "image_url", "input_audio", "refusal", "audio", "file"}
	openAIRoleParts = map[string][]string{
		"system": {"text"}, "developer": {"text"}, "tool": {"text"}, "function": {"text"},
		"user": {"text", "image_url", "input_audio", "file"}, "assistant": {"text", "refusal"},
	}
)

// validateOpenAIChat checks a chat completion request as the API does; it
// returns the first problem found, nil for none.
func validateOpenAIChat(root gjson.Result) *apiError {
	if k := extraField(root, openAIChatFields); k != "" {
		return badRequest("Unrecognized request argument supplied: "+k, "", "")
	}
	for _, check := range []func(gjson.Result) *apiError{checkOpenAISampling, checkOpenAITools, checkOpenAIMessages,
		checkJSONWord} {
		if e := check(root); e != nil {
			return e
		}
	}
	return nil
}

// missing is OpenAI's answer to a required parameter left out.
func missing(param string) *apiError {
	return badRequest(fmt.Sprintf("Missing required parameter: '%s'.", param), param, "missing_required_parameter")
}

// invalidType is OpenAI's answer to a parameter of the wrong type.
func invalidType(param, want string, got gjson.Result) *apiError {
	return badRequest(fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, jsonType(got)),
		param, "invalid_type")
}

// invalidValue is OpenAI's answer to a value outside those supported.
func invalidValue(param string, got gjson.Result, supported ...string) *apiError {
	return badRequest(fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", got.String(), oneOf(supported...)),
		param, "invalid_value")
}

// emptyArray is OpenAI's answer to a list that must not be empty.
func emptyArray(param string) *apiError {
	return badRequest(fmt.Sprintf("Invalid '%s': empty array. Expected an array with minimum length 1, but got an "+
		"empty array instead.", param), param, "empty_array")
}

// checkOpenAISampling checks temperature (0 to 2), top_p (0 to 1) and
// stop (a string or up to 4 of them; Anthropic's stop_sequences may hold
// more).
func checkOpenAISampling(root gjson.Result) *apiError {
	for _, r := range []struct {
		name string
		max  float64
	}{{"temperature", 2}, {"top_p", 1}} {
		v := root.Get(r.name)
		switch {
		case !v.Exists() || v.Type == gjson.Null:
		case v.Type != gjson.Number:
			return invalidType(r.name, "a decimal", v)
		case v.Float() < 0:
			return badRequest(fmt.Sprintf("Invalid '%s': decimal below minimum value. Expected a value >= 0, but got "+
				"%s instead.", r.name, v.Raw), r.name, "decimal_below_min_value")
		case v.Float() > r.max:
			return badRequest(fmt.Sprintf("Invalid '%s': decimal above maximum value. Expected a value <= %g, but got "+
				"%s instead.", r.name, r.max, v.Raw), r.name, "decimal_above_max_value")
		}
	}
	stop := root.Get("stop")
	switch {
	case !stop.Exists() || stop.Type == gjson.Null || stop.Type == gjson.String:
	case !stop.IsArray():
		return invalidType("stop", "one of a string or array of strings", stop)
	case len(stop.Array()) > 4:
		return badRequest(fmt.Sprintf("Invalid 'stop': array too long. Expected an array with maximum length 4, but "+
			"got an array with length %d instead.", len(stop.Array())), "stop", "array_above_max_length")
	}
	return nil
}

// openAIToolName is what OpenAI accepts as a function's name.
var openAIToolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// checkOpenAITools checks tools ({"type":"function","function":{"name",
// "parameters"}} each; Anthropic's {"name","input_schema"} is refused),
// tool_choice ("none", "auto", "required" or a function of tools) and
// that neither tool_choice nor parallel_tool_calls come without tools.
func checkOpenAITools(root gjson.Result) *apiError {
	tools := root.Get("tools")
	names := map[string]bool{}
	if tools.Exists() && tools.Type != gjson.Null {
		if !tools.IsArray() {
			return invalidType("tools", "an array of objects", tools)
		}
		for i, t := range tools.Array() {
			at := fmt.Sprintf("tools[%d]", i)
			if !t.IsObject() {
				return invalidType(at, "an object", t)
			}
			typ := t.Get("type")
			switch {
			case !typ.Exists():
				return missing(at + ".type")
			case typ.String() == "custom":
				names[t.Get("custom.name").String()] = true
				continue
			case typ.String() != "function":
				return invalidValue(at+".type", typ, "function", "custom")
			}
			fn := t.Get("function")
			switch {
			case !fn.Exists():
				return missing(at + ".function")
			case !fn.IsObject():
				return invalidType(at+".function", "an object", fn)
			}
			name := fn.Get("name")
			switch {
			case !name.Exists():
				return missing(at + ".function.name")
			case name.Type != gjson.String:
				return invalidType(at+".function.name", "a string", name)
			case !openAIToolName.MatchString(name.Str):
				return badRequest(fmt.Sprintf("Invalid '%s.function.name': string does not match pattern. Expected a "+
					"string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", at), at+".function.name", "invalid_value")
			}
			names[name.Str] = true
			if p := fn.Get("parameters"); p.Exists() && !p.IsObject() {
				return invalidType(at+".function.parameters", "an object", p)
			}
		}
	}
	for _, name := range []string{"tool_choice", "parallel_tool_calls"} {
		if v := root.Get(name); v.Exists() && v.Type != gjson.Null && len(names) == 0 {
			return badRequest(fmt.Sprintf("Invalid value for '%s': '%s' is only allowed when 'tools' are specified.",
				name, name), name, "")
		}
	}
	choice := root.Get("tool_choice")
	switch {
	case !choice.Exists() || choice.Type == gjson.Null:
	case choice.Type == gjson.String:
		if choice.Str != "none" && choice.Str != "auto" && choice.Str != "required" {
			return invalidValue("tool_choice", choice, "none", "auto", "required")
		}
	case !choice.IsObject():
		return invalidType("tool_choice", "one of a string or object", choice)
	default:
		switch typ := choice.Get("type"); typ.String() {
		case "allowed_tools", "custom":
		case "function":
			name := choice.Get("function.name")
			if !name.Exists() {
				return missing("tool_choice.function.name")
			}
			if !names[name.String()] {
				return badRequest(fmt.Sprintf("Invalid value for 'tool_choice': tool choice '%s' not found in 'tools' "+
					"parameter.", name.String()), "tool_choice", "")
			}
		default:
			if !typ.Exists() {
				return missing("tool_choice.type")
			}
			return invalidValue("tool_choice.type", typ, "function", "allowed_tools", "custom")
		}
	}
	return nil
}

// pendingCalls are the tool calls of an assistant message, while the tool
// messages after it answer them.
type pendingCalls struct {
	index    int             // the assistant message's
	ids      []string        // its tool calls' ids, in order
	asked    map[string]bool // the same, as a set
	answered map[string]bool
}

// unanswered lists the ids no tool message answered.
func (p *pendingCalls) unanswered() []string {
	var out []string
	for _, id := range p.ids {
		if !p.answered[id] {
			out = append(out, id)
		}
	}
	return out
}

// checkOpenAIMessages checks each message (role, content, tool calls) and
// that tool messages answer the tool calls of the assistant message just
// before them (other tool messages aside), every one of them when anything
// follows that assistant message.
func checkOpenAIMessages(root gjson.Result) *apiError {
	msgs := root.Get("messages")
	switch {
	case !msgs.Exists():
		return missing("messages")
	case !msgs.IsArray():
		return invalidType("messages", "an array of objects", msgs)
	}
	list := msgs.Array()
	if len(list) == 0 {
		return emptyArray("messages")
	}
	var open *pendingCalls
	for i, m := range list {
		at := fmt.Sprintf("messages[%d]", i)
		if !m.IsObject() {
			return invalidType(at, "an object", m)
		}
		role := m.Get("role")
		if !role.Exists() {
			return missing(at + ".role")
		}
		if _, ok := openAIRoleParts[role.String()]; !ok {
			return invalidValue(at+".role", role, openAIRoles...)
		}
		if open != nil && role.Str != "tool" {
			if ids := open.unanswered(); len(ids) > 0 {
				return unansweredCalls(open.index, ids)
			}
			open = nil
		}
		calls, e := checkToolCalls(at, m)
		if e != nil {
			return e
		}
		if e := checkOpenAIContent(at, role.Str, m, len(calls) > 0 || m.Get("function_call").Exists()); e != nil {
			return e
		}
		switch role.Str {
		case "assistant":
			if len(calls) > 0 {
				open = &pendingCalls{index: i, ids: calls, asked: fieldSet(calls...), answered: map[string]bool{}}
			}
		case "tool":
			id := m.Get("tool_call_id")
			switch {
			case !id.Exists():
				return missing(at + ".tool_call_id")
			case open == nil:
				return badRequest("Invalid parameter: messages with role 'tool' must be a response to a preceeding "+
					"message with 'tool_calls'.", fmt.Sprintf("messages.[%d].role", i), "")
			case !open.asked[id.String()]:
				return badRequest(fmt.Sprintf("Invalid parameter: 'tool_call_id' of '%s' not found in 'tool_calls' of "+
					"previous message.", id.String()), fmt.Sprintf("messages.[%d].tool_call_id", i), "")
			}
			open.answered[id.String()] = true
		}
	}
	if open != nil && open.index < len(list)-1 {
		if ids := open.unanswered(); len(ids) > 0 {
			return unansweredCalls(open.index, ids)
		}
	}
	return nil
}

// unansweredCalls is OpenAI's answer to tool calls of message i that no
// tool message answers.
func unansweredCalls(i int, ids []string) *apiError {
	return badRequest("An assistant message with 'tool_calls' must be followed by tool messages responding to each "+
		"'tool_call_id'. The following tool_call_ids did not have response messages: "+strings.Join(ids, ", "),
		fmt.Sprintf("messages.[%d].role", i), "")
}

// checkToolCalls checks the tool_calls of message m (at is its path) and
// returns their ids: each needs an id, type "function" and a function
// with a name and arguments as a string of JSON (Anthropic's input is an
// object: a translation must encode it).
func checkToolCalls(at string, m gjson.Result) ([]string, *apiError) {
	tc := m.Get("tool_calls")
	switch {
	case !tc.Exists() || tc.Type == gjson.Null:
		return nil, nil
	case m.Get("role").Str != "assistant":
		return nil, badRequest(fmt.Sprintf("Invalid parameter: only messages with role 'assistant' can have "+
			"'tool_calls', but '%s' has role '%s'.", at, m.Get("role").Str), at+".tool_calls", "")
	case !tc.IsArray():
		return nil, invalidType(at+".tool_calls", "an array of objects", tc)
	}
	list := tc.Array()
	if len(list) == 0 {
		return nil, emptyArray(at + ".tool_calls")
	}
	ids := make([]string, 0, len(list))
	for k, call := range list {
		cat := fmt.Sprintf("%s.tool_calls[%d]", at, k)
		if !call.IsObject() {
			return nil, invalidType(cat, "an object", call)
		}
		for _, field := range []string{"id", "type", "function", "function.name", "function.arguments"} {
			v := call.Get(field)
			switch {
			case !v.Exists():
				return nil, missing(cat + "." + field)
			case field == "function" && !v.IsObject():
				return nil, invalidType(cat+"."+field, "an object", v)
			case field != "function" && v.Type != gjson.String:
				return nil, invalidType(cat+"."+field, "a string", v)
			case field == "type" && v.Str != "function":
				return nil, invalidValue(cat+".type", v, "function")
			}
		}
		ids = append(ids, call.Get("id").Str)
	}
	return ids, nil
}

// checkOpenAIContent checks the content of message m with role: required
// (for an assistant message unless it calls tools), a string or a
// non-empty list of parts of the types the role may send.
func checkOpenAIContent(at, role string, m gjson.Result, callsTools bool) *apiError {
	content := m.Get("content")
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		if role == "assistant" && callsTools {
			return nil
		}
		return missing(at + ".content")
	case content.Type == gjson.String:
		return nil
	case !content.IsArray():
		return invalidType(at+".content", "one of a string or array of objects", content)
	}
	parts := content.Array()
	if len(parts) == 0 {
		return emptyArray(at + ".content")
	}
	for k, p := range parts {
		pat := fmt.Sprintf("%s.content[%d]", at, k)
		if !p.IsObject() {
			return invalidType(pat, "an object", p)
		}
		typ := p.Get("type")
		switch {
		case !typ.Exists():
			return missing(pat + ".type")
		case !slices.Contains(openAIParts, typ.String()):
			return invalidValue(pat+".type", typ, openAIParts...)
		case !slices.Contains(openAIRoleParts[role], typ.String()):
			return invalidValue(pat+".type", typ, openAIRoleParts[role]...)
		}
		var need []string
		switch typ.Str {
		case "text":
			need = []string{"text"}
		case "refusal":
			need = []string{"refusal"}
		case "image_url":
			need = []string{"image_url", "image_url.url"}
		case "input_audio":
			need = []string{"input_audio", "input_audio.data", "input_audio.format"}
		case "file":
			need = []string{"file"}
		}
		for _, field := range need {
			if !p.Get(field).Exists() {
				return missing(pat + "." + field)
			}
		}
	}
	return nil
}

// checkJSONWord: with response_format json_object, the messages must say
// "json" somewhere, as OpenAI requires.
func checkJSONWord(root gjson.Result) *apiError {
	if root.Get("response_format.type").String() != "json_object" {
		return nil
	}
	for _, m := range root.Get("messages").Array() {
		if strings.Contains(strings.ToLower(openAIText(m.Get("content"))), "json") {
			return nil
		}
	}
	return badRequest("'messages' must contain the word 'json' in some form, to use 'response_format' of type "+
		"'json_object'.", "messages", "")
}
