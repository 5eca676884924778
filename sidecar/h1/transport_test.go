package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithoutLeaks(m) }

// server is an httptest server that counts the connections it accepted.
type server struct {
	*httptest.Server
	conns, closed atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTransport(t *testing.T) *Transport {
	t.Helper()
	tr := &Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func do(t *testing.T, tr http.RoundTripper, method, u, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return resp, string(b)
}

func TestKeepsConnectionsAlive(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
	tr := newTransport(t)
	for i := range 20 {
		method, body := http.MethodGet, ""
		if i%2 == 1 {
			method, body = http.MethodPost, fmt.Sprintf("body-%d", i)
		}
		resp, got := do(t, tr, method, s.URL+"/x", body)
		if want := fmt.Sprintf("%s /x %s", method, body); resp.StatusCode != 200 || got != want {
			t.Fatalf("answer %d: %d %q, want 200 %q", i, resp.StatusCode, got, want)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("20 sequential requests opened %d connections, want 1 kept alive", n)
	}
	if n := tr.idleCount(); n != 1 {
		t.Errorf("%d idle connections after the requests, want 1", n)
	}
}

func TestChunkedAnswerWithTrailers(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "3")
	})
	tr := newTransport(t)
	resp, got := do(t, tr, http.MethodGet, s.URL, "")
	if got != "part0;part1;part2;" || resp.Trailer.Get("X-Sum") != "3" {
		t.Fatalf("body %q trailer %v", got, resp.Trailer)
	}
	do(t, tr, http.MethodGet, s.URL, "")
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections, want the chunked answer's connection reused", n)
	}
}

func TestBodyClosedEarlyClosesTheConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 64<<10)))
	})
	tr := newTransport(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Error("read after Close succeeded")
	}
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("a connection with an unread answer went back to the pool (%d idle)", n)
	}
	// The next request gets a fresh connection and a whole answer.
	if _, got := do(t, tr, http.MethodGet, s.URL, ""); len(got) != 64<<10 {
		t.Fatalf("second answer: %d bytes", len(got))
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A kept-alive connection the server closed is noticed before it is used
// (by peeking at the socket), so even a POST without an idempotency key
// goes through.
func TestServerClosedIdleConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	tr := newTransport(t)
	do(t, tr, http.MethodGet, s.URL, "")
	s.CloseClientConnections() // the server drops the idle connection
	testutil.Eventually(t, "the server to close the connection", 5*time.Second, func() bool { return s.closed.Load() == 1 })
	time.Sleep(10 * time.Millisecond) // its FIN to reach the client's socket
	if _, got := do(t, tr, http.MethodPost, s.URL, "payload"); got != "payload" {
		t.Fatalf("POST after the server closed the idle connection: %q", got)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// When the server closes a kept-alive connection in the moment the request
// is sent, an idempotent request is sent again on a new connection and a
// non-idempotent one fails with ErrServerClosedIdle.
func TestServerClosedWhileSending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if n == 1 && i == 1 {
						return // the first connection dies on its second request, unanswered
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	u := "http://" + ln.Addr().String()

	tr := newTransport(t)
	do(t, tr, http.MethodGet, u, "")
	if _, got := do(t, tr, http.MethodGet, u, ""); got != "ok" {
		t.Fatalf("GET on a connection closed unanswered: %q", got)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want the GET sent again on a second one", n)
	}

	accepted.Store(0)
	tr2 := newTransport(t)
	do(t, tr2, http.MethodGet, u, "")
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("once"))
	_, err = tr2.RoundTrip(req)
	if !errors.Is(err, ErrServerClosedIdle) {
		t.Fatalf("POST on a connection closed unanswered: %v, want ErrServerClosedIdle", err)
	}
	req, _ = http.NewRequest(http.MethodPost, u, strings.NewReader("once"))
	req.Header.Set("Idempotency-Key", "k1")
	accepted.Store(0)
	tr3 := newTransport(t)
	do(t, tr3, http.MethodGet, u, "")
	resp, err := tr3.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST with an Idempotency-Key: %v, want it sent again", err)
	}
	_ = resp.Body.Close()
}

func TestContextEndsTheExchange(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			_, _ = w.Write([]byte("first;"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	tr := newTransport(t)

	// No answer within the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/hang", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %s", d)
	}

	// Canceled in the middle of a streamed body.
	ctx2, cancel2 := context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx2, http.MethodGet, s.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first;" {
		t.Fatalf("first event %q %v", buf, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel2)
	_, err = resp.Body.Read(buf)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	_ = resp.Body.Close()
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections, want none (both exchanges were cut)", n)
	}
}

func TestDialErrorIsADialOpError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	_, err := newTransport(t).RoundTrip(req)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("err = %v, want a dial *net.OpError", err)
	}
}

func TestInformationalAnswers(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "final")
	})
	var got []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, code)
			if h.Get("Link") == "" {
				t.Error("103 without its Link header")
			}
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	resp, err := newTransport(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "final" || len(got) != 1 || got[0] != 103 {
		t.Fatalf("status %d body %q 1xx %v", resp.StatusCode, b, got)
	}
}

// A server that answers before reading a large body (413) and closes: the
// answer reaches the caller instead of a broken-pipe error.
func TestEarlyAnswerToALargeBody(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, "too large")
	})
	big := strings.Repeat("x", 32<<20)
	req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(big))
	resp, err := newTransport(t).RoundTrip(req)
	if err != nil {
		t.Fatalf("err = %v, want the 413", err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too large" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

func TestTLS(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure")
	}))
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())

	tr := newTransport(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a certificate the roots do not know was accepted")
	}
	tr.TLSClientConfig = s.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tr.TLSClientConfig.RootCAs = pool
	for range 3 {
		if _, got := do(t, tr, http.MethodGet, s.URL, ""); got != "secure" {
			t.Fatalf("got %q", got)
		}
	}
	if n := tr.idleCount(); n != 1 {
		t.Errorf("%d idle TLS connections, want 1 reused", n)
	}
}

func TestIdleTimeoutClosesConnections(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := &Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 50 * time.Millisecond}
	defer tr.CloseIdleConnections()
	do(t, tr, http.MethodGet, s.URL, "")
	testutil.Eventually(t, "the idle connection to be closed after IdleConnTimeout", 5*time.Second, func() bool { return s.closed.Load() == 1 })
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections after the timeout", n)
	}
}

func TestPoolLimits(t *testing.T) {
	block := make(chan struct{})
	var inflight sync.WaitGroup
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		inflight.Done()
		<-block
		_, _ = io.WriteString(w, "ok")
	})
	tr := &Transport{MaxIdleConnsPerHost: 2}
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	inflight.Add(5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
	}
	inflight.Wait()
	close(block)
	wg.Wait()
	if n := tr.idleCount(); n != 2 {
		t.Errorf("%d idle connections after 5 concurrent requests, want MaxIdleConnsPerHost = 2", n)
	}
}

// A 101 answer hands the connection to the caller, as the reverse proxy
// needs for WebSocket upgrades.
func TestUpgradeThroughReverseProxy(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		line, _ := brw.ReadString('\n')
		_, _ = io.WriteString(c, "echo: "+line)
	})
	target, _ := url.Parse(s.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = newTransport(t)
	front := httptest.NewServer(rp)
	defer front.Close()

	c, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = io.WriteString(c, "hello\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("through the upgraded connection: %q %v", line, err)
	}
}

func TestBadRequests(t *testing.T) {
	tr := newTransport(t)
	for _, u := range []string{"ftp://example.com/", "http:///path"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Errorf("%s: no error", u)
		}
	}
}

// idleCount is the number of kept-alive connections.
func (t *Transport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nidle
}

// Bodies Request.Write sends with their head in one write are those it
// holds to be in memory; h1 must not hide them behind a wrapper.
func TestInMemoryBodies(t *testing.T) {
	for _, c := range []struct {
		name string
		r    io.Reader
		want bool
	}{
		{"bytes.Reader", bytes.NewReader(nil), true},
		{"NopCloser(bytes.Reader)", io.NopCloser(bytes.NewReader(nil)), true},
		{"NopCloser(strings.Reader)", io.NopCloser(strings.NewReader("")), true},
		{"NopCloser(bytes.Buffer)", io.NopCloser(new(bytes.Buffer)), true},
		{"NopCloser(pipe)", io.NopCloser(&io.PipeReader{}), false},
		{"NopCloser(nil)", io.NopCloser(nil), false},
		{"pipe", &io.PipeReader{}, false},
	} {
		if got := inMemory(c.r); got != c.want {
			t.Errorf("%s: inMemory = %v, want %v", c.name, got, c.want)
		}
	}
}

// Informational answers passed on to a trace (the reverse proxy forwards
// each to its client) are bounded in number: an upstream sending them
// without end fails after maxPassedOn instead of at the call's timeout.
func TestEndlessInformationalAnswers(t *testing.T) {
	s := newScriptServer(t, false, func(_ int, c *scriptConn, _ *http.Request) bool {
		for range 1000 {
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"); err != nil {
				return false
			}
		}
		_, _ = io.WriteString(c, answer("final"))
		return false
	})
	var passed int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { passed++; return nil },
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	resp, err := newTransport(t).RoundTrip(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("%s after %d informational answers passed on, want an error", resp.Status, passed)
	}
	if passed != maxPassedOn {
		t.Errorf("%d informational answers passed on, want %d", passed, maxPassedOn)
	}
}
