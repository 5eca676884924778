package sidecar

import (
	"net/http"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/gavv/httpexpect/v2"
)

// TestMain fails the package when its tests leave goroutines behind once
// everything they started has stopped (sidecars, watchers, notifiers,
// probes, supervisors, proxied calls, event streams, test servers and
// clients). Tests that start a sidecar check their own goroutines too
// (testutil.VerifyNoLeaks).
func TestMain(m *testing.M) { testutil.MainWithoutLeaks(m) }

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
