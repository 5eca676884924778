package sidecar

import (
	"bufio"
	"context"
	"io"
	"net"
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
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

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

// callSidecar runs a sidecar with the given upstreams and a fake discovery.
func callSidecar(t *testing.T, ups map[string]policies.Upstream, d Discovery, openFor time.Duration) (*Sidecar, *httpexpect.Expect) {
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
	s, _, e := startSidecar(t, cfg, Options{Discovery: d})
	return s, e
}

func TestBreakerTripsAfterThreeFailuresAndFallbackServes(t *testing.T) {
	flaky := newScripted(t, "flaky", http.StatusServiceUnavailable)
	backup := newScripted(t, "backup", http.StatusOK)
	_, e := callSidecar(t, map[string]policies.Upstream{
		"primary": {URL: flaky.srv.URL, Fallback: []string{"backup"}},
		"backup":  {URL: backup.srv.URL},
	}, &fakeDiscovery{}, 300*time.Millisecond)

	// When 10 tasks are sent while the primary fails
	for i := 0; i < 10; i++ {
		r := e.POST("/call/primary/task").WithQuery("n", i).WithText(`{"task":` + strconv.Itoa(i) + `}`).Expect()
		// Then every task is handled by the fallback, marked as such
		r.Status(http.StatusOK).Header(headerUpstream).IsEqual("backup")
		r.Header(headerFallback).IsEqual("true")
	}
	// And the primary received exactly 3 calls: then its breaker opened
	if got := flaky.calls.Load(); got != 3 {
		t.Fatalf("primary received %d calls, want exactly 3 before the breaker opened", got)
	}
	if got := backup.lastBody(); got != `POST /task?n=9 {"task":9}` {
		t.Fatalf("fallback received %q, want the task forwarded intact", got)
	}
	e.GET("/v1/breakers").Expect().JSON().Object().Value("breakers").Array().
		Find(func(_ int, v *httpexpect.Value) bool {
			return v.Object().Value("name").String().Raw() == "primary@"+hostOf(flaky)
		}).
		Object().HasValue("state", "open").HasValue("trips", 1)

	// When the primary recovers and open_for has passed, one probe closes the breaker
	flaky.status.Store(http.StatusOK)
	time.Sleep(350 * time.Millisecond)
	e.POST("/call/primary/task").Expect().Status(http.StatusOK).Header(headerUpstream).IsEqual("primary")
	e.POST("/call/primary/task").Expect().Status(http.StatusOK).Header(headerUpstream).IsEqual("primary")
	if got := flaky.calls.Load(); got != 5 {
		t.Fatalf("primary received %d calls, want 5 (3 failures, a probe, a normal call)", got)
	}
}

func hostOf(u *scripted) string { return strings.TrimPrefix(u.srv.URL, "http://") }

func TestClientErrorsDoNotTrip(t *testing.T) {
	up := newScripted(t, "up", http.StatusNotFound)
	_, e := callSidecar(t, map[string]policies.Upstream{"up": {URL: up.srv.URL}}, &fakeDiscovery{}, time.Second)
	for i := 0; i < 10; i++ {
		e.GET("/call/up/missing").Expect().Status(http.StatusNotFound).Header(headerUpstream).IsEqual("up")
	}
	if got := up.calls.Load(); got != 10 {
		t.Fatalf("upstream received %d calls, want all 10 (4xx is the caller's fault)", got)
	}
}

func TestNothingLeftAnswers503WithRetryAfter(t *testing.T) {
	down := newScripted(t, "down", http.StatusBadGateway)
	_, e := callSidecar(t, map[string]policies.Upstream{"up": {URL: down.srv.URL}}, &fakeDiscovery{}, 20*time.Second)
	// The first three answers are the upstream's own 502s.
	for i := 0; i < 3; i++ {
		e.GET("/call/up/x").Expect().Status(http.StatusBadGateway).Header(headerUpstream).IsEqual("up")
	}
	r := e.GET("/call/up/x").Expect().Status(http.StatusServiceUnavailable)
	r.Header("Retry-After").AsNumber().InRange(15, 20)
	r.JSON().Object().Value("error").Object().HasValue("type", "unavailable").
		Value("message").String().Contains("open")
	if got := down.calls.Load(); got != 3 {
		t.Fatalf("the open upstream received %d calls, want 3", got)
	}
	e.GET("/call/nope/x").Expect().Status(http.StatusNotFound).JSON().Object().
		Value("error").Object().Value("message").String().Contains(`no upstream named "nope"`)
}

func TestBadInstanceEjectedWhileOthersServe(t *testing.T) {
	good1, good2 := newScripted(t, "good1", http.StatusOK), newScripted(t, "good2", http.StatusOK)
	bad := newScripted(t, "bad", http.StatusInternalServerError)
	d := &fakeDiscovery{}
	d.set("svc", instanceOf(t, "bad", bad), instanceOf(t, "good1", good1), instanceOf(t, "good2", good2))
	_, e := callSidecar(t, map[string]policies.Upstream{"svc": {Service: "svc", Retries: 1}}, d, time.Minute)

	// Every GET is answered (a failure on the bad instance is retried on another)
	for i := 0; i < 30; i++ {
		e.GET("/call/svc/item").Expect().Status(http.StatusOK).Header("X-Answered-By").NotEqual("bad")
	}
	// And the bad instance saw exactly 3 calls before its breaker ejected it
	if got := bad.calls.Load(); got != 3 {
		t.Fatalf("bad instance received %d calls, want 3", got)
	}
	if good1.calls.Load() == 0 || good2.calls.Load() == 0 {
		t.Fatalf("calls not spread: good1 %d, good2 %d", good1.calls.Load(), good2.calls.Load())
	}
}

func TestTimeoutAnswers504AndCounts(t *testing.T) {
	slow := newScripted(t, "slow", http.StatusOK)
	slow.delay.Store(int64(2 * time.Second))
	_, e := callSidecar(t, map[string]policies.Upstream{"slow": {URL: slow.srv.URL, Timeout: 100 * time.Millisecond}}, &fakeDiscovery{}, time.Minute)
	e.POST("/call/slow/x").Expect().Status(http.StatusGatewayTimeout).JSON().Object().
		Value("error").Object().HasValue("type", "timeout")
}

// A POST that timed out may already have been acted on, so it is not sent
// again, unless the caller says a repeat is safe with an Idempotency-Key.
func TestTimedOutPostGoesToFallbackOnlyWithIdempotencyKey(t *testing.T) {
	slow := newScripted(t, "slow", http.StatusOK)
	slow.delay.Store(int64(2 * time.Second))
	lite := newScripted(t, "lite", http.StatusOK)
	_, e := callSidecar(t, map[string]policies.Upstream{
		"slow": {URL: slow.srv.URL, Timeout: 100 * time.Millisecond, Fallback: []string{"lite"}},
		"lite": {URL: lite.srv.URL},
	}, &fakeDiscovery{}, time.Minute)

	e.POST("/call/slow/task").WithText("t1").Expect().Status(http.StatusGatewayTimeout)
	if n := lite.calls.Load(); n != 0 {
		t.Fatalf("a timed-out POST without Idempotency-Key was sent again to the fallback (%d calls)", n)
	}
	r := e.POST("/call/slow/task").WithHeader("Idempotency-Key", "task-2").WithText("t2").Expect().Status(http.StatusOK)
	r.Header("X-Answered-By").IsEqual("lite")
	r.Header("X-Sidecar-Fallback").IsEqual("true")
	if got := lite.lastBody(); got != "POST /task t2" {
		t.Fatalf("fallback got %q, want the same request", got)
	}
	if n := slow.calls.Load(); n != 2 {
		t.Fatalf("slow got %d calls, want 2", n)
	}
}

func TestConnectionRefusedGoesToNextInstance(t *testing.T) {
	good := newScripted(t, "good", http.StatusOK)
	gone := newScripted(t, "gone", http.StatusOK)
	goneInst := instanceOf(t, "gone", gone)
	gone.srv.Close()
	d := &fakeDiscovery{}
	d.set("svc", goneInst, instanceOf(t, "good", good))
	_, e := callSidecar(t, map[string]policies.Upstream{"svc": {Service: "svc", Retries: 1}}, d, time.Minute)
	// A POST is retried elsewhere when nothing was sent.
	for i := 0; i < 4; i++ {
		e.POST("/call/svc/task").WithText("t").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("good")
	}
}

func TestBreakerAPIAndSidecarCheck(t *testing.T) {
	flaky := newScripted(t, "flaky", http.StatusServiceUnavailable)
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": testBreaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: flaky.srv.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	h := &hook{}
	hookSrv := httptest.NewServer(h)
	defer hookSrv.Close()
	cfg.Notify = map[string]policies.Notify{"ops": {Webhook: hookSrv.URL, Timeout: time.Second}}
	cfg.Health.Notify = []string{"ops"}
	_, reg, e := startSidecar(t, cfg, Options{Discovery: &fakeDiscovery{}})
	name := "up@" + hostOf(flaky)

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
	waitFor(t, "sidecar check warning", 2*time.Second, func() bool { return reg.check("writer-1:sidecar").status == discovery.Warning })
	if out := reg.check("writer-1:sidecar").output; !strings.Contains(out, name+" open since") || !strings.Contains(out, "3 consecutive failures") {
		t.Fatalf("sidecar check output %q", out)
	}
	waitFor(t, "breaker.open notification", 5*time.Second, func() bool { return len(h.events()) == 1 })
	if ev := h.events()[0]; ev.Type != notify.EventBreakerOpen || ev.Breaker != name {
		t.Fatalf("notification %+v", ev)
	}

	// When an operator closes it, calls reach the upstream again
	flaky.status.Store(http.StatusOK)
	e.POST("/v1/breakers/"+name+"/close").Expect().Status(http.StatusOK).JSON().Object().HasValue("state", "closed")
	e.GET("/call/up/x").Expect().Status(http.StatusOK).Header(headerUpstream).IsEqual("up")
	waitFor(t, "sidecar check passing", 2*time.Second, func() bool { return reg.check("writer-1:sidecar").status == discovery.Passing })
	// And an operator can hold it open
	e.POST("/v1/breakers/"+name+"/open").Expect().Status(http.StatusOK).JSON().Object().HasValue("forced", true)
	e.GET("/call/up/x").Expect().Status(http.StatusServiceUnavailable)
	e.POST("/v1/breakers/" + name + "/explode").Expect().Status(http.StatusBadRequest)
}

func TestReloadMovesUpstreamAndKeepsUnchangedBreakers(t *testing.T) {
	old := newScripted(t, "old", http.StatusOK)
	moved := newScripted(t, "moved", http.StatusOK)
	down := newScripted(t, "down", http.StatusServiceUnavailable)
	build := func(searchURL string) *policies.Config {
		cfg := testConfig()
		cfg.Breakers = map[string]policies.Breaker{"default": testBreaker(time.Minute)}
		cfg.Upstreams = map[string]policies.Upstream{}
		for name, u := range map[string]string{"search": searchURL, "tools": down.srv.URL} {
			cfg.Upstreams[name] = policies.Upstream{Name: name, URL: u, Breaker: "default",
				Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}
		}
		return cfg
	}
	var mu sync.Mutex
	next := build(moved.srv.URL)
	_, _, e := startSidecar(t, build(old.srv.URL), Options{Reload: func() (*policies.Config, error) {
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
	if got := down.calls.Load(); got != 3 {
		t.Fatalf("tools got %d calls, want 3 before its breaker opened", got)
	}

	// When the configuration is reloaded with search moved to a new URL
	e.POST("/v1/reload").Expect().Status(http.StatusOK)

	// Then search calls go to the new URL at once, and the tools breaker,
	// whose settings did not change, is still open
	e.GET("/call/search/q").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("moved")
	e.GET("/call/tools/x").Expect().Status(http.StatusServiceUnavailable)
	if got := down.calls.Load(); got != 3 {
		t.Fatalf("tools got %d calls after the reload, want still 3 (breaker kept open)", got)
	}
	if got := old.calls.Load(); got != 1 {
		t.Fatalf("the old search URL got %d calls, want 1", got)
	}
}

func TestBulkheadSendsOverflowToTheFallback(t *testing.T) {
	slow := newScripted(t, "slow", http.StatusOK)
	slow.delay.Store(int64(400 * time.Millisecond))
	backup := newScripted(t, "backup", http.StatusOK)
	_, e := callSidecar(t, map[string]policies.Upstream{
		"primary": {URL: slow.srv.URL, Fallback: []string{"backup"}, MaxConcurrent: 1},
		"backup":  {URL: backup.srv.URL},
		"alone":   {URL: slow.srv.URL, MaxConcurrent: 1},
	}, &fakeDiscovery{}, time.Minute)

	// Given one call in flight to an upstream that takes one at a time
	first := make(chan string, 1)
	go func() {
		first <- e.GET("/call/primary/a").Expect().Raw().Header.Get("X-Answered-By")
	}()
	waitFor(t, "the first call at the upstream", 2*time.Second, func() bool { return slow.calls.Load() == 1 })

	// When a second call comes, it goes to the fallback at once
	e.GET("/call/primary/b").Expect().Status(http.StatusOK).Header("X-Sidecar-Fallback").IsEqual("true")
	if backup.calls.Load() != 1 || slow.calls.Load() != 1 {
		t.Fatalf("calls: slow %d, backup %d", slow.calls.Load(), backup.calls.Load())
	}
	if got := <-first; got != "slow" {
		t.Fatalf("the first call was answered by %q", got)
	}
	// And once the first is done, the upstream takes calls again
	e.GET("/call/primary/c").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("slow")

	// Without a fallback, the overflow gets 503 with Retry-After and the reason
	alone := make(chan struct{})
	go func() { defer close(alone); e.GET("/call/alone/a").Expect() }()
	waitFor(t, "a call to alone in flight", 2*time.Second, func() bool { return slow.calls.Load() == 3 })
	r := e.GET("/call/alone/b").Expect().Status(http.StatusServiceUnavailable)
	r.Header("Retry-After").IsEqual("1")
	r.JSON().Object().Value("error").Object().Value("message").String().Contains("max_concurrent")
	<-alone
}

func TestTLSUpstreamTrustedOnlyWithItsCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"secure":true}`)
	}))
	defer srv.Close()
	ca := writeCAFile(t, srv)
	run := func(caFile string) *httpexpect.Expect {
		cfg := testConfig()
		cfg.TLS.CAFile = caFile
		cfg.Breakers = map[string]policies.Breaker{"default": testBreaker(time.Minute)}
		cfg.Upstreams = map[string]policies.Upstream{"secure": {Name: "secure", URL: srv.URL, Breaker: "default",
			Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
		_, _, e := startSidecar(t, cfg, Options{Discovery: &fakeDiscovery{}})
		return e
	}
	// Without the CA, the self-signed upstream is not trusted
	run("").GET("/call/secure/x").Expect().Status(http.StatusBadGateway).
		JSON().Object().Value("error").Object().Value("message").String().Contains("certificate")
	// With tls.ca_file naming its CA, it is
	run(ca).GET("/call/secure/x").Expect().Status(http.StatusOK).Body().IsEqual(`{"secure":true}`)
}

// A connection upgrade (a WebSocket, say) goes through /call/: the 101
// reaches the agent and the connection carries bytes both ways.
func TestUpgradeThroughCall(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		line, _ := brw.ReadString('\n')
		_, _ = io.WriteString(c, "echo: "+line)
	}))
	defer up.Close()
	cfg := testConfig()
	cfg.Breakers = map[string]policies.Breaker{"default": testBreaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"ws": {Name: "ws", URL: up.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	s, _, _ := startSidecar(t, cfg, Options{Discovery: &fakeDiscovery{}})

	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /call/ws/socket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade through /call/: %s %s", resp.Status, b)
	}
	_, _ = io.WriteString(c, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("through the upgraded connection: %q %v", line, err)
	}
}
