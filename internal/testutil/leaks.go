package testutil

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// MainWithoutLeaks runs a package's tests (call it from TestMain), then
// each of after (what TestMain set up for the whole package, such as a
// server), and fails the package when the tests left goroutines behind.
// Idle connections pooled in http.DefaultTransport by tests using its
// default client are closed before each look: that pool lives as long as
// the process.
func MainWithoutLeaks(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	if code == 0 {
		if err := findLeaks(closeDefaultIdle); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakChecked holds the tests that already check for leaks.
var leakChecked sync.Map // testing.TB → struct{}

// VerifyNoLeaks fails t if, once it and everything it cleans up have
// finished, goroutines started after this call are still running (those
// running already are ignored: they belong to the test binary or to what
// the test set up before). Call it before starting what should stop by the
// end of the test; later calls in the same test do nothing, so the first
// check covers everything started after it.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	if _, done := leakChecked.LoadOrStore(t, struct{}{}); done {
		return
	}
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		leakChecked.Delete(t)
		if err := findLeaks(func() {}, before); err != nil {
			t.Errorf("goroutines left running by the test: %v", err)
		}
	})
}

// findLeaks is goleak.Find looking for up to about three seconds instead of
// goleak's half second, calling before ahead of each look: goroutines whose
// end has been set in motion (a connection closed by its peer, a server
// that has shut down) may take a moment under -race. A goroutine still
// running after that is a leak.
func findLeaks(before func(), opts ...goleak.Option) error {
	before()
	err := goleak.Find(opts...)
	for i := 0; err != nil && i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		before()
		err = goleak.Find(opts...)
	}
	return err
}

func closeDefaultIdle() { http.DefaultTransport.(*http.Transport).CloseIdleConnections() }
