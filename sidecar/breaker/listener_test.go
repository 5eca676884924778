package breaker

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// within runs fn and fails the test if it does not return in time (a
// deadlock).
func within(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal("did not finish: deadlock?")
	}
}

func TestListenersSeeEveryChangeInOrder(t *testing.T) {
	// Given a listener that reads the breaker back
	b, clk := clocked("model:gpt-4o", testConfig(nil))
	var rec recorder
	var snaps []Snapshot
	b.OnChange(func(ch Change) {
		snaps = append(snaps, b.Snapshot())
		_ = b.State()
		_ = b.RemainingOpen()
		rec.listen(ch)
	})

	within(t, 5*time.Second, func() {
		// When it trips, fails a probe, then closes on a successful probe
		calls(t, b, 3, fail)
		waitOut(t, b, clk)
		calls(t, b, 1, fail)
		waitOut(t, b, clk)
		calls(t, b, 1, ok200)
	})

	// Then the listener saw every change, in order
	want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
	if got := rec.transitions(); !slices.Equal(got, want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
	chs := rec.all()
	if c := chs[0]; c.Name != "model:gpt-4o" || c.Reason != "3 consecutive failures (last: 503)" || c.OpenFor != 50*ms || c.ConsecutiveFailures != 3 || !c.At.Equal(t0) {
		t.Errorf("trip = %+v", c)
	}
	if c := chs[1]; c.Reason != "open for 50ms: letting a probe through" || !c.At.Equal(t0.Add(50*ms)) {
		t.Errorf("half-open = %+v", c)
	}
	if c := chs[2]; c.Reason != "probe failed: 503" || c.OpenFor != 100*ms || c.ConsecutiveFailures != 4 {
		t.Errorf("re-trip = %+v", c)
	}
	if c := chs[4]; c.ConsecutiveFailures != 0 || c.Reason != "the probe succeeded" {
		t.Errorf("close = %+v", c)
	}
	if len(snaps) != 5 || snaps[0].State != "open" {
		t.Errorf("snapshots taken by the listener = %+v", snaps)
	}
}

func TestListenerMayChangeTheBreaker(t *testing.T) {
	// Given a listener that closes the breaker whenever it opens
	b := New("t", testConfig(nil))
	var rec recorder
	b.OnChange(func(ch Change) {
		rec.listen(ch)
		if ch.To == Open {
			b.Close()
		}
	})

	// When it trips
	within(t, 5*time.Second, func() { calls(t, b, 3, fail) })

	// Then both changes are delivered, in order, and it is closed
	want := []string{"closed>open", "open>closed"}
	if got := rec.transitions(); !slices.Equal(got, want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
	if got := rec.all()[1].Reason; got != "closed by an operator" {
		t.Errorf("reason = %q", got)
	}
	if got := b.State(); got != Closed {
		t.Fatalf("state = %s", got)
	}
}

func TestManualChangesReachListeners(t *testing.T) {
	b := New("t", testConfig(nil))
	var rec recorder
	b.OnChange(rec.listen)

	b.ForceOpen()
	b.Reset()
	b.Close() // already closed: no change

	want := []string{"closed>open", "open>closed"}
	if got := rec.transitions(); !slices.Equal(got, want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
	chs := rec.all()
	if chs[0].Reason != "opened by an operator" || chs[0].OpenFor != 0 || chs[1].Reason != "reset by an operator" {
		t.Errorf("changes = %+v", chs)
	}
}

func TestConcurrentUse(t *testing.T) {
	// Given a breaker that cycles quickly, and a listener checking that
	// each change starts where the previous one ended
	b := New("t", testConfig(func(c *policies.Breaker) {
		c.OpenFor, c.MaxOpenFor, c.HalfOpenProbes = ms, 4*ms, 2
	}))
	var (
		mu      sync.Mutex
		last    = Closed
		broken  atomic.Bool
		changes atomic.Int64
	)
	b.OnChange(func(ch Change) {
		mu.Lock()
		if ch.From != last {
			broken.Store(true)
		}
		last = ch.To
		mu.Unlock()
		changes.Add(1)
		_ = b.Snapshot()
	})

	// When many goroutines call through it at once
	var done, refused atomic.Uint64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 2000 {
				p, ok := b.Allow()
				if !ok {
					refused.Add(1)
					continue
				}
				switch n := r.IntN(10); {
				case n < 4:
					p.Done(503, nil)
					done.Add(1)
				case n == 4:
					p.Cancel()
				case n == 5:
					p.DoneFailure("timeout")
					done.Add(1)
				default:
					p.Done(200, nil)
					done.Add(1)
				}
				if g == 0 && i%500 == 0 {
					b.ForceOpen()
					b.Close()
				}
			}
		})
	}
	within(t, 30*time.Second, wg.Wait)

	// Then the counts add up, and the listener saw a consistent history
	s := b.Snapshot()
	if s.Calls != done.Load() || s.Rejected != refused.Load() {
		t.Errorf("calls/rejected = %d/%d, want %d/%d", s.Calls, s.Rejected, done.Load(), refused.Load())
	}
	if broken.Load() {
		t.Error("a change did not start where the previous one ended")
	}
	if changes.Load() == 0 {
		t.Error("no state changes under load")
	}
}
