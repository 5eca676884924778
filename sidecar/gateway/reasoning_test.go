package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestReasoningFallbackGetsItsCapFieldOnly(t *testing.T) {
	// Given gpt-4o falling back to a reasoning model that refuses
	// max_tokens, as OpenAI's reasoning models do
	primary := newScriptedModel(t, status(http.StatusServiceUnavailable))
	reasoning := newScriptedModel(t, chatOK("from o3-mini"))
	cfg := chainConfig(primary, reasoning, time.Minute)
	o3 := cfg.Models["gpt-4o-mini"]
	o3.MaxTokensField, o3.MaxTokens = "max_completion_tokens", 2048
	o3.DropFields = []string{"tools", "temperature"}
	cfg.Models["gpt-4o-mini"] = o3
	base, _ := gw(t, cfg)

	// When the primary fails on a request with max_tokens and temperature
	body := `{"model": "gpt-4o", "messages":[{"role":"user","content":"hi"}], "temperature": 0.2, "max_tokens": 4000}`
	resp, answer := post(t, base+"/v1/chat/completions", body)

	// Then the reasoning model answers
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, answer)
	}
	// And it received the capped max_completion_tokens and no max_tokens
	got, _ := reasoning.last()
	want := `{"model": "gpt-4o-mini", "messages":[{"role":"user","content":"hi"}],"max_completion_tokens":2048}`
	if got != want {
		t.Errorf("the reasoning model received\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, `"max_tokens"`) {
		t.Errorf("max_tokens was sent to the reasoning model: %s", got)
	}
}
