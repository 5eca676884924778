package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"

	"github.com/agent-sidecar/sidecar/discovery"
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
		e = newExpect(t, "http://"+p.addr)
	}
	return p, e
}

// clockStart is when every test clock starts.
var clockStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// callProxy serves a proxy with the given upstreams and a fake discovery,
// on a test clock (p.clock) that moves only when the test moves it.
func callProxy(t *testing.T, ups map[string]policies.Upstream, d Discovery, openFor time.Duration) (*testProxy, *httpexpect.Expect) {
	t.Helper()
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": testBreaker(openFor)}
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
	p, e := startProxy(t, cfg, Options{Discovery: d, Breakers: breaker.NewSetWithClock(clock.Now), Now: clock.Now})
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

// newExpect returns an httpexpect client for baseURL whose requests end,
// and whose idle connections are closed, with the test.
func newExpect(t *testing.T, baseURL string) *httpexpect.Expect {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return httpexpect.WithConfig(httpexpect.Config{
		TestName: t.Name(),
		BaseURL:  baseURL,
		Context:  t.Context(),
		Client:   &http.Client{Transport: tr, Jar: httpexpect.NewCookieJar()},
		Reporter: httpexpect.NewAssertReporter(t),
		Printers: []httpexpect.Printer{httpexpect.NewCompactPrinter(t)},
	})
}

func benchBreaker() policies.Breaker {
	statuses := []int{429}
	for c := 500; c < 600; c++ {
		statuses = append(statuses, c)
	}
	return policies.Breaker{Name: "default", ConsecutiveFailures: 3, MinCalls: 10, Window: time.Minute,
		OpenFor: 30 * time.Second, MaxOpenFor: 10 * time.Minute, HalfOpenProbes: 1, FailureStatuses: statuses}
}

// scripted is an upstream whose answer can be changed while it runs, and
// which counts the calls it received.
type scripted struct {
	name   string
	status atomic.Int32
	delay  atomic.Int64 // nanoseconds
	calls  atomic.Int32
	mu     sync.Mutex
	bodies []string
	srv    *httptest.Server
}

func newScripted(t *testing.T, name string, status int) *scripted {
	u := &scripted{name: name}
	u.status.Store(int32(status))
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		u.mu.Unlock()
		if d := time.Duration(u.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Answered-By", u.name)
		w.WriteHeader(int(u.status.Load()))
		_, _ = io.WriteString(w, `{"from":"`+u.name+`"}`)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *scripted) lastBody() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		return ""
	}
	return u.bodies[len(u.bodies)-1]
}

// fakeDiscovery serves a fixed, changeable set of instances per service.
type fakeDiscovery struct {
	mu   sync.Mutex
	sets map[string][]discovery.Instance
}

func (f *fakeDiscovery) set(service string, ins ...discovery.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sets == nil {
		f.sets = map[string][]discovery.Instance{}
	}
	f.sets[service] = ins
}

func (f *fakeDiscovery) Instances(q discovery.Query) discovery.InstanceSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	ins, ok := f.sets[q.Service]
	return discovery.InstanceSet{Instances: ins, Known: ok}
}

func (f *fakeDiscovery) Wait(_ context.Context, q discovery.Query) discovery.InstanceSet {
	return f.Instances(q)
}

func instanceOf(t *testing.T, id string, u *scripted) discovery.Instance {
	host, port, _ := strings.Cut(strings.TrimPrefix(u.srv.URL, "http://"), ":")
	p, _ := strconv.Atoi(port)
	return discovery.Instance{ID: id, Service: "svc", Address: host, Port: p}
}

func testBreaker(openFor time.Duration) policies.Breaker {
	b := benchBreaker()
	b.OpenFor, b.MaxOpenFor = openFor, 8*openFor
	return b
}

func hostOf(u *scripted) string { return strings.TrimPrefix(u.srv.URL, "http://") }
