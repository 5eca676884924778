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

	"github.com/gavv/httpexpect/v2"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/guard"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
)

// guardedConfig is a sidecar with an upstream "up" and a model "m", both
// served by up.
func guardedConfig(up *sidecartest.Upstream) *policies.Config {
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: up.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	cfg.Models = map[string]policies.Model{"m": {Label: "m", Name: "m", Provider: policies.ProviderOpenAI, BaseURL: up.URL,
		Breaker: "default", Timeout: 5 * time.Second, FirstByteTimeout: 5 * time.Second, StreamIdleTimeout: 5 * time.Second}}
	return cfg
}

// The guards stand in front of every endpoint of the control listener
// (their cases: package guard): a request to another host name or from a
// web page, or a gateway or heartbeat body not declared as JSON, reaches
// neither the upstream, the model nor the heartbeat tracker.
func TestControlGuardsEveryEndpoint(t *testing.T) {
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	s, _, e := startSidecar(t, guardedConfig(up), Options{Discovery: &sidecartest.Discovery{}})
	chat := []byte(`{"model":"m","messages":[]}`)

	// Another host name, then a web page
	for _, req := range []func(*httpexpect.Request) *httpexpect.Request{
		func(r *httpexpect.Request) *httpexpect.Request { return r.WithHost("evil.example") },
		func(r *httpexpect.Request) *httpexpect.Request { return r.WithHeader("Origin", "https://evil.example") },
	} {
		for _, r := range []*httpexpect.Request{e.GET("/v1/status"), e.GET("/call/up/x"), e.POST("/v1/heartbeat"),
			e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").WithBytes(chat)} {
			code := req(r).Expect().Raw().StatusCode
			if code != http.StatusMisdirectedRequest && code != http.StatusForbidden {
				t.Errorf("got %d, want 421 or 403", code)
			}
		}
	}
	// A body a page can send without asking
	e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "text/plain").WithBytes(chat).
		Expect().Status(http.StatusUnsupportedMediaType)
	e.POST("/v1/heartbeat").WithHeader("Content-Type", "text/plain").WithBytes([]byte(`{"status":"ok"}`)).
		Expect().Status(http.StatusUnsupportedMediaType)
	if up.Calls.Load() != 0 || s.tracker.Snapshot().Heartbeats != 0 {
		t.Fatalf("refused requests reached the upstream %d times and recorded %d heartbeats",
			up.Calls.Load(), s.tracker.Snapshot().Heartbeats)
	}

	// What passes the guards reaches them all
	e.GET("/v1/health").WithHost("localhost").Expect().Status(http.StatusOK)
	e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").WithBytes(chat).Expect().Status(http.StatusOK)
	e.POST("/v1/heartbeat").WithHeader("Content-Type", "application/json").WithBytes([]byte(`{"status":"ok"}`)).
		Expect().Status(http.StatusOK)
	e.POST("/call/up/x").WithHeader("Content-Type", "text/plain").WithText("plain").Expect().Status(http.StatusOK)
	if up.Calls.Load() != 2 || s.tracker.Snapshot().Heartbeats != 1 {
		t.Fatalf("got %d upstream calls and %d heartbeats, want 2 and 1", up.Calls.Load(), s.tracker.Snapshot().Heartbeats)
	}
}

// startIngress runs a sidecar with an ingress in front of agent, whose
// peers are those d lists (none when nil).
func startIngress(t *testing.T, agent *sidecartest.Upstream, edit func(*policies.Config), d ...*sidecartest.Discovery) (*Sidecar, string) {
	t.Helper()
	cfg := guardedConfig(agent)
	cfg.Agent.Port = portOf(t, agent)
	cfg.Ingress = &policies.Ingress{Address: "127.0.0.1:0", Breaker: "default", Timeout: 5 * time.Second,
		MaxConnections: 100, BodyReadTimeout: time.Minute}
	if edit != nil {
		edit(cfg)
	}
	fd := &sidecartest.Discovery{}
	if len(d) > 0 {
		fd = d[0]
	}
	s, _, _ := startSidecar(t, cfg, Options{Discovery: fd})
	return s, "http://" + s.IngressAddr()
}

func TestIngressTokenIsRequiredAndNotPassedOn(t *testing.T) {
	const ingressToken = "ingress-token-0123456789"
	agent := sidecartest.NewUpstream(t, "agent", http.StatusOK)
	var seen strings.Builder
	inner := agent.Config.Handler
	agent.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.WriteString(r.Header.Get(proxy.HeaderIngressToken) + "|") // one call at a time
		inner.ServeHTTP(w, r)
	})
	s, base := startIngress(t, agent, func(cfg *policies.Config) { cfg.Ingress.Token = ingressToken })
	e := sidecartest.NewExpect(t, base)
	// The token is never shown: not in the status, nor in an error
	if st := sidecartest.NewExpect(t, "http://"+s.Addr()).GET("/v1/status").Expect().Status(http.StatusOK).Body().Raw(); strings.Contains(st, ingressToken) {
		t.Errorf("the status shows the ingress token")
	}

	// Without the token, or with another: 401, and the agent is not called
	e.POST("/task").WithText("do it").Expect().Status(http.StatusUnauthorized).
		JSON().Object().Value("error").Object().Value("message").String().Contains(proxy.HeaderIngressToken).NotContains(ingressToken)
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, "ingress-token-9999999999").WithText("do it").
		Expect().Status(http.StatusUnauthorized).Body().NotContains(ingressToken)
	e.POST("/task").WithHeader(guard.HeaderToken, ingressToken).WithText("do it").Expect().Status(http.StatusUnauthorized)
	if agent.Calls.Load() != 0 {
		t.Fatalf("the agent got %d tasks without the token", agent.Calls.Load())
	}
	// With it: the task reaches the agent, without the token
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, ingressToken).WithText("do it").Expect().Status(http.StatusOK)
	if agent.Calls.Load() != 1 || strings.Contains(seen.String(), ingressToken) {
		t.Fatalf("the agent got %d tasks, token headers %q", agent.Calls.Load(), seen.String())
	}
	// Web pages are refused, token or not
	e.POST("/task").WithHeader(proxy.HeaderIngressToken, ingressToken).WithHeader("Origin", "https://evil.example").
		WithText("do it").Expect().Status(http.StatusForbidden)
	if agent.Calls.Load() != 1 {
		t.Fatalf("a web page's task reached the agent")
	}
}

// A sidecar that hands a task to a peer's ingress sends the fleet's
// ingress token, which the peer takes and does not pass on.
func TestPeersSendTheIngressToken(t *testing.T) {
	const fleetToken = "fleet-ingress-token-0123"
	withToken := func(cfg *policies.Config) { cfg.Ingress.Token = fleetToken }
	agentB := sidecartest.NewUpstream(t, "agent-b", http.StatusOK)
	var seen strings.Builder
	inner := agentB.Config.Handler
	agentB.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.WriteString(r.Header.Get(proxy.HeaderIngressToken) + "|")
		inner.ServeHTTP(w, r)
	})
	sb, _ := startIngress(t, agentB, func(cfg *policies.Config) { withToken(cfg); cfg.Agent.ID = "writer-2" })
	host, port, _ := net.SplitHostPort(sb.IngressAddr())
	p, _ := strconv.Atoi(port)
	peers := &sidecartest.Discovery{}
	peers.Set("writer", discovery.Instance{ID: "writer-2", Service: "writer", Address: host, Port: p,
		Meta: map[string]string{policies.MetaAgentPort: "8081"}})

	// Given a sidecar whose own agent is down (its port closed)
	down := sidecartest.NewUpstream(t, "agent-a", http.StatusOK)
	down.Close()
	_, baseA := startIngress(t, down, withToken, peers)

	// When a task comes in, then the peer's agent answers it
	sidecartest.NewExpect(t, baseA).POST("/task").WithHeader(proxy.HeaderIngressToken, fleetToken).WithText("t").
		Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("agent-b")
	if agentB.Calls.Load() != 1 || strings.Contains(seen.String(), fleetToken) {
		t.Fatalf("agent b got %d tasks, token headers %q", agentB.Calls.Load(), seen.String())
	}
}

// Clients that declare a large body and send nothing are answered and
// disconnected once the body read timeout has passed, on the control
// listener and the ingress alike, and hold no buffer of the declared size
// while they wait.
func TestSlowBodiesAreCutAndHoldNoMemory(t *testing.T) {
	agent := sidecartest.NewUpstream(t, "agent", http.StatusOK)
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
			conns = append(conns, sidecartest.RawRequest(t, tg.addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
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
	if agent.Calls.Load() != 0 {
		t.Errorf("the agent got %d tasks from clients that never sent them", agent.Calls.Load())
	}
}

// A heartbeat whose body does not arrive in time gets 408, and counts for
// nothing.
func TestSlowHeartbeatGets408(t *testing.T) {
	cfg := testConfig()
	cfg.Listen.BodyReadTimeout = 200 * time.Millisecond
	s, _, _ := startSidecar(t, cfg, Options{})
	c := sidecartest.RawRequest(t, s.Addr(), "POST /v1/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
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
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	up.Delay.Store(int64(500 * time.Millisecond))
	cfg := guardedConfig(up)
	m := cfg.Models["m"]
	m.BaseURL = model.URL
	cfg.Models["m"] = m
	cfg.Listen.BodyReadTimeout = 100 * time.Millisecond
	_, _, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})

	stream := e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").
		WithBytes([]byte(`{"model":"m","stream":true,"messages":[]}`)).Expect().Status(http.StatusOK).Body().Raw()
	if !strings.Contains(stream, "w3 ") || !strings.Contains(stream, "[DONE]") {
		t.Fatalf("the stream was cut: %q", stream)
	}
	e.POST("/call/up/x").WithText("a task").Expect().Status(http.StatusOK).Body().Contains(`"from":"up"`)
}
