// Package h1 is the HTTP/1.1 client of the sidecar's call path: an
// http.RoundTripper that makes each exchange in the caller's goroutine.
//
// net/http's Transport gives every connection a reading and a writing
// goroutine, so a request crosses goroutines three times before its answer
// reaches the caller; on an idle process each crossing can wake a thread.
// Here the caller writes the request and reads the answer itself, with the
// standard library's own wire code (http.Request.Write, http.ReadResponse),
// and keeps connections alive in a small pool. Measured with make bench:
// about a fifth less added latency at one connection and 15% more
// throughput than net/http's Transport behind the same reverse proxy.
//
// What it does not do, because the call path does not need it: HTTP/2,
// proxies from the environment, transparent decompression.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transport is an HTTP/1.1 RoundTripper; its zero value is usable. Its
// fields must not change once it is in use.
type Transport struct {
	// DialContext makes TCP connections (default: a net.Dialer with a 30 s
	// timeout).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig for https URLs; ServerName defaults to the host.
	TLSClientConfig *tls.Config
	// TLSHandshakeTimeout bounds a handshake (0: only the request's context).
	TLSHandshakeTimeout time.Duration
	// MaxIdleConns and MaxIdleConnsPerHost bound the kept-alive connections
	// (defaults 100 and 2, as net/http's).
	MaxIdleConns, MaxIdleConnsPerHost int
	// IdleConnTimeout closes a connection idle this long (0: never).
	IdleConnTimeout time.Duration

	mu    sync.Mutex
	idle  map[string][]*conn // by scheme and address; the most recent last
	nidle int
}

// ErrServerClosedIdle is returned when a kept-alive connection turned out
// to be closed by the server and the request could not be sent again on a
// new one (its body cannot be replayed, or it is not idempotent).
var ErrServerClosedIdle = errors.New("h1: server closed an idle connection before answering")

// maxInformational bounds the 1xx answers read before the final one.
const maxInformational = 5

// earlyAnswerWait is how long a request whose body could not be written
// waits for the answer the server may have sent before closing (a 413 to
// a body it would not read, say).
const earlyAnswerWait = 50 * time.Millisecond

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := validate(req); err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	addr := canonicalAddr(req.URL)
	key := req.URL.Scheme + "://" + addr
	for retried := false; ; retried = true {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, err
		}
		c, err := t.getConn(ctx, key, req.URL.Scheme, addr, req.URL.Hostname())
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := c.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, ErrServerClosedIdle) || retried {
			return nil, err
		}
		// The kept-alive connection was dead; send again on another
		// one when that is safe, as net/http's Transport does.
		if !replayable(req) {
			return nil, err
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r := *req
			r.Body = body
			req = &r
		}
	}
}

func validate(req *http.Request) error {
	switch {
	case req.URL == nil:
		return errors.New("h1: request without a URL")
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return fmt.Errorf("h1: unsupported protocol scheme %q", req.URL.Scheme)
	case req.URL.Host == "":
		return errors.New("h1: request URL without a host")
	case req.Header == nil:
		return errors.New("h1: request without a header map")
	}
	return nil
}

// replayable mirrors net/http: a request is sent again on a fresh
// connection only when its body can be produced again and its method is
// idempotent or it carries an idempotency key.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// canonicalAddr is the URL's host with its port, 80 or 443 by default.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// CloseIdleConnections closes the kept-alive connections; those in use
// are not affected.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.nidle = nil, 0
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.close()
		}
	}
}

// getConn returns a kept-alive connection that is still open, else a new one.
func (t *Transport) getConn(ctx context.Context, key, scheme, addr, host string) (*conn, error) {
	for {
		c := t.popIdle(key)
		if c == nil {
			break
		}
		if c.alive() {
			return c, nil
		}
		c.close()
	}
	return t.dial(ctx, key, scheme, addr, host)
}

func (t *Transport) popIdle(key string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := t.idle[key]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	cs[len(cs)-1] = nil
	t.idle[key] = cs[:len(cs)-1]
	t.nidle--
	c.idleSince = time.Time{}
	return c
}

// putIdle keeps c for the next request, or closes it when the pool is full.
func (t *Transport) putIdle(c *conn) {
	perHost, total := t.MaxIdleConnsPerHost, t.MaxIdleConns
	if perHost <= 0 {
		perHost = 2
	}
	if total <= 0 {
		total = 100
	}
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	if len(t.idle[c.key]) >= perHost || t.nidle >= total {
		t.mu.Unlock()
		c.close()
		return
	}
	c.reused = true
	c.idleSince = time.Now()
	t.idle[c.key] = append(t.idle[c.key], c)
	t.nidle++
	if d := t.IdleConnTimeout; d > 0 {
		if c.idleTimer == nil {
			c.idleTimer = time.AfterFunc(d, func() { t.expire(c) })
		} else {
			c.idleTimer.Reset(d)
		}
	}
	t.mu.Unlock()
}

// expire closes c if it is still idle and has been for IdleConnTimeout.
func (t *Transport) expire(c *conn) {
	t.mu.Lock()
	cs := t.idle[c.key]
	for i, x := range cs {
		if x == c {
			if time.Since(c.idleSince) < t.IdleConnTimeout {
				break // taken and put back since the timer was set
			}
			t.idle[c.key] = append(cs[:i], cs[i+1:]...)
			t.nidle--
			t.mu.Unlock()
			c.close()
			return
		}
	}
	t.mu.Unlock()
}

func (t *Transport) dial(ctx context.Context, key, scheme, addr, host string) (*conn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	nc := raw
	if scheme == "https" {
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		hctx := ctx
		if t.TLSHandshakeTimeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t.TLSHandshakeTimeout)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		nc = tc
	}
	c := &conn{t: t, key: key, raw: raw, nc: nc}
	c.br = bufio.NewReaderSize(countingReader{c}, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, nil
}

// conn is one connection to a server, used by one request at a time.
type conn struct {
	t         *Transport
	key       string
	raw       net.Conn // the TCP connection (under TLS for https)
	nc        net.Conn // what requests are written to and answers read from
	br        *bufio.Reader
	bw        *bufio.Writer
	nread     atomic.Int64 // bytes read from nc since the request was written
	reused    bool         // it has served a request before
	idleSince time.Time
	idleTimer *time.Timer
	closed    atomic.Bool
}

// countingReader reads from the connection and counts what it read, so
// that a connection closed before any answer can be told apart.
type countingReader struct{ c *conn }

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	r.c.nread.Add(int64(n))
	return n, err
}

func (c *conn) close() {
	if c.closed.CompareAndSwap(false, true) {
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		_ = c.nc.Close()
	}
}

// alive reports whether a kept-alive connection can take a request: the
// server has neither closed it nor sent anything unasked.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return peekIdle(c.raw)
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads its answer's head. Until the answer's
// body is done, the request's context can end the exchange: when it is
// done, the connection's deadline is moved to the past.
func (c *conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	c.nread.Store(0)
	werr := req.Write(c.bw)
	if werr == nil {
		werr = c.bw.Flush()
	}
	if werr != nil {
		if ctx.Err() == nil {
			// The server may have answered before it stopped reading.
			_ = c.nc.SetReadDeadline(time.Now().Add(earlyAnswerWait))
			if resp, err := readResponse(ctx, c.br, req); err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
				_ = c.nc.SetReadDeadline(time.Time{})
				resp.Close = true
				c.wrapBody(ctx, resp, stop)
				return resp, nil
			}
		}
		stop()
		c.close()
		return nil, c.failure(ctx, werr)
	}
	resp, err := readResponse(ctx, c.br, req)
	if err != nil {
		stop()
		c.close()
		return nil, c.failure(ctx, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to the caller (a WebSocket, say):
		// the body reads and writes it, and the request's context no
		// longer bounds it.
		stop()
		resp.Body = &upgraded{br: c.br, c: c}
		return resp, nil
	}
	c.wrapBody(ctx, resp, stop)
	return resp, nil
}

// failure is the error of an exchange that broke: the context's when it
// ended it; ErrServerClosedIdle when a kept-alive connection was closed
// before anything came back.
func (c *conn) failure(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if c.reused && c.nread.Load() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return fmt.Errorf("%w (%v)", ErrServerClosedIdle, err)
	}
	return err
}

// readResponse reads the final answer, passing informational (1xx) ones to
// the request's trace, as net/http's Transport does.
func readResponse(ctx context.Context, br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n >= maxInformational {
			return nil, errors.New("h1: too many 1xx informational answers")
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// wrapBody makes resp's body return the connection to the pool once read to
// its end (or close it when closed before), and stop watching ctx then.
func (c *conn) wrapBody(ctx context.Context, resp *http.Response, stop func() bool) {
	keep := !resp.Close && !resp.Request.Close
	if resp.Body == http.NoBody {
		c.release(stop, keep)
		return
	}
	resp.Body = &body{rc: resp.Body, c: c, ctx: ctx, stop: stop, keep: keep}
}

// release ends an exchange: the connection goes back to the pool when keep
// and the context did not end it, else it is closed.
func (c *conn) release(stop func() bool, keep bool) {
	if stop() && keep {
		c.t.putIdle(c)
		return
	}
	c.close()
}

// body is an answer's body on a kept-alive connection.
type body struct {
	rc   io.ReadCloser
	c    *conn
	ctx  context.Context
	stop func() bool
	keep bool

	mu   sync.Mutex
	done bool  // the exchange has ended
	err  error // what Read returns once done
}

var errBodyClosed = errors.New("h1: read on a closed answer body")

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.finish(true, io.EOF)
		return n, io.EOF
	}
	if cerr := b.ctx.Err(); cerr != nil {
		err = cerr
	}
	b.finish(false, err)
	return n, err
}

// Close ends the exchange; a connection whose answer was not read to its
// end is closed.
func (b *body) Close() error {
	b.finish(false, errBodyClosed)
	return nil
}

func (b *body) finish(complete bool, err error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done, b.err = true, err
	b.mu.Unlock()
	b.c.release(b.stop, complete && b.keep)
}

// upgraded is the body of a 101 answer: the connection itself.
type upgraded struct {
	br *bufio.Reader
	c  *conn
}

func (u *upgraded) Read(p []byte) (int, error)  { return u.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error {
	u.c.close()
	return nil
}
