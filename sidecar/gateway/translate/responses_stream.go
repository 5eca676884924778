package translate

// Anthropic Messages stream events → OpenAI Responses API stream events.
//
// The agent's events follow the grammar the OpenAI SDKs' stream
// accumulators expect: response.created and response.in_progress first;
// for each output item, response.output_item.added at the next output
// index, its content or argument events, then response.output_item.done;
// last, response.completed or response.incomplete with the whole response.
// sequence_number counts the events from 0.

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/tidwall/gjson"
)

// responsesMaxOutput bounds the text and arguments a stream accumulates
// for its final response object.
const responsesMaxOutput = 64 << 20

// responsesItemCost is what an output item counts against
// responsesMaxOutput besides its text, so that many empty items are
// bounded too.
const responsesItemCost = 256

// Kinds of Anthropic content block.
const (
	responsesKindSkip = iota // thinking and others the agent does not see
	responsesKindText
	responsesKindTool
)

// responsesStream converts one Anthropic stream.
type responsesStream struct {
	echo                   *responsesEcho
	seq                    int64
	started, content, done bool
	base, model            string
	created                int64
	output                 []any
	size, limit            int // bytes of output held, and the most allowed
	block                  responsesBlock
	stopReason             string
	tokens                 responsesTokens
}

// responsesBlock is the Anthropic content block being streamed.
type responsesBlock struct {
	open   bool
	index  int64
	kind   int
	item   int // output index; -1 while a text block has had no text
	itemID string
	text   strings.Builder
	callID string
	name   string
}

func newMessagesToResponsesStream(request []byte) Stream {
	return &responsesStream{echo: responsesEchoOf(request), limit: responsesMaxOutput}
}

// Content reports whether text or a tool call has been streamed.
func (s *responsesStream) Content() bool { return s.content }

// Done reports whether message_stop or an error event was converted.
func (s *responsesStream) Done() bool { return s.done }

// Event converts one Anthropic event. Events after the end are ignored,
// and so are event types this converter does not know (Anthropic may add
// some).
func (s *responsesStream) Event(dst []byte, name string, data []byte) ([]byte, error) {
	if s.done {
		return dst, nil
	}
	if !json.Valid(data) {
		return dst, errors.New("an Anthropic stream event's data is not valid JSON")
	}
	ev := gjson.ParseBytes(data)
	typ := name
	if typ == "" {
		typ = ev.Get("type").Str
	}
	switch typ {
	case "ping":
		return dst, nil
	case "error":
		return s.fail(dst, ev.Get("error"))
	case "message_start":
		if s.started {
			return dst, errors.New("the Anthropic stream has a second message_start")
		}
		return s.start(dst, ev.Get("message"))
	case "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
		if !s.started {
			return dst, errors.New("the Anthropic stream sent " + typ + " before message_start")
		}
	default:
		return dst, nil
	}
	switch typ {
	case "content_block_start":
		return s.blockStart(dst, ev)
	case "content_block_delta":
		if err := s.check(ev, "content_block_delta"); err != nil {
			return dst, err
		}
		return s.delta(dst, ev.Get("delta"))
	case "content_block_stop":
		if err := s.check(ev, "content_block_stop"); err != nil {
			return dst, err
		}
		return s.blockStop(dst)
	case "message_delta":
		if r := ev.Get("delta.stop_reason"); r.Type == gjson.String {
			s.stopReason = r.Str
		}
		s.tokens.read(ev.Get("usage"))
		return dst, nil
	}
	return s.finish(dst) // message_stop
}

// start converts message_start: response.created, response.in_progress.
func (s *responsesStream) start(dst []byte, msg gjson.Result) ([]byte, error) {
	s.started = true
	s.base = responsesIDs(msg.Get("id").Str)
	s.model = msg.Get("model").Str
	s.created = responsesNow().Unix()
	s.tokens.read(msg.Get("usage"))
	r := s.echo.response("resp_"+s.base, s.model, s.created, "in_progress", "", nil, nil)
	dst, err := s.emit(dst, "response.created", &responsesLifecycleEvent{Response: r})
	if err != nil {
		return dst, err
	}
	return s.emit(dst, "response.in_progress", &responsesLifecycleEvent{Response: r})
}

// check makes sure ev belongs to the open content block.
func (s *responsesStream) check(ev gjson.Result, typ string) error {
	if i := ev.Get("index"); !s.block.open || i.Type != gjson.Number || int64(i.Num) != s.block.index {
		return errors.New("the Anthropic stream sent " + typ + " for a content block that is not open")
	}
	return nil
}

// blockStart converts content_block_start. A text block's item is added
// with its first text, so an empty block adds none; a tool_use block's
// item is added at once.
func (s *responsesStream) blockStart(dst []byte, ev gjson.Result) ([]byte, error) {
	if s.block.open {
		return dst, errors.New("the Anthropic stream started a content block before the previous one stopped")
	}
	i := ev.Get("index")
	if i.Type != gjson.Number {
		return dst, errors.New("the Anthropic stream sent content_block_start without an index")
	}
	cb := ev.Get("content_block")
	s.block.open, s.block.index, s.block.item, s.block.kind = true, int64(i.Num), -1, responsesKindSkip
	s.block.text.Reset()
	switch cb.Get("type").Str {
	case "text":
		s.block.kind = responsesKindText
		return s.textDelta(dst, cb.Get("text").Str)
	case "tool_use":
		s.block.kind = responsesKindTool
		s.block.callID, s.block.name = cb.Get("id").Str, cb.Get("name").Str
		if err := s.grow(responsesItemCost + len(s.block.callID) + len(s.block.name)); err != nil {
			return dst, err
		}
		s.block.item = len(s.output)
		s.block.itemID = responsesItemID("fc_", s.base, s.block.item)
		item := &responsesFunctionCall{Type: "function_call", ID: s.block.itemID, CallID: s.block.callID,
			Name: s.block.name, Arguments: "", Status: "in_progress"}
		s.output = append(s.output, item)
		s.content = true
		return s.emit(dst, "response.output_item.added", &responsesItemEvent{OutputIndex: s.block.item, Item: item})
	}
	return dst, nil
}

// delta converts content_block_delta: text to the message's text, JSON
// to the function call's arguments; other deltas (thinking, signatures,
// citations) are not shown.
func (s *responsesStream) delta(dst []byte, d gjson.Result) ([]byte, error) {
	switch {
	case s.block.kind == responsesKindText && d.Get("type").Str == "text_delta":
		return s.textDelta(dst, d.Get("text").Str)
	case s.block.kind == responsesKindTool && d.Get("type").Str == "input_json_delta":
		piece := d.Get("partial_json").Str
		if piece == "" {
			return dst, nil
		}
		if err := s.grow(len(piece)); err != nil {
			return dst, err
		}
		s.block.text.WriteString(piece)
		return s.emit(dst, "response.function_call_arguments.delta", &responsesArgsDeltaEvent{ItemID: s.block.itemID, OutputIndex: s.block.item, Delta: piece})
	}
	return dst, nil
}

// textDelta streams text, adding the message item and its part first if
// this is the block's first text.
func (s *responsesStream) textDelta(dst []byte, text string) ([]byte, error) {
	if text == "" {
		return dst, nil
	}
	if err := s.grow(len(text)); err != nil {
		return dst, err
	}
	var err error
	if s.block.item < 0 {
		if err = s.grow(responsesItemCost); err != nil {
			return dst, err
		}
		s.block.item = len(s.output)
		s.block.itemID = responsesItemID("msg_", s.base, s.block.item)
		item := &responsesMessageItem{Type: "message", ID: s.block.itemID, Status: "in_progress", Role: "assistant",
			Content: []responsesOutputText{}}
		s.output = append(s.output, item)
		dst, err = s.emit(dst, "response.output_item.added", &responsesItemEvent{OutputIndex: s.block.item, Item: item})
		if err != nil {
			return dst, err
		}
		dst, err = s.emit(dst, "response.content_part.added", &responsesPartEvent{ItemID: s.block.itemID,
			OutputIndex: s.block.item, Part: responsesOutputText{Type: "output_text", Text: "", Annotations: []any{}}})
		if err != nil {
			return dst, err
		}
	}
	s.content = true
	s.block.text.WriteString(text)
	return s.emit(dst, "response.output_text.delta", &responsesTextEvent{ItemID: s.block.itemID,
		OutputIndex: s.block.item, Delta: &text, Logprobs: []any{}})
}

// blockStop converts content_block_stop: the item's done events.
func (s *responsesStream) blockStop(dst []byte) ([]byte, error) {
	b := &s.block
	b.open = false
	if b.item < 0 {
		return dst, nil
	}
	var err error
	switch b.kind {
	case responsesKindText:
		text := b.text.String()
		dst, err = s.emit(dst, "response.output_text.done", &responsesTextEvent{ItemID: b.itemID,
			OutputIndex: b.item, Text: &text, Logprobs: []any{}})
		if err != nil {
			return dst, err
		}
		dst, err = s.emit(dst, "response.content_part.done", &responsesPartEvent{ItemID: b.itemID,
			OutputIndex: b.item, Part: responsesOutputText{Type: "output_text", Text: text, Annotations: []any{}}})
		if err != nil {
			return dst, err
		}
		s.output[b.item] = responsesMessage(b.itemID, text)
	case responsesKindTool:
		args := b.text.String()
		if strings.TrimSpace(args) == "" {
			args = "{}" // a call without arguments, as the whole answer has it
		}
		dst, err = s.emit(dst, "response.function_call_arguments.done", &responsesArgsDoneEvent{ItemID: b.itemID,
			OutputIndex: b.item, Name: b.name, Arguments: args})
		if err != nil {
			return dst, err
		}
		s.output[b.item] = &responsesFunctionCall{Type: "function_call", ID: b.itemID, CallID: b.callID,
			Name: b.name, Arguments: args, Status: "completed"}
	}
	b.text.Reset()
	return s.emit(dst, "response.output_item.done", &responsesItemEvent{OutputIndex: b.item, Item: s.output[b.item]})
}

// finish converts message_stop: response.completed, or
// response.incomplete when the answer was cut short.
func (s *responsesStream) finish(dst []byte) ([]byte, error) {
	var err error
	if s.block.open {
		if dst, err = s.blockStop(dst); err != nil {
			return dst, err
		}
	}
	status, reason := responseStatus(s.stopReason)
	r := s.echo.response("resp_"+s.base, s.model, s.created, status, reason, s.output, s.tokens.usage())
	s.done = true
	return s.emit(dst, "response."+status, &responsesLifecycleEvent{Response: r})
}

// fail converts Anthropic's error event into the Responses error event.
func (s *responsesStream) fail(dst []byte, e gjson.Result) ([]byte, error) {
	msg := e.Get("message").Str
	if msg == "" {
		msg = "the Anthropic model's stream failed without a message"
	}
	s.done = true
	return s.emit(dst, "error", &responsesErrorEvent{Code: responsesErrorCode(e.Get("type").Str),
		Message: msg, Param: json.RawMessage(`null`)})
}

// responsesErrorCode is the OpenAI error code for an Anthropic error type.
func responsesErrorCode(t string) string {
	switch t {
	case "rate_limit_error":
		return "rate_limit_exceeded"
	case "overloaded_error", "api_error", "":
		return "server_error"
	}
	return t
}

// grow counts n more bytes of output against responsesMaxOutput.
func (s *responsesStream) grow(n int) error {
	s.size += n
	if s.size > s.limit {
		return errors.New("the streamed answer is larger than 64 MiB, more than the Responses translation holds")
	}
	return nil
}

// emit numbers an event and appends it, framed.
func (s *responsesStream) emit(dst []byte, typ string, ev responsesEvent) ([]byte, error) {
	h := ev.header()
	h.Type, h.Seq = typ, s.seq
	data, err := responsesMarshal(ev)
	if err != nil {
		return dst, err
	}
	s.seq++
	return appendEvent(dst, typ, data), nil
}
