package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
)

// errorTypes are the error types each provider's SDKs know, by status.
func errorType(provider string, status int) string {
	if status == http.StatusTooManyRequests {
		return "rate_limit_error" // both providers' name
	}
	if provider == policies.ProviderAnthropic {
		switch status {
		case http.StatusBadRequest, http.StatusMethodNotAllowed:
			return "invalid_request_error"
		case http.StatusNotFound:
			return "not_found_error"
		case http.StatusRequestEntityTooLarge:
			return "request_too_large"
		case http.StatusServiceUnavailable:
			return "overloaded_error"
		}
		return "api_error"
	}
	if status >= 500 {
		return "server_error"
	}
	return "invalid_request_error"
}

// errorCode is OpenAI's machine-readable code for a status.
func errorCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "model_not_found"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusServiceUnavailable:
		return "models_unavailable"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusTooManyRequests:
		return "budget_exceeded" // the gateway answers 429 only for a spent budget
	}
	return "invalid_request"
}

// Error bodies in each provider's shape, fields in the providers' order.
type (
	openAIError struct {
		Error openAIErrorBody `json:"error"`
	}
	// TraceID (in both shapes) is the request's trace id, when it has
	// one: the tracing UI finds the request by it.
	openAIErrorBody struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
		TraceID string  `json:"trace_id,omitempty"`
	}
	anthropicError struct {
		Type  string             `json:"type"`
		Error anthropicErrorBody `json:"error"`
	}
	anthropicErrorBody struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		TraceID string `json:"trace_id,omitempty"`
	}
	// openAIStreamError is an error event's data: the SDKs throw on a data
	// object with "error"; "type" is what the Responses API sends.
	openAIStreamError struct {
		Type  string          `json:"type"`
		Error openAIErrorBody `json:"error"`
	}
)

// errorBody is the provider's own error shape, so SDKs show the message;
// traceID ("" for none) goes inside the error object.
func errorBody(provider string, status int, msg, traceID string) []byte {
	var b []byte
	if provider == policies.ProviderAnthropic {
		b, _ = json.Marshal(anthropicError{Type: "error", Error: anthropicErrorBody{Type: errorType(provider, status), Message: msg, TraceID: traceID}})
	} else {
		b, _ = json.Marshal(openAIError{Error: openAIErrorBody{Message: msg, Type: errorType(provider, status), Code: errorCode(status), TraceID: traceID}})
	}
	return b
}

// writeError answers with the provider's error shape; retryAfter > 0 sets
// Retry-After (whole seconds, rounded up). traceID is the request's trace
// id ("" when it has none).
func writeError(w http.ResponseWriter, provider string, status int, msg string, retryAfter time.Duration, traceID string) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(provider, status, msg, traceID))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// streamErrorEvent is a server-sent event that ends a broken stream in the
// provider's shape: the OpenAI SDKs throw on a data object with "error",
// the Anthropic SDKs on an "error" event. traceID as in errorBody.
func streamErrorEvent(provider, msg, traceID string) []byte {
	var data []byte
	if provider == policies.ProviderAnthropic {
		data, _ = json.Marshal(anthropicError{Type: "error", Error: anthropicErrorBody{Type: "api_error", Message: msg, TraceID: traceID}})
	} else {
		data, _ = json.Marshal(openAIStreamError{Type: "error", Error: openAIErrorBody{Message: msg, Type: "server_error", Code: "stream_interrupted", TraceID: traceID}})
	}
	return append(append([]byte("event: error\ndata: "), data...), '\n', '\n')
}

// describe turns a transport error into a few words, without the URL.
func describe(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before the answer was complete"
	}
	return readable.NetError(err)
}
