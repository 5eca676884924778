//go:build e2e

package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// sdkBudgetWindow is the window of the budgets in the budget SDK test:
// short, so the test waits little for the reset.
const sdkBudgetWindow = 10 * time.Second

// TestBudgetWithOfficialSDKs drives the budgets of the real binary with
// the official OpenAI Node SDK (testdata/sdk/budget.test.mjs): an agent
// looping on calls is stopped by a budget in reject mode with a
// RateLimitError that names the budget and carries Retry-After within the
// window, and is served again once the window resets; a budget in degrade
// mode sends every request, once spent, to the cheaper model.
func TestBudgetWithOfficialSDKs(t *testing.T) {
	node, sdkDir := needSDKs(t)
	consul := consultest.Start(t)

	// Given a fake model for the looping agent, and a big and a small one
	// (the replies are those budget.test.mjs expects)
	loop := fakeModel(t, "openai-loop", "Hello from the looping GPT.")
	big := fakeModel(t, "openai-big", "Hello from the big GPT.")
	small := fakeModel(t, "openai-small", "Hello from the small GPT.")

	// And a sidecar with a rejecting budget of a few calls' tokens per
	// window on gpt-loop, and a degrading one on gpt-big
	window := strconv.Quote(sdkBudgetWindow.String())
	blocks := `
breaker "tolerant" {
  consecutive_failures = 1000
}

` + modelBlock("gpt-loop", "openai", loop.URL+"/v1", "sk-openai-loop", "gpt-4o", "tolerant", "") +
		modelBlock("gpt-big", "openai", big.URL+"/v1", "sk-openai-big", "gpt-4o", "tolerant", "") +
		modelBlock("gpt-small", "openai", small.URL+"/v1", "sk-openai-small", "gpt-4o-mini", "tolerant", "") + `
budget "daily" {
  window = ` + window + `
  tokens = 150
  action = "reject"
  models = ["gpt-loop"]
}

budget "big-model" {
  window     = "24h"
  tokens     = 150
  action     = "degrade"
  degrade_to = "gpt-small"
  models     = ["gpt-big"]
}
`
	control, _ := startModelGateway(t, "sdk-budget-e2e", consul.HTTPAddr, blocks)

	// When the budget SDK tests run against it
	// Then every one of them passes
	runNodeTests(t, node, sdkDir, "budget.test.mjs", 90*time.Second,
		"SIDECAR_URL="+control,
		"BUDGET_WINDOW_MS="+strconv.FormatInt(sdkBudgetWindow.Milliseconds(), 10),
		"NO_COLOR=1",
	)
}
