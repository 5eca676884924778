package translate

import (
	"bytes"
	"strconv"

	"github.com/tidwall/gjson"
)

// An OpenAI Chat Completions stream (chat.completion.chunk objects, then
// "data: [DONE]") converted to the events an Anthropic Messages agent
// reads: message_start, content blocks, message_delta, message_stop.
//
//	first chunk                  message_start (id and model of the chunk)
//	delta.content, .refusal      a text block's content_block_delta (the block opened first)
//	delta.tool_calls[k] new      the open block closed, a tool_use block started
//	its arguments pieces         input_json_delta
//	finish_reason                the open block closed; the stop_reason kept
//	usage (choices [])           kept for message_delta
//	[DONE]                       message_delta, message_stop
//	a data object with "error"   an Anthropic error event; the stream ends
//
// Anthropic streams one block at a time, so a tool call's arguments must
// all come before the next tool call starts, as OpenAI sends them; a piece
// for a tool call already closed is an error rather than lost silently.

// streamMessageBlock is the kind of the Anthropic block open in the output.
type streamMessageBlock uint8

const (
	streamMessageNone streamMessageBlock = iota
	streamMessageText
	streamMessageTool
)

// chatToMessagesStream converts an OpenAI stream for a Messages agent.
type chatToMessagesStream struct {
	model string // the agent's model, raw JSON, for a stream whose chunks name none

	started bool // message_start was sent
	content bool // text or a tool call was converted
	done    bool // [DONE] or an error was converted

	blocks   int64              // blocks started so far: the next block's index
	open     streamMessageBlock // the kind of block open, if any
	openTool int64              // the OpenAI index of the open tool call
	tools    map[int64]struct{}

	stop   string // Anthropic stop_reason from finish_reason, "" until one came
	usage  bool   // a usage object came
	prompt int64  // its prompt_tokens
	cached int64  // its prompt_tokens_details.cached_tokens
	output int64  // its completion_tokens

	scratch []byte // one event's data, reused
}

// newChatToMessagesStream converts an OpenAI stream for the agent whose
// Messages request is request.
func newChatToMessagesStream(request []byte) Stream {
	model, _ := streamID(gjson.GetBytes(request, "model"), "model name")
	return &chatToMessagesStream{model: model}
}

// Content reports whether text or a tool call was converted.
func (s *chatToMessagesStream) Content() bool { return s.content }

// Done reports whether [DONE] or an error object was converted.
func (s *chatToMessagesStream) Done() bool { return s.done }

// Event converts one OpenAI event. Events after the end are ignored.
func (s *chatToMessagesStream) Event(dst []byte, name string, data []byte) ([]byte, error) {
	if s.done {
		return dst, nil
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		return s.finish(dst), nil
	}
	doc, err := parseStreamEvent("OpenAI", data)
	if err != nil {
		return dst, err
	}
	// One pass over the top-level keys finds the three this reads (the
	// first of a repeated key counts, as for gjson.Get).
	var choices, usage, e gjson.Result
	if doc.IsObject() {
		doc.ForEach(func(key, value gjson.Result) bool {
			switch {
			case key.Str == "choices" && !choices.Exists():
				choices = value
			case key.Str == "usage" && !usage.Exists():
				usage = value
			case key.Str == "error" && !e.Exists():
				e = value
			}
			return true
		})
	}
	if e.Exists() && e.Type != gjson.Null {
		return s.fail(dst, e), nil
	}
	if !s.started {
		if dst, err = s.start(dst, doc); err != nil {
			return dst, err
		}
	}
	streamElements(choices, func(choice gjson.Result) bool {
		if choice.Get("index").Int() == 0 { // one choice is asked for
			dst, err = s.choice(dst, choice)
		}
		return err == nil
	})
	if err != nil {
		return dst, err
	}
	if usage.IsObject() {
		s.usage = true
		s.prompt = streamTokens(usage.Get("prompt_tokens"))
		s.cached = min(streamTokens(usage.Get("prompt_tokens_details.cached_tokens")), s.prompt)
		s.output = streamTokens(usage.Get("completion_tokens"))
	}
	return dst, nil
}

// start sends message_start, with the first chunk's id and model (the
// agent's model if the chunk names none).
func (s *chatToMessagesStream) start(dst []byte, doc gjson.Result) ([]byte, error) {
	id, err := streamID(doc.Get("id"), "answer id")
	if err != nil {
		return dst, err
	}
	model := s.model
	if m := doc.Get("model"); streamNonEmpty(m) {
		if model, err = streamID(m, "model name"); err != nil {
			return dst, err
		}
	}
	if model == "" {
		model = `""`
	}
	s.started = true
	d := append(s.scratch[:0], `{"type":"message_start","message":{"id":`...)
	d = append(d, id...)
	d = append(d, `,"type":"message","role":"assistant","model":`...)
	d = append(d, model...)
	d = append(d, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`...)
	return s.emit(dst, "message_start", d), nil
}

// choice converts one choice's delta and finish_reason.
func (s *chatToMessagesStream) choice(dst []byte, choice gjson.Result) ([]byte, error) {
	delta := choice.Get("delta")
	for _, key := range [...]string{"content", "refusal"} {
		if text := delta.Get(key); streamNonEmpty(text) {
			dst = s.text(dst, text.Raw)
		}
	}
	var err error
	position := int64(0)
	streamElements(delta.Get("tool_calls"), func(call gjson.Result) bool {
		dst, err = s.toolCall(dst, call, position)
		position++
		return err == nil
	})
	if err != nil {
		return dst, err
	}
	if reason := choice.Get("finish_reason"); streamNonEmpty(reason) {
		dst = s.closeBlock(dst)
		s.stop = stopReason(reason.Str)
	}
	return dst, nil
}

// text sends a piece of text, in the open text block or a new one.
func (s *chatToMessagesStream) text(dst []byte, raw string) []byte {
	if s.open != streamMessageText {
		dst = s.closeBlock(dst)
		dst = s.startBlock(dst, streamMessageText, `{"type":"text","text":""}`)
	}
	s.content = true
	d := append(s.blockEvent(`{"type":"content_block_delta","index":`), `,"delta":{"type":"text_delta","text":`...)
	d = append(d, raw...)
	return s.emit(dst, "content_block_delta", append(d, "}}"...))
}

// toolCall converts one element of delta.tool_calls: a tool call not seen
// before starts a tool_use block; its arguments piece goes to the open one.
// position stands in for an element without "index".
func (s *chatToMessagesStream) toolCall(dst []byte, call gjson.Result, position int64) ([]byte, error) {
	k := position
	if i := call.Get("index"); i.Type == gjson.Number {
		k = i.Int()
	}
	if _, seen := s.tools[k]; !seen {
		if len(s.tools) >= streamMaxToolCalls {
			return dst, streamErrorf("the OpenAI stream has more than %d tool calls in one answer: the sidecar converts at most %d", streamMaxToolCalls, streamMaxToolCalls)
		}
		id, err := streamID(call.Get("id"), "tool call id")
		if err != nil {
			return dst, err
		}
		name, err := streamID(call.Get("function.name"), "tool name")
		if err != nil {
			return dst, err
		}
		if id == `""` {
			id = `"call_` + strconv.Itoa(len(s.tools)) + `"`
		}
		if s.tools == nil {
			s.tools = make(map[int64]struct{}, 2)
		}
		s.tools[k] = struct{}{}
		dst = s.closeBlock(dst)
		block := append(append(append(append([]byte(nil), `{"type":"tool_use","id":`...), id...), `,"name":`...), name...)
		dst = s.startBlock(dst, streamMessageTool, string(append(block, `,"input":{}}`...)))
		s.openTool = k
		s.content = true
	}
	piece := call.Get("function.arguments")
	if !streamNonEmpty(piece) {
		return dst, nil
	}
	if s.open != streamMessageTool || s.openTool != k {
		return dst, streamErrorf("the OpenAI stream sent arguments for tool call %d after another block had begun: an Anthropic stream cannot reopen a finished tool_use block", k)
	}
	d := append(s.blockEvent(`{"type":"content_block_delta","index":`), `,"delta":{"type":"input_json_delta","partial_json":`...)
	d = append(d, piece.Raw...)
	return s.emit(dst, "content_block_delta", append(d, "}}"...)), nil
}

// startBlock sends content_block_start for the next index with block as
// its content_block, and marks it open.
func (s *chatToMessagesStream) startBlock(dst []byte, kind streamMessageBlock, block string) []byte {
	s.open = kind
	d := append(s.blockEvent(`{"type":"content_block_start","index":`), `,"content_block":`...)
	d = append(d, block...)
	return s.emit(dst, "content_block_start", append(d, '}'))
}

// closeBlock sends content_block_stop for the open block, if one is.
func (s *chatToMessagesStream) closeBlock(dst []byte) []byte {
	if s.open == streamMessageNone {
		return dst
	}
	d := s.blockEvent(`{"type":"content_block_stop","index":`)
	s.open = streamMessageNone
	s.blocks++
	return s.emit(dst, "content_block_stop", append(d, '}'))
}

// blockEvent begins an event's data in the scratch buffer: prefix, then
// the index of the current block.
func (s *chatToMessagesStream) blockEvent(prefix string) []byte {
	return appendStreamInt(append(s.scratch[:0], prefix...), s.blocks)
}

// finish converts [DONE]: the open block closed, message_delta with the
// stop reason and usage, message_stop. A stream that had no chunk at all
// still gets its message_start first.
func (s *chatToMessagesStream) finish(dst []byte) []byte {
	if !s.started {
		dst, _ = s.start(dst, gjson.Result{})
	}
	dst = s.closeBlock(dst)
	stop := s.stop
	if stop == "" {
		stop = "end_turn"
	}
	d := append(s.scratch[:0], `{"type":"message_delta","delta":{"stop_reason":`...)
	d = appendStreamName(d, stop)
	d = append(d, `,"stop_sequence":null},"usage":{`...)
	if s.usage {
		// OpenAI's prompt_tokens include the cached ones; Anthropic
		// counts them apart.
		d = append(d, `"input_tokens":`...)
		d = appendStreamInt(d, s.prompt-s.cached)
		d = append(d, `,"cache_read_input_tokens":`...)
		d = appendStreamInt(d, s.cached)
		d = append(d, ',')
	}
	d = append(d, `"output_tokens":`...)
	d = appendStreamInt(d, s.output)
	dst = s.emit(dst, "message_delta", append(d, "}}"...))
	s.done = true
	s.tools = nil
	return s.emit(dst, "message_stop", append(s.scratch[:0], `{"type":"message_stop"}`...))
}

// fail converts an OpenAI error object to Anthropic's error event, keeping
// its message.
func (s *chatToMessagesStream) fail(dst []byte, e gjson.Result) []byte {
	s.done = true
	s.tools = nil
	msg := streamRaw(e.Get("message"))
	if e.Type == gjson.String {
		msg = e.Raw
	}
	if msg == "" || msg == `""` {
		msg = `"the model's stream ended with an error it did not describe"`
	}
	d := append(s.scratch[:0], `{"type":"error","error":{"type":"api_error","message":`...)
	d = append(d, msg...)
	return s.emit(dst, "error", append(d, "}}"...))
}

// streamElements calls f on each element of r if r is an array (gjson's
// ForEach would also visit an object's values, or a lone value), until f
// returns false.
func streamElements(r gjson.Result, f func(gjson.Result) bool) {
	if r.IsArray() {
		r.ForEach(func(_, v gjson.Result) bool { return f(v) })
	}
}

// emit appends one event whose data was built in the scratch buffer.
func (s *chatToMessagesStream) emit(dst []byte, name string, d []byte) []byte {
	dst = appendEvent(dst, name, d)
	s.scratch = streamScratch(d)
	return dst
}
