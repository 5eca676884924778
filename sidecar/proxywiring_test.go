package sidecar

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
)

// The tests here check that the sidecar wires the call proxy to the rest:
// its breakers to the breaker API, the sidecar check and notifications,
// and a reload to the proxy's upstreams.

func TestBreakerAPIAndSidecarCheck(t *testing.T) {
	flaky := sidecartest.NewUpstream(t, "flaky", http.StatusServiceUnavailable)
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: flaky.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	h := &hook{}
	hookSrv := httptest.NewServer(h)
	defer hookSrv.Close()
	cfg.Notify = map[string]policies.Notify{"ops": {Webhook: hookSrv.URL, Timeout: time.Second}}
	cfg.Health.Notify = []string{"ops"}
	_, reg, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})
	name := "up@" + flaky.HostPort()

	// Given no call yet, the sidecar check passes and the breaker is unknown
	if c := reg.check("writer-1:sidecar"); c.status != discovery.Passing {
		t.Fatalf("sidecar check %s %q, want passing", c.status, c.output)
	}
	e.POST("/v1/breakers/" + name + "/open").Expect().Status(http.StatusNotFound)

	// When three calls fail, the breaker opens: listed, in the check, notified once
	for i := 0; i < 5; i++ {
		e.GET("/call/up/x").Expect()
	}
	e.GET("/v1/breakers").Expect().Status(http.StatusOK).JSON().Object().Value("breakers").Array().Value(0).Object().
		HasValue("name", name).HasValue("state", "open").HasValue("consecutive_failures", 3).HasValue("last_failure_reason", "503")
	testutil.Eventually(t, "sidecar check warning", 2*time.Second, func() bool { return reg.check("writer-1:sidecar").status == discovery.Warning })
	if out := reg.check("writer-1:sidecar").output; !strings.Contains(out, name+" open since") || !strings.Contains(out, "3 consecutive failures") {
		t.Fatalf("sidecar check output %q", out)
	}
	testutil.Eventually(t, "breaker.open notification", 5*time.Second, func() bool { return len(h.events()) == 1 })
	if ev := h.events()[0]; ev.Type != notify.EventBreakerOpen || ev.Breaker != name {
		t.Fatalf("notification %+v", ev)
	}

	// When an operator closes it, calls reach the upstream again
	flaky.Status.Store(http.StatusOK)
	e.POST("/v1/breakers/"+name+"/close").Expect().Status(http.StatusOK).JSON().Object().HasValue("state", "closed")
	e.GET("/call/up/x").Expect().Status(http.StatusOK).Header(proxy.HeaderUpstream).IsEqual("up")
	testutil.Eventually(t, "sidecar check passing", 2*time.Second, func() bool { return reg.check("writer-1:sidecar").status == discovery.Passing })
	// And an operator can hold it open
	e.POST("/v1/breakers/"+name+"/open").Expect().Status(http.StatusOK).JSON().Object().HasValue("forced", true)
	e.GET("/call/up/x").Expect().Status(http.StatusServiceUnavailable)
	e.POST("/v1/breakers/" + name + "/explode").Expect().Status(http.StatusBadRequest)
}

func TestReloadMovesUpstreamAndKeepsUnchangedBreakers(t *testing.T) {
	old := sidecartest.NewUpstream(t, "old", http.StatusOK)
	moved := sidecartest.NewUpstream(t, "moved", http.StatusOK)
	down := sidecartest.NewUpstream(t, "down", http.StatusServiceUnavailable)
	build := func(searchURL string) *policies.Config {
		cfg := testConfig()
		cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
		cfg.Upstreams = map[string]policies.Upstream{}
		for name, u := range map[string]string{"search": searchURL, "tools": down.URL} {
			cfg.Upstreams[name] = policies.Upstream{Name: name, URL: u, Breaker: "default",
				Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}
		}
		return cfg
	}
	var mu sync.Mutex
	next := build(moved.URL)
	_, _, e := startSidecar(t, build(old.URL), Options{Reload: func() (*policies.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		return next, nil
	}})

	// Given calls to search (answered by old) and a tools breaker tripped open
	e.GET("/call/search/q").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("old")
	for i := 0; i < 3; i++ {
		e.GET("/call/tools/x").Expect().Status(http.StatusServiceUnavailable)
	}
	e.GET("/call/tools/x").Expect().Status(http.StatusServiceUnavailable).Header("Retry-After").NotEmpty()
	if got := down.Calls.Load(); got != 3 {
		t.Fatalf("tools got %d calls, want 3 before its breaker opened", got)
	}

	// When the configuration is reloaded with search moved to a new URL
	e.POST("/v1/reload").Expect().Status(http.StatusOK)

	// Then search calls go to the new URL at once, and the tools breaker,
	// whose settings did not change, is still open
	e.GET("/call/search/q").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("moved")
	e.GET("/call/tools/x").Expect().Status(http.StatusServiceUnavailable)
	if got := down.Calls.Load(); got != 3 {
		t.Fatalf("tools got %d calls after the reload, want still 3 (breaker kept open)", got)
	}
	if got := old.Calls.Load(); got != 1 {
		t.Fatalf("the old search URL got %d calls, want 1", got)
	}
}

// tls.ca_file is trusted by the calls' transport.
func TestTLSUpstreamTrustedOnlyWithItsCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"secure":true}`)
	}))
	defer srv.Close()
	ca := writeCAFile(t, srv)
	run := func(caFile string) *httpexpect.Expect {
		cfg := testConfig()
		cfg.TLS.CAFile = caFile
		cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
		cfg.Upstreams = map[string]policies.Upstream{"secure": {Name: "secure", URL: srv.URL, Breaker: "default",
			Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
		_, _, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}})
		return e
	}
	// Without the CA, the self-signed upstream is not trusted
	run("").GET("/call/secure/x").Expect().Status(http.StatusBadGateway).
		JSON().Object().Value("error").Object().Value("message").String().Contains("certificate")
	// With tls.ca_file naming its CA, it is
	run(ca).GET("/call/secure/x").Expect().Status(http.StatusOK).Body().IsEqual(`{"secure":true}`)
}
