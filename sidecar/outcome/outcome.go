// Package outcome names how a call, a task or a model request ended, for
// metrics and availability. The call proxy and the model gateway report an
// Outcome; the sidecar's metrics count it. Its String is the value of the
// "outcome" label of sidecar_requests_total.
package outcome

// Outcome is how one request ended.
type Outcome uint8

// The outcomes. Count is how many there are: arrays indexed by Outcome have
// Count elements.
const (
	Success  Outcome = iota // answered by the first choice
	Fallback                // answered by a fallback
	Failure                 // ended in an error: a failure status, a timeout, a broken connection
	Rejected                // nothing could take it (every breaker open, nothing passing)

	Count int = iota
)

// All lists every outcome, in order.
var All = [Count]Outcome{Success, Fallback, Failure, Rejected}

var names = [Count]string{"success", "fallback", "failure", "rejected"}

// String is the outcome's metric label value.
func (o Outcome) String() string {
	if int(o) < Count {
		return names[o]
	}
	return "unknown"
}

// Answered reports whether the request got an answer (from the first
// choice or a fallback) rather than an error.
func (o Outcome) Answered() bool { return o == Success || o == Fallback }
