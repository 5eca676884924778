// Package apierror is the body of every error the sidecar answers with
// itself (the control API, /call/, the ingress, the listeners' guard):
// {"error":{"type":"…","message":"…"}}, with "trace_id" when the request
// has one. The model gateway answers in its provider's shape instead.
package apierror

import (
	"encoding/json"
	"net/http"
)

// Body is the error body.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body: a machine-readable type, a message for
// people and, when the request has one, its trace id (so a user can paste
// it into the tracing UI); left out of the JSON when empty.
type Detail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	TraceID string `json:"trace_id,omitempty"`
}

// New is the body of an error of type typ.
func New(typ, msg string) Body { return Body{Error: Detail{Type: typ, Message: msg}} }

// Write answers with status and the body of an error of type typ.
func Write(w http.ResponseWriter, status int, typ, msg string) {
	WriteTraced(w, status, typ, msg, "")
}

// WriteTraced is Write with the request's trace id (tracing.TraceID) in
// the body; with traceID "" it writes exactly what Write does.
func WriteTraced(w http.ResponseWriter, status int, typ, msg, traceID string) {
	body := New(typ, msg)
	body.Error.TraceID = traceID
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
