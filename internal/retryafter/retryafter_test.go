package retryafter

import (
	"net/http"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestUntil(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration // from t0; 0: no time
	}{
		{"nothing", nil, 0},
		{"retry-after seconds", map[string]string{"Retry-After": "20"}, 20 * time.Second},
		{"retry-after with spaces", map[string]string{"Retry-After": " 20 "}, 20 * time.Second},
		{"retry-after decimal", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"retry-after zero", map[string]string{"Retry-After": "0"}, 0},
		{"retry-after negative", map[string]string{"Retry-After": "-5"}, 0},
		{"retry-after plus sign", map[string]string{"Retry-After": "+5"}, 0},
		{"retry-after garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"retry-after NaN", map[string]string{"Retry-After": "NaN"}, 0},
		{"retry-after huge is cut", map[string]string{"Retry-After": "99999999999999999999999"}, Max},
		{"retry-after two hours is cut", map[string]string{"Retry-After": "7200"}, Max},
		{"retry-after http date", map[string]string{"Retry-After": "Sat, 01 Mar 2025 12:00:30 GMT"}, 30 * time.Second},
		{"retry-after date in the past", map[string]string{"Retry-After": "Sat, 01 Mar 2025 11:00:00 GMT"}, 0},
		{"retry-after-ms", map[string]string{"Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{"retry-after-ms first", map[string]string{"Retry-After-Ms": "250", "Retry-After": "1"}, 250 * time.Millisecond},
		{"retry-after-ms garbage falls back", map[string]string{"Retry-After-Ms": "x", "Retry-After": "1"}, time.Second},
		{"retry-after before resets", map[string]string{"Retry-After": "2", "X-Ratelimit-Reset-Requests": "6m0s"}, 2 * time.Second},
		{"openai requests reset", map[string]string{"X-Ratelimit-Reset-Requests": "6m0s"}, 6 * time.Minute},
		{"openai ms reset", map[string]string{"X-Ratelimit-Reset-Tokens": "20ms"}, 20 * time.Millisecond},
		{"openai latest of both", map[string]string{"X-Ratelimit-Reset-Requests": "1s", "X-Ratelimit-Reset-Tokens": "6m0s"}, 6 * time.Minute},
		{"openai limit with some left ignored", map[string]string{
			"X-Ratelimit-Reset-Requests": "6m0s", "X-Ratelimit-Remaining-Requests": "59",
			"X-Ratelimit-Reset-Tokens": "1s", "X-Ratelimit-Remaining-Tokens": "0"}, time.Second},
		{"openai negative duration", map[string]string{"X-Ratelimit-Reset-Requests": "-1s"}, 0},
		{"openai garbage", map[string]string{"X-Ratelimit-Reset-Requests": "later"}, 0},
		{"openai long is cut", map[string]string{"X-Ratelimit-Reset-Tokens": "1000h"}, Max},
		{"anthropic requests reset", map[string]string{"Anthropic-Ratelimit-Requests-Reset": "2025-03-01T12:00:20Z"}, 20 * time.Second},
		{"anthropic offset time", map[string]string{"Anthropic-Ratelimit-Tokens-Reset": "2025-03-01T13:00:05+01:00"}, 5 * time.Second},
		{"anthropic output tokens", map[string]string{
			"Anthropic-Ratelimit-Input-Tokens-Reset":      "2025-03-01T12:00:03Z",
			"Anthropic-Ratelimit-Input-Tokens-Remaining":  "1000",
			"Anthropic-Ratelimit-Output-Tokens-Reset":     "2025-03-01T12:00:09Z",
			"Anthropic-Ratelimit-Output-Tokens-Remaining": "0"}, 9 * time.Second},
		{"anthropic in the past", map[string]string{"Anthropic-Ratelimit-Requests-Reset": "2025-03-01T11:59:00Z"}, 0},
		{"anthropic far future is cut", map[string]string{"Anthropic-Ratelimit-Requests-Reset": "2030-01-01T00:00:00Z"}, Max},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			got, ok := Until(h, t0)
			if tt.want == 0 {
				if ok {
					t.Fatalf("Until = %s, want no time", got)
				}
				return
			}
			if !ok || !got.Equal(t0.Add(tt.want)) {
				t.Fatalf("Until = %s, %v; want %s", got, ok, t0.Add(tt.want))
			}
		})
	}
}

func TestApplies(t *testing.T) {
	for status, want := range map[int]bool{429: true, 503: true, 529: true, 500: false, 502: false, 200: false, 400: false} {
		if got := Applies(status); got != want {
			t.Errorf("Applies(%d) = %v, want %v", status, got, want)
		}
	}
}

// FuzzUntil: whatever the headers say, a time is after now and at most
// now+Max.
func FuzzUntil(f *testing.F) {
	f.Add("20", "", "", "")
	f.Add("Sat, 01 Mar 2025 12:00:30 GMT", "250", "6m0s", "2025-03-01T12:00:20Z")
	f.Add("1e400", "-1", "-5m", "9999-12-31T23:59:59Z")
	f.Fuzz(func(t *testing.T, retryAfter, ms, openai, anthropic string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("Retry-After-Ms", ms)
		h.Set("X-Ratelimit-Reset-Tokens", openai)
		h.Set("Anthropic-Ratelimit-Requests-Reset", anthropic)
		got, ok := Until(h, t0)
		if !ok {
			if !got.IsZero() {
				t.Fatalf("no time, yet %s", got)
			}
			return
		}
		if !got.After(t0) || got.After(t0.Add(Max)) {
			t.Fatalf("Until = %s, outside (t0, t0+%s]", got, Max)
		}
	})
}
