package policies

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullModels is the models of testdata/full.hcl, with SIDECAR_TEST_MODEL_KEY
// set to "sk-model".
func fullModels() map[string]Model {
	return map[string]Model{
		"gpt-4o": {
			Label:             "gpt-4o",
			Provider:          ProviderOpenAI,
			BaseURL:           "https://llm.internal.example.com/openai/v1", // trailing "/" trimmed
			APIKey:            "sk-model",
			Headers:           map[string]string{"OpenAI-Organization": "org-research"},
			Name:              "gpt-4o-2024-08-06",
			Breaker:           "strict",
			Timeout:           90 * time.Second,
			FirstByteTimeout:  15 * time.Second,
			StreamIdleTimeout: 20 * time.Second,
			Fallback:          "gpt-4o-mini",
			MaxTokens:         4096,
			DropFields:        []string{"parallel_tool_calls", "service_tier"},
			DegradeOn:         []string{DegradeEmpty, DegradeInvalidJSON},
		},
		"gpt-4o-mini": {
			Label:             "gpt-4o-mini",
			Provider:          ProviderOpenAI,
			BaseURL:           "https://api.openai.com/v1",
			Name:              "gpt-4o-mini",
			Breaker:           "default",
			Timeout:           30 * time.Second,
			FirstByteTimeout:  30 * time.Second, // as long as timeout is allowed
			StreamIdleTimeout: 10 * time.Second,
		},
		"claude-3-5-haiku-latest": {
			Label:             "claude-3-5-haiku-latest",
			Provider:          ProviderAnthropic,
			BaseURL:           "https://anthropic-proxy.example.com",
			Name:              "claude-3-5-haiku-20241022",
			Breaker:           "default",
			Timeout:           2 * time.Minute,
			FirstByteTimeout:  30 * time.Second,
			StreamIdleTimeout: 60 * time.Second,
		},
	}
}

// defaultModel is a model with every default of its provider.
func defaultModel(label, provider string) Model {
	base := map[string]string{
		ProviderOpenAI:    "https://api.openai.com/v1",
		ProviderAnthropic: "https://api.anthropic.com",
	}[provider]
	return Model{
		Label:             label,
		Provider:          provider,
		BaseURL:           base,
		Name:              label,
		Breaker:           "default",
		Timeout:           2 * time.Minute,
		FirstByteTimeout:  30 * time.Second,
		StreamIdleTimeout: 60 * time.Second,
	}
}

// modelDefaults is the configuration of testdata/model_defaults.hcl:
// models with only their provider (and a base URL for local servers).
func modelDefaults() *Config {
	want := defaultConfig("writer", "testdata/model_defaults.hcl")
	llama := defaultModel("llama3.1:8b", ProviderOpenAI)
	llama.BaseURL = "http://127.0.0.1:11434/v1"
	vllm := defaultModel("meta-llama/Llama-3-8B", ProviderOpenAI)
	vllm.BaseURL = "http://vllm.internal:8000/v1" // api_key from an unset variable: "", no error, a warning
	vllm.APIKeyEmpty = true
	want.Models = map[string]Model{
		"gpt-4o":                  defaultModel("gpt-4o", ProviderOpenAI),
		"claude-3-5-haiku-latest": defaultModel("claude-3-5-haiku-latest", ProviderAnthropic),
		"llama3.1:8b":             llama,
		"meta-llama/Llama-3-8B":   vllm,
	}
	return want
}

func TestLoadModelsAcrossFiles(t *testing.T) {
	clearConsulEnv(t)

	// Given a model in one file that falls back to a model in another,
	got, err := Load("testdata/minimal.hcl", "testdata/models.d")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	// Then both are loaded, and the reference resolves.
	primary := defaultModel("gpt-4o", ProviderOpenAI)
	primary.Fallback = "gpt-4o-mini"
	lite := defaultModel("gpt-4o-mini", ProviderOpenAI)
	lite.MaxTokens = 1024
	want := map[string]Model{"gpt-4o": primary, "gpt-4o-mini": lite}
	if !reflect.DeepEqual(got.Models, want) {
		t.Errorf("models: got %+v\nwant %+v", got.Models, want)
	}
	if got.Gateway.MaxRequestBytes != 1024 {
		t.Errorf("gateway.max_request_bytes: got %d, want 1024 (the minimum)", got.Gateway.MaxRequestBytes)
	}
}

func TestModelErrors(t *testing.T) {
	const dir = "testdata/invalid/"
	const sameRequest = "without it the request would no longer be the same request"
	const neverEnds = ": a fallback chain must end; remove one of these fallbacks"
	const badLabel = ": use a non-empty label without spaces or control characters"
	const oneLabel = "a model block takes exactly one label, the name agents ask for, e.g. model \"gpt-4o\" { ... }; got "
	tests := []struct {
		name string
		path string
		want Diagnostics
	}{
		{
			name: "model and gateway values",
			path: dir + "model_values.hcl",
			want: Diagnostics{
				{Line: 6, Column: 3, Key: "model.gpt-4o.provider",
					Message: `must be "openai" or "anthropic", got "OpenAI"; did you mean "openai"?`},
				{Line: 7, Column: 3, Key: "model.gpt-4o.base_url",
					Message: `must be an absolute http or https URL, e.g. "https://api.openai.com/v1", got "ftp://llm.example.com/v1"`},
				{Line: 8, Column: 3, Key: "model.gpt-4o.name",
					Message: `"gpt 4o" must not contain whitespace or control characters: give the model's name as the ` +
						`provider knows it, e.g. "gpt-4o-mini"`},
				{Line: 9, Column: 3, Key: "model.gpt-4o.breaker", Message: `no breaker block named "fast"; defined: default`},
				{Line: 10, Column: 3, Key: "model.gpt-4o.timeout", Message: `must be greater than 0, got "0s"`},
				{Line: 11, Column: 3, Key: "model.gpt-4o.first_byte_timeout",
					Message: `invalid duration "1x": use a number and a unit, e.g. "30s", "5m"`},
				{Line: 12, Column: 3, Key: "model.gpt-4o.stream_idle_timeout", Message: `must not be negative, got "-1s"`},
				{Line: 13, Column: 3, Key: "model.gpt-4o.max_tokens", Message: "must be 0 or more, got -1"},
				{Line: 14, Column: 3, Key: "model.gpt-4o.drop_fields", Message: "element 2 is empty: remove it"},
				{Line: 14, Column: 3, Key: "model.gpt-4o.drop_fields", Message: `"tools" is listed twice: remove one`},
				{Line: 14, Column: 3, Key: "model.gpt-4o.drop_fields",
					Message: `"messages" cannot be dropped: it holds what the model is asked; ` + sameRequest},
				{Line: 14, Column: 3, Key: "model.gpt-4o.drop_fields",
					Message: `"model" cannot be dropped: the sidecar sets it to this model's name`},
				{Line: 14, Column: 3, Key: "model.gpt-4o.drop_fields",
					Message: `"stream" cannot be dropped: it says whether the agent reads the answer as a stream; ` + sameRequest},
				{Line: 15, Column: 3, Key: "model.gpt-4o.degrade_on",
					Message: `element 2 must be "empty" or "invalid_json", got "invalid-json"; did you mean "invalid_json"?`},
				{Line: 15, Column: 3, Key: "model.gpt-4o.degrade_on", Message: `"empty" is listed twice: remove one`},
				{Line: 16, Column: 3, Key: "model.gpt-4o.headers",
					Message: `"Bad Header" is not a valid HTTP header name: use letters, digits and dashes, e.g. "OpenAI-Organization"`},
				{Line: 16, Column: 3, Key: "model.gpt-4o.headers",
					Message: `"Content-Length" cannot be set: the sidecar sets it to the length of the body it sends, ` +
						`which differs from the agent's when fields are rewritten`},
				{Line: 16, Column: 3, Key: "model.gpt-4o.headers",
					Message: `"Host" cannot be set: the sidecar sends the host of base_url`},
				{Line: 25, Column: 3, Key: "model.gpt-4o-mini.base_url",
					Message: "a query or fragment is not supported: give the scheme, host, port and path only"},
				{Line: 26, Column: 3, Key: "model.gpt-4o-mini.name",
					Message: `must not be empty: remove it to send the label "gpt-4o-mini"`},
				{Line: 27, Column: 3, Key: "model.gpt-4o-mini.fallback",
					Message: "must not be empty: remove it to end the chain at this model"},
				{Line: 32, Column: 3, Key: "model.claude.base_url",
					Message: `"https://api.anthropic.com/v1/" ends in /v1, but the sidecar adds /v1/messages itself ` +
						`(as Anthropic's SDKs do): use "https://api.anthropic.com"`},
				{Line: 36, Column: 3, Key: "model.mistral.provider",
					Message: `must be "openai" or "anthropic", got "mistral"; an OpenAI-compatible server ` +
						`(vLLM, Ollama, LiteLLM, …) is "openai" with its base_url`},
				{Line: 37, Column: 3, Key: "model.mistral.base_url",
					Message: "must not be empty: remove it to use the provider's default"},
				// A missing provider is reported at the block.
				{Line: 40, Column: 1, Key: "model.no-provider.provider",
					Message: `required: the wire format the model speaks, "openai" or "anthropic", e.g. provider = "openai"`},
				{Line: 45, Column: 3, Key: "model.slow.first_byte_timeout",
					Message: "first_byte_timeout (1m30s) is longer than timeout (1m0s): the first byte is awaited " +
						"within the whole call; make it at most 1m0s"},
				// first_byte_timeout is its default: the error points at timeout.
				{Line: 50, Column: 3, Key: "model.short.timeout",
					Message: "timeout (10s) is shorter than first_byte_timeout (30s, its default): the first byte is " +
						"awaited within the whole call; set first_byte_timeout to at most 10s"},
				{Line: 54, Column: 3, Key: "gateway.max_request_bytes",
					Message: "must be at least 1024 (1 KiB), got 512; the default is 10485760 (10 MiB)"},
			},
		},
		{
			name: "references between models",
			path: dir + "model_references.hcl",
			want: Diagnostics{
				{Line: 7, Column: 3, Key: "model.gpt-4o.fallback",
					Message: `no model block named "gpt-4o-mnii"; defined: a, b, backup, c, claude-haiku, gpt-4o, ` +
						`gpt-4o-mini, loop; did you mean "gpt-4o-mini"?`},
				{Line: 21, Column: 3, Key: "model.backup.name",
					Message: `"gpt-4o" is the label of another model block (at ` + dir + `model_references.hcl:5:1): ` +
						`a request for "gpt-4o" could mean either model; give that block another label ` +
						`(it can keep sending "gpt-4o" with name = "gpt-4o")`},
				{Line: 26, Column: 3, Key: "model.loop.fallback", Message: "fallback cycle loop → loop" + neverEnds},
				// Reported once, at the alphabetically first model of the cycle.
				{Line: 36, Column: 3, Key: "model.b.fallback", Message: "fallback cycle b → c → b" + neverEnds},
			},
		},
		{
			name: "context_fallback and max_tokens_field",
			path: dir + "model_context.hcl",
			want: Diagnostics{
				{Line: 7, Column: 3, Key: "model.gpt-4o.context_fallback",
					Message: `no model block named "gpt-4.1x"; defined: claude-sonnet, gpt-4.1, gpt-4.1-long, gpt-4o, ` +
						`gpt-4o-mini, o3-mini; did you mean "gpt-4.1"?`},
				{Line: 8, Column: 3, Key: "model.gpt-4o.max_tokens_field",
					Message: `must be "max_tokens" or "max_completion_tokens" (OpenAI's reasoning models), got ` +
						`"max_completion_token"; did you mean "max_completion_tokens"?`},
				{Line: 18, Column: 3, Key: "model.claude-sonnet.max_tokens_field",
					Message: "an anthropic model takes its cap in max_tokens only: remove max_tokens_field"},
				{Line: 23, Column: 3, Key: "model.o3-mini.max_tokens_field",
					Message: `"max_completion_tokens" is also in drop_fields, so the cap would never be sent: remove it from one of them`},
				{Line: 25, Column: 3, Key: "model.o3-mini.context_fallback",
					Message: `must not be empty: remove it to pass a "context too long" refusal to the agent`},
				{Line: 30, Column: 3, Key: "model.gpt-4.1.context_fallback",
					Message: "context_fallback cycle gpt-4.1 → gpt-4.1-long → gpt-4.1: a context_fallback chain must end; " +
						"remove one of these context_fallbacks"},
			},
		},
		{
			name: "queue and embedding space",
			path: dir + "model_queue.hcl",
			want: Diagnostics{
				{Line: 6, Column: 3, Key: "model.gpt-4o.max_concurrent", Message: "must be 0 or more, got -1"},
				{Line: 7, Column: 3, Key: "model.gpt-4o.rpm", Message: "must be 0 or more, got -5"},
				{Line: 8, Column: 3, Key: "model.gpt-4o.queue_timeout", Message: `must not be negative, got "-1s"`},
				{Line: 13, Column: 3, Key: "model.gpt-4o-mini.queue_timeout",
					Message: "bounds the wait of a request over max_concurrent or rpm, and neither is set: set one of them, " +
						"or remove queue_timeout"},
				{Line: 14, Column: 3, Key: "model.gpt-4o-mini.embedding_space",
					Message: "must not be empty: remove it to make only this model (gpt-4o-mini) interchangeable with itself"},
			},
		},
		{
			name: "model labels",
			path: dir + "model_labels.hcl",
			want: Diagnostics{
				{Line: 5, Column: 7, Key: "model", Message: `invalid model label ""` + badLabel},
				{Line: 9, Column: 7, Key: "model", Message: `invalid model label "gpt 4o"` + badLabel},
				{Line: 13, Column: 7, Key: "model", Message: `invalid model label "gpt-4o\a"` + badLabel},
				{Line: 17, Column: 1, Key: "model", Message: oneLabel + "0"},
				{Line: 21, Column: 1, Key: "model", Message: oneLabel + "2"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadDiagnostics(t, tt.path)

			for i := range tt.want {
				tt.want[i].File = tt.path
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSummaryOfModels(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_MODEL_KEY", "sk-model")
	cfg, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	out, err := json.Marshal(cfg.Summary())
	if err != nil {
		t.Fatalf("marshal summary: %v", err)
	}
	var got struct {
		Models  map[string]map[string]any `json:"models"`
		Gateway map[string]any            `json:"gateway"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unmarshal summary: %v", err)
	}

	want := map[string]map[string]any{
		"gpt-4o": {
			"provider":            "openai",
			"base_url":            "https://llm.internal.example.com/openai/v1",
			"api_key":             "<redacted>",
			"headers":             map[string]any{"OpenAI-Organization": "<redacted>"},
			"name":                "gpt-4o-2024-08-06",
			"breaker":             "strict",
			"timeout":             "1m30s",
			"first_byte_timeout":  "15s",
			"stream_idle_timeout": "20s",
			"fallback":            "gpt-4o-mini",
			"max_tokens":          float64(4096),
			"drop_fields":         []any{"parallel_tool_calls", "service_tier"},
			"degrade_on":          []any{"empty", "invalid_json"},
		},
		// No api_key: the key is left out; empty lists and maps stay [] and {}.
		"gpt-4o-mini": {
			"provider":            "openai",
			"base_url":            "https://api.openai.com/v1",
			"headers":             map[string]any{},
			"name":                "gpt-4o-mini",
			"breaker":             "default",
			"timeout":             "30s",
			"first_byte_timeout":  "30s",
			"stream_idle_timeout": "10s",
			"fallback":            "",
			"max_tokens":          float64(0),
			"drop_fields":         []any{},
			"degrade_on":          []any{},
		},
	}
	for label, w := range want {
		if !reflect.DeepEqual(got.Models[label], w) {
			t.Errorf("models.%s:\ngot  %v\nwant %v", label, got.Models[label], w)
		}
	}
	if len(got.Models) != 3 {
		t.Errorf("models: got %d, want 3", len(got.Models))
	}
	if want := map[string]any{"max_request_bytes": float64(2 << 20)}; !reflect.DeepEqual(got.Gateway, want) {
		t.Errorf("gateway: got %v, want %v", got.Gateway, want)
	}
}

// A model whose api_key is set but empty (an unset environment variable)
// is valid but warned about: it forwards the agent's own credentials.
// A model without api_key, or with a key, is not.
func TestWarningForAnEmptyAPIKey(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("SIDECAR_TEST_MODEL_KEY", "sk-secret-value")
	f := filepath.Join(t.TempDir(), "models.hcl")
	if err := os.WriteFile(f, []byte(`agent { name = "writer" }
model "keyless" {
  provider = "openai"
  api_key  = env("SIDECAR_TEST_KEY_THAT_IS_NOT_SET")
}
model "keyed" {
  provider = "anthropic"
  api_key  = env("SIDECAR_TEST_MODEL_KEY")
}
model "forwarding" { provider = "openai" }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(f)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := cfg.Warnings()
	want := []string{`model "keyless": api_key is set but empty (is the environment variable it reads set?); ` +
		`the agent's own credentials are forwarded to https://api.openai.com/v1 instead`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%q\nwant\n%q", got, want)
	}
	for _, w := range got {
		if strings.Contains(w, "sk-secret-value") {
			t.Errorf("a warning shows a key: %s", w)
		}
	}
}

// A fallback of the other provider loads (the gateway translates the
// request); without an api_key of its own it is warned about, since the
// agent's credentials are never sent across providers. max_concurrent and
// rpm get the default queue_timeout; the embedding space defaults to the
// provider and upstream name.
func TestCrossProviderFallbackAndQueue(t *testing.T) {
	clearConsulEnv(t)
	f := filepath.Join(t.TempDir(), "models.hcl")
	if err := os.WriteFile(f, []byte(`agent { name = "writer" }
model "gpt-4o" {
  provider         = "openai"
  fallback         = "claude-haiku"
  context_fallback = "claude-sonnet"
  max_concurrent   = 4
}
model "claude-haiku" {
  provider = "anthropic"
  api_key  = "sk-ant-test"
  rpm      = 60
  queue_timeout = "2s"
}
model "claude-sonnet" { provider = "anthropic" }
model "embed-a" {
  provider        = "openai"
  name            = "text-embedding-3-small"
  embedding_space = "minilm"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(f)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.Models["gpt-4o"].QueueTimeout; got != DefaultQueueTimeout {
		t.Errorf("gpt-4o queue_timeout = %s, want the default %s", got, DefaultQueueTimeout)
	}
	if got := cfg.Models["claude-haiku"].QueueTimeout; got != 2*time.Second {
		t.Errorf("claude-haiku queue_timeout = %s, want 2s", got)
	}
	if got := cfg.Models["claude-sonnet"].QueueTimeout; got != 0 {
		t.Errorf("claude-sonnet has no limits, queue_timeout = %s, want 0", got)
	}
	if got, want := cfg.Models["gpt-4o"].Space(), "openai/gpt-4o"; got != want {
		t.Errorf("gpt-4o space = %q, want %q", got, want)
	}
	if got, want := cfg.Models["embed-a"].Space(), "minilm"; got != want {
		t.Errorf("embed-a space = %q, want %q", got, want)
	}
	want := []string{`model "claude-sonnet": it is a fallback of "gpt-4o", which speaks openai, but has no api_key; ` +
		`an agent's credentials for openai are never sent to anthropic, so "claude-sonnet" answers 401 when the chain ` +
		`reaches it: set its api_key`}
	if got := cfg.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%q\nwant\n%q", got, want)
	}
}
