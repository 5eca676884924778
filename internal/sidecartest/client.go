package sidecartest

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gavv/httpexpect/v2"
)

// NewExpect returns an httpexpect client for baseURL that leaves nothing
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
func NewExpect(t *testing.T, baseURL string) *httpexpect.Expect {
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

// RawRequest opens a connection to addr, closed when the test ends, and
// sends head; the body, if any, is left to the caller.
func RawRequest(tb testing.TB, addr, head string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		tb.Fatal(err)
	}
	return c
}
