package fakellm

import "net/http"

// message answers POST /v1/messages (Anthropic's Messages API).
func (c *call) message() {
	text := c.text()
	id, model := newID("msg_"), c.req.Model
	prompt, completion := c.req.promptTokens(), tokens(text)
	usage := func(output int) obj {
		return obj{{"input_tokens", prompt}, {"cache_creation_input_tokens", 0}, {"cache_read_input_tokens", 0},
			{"output_tokens", output}}
	}
	msg := func(content []any, stop any, usage obj) obj {
		return obj{{"id", id}, {"type", "message"}, {"role", "assistant"}, {"model", model}, {"content", content},
			{"stop_reason", stop}, {"stop_sequence", nil}, {"usage", usage}}
	}
	if !c.req.Stream {
		content := []any{}
		if text != "" {
			content = append(content, obj{{"type", "text"}, {"text", text}})
		}
		c.writeJSON(http.StatusOK, msg(content, "end_turn", usage(completion)))
		return
	}
	events := []event{namedEvent("message_start", obj{{"type", "message_start"}, {"message", msg([]any{}, nil, usage(1))}})}
	if text != "" {
		events = append(events,
			namedEvent("content_block_start", obj{{"type", "content_block_start"}, {"index", 0},
				{"content_block", obj{{"type", "text"}, {"text", ""}}}}),
			namedEvent("ping", obj{{"type", "ping"}}))
		for _, p := range pieces(text) {
			events = append(events, namedEvent("content_block_delta", obj{{"type", "content_block_delta"}, {"index", 0},
				{"delta", obj{{"type", "text_delta"}, {"text", p}}}}))
		}
		events = append(events, namedEvent("content_block_stop", obj{{"type", "content_block_stop"}, {"index", 0}}))
	} else {
		events = append(events, namedEvent("ping", obj{{"type", "ping"}}))
	}
	events = append(events,
		namedEvent("message_delta", obj{{"type", "message_delta"},
			{"delta", obj{{"stop_reason", "end_turn"}, {"stop_sequence", nil}}},
			{"usage", obj{{"output_tokens", completion}}}}),
		namedEvent("message_stop", obj{{"type", "message_stop"}}))
	c.stream(events)
}

// countTokens answers POST /v1/messages/count_tokens.
func (c *call) countTokens() {
	c.writeJSON(http.StatusOK, obj{{"input_tokens", c.req.promptTokens()}})
}
