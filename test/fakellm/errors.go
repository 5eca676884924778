package fakellm

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// apiError is an error answer: its status and message, and for OpenAI its
// "param" and "code" ("" answers null, or for code the status's usual one)
// and a type that overrides the status's usual one.
type apiError struct {
	status  int
	message string
	param   string
	code    string
	typ     string
}

// badRequest is a 400 with message and, for OpenAI, param and code.
func badRequest(message, param, code string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: message, param: param, code: code}
}

// error answers e in the provider's error shape.
func (c *call) error(provider string, e apiError) {
	var body any
	if provider == anthropic {
		typ := e.typ
		if typ == "" {
			typ = anthropicErrorType(e.status)
		}
		body = obj{{"type", "error"}, {"error", obj{{"type", typ}, {"message", e.message}}}}
	} else {
		typ, code := openAIErrorType(e.status)
		if e.typ != "" {
			typ = e.typ
		}
		if e.code != "" {
			code = e.code
		}
		body = obj{{"error", obj{{"message", e.message}, {"type", typ}, {"param", nullIfEmpty(e.param)}, {"code", code}}}}
	}
	b := mustJSON(body)
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.requestIDHeader(provider)
	c.status = e.status
	c.w.WriteHeader(e.status)
	_, _ = c.w.Write(b)
}

// nullIfEmpty is s, or nil (JSON null) when s is empty.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Out-of-credit messages, as the providers word them.
const (
	openAIQuotaMessage = "You exceeded your current quota, please check your plan and billing details. For more " +
		"information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
	anthropicQuotaMessage = "Your credit balance is too low to access the Anthropic API. Please go to Plans & " +
		"Billing to upgrade or purchase credits."
)

// injectedError answers an injected failure: status in the provider's
// shape, out of credit with Quota, with the time to wait (RetryAfter) on
// the statuses that carry one.
func (c *call) injectedError(provider string, status int) {
	if ra := c.faults.RetryAfter; ra > 0 && (status == http.StatusTooManyRequests ||
		status == http.StatusServiceUnavailable || status == 529) {
		c.retryHeaders(provider, status, ra)
	}
	text := http.StatusText(status)
	if status == 529 {
		text = "Overloaded"
	}
	e := apiError{status: status, message: fmt.Sprintf("injected failure: %d %s", status, text)}
	if c.faults.Quota {
		c.note("quota")
		if provider == anthropic {
			e.message = anthropicQuotaMessage
		} else {
			e.message, e.typ, e.code = openAIQuotaMessage, "insufficient_quota", "insufficient_quota"
		}
	}
	if c.s.name != "" {
		e.message += " (fakellm " + c.s.name + ")"
	}
	c.error(provider, e)
}

// retryHeaders says when to call again: Retry-After (whole seconds,
// rounded up) and retry-after-ms, and on a 429 the provider's own
// rate-limit headers for requests: none left, reset after ra (OpenAI: a
// duration such as "20s"; Anthropic: an RFC 3339 time).
func (c *call) retryHeaders(provider string, status int, ra time.Duration) {
	h := c.w.Header()
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.Seconds()))))
	h.Set("retry-after-ms", strconv.FormatInt(ra.Milliseconds(), 10))
	if status != http.StatusTooManyRequests {
		return
	}
	if provider == anthropic {
		reset := time.Now().Add(ra)
		if reset.Nanosecond() != 0 {
			reset = reset.Truncate(time.Second).Add(time.Second)
		}
		h.Set("anthropic-ratelimit-requests-limit", "50")
		h.Set("anthropic-ratelimit-requests-remaining", "0")
		h.Set("anthropic-ratelimit-requests-reset", reset.UTC().Format(time.RFC3339))
		return
	}
	h.Set("x-ratelimit-limit-requests", "500")
	h.Set("x-ratelimit-remaining-requests", "0")
	h.Set("x-ratelimit-reset-requests", ra.String())
}

// contextError is the provider's answer to a prompt of tokens tokens,
// beyond a context window of limit tokens.
func contextError(path string, tokens, limit int) apiError {
	e := apiError{status: http.StatusBadRequest, code: "context_length_exceeded"}
	switch path {
	case "/v1/messages":
		e.message = fmt.Sprintf("prompt is too long: %d tokens > %d maximum", tokens, limit)
	case "/v1/responses":
		e.message, e.param = "Your input exceeds the context window of this model. Please adjust your input and try again.", "input"
	case "/v1/completions":
		e.message, e.param = fmt.Sprintf("This model's maximum context length is %d tokens, however you requested %d tokens "+
			"(%d in your prompt; 0 for the completion). Please reduce your prompt; or completion length.", limit, tokens, tokens), "prompt"
	default:
		e.message, e.param = fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages "+
			"resulted in %d tokens. Please reduce the length of the messages.", limit, tokens), "messages"
	}
	return e
}

// openAIErrorType is OpenAI's error type and code for a status.
func openAIErrorType(status int) (string, any) {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", nil
	}
	return "invalid_request_error", nil
}

// anthropicErrorType is Anthropic's error type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}
