package translate

import (
	"errors"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// Reading and writing the JSON of streamed events, shared by both stream
// converters. Text, ids and names are copied from the upstream event as
// their raw JSON string literals: the event was validated first, so a
// literal is valid JSON as it stands, and its escapes reach the agent
// unchanged.

// Bounds on what a stream converter keeps or repeats.
const (
	// streamMaxID bounds an id or model name copied from upstream: it is
	// repeated in every OpenAI chunk, so a huge one would multiply.
	streamMaxID = 512
	// streamMaxToolCalls bounds the tool calls of one streamed answer.
	streamMaxToolCalls = 128
	// streamMaxOpenBlocks bounds the Anthropic content blocks open at once
	// (Anthropic opens one at a time).
	streamMaxOpenBlocks = 64
	// streamMaxScratch is the largest scratch buffer a stream keeps between
	// events; a larger one, grown for one big event, is let go.
	streamMaxScratch = 64 << 10
	// streamMaxTokens caps a token count read from upstream, so sums of
	// counts cannot overflow.
	streamMaxTokens = 1 << 40
)

// streamErrorf is the error of an upstream event that cannot be converted.
func streamErrorf(format string, args ...any) error { return errors.New(sprintf(format, args...)) }

// parseStreamEvent checks that an upstream event's data is one JSON value, nested
// at most jsonguard.MaxDepth deep (the check is iterative: no input can
// exhaust the stack), and parses it for reading. provider names the
// upstream in the error.
func parseStreamEvent(provider string, data []byte) (gjson.Result, error) {
	if _, err := jsonguard.Scan(data, jsonguard.MaxDepth); err != nil {
		return gjson.Result{}, streamErrorf("an event of the %s stream is not valid JSON (%v): the model's server sent a broken stream", provider, err)
	}
	return gjson.Parse(string(data)), nil
}

// streamEventType is an upstream event's type: its "event:" name, or, when the
// name is empty, the "type" its data carries.
func streamEventType(name string, doc gjson.Result) string {
	if name != "" {
		return name
	}
	return doc.Get("type").Str
}

// streamRaw is the raw JSON literal of r if r is a string, else "".
func streamRaw(r gjson.Result) string {
	if r.Type == gjson.String {
		return r.Raw
	}
	return ""
}

// streamNonEmpty reports whether r is a string with at least one character.
func streamNonEmpty(r gjson.Result) bool { return r.Type == gjson.String && r.Str != "" }

// streamID is the raw JSON literal of an id or model name read from upstream,
// `""` when r is not a string; what names the field in the error when the
// literal is longer than streamMaxID.
func streamID(r gjson.Result, what string) (string, error) {
	raw := streamRaw(r)
	if raw == "" {
		return `""`, nil
	}
	if len(raw) > streamMaxID {
		return "", streamErrorf("the %s of the streamed answer is longer than %d bytes: the model's server sent a broken stream", what, streamMaxID)
	}
	return raw, nil
}

// tokens is a token count read from upstream: 0 when absent, not a number
// or negative, at most streamMaxTokens.
func streamTokens(r gjson.Result) int64 {
	if r.Type != gjson.Number {
		return 0
	}
	v := r.Int()
	if v < 0 {
		return 0
	}
	return min(v, streamMaxTokens)
}

// appendStreamName appends s as a JSON string literal. It is for the names this
// package writes itself (reasons, block types), which need no escapes.
func appendStreamName(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStreamInt appends a decimal integer.
func appendStreamInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// streamScratch lets go of a scratch buffer grown beyond streamMaxScratch, so one
// big event does not keep its memory for the rest of the stream.
func streamScratch(b []byte) []byte {
	if cap(b) > streamMaxScratch {
		return nil
	}
	return b[:0]
}
