package fakellm

import (
	"net/http"
	"time"
)

// response answers POST /v1/responses (the Responses API): one output
// item, a message or, when the request calls a tool, a function_call.
func (c *call) response() {
	id, created := newID("resp_"), time.Now().Unix()
	out := c.messageItem
	if c.callsTool() {
		out = c.functionCallItem
	}
	item := out()
	prompt, completion := c.prompt, item.tokens
	usage := obj{{"input_tokens", prompt}, {"input_tokens_details", obj{{"cached_tokens", 0}}},
		{"output_tokens", completion}, {"output_tokens_details", obj{{"reasoning_tokens", 0}}},
		{"total_tokens", prompt + completion}}
	resp := func(status string, output []any, usage any) obj {
		textConfig := any(obj{{"format", obj{{"type", "text"}}}})
		if len(c.req.Text) > 0 {
			textConfig = c.req.Text
		}
		var instructions any
		if len(c.req.Instructions) > 0 {
			instructions = c.req.Instructions
		}
		tools, choice := any([]any{}), any("auto")
		if len(c.req.Tools) > 0 {
			tools = c.req.Tools
		}
		if len(c.req.ToolChoice) > 0 {
			choice = c.req.ToolChoice
		}
		return obj{{"id", id}, {"object", "response"}, {"created_at", created}, {"status", status},
			{"error", nil}, {"incomplete_details", nil}, {"instructions", instructions}, {"max_output_tokens", nil},
			{"model", c.req.Model}, {"output", output}, {"parallel_tool_calls", true}, {"previous_response_id", nil},
			{"reasoning", obj{{"effort", nil}, {"summary", nil}}}, {"store", true}, {"temperature", 1.0},
			{"text", textConfig}, {"tool_choice", choice}, {"tools", tools}, {"top_p", 1.0},
			{"truncation", "disabled"}, {"usage", usage}, {"user", nil}, {"metadata", obj{}}}
	}
	if !c.req.Stream {
		c.writeJSON(http.StatusOK, resp("completed", []any{item.done}, usage))
		return
	}
	var events []event
	add := func(typ string, fields ...kv) {
		o := append(obj{{"type", typ}, {"sequence_number", len(events)}}, fields...)
		events = append(events, namedEvent(typ, o))
	}
	add("response.created", kv{"response", resp("in_progress", []any{}, nil)})
	add("response.in_progress", kv{"response", resp("in_progress", []any{}, nil)})
	add("response.output_item.added", kv{"output_index", 0}, kv{"item", item.added})
	item.events(add)
	add("response.output_item.done", kv{"output_index", 0}, kv{"item", item.done})
	add("response.completed", kv{"response", resp("completed", []any{item.done}, usage)})
	c.stream(events)
}

// outputItem is the output item of a response.
type outputItem struct {
	added, done obj // as the stream announces it, and complete
	tokens      int // its output tokens
	// events adds the stream's events between the item's added and done
	events func(add func(typ string, fields ...kv))
}

// messageItem is an assistant message with the call's text.
func (c *call) messageItem() outputItem {
	text := c.text()
	msgID := newID("msg_")
	part := func(text string) obj {
		return obj{{"type", "output_text"}, {"text", text}, {"annotations", []any{}}, {"logprobs", []any{}}}
	}
	message := func(status string, content ...any) obj {
		if content == nil {
			content = []any{}
		}
		return obj{{"type", "message"}, {"id", msgID}, {"status", status}, {"role", "assistant"}, {"content", content}}
	}
	at := []kv{{"item_id", msgID}, {"output_index", 0}, {"content_index", 0}}
	return outputItem{added: message("in_progress"), done: message("completed", part(text)), tokens: tokens(text),
		events: func(add func(string, ...kv)) {
			add("response.content_part.added", append(at, kv{"part", part("")})...)
			for _, p := range pieces(text) {
				add("response.output_text.delta", append(at, kv{"delta", p}, kv{"logprobs", []any{}})...)
			}
			add("response.output_text.done", append(at, kv{"text", text}, kv{"logprobs", []any{}})...)
			add("response.content_part.done", append(at, kv{"part", part(text)})...)
		}}
}

// functionCallItem is a function_call of c.tool; streamed, its arguments
// come in response.function_call_arguments.delta pieces.
func (c *call) functionCallItem() outputItem {
	itemID, callID := newID("fc_"), newID("call_")
	item := func(args, status string) obj {
		return obj{{"type", "function_call"}, {"id", itemID}, {"call_id", callID}, {"name", c.tool.name},
			{"arguments", args}, {"status", status}}
	}
	at := []kv{{"item_id", itemID}, {"output_index", 0}}
	return outputItem{added: item("", "in_progress"), done: item(c.tool.args, "completed"),
		tokens: tokens(c.tool.name) + tokens(c.tool.args),
		events: func(add func(string, ...kv)) {
			for _, p := range pieces(c.tool.args) {
				add("response.function_call_arguments.delta", append(at, kv{"delta", p})...)
			}
			add("response.function_call_arguments.done", append(at, kv{"arguments", c.tool.args})...)
		}}
}
