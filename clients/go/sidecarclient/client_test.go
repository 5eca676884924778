package sidecarclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const token = "test-token-0123456789abcdef"

// sidecar is a fake control API that records the last request it received.
type sidecar struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen seenRequest
}

type seenRequest struct {
	method string
	path   string // with its query
	header http.Header
	body   []byte
}

func (s *sidecar) last() seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

func fakeSidecar(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*sidecar, *Client) {
	t.Helper()
	s := &sidecar{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = seenRequest{r.Method, r.URL.RequestURI(), r.Header.Clone(), body}
		s.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s, New(s.srv.URL+"/", token) // a trailing slash is fine
}

func reply(status int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestHeartbeatSendsTheBodyAndTheTokenAndReadsTheHealth(t *testing.T) {
	due := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s, c := fakeSidecar(t, reply(200, `{"state":"healthy","heartbeats":3,"next_due":"`+due.Format(time.RFC3339)+`"}`))
	got, err := c.Heartbeat(context.Background(), Heartbeat{
		Status: "ok", Note: "handled 2 tasks", Metrics: map[string]any{"tasks": 2}, Progress: 41,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "healthy" || !got.NextDue.Equal(due) {
		t.Errorf("reply %+v, want healthy, next due %s", got, due)
	}
	if s.last().method != "POST" || s.last().path != "/v1/heartbeat" {
		t.Errorf("sent %s %s, want POST /v1/heartbeat", s.last().method, s.last().path)
	}
	if s.last().header.Get("X-Sidecar-Token") != token || s.last().header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v lack the token or the JSON content type", s.last().header)
	}
	want := `{"status":"ok","note":"handled 2 tasks","metrics":{"tasks":2},"progress":41}`
	if string(s.last().body) != want {
		t.Errorf("body %s, want %s", s.last().body, want)
	}

	// Empty fields are left out; a zero progress is still sent.
	if _, err := c.Heartbeat(context.Background(), Heartbeat{Progress: 0}); err != nil {
		t.Fatal(err)
	}
	if string(s.last().body) != `{"progress":0}` {
		t.Errorf("body %s, want only the progress", s.last().body)
	}
}

func TestNoTokenNoHeader(t *testing.T) {
	s, _ := fakeSidecar(t, reply(200, `{"agent":{"id":"writer-1"}}`))
	status, err := New(s.srv.URL, "").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, sent := s.last().header["X-Sidecar-Token"]; sent || s.last().path != "/v1/status" {
		t.Errorf("GET %s with headers %v, want /v1/status without a token", s.last().path, s.last().header)
	}
	if status["agent"].(map[string]any)["id"] != "writer-1" {
		t.Errorf("status %v", status)
	}
}

func TestErrorsAreParsed(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		header     []string
		want       Error // without Response
		kind       error
		text       string
	}{
		{"sidecar", `{"error":{"type":"unavailable","message":"no instance of researcher is passing","trace_id":"4bf9"}}`, 503,
			[]string{"Retry-After", "7"},
			Error{Status: 503, Type: "unavailable", Message: "no instance of researcher is passing", TraceID: "4bf9", RetryAfter: 7 * time.Second},
			ErrUnavailable, "sidecar: 503 unavailable: no instance of researcher is passing"},
		{"openai", `{"error":{"message":"no model could answer","type":"server_error","param":null,"code":"models_unavailable"}}`, 503, nil,
			Error{Status: 503, Type: "server_error", Message: "no model could answer", Code: "models_unavailable"},
			ErrUnavailable, "sidecar: 503 server_error: no model could answer"},
		{"anthropic", `{"type":"error","error":{"type":"rate_limit_error","message":"budget spent"}}`, 429, []string{"Retry-After", "30"},
			Error{Status: 429, Type: "rate_limit_error", Message: "budget spent", RetryAfter: 30 * time.Second},
			ErrRateLimited, "sidecar: 429 rate_limit_error: budget spent"},
		{"bad request", `{"error":{"type":"invalid_request","message":"heartbeat status \"great\" is not valid"}}`, 400, nil,
			Error{Status: 400, Type: "invalid_request", Message: `heartbeat status "great" is not valid`},
			ErrBadRequest, `sidecar: 400 invalid_request: heartbeat status "great" is not valid`},
		{"forbidden", `{"error":{"type":"forbidden","message":"a web page's request"}}`, 403, nil,
			Error{Status: 403, Type: "forbidden", Message: "a web page's request"}, ErrUnauthorized, "sidecar: 403 forbidden: a web page's request"},
		{"too large", `{"error":{"type":"request_too_large","message":"over 64 KiB"}}`, 413, nil,
			Error{Status: 413, Type: "request_too_large", Message: "over 64 KiB"}, ErrTooLarge, "sidecar: 413 request_too_large: over 64 KiB"},
		{"timeout", `{"error":{"type":"timeout","message":"no answer within 60s"}}`, 504, nil,
			Error{Status: 504, Type: "timeout", Message: "no answer within 60s"}, ErrTimeout, "sidecar: 504 timeout: no answer within 60s"},
		{"plain text", "upstream says no\n", 418, nil, Error{Status: 418, Message: "upstream says no"}, nil, "sidecar: 418: upstream says no"},
		{"empty", "", 502, nil, Error{Status: 502, Message: "Bad Gateway"}, ErrBadGateway, "sidecar: 502: Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := fakeSidecar(t, reply(tc.status, tc.body, tc.header...))
			_, err := c.Heartbeat(context.Background(), Heartbeat{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %#v, want an *Error", err)
			}
			if e.Response == nil || e.Response.Status != tc.status {
				t.Errorf("Response %+v, want the answer", e.Response)
			}
			got := *e
			got.Response = nil
			if got != tc.want {
				t.Errorf("error %#v, want %#v", got, tc.want)
			}
			if err.Error() != tc.text {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.text)
			}
			for _, kind := range []error{ErrBadRequest, ErrUnauthorized, ErrTooLarge, ErrRateLimited, ErrBadGateway, ErrUnavailable, ErrTimeout} {
				if errors.Is(err, kind) != (kind == tc.kind) {
					t.Errorf("errors.Is(err, %v) = %v", kind, !(kind == tc.kind))
				}
			}
		})
	}
}

func TestAnUnreachableSidecarIsErrUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := New(srv.URL, "").Status(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("error %v, want ErrUnreachable", err)
	}
}

func TestCallJoinsThePathAndSaysWhoAnswered(t *testing.T) {
	s, c := fakeSidecar(t, reply(200, `{"output":"notes"}`,
		"X-Sidecar-Upstream", "researcher-lite", "X-Sidecar-Instance", "10.0.0.7:8080", "X-Sidecar-Fallback", "true"))
	resp, err := c.Call(context.Background(), "researcher", "/task?lang=en", CallOptions{JSON: map[string]string{"input": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.last().method != "POST" || s.last().path != "/call/researcher/task?lang=en" {
		t.Errorf("sent %s %s, want POST /call/researcher/task?lang=en", s.last().method, s.last().path)
	}
	if string(s.last().body) != `{"input":"x"}` || s.last().header.Get("Content-Type") != "application/json" ||
		s.last().header.Get("X-Sidecar-Token") != token {
		t.Errorf("sent body %s, headers %v", s.last().body, s.last().header)
	}
	if key := s.last().header.Get("Idempotency-Key"); len(key) < 16 {
		t.Errorf("Idempotency-Key %q, want a random one for a POST", key)
	}
	var got map[string]string
	if err := resp.JSON(&got); err != nil || got["output"] != "notes" || resp.Status != 200 {
		t.Errorf("answer %d %s: %v", resp.Status, resp.Body, err)
	}
	if resp.Upstream != "researcher-lite" || resp.Instance != "10.0.0.7:8080" || !resp.Fallback {
		t.Errorf("who answered: %+v", resp)
	}

	// A path without its slash gets one; a GET, and a POST told so, have no key; a key of one's own is sent.
	c2 := New(strings.TrimPrefix(s.srv.URL, "http://"), "") // no scheme: http
	if _, err := c2.Call(context.Background(), "search", "v1/items", CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if s.last().method != "GET" || s.last().path != "/call/search/v1/items" || s.last().header.Get("Idempotency-Key") != "" {
		t.Errorf("sent %s %s %v, want GET /call/search/v1/items without a key", s.last().method, s.last().path, s.last().header)
	}
	if _, err := c2.Call(context.Background(), "search", "/", CallOptions{Body: strings.NewReader("raw"), IdempotencyKey: NoIdempotencyKey}); err != nil {
		t.Fatal(err)
	}
	if s.last().method != "POST" || string(s.last().body) != "raw" || s.last().header.Get("Idempotency-Key") != "" {
		t.Errorf("sent %s %s %v", s.last().method, s.last().body, s.last().header)
	}
	if _, err := c2.Call(context.Background(), "search", "/", CallOptions{Method: "put", JSON: 1, IdempotencyKey: "k-1"}); err != nil {
		t.Fatal(err)
	}
	if s.last().method != "PUT" || s.last().header.Get("Idempotency-Key") != "k-1" {
		t.Errorf("sent %s %v", s.last().method, s.last().header)
	}
	if _, err := c2.Call(context.Background(), "../admin", "/", CallOptions{}); err == nil {
		t.Error("a bad upstream name was sent")
	}

	_, c3 := fakeSidecar(t, reply(503, `{"error":{"type":"unavailable","message":"breaker open"}}`))
	_, err = c3.Call(context.Background(), "search", "/", CallOptions{})
	if e := (*Error)(nil); !errors.As(err, &e) || e.Status != 503 || e.Message != "breaker open" {
		t.Errorf("error %v, want the sidecar's 503", err)
	}
}

func TestTraceHeadersGoWithCallsAndModelRequestsOnly(t *testing.T) {
	s, c := fakeSidecar(t, reply(200, `{"choices":[{"message":{"content":"ok"}}],"state":"healthy"}`))
	incoming := http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":  {"a=1"},
		"Baggage":     {"user=7"},
		"Cookie":      {"secret"},
	}
	ctx := WithTraceHeaders(context.Background(), incoming)
	want := http.Header{"Traceparent": incoming["Traceparent"], "Tracestate": {"a=1"}, "Baggage": {"user=7"}}
	if got := TraceHeaders(ctx); !reflect.DeepEqual(got, want) {
		t.Errorf("TraceHeaders %v, want %v", got, want)
	}
	if _, err := c.Call(ctx, "researcher", "/task", CallOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Traceparent", "Tracestate", "Baggage"} {
		if s.last().header.Get(name) != want.Get(name) {
			t.Errorf("call: %s %q, want %q", name, s.last().header.Get(name), want.Get(name))
		}
	}
	if s.last().header.Get("Cookie") != "" {
		t.Error("the task's cookie went on")
	}
	if _, err := c.Chat(ctx, "gpt-4o", []Message{{Role: "user", Content: "hi"}}, 0); err != nil {
		t.Fatal(err)
	}
	if s.last().header.Get("Traceparent") != want.Get("Traceparent") {
		t.Errorf("chat: headers %v lack the trace", s.last().header)
	}
	if _, err := c.Heartbeat(ctx, Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	if s.last().header.Get("Traceparent") != "" {
		t.Error("a heartbeat carried the task's trace")
	}
	if len(TraceHeaders(context.Background())) != 0 {
		t.Error("trace headers without WithTraceHeaders")
	}
}

func TestChat(t *testing.T) {
	completion := `{"id":"c1","object":"chat.completion","model":"gpt-4o-mini-2024",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"A short poem."},"finish_reason":"stop"}]}`
	s, c := fakeSidecar(t, reply(200, completion, "X-Sidecar-Model", "gpt-4o-mini", "X-Sidecar-Degraded", "true", "X-Sidecar-Attempts", "2"))
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "a poem"}}
	got, err := c.Chat(context.Background(), "gpt-4o", msgs, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if *got != (ChatAnswer{Content: "A short poem.", Model: "gpt-4o-mini", Degraded: true, Attempts: 2}) {
		t.Errorf("answer %+v, want the lighter model's, degraded", got)
	}
	if s.last().path != "/llm/v1/chat/completions" || s.last().header.Get("X-Sidecar-Token") != token {
		t.Errorf("sent to %s with headers %v", s.last().path, s.last().header)
	}
	var req map[string]any
	if err := json.Unmarshal(s.last().body, &req); err != nil || req["model"] != "gpt-4o" || req["max_tokens"] != 4000.0 ||
		len(req["messages"].([]any)) != 2 || req["stream"] != nil {
		t.Errorf("request %s", s.last().body)
	}

	// Without the sidecar's headers: the model asked for, not degraded.
	_, c = fakeSidecar(t, reply(200, completion))
	if got, err = c.Chat(context.Background(), "gpt-4o", msgs, 0); err != nil || got.Model != "gpt-4o" || got.Degraded {
		t.Errorf("answer %+v, %v", got, err)
	}
	if c.ModelBaseURL() != strings.TrimRight(c.addr, "/")+"/llm/v1" {
		t.Errorf("ModelBaseURL %s", c.ModelBaseURL())
	}

	// A model error in OpenAI's shape.
	_, c = fakeSidecar(t, reply(404, `{"error":{"message":"model \"gpt-5\" is not configured","type":"invalid_request_error","code":"model_not_found"}}`))
	_, err = c.Chat(context.Background(), "gpt-5", msgs, 0)
	if err == nil || err.Error() != `sidecar: 404 invalid_request_error: model "gpt-5" is not configured` {
		t.Errorf("error %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("SIDECAR_ADDR", "")
	t.Setenv("SIDECAR_TOKEN", "")
	if c := FromEnv(); c.ModelBaseURL() != "http://127.0.0.1:7070/llm/v1" || c.token != "" {
		t.Errorf("default client %+v", c)
	}
	t.Setenv("SIDECAR_ADDR", "http://127.0.0.1:7073")
	t.Setenv("SIDECAR_TOKEN", token)
	if c := FromEnv(); c.ModelBaseURL() != "http://127.0.0.1:7073/llm/v1" || c.token != token {
		t.Errorf("client %+v", c)
	}
}

func TestContextCancelsACall(t *testing.T) {
	release := make(chan struct{})
	_, c := fakeSidecar(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, "slow", "/", CallOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's deadline", err)
	}
}
