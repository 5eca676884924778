//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// usagePrice is a model's price in the usage test, US dollars per million
// tokens; the JSON keys are those usage.test.mjs reads.
type usagePrice struct {
	Input       float64 `json:"input"`
	Output      float64 `json:"output"`
	CachedInput float64 `json:"cached_input"`
	CacheWrite  float64 `json:"cache_write"`
}

// block is the price block of a model block.
func (p usagePrice) block() string {
	return fmt.Sprintf("  price {\n    input        = %g\n    output       = %g\n    cached_input = %g\n    cache_write  = %g\n  }\n",
		p.Input, p.Output, p.CachedInput, p.CacheWrite)
}

// pricedModelBlock is modelBlock (no fallback, breaker "tolerant") with a
// price block.
func pricedModelBlock(label, provider, baseURL, key, name string, p usagePrice) string {
	return strings.TrimSuffix(modelBlock(label, provider, baseURL, key, name, "tolerant", ""), "}\n") + p.block() + "}\n"
}

// TestUsageWithOfficialSDKs drives the model gateway of the real binary
// with the official OpenAI and Anthropic Node SDKs
// (testdata/sdk/usage.test.mjs): for OpenAI chat completions, legacy
// completions, embeddings and responses and Anthropic messages, plain and
// streamed, the usage the SDK received is what the sidecar's status counts
// for the model, in tokens and in money; and a chat or completions stream
// whose agent did not ask for usage is counted all the same while the
// agent sees no usage chunk.
func TestUsageWithOfficialSDKs(t *testing.T) {
	node, sdkDir := needSDKs(t)
	consul := consultest.Start(t)

	// Given one fake model per provider (the replies and keys are those
	// usage.test.mjs expects)
	gpt := fakeModel(t, "openai-usage", "Hello from the counted GPT.")
	claude := fakeModel(t, "anthropic-usage", "Hello from the counted Claude.")

	// And a sidecar with priced models on them: a chat model and its twin
	// (the same upstream, for the stream whose usage the agent does not
	// see), an embeddings model and an Anthropic model, each priced
	// differently so a count against the wrong one shows.
	prices := map[string]usagePrice{
		"gpt-usage":      {Input: 2.5, Output: 10, CachedInput: 1.25, CacheWrite: 2.5},
		"gpt-usage-twin": {Input: 5, Output: 20, CachedInput: 2.5, CacheWrite: 5},
		"embed-usage":    {Input: 0.02, Output: 0, CachedInput: 0.02, CacheWrite: 0.02},
		"claude-usage":   {Input: 3, Output: 15, CachedInput: 0.3, CacheWrite: 3.75},
	}
	var models strings.Builder
	models.WriteString(pricedModelBlock("gpt-usage", "openai", gpt.URL+"/v1", "sk-openai-usage", "gpt-4o", prices["gpt-usage"]))
	models.WriteString(pricedModelBlock("gpt-usage-twin", "openai", gpt.URL+"/v1", "sk-openai-usage", "gpt-4o", prices["gpt-usage-twin"]))
	models.WriteString(pricedModelBlock("embed-usage", "openai", gpt.URL+"/v1", "sk-openai-usage", "text-embedding-3-small", prices["embed-usage"]))
	models.WriteString(pricedModelBlock("claude-usage", "anthropic", claude.URL, "sk-ant-usage", "claude-sonnet-4-5", prices["claude-usage"]))
	control, _ := startModelGateway(t, "sdk-usage-e2e", consul.HTTPAddr, `
breaker "tolerant" {
  consecutive_failures = 1000
}

`+models.String())
	priceJSON, err := json.Marshal(prices)
	if err != nil {
		t.Fatal(err)
	}

	// When the usage SDK tests run against it
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodeCmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "usage.test.mjs")
	nodeCmd.Dir = sdkDir
	nodeCmd.Env = append(sdkEnviron(),
		"SIDECAR_URL="+control,
		"FAKE_OPENAI_URL="+gpt.URL,
		"FAKE_ANTHROPIC_URL="+claude.URL,
		"USAGE_PRICES="+string(priceJSON),
		"NO_COLOR=1",
	)
	out, err := nodeCmd.CombinedOutput()

	// Then every one of them passes
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within 90s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("node --test usage.test.mjs failed (%v):\n%s", err, out)
	}
	t.Logf("node --test usage.test.mjs:\n%s", out)
}
