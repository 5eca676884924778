package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// hook is a webhook that fails its first `fail` calls with 503.
type hook struct {
	mu       sync.Mutex
	fail     int
	calls    int
	received []Event
	headers  []http.Header
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls <= h.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err == nil {
		h.received = append(h.received, ev)
		h.headers = append(h.headers, r.Header.Clone())
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.received...)
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestNotifierRetriesUntilDelivered(t *testing.T) {
	h := &hook{fail: 2}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n := New([]policies.Notify{{
		Name: "ops", Webhook: srv.URL, Headers: map[string]string{"Authorization": "Bearer t"}, Timeout: time.Second, Retries: 3,
	}}, Options{Backoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx, context.Background()) }()

	n.Send(Event{Type: EventAgentIsolated, Agent: "writer", AgentID: "writer-1", Reason: "missed_heartbeats", Text: "isolated", Time: t0})
	// Delivered as the notifier counts it: the webhook having the event is
	// not enough, since stopping before its answer arrives cancels the call.
	testutil.Eventually(t, "delivery", 5*time.Second, func() bool { return n.Stats().Delivered == 1 })
	cancel()
	<-done

	got := h.events()[0]
	if got.Type != EventAgentIsolated || got.AgentID != "writer-1" || got.Reason != "missed_heartbeats" || got.Text == "" {
		t.Fatalf("delivered %+v", got)
	}
	if h.headers[0].Get("Authorization") != "Bearer t" || h.headers[0].Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", h.headers[0])
	}
	if st := n.Stats(); st.Delivered != 1 || st.Failed != 0 || h.calls != 3 {
		t.Fatalf("stats %+v after %d calls, want 1 delivered after 3 calls", st, h.calls)
	}
}

func TestNotifierGivesUpAndLogsWithoutSecrets(t *testing.T) {
	h := &hook{fail: 100}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var logs strings.Builder
	var logMu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})})
	url := strings.Replace(srv.URL, "http://", "http://user:pw-secret@", 1) + "/x?token=q-secret"
	n := New([]policies.Notify{{Name: "ops", Webhook: url, Headers: map[string]string{"X-Key": "hdr-secret"}, Timeout: time.Second, Retries: 1}},
		Options{Log: log, Backoff: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx, context.Background()) }()
	n.Send(Event{Type: EventAgentRecovered})
	testutil.Eventually(t, "give up", 5*time.Second, func() bool { return n.Stats().Failed == 1 })
	cancel()
	<-done
	if h.calls != 2 {
		t.Fatalf("webhook called %d times, want 2 (1 + 1 retry)", h.calls)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "notification not delivered") || !strings.Contains(out, "503") {
		t.Fatalf("log lacks the failure: %s", out)
	}
	for _, s := range []string{"pw-secret", "q-secret", "hdr-secret"} {
		if strings.Contains(out, s) {
			t.Fatalf("log contains secret %q: %s", s, out)
		}
	}
}

func TestNotifierSendNeverBlocks(t *testing.T) {
	n := New([]policies.Notify{{Name: "ops", Webhook: "http://127.0.0.1:1/", Retries: 0}}, Options{})
	// Nobody runs the queue: Send must still return at once, dropping the overflow.
	for i := 0; i < queueSize+10; i++ {
		n.Send(Event{Type: EventAgentIsolated})
	}
	if st := n.Stats(); st.Dropped != 10 || st.Queued != queueSize {
		t.Fatalf("stats %+v, want %d queued and 10 dropped", st, queueSize)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNotifierDoesNotFollowRedirects(t *testing.T) {
	// Given a webhook that redirects to another server, and a target with
	// a secret header and retries
	other := &hook{}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	var redirects atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, otherSrv.URL+"/landing/loc-s3cret?k=loc-query-s3cret", http.StatusFound)
	}))
	defer srv.Close()
	var logs testutil.SyncBuffer
	n := New([]policies.Notify{{
		Name: "ops", Webhook: srv.URL + "/hook/path-s3cret", Headers: map[string]string{"X-Hook-Secret": "hdr-s3cret"},
		Timeout: time.Second, Retries: 2,
	}}, Options{Log: hclog.New(&hclog.LoggerOptions{Output: &logs}), Backoff: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx, context.Background()) }()

	// When an event is sent
	n.Send(Event{Type: EventAgentIsolated})
	testutil.Eventually(t, "the delivery to end", 5*time.Second, func() bool {
		st := n.Stats()
		return st.Failed+st.Delivered > 0
	})
	cancel()
	<-done

	// Then the other server never sees the request nor its secret header,
	// the delivery counts as failed without retries, and the reason says
	// what to change
	other.mu.Lock()
	otherCalls := other.calls
	other.mu.Unlock()
	if otherCalls != 0 {
		t.Fatalf("the redirect target received %d request(s) with the secret header", otherCalls)
	}
	st := n.Stats()
	if st.Failed != 1 || st.Delivered != 0 || redirects.Load() != 1 {
		t.Fatalf("stats %+v after %d call(s), want 1 failed after 1 call (a redirect is not retried)", st, redirects.Load())
	}
	otherHost := strings.TrimPrefix(otherSrv.URL, "http://")
	for _, want := range []string{"302", otherHost, "redirects are not followed", "notify.ops.webhook"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("last_error %q lacks %q", st.LastError, want)
		}
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	for _, secret := range []string{"path-s3cret", "loc-s3cret", "loc-query-s3cret", "hdr-s3cret"} {
		if strings.Contains(st.LastError, secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("%q in last_error %q or the log:\n%s", secret, st.LastError, logs.String())
		}
	}
}
