package sidecar

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// probeConfig is a sidecar whose agent is isolated 2h after its last
// heartbeat (2 × 1h + 0s grace), with the probe listener on a free port
// and liveness_after 10m.
func probeConfig() *policies.Config {
	cfg := testConfig()
	cfg.Health.HeartbeatInterval, cfg.Health.Grace, cfg.Health.LivenessAfter = time.Hour, 0, 10*time.Minute
	cfg.Listen.ProbeAddress = "127.0.0.1:0"
	return cfg
}

// expectProbe checks one probe's answer: its HTTP status, its status and
// state, and that it is never cached; it returns the body.
func expectProbe(r *httpexpect.Request, code int, status, state string) *httpexpect.Object {
	resp := r.Expect().Status(code)
	resp.Header("Cache-Control").IsEqual("no-store")
	resp.Header("Content-Type").HasPrefix("application/json")
	return resp.JSON().Object().HasValue("status", status).HasValue("state", state)
}

// The agent probes on the control listener follow the agent through its
// life: started, heartbeating, failing, silent past its TTL, isolated past
// liveness_after, recovered.
func TestAgentProbesOnTheControlListener(t *testing.T) {
	clock := testutil.NewClock(time.Date(2031, 3, 4, 5, 0, 0, 0, time.UTC))
	s, _, e := startSidecar(t, probeConfig(), Options{Now: clock.Now})
	live := func() *httpexpect.Request { return e.GET("/v1/agent/live") }
	ready := func() *httpexpect.Request { return e.GET("/v1/agent/ready") }

	// Given a sidecar just started: the agent is alive (start-up) but not ready
	expectProbe(live(), http.StatusOK, "ok", "waiting").NotContainsKey("reason")
	expectProbe(ready(), http.StatusServiceUnavailable, "failing", "waiting").HasValue("reason", "no heartbeat yet")

	// When the agent heartbeats, then it is alive and ready
	e.POST("/v1/heartbeat").Expect().Status(http.StatusOK)
	expectProbe(live(), http.StatusOK, "ok", "healthy")
	expectProbe(ready(), http.StatusOK, "ok", "healthy").HasValue("reported_status", "ok")

	// When it reports degraded, it stays ready; failing, it is alive but not ready
	e.POST("/v1/heartbeat").WithJSON(map[string]any{"status": "degraded"}).Expect().Status(http.StatusOK)
	expectProbe(ready(), http.StatusOK, "ok", "healthy").HasValue("reported_status", "degraded")
	e.POST("/v1/heartbeat").WithJSON(map[string]any{"status": "failing", "note": "no-model-key"}).Expect().Status(http.StatusOK)
	expectProbe(live(), http.StatusOK, "ok", "healthy")
	expectProbe(ready(), http.StatusServiceUnavailable, "failing", "healthy").
		HasValue("reason", "the agent reports it is failing")

	// When it stays silent past its TTL and is isolated
	e.POST("/v1/heartbeat").Expect().Status(http.StatusOK)
	clock.Advance(2*time.Hour + time.Minute)
	s.nudge()
	testutil.Eventually(t, "the agent isolated", 5*time.Second, func() bool { return s.tracker.Snapshot().IsolatedNow() })

	// Then it is still alive within liveness_after, and not ready
	expectProbe(live(), http.StatusOK, "ok", "isolated").
		HasValue("reason", "no heartbeat for 2h1m0s (2 missed × 1h0m0s interval + 0s grace)").HasValue("isolated_for", "0s")
	expectProbe(ready(), http.StatusServiceUnavailable, "failing", "isolated").
		HasValue("reason", "the agent is isolated: no heartbeat for 2h1m0s (2 missed × 1h0m0s interval + 0s grace)")

	// And once isolated for liveness_after, liveness fails
	clock.Advance(10 * time.Minute)
	expectProbe(live(), http.StatusServiceUnavailable, "failing", "isolated").
		HasValue("reason", "no heartbeat for 2h1m0s (2 missed × 1h0m0s interval + 0s grace)").HasValue("isolated_for", "10m0s")

	// When it heartbeats again, it has recovered: alive and ready
	e.POST("/v1/heartbeat").Expect().Status(http.StatusOK)
	expectProbe(live(), http.StatusOK, "ok", "healthy").NotContainsKey("isolated_for")
	expectProbe(ready(), http.StatusOK, "ok", "healthy")

	// And /v1/status shows what the probes answer
	st := e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object()
	st.Value("agent_probes").Object().Value("live").Object().HasValue("status", "ok")
	st.Value("agent_probes").Object().Value("ready").Object().HasValue("status", "ok")
	st.Value("sidecar").Object().HasValue("probe_api", s.ProbeAddr())

	// The probes are reads: GET only
	e.POST("/v1/agent/live").Expect().Status(http.StatusMethodNotAllowed)
}

// On the control listener the probes follow its rules: the token (under
// token_scope "all", as every read but /v1/health) and the Host check.
func TestAgentProbesOnTheControlListenerNeedItsToken(t *testing.T) {
	cfg := probeConfig()
	cfg.Listen.Token = "control-token-0123456789"
	_, _, e := startSidecar(t, cfg, Options{})
	for _, path := range []string{"/v1/agent/live", "/v1/agent/ready"} {
		e.GET(path).Expect().Status(http.StatusUnauthorized)
		e.GET(path).WithHeader("X-Sidecar-Token", cfg.Listen.Token).WithHost("evil.example").
			Expect().Status(http.StatusMisdirectedRequest)
	}
	e.GET("/v1/agent/live").WithHeader("X-Sidecar-Token", cfg.Listen.Token).Expect().Status(http.StatusOK)
	e.GET("/v1/agent/ready").WithHeader("X-Sidecar-Token", cfg.Listen.Token).Expect().Status(http.StatusServiceUnavailable)
}

// The probe listener serves the agent probes and the sidecar's liveness
// to a kubelet on the pod IP: any Host, no token, GET only, nothing else,
// nothing the agent wrote.
func TestProbeListener(t *testing.T) {
	cfg := probeConfig()
	cfg.Listen.Token = "control-token-0123456789"
	s, _, control := startSidecar(t, cfg, Options{})
	if s.ProbeAddr() == "" || s.ProbeAddr() == s.Addr() {
		t.Fatalf("probe listener at %q, control listener at %q", s.ProbeAddr(), s.Addr())
	}
	p := sidecartest.NewExpect(t, "http://"+s.ProbeAddr())

	// Given an agent that has not heartbeated: alive, not ready, and the
	// sidecar itself alive, with no token, whatever the Host
	for _, host := range []string{s.ProbeAddr(), "10.42.0.17:7071", "agent-7d9f.writer.svc.cluster.local", "evil.example"} {
		expectProbe(p.GET("/v1/agent/live").WithHost(host), http.StatusOK, "ok", "waiting")
		expectProbe(p.GET("/v1/agent/ready").WithHost(host), http.StatusServiceUnavailable, "failing", "waiting").
			HasValue("reason", "no heartbeat yet")
		p.GET("/v1/health").WithHost(host).Expect().Status(http.StatusOK).JSON().Object().HasValue("status", "ok")
	}

	// When the agent heartbeats (on the control listener, with the token)
	// with a note, metrics and progress
	control.POST("/v1/heartbeat").WithHeader("X-Sidecar-Token", cfg.Listen.Token).
		WithJSON(map[string]any{"status": "degraded", "note": "secret-note", "metrics": map[string]any{"secret-metric": 1},
			"progress": "secret-progress"}).Expect().Status(http.StatusOK)

	// Then it is ready, and the answers carry nothing it wrote
	for _, path := range []string{"/v1/agent/live", "/v1/agent/ready", "/v1/health"} {
		body := p.GET(path).Expect().Status(http.StatusOK).Body().Raw()
		for _, secret := range []string{"secret", cfg.Listen.Token, cfg.Consul.Token} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s shows %q: %s", path, secret, body)
			}
		}
	}

	// Every other method is 405, with the method to use
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions} {
		for _, path := range []string{"/v1/agent/live", "/v1/agent/ready", "/v1/health"} {
			resp := p.Request(method, path).Expect().Status(http.StatusMethodNotAllowed)
			resp.Header("Allow").IsEqual("GET")
			if method != http.MethodHead {
				resp.JSON().Object().Value("error").Object().HasValue("type", "method_not_allowed")
			}
		}
	}

	// Every other path is 404: none of the control API, the model gateway
	// or the call path is there, with or without the token
	for _, r := range []*httpexpect.Request{p.GET("/v1/status"), p.GET("/v1/breakers"), p.GET("/v1/events"),
		p.GET("/metrics"), p.POST("/v1/heartbeat"), p.POST("/v1/reload"), p.POST("/v1/breakers/default/open"),
		p.GET("/call/up/x"), p.POST("/llm/v1/chat/completions"), p.GET("/"), p.GET("/v1/agent/live/"),
		p.GET("/v1/status").WithHeader("X-Sidecar-Token", cfg.Listen.Token)} {
		r.Expect().Status(http.StatusNotFound).JSON().Object().Value("error").Object().
			HasValue("type", "not_found").Value("message").String().Contains("the probe listener serves only GET")
	}
	if got := s.tracker.Snapshot().Heartbeats; got != 1 {
		t.Errorf("heartbeats: got %d, want the 1 sent to the control listener", got)
	}

	// A web page gets nothing
	p.GET("/v1/agent/live").WithHeader("Origin", "https://evil.example").Expect().Status(http.StatusForbidden)

	// And /v1/status (on the control listener) names the probe listener
	control.GET("/v1/status").WithHeader("X-Sidecar-Token", cfg.Listen.Token).Expect().Status(http.StatusOK).
		JSON().Object().Value("sidecar").Object().HasValue("probe_api", s.ProbeAddr())
}

// Without listen.probe_address there is no probe listener.
func TestNoProbeListenerByDefault(t *testing.T) {
	s, _, e := startSidecar(t, testConfig(), Options{})
	if s.ProbeAddr() != "" {
		t.Fatalf("probe listener at %q, want none", s.ProbeAddr())
	}
	e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object().Value("sidecar").Object().NotContainsKey("probe_api")
}

// The probe listener is bound by New (a port in use is reported before
// Run) and closed with the others at shutdown.
func TestProbeListenerLifetime(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := probeConfig()
	cfg.Listen.ProbeAddress = taken.Addr().String()
	if _, err := New(cfg, hclog.NewNullLogger(), Options{Registry: newFakeRegistry()}); err == nil ||
		!strings.Contains(err.Error(), "probe listener: cannot listen on "+taken.Addr().String()) ||
		!strings.Contains(err.Error(), "set listen.probe_address to a free address") {
		t.Fatalf("New with the probe port in use: %v", err)
	}

	s, err := New(probeConfig(), hclog.NewNullLogger(), Options{Registry: newFakeRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.ProbeAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testutil.Eventually(t, "the probe listener answering", 5*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial after shutdown: %v, want connection refused", err)
	}
}

// The probe listener has the control listener's bounds: headers larger
// than MaxHeaderBytes are refused before any handler runs.
func TestProbeListenerBoundsHeaders(t *testing.T) {
	s, _, _ := startSidecar(t, probeConfig(), Options{})
	c := sidecartest.RawRequest(t, s.ProbeAddr(), "GET /v1/agent/live HTTP/1.1\r\nHost: 10.42.0.17\r\n"+
		"X-Filler: "+strings.Repeat("x", MaxHeaderBytes+4096)+"\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("got %s, want 431", resp.Status)
	}
}
