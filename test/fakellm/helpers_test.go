package fakellm_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// start serves a fake model for the test and returns it and its URL.
func start(t *testing.T, opts fakellm.Options) (*fakellm.Server, string) {
	t.Helper()
	s := fakellm.New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// post sends body and returns the answer with its whole body; hdr are
// header name/value pairs.
func post(t *testing.T, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of %s: %v", url, err)
	}
	return resp, b
}

// decode unmarshals b into v or fails the test.
func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

type sseEvent struct {
	Name string // "" for data-only events
	Data string
}

// readSSE reads server-sent events as the SDKs do, until the body ends:
// the error is nil for a clean end, else what broke the body.
func readSSE(r io.Reader) ([]sseEvent, error) {
	br := bufio.NewReader(r)
	var events []sseEvent
	var cur sseEvent
	var data []string
	pending := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" {
				err = nil
			}
			return events, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if pending {
				cur.Data = strings.Join(data, "\n")
				events = append(events, cur)
			}
			cur, data, pending = sseEvent{}, nil, false
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			cur.Name, pending = strings.TrimPrefix(strings.TrimPrefix(line, "event:"), " "), true
		case strings.HasPrefix(line, "data:"):
			data, pending = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")), true
		}
	}
}

// stream posts a streaming request and reads its events; the error is what
// broke the stream, nil for a clean end.
func stream(t *testing.T, url, body string, hdr ...string) (*http.Response, []sseEvent, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %s %s", url, resp.Status, b)
	}
	events, err := readSSE(resp.Body)
	return resp, events, err
}

// names lists the events' names.
func names(events []sseEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Name
	}
	return out
}

// openAIError is OpenAI's error shape.
type openAIError struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// anthropicError is Anthropic's error shape.
type anthropicError struct {
	Type  string `json:"type"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

const (
	chatBody     = `{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello."}]}`
	messagesBody = `{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}`
)

// withStream turns a request body into its streaming form.
func withStream(body string) string {
	return strings.Replace(body, `{`, `{"stream":true,`, 1)
}
