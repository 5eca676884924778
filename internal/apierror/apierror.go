// Package apierror is the body of every error the sidecar answers with
// itself (the control API, /call/, the ingress, the listeners' guard):
// {"error":{"type":"…","message":"…"}}. The model gateway answers in its
// provider's shape instead.
package apierror

import (
	"encoding/json"
	"net/http"
)

// Body is the error body.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body: a machine-readable type and a message for
// people.
type Detail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// New is the body of an error of type typ.
func New(typ, msg string) Body { return Body{Error: Detail{Type: typ, Message: msg}} }

// Write answers with status and the body of an error of type typ.
func Write(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(New(typ, msg))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
