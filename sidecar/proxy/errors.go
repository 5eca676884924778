package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/agent-sidecar/sidecar/internal/apierror"
	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// Error types of the call proxy's own answers.
const (
	errInvalidRequest = "invalid_request" // 400
	errNotFound       = "not_found"       // 404: no such upstream
	errUnavailable    = "unavailable"     // 503: nothing healthy could take the call
	errTimeout        = "timeout"         // 504
	errUpstreamBroke  = "upstream_error"  // 502
)

// writeJSONError answers req with the sidecar's error body, which carries
// the request's trace id when it has one, and records status for sv, the
// request's server span (nil when tracing is off or before it starts).
func writeJSONError(w http.ResponseWriter, req *http.Request, sv *served, status int, typ, msg string) {
	sv.wrote(status)
	apierror.WriteTraced(w, status, typ, msg, tracing.TraceID(req.Context(), req.Header))
}

// shortError turns a transport error into a short reason without URLs.
func shortError(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before an answer"
	}
	return readable.NetError(err)
}

// errorResponse builds the sidecar's own JSON error answer to req, with
// its trace id when it has one.
func errorResponse(req *http.Request, status int, typ, msg string, retryAfter time.Duration) *http.Response {
	b := apierror.New(typ, msg)
	b.Error.TraceID = tracing.TraceID(req.Context(), req.Header)
	body, _ := json.Marshal(b)
	h := http.Header{"Content-Type": {"application/json"}}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}
