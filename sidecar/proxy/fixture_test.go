package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
)

// TestMain fails the package when its tests leave goroutines behind once
// everything they started has stopped (proxies, upstreams, calls, clients).
func TestMain(m *testing.M) { testutil.MainWithoutLeaks(m) }

// testConfig is a sidecar's configuration for agent writer-1 of service
// writer.
func testConfig() *policies.Config {
	cfg := policies.Dev()
	cfg.Agent.Name, cfg.Agent.ID = "writer", "writer-1"
	cfg.Listen.Address = "127.0.0.1:0"
	return cfg
}

// testProxy is a proxy served on loopback: /call/ on addr, the ingress (when
// configured) on ingressAddr.
type testProxy struct {
	*Proxy
	addr, ingressAddr string
	clock             *testutil.Clock // the proxy's and its breakers' clock, when the test gave one
}

// Addr is the address /call/ is served on.
func (p *testProxy) Addr() string { return p.addr }

// startProxy serves a proxy for cfg until the test ends. Unset options get
// a breaker set of the test's and a transport trusting cfg's CA.
func startProxy(tb testing.TB, cfg *policies.Config, opts Options) (*testProxy, *httpexpect.Expect) {
	tb.Helper()
	if opts.Breakers == nil {
		opts.Breakers = breaker.NewSet()
	}
	if opts.Transport == nil {
		rt := NewTransport(cfg.TLS.CertPool())
		tb.Cleanup(rt.CloseIdleConnections)
		opts.Transport = rt
	}
	p := &testProxy{Proxy: New(cfg, opts)}
	calls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/call/") {
			http.NotFound(w, r)
			return
		}
		p.ServeCall(w, r)
	}))
	tb.Cleanup(calls.Close)
	p.addr = calls.Listener.Addr().String()
	if cfg.Ingress != nil {
		ingress := httptest.NewServer(p.IngressHandler())
		tb.Cleanup(ingress.Close)
		p.ingressAddr = ingress.Listener.Addr().String()
	}
	var e *httpexpect.Expect
	if t, ok := tb.(*testing.T); ok {
		e = sidecartest.NewExpect(t, "http://"+p.addr)
	}
	return p, e
}

// clockStart is when every test clock starts.
var clockStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// callProxy serves a proxy with the given upstreams and a fake discovery,
// on a test clock (p.clock) that moves only when the test moves it.
func callProxy(t *testing.T, ups map[string]policies.Upstream, d Discovery, openFor time.Duration) (*testProxy, *httpexpect.Expect) {
	t.Helper()
	return callProxyWith(t, ups, d, openFor, Options{})
}

// callProxyWith is callProxy with more options (a tracer, a log, Observe).
func callProxyWith(t *testing.T, ups map[string]policies.Upstream, d Discovery, openFor time.Duration, opts Options) (*testProxy, *httpexpect.Expect) {
	t.Helper()
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(openFor)}
	for name, u := range ups {
		u.Name = name
		if u.Breaker == "" {
			u.Breaker = "default"
		}
		if u.Timeout == 0 {
			u.Timeout = 5 * time.Second
		}
		if u.Balance == "" {
			u.Balance = policies.BalanceRoundRobin
		}
		ups[name] = u
	}
	cfg.Upstreams = ups
	clock := testutil.NewClock(clockStart)
	opts.Discovery, opts.Breakers, opts.Now = d, breaker.NewSetWithClock(clock.Now), clock.Now
	p, e := startProxy(t, cfg, opts)
	p.clock = clock
	return p, e
}

// breakerState is the state of the named breaker, "" when there is none.
func (p *testProxy) breakerState(name string) (state string, trips int) {
	for _, b := range p.opts.Breakers.Snapshots() {
		if b.Name == name {
			return b.State, b.Trips
		}
	}
	return "", 0
}

// instanceOf is u as instance id of service svc.
func instanceOf(t *testing.T, id string, u *sidecartest.Upstream) discovery.Instance {
	t.Helper()
	host, port := sidecartest.SplitHostPort(t, u.HostPort())
	return discovery.Instance{ID: id, Service: "svc", Address: host, Port: port}
}
