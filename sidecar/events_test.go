package sidecar

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// sseReader reads server-sent events from GET /v1/events.
type sseReader struct {
	t    *testing.T
	resp *http.Response
	sc   *bufio.Scanner
}

func openEvents(t *testing.T, url string, lastID string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %s %v", resp.Status, resp.Header)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return &sseReader{t: t, resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's id line, type and data, failing the test
// after the limit.
func (r *sseReader) next(limit time.Duration) (id, typ string, ev StreamedEvent) {
	r.t.Helper()
	got := make(chan bool, 1)
	go func() {
		for r.sc.Scan() {
			line := r.sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev)
			case line == "" && typ != "":
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if !ok {
			r.t.Fatalf("the event stream ended: %v", r.sc.Err())
		}
	case <-time.After(limit):
		r.t.Fatalf("no event within %s", limit)
	}
	return id, typ, ev
}

func TestEventStreamReplaysAndFollowsTransitions(t *testing.T) {
	flaky := sidecartest.NewUpstream(t, "flaky", http.StatusServiceUnavailable)
	modelDown := sidecartest.NewUpstream(t, "model-down", http.StatusInternalServerError)
	modelLite := sidecartest.NewUpstream(t, "model-lite", http.StatusOK)
	cfg := testConfig()
	cfg.Health = policies.Health{HeartbeatInterval: 200 * time.Millisecond, MissedHeartbeats: 1, Grace: 100 * time.Millisecond}
	cfg.Breakers = map[string]policies.Breaker{"default": sidecartest.Breaker(300 * time.Millisecond)}
	cfg.Upstreams = map[string]policies.Upstream{"up": {Name: "up", URL: flaky.URL, Breaker: "default",
		Timeout: 5 * time.Second, Balance: policies.BalanceRoundRobin}}
	m := func(label, url, fallback string) policies.Model {
		return policies.Model{Label: label, Name: label, Provider: policies.ProviderOpenAI, BaseURL: url, Breaker: "default",
			Timeout: 5 * time.Second, FirstByteTimeout: time.Second, StreamIdleTimeout: time.Second, Fallback: fallback}
	}
	cfg.Models = map[string]policies.Model{"big": m("big", modelDown.URL, "small"), "small": m("small", modelLite.URL, "")}
	clock := testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s, _, e := startSidecar(t, cfg, Options{Discovery: &sidecartest.Discovery{}, Now: clock.Now})
	base := "http://" + s.Addr() + "/v1/events"

	// Given an agent that heartbeats (time moves only when the test moves
	// it, with a heartbeat at each step), and a subscriber
	s.Beat(health.Heartbeat{})
	sub := openEvents(t, base, "")
	// When a breaker trips
	for i := 0; i < 3; i++ {
		e.GET("/call/up/x").Expect().Status(http.StatusServiceUnavailable)
	}
	id1, typ, ev := sub.next(2 * time.Second)
	if typ != notify.EventBreakerOpen || ev.Breaker != "up@"+flaky.HostPort() || !strings.Contains(ev.Text, "3 consecutive failures") || ev.AgentID != "writer-1" {
		t.Fatalf("first event %s %+v", typ, ev)
	}
	// And after open_for a probe succeeds: breaker.closed
	flaky.Status.Store(http.StatusOK)
	for range 2 { // open_for is 300ms; a heartbeat is due every 200ms
		clock.Advance(150 * time.Millisecond)
		s.Beat(health.Heartbeat{})
	}
	e.GET("/call/up/x").Expect().Status(http.StatusOK)
	if _, typ, _ = sub.next(2 * time.Second); typ != notify.EventBreakerClosed {
		t.Fatalf("second event %s, want breaker.closed", typ)
	}
	// And a model starts being served by its fallback
	e.POST("/llm/v1/chat/completions").WithHeader("Content-Type", "application/json").WithBytes([]byte(`{"model":"big"}`)).Expect().Status(http.StatusOK)
	if _, typ, ev = sub.next(2 * time.Second); typ != notify.EventModelDegraded || ev.Model != "big" || !strings.Contains(ev.Text, "answers come from small") {
		t.Fatalf("third event %s %+v", typ, ev)
	}
	// And the agent falls silent past its interval and grace
	clock.Advance(400 * time.Millisecond)
	s.nudge()
	if _, typ, ev = sub.next(3 * time.Second); typ != notify.EventAgentIsolated || ev.Reason != health.ReasonMissedHeartbeats {
		t.Fatalf("fourth event %s %+v", typ, ev)
	}

	// Then a new subscriber gets them replayed, and one resuming after the
	// first event gets only the later ones
	replay := openEvents(t, base+"?replay=2", "")
	if _, typ, _ := replay.next(time.Second); typ != notify.EventModelDegraded {
		t.Fatalf("replay of 2 starts with %s", typ)
	}
	resumed := openEvents(t, base, id1)
	if _, typ, _ := resumed.next(time.Second); typ != notify.EventBreakerClosed {
		t.Fatalf("resumed after %s starts with %s", id1, typ)
	}
	// And status lists them; a bad replay gets a clear 400
	e.GET("/v1/status").Expect().JSON().Object().Value("events").Array().Length().IsEqual(4)
	e.GET("/v1/events").WithQuery("replay", "lots").Expect().Status(http.StatusBadRequest).
		JSON().Object().Value("error").Object().Value("message").String().Contains("replay must be a number")
}

func TestShutdownEndsEventStreams(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	s, err := New(testConfig(), hclog.NewNullLogger(), Options{Registry: newFakeRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	sub := openEvents(t, "http://"+s.Addr()+"/v1/events", "")
	_ = sub
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an open event stream held up the shutdown")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown took %s with an event stream open", took)
	}
}
