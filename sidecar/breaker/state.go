// Package breaker is the sidecar's circuit breaker: one per call target
// (an upstream instance, the agent, a model). After too many failures the
// target gets no calls for a while, so callers go straight to a fallback.
//
// The state machine is this package's own, with no timer or goroutine: an
// open breaker becomes half-open when a call, a status read or a snapshot
// finds its open period over, by the breaker's clock. It opens after a number
// of consecutive failures, or (optionally) at a failure rate over a sliding
// window kept in ten buckets; it stays open for a period that doubles on each
// re-trip; half-open it admits a fixed number of probes, which a cancelled
// call gives back. Generations make the result of a call admitted before the
// state changed unable to move the new state. A target that says it is rate
// limited (or out of quota) until a time opens it at once until then, without
// doubling the period (DoneLimited). Operators may open and close it by hand. Listeners are called in order, after the lock is released.
package breaker

import (
	"time"
)

// State is the state of a breaker.
type State int

// The states of a breaker.
const (
	// Closed lets every call through and counts failures.
	Closed State = iota
	// Open lets no call through until its open period has passed.
	Open
	// HalfOpen lets a fixed number of probe calls through: their success
	// closes the breaker, any failure opens it again.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	default:
		return "unknown"
	}
}

// Change describes one state change of a breaker, as given to listeners.
type Change struct {
	Name   string
	From   State
	To     State
	Reason string // for people, e.g. "3 consecutive failures (last: 503)"
	At     time.Time
	// ConsecutiveFailures is the number of failures in a row when the change
	// happened (0 after a close).
	ConsecutiveFailures int
	// OpenFor is how long the breaker stays open, when To is Open; 0 when an
	// operator opened it (it stays open until closed). When the target said
	// until when (DoneLimited), it is the time until then.
	OpenFor time.Duration
}

// Snapshot is the state of a breaker at one moment, for status output.
type Snapshot struct {
	Name                string        `json:"name"`
	State               string        `json:"state"`
	Forced              bool          `json:"forced,omitempty"`
	ConsecutiveFailures int           `json:"consecutive_failures"`
	LastFailure         time.Time     `json:"last_failure,omitzero"`
	LastFailureReason   string        `json:"last_failure_reason,omitempty"`
	OpenedAt            time.Time     `json:"opened_at,omitzero"`
	HalfOpenIn          time.Duration `json:"-"`                      // remaining open time (0 unless open)
	HalfOpenInText      string        `json:"half_open_in,omitempty"` // e.g. "12.3s"
	OpenFor             string        `json:"open_for,omitempty"`     // current (doubled) open duration
	// Held says why the breaker stays open on the target's own word, e.g.
	// "rate limited until 12:00:20" or "quota exhausted until 12:00:20"
	// (UTC); "" otherwise.
	Held     string `json:"held,omitempty"`
	Trips    int    `json:"trips"`
	Calls    uint64 `json:"calls"`
	Failures uint64 `json:"failures"`
	Rejected uint64 `json:"rejected"`
}
