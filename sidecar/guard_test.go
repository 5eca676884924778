package sidecar

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
)

// guardedConfig is a sidecar with an upstream "up" and a model "m", both
// served by up.
func guardedConfig(up *scripted) *policies.Config {
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": testBreaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: up.srv.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	cfg.Models = map[string]policies.Model{"m": {Label: "m", Name: "m", Provider: policies.ProviderOpenAI, BaseURL: up.srv.URL,
		Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: 5 * time.Second, StreamIdleTimeout: 5 * time.Second}}
	return cfg
}

func TestControlAnswersOnlyToItsOwnHostNames(t *testing.T) {
	up := newScripted(t, "up", http.StatusOK)
	s, _, e := startSidecar(t, guardedConfig(up), Options{Discovery: &fakeDiscovery{}})
	_, port, _ := net.SplitHostPort(s.Addr())

	// A name that is not the sidecar's (a page's own name, rebound to this
	// host) is refused before anything runs, with what to set
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.evil.example", "10.9.8.7:" + port} {
		e.GET("/v1/status").WithHost(host).Expect().Status(http.StatusMisdirectedRequest).
			JSON().Object().Value("error").Object().
			HasValue("type", errMisdirected).Value("message").String().Contains("listen.allowed_hosts")
		e.POST("/llm/v1/chat/completions").WithHost(host).WithHeader("Content-Type", "application/json").
			WithBytes([]byte(`{"model":"m"}`)).Expect().Status(http.StatusMisdirectedRequest)
		e.GET("/call/up/x").WithHost(host).Expect().Status(http.StatusMisdirectedRequest)
	}
	if up.calls.Load() != 0 {
		t.Fatalf("refused requests reached the upstream %d times", up.calls.Load())
	}
	// The bound address and the loopback names pass, with or without a port
	for _, host := range []string{s.Addr(), "127.0.0.1", "localhost", "localhost:" + port, "LOCALHOST.", "[::1]:" + port, "[::1]"} {
		e.GET("/v1/health").WithHost(host).Expect().Status(http.StatusOK)
	}
}

func TestControlAnswersToAllowedHostsWhenRemote(t *testing.T) {
	cfg := testConfig()
	cfg.Listen.AllowRemote, cfg.Listen.Token = true, plantedToken
	cfg.Listen.AllowedHosts = []string{"sidecar.internal"}
	_, _, e := startSidecar(t, cfg, Options{})
	e.GET("/v1/status").WithHost("sidecar.internal:7070").WithHeader(headerToken, plantedToken).
		Expect().Status(http.StatusOK)
	e.GET("/v1/status").WithHost("other.internal").WithHeader(headerToken, plantedToken).
		Expect().Status(http.StatusMisdirectedRequest)
}

func TestControlRefusesWebPages(t *testing.T) {
	up := newScripted(t, "up", http.StatusOK)
	s, _, e := startSidecar(t, guardedConfig(up), Options{Discovery: &fakeDiscovery{}})

	// A request a web page made, by its Origin or its Sec-Fetch-Site, is
	// refused: reading status, heartbeating, spending the model key, calling
	for _, h := range [][2]string{{"Origin", "https://evil.example"}, {"Origin", "null"},
		{"Origin", "http://" + s.Addr()}, {"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}} {
		e.GET("/v1/status").WithHeader(h[0], h[1]).Expect().Status(http.StatusForbidden).
			JSON().Object().Value("error").Object().HasValue("type", errForbidden)
		e.POST("/v1/heartbeat").WithHeader(h[0], h[1]).Expect().Status(http.StatusForbidden)
		e.POST("/llm/v1/chat/completions").WithHeader(h[0], h[1]).WithHeader("Content-Type", "application/json").
			WithBytes([]byte(`{"model":"m"}`)).Expect().Status(http.StatusForbidden)
		e.POST("/call/up/x").WithHeader(h[0], h[1]).WithText("x").Expect().Status(http.StatusForbidden)
	}
	if up.calls.Load() != 0 {
		t.Fatalf("web pages reached the upstream %d times", up.calls.Load())
	}
	if got := s.tracker.Snapshot().Heartbeats; got != 0 {
		t.Fatalf("web pages recorded %d heartbeats", got)
	}
	// An address typed by a person, or the sidecar's own origin, passes
	e.GET("/v1/status").WithHeader("Sec-Fetch-Site", "none").Expect().Status(http.StatusOK)
	e.GET("/v1/status").WithHeader("Sec-Fetch-Site", "same-origin").Expect().Status(http.StatusOK)
}

func TestJSONEndpointsTakeOnlyJSON(t *testing.T) {
	up := newScripted(t, "up", http.StatusOK)
	s, _, e := startSidecar(t, guardedConfig(up), Options{Discovery: &fakeDiscovery{}})
	chat := []byte(`{"model":"m","messages":[]}`)

	// The bodies a page can send without asking (text/plain, a form) are
	// refused on the gateway and the heartbeat, and change nothing
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/jsonx", "json"} {
		req := e.POST("/llm/v1/chat/completions").WithBytes(chat)
		hb := e.POST("/v1/heartbeat").WithBytes([]byte(`{"status":"ok"}`))
		if ct != "" {
			req, hb = req.WithHeader("Content-Type", ct), hb.WithHeader("Content-Type", ct)
		}
		req.Expect().Status(http.StatusUnsupportedMediaType).JSON().Object().Value("error").Object().
			HasValue("type", errUnsupportedMedia).Value("message").String().Contains("application/json")
		hb.Expect().Status(http.StatusUnsupportedMediaType)
	}
	if up.calls.Load() != 0 || s.tracker.Snapshot().Heartbeats != 0 {
		t.Fatalf("refused bodies reached the model %d times and recorded %d heartbeats",
			up.calls.Load(), s.tracker.Snapshot().Heartbeats)
	}

	// JSON in any spelling passes; so does a POST without a body, and
	// /call/ passes bodies of any type on
	for _, ct := range []string{"application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"} {
		e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", ct).WithBytes(chat).Expect().Status(http.StatusOK)
		e.POST("/v1/heartbeat").WithHeader("Content-Type", ct).WithBytes([]byte(`{"status":"ok"}`)).
			Expect().Status(http.StatusOK)
	}
	e.POST("/v1/heartbeat").Expect().Status(http.StatusOK)
	e.POST("/call/up/x").WithHeader("Content-Type", "text/plain").WithText("plain").Expect().Status(http.StatusOK)
	if up.calls.Load() != 4 || s.tracker.Snapshot().Heartbeats != 4 {
		t.Fatalf("got %d upstream calls and %d heartbeats, want 4 and 4", up.calls.Load(), s.tracker.Snapshot().Heartbeats)
	}
}

// startIngress runs a sidecar with an ingress in front of agent, whose
// peers are those d lists (none when nil).
func startIngress(t *testing.T, agent *scripted, edit func(*policies.Config), d ...*fakeDiscovery) (*Sidecar, string) {
	t.Helper()
	cfg := guardedConfig(agent)
	cfg.Agent.Port = portOf(t, agent)
	cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 5 * time.Second,
		MaxConnections: 100, BodyReadTimeout: time.Minute}
	if edit != nil {
		edit(cfg)
	}
	fd := &fakeDiscovery{}
	if len(d) > 0 {
		fd = d[0]
	}
	s, _, _ := startSidecar(t, cfg, Options{Discovery: fd})
	return s, "http://" + s.IngressAddr()
}

func TestIngressTokenIsRequiredAndNotPassedOn(t *testing.T) {
	const ingressToken = "ingress-token-0123456789"
	agent := newScripted(t, "agent", http.StatusOK)
	var seen strings.Builder
	inner := agent.srv.Config.Handler
	agent.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.WriteString(r.Header.Get(HeaderIngressToken) + "|") // one call at a time
		inner.ServeHTTP(w, r)
	})
	s, base := startIngress(t, agent, func(cfg *policies.Config) { cfg.Ingress.Token = ingressToken })
	e := newExpect(t, base)
	// The token is never shown: not in the status, nor in an error
	if st := newExpect(t, "http://"+s.Addr()).GET("/v1/status").Expect().Status(http.StatusOK).Body().Raw(); strings.Contains(st, ingressToken) {
		t.Errorf("the status shows the ingress token")
	}

	// Without the token, or with another: 401, and the agent is not called
	e.POST("/task").WithText("do it").Expect().Status(http.StatusUnauthorized).
		JSON().Object().Value("error").Object().Value("message").String().Contains(HeaderIngressToken).NotContains(ingressToken)
	e.POST("/task").WithHeader(HeaderIngressToken, "ingress-token-9999999999").WithText("do it").
		Expect().Status(http.StatusUnauthorized).Body().NotContains(ingressToken)
	e.POST("/task").WithHeader(headerToken, ingressToken).WithText("do it").Expect().Status(http.StatusUnauthorized)
	if agent.calls.Load() != 0 {
		t.Fatalf("the agent got %d tasks without the token", agent.calls.Load())
	}
	// With it: the task reaches the agent, without the token
	e.POST("/task").WithHeader(HeaderIngressToken, ingressToken).WithText("do it").Expect().Status(http.StatusOK)
	if agent.calls.Load() != 1 || strings.Contains(seen.String(), ingressToken) {
		t.Fatalf("the agent got %d tasks, token headers %q", agent.calls.Load(), seen.String())
	}
	// Web pages are refused, token or not
	e.POST("/task").WithHeader(HeaderIngressToken, ingressToken).WithHeader("Origin", "https://evil.example").
		WithText("do it").Expect().Status(http.StatusForbidden)
	if agent.calls.Load() != 1 {
		t.Fatalf("a web page's task reached the agent")
	}
}

// A sidecar that hands a task to a peer's ingress sends the fleet's
// ingress token, which the peer takes and does not pass on.
func TestPeersSendTheIngressToken(t *testing.T) {
	const fleetToken = "fleet-ingress-token-0123"
	withToken := func(cfg *policies.Config) { cfg.Ingress.Token = fleetToken }
	agentB := newScripted(t, "agent-b", http.StatusOK)
	var seen strings.Builder
	inner := agentB.srv.Config.Handler
	agentB.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.WriteString(r.Header.Get(HeaderIngressToken) + "|")
		inner.ServeHTTP(w, r)
	})
	sb, _ := startIngress(t, agentB, func(cfg *policies.Config) { withToken(cfg); cfg.Agent.ID = "writer-2" })
	host, port, _ := net.SplitHostPort(sb.IngressAddr())
	p, _ := strconv.Atoi(port)
	peers := &fakeDiscovery{}
	peers.set("writer", discovery.Instance{ID: "writer-2", Service: "writer", Address: host, Port: p,
		Meta: map[string]string{policies.MetaAgentPort: "8081"}})

	// Given a sidecar whose own agent is down (its port closed)
	down := newScripted(t, "agent-a", http.StatusOK)
	down.srv.Close()
	_, baseA := startIngress(t, down, withToken, peers)

	// When a task comes in, then the peer's agent answers it
	newExpect(t, baseA).POST("/task").WithHeader(HeaderIngressToken, fleetToken).WithText("t").
		Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("agent-b")
	if agentB.calls.Load() != 1 || strings.Contains(seen.String(), fleetToken) {
		t.Fatalf("agent b got %d tasks, token headers %q", agentB.calls.Load(), seen.String())
	}
}

// rawRequest opens a connection to addr and sends head; the body, if any,
// is left to the caller.
func rawRequest(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// Clients that declare a large body and send nothing are answered and
// disconnected once the body read timeout has passed, on the control
// listener and the ingress alike, and hold no buffer of the declared size
// while they wait.
func TestSlowBodiesAreCutAndHoldNoMemory(t *testing.T) {
	agent := newScripted(t, "agent", http.StatusOK)
	s, _ := startIngress(t, agent, func(cfg *policies.Config) {
		cfg.Listen.BodyReadTimeout, cfg.Ingress.BodyReadTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	const perPath = 10
	targets := []struct{ addr, path string }{
		{s.Addr(), "/llm/v1/chat/completions"}, // read whole, up to 10 MiB
		{s.Addr(), "/call/up/x"},               // kept for retries, up to 2 MiB
		{s.IngressAddr(), "/task"},             // kept for retries, up to 2 MiB
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for _, tg := range targets {
		declared := 2 << 20
		if strings.HasPrefix(tg.path, "/llm/") {
			declared = 10 << 20
		}
		for range perPath {
			conns = append(conns, rawRequest(t, tg.addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", tg.path, declared)))
		}
	}
	for i, c := range conns {
		// The sidecar answers and closes; a connection still open after
		// this bound was never cut.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(bufio.NewReader(c))
		if err != nil {
			t.Fatalf("connection %d (%s) was not closed: %v", i, targets[i/perPath].path, err)
		}
		if !strings.Contains(string(got), "did not arrive within 300ms") {
			t.Errorf("connection %d (%s): got %q, want the body timeout named", i, targets[i/perPath].path, got)
		}
	}
	runtime.ReadMemStats(&after)
	// Before buffers grew with the bytes, these 30 connections cost their
	// declared sizes: 10×16 MiB + 20×2 MiB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("%d slow clients cost %d MiB of allocations, want well under their declared sizes", len(conns), got>>20)
	}
	if agent.calls.Load() != 0 {
		t.Errorf("the agent got %d tasks from clients that never sent them", agent.calls.Load())
	}
}

// Past listen.max_connections a new connection waits to be accepted until
// one closes; the connections already open are served meanwhile.
func TestControlListenerCapsConnections(t *testing.T) {
	cfg := testConfig()
	cfg.Listen.MaxConnections = 2
	s, _, _ := startSidecar(t, cfg, Options{})
	health := "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	readAnswer := func(c net.Conn, r *bufio.Reader) error {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	// Two connections, kept alive, fill the cap
	var held []net.Conn
	for range 2 {
		c := rawRequest(t, s.Addr(), health)
		if err := readAnswer(c, bufio.NewReader(c)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A third is not served while they are open...
	third := rawRequest(t, s.Addr(), health)
	answered := make(chan error, 1)
	go func() { answered <- readAnswer(third, bufio.NewReader(third)) }()
	select {
	case err := <-answered:
		t.Fatalf("a third connection was served past max_connections = 2 (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	// ...and is once one of them closes
	_ = held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("the waiting connection was not served once another closed: %v", err)
	}
}

// A heartbeat whose body does not arrive in time gets 408, and counts for
// nothing.
func TestSlowHeartbeatGets408(t *testing.T) {
	cfg := testConfig()
	cfg.Listen.BodyReadTimeout = 200 * time.Millisecond
	s, _, _ := startSidecar(t, cfg, Options{})
	c := rawRequest(t, s.Addr(), "POST /v1/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "listen.body_read_timeout") {
		t.Fatalf("got %s %s, want 408 naming listen.body_read_timeout", resp.Status, body)
	}
	if n := s.tracker.Snapshot().Heartbeats; n != 0 {
		t.Fatalf("%d heartbeats recorded", n)
	}
}

// The body read timeout bounds the body, not the answer: a model stream and
// a slow upstream answer that last well past it reach the client whole.
func TestAnswersOutliveTheBodyReadTimeout(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 4 {
			fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"}}]}\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(model.Close)
	up := newScripted(t, "up", http.StatusOK)
	up.delay.Store(int64(500 * time.Millisecond))
	cfg := guardedConfig(up)
	m := cfg.Models["m"]
	m.BaseURL = model.URL
	cfg.Models["m"] = m
	cfg.Listen.BodyReadTimeout = 100 * time.Millisecond
	_, _, e := startSidecar(t, cfg, Options{Discovery: &fakeDiscovery{}})

	stream := e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").
		WithBytes([]byte(`{"model":"m","stream":true,"messages":[]}`)).Expect().Status(http.StatusOK).Body().Raw()
	if !strings.Contains(stream, "w3 ") || !strings.Contains(stream, "[DONE]") {
		t.Fatalf("the stream was cut: %q", stream)
	}
	e.POST("/call/up/x").WithText("a task").Expect().Status(http.StatusOK).Body().Contains(`"from":"up"`)
}

// The listeners' limits are fixed when they open: a reload that changes
// them keeps the running values and says a restart is needed; the ingress
// token and body timeout apply at once.
func TestReloadKeepsListenerLimits(t *testing.T) {
	prev := testConfig()
	prev.Ingress = &policies.Ingress{Address: "127.0.0.1:7080", MaxConnections: 100, BodyReadTimeout: time.Minute}
	next := testConfig()
	next.Listen.MaxConnections, next.Listen.AllowedHosts = 10, []string{"x.internal"}
	next.Ingress = &policies.Ingress{Address: "127.0.0.1:7080", MaxConnections: 10, BodyReadTimeout: time.Second,
		Token: "ingress-token-0123456789"}
	got, restart := mergeReload(prev, next)
	if strings.Join(restart, ",") != "listen,ingress.max_connections" {
		t.Fatalf("restart required for %v", restart)
	}
	if got.Listen.MaxConnections != prev.Listen.MaxConnections || got.Listen.AllowedHosts != nil ||
		got.Ingress.MaxConnections != 100 || got.Ingress.BodyReadTimeout != time.Second || got.Ingress.Token != next.Ingress.Token {
		t.Fatalf("merged %+v %+v", got.Listen, *got.Ingress)
	}
}
