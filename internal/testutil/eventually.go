package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every 20ms until it holds, and fails t (naming
// what it waited for) when it does not within limit.
func Eventually(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
