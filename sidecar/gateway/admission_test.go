package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// gwAdmitting is gw with an Admit hook that records the model it was asked
// about and answers a.
func gwAdmitting(t *testing.T, primary, lite *scriptedModel, a Admission) (string, *[]string) {
	t.Helper()
	var asked []string
	g := New(chainConfig(primary, lite, time.Minute), Options{Breakers: breaker.NewSet(),
		Admit: func(model string) Admission { asked = append(asked, model); return a }})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL + "/llm", &asked
}

func TestAdmitRejectsWith429InTheProvidersShape(t *testing.T) {
	reason := `budget "daily" is spent ($20.00 of $20.00 this 24h0m0s window); requests are refused until 2030-01-03T00:00:00Z`
	tests := []struct {
		name       string
		retryAfter time.Duration
		wantAfter  string
	}{
		{"whole seconds", 90 * time.Second, "90"},
		{"rounded up", 1500 * time.Millisecond, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary, lite := newScriptedModel(t, chatOK("hi")), newScriptedModel(t, chatOK("lite"))
			base, asked := gwAdmitting(t, primary, lite, Admission{Reject: true, Reason: reason, RetryAfter: tt.retryAfter})
			resp, out := post(t, base+"/v1/chat/completions", chatBody)
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("answer %q: %v", out, err)
			}
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != tt.wantAfter {
				t.Errorf("got %s with Retry-After %q, want 429 with %q", resp.Status, resp.Header.Get("Retry-After"), tt.wantAfter)
			}
			if e.Error.Message != reason || e.Error.Type != "rate_limit_error" || e.Error.Code != "budget_exceeded" {
				t.Errorf("error = %+v, want the reason, rate_limit_error, budget_exceeded", e.Error)
			}
			if n := primary.calls.Load() + lite.calls.Load(); n != 0 {
				t.Errorf("models called %d times, want none", n)
			}
			if len(*asked) != 1 || (*asked)[0] != "gpt-4o" {
				t.Errorf("Admit asked about %v, want [gpt-4o]", *asked)
			}
		})
	}
}

func TestAdmitRejectsAnthropicRequestsInItsShape(t *testing.T) {
	primary, lite := newScriptedModel(t, status(200)), newScriptedModel(t, status(200))
	g := New(anthropicChain(primary, lite), Options{Breakers: breaker.NewSet(),
		Admit: func(string) Admission {
			return Admission{Reject: true, Reason: "budget spent", RetryAfter: time.Minute}
		}})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	resp, out := post(t, srv.URL+"/llm/v1/messages", `{"model":"claude-big","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	var e struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil || resp.StatusCode != 429 || e.Type != "error" ||
		e.Error.Type != "rate_limit_error" || e.Error.Message != "budget spent" || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("got %s %v %s, want 429 rate_limit_error with Retry-After 60", resp.Status, resp.Header, out)
	}
}

func TestAdmitDegradeStartsTheChainAtTheCheaperModel(t *testing.T) {
	primary, lite := newScriptedModel(t, chatOK("big")), newScriptedModel(t, chatOK("lite"))
	base, _ := gwAdmitting(t, primary, lite, Admission{DegradeTo: "gpt-4o-mini"})
	resp, out := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "gpt-4o-mini" || resp.Header.Get(HeaderDegraded) != "true" {
		t.Fatalf("got %s model %q degraded %q: %s, want 200 from gpt-4o-mini, degraded", resp.Status,
			resp.Header.Get(HeaderModel), resp.Header.Get(HeaderDegraded), out)
	}
	if primary.calls.Load() != 0 || lite.calls.Load() != 1 {
		t.Errorf("calls: primary %d, lite %d; want 0 and 1", primary.calls.Load(), lite.calls.Load())
	}
}

func TestAdmitGoAheadAndUnknownDegradeTarget(t *testing.T) {
	for _, a := range []Admission{{}, {DegradeTo: "no-such-model"}} {
		primary, lite := newScriptedModel(t, chatOK("big")), newScriptedModel(t, chatOK("lite"))
		base, _ := gwAdmitting(t, primary, lite, a)
		resp, _ := post(t, base+"/v1/chat/completions", chatBody)
		if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "gpt-4o" || primary.calls.Load() != 1 {
			t.Errorf("admission %+v: got %s from %q, want 200 from gpt-4o", a, resp.Status, resp.Header.Get(HeaderModel))
		}
	}
}
