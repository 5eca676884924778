package gateway

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/agent-sidecar/sidecar/policies"
)

// FuzzParseAndRewrite feeds arbitrary request bodies to the gateway's
// parser and rewrite: no panic; a body the parser accepts is rewritten into
// valid JSON that names the fallback's model, caps max_tokens, lacks the
// dropped field, and keeps every other top-level field byte for byte; for a
// reasoning model, the cap is in max_completion_tokens and max_tokens is
// never sent.
func FuzzParseAndRewrite(f *testing.F) {
	for _, seed := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[1],"max_tokens":4000}`,
		`{"model":"a","stream":true,"response_format":{"type":"json_object"}}`,
		`{ "model" : "x\u00e9", "max_tokens": -1, "n": 1e400 }`,
		`{"model":"a","max_tokens":"lots","model":"b"}`,
		`[1]`, `{"model":1}`, `{}`, ``, `{"model":"a"} x`, "{\"model\":\"\xff\"}",
		`{"model":"gpt-4o-mini","max_tokens":10,"model":"o1-pro","max_tokens":100000}`,
		`{"model":"a","mod\u0065l":"b"}`, `{"model":"a","x":{"model":"b","model":"c"}}`,
		`{"model":"a","messages":` + strings.Repeat("[", 129) + strings.Repeat("]", 129) + `}`,
		`{"model":"a","messages":` + strings.Repeat("[", 127) + strings.Repeat("]", 127) + `}`,
		strings.Repeat("[", 100_000), strings.Repeat(`{"a":`, 200),
	} {
		f.Add([]byte(seed))
	}
	m := &policies.Model{Name: "lite.model", MaxTokens: 64, DropFields: []string{"tools", "odd.key*"}}
	reasoning := &policies.Model{Name: "o3-mini", MaxTokens: 64, MaxTokensField: "max_completion_tokens",
		DropFields: []string{"max_tokens", "temperature"}}
	ep := endpoints["/v1/chat/completions"]
	f.Fuzz(func(t *testing.T, body []byte) {
		req, msg := parseRequest(body, ep)
		if msg != "" {
			return
		}
		if d := depth(body); d > jsonguard.MaxDepth {
			t.Fatalf("accepted a body nested %d deep: %q", d, body)
		}
		gjson.ParseBytes(body).ForEach(func(k, _ gjson.Result) bool {
			if dupKey(body, k.Str) {
				t.Fatalf("accepted a body with %q twice: %q", k.Str, body)
			}
			return true
		})
		out, err := rewrite(req.body, m, ep, false)
		if err != nil {
			return // sjson refused an odd body: the gateway answers with a reason
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("rewrite of %q gave invalid JSON %q", body, out)
		}
		if got := gjson.GetBytes(out, "model").Str; got != m.Name {
			t.Fatalf("model %q after rewrite of %q", got, body)
		}
		if gjson.GetBytes(out, "tools").Exists() {
			t.Fatalf("tools kept in %q", out)
		}
		if v := gjson.GetBytes(out, "max_tokens"); v.Type != gjson.Number || v.Int() > 64 || v.Int() <= 0 {
			t.Fatalf("max_tokens %s after rewrite of %q", v.Raw, body)
		}
		keptOthers(t, body, out, "tools")

		out, err = rewrite(req.body, reasoning, ep, false)
		if err != nil {
			return
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("rewrite of %q for a reasoning model gave invalid JSON %q", body, out)
		}
		if gjson.GetBytes(out, "max_tokens").Exists() || gjson.GetBytes(out, "temperature").Exists() {
			t.Fatalf("a dropped field sent to the reasoning model: %q", out)
		}
		if v := gjson.GetBytes(out, "max_completion_tokens"); v.Type != gjson.Number || v.Int() > 64 || v.Int() <= 0 {
			t.Fatalf("max_completion_tokens %s after rewrite of %q", v.Raw, body)
		}
		keptOthers(t, body, out, "temperature")
	})
}

// keptOthers fails when a top-level field of body other than the model,
// the caps and dropped changed in out.
func keptOthers(t *testing.T, body, out []byte, dropped string) {
	t.Helper()
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model", dropped, "max_tokens", "max_completion_tokens":
			return true
		}
		if got := gjson.GetBytes(out, gjsonKey(k.Str)); got.Exists() && got.Raw != v.Raw && !dupKey(body, k.Str) {
			t.Fatalf("field %q changed from %s to %s", k.Str, v.Raw, got.Raw)
		}
		return true
	})
}

// depth is how deeply body's arrays and objects nest.
func depth(body []byte) int {
	d, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			d++
			deepest = max(deepest, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return deepest
}

// dupKey reports whether a top-level key appears more than once (then
// which value a path finds is not defined).
func dupKey(body []byte, key string) bool {
	n := 0
	gjson.ParseBytes(body).ForEach(func(k, _ gjson.Result) bool {
		if k.Str == key {
			n++
		}
		return true
	})
	return n > 1
}

// FuzzEventReader feeds arbitrary streams to the SSE splitter: no panic,
// no endless loop, and the events it returns are the stream's bytes in
// order, verbatim.
func FuzzEventReader(f *testing.F) {
	for _, seed := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		"event: message_start\r\ndata: {}\r\n\r\n: ping\n\n",
		"data: x\ndata: y\n\n\n\n",
		"data: cut",
		"\n\n\n",
		"event: error\ndata: {\"error\":{\"type\":\"x\"}}\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		er := newEventReader(bytes.NewReader(stream))
		var raws [][]byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i <= len(stream); i++ {
				ev, err := er.next()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Errorf("error %v", err)
					}
					return
				}
				_ = ev.isError()
				_ = ev.terminal(kindResponse)
				raws = append(raws, append([]byte(nil), ev.raw...))
			}
			t.Errorf("more events than bytes")
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the reader did not finish")
		}
		// Each event is the stream's own bytes, in order (stray blank
		// lines between events are skipped).
		rest := stream
		for _, raw := range raws {
			i := bytes.Index(rest, raw)
			if i < 0 || len(bytes.Trim(rest[:i], "\r\n")) > 0 {
				t.Fatalf("event %q is not the next part of the stream %q", raw, rest)
			}
			rest = rest[i+len(raw):]
		}
	})
}
