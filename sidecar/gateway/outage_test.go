package gateway

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// Given a chain gpt-4o → gpt-4o-mini → claude-haiku and OpenAI down (both
// failing), when OpenAI recovers, then the probes close both breakers and
// gpt-4o answers again.
func TestProviderOutageAndRecovery(t *testing.T) {
	var f crossFakes
	var gptURL, claudeURL, bigURL, miniURL string
	f.gpt, gptURL = fakeServer(t, "gpt-4o", "From GPT.")
	f.claude, claudeURL = fakeServer(t, "claude-haiku", "From Claude.")
	f.claudeBig, bigURL = fakeServer(t, "claude-sonnet", "From the big Claude.")
	f.gptMini, miniURL = fakeServer(t, "gpt-4o-mini", "From the mini GPT.")
	cfg := crossConfig(gptURL, claudeURL, bigURL, miniURL)
	cfg.Breakers["default"] = sidecartest.Breaker(200 * time.Millisecond)
	gpt, mini := cfg.Models["gpt-4o"], cfg.Models["gpt-4o-mini"]
	gpt.Fallback, mini.Fallback = "gpt-4o-mini", "claude-haiku"
	cfg.Models["gpt-4o"], cfg.Models["gpt-4o-mini"] = gpt, mini
	base, _ := gw(t, cfg)

	f.gpt.Set(fakellm.Faults{FailNext: 1 << 30, FailStatus: 503})
	f.gptMini.Set(fakellm.Faults{FailNext: 1 << 30, FailStatus: 503})
	ask := func() string {
		resp, body := post(t, base+"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 {
			t.Errorf("%s %s", resp.Status, body)
		}
		return resp.Header.Get(HeaderModel)
	}
	// Four agents at once, as a fleet's sidecar sees them.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// for a second, every answer comes from claude-haiku
			testutil.Poll(time.Second, func() bool {
				if m := ask(); m != "claude-haiku" {
					t.Errorf("during the outage: answered by %s", m)
					return true
				}
				return false
			})
		}()
	}
	wg.Wait()
	f.gpt.Heal()
	f.gptMini.Heal()
	var last []string
	testutil.EventuallySeen(t, "gpt-4o to answer five times in a row", 5*time.Second, func() (bool, string) {
		last = append(last, ask())
		return len(last) >= 5 && strings.Join(last[len(last)-5:], ",") == "gpt-4o,gpt-4o,gpt-4o,gpt-4o,gpt-4o",
			strings.Join(last[max(0, len(last)-10):], ",")
	})
}
