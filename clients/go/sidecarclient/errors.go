package sidecarclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The kinds of error, by status, for errors.Is: an *Error is the kind of
// its status (errors.Is(err, ErrUnavailable) for a 503).
var (
	ErrBadRequest   = errors.New("sidecar: bad request")         // 400: invalid_request, invalid_request_error
	ErrUnauthorized = errors.New("sidecar: unauthorized")        // 401, 403: the token is missing or wrong
	ErrTooLarge     = errors.New("sidecar: request too large")   // 413: request_too_large
	ErrRateLimited  = errors.New("sidecar: rate limited")        // 429: see RetryAfter
	ErrBadGateway   = errors.New("sidecar: upstream error")      // 502: upstream_error
	ErrUnavailable  = errors.New("sidecar: unavailable")         // 503: unavailable, models_unavailable; see RetryAfter
	ErrTimeout      = errors.New("sidecar: upstream timeout")    // 504: timeout
	ErrUnreachable  = errors.New("sidecar: sidecar unreachable") // no answer from the sidecar at all
)

var kinds = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusForbidden:             ErrUnauthorized,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusTooManyRequests:       ErrRateLimited,
	http.StatusBadGateway:            ErrBadGateway,
	http.StatusServiceUnavailable:    ErrUnavailable,
	http.StatusGatewayTimeout:        ErrTimeout,
}

// Error is a non-2xx answer, read from the error JSON the sidecar
// ({"error":{"type","message","trace_id"}}), OpenAI ({"error":{"message",
// "type","code"}}) and Anthropic ({"type":"error","error":{"type","message"}})
// answer with.
type Error struct {
	Status     int
	Type       string        // e.g. "invalid_request", "unavailable", "server_error"
	Message    string        //
	Code       string        // a provider error's code, e.g. "models_unavailable"
	TraceID    string        // the trace_id the sidecar sent, if any
	RetryAfter time.Duration // from Retry-After; 0 when absent
	Response   *Response     // the whole answer: headers, body, who answered
}

func (e *Error) Error() string {
	s := fmt.Sprintf("sidecar: %d", e.Status)
	if e.Type != "" {
		s += " " + e.Type
	}
	return s + ": " + e.Message
}

// Is reports whether the error is of the kind target (ErrUnavailable, ...).
func (e *Error) Is(target error) bool {
	kind, ok := kinds[e.Status]
	return ok && kind == target
}

func errorFrom(r *Response) *Error {
	e := &Error{Status: r.Status, RetryAfter: retryAfter(r.Header.Get("Retry-After"), time.Now()), Response: r}
	var shape struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Code    any    `json:"code"`
			TraceID string `json:"trace_id"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &shape) == nil && shape.Error.Message != "" {
		e.Type, e.Message, e.TraceID = shape.Error.Type, shape.Error.Message, shape.Error.TraceID
		if code, ok := shape.Error.Code.(string); ok {
			e.Code = code
		}
	} else if text := strings.TrimSpace(string(r.Body)); text != "" && len(text) <= 200 {
		e.Message = text
	} else {
		e.Message = http.StatusText(r.Status)
	}
	return e
}

// retryAfter reads Retry-After: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now).Round(time.Second)
	}
	return 0
}
