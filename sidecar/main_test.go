package sidecar

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/gavv/httpexpect/v2"
	"go.uber.org/goleak"
)

// TestMain fails the package when its tests leave goroutines behind once
// everything they started has stopped (sidecars, watchers, notifiers,
// probes, supervisors, proxied calls, event streams, test servers and
// clients). Idle connections pooled in http.DefaultTransport by the few
// tests that use http.DefaultClient are closed first: that pool lives as
// long as the process by design.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if err := findLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// findLeaks looks for unexpected goroutines for up to about three seconds:
// goroutines whose end has been set in motion (a connection closed by its
// peer, a server that has shut down) may take a moment under -race.
// (goleak.Find alone retries for less than half a second.)
func findLeaks(opts ...goleak.Option) error {
	err := goleak.Find(opts...)
	for i := 0; err != nil && i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		err = goleak.Find(opts...)
	}
	return err
}

// leakChecked holds the tests that already check for leaks.
var leakChecked sync.Map // *testing.T → struct{}

// verifyNoLeaks fails t if, once it and everything it cleans up have
// finished, goroutines started after this call are still running (those
// running already are ignored: they belong to the test binary or to what
// the test set up before). Call it before starting what should stop by the
// end of the test; later calls in the same test do nothing, so the first
// check covers everything started after it.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	if _, done := leakChecked.LoadOrStore(t, struct{}{}); done {
		return
	}
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		leakChecked.Delete(t)
		if err := findLeaks(before); err != nil {
			t.Errorf("goroutines left running by the test: %v", err)
		}
	})
}

// newExpect returns an httpexpect client for baseURL that leaves nothing
// running after the test. httpexpect (v2.17) reads a response's body only
// when the test asserts on it, and otherwise leaves it to a finalizer to
// close: a request checked for its status or headers alone keeps its
// connection (net/http's persistConn readLoop and writeLoop) waiting for
// the body to be read, past the server's shutdown, until a garbage
// collection runs that finalizer. For a chunked answer (over 2 KiB, such as
// /v1/status) it never runs: net/http's chunked body points back at its
// http.Response, whose Body is httpexpect's wrapper, and a cycle through an
// object with a finalizer is never collected. So its requests carry the
// test's context, which ends them all when the test ends, and the idle
// connections of its own transport are closed at cleanup.
func newExpect(t *testing.T, baseURL string) *httpexpect.Expect {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return httpexpect.WithConfig(httpexpect.Config{
		TestName: t.Name(),
		BaseURL:  baseURL,
		Context:  t.Context(),
		Client:   &http.Client{Transport: tr, Jar: httpexpect.NewCookieJar()},
		Reporter: httpexpect.NewAssertReporter(t),
		Printers: []httpexpect.Printer{httpexpect.NewCompactPrinter(t)},
	})
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, limit, cond)
}
