// Package sidecarclient is a small client for the control API of the agent
// sidecar: heartbeats, status, calls to other services through /call/, and
// chat completions through the model gateway. Standard library only.
//
// Usage, in an agent the sidecar supervises (it sets SIDECAR_ADDR and, when
// the control API requires one, SIDECAR_TOKEN):
//
//	sc := sidecarclient.FromEnv()
//	reply, err := sc.Heartbeat(ctx, sidecarclient.Heartbeat{Status: "ok", Note: "handled 3 tasks", Progress: loops})
//	// reply.State is "healthy"; send the next one before reply.NextDue.
//
//	resp, err := sc.Call(ctx, "researcher", http.MethodPost, "/task", body, nil)
//	// a healthy instance of the upstream answered; err is an *Error for a non-2xx answer
//
//	answer, err := sc.Chat(ctx, "gpt-4o", []sidecarclient.Message{{Role: "user", Content: "a haiku"}}, 400)
//	// answer.Model is "gpt-4o-mini" and answer.Degraded true when the lighter fallback answered
//
// Any OpenAI client works too: point it at sc.ModelBaseURL(); the sidecar
// injects the provider's key.
package sidecarclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// DefaultAddr is the sidecar's control API when SIDECAR_ADDR is not set.
const DefaultAddr = "http://127.0.0.1:7070"

// controlTimeout bounds heartbeats and status requests (answered at once).
const controlTimeout = 10 * time.Second

// Client talks to one sidecar. Its methods are safe for concurrent use.
type Client struct {
	addr  string // without a trailing slash
	token string
	// HTTPClient sends every request. Its transport bounds connecting;
	// calls and model answers are bounded by the caller's context.
	HTTPClient *http.Client
}

// New returns a client for the control API at addr (e.g.
// "http://127.0.0.1:7070"; "127.0.0.1:7070" works too). A non-empty token
// is sent with every request as X-Sidecar-Token.
func New(addr, token string) *Client {
	addr = strings.TrimRight(addr, "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	transport := &http.Transport{
		Proxy:                 nil, // the sidecar is local: never through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{addr: addr, token: token, HTTPClient: &http.Client{Transport: transport}}
}

// FromEnv returns a client for $SIDECAR_ADDR (default DefaultAddr) with the
// token $SIDECAR_TOKEN, both set by the sidecar for the agent it supervises.
func FromEnv() *Client {
	addr := os.Getenv("SIDECAR_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	return New(addr, os.Getenv("SIDECAR_TOKEN"))
}

// Addr is the control API's base URL.
func (c *Client) Addr() string { return c.addr }

// ModelBaseURL is the base URL of the sidecar's OpenAI-compatible model
// gateway, for any OpenAI client (OPENAI_BASE_URL).
func (c *Client) ModelBaseURL() string { return c.addr + "/llm/v1" }

// Error is a non-2xx answer, with the type and message of the error JSON
// {"error":{"type":...,"message":...}} that the sidecar, OpenAI and
// Anthropic answer with.
type Error struct {
	Status  int
	Type    string
	Message string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("sidecar: %d", e.Status)
	if e.Type != "" {
		s += " " + e.Type
	}
	return s + ": " + e.Message
}

// Heartbeat is the body of POST /v1/heartbeat. Status is "ok" (also when
// empty), "degraded" or "failing"; Progress is a string or a number that
// changes while the agent gets work done.
type Heartbeat struct {
	Status   string         `json:"status,omitempty"`
	Note     string         `json:"note,omitempty"`
	Metrics  map[string]any `json:"metrics,omitempty"`
	Progress any            `json:"progress,omitempty"`
}

// HeartbeatReply is the part of the agent's health the sidecar answers a
// heartbeat with: State is "waiting", "healthy" or "isolated".
type HeartbeatReply struct {
	State   string    `json:"state"`
	NextDue time.Time `json:"next_due"`
}

// Heartbeat tells the sidecar the agent is alive.
func (c *Client) Heartbeat(ctx context.Context, hb Heartbeat) (*HeartbeatReply, error) {
	var reply HeartbeatReply
	return &reply, c.control(ctx, http.MethodPost, "/v1/heartbeat", hb, &reply)
}

// Status is GET /v1/status: the sidecar, the agent's health, breakers,
// models and more, as decoded JSON.
func (c *Client) Status(ctx context.Context) (map[string]any, error) {
	var status map[string]any
	return status, c.control(ctx, http.MethodGet, "/v1/status", nil, &status)
}

func (c *Client) control(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	resp, err := c.send(ctx, method, c.addr+path, in, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Call sends a request through the sidecar to the upstream (a Consul service
// or a URL of the sidecar's configuration): method {addr}/call/{upstream}{path},
// path with its query, e.g. "/task?lang=en". The sidecar picks an instance
// behind its breaker and falls back when it fails; the answer's
// X-Sidecar-Upstream names who answered and X-Sidecar-Fallback is "true" when
// a fallback did. An Idempotency-Key header lets it send a POST again. A
// non-2xx answer is returned as an *Error; otherwise the caller closes the body.
func (c *Client) Call(ctx context.Context, upstream, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return c.send(ctx, method, c.addr+"/call/"+upstream+path, body, header)
}

// Message is one message of a chat.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatAnswer is a chat completion's text and which model wrote it.
type ChatAnswer struct {
	Content  string
	Model    string // the label that answered (X-Sidecar-Model), else the one asked for
	Degraded bool   // a lighter fallback model answered (X-Sidecar-Degraded)
}

// Chat asks the model (a label of the sidecar's configuration) for one
// non-streaming chat completion through the gateway. maxTokens 0 sends none.
func (c *Client) Chat(ctx context.Context, model string, messages []Message, maxTokens int) (*ChatAnswer, error) {
	req := struct {
		Model     string    `json:"model"`
		Messages  []Message `json:"messages"`
		MaxTokens int       `json:"max_tokens,omitempty"`
	}{model, messages, maxTokens}
	resp, err := c.send(ctx, http.MethodPost, c.ModelBaseURL()+"/chat/completions", req, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var completion struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&completion); err != nil {
		return nil, fmt.Errorf("sidecar: reading the model's answer: %w", err)
	}
	if len(completion.Choices) == 0 {
		return nil, fmt.Errorf("sidecar: the model's answer has no choices")
	}
	answer := &ChatAnswer{
		Content:  completion.Choices[0].Message.Content,
		Model:    resp.Header.Get("X-Sidecar-Model"),
		Degraded: resp.Header.Get("X-Sidecar-Degraded") == "true",
	}
	if answer.Model == "" {
		answer.Model = model
	}
	return answer, nil
}

// send makes one request; body is an io.Reader, or a value sent as JSON. A
// non-2xx answer is read, closed and returned as an *Error.
func (c *Client) send(ctx context.Context, method, url string, body any, header http.Header) (*http.Response, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if _, isReader := body.(io.Reader); body != nil && !isReader {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Sidecar-Token", c.token)
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	var shape struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if json.Unmarshal(raw, &shape) == nil && shape.Error.Message != "" {
		e.Type, e.Message = shape.Error.Type, shape.Error.Message
	} else if text := strings.TrimSpace(string(raw)); text != "" && len(text) <= 200 {
		e.Message = text
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return nil, e
}
