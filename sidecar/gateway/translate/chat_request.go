package translate

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// JSON mode has no Anthropic switch: it becomes an instruction at the end
// of the system prompt. The provider does not enforce it; a chain that
// must get JSON sets degrade_on invalid_json, which checks the answer.
const (
	jsonObjectInstruction = "Respond with a single JSON object and nothing else."
	jsonSchemaInstruction = jsonObjectInstruction + " The object must conform to this JSON schema"
)

// conversationStart is the user turn put before a conversation whose first
// turn is the assistant's: Anthropic wants the user to speak first.
const conversationStart = "(conversation start)"

// chatToMessagesRequest translates an OpenAI Chat Completions request into
// an Anthropic Messages request. docs/translation.md lists every field's
// fate.
func chatToMessagesRequest(body []byte, o Options) ([]byte, error) {
	obj, err := readObject(body, "request")
	if err != nil {
		return nil, err
	}
	root := indexTop(obj)
	if err := refuseChatFields(root); err != nil {
		return nil, err
	}
	system, turns, err := chatConversation(root.Get("messages"))
	if err != nil {
		return nil, err
	}
	instruction, err := jsonInstruction(root.Get("response_format"))
	if err != nil {
		return nil, err
	}
	if instruction != "" {
		system = append(system, amBlock{Type: "text", Text: instruction})
	}
	out := amRequest{Model: raw(root.Get("model")), Messages: turns}
	if len(system) > 0 {
		out.System = textOrBlocks(system)
	}
	if out.MaxTokens, err = chatMaxTokens(root, o); err != nil {
		return nil, err
	}
	if user := chatUser(root); user != "" {
		out.Metadata = &amMetadata{UserID: user}
	}
	if out.StopSequences, err = chatStop(root.Get("stop")); err != nil {
		return nil, err
	}
	if s := root.Get("stream"); s.IsBool() {
		b := s.Bool()
		out.Stream = &b
	}
	// Anthropic's newer models refuse temperature and top_p together
	// ("alter one or the other, not both"): the temperature is kept.
	if out.Temperature = temperature(root.Get("temperature")); out.Temperature == nil {
		out.TopP = raw(root.Get("top_p"))
	}
	if out.Tools, err = chatTools(root.Get("tools")); err != nil {
		return nil, err
	}
	if out.ToolChoice, err = chatToolChoice(root.Get("tool_choice")); err != nil {
		return nil, err
	}
	if root.Get("parallel_tool_calls").Type == gjson.False && len(out.Tools) > 0 {
		if out.ToolChoice == nil {
			out.ToolChoice = &amToolChoice{Type: "auto"}
		}
		if out.ToolChoice.Type != "none" {
			out.ToolChoice.DisableParallelToolUse = true
		}
	}
	return encode(out)
}

// refuseChatFields refuses the top-level fields Anthropic cannot honour.
func refuseChatFields(root topFields) error {
	if n := root.Get("n"); n.Type == gjson.Number && n.Num > 1 {
		return untranslatable(`"n": %s asks for several choices; Anthropic answers with one`, n.Raw)
	}
	if root.Get("logprobs").Type == gjson.True {
		return untranslatable(`"logprobs": true asks for token log probabilities; Anthropic does not give them`)
	}
	if tl := root.Get("top_logprobs"); tl.Type == gjson.Number && tl.Num > 0 {
		return untranslatable(`"top_logprobs": %s asks for token log probabilities; Anthropic does not give them`, tl.Raw)
	}
	if present(root.Get("audio")) {
		return untranslatable(`"audio" asks for a spoken answer; Anthropic answers in text only`)
	}
	audio := false
	root.Get("modalities").ForEach(func(_, m gjson.Result) bool {
		audio = m.Str == "audio"
		return !audio
	})
	if audio {
		return untranslatable(`"modalities" contains "audio"; Anthropic answers in text only`)
	}
	if present(root.Get("functions")) || present(root.Get("function_call")) {
		return untranslatable(`"functions" and "function_call" are OpenAI's legacy function calling; send "tools" and "tool_choice" instead`)
	}
	if lb := root.Get("logit_bias"); hasKeys(lb) {
		return untranslatable(`"logit_bias" changes token probabilities; Anthropic has no such setting`)
	}
	if present(root.Get("web_search_options")) {
		return untranslatable(`"web_search_options" asks OpenAI to search the web; Anthropic's web search is a server tool the chat shape cannot carry`)
	}
	return nil
}

// chatMaxTokens is the Anthropic max_tokens (required there): the agent's
// max_completion_tokens, else its max_tokens, else the model's cap.
func chatMaxTokens(root topFields, o Options) (json.RawMessage, error) {
	for _, name := range []string{"max_completion_tokens", "max_tokens"} {
		v := root.Get(name)
		if !present(v) {
			continue
		}
		if v.Type != gjson.Number {
			return nil, fmt.Errorf("%q is %s; it must be a whole number of tokens", name, v.Raw)
		}
		return raw(v), nil
	}
	return json.RawMessage(fmt.Sprint(o.maxTokens())), nil
}

// chatStop is the stop_sequences of an OpenAI "stop": a string or an array
// of strings. Empty strings, which stop nothing, are left out; a sequence
// of whitespace only is refused, as Anthropic refuses it.
func chatStop(stop gjson.Result) ([]string, error) {
	if !present(stop) {
		return nil, nil
	}
	var stops []gjson.Result
	switch {
	case stop.Type == gjson.String:
		stops = []gjson.Result{stop}
	case stop.IsArray():
		stops = stop.Array()
	default:
		return nil, fmt.Errorf(`"stop" must be a string or an array of strings`)
	}
	var out []string
	for _, s := range stops {
		switch {
		case s.Type != gjson.String:
			return nil, fmt.Errorf(`"stop" must be a string or an array of strings; it holds %s`, s.Raw)
		case s.Str == "":
		case strings.TrimSpace(s.Str) == "":
			return nil, untranslatable(`"stop" holds %q, a sequence of whitespace only; Anthropic refuses those`, s.Str)
		default:
			out = append(out, s.Str)
		}
	}
	return out, nil
}

// chatUser is the end user's id for Anthropic's metadata.user_id: the
// request's "user", or its successor "safety_identifier".
func chatUser(root topFields) string {
	if user := root.Get("user"); user.Type == gjson.String && user.Str != "" {
		return user.Str
	}
	return root.Get("safety_identifier").Str
}

// temperature passes a temperature through, lowered to 1 (Anthropic's
// maximum) from OpenAI's range that goes up to 2.
func temperature(t gjson.Result) json.RawMessage {
	if t.Type == gjson.Number && t.Num > 1 {
		return json.RawMessage("1")
	}
	return raw(t)
}

// jsonInstruction is the system prompt instruction standing for an OpenAI
// response_format, "" for text or none.
func jsonInstruction(format gjson.Result) (string, error) {
	if !present(format) {
		return "", nil
	}
	switch t := format.Get("type").Str; t {
	case "text":
		return "", nil
	case "json_object":
		return jsonObjectInstruction, nil
	case "json_schema":
		schema := format.Get("json_schema.schema")
		if !present(schema) {
			return jsonObjectInstruction, nil
		}
		named := ""
		if name := format.Get("json_schema.name").Str; name != "" {
			named = fmt.Sprintf(" (named %q)", name)
		}
		return jsonSchemaInstruction + named + ":\n" + inputArguments(schema), nil
	default:
		return "", untranslatable(`"response_format" of type %q has no Anthropic equivalent; the types "text", "json_object" and "json_schema" can be translated`, t)
	}
}

// chatTools translates OpenAI function tools into Anthropic tools.
func chatTools(tools gjson.Result) ([]amTool, error) {
	if !present(tools) {
		return nil, nil
	}
	if !tools.IsArray() {
		return nil, fmt.Errorf(`"tools" must be an array of tools`)
	}
	var out []amTool
	var err error
	i := -1
	tools.ForEach(func(_, t gjson.Result) bool {
		i++
		if typ := t.Get("type"); typ.Exists() && typ.Str != "function" {
			err = untranslatable(`tools[%d] is of type %q; only "function" tools can be sent to Anthropic`, i, typ.String())
			return false
		}
		fn := t.Get("function")
		params := fn.Get("parameters")
		schema := raw(params)
		if schema == nil || (params.IsObject() && !hasKeys(params)) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, amTool{Name: fn.Get("name").Str, Description: fn.Get("description").Str, InputSchema: schema})
		return true
	})
	return out, err
}

// chatToolChoice translates an OpenAI tool_choice.
func chatToolChoice(choice gjson.Result) (*amToolChoice, error) {
	if !present(choice) {
		return nil, nil
	}
	if choice.Type == gjson.String {
		switch choice.Str {
		case "auto":
			return &amToolChoice{Type: "auto"}, nil
		case "required":
			return &amToolChoice{Type: "any"}, nil
		case "none":
			return &amToolChoice{Type: "none"}, nil
		}
		return nil, fmt.Errorf(`"tool_choice" is %q; it must be "auto", "required", "none" or a named function`, choice.Str)
	}
	switch t := choice.Get("type").Str; t {
	case "function":
		return &amToolChoice{Type: "tool", Name: choice.Get("function.name").Str}, nil
	default:
		return nil, untranslatable(`"tool_choice" of type %q has no Anthropic equivalent; "auto", "required", "none" and a named function can be translated`, t)
	}
}

// hasKeys reports whether v is an object with at least one key.
func hasKeys(v gjson.Result) bool {
	found := false
	if v.IsObject() {
		v.ForEach(func(_, _ gjson.Result) bool {
			found = true
			return false
		})
	}
	return found
}
