package breaker

import (
	"time"

	"github.com/agent-sidecar/sidecar/internal/readable"
)

// ForceOpen opens the breaker and holds it open until Close or Reset: no
// call is admitted meanwhile, whatever the open period.
func (b *Breaker) ForceOpen() {
	now := b.now()
	b.mu.Lock()
	b.forced = true
	b.setState(Open, now, "opened by an operator")
	b.unlock()
}

// Close closes the breaker and forgets the failures counted so far. The open
// period goes back to OpenFor. Results of calls admitted before Close do not
// count.
func (b *Breaker) Close() {
	now := b.now()
	b.mu.Lock()
	b.closeLocked(now, "closed by an operator")
	b.unlock()
}

// Reset closes the breaker like Close, and also forgets the trip count and
// the last failure. The totals of calls, failures and rejections are kept.
func (b *Breaker) Reset() {
	now := b.now()
	b.mu.Lock()
	b.closeLocked(now, "reset by an operator")
	b.trips = 0
	b.lastFailure, b.lastReason = time.Time{}, ""
	b.unlock()
}

// closeLocked closes the breaker (a change for the listeners when it was
// not closed) and clears its counts. Requires mu.
func (b *Breaker) closeLocked(now time.Time, reason string) {
	b.forced = false
	b.setState(Closed, now, reason)
	b.gen++ // even when it was closed: results of calls admitted before do not count
	b.consecutive = 0
	b.probes, b.succeeded = 0, 0
	b.openFor = b.cfg.OpenFor
	b.window.reset()
}

// State returns the current state. An open breaker whose open period has
// passed is half-open.
func (b *Breaker) State() State {
	now := b.now()
	b.mu.Lock()
	b.advance(now)
	s := b.state
	b.unlock()
	return s
}

// RemainingOpen returns how long the breaker stays open: 0 unless it is
// open, and 0 when an operator opened it (there is no end to announce). It
// suits a Retry-After header.
func (b *Breaker) RemainingOpen() time.Duration {
	now := b.now()
	b.mu.Lock()
	b.advance(now)
	d := b.remainingLocked(now)
	b.unlock()
	return d
}

// remainingLocked requires mu.
func (b *Breaker) remainingLocked(now time.Time) time.Duration {
	if b.state != Open || b.forced {
		return 0
	}
	return max(b.openUntil.Sub(now), 0)
}

// Snapshot returns the breaker's state for status output.
func (b *Breaker) Snapshot() Snapshot {
	now := b.now()
	b.mu.Lock()
	b.advance(now)
	s := Snapshot{
		Name:                b.name,
		State:               b.state.String(),
		Forced:              b.forced,
		ConsecutiveFailures: b.consecutive,
		LastFailure:         b.lastFailure,
		LastFailureReason:   b.lastReason,
		OpenedAt:            b.openedAt,
		HalfOpenIn:          b.remainingLocked(now),
		Trips:               b.trips,
		Calls:               b.calls,
		Failures:            b.failures,
		Rejected:            b.rejected,
	}
	if b.state != Closed && !b.forced {
		s.OpenFor = readable.Duration(b.openFor).String()
	}
	if b.state == Open && !b.forced {
		s.Held = b.held
	}
	b.unlock()
	if s.HalfOpenIn > 0 {
		s.HalfOpenInText = max(readable.Duration(s.HalfOpenIn), time.Millisecond).String()
	}
	return s
}
