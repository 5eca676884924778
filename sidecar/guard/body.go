package guard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/net/netutil"
)

// serveWithBodyDeadline serves r with a deadline on reading its body. The
// connection's read deadline is set for d; net/http clears it once the body
// has been read to its end (it then watches the connection for the client
// going away), so a long answer streamed afterwards (a model's stream, a
// slow upstream) is not cut. A body that has not arrived in time fails to
// read, with a *BodyTimeoutError, and the connection is closed after the
// answer. Requests without a body, WebSocket upgrades among them, get no
// deadline.
func serveWithBodyDeadline(w http.ResponseWriter, r *http.Request, next http.Handler, d time.Duration, key string) {
	if d <= 0 || !hasBody(r) {
		next.ServeHTTP(w, r)
		return
	}
	// A connection's deadline is the network's wall clock, not the
	// sidecar's (Options.Now), which a test may have moved.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(d)); err == nil {
		r.Body = &deadlineBody{ReadCloser: r.Body, limit: d, key: key}
	}
	next.ServeHTTP(w, r)
}

// deadlineBody says which setting a body that came too late ran into.
type deadlineBody struct {
	io.ReadCloser
	limit time.Duration
	key   string
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = &BodyTimeoutError{Limit: b.limit, Key: b.key, err: err}
	}
	return n, err
}

// BodyTimeoutError is the error reading a body that did not arrive within
// its deadline.
type BodyTimeoutError struct {
	Limit time.Duration // the deadline
	Key   string        // the setting that set it: listen.body_read_timeout, ingress.body_read_timeout
	err   error
}

func (e *BodyTimeoutError) Error() string {
	return fmt.Sprintf("the request body did not arrive within %s (%s)", e.Limit, e.Key)
}

func (e *BodyTimeoutError) Unwrap() error { return e.err }

// LimitListener caps ln's open connections at n (listen.max_connections,
// ingress.max_connections): past it, new connections wait to be accepted
// until one closes. 0 is no cap.
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, n)
}
