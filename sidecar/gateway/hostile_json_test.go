package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// deepBody is n '[' : nested far beyond any parser's comfort, under the
// body limit.
func deepBody(n int) string { return strings.Repeat("[", n) }

func TestDeeplyNestedRequestIsRefusedBeforeParsing(t *testing.T) {
	primary := newScriptedModel(t, chatOK("x"))
	lite := newScriptedModel(t, chatOK("x"))
	cfg := chainConfig(primary, lite, time.Minute)
	cfg.Gateway.MaxRequestBytes = 16 << 20
	an := policies.Model{Label: "claude", Name: "claude", Provider: policies.ProviderAnthropic, BaseURL: primary.srv.URL,
		Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second}
	cfg.Models["claude"] = an
	base, _ := gw(t, cfg)
	for _, tc := range []struct{ name, path, body string }{
		{"ten million brackets", "/v1/chat/completions", deepBody(10_000_000)},
		{"deep messages", "/v1/chat/completions", `{"model":"gpt-4o","messages":` + deepBody(1_000_000)},
		{"deep but complete", "/v1/chat/completions", `{"model":"gpt-4o","x":` + deepBody(129) + strings.Repeat("]", 129) + "}"},
		{"anthropic", "/v1/messages", `{"model":"claude","max_tokens":1,"messages":` + deepBody(1_000_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, base+tc.path, tc.body)
			if resp.StatusCode != http.StatusBadRequest ||
				!strings.Contains(body, "nested deeper than 128 levels of arrays and objects") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.path == "/v1/messages" && !strings.HasPrefix(body, `{"type":"error","error":{"type":"invalid_request_error"`) {
				t.Fatalf("not in Anthropic's shape: %s", body)
			}
			if tc.path != "/v1/messages" && !strings.HasPrefix(body, `{"error":{"message":`) {
				t.Fatalf("not in OpenAI's shape: %s", body)
			}
		})
	}
	// Nesting up to the limit is fine
	resp, body := post(t, base+"/v1/chat/completions",
		`{"model":"gpt-4o","x":`+deepBody(127)+strings.Repeat("]", 127)+"}")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a body nested 128 deep: %d %s", resp.StatusCode, body)
	}
	if n := primary.calls.Load() + lite.calls.Load(); n != 1 {
		t.Fatalf("models were called %d times, want once (for the body within the limit)", n)
	}
}

func TestDuplicateTopLevelKeysAreRefused(t *testing.T) {
	primary := newScriptedModel(t, chatOK("x"))
	lite := newScriptedModel(t, chatOK("x"))
	cfg := chainConfig(primary, lite, time.Minute)
	base, _ := gw(t, cfg)
	for _, tc := range []struct{ body, key string }{
		{`{"model":"gpt-4o-mini","messages":[],"model":"o1-pro","max_tokens":100000}`, "model"},
		{`{"model":"gpt-4o-mini","max_tokens":10,"messages":[],"max_tokens":100000}`, "max_tokens"},
		{`{"model":"gpt-4o-mini","messages":[],"mod\u0065l":"o1-pro"}`, "model"},
		{`{"model":"gpt-4o","stream":false,"stream":true}`, "stream"},
		{`{"model":"gpt-4o","tools":[],"tools":[{"type":"function"}]}`, "tools"},
		{`{"model":"gpt-4o","` + strings.Repeat("é", 5000) + `":1,"` + strings.Repeat("é", 5000) + `":2}`,
			strings.Repeat("é", 32) + "…"},
	} {
		resp, body := post(t, base+"/v1/chat/completions", tc.body)
		var e openAIError
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != http.StatusBadRequest ||
			!strings.Contains(e.Error.Message, `"`+tc.key+`" appears twice`) || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s: %d %s", tc.body, resp.StatusCode, body)
		}
	}
	if n := primary.calls.Load() + lite.calls.Load(); n != 0 {
		t.Fatalf("requests with duplicate keys reached models %d times", n)
	}
	// The same key inside messages or nested objects is the request's own business
	resp, body := post(t, base+"/v1/chat/completions",
		`{"model":"gpt-4o","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}],"metadata":{"a":1}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestDeeplyNestedAnswerIsAFailureOfThatModel(t *testing.T) {
	deepAnswer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(deepBody(10_000_000)))
	}
	deepText := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` +
			deepBody(10_000_000) + `"},"finish_reason":"stop"}]}`))
	}
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		body   string
		reason string
	}{
		{"a deep answer", deepAnswer, chatBody, "the answer is nested deeper than 128"},
		{"deep text when JSON was asked for", deepText,
			`{"model":"gpt-4o","messages":[],"response_format":{"type":"json_object"}}`,
			"the answer's text is nested deeper than 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Given a primary that answers nested JSON, and degrade_on set
			primary := newScriptedModel(t, tc.answer)
			lite := newScriptedModel(t, chatOK(`{"answer":42}`))
			cfg := degradingChainConfig(primary, lite)
			base, g := gw(t, cfg)

			// When the agent asks
			resp, body := post(t, base+"/v1/chat/completions", tc.body)

			// Then the lite model answers and the primary has one failure that says why
			if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderDegraded) != "true" || !strings.Contains(body, "answer") {
				t.Fatalf("%d %v %.200s", resp.StatusCode, resp.Header, body)
			}
			for _, ms := range g.Models() {
				if ms.Label == "gpt-4o" && (ms.Failures != 1 || !strings.Contains(ms.LastFailure, tc.reason)) {
					t.Fatalf("primary: %d failures, last %q", ms.Failures, ms.LastFailure)
				}
			}
		})
	}
}

// TestStreamEventsWithDeepDataDoNotCrash: a stream's event data is read
// with gjson's path lookups, which skip values without recursing, so
// nested data in an event is relayed like any other.
func TestStreamEventsWithDeepDataDoNotCrash(t *testing.T) {
	deep := []byte(`{"type":"x","error":` + deepBody(10_000_000))
	ev := event{data: deep}
	if !ev.isError() || ev.terminal(kindResponse) || ev.terminal(kindMessage) {
		t.Fatal("an event with nested data was misread")
	}
	if got := errorSummary(deep); got != "error" {
		t.Fatalf("summary %q", got)
	}
	ev = event{data: append([]byte(`{"choices":`), bytes.Repeat([]byte("{\"a\":"), 2_000_000)...)}
	if ev.isError() || ev.terminal(kindChat) || ev.terminal(kindResponse) {
		t.Fatal("a data event with nested objects was misread")
	}
}
