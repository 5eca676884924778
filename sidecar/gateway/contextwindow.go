package gateway

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// maxErrorBody bounds what is read of a 400 answer to tell whether it
// refuses the prompt as too long for the model's context window.
const maxErrorBody = 64 << 10

// tooLong reports whether a model with a context_fallback not yet tried
// answered 400 because the prompt does not fit its context window. It reads
// at most maxErrorBody of the answer; when the answer is another 400, what
// was read is put back in front of the rest, so the agent gets the model's
// answer as it came.
func (c *call) tooLong(m *policies.Model, resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadRequest || m.ContextFallback == "" {
		return false
	}
	if next := c.st.models[m.ContextFallback]; next == nil || slices.Contains(c.tried, next) {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err == nil && contextTooLong(head) {
		return true
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	return false
}

// contextTooLong reports whether an error body says the prompt is too long
// for the model's context window: OpenAI's code context_length_exceeded
// (Chat Completions and Responses), Anthropic's invalid_request_error
// "prompt is too long: 208310 tokens > 200000 maximum".
func contextTooLong(body []byte) bool {
	e, ok := errorObject(body)
	if !ok {
		return false
	}
	if e.Get("code").Str == "context_length_exceeded" {
		return true
	}
	return e.Get("type").Str == "invalid_request_error" &&
		strings.Contains(strings.ToLower(e.Get("message").Str), "prompt is too long")
}

// refusedTooLong finishes the call of a model that refused the prompt as
// too long: the model answered soundly (the prompt is the agent's), so its
// breaker counts a success, and the request goes to its context_fallback.
func (c *call) refusedTooLong(m *policies.Model, permit breaker.Permit) result {
	permit.DoneSuccess()
	const why = "the prompt is too long for its context window"
	c.try.failed(why)
	c.reasons = append(c.reasons, m.Label+": "+why)
	c.span.skipped(m.Label, why)
	c.g.log.Info("prompt too long for the model's context window", c.traced("model", m.Label,
		"context_fallback", m.ContextFallback)...)
	return resultTooLong
}

// errorObject is the "error" object of a provider's error body, read with
// gjson once the iterative scan has bounded the body's nesting; ok is false
// for a body that is not JSON, nested too deep, or cut short.
func errorObject(body []byte) (e gjson.Result, ok bool) {
	if _, err := jsonguard.Scan(body, jsonguard.MaxDepth); err != nil {
		return gjson.Result{}, false
	}
	return gjson.GetBytes(body, "error"), true
}
