package gateway

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/agent-sidecar/sidecar/internal/retryafter"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// maxFailureBody is how much of a failed answer's body is read (to tell an
// out-of-quota 429) and drained before the connection is given back.
const maxFailureBody = 64 << 10

// maxQuotaProbe is the prefix of a 429's body searched for OpenAI's
// insufficient_quota code; its error object comes first.
const maxQuotaProbe = 8 << 10

// limitOf reads a failed answer (a status in failure_statuses): whether the
// model said it is rate limited until a time (429, 503 or 529 with
// Retry-After or a provider's reset header, see retryafter.Until) or out of
// quota (a 429 whose error code or type is insufficient_quota, with or
// without a time). ok is false for an ordinary failure. It reads at most
// maxFailureBody of the body.
func limitOf(resp *http.Response, now time.Time) (limit breaker.Limit, until time.Time, ok bool) {
	defer func() { _, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxFailureBody)) }()
	if !retryafter.Applies(resp.StatusCode) {
		return 0, time.Time{}, false
	}
	until, timed := retryafter.Until(resp.Header, now)
	if resp.StatusCode == http.StatusTooManyRequests {
		prefix, _ := io.ReadAll(io.LimitReader(resp.Body, maxQuotaProbe))
		if outOfQuota(prefix) {
			return breaker.QuotaExhausted, until, true
		}
	}
	return breaker.RateLimited, until, timed
}

// outOfQuota reports whether an error body is OpenAI's insufficient_quota
// ("You exceeded your current quota"): billing, not rate. A body cut at
// maxQuotaProbe, or not JSON, is not.
func outOfQuota(body []byte) bool {
	if !bytes.Contains(body, []byte("insufficient_quota")) {
		return false
	}
	e, ok := errorObject(body)
	return ok && (e.Get("code").Str == "insufficient_quota" || e.Get("type").Str == "insufficient_quota")
}

// failLimited records that model m said it is limited until a time (or out
// of quota): its breaker opens at once until then.
func (c *call) failLimited(m *policies.Model, permit breaker.Permit, status int, limit breaker.Limit, until time.Time) result {
	reason := permit.DoneLimited(status, limit, until)
	c.try.failed(reason)
	c.reasons = append(c.reasons, m.Label+": "+reason)
	c.g.count(m.Label, func(s *modelStats) { s.failures++; s.lastFailure = reason; s.lastFailureAt = c.g.opts.Now() })
	return resultFailed
}
