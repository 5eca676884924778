package gateway

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/gateway/translate"
)

// maxHeld bounds the events of a stream held back from the agent (see
// holdMode); past it, they are passed on and the stream can no longer
// fail over.
const maxHeld = 16 << 20

// holdMode is how long a stream is held back from the agent.
type holdMode int

const (
	holdNone    holdMode = iota // passed on from the first event
	holdContent                 // until the first text or tool call (degrade_on "empty")
	holdWhole                   // until the end, to check the JSON (degrade_on "invalid_json", JSON asked for)
)

// streamHold is the hold a model's degrade_on asks of a stream.
func streamHold(m *policies.Model, req request) (mode holdMode, empty bool) {
	empty = slices.Contains(m.DegradeOn, policies.DegradeEmpty)
	switch {
	case req.wantsJSON && slices.Contains(m.DegradeOn, policies.DegradeInvalidJSON):
		return holdWhole, empty
	case empty:
		return holdContent, empty
	}
	return holdNone, false
}

// errConvert marks an upstream event a cross-provider stream could not
// convert.
var errConvert = errors.New("stream conversion")

type convertError struct{ err error }

func (e convertError) Error() string        { return e.err.Error() }
func (e convertError) Is(target error) bool { return target == errConvert }

// relay passes one model's stream to the agent: converted when the hop
// crosses providers, held back as degrade_on asks.
type relay struct {
	c    *call
	m    *policies.Model
	resp *http.Response
	kind string           // the kind of the upstream events
	conv translate.Stream // nil on a hop within the provider
	rc   *http.ResponseController

	usage     streamUsage // what the upstream events report
	hideUsage bool        // drop OpenAI's usage chunk: the agent did not ask for it

	hold       holdMode
	needText   bool // degrade_on "empty"
	held       []byte
	committed  bool // the agent has the headers and the events so far
	clientGone bool
	content    bool // text or a tool call seen
	acts       bool // a tool call seen
	text       strings.Builder
}

func newRelay(c *call, m *policies.Model, resp *http.Response, hp hop) *relay {
	r := &relay{c: c, m: m, resp: resp, kind: hp.ep.kind, rc: http.NewResponseController(c.w),
		usage: streamUsage{kind: hp.ep.kind}, hideUsage: hp.hideUsage}
	if hp.crosses() {
		r.conv = hp.dir.Stream(c.req.body)
	}
	r.hold, r.needText = streamHold(m, c.req)
	return r
}

// convert returns the agent's bytes for an upstream event: the event as
// it came, or its translation.
func (r *relay) convert(ev event) ([]byte, error) {
	if r.conv == nil {
		return ev.raw, nil
	}
	if ev.empty {
		return nil, nil // a comment: the agent's own keep-alive is its SDK's business
	}
	// The converters check each event's data themselves (bounded, without
	// recursion) before reading it.
	out, err := r.conv.Event(nil, ev.name, ev.data)
	if err != nil {
		return nil, convertError{err}
	}
	return out, nil
}

// note holds back an event's bytes (out) and what it says of the answer
// (eventContent).
func (r *relay) note(out []byte, text string, acts bool) {
	r.held = append(r.held, out...)
	if acts {
		r.acts, r.content = true, true
	}
	if strings.TrimSpace(text) != "" {
		r.content = true
	}
	if r.hold == holdWhole && r.text.Len() < maxHeld {
		r.text.WriteString(text)
	}
}

// ready commits the stream to the agent when the hold is over, or says
// why the held answer is not one the agent can use.
func (r *relay) ready(done bool) (why string) {
	switch {
	case r.hold == holdNone, len(r.held) > maxHeld, r.text.Len() >= maxHeld:
	case done && r.needText && !r.content:
		return "empty answer"
	case done && r.hold == holdWhole && !r.acts:
		if why := notJSON([]byte(r.text.String()), "the answer's text is ", " although JSON was asked for"); why != "" {
			return why
		}
	case done:
	case r.hold == holdContent && r.content:
	default:
		return "" // still held
	}
	r.commit()
	return ""
}

// commit sends the answer's headers and the events held so far.
func (r *relay) commit() {
	c := r.c
	h := c.w.Header()
	copyHeaders(h, r.resp.Header)
	c.setHeaders(h, r.m, true)
	c.answered(r.m, r.resp.StatusCode)
	c.w.WriteHeader(r.resp.StatusCode)
	r.committed = true
	r.write(r.held)
	r.held = nil
}

// write passes bytes to the agent at once.
func (r *relay) write(b []byte) {
	if len(b) == 0 || r.clientGone {
		return
	}
	if _, err := r.c.w.Write(b); err != nil || r.rc.Flush() != nil {
		r.clientGone = true
	}
}

// eventContent is the answer text an upstream event carries, and whether
// it calls a tool, by the kind of stream.
func eventContent(kind string, ev event) (text string, acts bool) {
	if len(ev.data) == 0 || ev.data[0] != '{' {
		return "", false
	}
	switch kind {
	case kindChat:
		d := gjson.GetBytes(ev.data, "choices.0.delta")
		return d.Get("content").Str + d.Get("refusal").Str, d.Get("tool_calls").Exists() || d.Get("function_call").Exists()
	case kindCompletion:
		return gjson.GetBytes(ev.data, "choices.0.text").Str, false
	case kindMessage:
		switch gjson.GetBytes(ev.data, "type").Str {
		case "content_block_delta":
			d := gjson.GetBytes(ev.data, "delta")
			return d.Get("text").Str, d.Get("type").Str == "input_json_delta"
		case "content_block_start":
			switch gjson.GetBytes(ev.data, "content_block.type").Str {
			case "text", "thinking", "redacted_thinking":
				return gjson.GetBytes(ev.data, "content_block.text").Str, false
			}
			return "", true // tool_use and server tools
		}
	case kindResponse:
		switch gjson.GetBytes(ev.data, "type").Str {
		case "response.output_text.delta", "response.refusal.delta":
			return gjson.GetBytes(ev.data, "delta").Str, false
		case "response.output_item.added":
			switch gjson.GetBytes(ev.data, "item.type").Str {
			case "message", "reasoning":
				return "", false
			}
			return "", true
		}
	}
	return "", false
}
