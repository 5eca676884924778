package policies

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// loadText loads one configuration file written with text.
func loadText(t *testing.T, text string) *Config {
	t.Helper()
	clearConsulEnv(t)
	f := filepath.Join(t.TempDir(), "sidecar.hcl")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(f)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestModelPrice(t *testing.T) {
	cfg := loadText(t, `agent { name = "writer" }
model "gpt-4o" {
  provider = "openai"
  price {
    input        = 2.50
    output       = 10
    cached_input = 1.25
    cache_write  = 3.125
  }
}
model "claude-haiku" {
  provider = "anthropic"
  price {
    input  = 0.8
    output = 4
  }
}
model "embed" {
  provider = "openai"
  price {
    input  = 0.02
    output = 0
  }
}
model "local" { provider = "openai" }
`)
	tests := []struct {
		label string
		want  *Price
	}{
		{"gpt-4o", &Price{Input: 2.5, Output: 10, CachedInput: 1.25, CacheWrite: 3.125}},
		{"claude-haiku", &Price{Input: 0.8, Output: 4, CachedInput: 0.8, CacheWrite: 0.8}}, // cached prices default to input
		{"embed", &Price{Input: 0.02, CachedInput: 0.02, CacheWrite: 0.02}},
		{"local", nil}, // no price block: no price
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			if got := cfg.Models[tt.label].Price; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("price = %+v, want %+v", got, tt.want)
			}
		})
	}

	summary := cfg.Summary()["models"].(map[string]any)
	got := summary["gpt-4o"].(map[string]any)["price"]
	want := map[string]any{"input": 2.5, "output": 10.0, "cached_input": 1.25, "cache_write": 3.125}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary price = %v, want %v", got, want)
	}
	if p, ok := summary["local"].(map[string]any)["price"]; ok {
		t.Errorf("summary of a model without a price shows price %v, want no key", p)
	}
}

func TestModelPriceErrors(t *testing.T) {
	const path = "testdata/invalid/model_price.hcl"
	want := Diagnostics{
		{Line: 7, Column: 5, Key: "model.gpt-4o.price.output", Message: `must be a number, got string "ten"`},
		{Line: 9, Column: 5, Key: "model.gpt-4o.price.cache_write", Message: `number is out of range, got number 1e+400`},
		{Line: 10, Column: 5, Key: "model.gpt-4o.price.discount",
			Message: "unknown key; valid keys: cache_write, cached_input, input, output"},
		{Line: 16, Column: 3, Key: "model.embed.price",
			Message: `price is a block, not an attribute: write price { ... } without "="`},
	}
	got := loadDiagnostics(t, path)
	for i := range want {
		want[i].File = path
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestModelPriceValues(t *testing.T) {
	const path = "testdata/invalid/model_price_values.hcl"
	want := Diagnostics{
		{Line: 6, Column: 5, Key: "model.gpt-4o.price.input",
			Message: "must be 0 or more (US dollars per million tokens), got -2.5"},
		{Line: 8, Column: 5, Key: "model.gpt-4o.price.cached_input",
			Message: "must be 0 or more (US dollars per million tokens), got -1"},
		{Line: 14, Column: 3, Key: "model.gpt-4o-mini.price.input",
			Message: "required: US dollars per million input tokens, e.g. input = 2.50"},
		{Line: 14, Column: 3, Key: "model.gpt-4o-mini.price.output",
			Message: "required: US dollars per million output tokens, e.g. output = 10.00 (0 for an embeddings model)"},
	}
	got := loadDiagnostics(t, path)
	for i := range want {
		want[i].File = path
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPriceReloadsLive(t *testing.T) {
	prev := reloadBase()
	next := copyConfig(prev)
	m := next.Models["gpt-4o"]
	m.Price = &Price{Input: 1, Output: 2, CachedInput: 1, CacheWrite: 1}
	next.Models["gpt-4o"] = m
	got, restart := KeepRestartOnly(prev, next)
	if len(restart) != 0 {
		t.Errorf("a new price needs a restart of %v, want none", restart)
	}
	if p := got.Models["gpt-4o"].Price; p == nil || p.Input != 1 {
		t.Errorf("price after reload = %+v, want the new one", p)
	}
}
