package translate

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/tidwall/gjson"
)

// Error answers: the upstream provider's error is re-shaped into the
// agent's provider's, so its SDK raises the error it knows with the
// upstream message. The type (and OpenAI's code) follow the status.

// Limits on the message of a translated error.
const (
	maxErrorMessage = 4096 // bytes of an upstream error message kept
	maxErrorExcerpt = 200  // bytes of a body that is not an error quoted
)

// Error bodies, fields in the providers' order.
type (
	ccError struct {
		Error ccErrorDetail `json:"error"`
	}
	ccErrorDetail struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	amError struct {
		Type  string        `json:"type"`
		Error amErrorDetail `json:"error"`
	}
	amErrorDetail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
)

// errorBody is an upstream error answer (status >= 400, from the provider
// other than provider) in provider's error shape, its message kept.
func errorBody(provider string, status int, body []byte) []byte {
	msg := errorMessage(otherProvider(provider), status, body)
	var b []byte
	if provider == Anthropic {
		b, _ = encode(amError{Type: "error", Error: amErrorDetail{Type: anthropicErrorType(status), Message: msg}})
	} else {
		b, _ = encode(ccError{Error: ccErrorDetail{Message: msg, Type: openAIErrorType(status), Code: openAIErrorCode(status)}})
	}
	return b
}

// errorMessage is the message of an upstream error body: OpenAI's and
// Anthropic's error.message, a plain "error" string or a top-level
// "message" (as some servers send). A body with none of those gets a
// message saying what came instead.
func errorMessage(upstream string, status int, body []byte) string {
	if res, err := jsonguard.Scan(body, jsonguard.MaxDepth); err == nil && res.First == '{' {
		root := gjson.ParseBytes(body)
		for _, path := range []string{"error.message", "error", "message"} {
			if v := root.Get(path); v.Type == gjson.String && strings.TrimSpace(v.Str) != "" {
				return truncate(v.Str, maxErrorMessage)
			}
		}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return fmt.Sprintf("the %s model answered with status %d and an empty body", upstream, status)
	}
	return fmt.Sprintf("the %s model answered with status %d and a body that is not an error object: %q",
		upstream, status, truncate(string(body), maxErrorExcerpt))
}

// truncate cuts s to at most n bytes at a character boundary, marking the
// cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func otherProvider(provider string) string {
	if provider == Anthropic {
		return OpenAI
	}
	return Anthropic
}

// anthropicErrorType is Anthropic's error type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// openAIErrorType is the error type of an OpenAI-shaped error for a
// status (the SDKs pick their exception by the status; the type is for
// people and logs).
func openAIErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "insufficient_quota"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	}
	if status >= 500 {
		return "server_error"
	}
	return "invalid_request_error"
}

// openAIErrorCode is OpenAI's machine-readable code for a status, nil
// where none fits.
func openAIErrorCode(status int) *string {
	code := ""
	switch status {
	case http.StatusUnauthorized:
		code = "invalid_api_key"
	case http.StatusPaymentRequired:
		code = "insufficient_quota"
	case http.StatusNotFound:
		code = "model_not_found"
	case http.StatusRequestEntityTooLarge:
		code = "request_too_large"
	case http.StatusTooManyRequests:
		code = "rate_limit_exceeded"
	default:
		return nil
	}
	return &code
}
