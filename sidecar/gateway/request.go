package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/agent-sidecar/sidecar/internal/bodybuf"
	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/agent-sidecar/sidecar/policies"
)

// request is what the gateway reads of an agent's request body.
type request struct {
	body      []byte // as the agent sent it (in pinned)
	pinned    *pinned
	model     string
	stream    bool
	wantsJSON bool // a JSON response format was asked for
	// addUsage: a chat or completions stream that did not ask for its
	// usage chunk (stream_options.include_usage); the gateway asks for it
	// of a model of the same provider, and does not relay it.
	addUsage bool
}

// readBody reads a request body up to max bytes into a pooled buffer. A
// non-zero status says why it could not.
func readBody(r *http.Request, max int64) (*bodybuf.Buf, int, string) {
	tooLarge := "the request body is larger than the gateway's limit of " + strconv.FormatInt(max, 10) +
		" bytes (gateway.max_request_bytes)"
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	if r.Body == nil {
		return nil, http.StatusBadRequest, "the request has no body: send the request as JSON"
	}
	body, err := bodybuf.Read(r.Body, r.ContentLength, max)
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, bodybuf.ErrTooLarge) || errors.As(err, &mbe):
		body.Release()
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, "could not read the request body: " + err.Error()
	}
	return body, 0, ""
}

// pinned is a request body in a pooled buffer, shared by the call and the
// bodies of the requests it sends: the buffer goes back to the pool when
// the call is over and the transport has closed every one of those bodies
// (net/http's Transport may still be writing one when RoundTrip returns).
type pinned struct {
	buf  *bodybuf.Buf
	refs atomic.Int32
}

func pin(buf *bodybuf.Buf) *pinned {
	p := &pinned{buf: buf}
	p.refs.Store(1)
	return p
}

func (p *pinned) unpin() {
	if p.refs.Add(-1) == 0 {
		p.buf.Release()
	}
}

// reader returns a body reading b (the pinned buffer or a rewritten copy)
// that holds the buffer until it is closed.
func (p *pinned) reader(b []byte) io.ReadCloser {
	p.refs.Add(1)
	return &pinnedReader{Reader: bytes.NewReader(b), p: p}
}

type pinnedReader struct {
	*bytes.Reader
	p      *pinned
	closed atomic.Bool
}

func (r *pinnedReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.p.unpin()
	}
	return nil
}

// parseRequest checks that body is a JSON object with a model, and reads
// what the gateway needs. A non-empty message says what is wrong.
func parseRequest(body []byte, ep endpoint) (request, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return request{}, "the request body is empty: send the request as a JSON object"
	}
	// gjson's validator recurses once per level: the iterative scan sees
	// the body first, so no parser meets a body nested without limit.
	scan, err := jsonguard.Scan(body, jsonguard.MaxDepth)
	if err != nil {
		if jsonguard.TooDeep(err) {
			return request{}, "the request body is " + err.Error() + "; the gateway's limit is " +
				strconv.Itoa(jsonguard.MaxDepth) + ": send a flatter request"
		}
		return request{}, "the request body is not valid JSON: " + err.Error()
	}
	if !utf8.Valid(body) {
		return request{}, "the request body is not valid JSON: it is not valid UTF-8"
	}
	if scan.First != '{' {
		return request{}, "the request body must be a JSON object"
	}
	if scan.Dup != nil {
		// The gateway would read the first, a provider the last.
		return request{}, "the request body is ambiguous: the top-level key " + strconv.Quote(clipKey(scan.DuplicateKey())) +
			" appears twice; send each key once"
	}
	// GetBytes reads body in place; ParseBytes would copy it first.
	model := gjson.GetBytes(body, "model")
	if model.Type != gjson.String || model.Str == "" {
		return request{}, `the request has no "model": set "model" to one of the gateway's models (GET /llm/v1/models lists them)`
	}
	req := request{body: body, model: model.Str, stream: gjson.GetBytes(body, "stream").Type == gjson.True}
	if req.stream && (ep.kind == kindChat || ep.kind == kindCompletion) {
		req.addUsage = gjson.GetBytes(body, "stream_options.include_usage").Type != gjson.True
	}
	switch ep.kind {
	case kindChat:
		req.wantsJSON = jsonFormat(gjson.GetBytes(body, "response_format.type").Str)
	case kindResponse:
		req.wantsJSON = jsonFormat(gjson.GetBytes(body, "text.format.type").Str)
	}
	return req, ""
}

// clipKey shortens a key quoted in a message to 64 bytes, whole runes.
func clipKey(k string) string {
	if len(k) <= 64 {
		return k
	}
	n := 64
	for n > 0 && !utf8.RuneStart(k[n]) {
		n--
	}
	return k[:n] + "…"
}

func jsonFormat(t string) bool { return t == "json_object" || t == "json_schema" }

// gjsonKey escapes a top-level field name for a gjson/sjson path.
func gjsonKey(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch r {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%', ':', '[', ']', '{', '}', ',':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// rewrite returns the body to send to model m: the model name replaced,
// the agent's cap moved to the field m takes it in (max_tokens_field), m's
// max_tokens cap applied and m's fields dropped, last, so a dropped field
// is never sent, the cap field included. askUsage adds
// stream_options.include_usage (an OpenAI stream whose usage the agent did
// not ask for: the gateway counts it). Every other byte stays as the agent
// sent it; body itself is not modified.
func rewrite(body []byte, m *policies.Model, ep endpoint, askUsage bool) ([]byte, error) {
	out := body
	var err error
	if gjson.GetBytes(out, "model").Str != m.Name {
		if out, err = sjson.SetBytes(out, "model", m.Name); err != nil {
			return nil, err
		}
	}
	tokens := ep.tokens
	if f := m.MaxTokensField; f != "" && slices.Contains(tokens, f) {
		if out, err = moveCap(out, tokens, f); err != nil {
			return nil, err
		}
		tokens = []string{f}
	}
	if m.MaxTokens > 0 && len(tokens) > 0 {
		present := false
		for _, f := range tokens {
			v := gjson.GetBytes(out, f)
			if !v.Exists() {
				continue
			}
			present = true
			if v.Type == gjson.Number && v.Int() > 0 && v.Int() <= int64(m.MaxTokens) {
				continue // within the cap
			}
			if out, err = sjson.SetBytes(out, f, m.MaxTokens); err != nil {
				return nil, err
			}
		}
		if !present {
			if out, err = sjson.SetBytes(out, tokens[0], m.MaxTokens); err != nil {
				return nil, err
			}
		}
	}
	if askUsage {
		// Before the dropped fields: a model that refuses stream_options
		// drops it, and its streams are then relayed as they come.
		if out, err = withUsage(out); err != nil {
			return nil, err
		}
	}
	for _, f := range m.DropFields {
		key := gjsonKey(f)
		if gjson.GetBytes(out, key).Exists() {
			if out, err = sjson.DeleteBytes(out, key); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// moveCap moves the agent's cap from the other fields of tokens to field
// f: a reasoning model refuses max_tokens and takes max_completion_tokens.
// When the request has f already, the others are removed.
func moveCap(body []byte, tokens []string, f string) ([]byte, error) {
	out := body
	var err error
	for _, g := range tokens {
		if g == f {
			continue
		}
		v := gjson.GetBytes(out, g)
		if !v.Exists() {
			continue
		}
		if !gjson.GetBytes(out, f).Exists() {
			if out, err = sjson.SetRawBytes(out, f, []byte(v.Raw)); err != nil {
				return nil, err
			}
		}
		if out, err = sjson.DeleteBytes(out, g); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withUsage asks an OpenAI stream for its final usage chunk
// (stream_options.include_usage), keeping the other stream_options. A
// stream_options that is neither an object nor null is left for the
// provider to refuse.
func withUsage(body []byte) ([]byte, error) {
	so := gjson.GetBytes(body, "stream_options")
	switch {
	case !so.Exists() || so.Type == gjson.Null:
		return sjson.SetRawBytes(body, "stream_options", []byte(`{"include_usage":true}`))
	case so.IsObject():
		return sjson.SetBytes(body, "stream_options.include_usage", true)
	}
	return body, nil
}
