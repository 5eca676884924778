package fakellm_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/retryafter"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

func TestRateLimitedAndOutOfQuota(t *testing.T) {
	s, url := start(t, fakellm.Options{})
	s.Set(fakellm.Faults{FailNext: 2, FailStatus: 429, RetryAfter: 20 * time.Second, Quota: true})

	resp, body := post(t, url+"/v1/chat/completions", chatBody)
	var oe openAIError
	decode(t, body, &oe)
	h := resp.Header
	if resp.StatusCode != 429 || oe.Error == nil || oe.Error.Type != "insufficient_quota" || deref(oe.Error.Code) != "insufficient_quota" ||
		!strings.HasPrefix(oe.Error.Message, "You exceeded your current quota, please check your plan and billing details.") {
		t.Fatalf("openai: %s %s", resp.Status, body)
	}
	if h.Get("Retry-After") != "20" || h.Get("retry-after-ms") != "20000" || h.Get("x-ratelimit-reset-requests") != "20s" ||
		h.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("openai headers: %v", h)
	}

	resp, body = post(t, url+"/v1/messages", messagesBody)
	var ae anthropicError
	decode(t, body, &ae)
	h = resp.Header
	if resp.StatusCode != 429 || ae.Error == nil || ae.Error.Type != "rate_limit_error" ||
		!strings.HasPrefix(ae.Error.Message, "Your credit balance is too low to access the Anthropic API.") {
		t.Fatalf("anthropic: %s %s", resp.Status, body)
	}
	reset, err := time.Parse(time.RFC3339, h.Get("anthropic-ratelimit-requests-reset"))
	if err != nil || h.Get("anthropic-ratelimit-requests-remaining") != "0" || h.Get("Retry-After") != "20" {
		t.Fatalf("anthropic headers: %v (%v)", h, err)
	}
	if d := time.Until(reset); d < 18*time.Second || d > 22*time.Second {
		t.Fatalf("anthropic-ratelimit-requests-reset %s is %v away, want about 20s", reset, d)
	}
	// The provider's reset header alone says when, as the gateway reads it
	h.Del("Retry-After")
	h.Del("retry-after-ms")
	if until, ok := retryafter.Until(h, time.Now()); !ok || time.Until(until) < 18*time.Second {
		t.Fatalf("retryafter.Until: %v %v", until, ok)
	}

	// Other statuses carry Retry-After only; without Quota a 429 is a rate limit
	s.Set(fakellm.Faults{FailNext: 2, FailStatus: 503, RetryAfter: time.Second})
	resp, _ = post(t, url+"/v1/chat/completions", chatBody)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("x-ratelimit-reset-requests") != "" {
		t.Fatalf("503: %v", resp.Header)
	}
	s.Set(fakellm.Faults{FailNext: 1, FailStatus: 429})
	_, body = post(t, url+"/v1/chat/completions", chatBody)
	if decode(t, body, &oe); oe.Error.Type != "requests" || deref(oe.Error.Code) != "rate_limit_exceeded" {
		t.Fatalf("%s", body)
	}
}

func TestContextLimitAnswersTheProvidersContextLengthError(t *testing.T) {
	s, url := start(t, fakellm.Options{Faults: fakellm.Faults{ContextLimit: 10}})
	long := strings.Repeat("x", 200) // 50 tokens
	for _, tc := range []struct {
		name, path, body string
		anthropic        bool
		want, param      string
	}{
		{"chat", "/v1/chat/completions", openAIRequest(`[{"role":"user","content":"`+long+`"}]`, ""), false,
			"This model's maximum context length is 10 tokens. However, your messages resulted in 50 tokens. " +
				"Please reduce the length of the messages.", "messages"},
		{"responses", "/v1/responses", `{"model":"gpt-4.1","input":"` + long + `"}`, false,
			"Your input exceeds the context window of this model. Please adjust your input and try again.", "input"},
		{"messages", "/v1/messages", anthropicRequest(`[{"role":"user","content":"`+long+`"}]`, ""), true,
			"prompt is too long: 50 tokens > 10 maximum", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, url+tc.path, tc.body)
			if tc.anthropic {
				var e anthropicError
				decode(t, body, &e)
				if resp.StatusCode != 400 || e.Error == nil || e.Error.Type != "invalid_request_error" || e.Error.Message != tc.want {
					t.Fatalf("%s %s", resp.Status, body)
				}
				return
			}
			var e openAIError
			decode(t, body, &e)
			if resp.StatusCode != 400 || e.Error == nil || e.Error.Type != "invalid_request_error" || e.Error.Message != tc.want ||
				deref(e.Error.Param) != tc.param || deref(e.Error.Code) != "context_length_exceeded" {
				t.Fatalf("%s %s", resp.Status, body)
			}
		})
	}
	// Short prompts and token counts are answered
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", chatBody},
		{"/v1/messages/count_tokens", `{"model":"claude-x","messages":[{"role":"user","content":"` + long + `"}]}`},
	} {
		if resp, body := post(t, url+tc.path, tc.body); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s %s", tc.path, resp.Status, body)
		}
	}
	if st := s.Stats(); st.Calls != 5 || st.Failed != 3 || st.BadRequests != 0 {
		t.Fatalf("too long prompts are failures, not bad requests: %+v", st)
	}
}
