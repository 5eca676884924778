package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, and fails t when it does not
// within limit: "timed out after 5s waiting for <what>".
func Eventually(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	EventuallySeen(t, what, limit, func() (bool, string) { return cond(), "" })
}

// EventuallySeen is Eventually for a condition that also says what it
// observed: on timeout the failure shows the last observation ("...
// waiting for <what>; last seen: <seen>").
func EventuallySeen(t testing.TB, what string, limit time.Duration, cond func() (ok bool, seen string)) {
	t.Helper()
	ok, seen := poll(limit, cond)
	if ok {
		return
	}
	if seen == "" {
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
	t.Fatalf("timed out after %s waiting for %s; last seen: %s", limit, what, seen)
}

// Poll polls cond until it holds or limit passes and reports whether it
// held: for a caller that has more to do before it fails (stop a load,
// print logs), that goes on either way, or that checks that something
// does not happen within limit (and fails as soon as it does).
func Poll(limit time.Duration, cond func() bool) bool {
	ok, _ := poll(limit, func() (bool, string) { return cond(), "" })
	return ok
}

// pollMax is the longest pause between two looks. The first looks come
// sooner (1ms, doubling), so a condition that holds almost at once is seen
// almost at once; none comes later than pollMax after the previous one, so
// a state that lasts longer than that is not missed.
const pollMax = 20 * time.Millisecond

// poll looks at cond until it holds or limit has passed (one last look
// then), and returns the last answer.
func poll(limit time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for {
		ok, seen := cond()
		if ok || !time.Now().Before(deadline) {
			return ok, seen
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, pollMax)
	}
}
