package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// limited answers status with the headers given and body.
func limited(code int, body string, hdr ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// clockedGateway is a gateway whose breakers and own times read a test
// clock, as the sidecar wires them.
func clockedGateway(t *testing.T, primary, lite *scriptedModel, openFor time.Duration) (string, *Gateway, *testutil.Clock, *breaker.Set) {
	t.Helper()
	clock := testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	set := breaker.NewSetWithClock(clock.Now)
	g := New(chainConfig(primary, lite, openFor), Options{Breakers: set, Now: clock.Now})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL + "/llm", g, clock, set
}

func TestRetryAfterHoldsTheModelOutAndTheFallbackAnswers(t *testing.T) {
	// Given a primary answering 429 with Retry-After: 20, and open_for 1s
	primary := newScriptedModel(t, limited(429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`,
		"Retry-After", "20"))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, g, clock, set := clockedGateway(t, primary, lite, time.Second)
	var (
		mu      sync.Mutex
		changes []breaker.Change
	)
	set.OnChange(func(ch breaker.Change) { mu.Lock(); changes = append(changes, ch); mu.Unlock() })

	// When one request is sent
	resp, body := post(t, base+"/v1/chat/completions", chatBody)

	// Then the lite model answers it, and the primary's breaker opened at
	// once on that single 429, saying until when
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("first request: %s %s", resp.Status, body)
	}
	b, _ := set.Lookup(BreakerName("gpt-4o"))
	s := b.Snapshot()
	if s.State != "open" || s.Held != "rate limited until 03:04:25" || s.HalfOpenInText != "20s" {
		t.Fatalf("breaker %+v", s)
	}
	mu.Lock()
	got := append([]breaker.Change(nil), changes...)
	mu.Unlock()
	if len(got) != 1 || got[0].Reason != "rate limited until 03:04:25 (429)" {
		t.Fatalf("changes %+v", got)
	}
	if ms := g.Models(); ms[0].LastFailure != "rate limited until 03:04:25 (429)" {
		t.Fatalf("model status %+v", ms[0])
	}

	// When requests come for the next 20s of clock time
	primary.set(chatOK("from primary"))
	for _, at := range []time.Duration{time.Second, 10 * time.Second, 20*time.Second - time.Millisecond} {
		clock.Set(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Add(at))
		resp, _ := post(t, base+"/v1/chat/completions", chatBody)
		// Then the lite model answers, and the reason says rate limited
		if resp.Header.Get(HeaderModel) != "gpt-4o-mini" || resp.Header.Get(HeaderAttempts) != "1" {
			t.Fatalf("at +%s: %v", at, resp.Header)
		}
	}
	if n := primary.calls.Load(); n != 1 {
		t.Fatalf("the primary got %d calls during the hold, want 1 (the 429)", n)
	}
	if d := g.Degraded(); len(d) != 1 || !strings.Contains(d[0].Reason, "gpt-4o: rate limited until 03:04:25 (half-open in ") {
		t.Fatalf("degraded %+v", d)
	}

	// When the 20s are over, a probe reaches the primary
	clock.Advance(time.Millisecond)
	primary.set(status(500))
	post(t, base+"/v1/chat/completions", chatBody)
	if n := primary.calls.Load(); n != 2 {
		t.Fatalf("the primary got %d calls, want 2 (one probe)", n)
	}
	// And the probe failing opens it for open_for, not doubled by the hold
	if got := b.RemainingOpen(); got != time.Second {
		t.Fatalf("open for %s after the failed probe, want 1s", got)
	}
	if s := b.Snapshot(); s.Held != "" {
		t.Fatalf("still held: %+v", s)
	}
}

func TestA429WithoutHeadersIsAnOrdinaryFailure(t *testing.T) {
	primary := newScriptedModel(t, status(429))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, _, _, set := clockedGateway(t, primary, lite, time.Second)

	post(t, base+"/v1/chat/completions", chatBody)

	b, _ := set.Lookup(BreakerName("gpt-4o"))
	if s := b.Snapshot(); s.State != "closed" || s.ConsecutiveFailures != 1 || s.LastFailureReason != "429" {
		t.Fatalf("breaker %+v", s)
	}
}

func TestInsufficientQuotaIsToldApart(t *testing.T) {
	// Given a primary whose account is out of quota (OpenAI's 429)
	primary := newScriptedModel(t, limited(429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, _, _, set := clockedGateway(t, primary, lite, time.Second)

	// When one request is sent
	resp, _ := post(t, base+"/v1/chat/completions", chatBody)

	// Then the fallback answers and the breaker opened at once, for
	// open_for, saying quota exhausted
	if resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("headers %v", resp.Header)
	}
	b, _ := set.Lookup(BreakerName("gpt-4o"))
	if s := b.Snapshot(); s.State != "open" || s.LastFailureReason != "quota exhausted (429)" || s.HalfOpenInText != "1s" {
		t.Fatalf("breaker %+v", s)
	}
}

func TestInsufficientQuotaWithRetryAfter(t *testing.T) {
	primary := newScriptedModel(t, limited(429, `{"error":{"type":"insufficient_quota","code":"insufficient_quota"}}`, "Retry-After", "120"))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, _, _, set := clockedGateway(t, primary, lite, time.Second)

	post(t, base+"/v1/chat/completions", chatBody)

	b, _ := set.Lookup(BreakerName("gpt-4o"))
	if s := b.Snapshot(); s.Held != "quota exhausted until 03:06:05" || s.HalfOpenInText != "2m0s" {
		t.Fatalf("breaker %+v", s)
	}
}

func TestOverloaded529WithAnthropicResetHolds(t *testing.T) {
	primary := newScriptedModel(t, limited(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		"Anthropic-Ratelimit-Requests-Reset", "2030-01-02T03:04:35Z", "Anthropic-Ratelimit-Requests-Remaining", "0"))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, _, _, set := clockedGateway(t, primary, lite, time.Second)

	post(t, base+"/v1/chat/completions", chatBody)

	b, _ := set.Lookup(BreakerName("gpt-4o"))
	if s := b.Snapshot(); s.Held != "rate limited until 03:04:35" || s.LastFailureReason != "rate limited until 03:04:35 (529)" {
		t.Fatalf("breaker %+v", s)
	}
}

func TestOutOfQuota(t *testing.T) {
	for body, want := range map[string]bool{
		`{"error":{"code":"insufficient_quota"}}`:                                 true,
		`{"error":{"type":"insufficient_quota","code":null}}`:                     true,
		`{"error":{"code":"rate_limit_exceeded","message":"insufficient_quota"}}`: false,
		`{"error":{"code":"insufficient_quota"`:                                   false,
		`insufficient_quota`:                                                      false,
		``:                                                                        false,
	} {
		if got := outOfQuota([]byte(body)); got != want {
			t.Errorf("outOfQuota(%s) = %v, want %v", body, got, want)
		}
	}
}
