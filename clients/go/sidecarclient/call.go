package sidecarclient

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultCallTimeout bounds a call or a model answer whose caller set no Timeout.
const DefaultCallTimeout = 2 * time.Minute

// NoIdempotencyKey as CallOptions.IdempotencyKey sends a POST without one.
const NoIdempotencyKey = "-"

// CallOptions are a call's method, body and headers; all are optional.
type CallOptions struct {
	// Method defaults to POST when there is a body, else GET.
	Method string
	// JSON, when not nil, is sent as JSON with Content-Type: application/json.
	JSON any
	// Body is sent as is (not with JSON).
	Body io.Reader
	// Header is added to the request.
	Header http.Header
	// IdempotencyKey is sent as Idempotency-Key. Empty: a POST gets a
	// random one (the same for every attempt the sidecar makes), so the
	// sidecar may send it again to another instance or a fallback;
	// NoIdempotencyKey: none.
	IdempotencyKey string
	// Timeout bounds the whole answer; 0 is DefaultCallTimeout.
	Timeout time.Duration
}

// Response is an answer, read whole (up to 32 MiB), and who answered it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte

	Upstream string // the upstream that answered a call (X-Sidecar-Upstream)
	Instance string // its instance, host:port (X-Sidecar-Instance)
	Fallback bool   // a fallback answered, not the first choice (X-Sidecar-Fallback)
	Model    string // the model label that answered (X-Sidecar-Model)
	Degraded bool   // a lighter model answered (X-Sidecar-Degraded)
	Attempts int    // model calls made (X-Sidecar-Attempts); 0 when not said
}

func newResponse(resp *http.Response, body []byte) *Response {
	h := resp.Header
	r := &Response{
		Status: resp.StatusCode, Header: h, Body: body,
		Upstream: h.Get("X-Sidecar-Upstream"), Instance: h.Get("X-Sidecar-Instance"),
		Fallback: h.Get("X-Sidecar-Fallback") == "true",
		Model:    h.Get("X-Sidecar-Model"), Degraded: h.Get("X-Sidecar-Degraded") == "true",
	}
	if n, err := strconv.Atoi(h.Get("X-Sidecar-Attempts")); err == nil && n > 0 {
		r.Attempts = n
	}
	return r
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("sidecar: the answer is not the JSON expected: %w", err)
	}
	return nil
}

var upstreamName = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// Call sends a request through the sidecar to the upstream (a Consul service
// or a URL of the sidecar's configuration): {addr}/call/{upstream}{path},
// path with its query, e.g. "/task?lang=en". The sidecar picks an instance
// behind its breaker and falls back when it fails; the Response says who
// answered. The trace headers of ctx (WithTraceHeaders) go with it. A non-2xx
// answer is an *Error.
func (c *Client) Call(ctx context.Context, upstream, path string, opts CallOptions) (*Response, error) {
	if !upstreamName.MatchString(upstream) {
		return nil, fmt.Errorf("sidecar: bad upstream name %q", upstream)
	}
	if opts.JSON != nil && opts.Body != nil {
		return nil, fmt.Errorf("sidecar: a call takes JSON or Body, not both")
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var body any
	switch {
	case opts.JSON != nil:
		body = opts.JSON
	case opts.Body != nil:
		body = opts.Body
	}
	method := strings.ToUpper(opts.Method)
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	header := opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	switch key := opts.IdempotencyKey; {
	case header.Get("Idempotency-Key") != "" || key == NoIdempotencyKey:
	case key != "":
		header.Set("Idempotency-Key", key)
	case method == http.MethodPost:
		header.Set("Idempotency-Key", rand.Text())
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.send(ctx, request{method: method, url: c.addr + "/call/" + upstream + path, body: body, header: header, trace: true})
}
