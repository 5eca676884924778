package gateway

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// slowChat answers a chat completion after a pause, or when release is
// closed.
func slowChat(content string, release <-chan struct{}) func(w http.ResponseWriter, r *http.Request) {
	ok := chatOK(content)
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		ok(w, r)
	}
}

// Given gpt-4o with max_concurrent = 1 and a short queue_timeout, busy with
// one request: a second request waits its queue_timeout, then goes to the
// fallback, and the degradation says why. Once the first is done, the
// primary serves again.
func TestMaxConcurrentSendsTheOverflowDownTheChain(t *testing.T) {
	release := make(chan struct{})
	primary := newScriptedModel(t, slowChat("from primary", release))
	lite := newScriptedModel(t, chatOK("from lite"))
	cfg := chainConfig(primary, lite, time.Minute)
	m := cfg.Models["gpt-4o"]
	m.MaxConcurrent, m.QueueTimeout = 1, 100*time.Millisecond
	cfg.Models["gpt-4o"] = m
	base, g := gw(t, cfg)

	var wg sync.WaitGroup
	wg.Add(1)
	var firstBody string
	go func() {
		defer wg.Done()
		_, firstBody = post(t, base+"/v1/chat/completions", chatBody)
	}()
	testutil.Eventually(t, "the first call at the primary", 5*time.Second, func() bool { return primary.calls.Load() > 0 })
	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 || !strings.Contains(body, "from lite") || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("the overflow: %s %s %s", resp.Status, resp.Header.Get(HeaderModel), body)
	}
	d := g.Degraded()
	if len(d) != 1 || !strings.Contains(d[0].Reason, "1 requests in flight (max_concurrent), none finished within 100ms (queue_timeout)") {
		t.Fatalf("degradation: %+v", d)
	}
	close(release)
	wg.Wait()
	if !strings.Contains(firstBody, "from primary") {
		t.Fatalf("the first request: %s", firstBody)
	}
	if resp, body := post(t, base+"/v1/chat/completions", chatBody); !strings.Contains(body, "from primary") {
		t.Fatalf("after the slot is free: %s %s", resp.Status, body)
	}
	if n := primary.calls.Load(); n != 2 {
		t.Fatalf("the primary got %d calls, want 2 (never more than one at a time)", n)
	}
}

// With rpm = 1 the first request goes to the model; the second, within the
// same minute, does not get a turn within queue_timeout and goes to the
// fallback at once (the limiter knows the wait is too long).
func TestRPMSendsTheOverflowDownTheChain(t *testing.T) {
	primary := newScriptedModel(t, chatOK("from primary"))
	lite := newScriptedModel(t, chatOK("from lite"))
	cfg := chainConfig(primary, lite, time.Minute)
	m := cfg.Models["gpt-4o"]
	m.RPM, m.QueueTimeout = 1, 2*time.Second
	cfg.Models["gpt-4o"] = m
	base, _ := gw(t, cfg)

	if _, body := post(t, base+"/v1/chat/completions", chatBody); !strings.Contains(body, "from primary") {
		t.Fatalf("first: %s", body)
	}
	start := time.Now()
	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if !strings.Contains(body, "from lite") {
		t.Fatalf("second: %s %s", resp.Status, body)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the second request waited %s for a turn that could not come within queue_timeout", waited)
	}
	if n := primary.calls.Load(); n != 1 {
		t.Fatalf("the primary got %d calls within a minute, rpm is 1", n)
	}
}

// An embeddings request falls back only to a model of the same embedding
// space: by default, the same upstream name; with embedding_space, any
// model that declares the same.
func TestEmbeddingsNeverMixVectorSpaces(t *testing.T) {
	embed := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"` + modelOf(r) + `"}`))
	}
	primary := newScriptedModel(t, status(500))
	lite := newScriptedModel(t, embed)
	cfg := chainConfig(primary, lite, time.Minute)
	base, _ := gw(t, cfg)
	const req = `{"model":"gpt-4o","input":"hello"}`

	resp, body := post(t, base+"/v1/embeddings", req)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body,
		"gpt-4o-mini: its embeddings are not interchangeable with gpt-4o's (embedding space openai/gpt-4o-mini, not "+
			"openai/gpt-4o-2024-08-06); give both the same embedding_space if they are") {
		t.Fatalf("different spaces: %s %s", resp.Status, body)
	}
	if n := lite.calls.Load(); n != 0 {
		t.Fatalf("the fallback of another vector space got %d calls", n)
	}

	// Declared interchangeable (e.g. the same model served twice).
	for _, label := range []string{"gpt-4o", "gpt-4o-mini"} {
		m := cfg.Models[label]
		m.EmbeddingSpace = "minilm-l6"
		cfg.Models[label] = m
	}
	g2base, _ := gw(t, cfg)
	resp, body = post(t, g2base+"/v1/embeddings", req)
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("same space: %s %s", resp.Status, body)
	}
}

// A model whose queue_timeout is left at 0 (its default applies) keeps one
// queue across requests: the limit counts every request in flight.
func TestQueueIsKeptWhenTheTimeoutIsTheDefault(t *testing.T) {
	g := New(&policies.Config{}, Options{})
	m := &policies.Model{Label: "gpt-4o", MaxConcurrent: 1}
	if a, b := g.queueOf(m), g.queueOf(m); a != b {
		t.Fatal("a new queue for each request: max_concurrent would never be reached")
	}
}
