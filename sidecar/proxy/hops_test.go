package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
)

// relay is a proxy between a sidecar and itself: it passes requests on to
// target, at most limit of them (then it answers 500 itself), and counts
// them.
type relay struct {
	calls  atomic.Int32
	target atomic.Pointer[url.URL]
	srv    *httptest.Server
}

func newRelay(t *testing.T, limit int32) *relay {
	r := &relay{}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(r.target.Load())
		pr.Out.Header["X-Forwarded-For"] = nil
	}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.calls.Add(1) > limit {
			http.Error(w, "relay: too many calls", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// An upstream whose URL leads back to the sidecar's own /call/ path (here
// through another proxy) is refused on its second pass with 508, before
// the sidecar dials anything again.
func TestCallLoopIsRefusedOnItsSecondPass(t *testing.T) {
	rl := newRelay(t, 20)
	s, e := callProxy(t, map[string]policies.Upstream{
		"self": {URL: rl.srv.URL + "/call/self"},
	}, &sidecartest.Discovery{}, time.Minute)
	target, _ := url.Parse("http://" + s.Addr())
	rl.target.Store(target)

	r := e.GET("/call/self/x").Expect().Status(http.StatusLoopDetected)
	msg := r.JSON().Object().Value("error").Object()
	msg.Value("type").IsEqual(errLoop)
	msg.Value("message").String().Contains("already passed through this sidecar")
	if got := rl.calls.Load(); got != 1 {
		t.Fatalf("the loop went round %d times, want 1", got)
	}
}

// headerRecorder is an upstream that keeps the headers of the last request.
func headerRecorder(t *testing.T) (*httptest.Server, func() http.Header, *atomic.Int32) {
	var (
		mu    sync.Mutex
		last  http.Header
		calls atomic.Int32
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		mu.Lock()
		last = r.Header.Clone()
		mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv, func() http.Header { mu.Lock(); defer mu.Unlock(); return last }, &calls
}

func TestCallMarksItsHopAndDropsForwarded(t *testing.T) {
	up, last, calls := headerRecorder(t)
	_, e := callProxy(t, map[string]policies.Upstream{"up": {URL: up.URL}}, &sidecartest.Discovery{}, time.Minute)

	// A call that passed through another sidecar keeps its path and gains this hop
	e.GET("/call/up/x").WithHeader(HeaderForwarded, "writer-9").WithHeader(HeaderHops, "other#0a0b0c0d").
		Expect().Status(http.StatusOK)
	h := last()
	if v := h.Get(HeaderForwarded); v != "" {
		t.Errorf("the upstream received %s: %q", HeaderForwarded, v)
	}
	hops := strings.Split(h.Get(HeaderHops), ", ")
	if len(hops) != 2 || hops[0] != "other#0a0b0c0d" || !strings.HasPrefix(hops[1], "writer-1#") {
		t.Errorf("the upstream received %s: %q", HeaderHops, h.Get(HeaderHops))
	}

	// A call that has passed through as many sidecars as a call may is refused without a dial
	before := calls.Load()
	eight := strings.Repeat("a#00000000, ", maxHops-1) + "b#00000000"
	e.GET("/call/up/x").WithHeader(HeaderHops, eight).Expect().Status(http.StatusLoopDetected).
		JSON().Object().Value("error").Object().Value("message").String().Contains("passed through 8 sidecars")
	if calls.Load() != before {
		t.Fatal("the upstream was called")
	}
	// One fewer passes
	e.GET("/call/up/x").WithHeader(HeaderHops, strings.Repeat("a#00000000, ", maxHops-2)+"b#00000000").
		Expect().Status(http.StatusOK)
}

// The plain case: a static upstream whose url is the sidecar's own /call/
// path. One call costs one refused pass, not a connection per pass.
func TestCallToItselfIsRefusedOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := testConfig()
	cfg.Listen.Address = addr
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"self": {Name: "self", URL: "http://" + addr + "/call/self",
		Breaker: "default", Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	p := New(cfg, Options{Discovery: &sidecartest.Discovery{}})
	rt := NewTransport(nil)
	defer rt.CloseIdleConnections()
	p.opts.Transport = rt
	p.rp.Transport.(*callTransport).rt = rt
	srv := httptest.NewUnstartedServer(http.HandlerFunc(p.ServeCall))
	_ = srv.Listener.Close()
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Close()
	e := sidecartest.NewExpect(t, srv.URL)

	r := e.GET("/call/self/x").Expect().Status(http.StatusLoopDetected)
	r.JSON().Object().Value("error").Object().Value("type").IsEqual(errLoop)
	// The proxy still answers
	e.GET("/call/self/y").Expect().Status(http.StatusLoopDetected)
}

func TestHopNamesKeepAgentIDsWhole(t *testing.T) {
	for _, id := range []string{"writer-1", "writer,1", "w%2C1", "a#b"} {
		t.Run(id, func(t *testing.T) {
			r := &router{hopNonce: "0a0b0c0d"}
			self := r.hopName(id)
			h := http.Header{}
			h.Set(HeaderHops, "other#01020304, "+self)
			p := readHops(h)
			if len(p.entries) != 2 || p.entries[1] != self {
				t.Fatalf("entries %q, want [other#01020304 %s]", p.entries, self)
			}
			if !p.ids[id] || !p.ids["other"] || len(p.ids) != 2 {
				t.Fatalf("ids %v, want other and %q", p.ids, id)
			}
		})
	}
}
