package breaker

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
)

// Breaker is a circuit breaker for one call target. It is safe for
// concurrent use.
type Breaker struct {
	name string
	cfg  policies.Breaker // as given, held to the limits of settle
	now  func() time.Time

	mu          sync.Mutex
	state       State
	gen         uint64 // bumped on every state change and on Close/Reset
	forced      bool   // opened by an operator: stays open until Close/Reset
	consecutive int    // failures in a row (current generation only)
	window      window // calls and failures while closed, when FailureRate is set
	probes      int    // probes admitted in the current half-open period
	succeeded   int    // probes that succeeded in the current half-open period
	openFor     time.Duration
	openedAt    time.Time
	openUntil   time.Time
	heldUntil   time.Time // set by DoneLimited just before it opens the breaker
	held        string    // while open on a target's word: "rate limited until 12:00:20"
	afterHold   bool      // half-open at the end of such a hold: a failed probe does not double
	trips       int
	lastFailure time.Time
	lastReason  string
	calls       uint64
	failures    uint64
	rejected    uint64

	queue     []Change // changes not yet given to listeners
	draining  bool     // a goroutine is giving changes to listeners
	listeners []func(Change)
	detached  bool // dropped from its Set: takes no more listeners
}

// New returns a closed breaker with settings cfg, used as given: cfg is
// expected the way policies resolves a breaker block, every default filled
// in (policies.BreakerDefaults is a block that sets nothing). A zero field
// is not replaced by a default: a nil or empty FailureStatuses means only
// errors and slow calls are failures. New only holds cfg to the limits the
// state machine needs (see settle), which Load's validation ensures anyway.
func New(name string, cfg policies.Breaker) *Breaker {
	return newBreaker(name, settle(cfg), time.Now)
}

// NewWithClock is New with the clock now in place of time.Now: the breaker
// reads the time from it when it admits and finishes calls, to time calls
// (slow_call), to end open periods and to slide the failure-rate window.
// A nil now is time.Now.
func NewWithClock(name string, cfg policies.Breaker, now func() time.Time) *Breaker {
	return newBreaker(name, settle(cfg), orNow(now))
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// newBreaker returns a closed breaker with settings cfg, ready to use, and
// the clock now.
func newBreaker(name string, cfg policies.Breaker, now func() time.Time) *Breaker {
	return &Breaker{name: name, cfg: cfg, now: now, openFor: cfg.OpenFor, window: newWindow(cfg.Window, now())}
}

// minWindow is the shortest failure-rate window: ten buckets of 1ms.
const minWindow = windowBuckets * time.Millisecond

// settle holds cfg to the limits the state machine needs: at least one
// half-open probe (none would keep the breaker half-open for ever), a window
// of at least minWindow, a cap on the open period no shorter than the period
// itself, and sorted FailureStatuses (IsFailureStatus searches them). It
// fills in no default.
func settle(cfg policies.Breaker) policies.Breaker {
	cfg.HalfOpenProbes = max(cfg.HalfOpenProbes, 1)
	cfg.Window = max(cfg.Window, minWindow)
	cfg.MaxOpenFor = max(cfg.MaxOpenFor, cfg.OpenFor)
	if !slices.IsSorted(cfg.FailureStatuses) {
		cfg.FailureStatuses = slices.Sorted(slices.Values(cfg.FailureStatuses))
	}
	return cfg
}

// Name returns the breaker's name, e.g. "researcher@10.0.0.5:8081".
func (b *Breaker) Name() string { return b.name }

// Config returns the breaker's settings, as given to New (held to the
// limits of settle). The FailureStatuses slice is shared and must not be
// changed.
func (b *Breaker) Config() policies.Breaker { return b.cfg }

// Permit is a call admitted by Allow. It must be finished exactly once, with
// Done, DoneFailure or Cancel. The zero Permit (from a refused Allow) may be
// finished too; that does nothing.
type Permit struct {
	b     *Breaker
	gen   uint64
	start time.Time
}

// Started returns when the call was admitted.
func (p Permit) Started() time.Time { return p.start }

// Allow admits a call or not. While open it admits none; half-open it admits
// HalfOpenProbes probe calls in all (a cancelled probe gives its place back).
func (b *Breaker) Allow() (Permit, bool) {
	now := b.now()
	b.mu.Lock()
	if b.state == Closed {
		gen := b.gen
		b.mu.Unlock()
		return Permit{b: b, gen: gen, start: now}, true
	}
	b.advance(now)
	ok := b.state == Closed
	if b.state == HalfOpen && b.probes < b.cfg.HalfOpenProbes {
		b.probes++
		ok = true
	}
	if !ok {
		b.rejected++
	}
	gen := b.gen
	b.unlock()
	if !ok {
		return Permit{}, false
	}
	return Permit{b: b, gen: gen, start: now}, true
}

// Done finishes the call with its outcome: Classify decides, with the time
// since Allow, whether it failed. A call admitted before the breaker changed
// state is counted in Snapshot's totals but does not move the new state.
func (p Permit) Done(status int, err error) {
	if p.b == nil {
		return
	}
	now := p.b.now()
	failure, reason := p.b.Classify(status, err, now.Sub(p.start))
	p.b.record(p.gen, now, failure, reason)
}

// DoneFailure finishes the call as a failure for the given reason, e.g. the
// sidecar's own "timeout".
func (p Permit) DoneFailure(reason string) {
	if p.b == nil {
		return
	}
	p.b.record(p.gen, p.b.now(), true, reason)
}

// DoneSuccess finishes the call as a success whatever its status and
// duration, for a caller that judged the answer itself: a model refusing a
// prompt too long for its context window (the caller's fault, not the
// model's), a stream whose first event came within slow_call.
func (p Permit) DoneSuccess() {
	if p.b == nil {
		return
	}
	p.b.record(p.gen, p.b.now(), false, "")
}

// Cancel finishes a call that never reached the target: nothing is
// recorded, and a half-open probe place is given back.
func (p Permit) Cancel() {
	b := p.b
	if b == nil {
		return
	}
	b.mu.Lock()
	if p.gen == b.gen && b.state == HalfOpen && b.probes > 0 {
		b.probes--
	}
	b.mu.Unlock()
}

// record counts the result of a call of generation gen that ended at now.
func (b *Breaker) record(gen uint64, now time.Time, failure bool, reason string) {
	b.mu.Lock()
	b.calls++
	if failure {
		b.failures++
		b.lastFailure, b.lastReason = now, reason
	}
	if gen != b.gen {
		// Admitted before the state changed: it says nothing about the
		// target as the new state sees it.
		b.mu.Unlock()
		return
	}
	if failure {
		b.consecutive++
	} else {
		b.consecutive = 0
	}
	switch b.state {
	case Closed:
		b.recordClosed(now, failure)
	case HalfOpen:
		b.recordProbe(now, failure)
	}
	b.unlock()
}

// recordClosed opens a closed breaker when a rule says so: the consecutive
// failures, or the failure rate over the window (checked after a success
// too, since a success may bring the window to MinCalls). Requires mu.
func (b *Breaker) recordClosed(now time.Time, failure bool) {
	if failure && b.consecutive >= b.cfg.ConsecutiveFailures {
		b.setState(Open, now, fmt.Sprintf("%d consecutive failures (last: %s)", b.consecutive, b.lastReason))
		return
	}
	if b.cfg.FailureRate <= 0 {
		return
	}
	b.window.add(now, failure)
	calls, percent := b.window.failurePercent()
	if calls >= uint64(max(b.cfg.MinCalls, 0)) && percent >= uint64(b.cfg.FailureRate) {
		b.setState(Open, now, fmt.Sprintf("%d%% of %d calls within %s failed (last: %s)",
			percent, calls, readable.Duration(b.cfg.Window), b.lastReason))
	}
}

// recordProbe closes a half-open breaker when all its probes succeeded, and
// opens it again when one failed. Requires mu.
func (b *Breaker) recordProbe(now time.Time, failure bool) {
	if failure {
		b.setState(Open, now, "probe failed: "+b.lastReason)
		return
	}
	b.succeeded++
	if b.succeeded < b.cfg.HalfOpenProbes {
		return
	}
	reason := "the probe succeeded"
	if b.cfg.HalfOpenProbes > 1 {
		reason = fmt.Sprintf("all %d probes succeeded", b.cfg.HalfOpenProbes)
	}
	b.setState(Closed, now, reason)
}

// advance moves an open breaker whose open period has passed to half-open.
// Requires mu.
func (b *Breaker) advance(now time.Time) {
	if b.state != Open || b.forced || now.Before(b.openUntil) {
		return
	}
	after := "open for " + readable.Duration(b.openFor).String()
	if b.held != "" {
		after = b.held
	}
	reason := after + ": letting a probe through"
	if b.cfg.HalfOpenProbes > 1 {
		reason = fmt.Sprintf("%s: letting %d probes through", after, b.cfg.HalfOpenProbes)
	}
	b.setState(HalfOpen, now, reason)
}

// setState moves the breaker to state to, for reason, and queues the change
// for the listeners. It does nothing when the breaker is in that state
// already. Requires mu.
func (b *Breaker) setState(to State, now time.Time, reason string) {
	from := b.state
	if from == to {
		return
	}
	b.state = to
	b.gen++
	b.probes, b.succeeded = 0, 0
	ch := Change{Name: b.name, From: from, To: to, At: now, Reason: reason}
	heldUntil, afterHold := b.heldUntil, b.afterHold
	b.heldUntil, b.afterHold = time.Time{}, to == HalfOpen && b.held != ""
	if to != Open || b.forced {
		b.held = ""
	}
	switch to {
	case Open:
		if !b.forced {
			// A hold is the target's word, not a trip of ours: neither it
			// nor a probe failing right after it doubles the period.
			if from == HalfOpen && heldUntil.IsZero() && !afterHold {
				b.openFor = min(2*b.openFor, b.cfg.MaxOpenFor)
			}
			b.trips++
			ch.OpenFor = b.openFor
		}
		b.openedAt, b.openUntil = now, now.Add(b.openFor)
		if !b.forced && !heldUntil.IsZero() {
			// The target named the time: that, not open_for, and no doubling.
			b.openUntil = heldUntil
			ch.OpenFor = heldUntil.Sub(now)
		}
	case Closed:
		b.openFor = b.cfg.OpenFor
		b.consecutive = 0
		b.window.reset()
		b.openedAt, b.openUntil = time.Time{}, time.Time{}
	}
	ch.ConsecutiveFailures = b.consecutive
	b.queue = append(b.queue, ch)
}

// unlock releases mu and then gives queued changes to the listeners. One
// goroutine at a time does that, so listeners see changes in order; a
// listener may call back into the breaker (its own changes are queued and
// given next).
func (b *Breaker) unlock() {
	deliver := !b.draining && len(b.queue) > 0
	if deliver {
		b.draining = true
	}
	b.mu.Unlock()
	if deliver {
		b.drain()
	}
}

func (b *Breaker) drain() {
	done := false
	defer func() {
		if !done { // a listener panicked: let the next change be delivered
			b.mu.Lock()
			b.draining = false
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		changes, listeners := b.queue, b.listeners
		b.queue = nil
		if len(changes) == 0 {
			b.draining = false
			b.mu.Unlock()
			done = true
			return
		}
		b.mu.Unlock()
		for _, ch := range changes {
			for _, fn := range listeners {
				fn(ch)
			}
		}
	}
}

// OnChange adds a listener for state changes. Listeners are called in the
// order of the changes, without any lock held, possibly from another
// goroutine than the one whose call caused the change.
func (b *Breaker) OnChange(fn func(Change)) {
	b.mu.Lock()
	if !b.detached {
		b.listeners = append(b.listeners[:len(b.listeners):len(b.listeners)], fn)
	}
	b.mu.Unlock()
}
