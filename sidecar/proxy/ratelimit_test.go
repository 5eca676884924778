package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// limitedUpstream answers 429 with Retry-After while limited is set, 200
// otherwise.
type limitedUpstream struct {
	*httptest.Server
	calls   atomic.Int32
	limited atomic.Bool
}

func newLimitedUpstream(t *testing.T, retryAfter string) *limitedUpstream {
	u := &limitedUpstream{}
	u.limited.Store(true)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		if u.limited.Load() {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(u.Close)
	return u
}

func TestRetryAfterHoldsAnInstanceOutWhileTheFallbackServes(t *testing.T) {
	// Given a primary answering 429 with Retry-After: 20, open_for 1s
	primary := newLimitedUpstream(t, "20")
	backup := sidecartest.NewUpstream(t, "backup", http.StatusOK)
	p, e := callProxy(t, map[string]policies.Upstream{
		"primary": {URL: primary.URL, Fallback: []string{"backup"}},
		"backup":  {URL: backup.URL},
	}, &sidecartest.Discovery{}, time.Second)
	name := "primary@" + primary.Listener.Addr().String()

	// When one call is made, the fallback answers it
	e.GET("/call/primary/x").Expect().Status(http.StatusOK).Header(HeaderUpstream).IsEqual("backup")

	// Then that single 429 opened the primary's breaker until +20s
	var held, halfOpenIn string
	for _, s := range p.opts.Breakers.Snapshots() {
		if s.Name == name {
			held, halfOpenIn = s.Held, s.HalfOpenInText
		}
	}
	if held != "rate limited until 03:04:25" || halfOpenIn != "20s" {
		t.Fatalf("breaker held %q, half-open in %q", held, halfOpenIn)
	}

	// When calls come for the next 20s of clock time, the primary gets none
	primary.limited.Store(false)
	for _, at := range []time.Duration{time.Second, 19*time.Second + 999*time.Millisecond} {
		p.clock.Set(clockStart.Add(at))
		e.GET("/call/primary/x").Expect().Status(http.StatusOK).Header(HeaderUpstream).IsEqual("backup")
	}
	if n := primary.calls.Load(); n != 1 {
		t.Fatalf("the primary got %d calls during the hold, want 1", n)
	}

	// When the 20s are over, a probe reaches it and closes the breaker
	p.clock.Set(clockStart.Add(20 * time.Second))
	e.GET("/call/primary/x").Expect().Status(http.StatusOK).Header(HeaderUpstream).IsEqual("primary")
	if state, trips := p.breakerState(name); state != "closed" || trips != 1 {
		t.Fatalf("breaker %s after %d trips, want closed after 1", state, trips)
	}
}

func TestHeldEverywhereAnswers503WithTheHoldAsRetryAfter(t *testing.T) {
	// Given the only upstream answering 429 with Retry-After: 20, open_for 1s
	up := newLimitedUpstream(t, "20")
	_, e := callProxy(t, map[string]policies.Upstream{"up": {URL: up.URL}}, &sidecartest.Discovery{}, time.Second)

	// When a call is answered with the upstream's own 429
	e.GET("/call/up/x").Expect().Status(http.StatusTooManyRequests).Header("Retry-After").IsEqual("20")

	// Then the next gets the sidecar's 503 with Retry-After the hold's 20s,
	// not open_for's 1s
	r := e.GET("/call/up/x").Expect().Status(http.StatusServiceUnavailable)
	r.Header("Retry-After").IsEqual("20")
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("the held upstream got %d calls, want 1", n)
	}
}
