//go:build e2e

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// crossOpenFor is open_for of breaker "default" in the cross-provider test:
// shorter than the time the rate-limit scenario watches the limited model,
// so a breaker that reopened for open_for instead of the model's
// Retry-After would show.
const crossOpenFor = 2 * time.Second

// crossRetryAfter is the Retry-After the rate-limited fake answers with.
const crossRetryAfter = 20 * time.Second

// TestCrossProviderWithOfficialSDKs drives the model gateway of the real
// binary across providers (testdata/sdk/crossing.test.mjs): agents on the
// official OpenAI SDK (Chat Completions and Responses API), on the official
// Anthropic SDK and on the Vercel AI SDK, whose own provider's models fail,
// are served by a model of the other provider, plain and streamed, tool
// calls and their results included; and a model that answers 429 with
// Retry-After is left alone until then while the other provider serves.
func TestCrossProviderWithOfficialSDKs(t *testing.T) {
	node, sdkDir := needSDKs(t)
	consul := consultest.Start(t)

	// Given fake models of both providers: one of each that fails (the
	// tests make it answer 503), one of each that answers, and an OpenAI
	// one that the rate-limit scenario makes answer 429 with Retry-After
	// (the replies and keys are those crossing.test.mjs expects)
	gptDown := fakeModel(t, "openai-down", "Hello from the failing GPT.")
	gptUp := fakeModel(t, "openai-up", "Hello from the fallback GPT.")
	gptLimited := fakeModel(t, "openai-limited", "Hello from the limited GPT.")
	claudeDown := fakeModel(t, "anthropic-down", "Hello from the failing Claude.")
	claudeUp := fakeModel(t, "anthropic-up", "Hello from the fallback Claude.")

	// And a sidecar with, per scenario, a chain whose first model is of
	// the agent's provider and whose fallback is of the other; each model
	// has its own key, since a translated request never carries the
	// agent's. Breakers are "tolerant" (they never open) except in the
	// rate-limit scenario, which needs one that a Retry-After opens.
	var models strings.Builder
	for _, c := range []struct {
		label, fallback string
		breaker         string
		openai          bool // the first model is OpenAI's, the fallback Anthropic's
		firstURL        string
	}{
		{"gpt-chat", "claude-for-chat", "tolerant", true, gptDown.URL},
		{"gpt-resp", "claude-for-resp", "tolerant", true, gptDown.URL},
		{"gpt-ai", "claude-for-ai", "tolerant", true, gptDown.URL},
		{"gpt-limited", "claude-for-limited", "default", true, gptLimited.URL},
		{"claude-msg", "gpt-for-msg", "tolerant", false, claudeDown.URL},
		{"claude-ai", "gpt-for-ai", "tolerant", false, claudeDown.URL},
	} {
		if c.openai {
			models.WriteString(modelBlock(c.label, "openai", c.firstURL+"/v1", "sk-openai-"+c.label, "gpt-4o", c.breaker, c.fallback))
			models.WriteString(modelBlock(c.fallback, "anthropic", claudeUp.URL, "sk-ant-"+c.fallback, "claude-sonnet-4-5", "tolerant", ""))
		} else {
			models.WriteString(modelBlock(c.label, "anthropic", c.firstURL, "sk-ant-"+c.label, "claude-sonnet-4-5", c.breaker, c.fallback))
			models.WriteString(modelBlock(c.fallback, "openai", gptUp.URL+"/v1", "sk-openai-"+c.fallback, "gpt-4o-mini", "tolerant", ""))
		}
	}
	control, _ := startModelGateway(t, "sdk-cross-e2e", consul.HTTPAddr, sdkBreakers(crossOpenFor)+models.String())

	// When the cross-provider SDK tests run against it
	// Then every one of them passes
	runNodeTests(t, node, sdkDir, "crossing.test.mjs", 120*time.Second,
		"SIDECAR_URL="+control,
		"FAKE_OPENAI_DOWN_URL="+gptDown.URL,
		"FAKE_OPENAI_UP_URL="+gptUp.URL,
		"FAKE_OPENAI_LIMITED_URL="+gptLimited.URL,
		"FAKE_ANTHROPIC_DOWN_URL="+claudeDown.URL,
		"FAKE_ANTHROPIC_UP_URL="+claudeUp.URL,
		"BREAKER_OPEN_FOR_MS="+strconv.FormatInt(crossOpenFor.Milliseconds(), 10),
		"RETRY_AFTER_MS="+strconv.FormatInt(crossRetryAfter.Milliseconds(), 10),
		"NO_COLOR=1",
	)
}
