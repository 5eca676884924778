package sidecarclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
	seen request
}

type request struct {
	method string
	path   string // with its query
	header http.Header
	body   []byte
}

func (s *sidecar) last() request {
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
		s.seen = request{r.Method, r.URL.RequestURI(), r.Header.Clone(), body}
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
		want       Error
		text       string
	}{
		{"sidecar", `{"error":{"type":"unavailable","message":"no instance of researcher is passing"}}`, 503,
			Error{503, "unavailable", "no instance of researcher is passing"},
			"sidecar: 503 unavailable: no instance of researcher is passing"},
		{"openai", `{"error":{"message":"no model could answer","type":"server_error","param":null,"code":"models_unavailable"}}`, 503,
			Error{503, "server_error", "no model could answer"}, "sidecar: 503 server_error: no model could answer"},
		{"plain text", "upstream says no\n", 418, Error{418, "", "upstream says no"}, "sidecar: 418: upstream says no"},
		{"empty", "", 502, Error{502, "", "Bad Gateway"}, "sidecar: 502: Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := fakeSidecar(t, reply(tc.status, tc.body))
			_, err := c.Heartbeat(context.Background(), Heartbeat{})
			var e *Error
			if !errors.As(err, &e) || *e != tc.want {
				t.Fatalf("error %#v, want %#v", err, tc.want)
			}
			if err.Error() != tc.text {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.text)
			}
		})
	}
}

func TestCallJoinsThePathAndPassesTheAnswer(t *testing.T) {
	s, c := fakeSidecar(t, reply(200, `{"output":"notes"}`, "X-Sidecar-Upstream", "researcher"))
	h := http.Header{"Idempotency-Key": {"abc123"}, "Content-Type": {"application/json"}}
	resp, err := c.Call(context.Background(), "researcher", http.MethodPost, "/task?lang=en", strings.NewReader(`{"input":"x"}`), h)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if s.last().method != "POST" || s.last().path != "/call/researcher/task?lang=en" {
		t.Errorf("sent %s %s, want POST /call/researcher/task?lang=en", s.last().method, s.last().path)
	}
	if string(s.last().body) != `{"input":"x"}` || s.last().header.Get("Idempotency-Key") != "abc123" || s.last().header.Get("X-Sidecar-Token") != token {
		t.Errorf("sent body %s, headers %v", s.last().body, s.last().header)
	}
	if string(body) != `{"output":"notes"}` || resp.Header.Get("X-Sidecar-Upstream") != "researcher" {
		t.Errorf("answer %s %v", body, resp.Header)
	}

	// A path without its slash gets one; a failure is an *Error.
	c2 := New(strings.TrimPrefix(s.srv.URL, "http://"), "") // no scheme: http
	_, c3 := fakeSidecar(t, reply(503, `{"error":{"type":"unavailable","message":"breaker open"}}`))
	if _, err := c2.Call(context.Background(), "search", http.MethodGet, "v1/items", nil, nil); err != nil {
		t.Fatal(err)
	}
	if s.last().method != "GET" || s.last().path != "/call/search/v1/items" {
		t.Errorf("sent %s %s, want GET /call/search/v1/items", s.last().method, s.last().path)
	}
	_, err = c3.Call(context.Background(), "search", http.MethodGet, "/", nil, nil)
	if e := (*Error)(nil); !errors.As(err, &e) || e.Status != 503 || e.Message != "breaker open" {
		t.Errorf("error %v, want the sidecar's 503", err)
	}
}

func TestChat(t *testing.T) {
	completion := `{"id":"c1","object":"chat.completion","model":"gpt-4o-mini-2024",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"A short poem."},"finish_reason":"stop"}]}`
	s, c := fakeSidecar(t, reply(200, completion, "X-Sidecar-Model", "gpt-4o-mini", "X-Sidecar-Degraded", "true"))
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "a poem"}}
	got, err := c.Chat(context.Background(), "gpt-4o", msgs, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if *got != (ChatAnswer{Content: "A short poem.", Model: "gpt-4o-mini", Degraded: true}) {
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
	if _, err := c.Call(ctx, "slow", http.MethodGet, "/", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's deadline", err)
	}
}
