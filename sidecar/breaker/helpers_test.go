package breaker

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

const ms = time.Millisecond

// testConfig returns the default settings with short open periods, changed
// by mod.
func testConfig(mod func(*policies.Breaker)) policies.Breaker {
	c := policies.BreakerDefaults()
	c.Name, c.OpenFor, c.MaxOpenFor = "test", 50*ms, 400*ms
	if mod != nil {
		mod(&c)
	}
	return c
}

var errRefused = errors.New("dial tcp 10.0.0.5:8081: connect: connection refused")

// outcome is the result of one call.
type outcome struct {
	status int
	err    error
}

var (
	ok200  = outcome{status: 200}
	fail   = outcome{status: 503}
	failed = outcome{err: errRefused}
)

// call makes one call through b and reports whether it was admitted.
func call(b *Breaker, o outcome) bool {
	p, ok := b.Allow()
	if !ok {
		return false
	}
	p.Done(o.status, o.err)
	return true
}

// calls makes n calls with the same outcome.
func calls(t *testing.T, b *Breaker, n int, o outcome) {
	t.Helper()
	for i := range n {
		if !call(b, o) {
			t.Fatalf("call %d of %d was not admitted (state %s)", i+1, n, b.State())
		}
	}
}

// t0 is when every test clock starts.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// clock is a test clock: time moves only when the test moves it.
type clock = testutil.Clock

func newClock() *clock { return testutil.NewClock(t0) }

// clocked returns a breaker with settings cfg that reads the time from a
// test clock.
func clocked(name string, cfg policies.Breaker) (*Breaker, *clock) {
	c := newClock()
	return NewWithClock(name, cfg, c.Now), c
}

// waitOut moves the clock to the end of b's open period and checks that b
// is half-open then, not a moment before.
func waitOut(t *testing.T, b *Breaker, c *clock) {
	t.Helper()
	left := b.RemainingOpen()
	if left <= 0 {
		t.Fatalf("waitOut: state %s, %s left open", b.State(), left)
	}
	c.Advance(left - 1)
	if got := b.State(); got != Open {
		t.Fatalf("1ns before the end of the open period: state %s, want open", got)
	}
	c.Advance(1)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("at the end of the open period: state %s, want half-open", got)
	}
}

// trip opens a closed breaker with consecutive failures.
func trip(t *testing.T, b *Breaker) {
	t.Helper()
	calls(t, b, b.Config().ConsecutiveFailures, fail)
	if got := b.State(); got != Open {
		t.Fatalf("after %d failures: state %s, want open", b.Config().ConsecutiveFailures, got)
	}
}

// assertRemaining checks that RemainingOpen is want.
func assertRemaining(t *testing.T, b *Breaker, want time.Duration) {
	t.Helper()
	if got := b.RemainingOpen(); got != want {
		t.Fatalf("RemainingOpen = %s, want %s", got, want)
	}
}

// recorder keeps the changes a listener received.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) listen(ch Change) {
	r.mu.Lock()
	r.changes = append(r.changes, ch)
	r.mu.Unlock()
}

func (r *recorder) transitions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ch := range r.changes {
		out = append(out, ch.From.String()+">"+ch.To.String())
	}
	return out
}

func (r *recorder) all() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.changes...)
}
