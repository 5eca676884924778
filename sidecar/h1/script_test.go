package h1

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptServer is a TCP server, plain or TLS, that reads requests and
// answers each with bytes a script writes, so that framing no real server
// would produce can be sent to a client.
type scriptServer struct {
	URL   string
	ln    net.Listener
	tls   *tls.Config // nil: plain HTTP
	serve serveFunc
	n     atomic.Int64 // requests read, over all connections
	conns atomic.Int64 // connections accepted
	stop  chan struct{}
	wg    sync.WaitGroup
	// idle, when set, closes a connection that has been answered and
	// brings no next request within it, as a server's keep-alive timeout
	// does (so that an answer delimited by the connection's end ends).
	idle time.Duration
}

// serveFunc answers the n-th request the server read (from 0, over all
// connections); it returns false to close the connection.
type serveFunc func(n int, c *scriptConn, req *http.Request) bool

// scriptConn is one accepted connection. Writes are held until Flush (or
// the next read) and then sent in one write to the socket, so that two TLS
// records written one after the other reach the client together.
type scriptConn struct {
	net.Conn // what the script writes to (TLS over held, or held)
	br       *bufio.Reader
	held     *heldConn
	stop     <-chan struct{} // closed when the test ends
}

// Flush sends what was written since the last flush.
func (c *scriptConn) Flush() error { return c.held.flush() }

type heldConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (h *heldConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf = append(h.buf, p...)
	return len(p), nil
}

func (h *heldConn) Read(p []byte) (int, error) {
	if err := h.flush(); err != nil {
		return 0, err
	}
	return h.Conn.Read(p)
}

func (h *heldConn) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.buf) == 0 {
		return nil
	}
	_, err := h.Conn.Write(h.buf)
	h.buf = h.buf[:0]
	return err
}

// testTLS is a server configuration and the roots that trust it.
var testTLS = sync.OnceValues(func() (*tls.Config, *x509.CertPool) {
	s := httptest.NewUnstartedServer(http.NotFoundHandler())
	s.StartTLS()
	defer s.Close()
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	cfg := &tls.Config{Certificates: s.TLS.Certificates, NextProtos: []string{"http/1.1"}}
	return cfg, roots
})

func newScriptServer(tb testing.TB, useTLS bool, serve serveFunc) *scriptServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &scriptServer{ln: ln, serve: serve, stop: make(chan struct{}), URL: "http://" + ln.Addr().String()}
	if useTLS {
		s.tls, _ = testTLS()
		s.URL = "https://" + ln.Addr().String()
	}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server and waits for its connections to end.
func (s *scriptServer) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *scriptServer) accept() {
	defer s.wg.Done()
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	go func() {
		<-s.stop
		mu.Lock()
		defer mu.Unlock()
		for c := range open {
			_ = c.Close()
		}
	}()
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		mu.Lock()
		open[raw] = true
		mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				mu.Lock()
				delete(open, raw)
				mu.Unlock()
				_ = raw.Close()
			}()
			s.handle(raw)
		}()
	}
}

func (s *scriptServer) handle(raw net.Conn) {
	held := &heldConn{Conn: raw}
	var nc net.Conn = held
	if s.tls != nil {
		tc := tls.Server(held, s.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		nc = tc
	}
	c := &scriptConn{Conn: nc, br: bufio.NewReader(nc), held: held, stop: s.stop}
	defer func() { _ = c.Flush() }()
	for answered := false; ; answered = true {
		if answered && s.idle > 0 {
			_ = raw.SetReadDeadline(time.Now().Add(s.idle))
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			return
		}
		n := int(s.n.Add(1) - 1)
		if !s.serve(n, c, req) {
			return
		}
		if err := c.Flush(); err != nil {
			return
		}
	}
}
