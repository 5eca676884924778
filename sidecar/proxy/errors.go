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
)

// Error types of the call proxy's own answers.
const (
	errInvalidRequest = "invalid_request" // 400
	errNotFound       = "not_found"       // 404: no such upstream
	errUnavailable    = "unavailable"     // 503: nothing healthy could take the call
	errTimeout        = "timeout"         // 504
	errUpstreamBroke  = "upstream_error"  // 502
)

func writeJSONError(w http.ResponseWriter, status int, typ, msg string) {
	apierror.Write(w, status, typ, msg)
}

// shortError turns a transport error into a short reason without URLs.
func shortError(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before an answer"
	}
	return readable.NetError(err)
}

// errorResponse builds the sidecar's own JSON error answer.
func errorResponse(req *http.Request, status int, typ, msg string, retryAfter time.Duration) *http.Response {
	body, _ := json.Marshal(apierror.New(typ, msg))
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
