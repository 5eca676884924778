package breaker

import "time"

// windowBuckets is the number of buckets the failure-rate window is kept in:
// a call leaves the window at most a tenth of the window late.
const windowBuckets = 10

// window counts the calls of the last span of time, and how many of them
// failed, in windowBuckets buckets of span/windowBuckets each. Time is
// measured from the window's origin, so a clock that jumps (the wall clock
// moved by an operator) does not empty it. It is not safe for concurrent
// use: the breaker guards it with its mutex.
type window struct {
	origin  time.Time
	width   time.Duration // of one bucket
	head    int64         // number of the newest bucket, counted from origin
	buckets [windowBuckets]tally
	total   tally // the sum of the buckets
}

type tally struct{ calls, failures uint64 }

func newWindow(span time.Duration, origin time.Time) window {
	return window{origin: origin, width: max(span/windowBuckets, 1)}
}

// add counts a call that ended at now.
func (w *window) add(now time.Time, failure bool) {
	w.expire(now)
	b := &w.buckets[w.head%windowBuckets]
	b.calls++
	w.total.calls++
	if failure {
		b.failures++
		w.total.failures++
	}
}

// expire drops the buckets that are older than the window at now. A clock
// that goes back keeps counting into the newest bucket.
func (w *window) expire(now time.Time) {
	head := int64(now.Sub(w.origin) / w.width)
	if head <= w.head {
		return
	}
	for i := range min(head-w.head, windowBuckets) {
		b := &w.buckets[(w.head+i+1)%windowBuckets]
		w.total.calls -= b.calls
		w.total.failures -= b.failures
		*b = tally{}
	}
	w.head = head
}

// failurePercent returns the number of calls in the window and the share of
// them that failed, in percent rounded to the nearest whole number (half
// up). It reads the window as of the last add.
func (w *window) failurePercent() (calls uint64, percent uint64) {
	n, f := w.total.calls, w.total.failures
	if n == 0 {
		return 0, 0
	}
	return n, (200*f + n) / (2 * n)
}

// reset empties the window.
func (w *window) reset() {
	w.buckets = [windowBuckets]tally{}
	w.total = tally{}
}
