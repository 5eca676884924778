package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// conn is one connection to a server, used by one request at a time.
type conn struct {
	t         *Transport
	key       string
	raw       net.Conn // the TCP connection (under TLS for https)
	nc        net.Conn // what requests are written to and answers read from
	br        *bufio.Reader
	bw        *bufio.Writer
	nread     atomic.Int64 // bytes read from nc since the request was written
	headLeft  int64        // bytes the answer's head may still take from nc
	reused    bool         // it has served a request before
	idleSince time.Time
	idleTimer *time.Timer
	closed    atomic.Bool

	// A request with a body is written by a goroutine of its own while
	// the answer is read: a server may answer before it has read the
	// body (a 413, a 401) and stop reading it.
	writing     chan error // that goroutine's result; nil when none is pending
	netWriteErr error      // why writing to nc failed (a body that could not be read leaves it nil)
}

func newConn(t *Transport, key string, raw, nc net.Conn) *conn {
	c := &conn{t: t, key: key, raw: raw, nc: nc, headLeft: math.MaxInt64}
	c.br = bufio.NewReaderSize(connReader{c}, 4<<10)
	c.bw = bufio.NewWriterSize(connWriter{c}, 4<<10)
	return c
}

// connReader reads from the connection, counts what it read (so that a
// connection closed before any answer can be told apart), and stops at
// the limit of an answer's head while one is read.
type connReader struct{ c *conn }

var errHeadLimit = errors.New("h1: head limit reached")

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.headLeft <= 0 {
		return 0, errHeadLimit
	}
	if int64(len(p)) > c.headLeft {
		p = p[:c.headLeft]
	}
	n, err := c.nc.Read(p)
	c.headLeft -= int64(n)
	c.nread.Add(int64(n))
	return n, err
}

// connWriter writes to the connection and notes when that failed.
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	if err != nil {
		w.c.netWriteErr = err
	}
	return n, err
}

// ReadFrom lets the buffered writer pass a large body on in large writes
// (32 KiB, two full TLS records) instead of its own 4 KiB.
func (w connWriter) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(writeOnly{w}, r, *bp)
}

// copyBufs are the 32 KiB buffers of ReadFrom, reused across requests.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeOnly hides connWriter's ReadFrom from io.Copy.
type writeOnly struct{ w connWriter }

func (o writeOnly) Write(p []byte) (int, error) { return o.w.Write(p) }

func (c *conn) close() {
	if c.closed.CompareAndSwap(false, true) {
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		_ = c.nc.Close()
	}
}

// alive reports whether a kept-alive connection can take a request: the
// server has neither closed it nor sent anything unasked, whether those
// bytes wait in this connection's buffer, inside crypto/tls or in the
// socket.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if tc, ok := c.nc.(*tls.Conn); ok && !tlsQuiet(tc) {
		return false
	}
	return peekIdle(c.raw)
}

// tlsQuiet reports whether crypto/tls holds nothing to read: neither the
// rest of a record it has decrypted nor a record it has received but not
// yet decrypted, both of which the socket no longer shows. A read with a
// deadline in the past returns at once: with what crypto/tls holds, or
// with a timeout (which does not break the TLS connection) when nothing.
func tlsQuiet(tc *tls.Conn) bool {
	if err := tc.SetReadDeadline(aLongTimeAgo); err != nil {
		return false
	}
	var b [1]byte
	n, err := tc.Read(b[:])
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return tc.SetReadDeadline(time.Time{}) == nil
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads its answer's head. Until the answer's
// body is done, the request's context can end the exchange: when it is
// done, the connection's deadline is moved to the past.
func (c *conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	c.nread.Store(0)
	c.netWriteErr = nil
	if writesAside(req) {
		done := make(chan error, 1)
		c.writing = done
		go func() { done <- c.write(req) }()
	} else if err := c.write(req); err != nil {
		stop()
		c.close()
		return nil, c.failure(ctx, err)
	}
	resp, err := c.readResponse(ctx, req)
	if err != nil {
		stop()
		c.close()
		if werr := c.waitWrite(); werr != nil && c.netWriteErr == nil && ctx.Err() == nil {
			return nil, werr // the request's body could not be read
		}
		return nil, c.failure(ctx, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && protocolSwitch(resp.Header) {
		// The connection now belongs to the caller (a WebSocket, say):
		// the body reads and writes it, and the request's context no
		// longer bounds it.
		if werr := c.waitWrite(); werr != nil {
			stop()
			c.close()
			return nil, c.failure(ctx, werr)
		}
		stop()
		resp.Body = &upgraded{br: c.br, c: c}
		return resp, nil
	}
	c.wrapBody(ctx, resp, stop)
	return resp, nil
}

// inlineBodyBytes is the largest body of known length written in the
// calling goroutine, sparing a small call the goroutine. A body held in
// memory leaves with its head in one write to the socket, which neither
// waits for a server that does not read nor is broken by one that answered
// and closed.
const inlineBodyBytes = 2 << 10

// writesAside reports whether req's body is written by a goroutine of its
// own while the answer is read.
func writesAside(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return false
	}
	return req.ContentLength <= 0 || req.ContentLength > inlineBodyBytes
}

// write sends req. When its body could not be read, the connection is
// closed, so that the wait for an answer to a request that was never
// whole ends too.
func (c *conn) write(req *http.Request) error {
	var body *bodyReader
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 && !inMemory(req.Body) {
		body = &bodyReader{ReadCloser: req.Body}
		r := *req
		r.Body = body
		req = &r
	}
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil && c.netWriteErr == nil {
		c.close()
		if body != nil && body.err != nil {
			err = body.err
		}
	}
	return err
}

// bodyReader reads a request's body and keeps the error it failed with,
// which Request.Write passes on in a type of its own that errors.Is cannot
// see through; the caller gets the body's own error, as from net/http. A
// body held in memory is not wrapped: reading it cannot fail, and
// Request.Write sends it with its head in one write only when it sees it.
type bodyReader struct {
	io.ReadCloser
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// waitWrite waits for the goroutine writing the request, if one runs, and
// returns its error.
func (c *conn) waitWrite() error {
	if c.writing == nil {
		return nil
	}
	err := <-c.writing
	c.writing = nil
	return err
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

// maxPassedOn bounds the informational (1xx) answers passed to a request's
// trace: the reverse proxy forwards each to its client.
const maxPassedOn = 5

// readResponse reads the final answer's head, passing informational (1xx)
// ones to the request's trace, as net/http's Transport does. The heads
// read may take MaxResponseHeaderBytes in all; a 1xx head passed to the
// trace starts the count again, as in net/http, and at most maxPassedOn
// are passed on.
func (c *conn) readResponse(ctx context.Context, req *http.Request) (*http.Response, error) {
	limit := c.t.maxHeadBytes()
	c.headLeft = limit
	defer func() { c.headLeft = math.MaxInt64 }()
	trace := httptrace.ContextClientTrace(ctx)
	for passed := 0; ; {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.headLeft <= 0 {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrHeadTooLarge, limit)
			}
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if passed++; passed > maxPassedOn {
				return nil, fmt.Errorf("h1: more than %d informational (1xx) answers", maxPassedOn)
			}
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
			c.headLeft = limit
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

// release ends an exchange: the connection goes back to the pool when keep,
// the context did not end it and the whole request was written; else it is
// closed, which ends the writing of a body the server did not read.
func (c *conn) release(stop func() bool, keep bool) {
	if c.writing != nil && keep {
		// The answer is whole. A request still being written was
		// answered before the server read all of it: a write deadline in
		// the past makes its next write fail, so the connection is not
		// kept. One whose last write is done only has to report it.
		_ = c.nc.SetWriteDeadline(aLongTimeAgo)
		keep = c.waitWrite() == nil && c.nc.SetWriteDeadline(time.Time{}) == nil
	}
	if stop() && keep {
		c.t.putIdle(c)
		return
	}
	c.close()
	_ = c.waitWrite()
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

// protocolSwitch reports whether a 101 answer's header switches protocols
// (Upgrade set, Connection naming it), as net/http's Transport decides: a
// 101 without them is an answer without a body, like any other 1xx.
func protocolSwitch(h http.Header) bool {
	return h.Get("Upgrade") != "" && httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
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

var (
	nopCloserType         = reflect.TypeOf(io.NopCloser(nil))
	nopCloserWriterToType = reflect.TypeOf(io.NopCloser(struct {
		io.Reader
		io.WriterTo
	}{}))
)

// inMemory reports whether Request.Write treats a body as held in memory:
// a bytes.Reader, bytes.Buffer or strings.Reader, bare or in io.NopCloser
// (the test net/http makes, by the same means).
func inMemory(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	}
	if t := reflect.TypeOf(r); t == nopCloserType || t == nopCloserWriterToType {
		inner, _ := reflect.ValueOf(r).Field(0).Interface().(io.Reader)
		return inner != nil && inMemory(inner)
	}
	return false
}
