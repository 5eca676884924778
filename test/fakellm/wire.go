package fakellm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// obj is a JSON object whose fields keep their order, so answers read like
// the providers' own.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// newID is a random ID with a provider's prefix ("chatcmpl-", "msg_", …).
func newID(prefix string) string {
	var b [12]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return prefix + hex.EncodeToString(b[:])
}

// requestIDHeader sets the request ID header of the call's provider.
func (c *call) requestIDHeader(provider string) {
	if provider == anthropic {
		c.w.Header().Set("request-id", newID("req_"))
	} else {
		c.w.Header().Set("x-request-id", newID("req_"))
	}
}

// writeJSON answers v; with CutAfter, a 2xx answer stops after half its body
// and the connection is closed.
func (c *call) writeJSON(status int, v any) {
	b := mustJSON(v)
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.requestIDHeader(c.ep.provider)
	c.status = status
	c.w.WriteHeader(status)
	if status < 300 && c.faults.CutAfter > 0 {
		c.note(fmt.Sprintf("cut after %d of %d bytes", len(b)/2, len(b)))
		_, _ = c.w.Write(b[:len(b)/2])
		c.abort(false)
		return
	}
	_, _ = c.w.Write(b)
}

// event is one server-sent event; name is empty for OpenAI's data-only
// events.
type event struct {
	name string
	data []byte
}

func dataEvent(v any) event               { return event{data: mustJSON(v)} }
func namedEvent(name string, v any) event { return event{name: name, data: mustJSON(v)} }

var doneEvent = event{data: []byte("[DONE]")}

// stream answers events as text/event-stream, flushing each; EventDelay
// is waited between them, and CutAfter breaks the stream before its end.
func (c *call) stream(events []event) {
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	c.requestIDHeader(c.ep.provider)
	c.status = http.StatusOK
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	_ = rc.Flush()

	cut := -1
	if k := c.faults.CutAfter; k > 0 {
		cut = min(k, len(events)-1)
	}
	delay := c.faults.EventDelay
	if delay > 0 {
		c.note("event_delay " + delay.String())
	}
	var buf bytes.Buffer
	for i, ev := range events {
		if i > 0 && delay > 0 && !sleep(c.r.Context(), delay) {
			c.note("client gone")
			return
		}
		if i == cut {
			c.note(fmt.Sprintf("cut after %d of %d events", cut, len(events)))
			c.abort(false)
			return
		}
		buf.Reset()
		if ev.name != "" {
			buf.WriteString("event: ")
			buf.WriteString(ev.name)
			buf.WriteByte('\n')
		}
		buf.WriteString("data: ")
		buf.Write(ev.data)
		buf.WriteString("\n\n")
		if _, err := c.w.Write(buf.Bytes()); err != nil {
			c.note("client gone")
			return
		}
		if err := rc.Flush(); err != nil {
			c.note("client gone")
			return
		}
	}
}

// abort closes the call's connection: after what was written (the end of
// a chunked body or the rest of a Content-Length body never comes, so the
// client sees a broken answer), or at once with a TCP RST when rst is set.
func (c *call) abort(rst bool) {
	rc := http.NewResponseController(c.w)
	if !rst {
		_ = rc.Flush()
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		// HTTP/2 and writers that cannot hijack: abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	if rst {
		nc := conn
		if t, ok := nc.(interface{ NetConn() net.Conn }); ok {
			nc = t.NetConn()
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
	}
	_ = conn.Close()
}

// pieces splits a completion into the pieces a stream sends: one per word
// (each with the space before it), and at least two for any text of two or
// more characters.
func pieces(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	if len(out) == 1 && utf8.RuneCountInString(s) > 1 {
		half := 0
		for range utf8.RuneCountInString(s) / 2 {
			_, size := utf8.DecodeRuneInString(s[half:])
			half += size
		}
		out = []string{s[:half], s[half:]}
	}
	return out
}

// tokens estimates the tokens of a text: about four characters each.
func tokens(s string) int {
	return (len(s) + 3) / 4
}

// promptTokens estimates the tokens of a request's prompt from the text in
// its messages, input, prompt, system and instructions (at least 1).
func (q *request) promptTokens() int {
	n := 0
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case string:
			if key != "role" && key != "type" {
				n += len(v)
			}
		case []any:
			for _, e := range v {
				walk(key, e)
			}
		case map[string]any:
			for k, e := range v {
				walk(k, e)
			}
		}
	}
	for _, raw := range []json.RawMessage{q.Messages, q.Input, q.Prompt, q.System, q.Instructions} {
		var v any
		if len(raw) > 0 && json.Unmarshal(raw, &v) == nil {
			walk("", v)
		}
	}
	return max(1, (n+3)/4)
}
