package breaker

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
)

// engine is failsafe-go's circuit breaker. Reset (closing and clearing the
// counts) is exported by its implementation but not by its interface.
type engine interface {
	circuitbreaker.CircuitBreaker[struct{}]
	Reset()
}

// neverHalfOpen is the open delay given to the engine: the open period is
// this package's (it doubles on re-trips), so the engine must never leave
// the open state on its own.
const neverHalfOpen = 100 * 365 * 24 * time.Hour

// cause says why the engine is about to change state, so the listener can
// write the reason.
type cause int

const (
	causeResult cause = iota // a recorded success or failure
	causeTimer
	causeForce
	causeClose
	causeReset
)

// Breaker is a circuit breaker for one call target. It is safe for
// concurrent use.
type Breaker struct {
	name string
	cfg  policies.Breaker // with defaults filled in

	mu          sync.Mutex
	fs          engine // the state machine; only called with mu held
	state       State  // mirror of the engine's state, kept by onEngineChange
	gen         uint64 // bumped on every state change and on Close/Reset
	forced      bool   // opened by an operator: stays open until Close/Reset
	consecutive int    // failures in a row (current generation only)
	probes      int    // probes admitted in the current half-open period
	openFor     time.Duration
	openedAt    time.Time
	openUntil   time.Time
	trips       int
	lastFailure time.Time
	lastReason  string
	calls       uint64
	failures    uint64
	rejected    uint64
	cause       cause // why the next engine transition happens

	queue     []Change // changes not yet given to listeners
	draining  bool     // a goroutine is giving changes to listeners
	listeners []func(Change)
	detached  bool // dropped from its Set: takes no more listeners
}

// New returns a closed breaker. Zero fields of cfg take the defaults that
// policies documents (3 consecutive failures, open 30s doubling up to 10m,
// 1 probe, failures on 429 and 5xx; the rate rule counts at least 10 calls
// in 1m). A nil FailureStatuses takes the default; an empty one means only
// errors and slow calls are failures.
func New(name string, cfg policies.Breaker) *Breaker {
	cfg = withDefaults(cfg)
	b := &Breaker{name: name, cfg: cfg, openFor: cfg.OpenFor}
	bld := circuitbreaker.NewBuilder[struct{}]().
		WithDelay(neverHalfOpen).
		WithSuccessThreshold(uint(cfg.HalfOpenProbes)).
		OnStateChanged(b.onEngineChange)
	if cfg.FailureRate > 0 {
		bld = bld.WithFailureRateThreshold(float64(cfg.FailureRate)/100, uint(cfg.MinCalls), cfg.Window)
	} else {
		bld = bld.WithFailureThreshold(uint(cfg.ConsecutiveFailures))
	}
	b.fs = bld.Build().(engine)
	return b
}

// withDefaults fills the zero fields of cfg.
func withDefaults(cfg policies.Breaker) policies.Breaker {
	if cfg.ConsecutiveFailures <= 0 {
		cfg.ConsecutiveFailures = 3
	}
	cfg.FailureRate = min(max(cfg.FailureRate, 0), 100)
	if cfg.MinCalls <= 0 {
		cfg.MinCalls = 10
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	// The rate window is kept in ten buckets; below 10ms they would be empty.
	cfg.Window = max(cfg.Window, 10*time.Millisecond)
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 30 * time.Second
	}
	if cfg.MaxOpenFor <= 0 {
		cfg.MaxOpenFor = 10 * time.Minute
	}
	cfg.MaxOpenFor = max(cfg.MaxOpenFor, cfg.OpenFor)
	if cfg.HalfOpenProbes <= 0 {
		cfg.HalfOpenProbes = 1
	}
	if !slices.IsSorted(cfg.FailureStatuses) { // IsFailureStatus needs them sorted
		cfg.FailureStatuses = slices.Sorted(slices.Values(cfg.FailureStatuses))
	}
	if cfg.FailureStatuses == nil {
		cfg.FailureStatuses = []int{429}
		for c := 500; c <= 599; c++ {
			cfg.FailureStatuses = append(cfg.FailureStatuses, c)
		}
	}
	cfg.SlowCall = max(cfg.SlowCall, 0)
	return cfg
}

// Name returns the breaker's name, e.g. "researcher@10.0.0.5:8081".
func (b *Breaker) Name() string { return b.name }

// Config returns the breaker's settings, with defaults filled in. The
// FailureStatuses slice is shared and must not be changed.
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
	now := time.Now()
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
	failure, reason := p.b.Classify(status, err, time.Since(p.start))
	p.b.record(p.gen, failure, reason)
}

// DoneFailure finishes the call as a failure for the given reason, e.g. the
// sidecar's own "timeout".
func (p Permit) DoneFailure(reason string) {
	if p.b == nil {
		return
	}
	p.b.record(p.gen, true, reason)
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

func (b *Breaker) record(gen uint64, failure bool, reason string) {
	var now time.Time
	if failure {
		now = time.Now()
	}
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
	b.cause = causeResult
	if failure {
		b.consecutive++
		b.fs.RecordFailure()
		// The engine runs the rate rule when one is set; the consecutive
		// rule is then this package's.
		if b.state == Closed && b.consecutive >= b.cfg.ConsecutiveFailures {
			b.fs.Open()
		}
	} else {
		b.consecutive = 0
		b.fs.RecordSuccess()
	}
	b.unlock()
}

// advance moves an open breaker whose open period has passed to half-open.
// Requires mu.
func (b *Breaker) advance(now time.Time) {
	if b.state == Open && !b.forced && !now.Before(b.openUntil) {
		b.cause = causeTimer
		b.fs.HalfOpen()
	}
}

// onEngineChange runs inside every engine transition, which only happens
// while mu is held. It keeps the mirror state and queues the change for
// listeners.
func (b *Breaker) onEngineChange(ev circuitbreaker.StateChangedEvent) {
	from, to := fromEngine(ev.OldState), fromEngine(ev.NewState)
	now := time.Now()
	b.state = to
	b.gen++
	b.probes = 0
	ch := Change{Name: b.name, From: from, To: to, At: now}
	switch to {
	case Open:
		if !b.forced {
			if from == HalfOpen {
				b.openFor = min(2*b.openFor, b.cfg.MaxOpenFor)
			}
			b.trips++
			ch.OpenFor = b.openFor
		}
		b.openedAt, b.openUntil = now, now.Add(b.openFor)
	case Closed:
		b.openFor = b.cfg.OpenFor
		b.consecutive = 0
		b.openedAt, b.openUntil = time.Time{}, time.Time{}
	}
	ch.ConsecutiveFailures = b.consecutive
	ch.Reason = b.reason(from, to, ev.Metrics())
	b.queue = append(b.queue, ch)
}

// reason writes why the breaker moved from one state to another. Requires mu.
func (b *Breaker) reason(from, to State, m circuitbreaker.Metrics) string {
	switch b.cause {
	case causeForce:
		return "opened by an operator"
	case causeClose:
		return "closed by an operator"
	case causeReset:
		return "reset by an operator"
	case causeTimer:
		if b.cfg.HalfOpenProbes == 1 {
			return fmt.Sprintf("open for %s: letting a probe through", readable.Duration(b.openFor))
		}
		return fmt.Sprintf("open for %s: letting %d probes through", readable.Duration(b.openFor), b.cfg.HalfOpenProbes)
	}
	// A recorded result: a success may close a half-open breaker, or tip
	// the failure rate of a closed one.
	switch {
	case to == Closed && b.cfg.HalfOpenProbes == 1:
		return "the probe succeeded"
	case to == Closed:
		return fmt.Sprintf("all %d probes succeeded", b.cfg.HalfOpenProbes)
	case from == HalfOpen:
		return "probe failed: " + b.lastReason
	case b.consecutive >= b.cfg.ConsecutiveFailures:
		return fmt.Sprintf("%d consecutive failures (last: %s)", b.consecutive, b.lastReason)
	default:
		return fmt.Sprintf("%.0f%% of %d calls within %s failed (last: %s)",
			m.FailureRate()*100, m.Executions(), readable.Duration(b.cfg.Window), b.lastReason)
	}
}

func fromEngine(s circuitbreaker.State) State {
	switch s {
	case circuitbreaker.OpenState:
		return Open
	case circuitbreaker.HalfOpenState:
		return HalfOpen
	default:
		return Closed
	}
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
