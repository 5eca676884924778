package breaker

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

const ms = time.Millisecond

// testConfig returns settings with short open periods, changed by mod.
func testConfig(mod func(*policies.Breaker)) policies.Breaker {
	c := policies.Breaker{
		Name:                "test",
		ConsecutiveFailures: 3,
		OpenFor:             50 * ms,
		MaxOpenFor:          400 * ms,
		HalfOpenProbes:      1,
	}
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

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(ms)
	}
}

func waitState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	waitFor(t, "state "+want.String(), func() bool { return b.State() == want })
}

// trip opens a closed breaker with consecutive failures.
func trip(t *testing.T, b *Breaker) {
	t.Helper()
	calls(t, b, b.Config().ConsecutiveFailures, fail)
	if got := b.State(); got != Open {
		t.Fatalf("after %d failures: state %s, want open", b.Config().ConsecutiveFailures, got)
	}
}

// assertRemaining checks that RemainingOpen is want, less a little time
// already spent.
func assertRemaining(t *testing.T, b *Breaker, want time.Duration) {
	t.Helper()
	const tolerance = 25 * ms
	if got := b.RemainingOpen(); got > want || got < want-tolerance {
		t.Fatalf("RemainingOpen = %s, want %s (within %s below)", got, want, tolerance)
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
