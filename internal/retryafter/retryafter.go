// Package retryafter reads when a target that refused a call (429, 503,
// 529) says it may be called again: the standard Retry-After header, the
// retry-after-ms header, OpenAI's x-ratelimit-reset-* and Anthropic's
// anthropic-ratelimit-*-reset headers. It is the one place that parses
// them, for the model gateway and for /call/ alike.
package retryafter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Max is the longest hold accepted: a later time is cut to now+Max, so a
// wrong or hostile header cannot keep a target out of use for days.
const Max = time.Hour

// Applies reports whether status is one whose headers are read: 429 Too
// Many Requests, 503 Service Unavailable and 529 (Anthropic's overloaded).
func Applies(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == 529
}

// resets pairs a provider's reset header with the header saying how much
// of that limit is left.
var resets = []struct{ reset, remaining string }{
	{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Remaining-Requests"},
	{"X-Ratelimit-Reset-Tokens", "X-Ratelimit-Remaining-Tokens"},
	{"Anthropic-Ratelimit-Requests-Reset", "Anthropic-Ratelimit-Requests-Remaining"},
	{"Anthropic-Ratelimit-Tokens-Reset", "Anthropic-Ratelimit-Tokens-Remaining"},
	{"Anthropic-Ratelimit-Input-Tokens-Reset", "Anthropic-Ratelimit-Input-Tokens-Remaining"},
	{"Anthropic-Ratelimit-Output-Tokens-Reset", "Anthropic-Ratelimit-Output-Tokens-Remaining"},
}

// Until returns when the answer's headers say the target may be called
// again, and false when they name no usable time. In order:
//   - retry-after-ms (milliseconds) or else Retry-After (seconds or an
//     HTTP date): the target's own instruction;
//   - otherwise the latest provider reset time (OpenAI's durations such as
//     "6m0s", Anthropic's RFC 3339 times) among the limits whose remaining
//     header is "0" or absent; a limit with some left is not the one hit.
//
// A time not after now, a negative or unreadable value is ignored; a time
// after now+Max is cut to now+Max.
func Until(h http.Header, now time.Time) (time.Time, bool) {
	if d, ok := millis(h.Get("Retry-After-Ms")); ok {
		return bound(now.Add(d), now)
	}
	if v := h.Get("Retry-After"); v != "" {
		if d, ok := seconds(v); ok {
			return bound(now.Add(d), now)
		}
		if t, err := http.ParseTime(v); err == nil {
			return bound(t, now)
		}
	}
	var latest time.Time
	for _, r := range resets {
		v := h.Get(r.reset)
		if v == "" {
			continue
		}
		if left := strings.TrimSpace(h.Get(r.remaining)); left != "" && left != "0" {
			continue
		}
		t, ok := resetTime(v, now)
		if ok && t.After(latest) {
			latest = t
		}
	}
	if latest.IsZero() {
		return time.Time{}, false
	}
	return bound(latest, now)
}

// resetTime reads a reset header: an RFC 3339 time (Anthropic) or a
// duration from now (OpenAI: "1s", "6m0s", "20ms").
func resetTime(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, false
	}
	return now.Add(min(d, Max+time.Second)), true
}

// seconds reads a non-negative number of seconds (an integer as RFC 9110
// has it, or a decimal as some servers send).
func seconds(v string) (time.Duration, bool) {
	return number(v, float64(time.Second))
}

// millis reads a non-negative number of milliseconds.
func millis(v string) (time.Duration, bool) {
	return number(v, float64(time.Millisecond))
}

func number(v string, unit float64) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || (v[0] < '0' || v[0] > '9') {
		return 0, false // no sign, no "NaN", no "Inf"
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	f *= unit
	if f > float64(Max+time.Second) {
		return Max + time.Second, true // bound cuts it to Max
	}
	return time.Duration(f), true
}

// bound holds t to (now, now+Max].
func bound(t, now time.Time) (time.Time, bool) {
	if !t.After(now) {
		return time.Time{}, false
	}
	if limit := now.Add(Max); t.After(limit) {
		return limit, true
	}
	return t, true
}
