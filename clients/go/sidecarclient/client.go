// Package sidecarclient is the Go client of the agent sidecar: a heartbeat
// loop, calls to other services through /call/ (with an idempotency key and
// who answered), chat completions through the model gateway, the sidecar's
// errors by kind, and the W3C trace context of the task being handled
// forwarded on every call and model request. Standard library only.
//
// Usage, in an agent the sidecar supervises (it sets SIDECAR_ADDR and, when
// the control API requires one, SIDECAR_TOKEN):
//
//	sc := sidecarclient.FromEnv()
//	hb := sc.StartHeartbeats(ctx, sidecarclient.HeartbeatOptions{Note: "ready"})
//	defer hb.Stop()
//	hb.AddProgress(1) // as work gets done
//
//	ctx = sidecarclient.WithTraceHeaders(ctx, incoming.Header) // the task's traceparent goes on
//	resp, err := sc.Call(ctx, "researcher", "/task", sidecarclient.CallOptions{JSON: task})
//	// resp.Upstream answered; resp.Fallback is true when it was not the first choice
//
//	answer, err := sc.Chat(ctx, "gpt-4o", []sidecarclient.Message{{Role: "user", Content: "a haiku"}}, 400)
//	// answer.Model is "gpt-4o-mini" and answer.Degraded true when the lighter fallback answered
//
// Any OpenAI client works too: point it at sc.ModelBaseURL(), an Anthropic
// one at sc.AnthropicBaseURL(); the sidecar injects the provider's key.
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

const (
	controlTimeout   = 10 * time.Second // heartbeats and status requests (answered at once)
	maxResponseBytes = 32 << 20         // a call's or model's answer read into memory
	maxErrorBytes    = 64 << 10         // an error answer read to tell its type
)

// Client talks to one sidecar. Its methods are safe for concurrent use.
type Client struct {
	addr  string // without a trailing slash
	token string
	// HTTPClient sends every request. Its transport bounds connecting;
	// calls and model answers are bounded by the caller's context and
	// their Timeout.
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
	return &Client{addr: addr, token: token, HTTPClient: &http.Client{
		Transport: transport,
		// An answer is passed back as it came: a call's redirect is the
		// caller's to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
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

// AnthropicBaseURL is the base URL for Anthropic clients (ANTHROPIC_BASE_URL).
func (c *Client) AnthropicBaseURL() string { return c.addr + "/llm" }

// request is one request to the sidecar.
type request struct {
	method, url string
	body        any // nil, an io.Reader, or a value sent as JSON
	header      http.Header
	trace       bool // add the trace headers of ctx
}

// send makes one request and reads its answer whole. A non-2xx answer is
// returned as an *Error; a failure to reach the sidecar wraps ErrUnreachable.
func (c *Client) send(ctx context.Context, r request) (*Response, error) {
	var body io.Reader
	isJSON := false
	switch b := r.body.(type) {
	case nil:
	case io.Reader:
		body = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("sidecar: encoding the request: %w", err)
		}
		body, isJSON = bytes.NewReader(raw), true
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, err
	}
	if r.trace {
		for k, v := range TraceHeaders(ctx) {
			req.Header[k] = v
		}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if isJSON && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Sidecar-Token", c.token)
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := int64(maxResponseBytes)
	if !ok {
		limit = maxErrorBytes
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("sidecar: reading the answer: %w", err)
	}
	if int64(len(raw)) > limit {
		if ok {
			return nil, fmt.Errorf("sidecar: the answer is larger than %d bytes", limit)
		}
		raw = raw[:limit]
	}
	answer := newResponse(resp, raw)
	if !ok {
		return nil, errorFrom(answer)
	}
	return answer, nil
}
