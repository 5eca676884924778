package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

func TestBreakerTripsAfterThreeFailuresAndFallbackServes(t *testing.T) {
	flaky := sidecartest.NewUpstream(t, "flaky", http.StatusServiceUnavailable)
	backup := sidecartest.NewUpstream(t, "backup", http.StatusOK)
	p, e := callProxy(t, map[string]policies.Upstream{
		"primary": {URL: flaky.URL, Fallback: []string{"backup"}},
		"backup":  {URL: backup.URL},
	}, &sidecartest.Discovery{}, 300*time.Millisecond)

	// When 10 tasks are sent while the primary fails
	for i := 0; i < 10; i++ {
		r := e.POST("/call/primary/task").WithQuery("n", i).WithText(`{"task":` + strconv.Itoa(i) + `}`).Expect()
		// Then every task is handled by the fallback, marked as such
		r.Status(http.StatusOK).Header(HeaderUpstream).IsEqual("backup")
		r.Header(HeaderFallback).IsEqual("true")
	}
	// And the primary received exactly 3 calls: then its breaker opened
	if got := flaky.Calls.Load(); got != 3 {
		t.Fatalf("primary received %d calls, want exactly 3 before the breaker opened", got)
	}
	if got := backup.LastBody(); got != `POST /task?n=9 {"task":9}` {
		t.Fatalf("fallback received %q, want the task forwarded intact", got)
	}
	if state, trips := p.breakerState("primary@" + flaky.HostPort()); state != "open" || trips != 1 {
		t.Fatalf("the primary's breaker is %q after %d trips, want open after 1", state, trips)
	}

	// When the primary recovers and open_for has passed, one probe closes the breaker
	flaky.Status.Store(http.StatusOK)
	p.clock.Advance(300 * time.Millisecond)
	e.POST("/call/primary/task").Expect().Status(http.StatusOK).Header(HeaderUpstream).IsEqual("primary")
	e.POST("/call/primary/task").Expect().Status(http.StatusOK).Header(HeaderUpstream).IsEqual("primary")
	if got := flaky.Calls.Load(); got != 5 {
		t.Fatalf("primary received %d calls, want 5 (3 failures, a probe, a normal call)", got)
	}
}

func TestClientErrorsDoNotTrip(t *testing.T) {
	up := sidecartest.NewUpstream(t, "up", http.StatusNotFound)
	_, e := callProxy(t, map[string]policies.Upstream{"up": {URL: up.URL}}, &sidecartest.Discovery{}, time.Second)
	for i := 0; i < 10; i++ {
		e.GET("/call/up/missing").Expect().Status(http.StatusNotFound).Header(HeaderUpstream).IsEqual("up")
	}
	if got := up.Calls.Load(); got != 10 {
		t.Fatalf("upstream received %d calls, want all 10 (4xx is the caller's fault)", got)
	}
}

func TestNothingLeftAnswers503WithRetryAfter(t *testing.T) {
	down := sidecartest.NewUpstream(t, "down", http.StatusBadGateway)
	_, e := callProxy(t, map[string]policies.Upstream{"up": {URL: down.URL}}, &sidecartest.Discovery{}, 20*time.Second)
	// The first three answers are the upstream's own 502s.
	for i := 0; i < 3; i++ {
		e.GET("/call/up/x").Expect().Status(http.StatusBadGateway).Header(HeaderUpstream).IsEqual("up")
	}
	r := e.GET("/call/up/x").Expect().Status(http.StatusServiceUnavailable)
	r.Header("Retry-After").AsNumber().InRange(15, 20)
	r.JSON().Object().Value("error").Object().HasValue("type", "unavailable").
		Value("message").String().Contains("open")
	if got := down.Calls.Load(); got != 3 {
		t.Fatalf("the open upstream received %d calls, want 3", got)
	}
	e.GET("/call/nope/x").Expect().Status(http.StatusNotFound).JSON().Object().
		Value("error").Object().Value("message").String().Contains(`no upstream named "nope"`)
}

func TestBadInstanceEjectedWhileOthersServe(t *testing.T) {
	good1, good2 := sidecartest.NewUpstream(t, "good1", http.StatusOK), sidecartest.NewUpstream(t, "good2", http.StatusOK)
	bad := sidecartest.NewUpstream(t, "bad", http.StatusInternalServerError)
	d := &sidecartest.Discovery{}
	d.Set("svc", instanceOf(t, "bad", bad), instanceOf(t, "good1", good1), instanceOf(t, "good2", good2))
	_, e := callProxy(t, map[string]policies.Upstream{"svc": {Service: "svc", Retries: 1}}, d, time.Minute)

	// Every GET is answered (a failure on the bad instance is retried on another)
	for i := 0; i < 30; i++ {
		e.GET("/call/svc/item").Expect().Status(http.StatusOK).Header("X-Answered-By").NotEqual("bad")
	}
	// And the bad instance saw exactly 3 calls before its breaker ejected it
	if got := bad.Calls.Load(); got != 3 {
		t.Fatalf("bad instance received %d calls, want 3", got)
	}
	if good1.Calls.Load() == 0 || good2.Calls.Load() == 0 {
		t.Fatalf("calls not spread: good1 %d, good2 %d", good1.Calls.Load(), good2.Calls.Load())
	}
}

func TestTimeoutAnswers504AndCounts(t *testing.T) {
	slow := sidecartest.NewUpstream(t, "slow", http.StatusOK)
	slow.Delay.Store(int64(2 * time.Second))
	_, e := callProxy(t, map[string]policies.Upstream{"slow": {URL: slow.URL, Timeout: 100 * time.Millisecond}}, &sidecartest.Discovery{}, time.Minute)
	e.POST("/call/slow/x").Expect().Status(http.StatusGatewayTimeout).JSON().Object().
		Value("error").Object().HasValue("type", "timeout")
}

// A POST that timed out may already have been acted on, so it is not sent
// again, unless the caller says a repeat is safe with an Idempotency-Key.
func TestTimedOutPostGoesToFallbackOnlyWithIdempotencyKey(t *testing.T) {
	slow := sidecartest.NewUpstream(t, "slow", http.StatusOK)
	slow.Delay.Store(int64(2 * time.Second))
	lite := sidecartest.NewUpstream(t, "lite", http.StatusOK)
	_, e := callProxy(t, map[string]policies.Upstream{
		"slow": {URL: slow.URL, Timeout: 100 * time.Millisecond, Fallback: []string{"lite"}},
		"lite": {URL: lite.URL},
	}, &sidecartest.Discovery{}, time.Minute)

	e.POST("/call/slow/task").WithText("t1").Expect().Status(http.StatusGatewayTimeout)
	if n := lite.Calls.Load(); n != 0 {
		t.Fatalf("a timed-out POST without Idempotency-Key was sent again to the fallback (%d calls)", n)
	}
	r := e.POST("/call/slow/task").WithHeader("Idempotency-Key", "task-2").WithText("t2").Expect().Status(http.StatusOK)
	r.Header("X-Answered-By").IsEqual("lite")
	r.Header("X-Sidecar-Fallback").IsEqual("true")
	if got := lite.LastBody(); got != "POST /task t2" {
		t.Fatalf("fallback got %q, want the same request", got)
	}
	if n := slow.Calls.Load(); n != 2 {
		t.Fatalf("slow got %d calls, want 2", n)
	}
}

func TestConnectionRefusedGoesToNextInstance(t *testing.T) {
	good := sidecartest.NewUpstream(t, "good", http.StatusOK)
	gone := sidecartest.NewUpstream(t, "gone", http.StatusOK)
	goneInst := instanceOf(t, "gone", gone)
	gone.Close()
	d := &sidecartest.Discovery{}
	d.Set("svc", goneInst, instanceOf(t, "good", good))
	_, e := callProxy(t, map[string]policies.Upstream{"svc": {Service: "svc", Retries: 1}}, d, time.Minute)
	// A POST is retried elsewhere when nothing was sent.
	for i := 0; i < 4; i++ {
		e.POST("/call/svc/task").WithText("t").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("good")
	}
}

func TestBulkheadSendsOverflowToTheFallback(t *testing.T) {
	slow := sidecartest.NewUpstream(t, "slow", http.StatusOK)
	slow.Delay.Store(int64(400 * time.Millisecond))
	backup := sidecartest.NewUpstream(t, "backup", http.StatusOK)
	_, e := callProxy(t, map[string]policies.Upstream{
		"primary": {URL: slow.URL, Fallback: []string{"backup"}, MaxConcurrent: 1},
		"backup":  {URL: backup.URL},
		"alone":   {URL: slow.URL, MaxConcurrent: 1},
	}, &sidecartest.Discovery{}, time.Minute)

	// Given one call in flight to an upstream that takes one at a time
	first := make(chan string, 1)
	go func() {
		first <- e.GET("/call/primary/a").Expect().Raw().Header.Get("X-Answered-By")
	}()
	testutil.Eventually(t, "the first call at the upstream", 2*time.Second, func() bool { return slow.Calls.Load() == 1 })

	// When a second call comes, it goes to the fallback at once
	e.GET("/call/primary/b").Expect().Status(http.StatusOK).Header("X-Sidecar-Fallback").IsEqual("true")
	if backup.Calls.Load() != 1 || slow.Calls.Load() != 1 {
		t.Fatalf("calls: slow %d, backup %d", slow.Calls.Load(), backup.Calls.Load())
	}
	if got := <-first; got != "slow" {
		t.Fatalf("the first call was answered by %q", got)
	}
	// And once the first is done, the upstream takes calls again
	e.GET("/call/primary/c").Expect().Status(http.StatusOK).Header("X-Answered-By").IsEqual("slow")

	// Without a fallback, the overflow gets 503 with Retry-After and the reason
	alone := make(chan struct{})
	go func() { defer close(alone); e.GET("/call/alone/a").Expect() }()
	testutil.Eventually(t, "a call to alone in flight", 2*time.Second, func() bool { return slow.Calls.Load() == 3 })
	r := e.GET("/call/alone/b").Expect().Status(http.StatusServiceUnavailable)
	r.Header("Retry-After").IsEqual("1")
	r.JSON().Object().Value("error").Object().Value("message").String().Contains("max_concurrent")
	<-alone
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
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(time.Minute)}
	cfg.Upstreams = map[string]policies.Upstream{"ws": {Name: "ws", URL: up.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	s, _ := startProxy(t, cfg, Options{Discovery: &sidecartest.Discovery{}})

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
