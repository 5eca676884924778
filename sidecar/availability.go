package sidecar

import (
	"sync"
	"time"
)

// Availability windows: the share of calls and tasks that ended in an
// answer (from the first choice or a fallback) rather than an error.
var availabilityWindows = []struct {
	Name string
	Span time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}}

// availability counts answers and errors per minute over the last 24 hours.
type availability struct {
	mu      sync.Mutex
	buckets [24 * 60]availBucket
}

type availBucket struct {
	minute          int64 // unix minute the counts belong to
	answered, error uint64
}

// Record counts one call or task that ended in an answer (ok) or an error.
func (a *availability) Record(ok bool, now time.Time) {
	m := now.Unix() / 60
	a.mu.Lock()
	b := &a.buckets[m%int64(len(a.buckets))]
	if b.minute != m {
		*b = availBucket{minute: m}
	}
	if ok {
		b.answered++
	} else {
		b.error++
	}
	a.mu.Unlock()
}

// AvailabilityWindow is the outcome of calls and tasks over one window.
type AvailabilityWindow struct {
	Window   string `json:"window"`
	Answered uint64 `json:"answered"`
	Errors   uint64 `json:"errors"`
	// Ratio is answered / (answered + errors); absent when there was no
	// call in the window.
	Ratio *float64 `json:"ratio,omitempty"`
}

// Windows returns the counts over each window ending now.
func (a *availability) Windows(now time.Time) []AvailabilityWindow {
	m := now.Unix() / 60
	out := make([]AvailabilityWindow, len(availabilityWindows))
	a.mu.Lock()
	for i, w := range availabilityWindows {
		out[i].Window = w.Name
		span := int64(w.Span / time.Minute)
		for _, b := range a.buckets {
			if b.minute > m-span && b.minute <= m {
				out[i].Answered += b.answered
				out[i].Errors += b.error
			}
		}
	}
	a.mu.Unlock()
	for i := range out {
		if total := out[i].Answered + out[i].Errors; total > 0 {
			r := float64(out[i].Answered) / float64(total)
			out[i].Ratio = &r
		}
	}
	return out
}
