package fakellm

import (
	"encoding/json"
	"net/http"
)

// message answers POST /v1/messages (Anthropic's Messages API): a text
// block, or a tool_use block when the request calls a tool.
func (c *call) message() {
	id, model, toolID := newID("msg_"), c.req.Model, newID("toolu_")
	var text string
	stop := "end_turn"
	if c.callsTool() {
		stop = "tool_use"
	} else {
		text = c.text()
	}
	completion := tokens(text)
	if c.callsTool() {
		completion = tokens(c.tool.name) + tokens(c.tool.args)
	}
	usage := func(output int) obj {
		return obj{{"input_tokens", c.prompt}, {"cache_creation_input_tokens", 0}, {"cache_read_input_tokens", 0},
			{"output_tokens", output}}
	}
	msg := func(content []any, stop any, usage obj) obj {
		return obj{{"id", id}, {"type", "message"}, {"role", "assistant"}, {"model", model}, {"content", content},
			{"stop_reason", stop}, {"stop_sequence", nil}, {"usage", usage}}
	}
	toolUse := func(input json.RawMessage) obj {
		return obj{{"type", "tool_use"}, {"id", toolID}, {"name", c.tool.name}, {"input", input}}
	}
	if !c.req.Stream {
		content := []any{}
		switch {
		case c.callsTool():
			content = append(content, toolUse(json.RawMessage(c.tool.args)))
		case text != "":
			content = append(content, obj{{"type", "text"}, {"text", text}})
		}
		c.writeJSON(http.StatusOK, msg(content, stop, usage(completion)))
		return
	}
	events := []event{namedEvent("message_start", obj{{"type", "message_start"}, {"message", msg([]any{}, nil, usage(1))}})}
	block := func(start obj, deltas []obj) {
		events = append(events,
			namedEvent("content_block_start", obj{{"type", "content_block_start"}, {"index", 0}, {"content_block", start}}),
			namedEvent("ping", obj{{"type", "ping"}}))
		for _, d := range deltas {
			events = append(events, namedEvent("content_block_delta", obj{{"type", "content_block_delta"}, {"index", 0},
				{"delta", d}}))
		}
		events = append(events, namedEvent("content_block_stop", obj{{"type", "content_block_stop"}, {"index", 0}}))
	}
	switch {
	case c.callsTool():
		var deltas []obj
		for _, p := range pieces(c.tool.args) {
			deltas = append(deltas, obj{{"type", "input_json_delta"}, {"partial_json", p}})
		}
		block(toolUse(json.RawMessage("{}")), deltas)
	case text != "":
		var deltas []obj
		for _, p := range pieces(text) {
			deltas = append(deltas, obj{{"type", "text_delta"}, {"text", p}})
		}
		block(obj{{"type", "text"}, {"text", ""}}, deltas)
	default:
		events = append(events, namedEvent("ping", obj{{"type", "ping"}}))
	}
	events = append(events,
		namedEvent("message_delta", obj{{"type", "message_delta"},
			{"delta", obj{{"stop_reason", stop}, {"stop_sequence", nil}}},
			{"usage", obj{{"output_tokens", completion}}}}),
		namedEvent("message_stop", obj{{"type", "message_stop"}}))
	c.stream(events)
}

// countTokens answers POST /v1/messages/count_tokens.
func (c *call) countTokens() {
	c.writeJSON(http.StatusOK, obj{{"input_tokens", c.prompt}})
}
