//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/test/fakellm"
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

// Cache counts a cachingModel reports for every Anthropic answer.
const (
	fakeCacheRead  = 1200
	fakeCacheWrite = 300
)

// cachingModel is a fake model server that reports prompt caching, which
// the fake model itself never does: OpenAI answers report half their
// prompt tokens as cached (prompt_tokens_details.cached_tokens,
// input_tokens_details.cached_tokens), Anthropic ones fakeCacheRead tokens
// read from the cache and fakeCacheWrite written to it. Embeddings, which
// have no cache, and the fake's control endpoints are left as they are.
func cachingModel(t *testing.T, name, reply string) *httptest.Server {
	t.Helper()
	fake := fakellm.New(fakellm.Options{Name: name, Reply: reply})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if !strings.HasPrefix(r.URL.Path, "/_") {
			body = withCache(body, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream"))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// withCache adds cache counts to the usage of an answer: the body of a
// plain one, or each data line of a stream.
func withCache(body []byte, stream bool) []byte {
	if !stream {
		return []byte(addCache(string(body)))
	}
	lines := bytes.Split(body, []byte("\n"))
	for i, line := range lines {
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok && gjson.ValidBytes(data) {
			lines[i] = append([]byte("data: "), addCache(string(data))...)
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// addCache adds cache counts to the usage objects of one JSON answer or
// event (see cachingModel).
func addCache(js string) string {
	for _, at := range []string{"usage", "response.usage", "message.usage"} {
		u := gjson.Get(js, at)
		if !u.IsObject() {
			continue
		}
		switch {
		case u.Get("prompt_tokens").Exists() && u.Get("completion_tokens").Exists():
			js, _ = sjson.Set(js, at+".prompt_tokens_details.cached_tokens", u.Get("prompt_tokens").Int()/2)
		case u.Get("input_tokens_details").Exists():
			js, _ = sjson.Set(js, at+".input_tokens_details.cached_tokens", u.Get("input_tokens").Int()/2)
		case u.Get("cache_read_input_tokens").Exists():
			js, _ = sjson.Set(js, at+".cache_read_input_tokens", fakeCacheRead)
			js, _ = sjson.Set(js, at+".cache_creation_input_tokens", fakeCacheWrite)
		}
	}
	return js
}

// TestUsageWithOfficialSDKs drives the model gateway of the real binary
// with the official OpenAI and Anthropic Node SDKs
// (testdata/sdk/usage.test.mjs): for OpenAI chat completions, legacy
// completions, embeddings and responses and Anthropic messages, plain and
// streamed, the usage the SDK received is what the sidecar's status counts
// for the model, in tokens and in money, from fakes that report no caching
// and from fakes that report cached input and cache writes; a chat or
// completions stream whose agent did not ask for usage is counted all the
// same while the agent sees no usage chunk; and a token count counts
// nothing.
func TestUsageWithOfficialSDKs(t *testing.T) {
	node, sdkDir := needSDKs(t)
	consul := consultest.Start(t)

	// Given one fake model per provider, and one per provider that
	// reports prompt caching (the replies and keys are those
	// usage.test.mjs expects)
	gpt := fakeModel(t, "openai-usage", "Hello from the counted GPT.")
	claude := fakeModel(t, "anthropic-usage", "Hello from the counted Claude.")
	gptCached := cachingModel(t, "openai-cached", "Hello from the counted GPT.")
	claudeCached := cachingModel(t, "anthropic-cached", "Hello from the counted Claude.")

	// And a sidecar with priced models on them: per fake, a chat model and
	// its twin (the same upstream, for the streams whose usage the agent
	// does not see) or an Anthropic model, and an embeddings model, each
	// priced differently so a count against the wrong one shows.
	prices := map[string]usagePrice{
		"gpt-usage":       {Input: 2.5, Output: 10, CachedInput: 1.25, CacheWrite: 2.5},
		"gpt-usage-twin":  {Input: 5, Output: 20, CachedInput: 2.5, CacheWrite: 5},
		"embed-usage":     {Input: 0.02, Output: 0, CachedInput: 0.02, CacheWrite: 0.02},
		"claude-usage":    {Input: 3, Output: 15, CachedInput: 0.3, CacheWrite: 3.75},
		"gpt-cached":      {Input: 1.1, Output: 4.4, CachedInput: 0.275, CacheWrite: 1.1},
		"gpt-cached-twin": {Input: 0.4, Output: 1.6, CachedInput: 0.1, CacheWrite: 0.4},
		"claude-cached":   {Input: 1, Output: 5, CachedInput: 0.1, CacheWrite: 1.25},
	}
	var models strings.Builder
	for _, m := range []struct{ label, provider, url, key, name string }{
		{"gpt-usage", "openai", gpt.URL + "/v1", "sk-openai-usage", "gpt-4o"},
		{"gpt-usage-twin", "openai", gpt.URL + "/v1", "sk-openai-usage", "gpt-4o"},
		{"embed-usage", "openai", gpt.URL + "/v1", "sk-openai-usage", "text-embedding-3-small"},
		{"claude-usage", "anthropic", claude.URL, "sk-ant-usage", "claude-sonnet-4-5"},
		{"gpt-cached", "openai", gptCached.URL + "/v1", "sk-openai-cached", "gpt-4.1"},
		{"gpt-cached-twin", "openai", gptCached.URL + "/v1", "sk-openai-cached", "gpt-4.1"},
		{"claude-cached", "anthropic", claudeCached.URL, "sk-ant-cached", "claude-haiku-4-5"},
	} {
		models.WriteString(pricedModelBlock(m.label, m.provider, m.url, m.key, m.name, prices[m.label]))
	}
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
	// Then every one of them passes
	runNodeTests(t, node, sdkDir, "usage.test.mjs", 90*time.Second,
		"SIDECAR_URL="+control,
		"FAKE_OPENAI_URL="+gpt.URL,
		"FAKE_OPENAI_CACHED_URL="+gptCached.URL,
		"USAGE_CACHE_READ="+fmt.Sprint(fakeCacheRead),
		"USAGE_CACHE_WRITE="+fmt.Sprint(fakeCacheWrite),
		"USAGE_PRICES="+string(priceJSON),
		"NO_COLOR=1",
	)
}
