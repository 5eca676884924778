package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// answer writes status and body as JSON.
func answer(code int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

const (
	openAITooLong = `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages ` +
		`resulted in 130512 tokens. Please reduce the length of the messages.","type":"invalid_request_error",` +
		`"param":"messages","code":"context_length_exceeded"}}`
	anthropicTooLong = `{"type":"error","error":{"type":"invalid_request_error",` +
		`"message":"prompt is too long: 208310 tokens > 200000 maximum"}}`
	plain400 = `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":null}}`
)

// contextConfig is gpt-4o (primary, context_fallback gpt-4.1, fallback
// gpt-4o-mini) on a breaker that counts every 4xx as a failure, so a
// refusal counted as one would open it.
func contextConfig(primary, lite, long *scriptedModel) *policies.Config {
	cfg := chainConfig(primary, lite, time.Minute)
	b := cfg.Breakers["default"]
	b.FailureStatuses = []int{400, 404, 429, 500, 502, 503}
	cfg.Breakers["default"] = b
	p := cfg.Models["gpt-4o"]
	p.ContextFallback = "gpt-4.1"
	cfg.Models["gpt-4o"] = p
	cfg.Models["gpt-4.1"] = openaiModel("gpt-4.1", long.srv.URL)
	return cfg
}

func TestTooLongPromptGoesToTheContextFallback(t *testing.T) {
	// Given gpt-4o refusing every prompt as too long for its window
	primary := newScriptedModel(t, answer(http.StatusBadRequest, openAITooLong))
	lite := newScriptedModel(t, chatOK("from lite"))
	long := newScriptedModel(t, chatOK("from gpt-4.1"))
	base, g := gw(t, contextConfig(primary, lite, long))

	for i := range 5 {
		// When the agent asks gpt-4o
		resp, body := post(t, base+"/v1/chat/completions", chatBody)

		// Then gpt-4.1, the context fallback, answers, after two calls
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "from gpt-4.1") {
			t.Fatalf("request %d: %s %s", i+1, resp.Status, body)
		}
		for h, want := range map[string]string{HeaderModel: "gpt-4.1", HeaderDegraded: "true", HeaderAttempts: "2"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("request %d: %s = %q, want %q", i+1, h, got, want)
			}
		}
	}
	// And the request went to gpt-4.1 as the agent sent it, but for the name
	if got, _ := long.last(); got != strings.Replace(chatBody, `"gpt-4o"`, `"gpt-4.1"`, 1) {
		t.Errorf("gpt-4.1 received %s", got)
	}
	// And the lighter fallback was never asked
	if n := lite.calls.Load(); n != 0 {
		t.Errorf("the lite model got %d calls", n)
	}
	// And the refusals are not failures: gpt-4o's breaker stays closed,
	// every call of it asked it, and the chain is not reported degraded
	b, _ := g.opts.Breakers.Lookup(BreakerName("gpt-4o"))
	if s := b.Snapshot(); s.State != breaker.Closed.String() || s.Failures != 0 || primary.calls.Load() != 5 {
		t.Errorf("gpt-4o's breaker %+v after %d calls", s, primary.calls.Load())
	}
	if d := g.Degraded(); len(d) != 0 {
		t.Errorf("reported degraded: %+v", d)
	}
}

func TestAnthropicPromptTooLongGoesToTheContextFallback(t *testing.T) {
	primary := newScriptedModel(t, answer(http.StatusBadRequest, anthropicTooLong))
	lite := newScriptedModel(t, chatOK("from lite"))
	long := newScriptedModel(t, chatOK("from the long model"))
	cfg := anthropicChain(primary, lite)
	p := cfg.Models["claude-big"]
	p.ContextFallback = "claude-long"
	cfg.Models["claude-big"] = p
	l := cfg.Models["claude-small"]
	l.Label, l.Name, l.BaseURL, l.Fallback = "claude-long", "claude-long", long.srv.URL, ""
	cfg.Models["claude-long"] = l

	base, _ := gw(t, cfg)
	resp, body := post(t, base+"/v1/messages", `{"model":"claude-big","max_tokens":100,"messages":[]}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != "claude-long" || lite.calls.Load() != 0 {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
}

func TestOtherRefusalsReachTheAgentAsTheyCame(t *testing.T) {
	huge := `{"error":{"message":"` + strings.Repeat("x", 2*maxErrorBody) + `","code":"context_length_exceeded"}}`
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		context bool // context_fallback set
	}{
		{"a plain 400", http.StatusBadRequest, plain400, true},
		{"a 422", http.StatusUnprocessableEntity, openAITooLong, true},
		{"a 400 longer than the part read", http.StatusBadRequest, huge, true},
		{"too long, without context_fallback", http.StatusBadRequest, openAITooLong, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := newScriptedModel(t, answer(tc.status, tc.body))
			lite := newScriptedModel(t, chatOK("from lite"))
			long := newScriptedModel(t, chatOK("from gpt-4.1"))
			cfg := chainConfig(primary, lite, time.Minute)
			if tc.context {
				cfg = contextConfig(primary, lite, long)
				b := cfg.Breakers["default"]
				b.FailureStatuses = []int{429, 500, 502, 503}
				cfg.Breakers["default"] = b
			}
			base, _ := gw(t, cfg)
			resp, body := post(t, base+"/v1/chat/completions", chatBody)
			if resp.StatusCode != tc.status || body != tc.body {
				t.Fatalf("got %s %.200s, want %d %.200s", resp.Status, body, tc.status, tc.body)
			}
			if resp.Header.Get(HeaderModel) != "gpt-4o" || resp.Header.Get(HeaderAttempts) != "1" {
				t.Errorf("headers %v", resp.Header)
			}
			if n := lite.calls.Load() + long.calls.Load(); n != 0 {
				t.Errorf("another model got %d calls", n)
			}
		})
	}
}
