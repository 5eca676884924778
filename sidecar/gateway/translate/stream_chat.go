package translate

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// An Anthropic Messages stream (message_start, content blocks, message_delta,
// message_stop) converted to the chat.completion.chunk events an OpenAI
// Chat Completions agent reads, ending with "data: [DONE]".
//
//	message_start                     first chunk, delta {"role":"assistant","content":""}
//	text_delta                        delta {"content": text}
//	content_block_start tool_use      delta {"tool_calls":[{index, id, type, function{name, arguments ""}}]}
//	input_json_delta                  delta {"tool_calls":[{index, function{arguments: piece}}]}
//	message_delta stop_reason         empty delta with finish_reason
//	message_stop                      usage chunk (if asked for), then [DONE]
//	error                             an OpenAI error event; the stream ends
//
// Thinking, signatures, citations and server tool blocks have no place in
// a chat completion and are dropped; ping events are dropped.

// streamChatBlockKind is what an open Anthropic content block becomes.
type streamChatBlockKind uint8

const (
	streamChatText  streamChatBlockKind = iota // text: its deltas are content
	streamChatTool                             // tool_use: its deltas are a tool call's arguments
	streamChatOther                            // thinking, server tools, …: dropped
)

// streamChatBlock is an open Anthropic content block.
type streamChatBlock struct {
	kind streamChatBlockKind
	tool int  // the tool call's OpenAI index (chatBlockTool)
	args bool // a non-empty arguments piece was sent (chatBlockTool)
}

// messagesToChatStream converts an Anthropic stream for a Chat Completions
// agent. It keeps the chunk's fixed head, the open blocks and the counts.
type messagesToChatStream struct {
	includeUsage bool             // the agent asked stream_options.include_usage
	now          func() time.Time // the clock for "created"

	head    []byte // `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,`
	started bool   // message_start was converted
	content bool   // text or a tool call was converted
	finish  bool   // the finish_reason chunk was sent
	done    bool   // message_stop or an error event was converted

	blocks map[int64]*streamChatBlock // open content blocks by Anthropic index
	tools  int                        // tool calls so far

	input, cacheRead, cacheWrite, output int64 // usage, as last reported

	scratch []byte // one chunk's data, reused
}

// newMessagesToChatStream converts an Anthropic stream for the agent whose
// Chat Completions request is request.
func newMessagesToChatStream(request []byte) Stream {
	return &messagesToChatStream{
		includeUsage: gjson.GetBytes(request, "stream_options.include_usage").Type == gjson.True,
		now:          time.Now,
	}
}

// Content reports whether text or a tool call was converted.
func (s *messagesToChatStream) Content() bool { return s.content }

// Done reports whether message_stop or an error event was converted.
func (s *messagesToChatStream) Done() bool { return s.done }

// Event converts one Anthropic event. Events after the end are ignored.
func (s *messagesToChatStream) Event(dst []byte, name string, data []byte) ([]byte, error) {
	if s.done || name == "ping" {
		return dst, nil
	}
	doc, err := parseStreamEvent("Anthropic", data)
	if err != nil {
		return dst, err
	}
	typ := streamEventType(name, doc)
	if typ == "error" {
		return s.fail(dst, doc), nil
	}
	if !s.started && (strings.HasPrefix(typ, "content_block_") || typ == "message_delta" || typ == "message_stop") {
		return dst, streamErrorf("the Anthropic stream sent %q before message_start: the model's server sent a broken stream", streamClip(typ))
	}
	if s.finish && strings.HasPrefix(typ, "content_block_") {
		// Anthropic sends no content after message_delta; an OpenAI
		// agent reads none after the finish_reason chunk.
		return dst, nil
	}
	switch typ {
	case "message_start":
		return s.start(dst, doc)
	case "content_block_start":
		return s.blockStart(dst, doc)
	case "content_block_delta":
		return s.blockDelta(dst, doc), nil
	case "content_block_stop":
		return s.blockStop(dst, doc), nil
	case "message_delta":
		s.usage(doc.Get("usage"))
		if stop := doc.Get("delta.stop_reason"); stop.Type == gjson.String && !s.finish {
			s.finish = true
			return s.end(dst, append(s.begin(), `{}`...), finishReason(stop.Str)), nil
		}
	case "message_stop":
		return s.stop(dst), nil
	}
	return dst, nil // ping, and event types added after this was written
}

// start converts message_start: the chunk's head is built once from the
// message's id and model, and the first chunk gives the role.
func (s *messagesToChatStream) start(dst []byte, doc gjson.Result) ([]byte, error) {
	if s.started {
		return dst, nil
	}
	msg := doc.Get("message")
	id, err := streamID(msg.Get("id"), "message id")
	if err != nil {
		return dst, err
	}
	model, err := streamID(msg.Get("model"), "model name")
	if err != nil {
		return dst, err
	}
	h := append(s.head[:0], `{"id":`...)
	h = append(h, id...)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = appendStreamInt(h, s.now().Unix())
	h = append(h, `,"model":`...)
	h = append(h, model...)
	s.head = append(h, ',')
	s.started = true
	s.usage(msg.Get("usage"))
	return s.end(dst, append(s.begin(), `{"role":"assistant","content":""}`...), ""), nil
}

// blockStart converts content_block_start: a tool_use block starts a tool
// call; a text block that already holds text gives it.
func (s *messagesToChatStream) blockStart(dst []byte, doc gjson.Result) ([]byte, error) {
	index := doc.Get("index")
	if index.Type != gjson.Number {
		return dst, streamErrorf("the Anthropic stream sent a content_block_start without a numeric index: the model's server sent a broken stream")
	}
	if s.blocks == nil {
		s.blocks = make(map[int64]*streamChatBlock, 2)
	}
	if _, open := s.blocks[index.Int()]; !open && len(s.blocks) >= streamMaxOpenBlocks {
		return dst, streamErrorf("the Anthropic stream opened more than %d content blocks without closing them: the model's server sent a broken stream", streamMaxOpenBlocks)
	}
	block := doc.Get("content_block")
	switch block.Get("type").Str {
	case "text":
		s.blocks[index.Int()] = &streamChatBlock{kind: streamChatText}
		if text := block.Get("text"); streamNonEmpty(text) {
			return s.text(dst, text.Raw), nil
		}
	case "tool_use":
		id, err := streamID(block.Get("id"), "tool call id")
		if err != nil {
			return dst, err
		}
		name, err := streamID(block.Get("name"), "tool name")
		if err != nil {
			return dst, err
		}
		b := &streamChatBlock{kind: streamChatTool, tool: s.tools}
		s.blocks[index.Int()] = b
		s.tools++
		s.content = true
		d := append(s.begin(), `{"tool_calls":[{"index":`...)
		d = appendStreamInt(d, int64(b.tool))
		d = append(d, `,"id":`...)
		d = append(d, id...)
		d = append(d, `,"type":"function","function":{"name":`...)
		d = append(d, name...)
		d = append(d, `,"arguments":""}}]}`...)
		return s.end(dst, d, ""), nil
	default:
		s.blocks[index.Int()] = &streamChatBlock{kind: streamChatOther}
	}
	return dst, nil
}

// blockDelta converts content_block_delta: text to content, a tool_use
// block's input pieces to its arguments; other deltas are dropped.
func (s *messagesToChatStream) blockDelta(dst []byte, doc gjson.Result) []byte {
	delta := doc.Get("delta")
	switch delta.Get("type").Str {
	case "text_delta":
		if text := delta.Get("text"); streamNonEmpty(text) {
			return s.text(dst, text.Raw)
		}
	case "input_json_delta":
		b := s.blocks[doc.Get("index").Int()]
		piece := delta.Get("partial_json")
		if b == nil || b.kind != streamChatTool || !streamNonEmpty(piece) {
			return dst
		}
		b.args = true
		return s.arguments(dst, b.tool, piece.Raw)
	}
	return dst
}

// blockStop converts content_block_stop. A tool call whose input came
// without a piece gets the arguments "{}", the empty object the Anthropic
// SDKs make of it, so the agent's arguments parse.
func (s *messagesToChatStream) blockStop(dst []byte, doc gjson.Result) []byte {
	index := doc.Get("index").Int()
	b := s.blocks[index]
	delete(s.blocks, index)
	if b != nil && b.kind == streamChatTool && !b.args {
		return s.arguments(dst, b.tool, `"{}"`)
	}
	return dst
}

// stop converts message_stop: a finish_reason chunk if message_delta gave
// none, the usage chunk if the agent asked for it, and [DONE].
func (s *messagesToChatStream) stop(dst []byte) []byte {
	if !s.finish {
		s.finish = true
		dst = s.end(dst, append(s.begin(), `{}`...), "stop")
	}
	if s.includeUsage {
		prompt := s.input + s.cacheRead + s.cacheWrite
		d := append(s.scratch[:0], s.head...)
		d = append(d, `"choices":[],"usage":{"prompt_tokens":`...)
		d = appendStreamInt(d, prompt)
		d = append(d, `,"completion_tokens":`...)
		d = appendStreamInt(d, s.output)
		d = append(d, `,"total_tokens":`...)
		d = appendStreamInt(d, prompt+s.output)
		d = append(d, `,"prompt_tokens_details":{"cached_tokens":`...)
		d = appendStreamInt(d, s.cacheRead)
		d = append(d, "}}}"...)
		dst = appendEvent(dst, "", d)
		s.scratch = streamScratch(d)
	}
	s.done = true
	s.blocks = nil
	return appendEvent(dst, "", []byte("[DONE]"))
}

// usage takes the counts an event reports. message_delta's are cumulative,
// so a count it gives replaces the one before.
func (s *messagesToChatStream) usage(u gjson.Result) {
	if !u.IsObject() {
		return
	}
	take := func(key string, n *int64) {
		if v := u.Get(key); v.Type == gjson.Number {
			*n = streamTokens(v)
		}
	}
	take("input_tokens", &s.input)
	take("cache_read_input_tokens", &s.cacheRead)
	take("cache_creation_input_tokens", &s.cacheWrite)
	take("output_tokens", &s.output)
}

// fail converts Anthropic's error event to the error event OpenAI's SDKs
// raise on (the gateway's own stream error shape), keeping the message;
// Anthropic's error type (overloaded_error, …) becomes the code.
func (s *messagesToChatStream) fail(dst []byte, doc gjson.Result) []byte {
	s.done = true
	s.blocks = nil
	e := doc.Get("error")
	msg := e.Get("message").Str
	if msg == "" {
		msg = "the model's stream ended with an error it did not describe"
	}
	code := e.Get("type").Str
	if code == "" || len(code) > streamMaxID {
		code = "stream_interrupted"
	}
	data, _ := json.Marshal(chatStreamError{Type: "error", Error: chatStreamErrorBody{Message: msg, Type: "server_error", Code: code}})
	return appendEvent(dst, "error", data)
}

// chatStreamError is the data of an OpenAI stream's error event.
type chatStreamError struct {
	Type  string              `json:"type"`
	Error chatStreamErrorBody `json:"error"`
}

// chatStreamErrorBody is OpenAI's error object, fields in OpenAI's order.
type chatStreamErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// text appends a chunk whose delta is content (raw: a JSON string literal).
func (s *messagesToChatStream) text(dst []byte, raw string) []byte {
	s.content = true
	d := append(s.begin(), `{"content":`...)
	d = append(d, raw...)
	return s.end(dst, append(d, '}'), "")
}

// arguments appends a chunk with a piece of tool call i's arguments (raw:
// a JSON string literal).
func (s *messagesToChatStream) arguments(dst []byte, i int, raw string) []byte {
	d := append(s.begin(), `{"tool_calls":[{"index":`...)
	d = appendStreamInt(d, int64(i))
	d = append(d, `,"function":{"arguments":`...)
	d = append(d, raw...)
	return s.end(dst, append(d, "}}]}"...), "")
}

// begin starts a chat.completion.chunk in the scratch buffer, up to its
// delta: the caller appends the delta object and hands the buffer to end.
func (s *messagesToChatStream) begin() []byte {
	d := append(s.scratch[:0], s.head...)
	return append(d, `"choices":[{"index":0,"delta":`...)
}

// end finishes the chunk begun in d, with finish as its finish_reason
// (null when ""), and appends it to dst as an event. With include_usage
// every chunk but the last carries "usage": null, as OpenAI's do.
func (s *messagesToChatStream) end(dst, d []byte, finish string) []byte {
	d = append(d, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		d = append(d, "null"...)
	} else {
		d = appendStreamName(d, finish)
	}
	d = append(d, "}]"...)
	if s.includeUsage {
		d = append(d, `,"usage":null`...)
	}
	d = append(d, '}')
	dst = appendEvent(dst, "", d)
	s.scratch = streamScratch(d)
	return dst
}

// streamClip shortens an upstream name quoted in an error message.
func streamClip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
