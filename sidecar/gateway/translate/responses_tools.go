package translate

// The function tools and tool_choice of a Responses request → Anthropic's.

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
)

// responsesTool is an Anthropic tool definition.
type responsesTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// responsesToolChoice is Anthropic's tool_choice.
type responsesToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// responsesTools translates the function tools and tool_choice.
func responsesTools(req gjson.Result, out *responsesMessagesRequest) error {
	tools := req.Get("tools")
	if tools.Exists() && tools.Type != gjson.Null && !tools.IsArray() {
		return errors.New(`"tools" is not an array; send a list of tools`)
	}
	var err error
	tools.ForEach(func(_, t gjson.Result) bool {
		var tool responsesTool
		tool, err = responsesFunctionTool(t, len(out.Tools))
		if err == nil {
			out.Tools = append(out.Tools, tool)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	choice, err := responsesChoice(req.Get("tool_choice"), out.Tools)
	if err != nil {
		return err
	}
	if len(out.Tools) == 0 {
		return nil
	}
	if req.Get("parallel_tool_calls").Type == gjson.False {
		if choice == nil {
			choice = &responsesToolChoice{Type: "auto"}
		}
		if choice.Type != "none" {
			choice.DisableParallelToolUse = true
		}
	}
	out.ToolChoice = choice
	return nil
}

// responsesFunctionTool translates tool number i, which must be a
// function tool.
func responsesFunctionTool(t gjson.Result, i int) (responsesTool, error) {
	typ := t.Get("type")
	if typ.Str != "function" {
		if typ.Type != gjson.String {
			return responsesTool{}, fmt.Errorf(`"tools[%d]" has no "type"; a function tool is {"type": "function", "name": …}`, i)
		}
		return responsesTool{}, untranslatable(`"tools[%d]" is a %q tool, which runs at OpenAI; an Anthropic model can call function tools only`, i, responsesClip(typ.Str))
	}
	name := t.Get("name")
	if name.Type != gjson.String || name.Str == "" {
		return responsesTool{}, fmt.Errorf(`"tools[%d]" has no "name"; name the function`, i)
	}
	tool := responsesTool{Name: name.Str, Description: t.Get("description").Str}
	switch p := t.Get("parameters"); {
	case !p.Exists() || p.Type == gjson.Null:
		tool.InputSchema = json.RawMessage(`{"type":"object","properties":{}}`)
	case p.IsObject():
		tool.InputSchema = json.RawMessage(p.Raw)
	default:
		return responsesTool{}, fmt.Errorf(`"tools[%d].parameters" is not an object; send the function's JSON schema`, i)
	}
	return tool, nil
}

// responsesChoice translates tool_choice; nil means Anthropic's default
// (auto).
func responsesChoice(c gjson.Result, tools []responsesTool) (*responsesToolChoice, error) {
	if !c.Exists() || c.Type == gjson.Null {
		return nil, nil
	}
	var choice *responsesToolChoice
	switch {
	case c.Type == gjson.String && c.Str == "auto":
		choice = &responsesToolChoice{Type: "auto"}
	case c.Type == gjson.String && c.Str == "none":
		choice = &responsesToolChoice{Type: "none"}
	case c.Type == gjson.String && c.Str == "required":
		choice = &responsesToolChoice{Type: "any"}
	case c.IsObject() && c.Get("type").Str == "function":
		name := c.Get("name").Str
		found := false
		for _, t := range tools {
			found = found || t.Name == name
		}
		if !found {
			return nil, fmt.Errorf(`"tool_choice" names the function %q, which is not in "tools"`, responsesClip(name))
		}
		choice = &responsesToolChoice{Type: "tool", Name: name}
	case c.IsObject():
		return nil, untranslatable(`"tool_choice" of type %s chooses among OpenAI's own or allowed tools; only "auto", "none", "required" and {"type": "function", "name": …} translate`, responsesClip(c.Get("type").Raw))
	default:
		return nil, errors.New(`"tool_choice" is not "auto", "none", "required" or {"type": "function", "name": …}`)
	}
	if len(tools) == 0 && (choice.Type == "any" || choice.Type == "tool") {
		return nil, errors.New(`"tool_choice" asks for a tool call but the request has no "tools"`)
	}
	return choice, nil
}
