//go:build e2e

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// TestNestedJSONCannotCrashTheSidecar drives the real binary with JSON
// nested ten million levels deep: as a request body, as a model's answer
// with degrade_on set, and as a heartbeat. Each is refused or failed over,
// and the sidecar keeps answering.
func TestNestedJSONCannotCrashTheSidecar(t *testing.T) {
	consul := consultest.Start(t)

	// Given a primary model that answers ten million '[' and a lite model
	// that answers properly
	deepAnswers := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bytes.Repeat([]byte("["), 10_000_000))
	}))
	t.Cleanup(deepAnswers.Close)
	lite := fakeModel(t, "lite", "Hello from the lite model.")

	// And a sidecar whose primary has degrade_on set
	control, sidecar := startModelGateway(t, "nested-e2e", consul.HTTPAddr, fmt.Sprintf(`model "gpt-4o" {
  provider   = "openai"
  base_url   = "%s/v1"
  api_key    = "sk-primary"
  fallback   = "gpt-4o-mini"
  degrade_on = ["empty", "invalid_json"]
}
model "gpt-4o-mini" {
  provider = "openai"
  base_url = "%s/v1"
  api_key  = "sk-lite"
}
`, deepAnswers.URL, lite.URL))
	post := func(path string, body []byte) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, control+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v (the sidecar exited: %v)\n%.4000s", path, err, processExited(sidecar.proc.Exited()), sidecar.logs.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// When an agent sends a body of ten million '[' (under the 10 MiB limit)
	resp, body := post("/llm/v1/chat/completions", bytes.Repeat([]byte("["), 10_000_000))
	// Then it gets a 400 in OpenAI's error shape that names the limit
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(body, `{"error":{"message":"the request body is nested deeper than 128 levels`) {
		t.Fatalf("deep request: %d %.300s", resp.StatusCode, body)
	}

	// When a request goes to the primary, which answers nested JSON
	resp, body = post("/llm/v1/chat/completions", []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	// Then the lite model answers it
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Sidecar-Degraded") != "true" ||
		!strings.Contains(body, "Hello from the lite model.") {
		t.Fatalf("answer after a deep primary answer: %d %v %.300s", resp.StatusCode, resp.Header, body)
	}

	// When a heartbeat nested too deep arrives
	resp, body = post("/v1/heartbeat", bytes.Repeat([]byte("["), 60_000))
	// Then it is refused
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "nested deeper than 128 levels") {
		t.Fatalf("deep heartbeat: %d %.300s", resp.StatusCode, body)
	}

	// And the sidecar is still serving
	hresp, err := http.Get(control + "/v1/health")
	if err != nil || hresp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/health after the nested bodies: %v %v (the sidecar exited: %v)", hresp, err, processExited(sidecar.proc.Exited()))
	}
	hresp.Body.Close()
}

func processExited(exited <-chan struct{}) bool {
	select {
	case <-exited:
		return true
	case <-time.After(500 * time.Millisecond):
		return false
	}
}
