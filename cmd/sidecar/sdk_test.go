//go:build e2e

package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// sdkOpenFor is open_for of breaker "default" in the SDK test: short, so
// the breaker test waits little, long enough for the calls it makes while
// the breaker is open.
const sdkOpenFor = 2 * time.Second

// needSDKs returns node and the directory of the SDK tests, or ends the
// test when node (20 or later) or the installed SDKs (OpenAI's, Anthropic's
// and the Vercel AI SDK with its two providers) are missing: a skip, a
// failure under CI=true.
func needSDKs(t *testing.T) (node, dir string) {
	t.Helper()
	dir = filepath.Join(repoRoot(t), "cmd", "sidecar", "testdata", "sdk")
	missing := func(what string) {
		msg := what + ": run make sdk-deps (needs Node.js 20+ and npm) to install the OpenAI and Anthropic SDKs for this test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing("node --version failed: " + err.Error())
	}
	version := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if major < 20 {
		missing("node " + version + " is too old")
	}
	for _, pkg := range []string{"openai", "@anthropic-ai/sdk", "ai", "@ai-sdk/openai", "@ai-sdk/anthropic"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing(filepath.Join(dir, "node_modules", pkg) + " is missing")
		}
	}
	return node, dir
}

// sdkEnviron is the environment without the SDKs' own settings
// (OPENAI_*, ANTHROPIC_*), so a developer's keys or base URLs cannot change
// what the tests see.
func sdkEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENAI_") && !strings.HasPrefix(kv, "ANTHROPIC_") {
			env = append(env, kv)
		}
	}
	return env
}

// fakeModel is a fake model server on a loopback port.
func fakeModel(t *testing.T, name, reply string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(fakellm.New(fakellm.Options{Name: name, Reply: reply}))
	t.Cleanup(srv.Close)
	return srv
}

// modelBlock is one model block of the SDK test's configuration.
func modelBlock(label, provider, baseURL, key, name, breaker, fallback string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %q {\n", label)
	fmt.Fprintf(&b, "  provider            = %q\n", provider)
	fmt.Fprintf(&b, "  base_url            = %q\n", baseURL)
	fmt.Fprintf(&b, "  api_key             = %q\n", key)
	fmt.Fprintf(&b, "  name                = %q\n", name)
	fmt.Fprintf(&b, "  breaker             = %q\n", breaker)
	b.WriteString("  timeout             = \"10s\"\n")
	b.WriteString("  first_byte_timeout  = \"2s\"\n")
	b.WriteString("  stream_idle_timeout = \"2s\"\n")
	if fallback != "" {
		fmt.Fprintf(&b, "  fallback            = %q\n", fallback)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestModelGatewayWithOfficialSDKs drives the model gateway of the real
// binary with the official OpenAI and Anthropic Node SDKs
// (testdata/sdk/sdk.test.mjs): steady answers, fallback to the lite model,
// the breaker cutting off a failing primary and probing it, a stream cut
// midway, a whole chain down, and the model list.
func TestModelGatewayWithOfficialSDKs(t *testing.T) {
	node, sdkDir := needSDKs(t)
	consul := consultest.Start(t)

	// Given a primary and a lite fake model per provider (the replies and
	// keys are those sdk.test.mjs expects)
	oaPrimary := fakeModel(t, "openai-primary", "Hello from the primary GPT.")
	oaLite := fakeModel(t, "openai-lite", "Hello from the lite GPT.")
	anPrimary := fakeModel(t, "anthropic-primary", "Hello from the primary Claude.")
	anLite := fakeModel(t, "anthropic-lite", "Hello from the lite Claude.")

	// And a sidecar with a chain primary → lite per provider and scenario:
	// the breaker scenario uses breaker "default", the others one that does
	// not open, so no scenario changes what the next one sees.
	var models strings.Builder
	for _, p := range []struct {
		provider, prefix, primaryURL, liteURL, primaryKey, liteKey, name, liteName string
	}{
		{"openai", "gpt", oaPrimary.URL + "/v1", oaLite.URL + "/v1", "sk-openai-primary", "sk-openai-lite", "gpt-4o", "gpt-4o-mini"},
		{"anthropic", "claude", anPrimary.URL, anLite.URL, "sk-ant-primary", "sk-ant-lite", "claude-sonnet-4-5", "claude-haiku-4-5"},
	} {
		lite := p.prefix + "-lite"
		models.WriteString(modelBlock(p.prefix+"-main", p.provider, p.primaryURL, p.primaryKey, p.name, "tolerant", lite))
		models.WriteString(modelBlock(lite, p.provider, p.liteURL, p.liteKey, p.liteName, "tolerant", ""))
		models.WriteString(modelBlock(p.prefix+"-breaker", p.provider, p.primaryURL, p.primaryKey, p.name, "default", lite))
		models.WriteString(modelBlock(p.prefix+"-cut", p.provider, p.primaryURL, p.primaryKey, p.name, "tolerant", lite))
		models.WriteString(modelBlock(p.prefix+"-down", p.provider, p.primaryURL, p.primaryKey, p.name, "tolerant", p.prefix+"-down-lite"))
		models.WriteString(modelBlock(p.prefix+"-down-lite", p.provider, p.liteURL, p.liteKey, p.liteName, "tolerant", ""))
	}
	control, _ := startModelGateway(t, "sdk-e2e", consul.HTTPAddr, sdkBreakers(sdkOpenFor)+models.String())

	// When the SDK tests run against it
	// Then every one of them passes
	runNodeTests(t, node, sdkDir, "sdk.test.mjs", 90*time.Second,
		"SIDECAR_URL="+control,
		"FAKE_OPENAI_PRIMARY_URL="+oaPrimary.URL,
		"FAKE_OPENAI_LITE_URL="+oaLite.URL,
		"FAKE_ANTHROPIC_PRIMARY_URL="+anPrimary.URL,
		"FAKE_ANTHROPIC_LITE_URL="+anLite.URL,
		"BREAKER_OPEN_FOR_MS="+strconv.FormatInt(sdkOpenFor.Milliseconds(), 10),
		"NO_COLOR=1",
	)
}

// runNodeTests runs `node --test file` in the SDK tests' directory with
// env added to the environment (without the SDKs' own settings), and ends
// the test with node's output when a test fails or limit passes.
func runNodeTests(t *testing.T, node, dir, file string, limit time.Duration, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", file)
	cmd.Dir = dir
	cmd.Env = append(sdkEnviron(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test %s did not finish within %s:\n%s", file, limit, out)
	}
	if err != nil {
		t.Fatalf("node --test %s failed (%v):\n%s", file, err, out)
	}
	t.Logf("node --test %s:\n%s", file, out)
}

// sdkBreakers is the breakers of the SDK tests: "default" opens after 3
// failures for openFor (a probe at a time), "tolerant" never opens, so a
// scenario that does not test breakers cannot change what the next sees.
func sdkBreakers(openFor time.Duration) string {
	return fmt.Sprintf(`
breaker "default" {
  consecutive_failures = 3
  open_for             = %q
  max_open_for         = "1m"
  half_open_probes     = 1
}
breaker "tolerant" {
  consecutive_failures = 1000
}

`, openFor.String())
}
