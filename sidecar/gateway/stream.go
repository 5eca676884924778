package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
)

// event is one server-sent event as it came from upstream.
type event struct {
	raw   []byte // the event's lines and the blank line after them, verbatim
	name  string // the "event:" field
	data  []byte // the "data:" lines joined by "\n"
	empty bool   // only comments (e.g. ": keep-alive")
}

// eventReader splits a text/event-stream into events.
type eventReader struct {
	r *bufio.Reader
}

func newEventReader(r io.Reader) *eventReader {
	return &eventReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// maxEvent bounds one event, so a stream without blank lines cannot grow
// without end.
const maxEvent = 16 << 20

// next returns the next event. At the end of the stream it returns io.EOF,
// or io.ErrUnexpectedEOF when the stream ended inside an event.
func (er *eventReader) next() (event, error) {
	var ev event
	empty := true
	for {
		line, err := er.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			ev.raw = append(ev.raw, line...)
			if len(ev.raw) > maxEvent {
				return ev, errors.New("an event larger than 16 MiB")
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && (len(ev.raw) > 0 || len(line) > 0) {
				return ev, io.ErrUnexpectedEOF
			}
			return ev, err
		}
		start := len(ev.raw)
		ev.raw = append(ev.raw, line...)
		full := ev.raw[start:]
		text := bytes.TrimRight(full, "\r\n")
		if len(text) == 0 {
			if empty && start == 0 {
				ev.raw = ev.raw[:0] // a stray blank line
				continue
			}
			ev.empty = empty
			return ev, nil
		}
		if len(ev.raw) > maxEvent {
			return ev, errors.New("an event larger than 16 MiB")
		}
		field, value, _ := bytes.Cut(text, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.name = string(value)
			empty = false
		case "data":
			if ev.data != nil {
				ev.data = append(ev.data, '\n')
			} else {
				ev.data = []byte{}
			}
			ev.data = append(ev.data, value...)
			empty = false
		case "":
			// a comment
		default:
			empty = false
		}
	}
}

// isError reports whether the event tells of an error: Anthropic's and the
// Responses API's "error" event, or an OpenAI data object with "error".
func (ev event) isError() bool {
	if ev.name == "error" {
		return true
	}
	if len(ev.data) > 0 && ev.data[0] == '{' {
		e := gjson.GetBytes(ev.data, "error")
		return e.Exists() && e.Type != gjson.Null
	}
	return false
}

// terminal reports whether the event is the last of a complete stream of
// this kind of request.
func (ev event) terminal(kind string) bool {
	switch kind {
	case kindChat, kindCompletion:
		return bytes.Equal(bytes.TrimSpace(ev.data), []byte("[DONE]"))
	case kindResponse:
		t := eventType(ev)
		return t == "response.completed" || t == "response.failed" || t == "response.incomplete"
	case kindMessage:
		return eventType(ev) == "message_stop"
	}
	return false
}

// relayStream passes a streamed answer on, event by event (converted to
// the agent's wire format on a hop across providers). Until its first
// event arrives nothing reaches the agent, so a model that fails before
// then is failed over like any other. A model with degrade_on holds the
// events back longer: until the first content or tool call ("empty"), or
// the whole answer for a JSON-mode request ("invalid_json"), so an empty or
// broken answer still fails over; a stream that breaks while held fails
// over too. Once events reach the agent, a stream that breaks, stalls for
// stream_idle_timeout or overruns timeout ends with an error event in the
// provider's shape, never with a clean end. A complete stream is slow (the
// breaker's slow_call) when its first event was: a long answer streamed at
// a good pace is not a slow model.
func (c *call) relayStream(m *policies.Model, b *breaker.Breaker, permit breaker.Permit, resp *http.Response, sent time.Time,
	fb *time.Timer, firstByte *atomic.Bool, ctx context.Context, cancel context.CancelFunc, hp hop) result {
	rd := newEventReader(resp.Body)
	ev, err := rd.next()
	for err == nil && ev.empty { // comments before the first event
		ev, err = rd.next()
	}
	firstEvent := time.Since(sent)
	c.waited += firstEvent
	stopped := fb.Stop()
	switch {
	case c.in.Context().Err() != nil:
		permit.Cancel()
		c.g.count(m.Label, func(s *modelStats) { s.canceled++ })
		return resultCanceled
	case firstByte.Load() || !stopped && err != nil:
		return c.fail(m, permit, "no first event within "+readable.Duration(m.FirstByteTimeout).String())
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return c.fail(m, permit, "no answer within "+readable.Duration(m.Timeout).String())
	case errors.Is(err, io.EOF):
		return c.fail(m, permit, "the stream ended before its first event")
	case err != nil:
		return c.fail(m, permit, "the stream broke before its first event: "+describe(err))
	case ev.isError():
		return c.fail(m, permit, "the stream began with an error event: "+errorSummary(ev.data))
	}

	r := newRelay(c, m, resp, hp)
	// Whatever usage the stream reported counts once it is over, whether
	// it completed, broke or failed over.
	defer func() {
		if r.usage.seen {
			c.reportUsage(m.Label, r.usage.u)
		}
	}()
	var idleExpired atomic.Bool
	idle := time.AfterFunc(m.StreamIdleTimeout, func() { idleExpired.Store(true); cancel() })
	defer idle.Stop()

	var done, sawError bool
	for {
		var out []byte
		usageChunk := r.usage.see(ev)
		// What the event says of the answer is read once, while the relay
		// holds the answer back or the attempt waits for its first token.
		var text string
		var acts bool
		if !r.committed || c.try.awaitsToken() {
			text, acts = eventContent(r.kind, ev)
		}
		c.try.see(ev, acts || text != "")
		out, err = r.convert(ev)
		if err != nil {
			break
		}
		if usageChunk && r.hideUsage {
			out = nil // asked for by the gateway, not by the agent
		}
		done, sawError = ev.terminal(hp.ep.kind), ev.isError()
		if !r.committed {
			if sawError {
				return c.fail(m, permit, "the stream sent an error event before its answer: "+errorSummary(ev.data))
			}
			r.note(out, text, acts)
			if why := r.ready(done); why != "" {
				return c.fail(m, permit, why)
			}
		} else {
			r.write(out)
		}
		if r.clientGone || done || sawError {
			break
		}
		if ev, err = rd.next(); err != nil {
			break
		}
		idle.Reset(m.StreamIdleTimeout)
	}
	var reason string
	switch {
	case r.clientGone || c.in.Context().Err() != nil:
		cancel()
		permit.Cancel()
		c.g.count(m.Label, func(s *modelStats) { s.canceled++ })
		return resultCanceled
	case sawError:
		c.observe(m.Label, outcome.Failure)
		c.try.failed("error event in stream: " + errorSummary(ev.data))
		c.span.fail("the model's stream ended with an error event")
		c.g.log.Warn("the model's stream ended with an error event", c.traced("model", m.Label, "error", errorSummary(ev.data))...)
		c.g.count(m.Label, func(s *modelStats) {
			s.failures++
			s.lastFailure = "error event in stream"
			s.lastFailureAt = c.g.opts.Now()
		})
		permit.DoneFailure("error event in stream")
		return resultAnswered
	case done && err == nil:
		c.observe(m.Label, c.servedOutcome(m))
		if slow, reason := b.Classify(resp.StatusCode, nil, firstEvent); slow {
			permit.DoneFailure(reason)
		} else {
			permit.DoneSuccess()
		}
		return resultAnswered
	case idleExpired.Load():
		reason = "the stream was silent for longer than " + readable.Duration(m.StreamIdleTimeout).String()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		reason = "the stream did not complete within " + readable.Duration(m.Timeout).String()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		reason = "the stream ended before its last event"
	case errors.Is(err, errConvert):
		reason = "the stream could not be translated: " + err.Error()
	default:
		reason = "the stream broke: " + describe(err)
	}
	if !r.committed {
		return c.fail(m, permit, reason) // nothing reached the agent: the next model
	}
	c.observe(m.Label, outcome.Failure)
	c.try.failed(reason)
	c.span.fail("the model's stream was interrupted: " + reason)
	c.g.log.Warn("the model's stream was interrupted", c.traced("model", m.Label, "reason", reason)...)
	c.g.count(m.Label, func(s *modelStats) { s.failures++; s.lastFailure = reason; s.lastFailureAt = c.g.opts.Now() })
	permit.DoneFailure(reason)
	r.write(streamErrorEvent(c.ep.provider, "model "+m.Label+": "+reason+"; the answer is incomplete", c.traceID()))
	return resultAnswered
}

// errorSummary is the type and message of an error event's data, short.
func errorSummary(data []byte) string {
	e := gjson.GetBytes(data, "error")
	s := e.Get("type").Str
	if msg := e.Get("message").Str; msg != "" {
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		s += ": " + msg
	}
	if s == "" {
		s = "error"
	}
	return s
}
