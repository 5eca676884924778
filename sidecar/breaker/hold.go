package breaker

import (
	"time"
)

// Limit says why a target asked not to be called for a while.
type Limit int

// The limits a target may announce.
const (
	// RateLimited: too many calls for now (a 429, 503 or 529 naming a
	// time, e.g. with Retry-After).
	RateLimited Limit = iota
	// QuotaExhausted: the account's quota or credit is spent (OpenAI's
	// insufficient_quota 429); billing, not rate.
	QuotaExhausted
)

// String returns "rate limited" or "quota exhausted".
func (l Limit) String() string {
	if l == QuotaExhausted {
		return "quota exhausted"
	}
	return "rate limited"
}

// holdText is how a hold reads in reasons, the status and the sidecar
// check: "rate limited until 12:00:20" (UTC, like the other times there).
func holdText(limit Limit, until time.Time) string {
	if until.IsZero() {
		return limit.String()
	}
	return limit.String() + " until " + until.UTC().Format("15:04:05")
}

// DoneLimited finishes the call as a failure the target explained: it
// answered status saying it is limited until until (zero when it named no
// time). It returns the reason recorded, e.g. "rate limited until
// 12:00:20 (429)".
//
// The target said so, so one such answer opens the breaker at once,
// whatever the failure rules. With a time the breaker stays open until
// exactly then (held to at most until, not to open_for), does not
// half-open before, and its open period is not doubled: the next ordinary
// trip opens it for the period it would have had. Without a time it opens
// like an ordinary trip. When the breaker was opened meanwhile by another
// call, a later time holds it open longer. A breaker an operator opened is
// left as it is.
func (p Permit) DoneLimited(status int, limit Limit, until time.Time) string {
	b := p.b
	if b == nil {
		return holdText(limit, until) + " (" + statusReason(status) + ")"
	}
	now := b.now()
	if !until.After(now) {
		until = time.Time{}
	}
	hold := holdText(limit, until)
	reason := hold + " (" + statusReason(status) + ")"
	b.mu.Lock()
	b.calls++
	b.failures++
	b.lastFailure, b.lastReason = now, reason
	switch {
	case b.forced:
	case b.state == Open:
		if !until.IsZero() && until.After(b.openUntil) {
			b.openUntil, b.held = until, hold
		}
	case p.gen == b.gen:
		b.consecutive++
		b.heldUntil, b.held = until, hold
		if until.IsZero() {
			b.held = ""
		}
		b.setState(Open, now, reason)
	}
	b.unlock()
	return reason
}
