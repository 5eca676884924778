package policies

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary files to the configuration loader: no panic,
// and a file that does not load gets errors that each name the file and a
// position (file:line:col) or the file itself.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"testdata/full.hcl", "testdata/minimal.hcl", "testdata/sidecar.hcl",
		"testdata/invalid/model_values.hcl", "testdata/invalid/unknown_block.hcl",
		"testdata/invalid/model_price.hcl", "testdata/invalid/model_price_values.hcl", "testdata/invalid/budget.hcl"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("agent {\n  name = \"w\"\n}\nmodel \"a\" {\n  provider = \"openai\"\n  fallback = \"a\"\n}\n"))
	f.Add([]byte("agent { name = env(\"X\") }"))
	f.Add([]byte("\x00\xff{{{"))
	f.Add([]byte("agent {\n  name = \"w\"\n}\nbreaker \"b\" {\n  x = " + strings.Repeat("[", 70) + "\n}\n"))
	f.Add([]byte("agent { name = \"a\" }\nx = \"${a b}\"\n")) // a detail of two paragraphs
	f.Add([]byte("x = <<EOT\n${\"${" + strings.Repeat("(!-", 30) + "}\"}\nEOT\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		path := filepath.Join(t.TempDir(), "f.hcl")
		pos := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `(:\d+:\d+)?: `)
		if err := os.WriteFile(path, src, 0o600); err != nil {
			t.Fatal(err)
		}
		var cfg *Config
		var err error
		done := make(chan struct{})
		go func() { defer close(done); cfg, err = Load(path) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Load did not finish within 5s on %q", src)
		}
		if err == nil {
			if cfg == nil || cfg.Agent.Name == "" {
				t.Fatalf("loaded without an agent name: %+v", cfg)
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" && !pos.MatchString(line) {
				t.Fatalf("error line without its position: %q", line)
			}
		}
	})
}
