package gateway

import "time"

// Admission is what happens to a request before its chain is tried
// (Options.Admit): it goes ahead, is rejected, or starts at another model.
type Admission struct {
	// Reject answers 429 in the provider's shape with Reason as the
	// message and Retry-After from RetryAfter (whole seconds, rounded up).
	Reject     bool
	Reason     string
	RetryAfter time.Duration
	// DegradeTo, when set, is the label of the model whose chain serves
	// the request instead of the one asked for; the answer says so with
	// X-Sidecar-Degraded: true. A label that is not configured is ignored.
	DegradeTo string
}
