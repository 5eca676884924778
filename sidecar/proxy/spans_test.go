package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
)

// The caller's trace context, as an agent instrumented with OpenTelemetry
// sends it.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
	callerState  = "vendor=opaque"
	callerBag    = "tenant=acme"
)

// newTracer returns a tracer sampling every span, whose ended spans rec
// holds.
func newTracer(t *testing.T) (trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("github.com/agent-sidecar/sidecar"), rec
}

// seenHeaders is an upstream that answers status and records the trace
// headers of every request it receives.
type seenHeaders struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newSeenHeaders(t *testing.T, status int) *seenHeaders {
	t.Helper()
	u := &seenHeaders{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, http.Header{"Traceparent": r.Header.Values("Traceparent"),
			"Tracestate": r.Header.Values("Tracestate"), "Baggage": r.Header.Values("Baggage")})
		u.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *seenHeaders) requests() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

func (u *seenHeaders) instance(t *testing.T, id, service string) discovery.Instance {
	t.Helper()
	host, port := sidecartest.SplitHostPort(t, strings.TrimPrefix(u.URL, "http://"))
	return discovery.Instance{ID: id, Service: service, Address: host, Port: port}
}

// spansNamed returns the ended spans called name, in the order they started.
func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	return out
}

// attrs is a span's attributes by key, as strings.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// wantAttrs fails the test when a span lacks one of want's attributes.
func wantAttrs(t *testing.T, what string, kvs []attribute.KeyValue, want map[string]string) {
	t.Helper()
	got := attrs(kvs)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q (all: %v)", what, k, got[k], v, got)
		}
	}
}

func oneSpan(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	s := spansNamed(rec, name)
	if len(s) != 1 {
		var names []string
		for _, e := range rec.Ended() {
			names = append(names, e.Name())
		}
		t.Fatalf("%d spans named %q, want 1; ended: %v", len(s), name, names)
	}
	return s[0]
}

func TestCallSpansFollowEveryAttemptAndTheUpstreamsContinueThem(t *testing.T) {
	// Given an upstream whose two instances fail, and a fallback that answers
	a, b := newSeenHeaders(t, http.StatusServiceUnavailable), newSeenHeaders(t, http.StatusServiceUnavailable)
	backup := newSeenHeaders(t, http.StatusOK)
	d := &sidecartest.Discovery{}
	d.Set("svc", a.instance(t, "svc-a", "svc"), b.instance(t, "svc-b", "svc"))
	tracer, rec := newTracer(t)
	var observed []trace.SpanContext
	var mu sync.Mutex
	_, e := callProxyWith(t, map[string]policies.Upstream{
		"primary": {Service: "svc", Retries: 1, Fallback: []string{"backup"}},
		"backup":  {URL: backup.URL},
	}, d, time.Minute, Options{Tracer: tracer,
		Observe: func(_, _ string, _ outcome.Outcome, _ time.Duration, sc trace.SpanContext) {
			mu.Lock()
			observed = append(observed, sc)
			mu.Unlock()
		}})

	// When a caller in a trace makes a call
	e.GET("/call/primary/search").WithQuery("key", "secret").
		WithHeader("Traceparent", callerParent).WithHeader("Tracestate", callerState).WithHeader("Baggage", callerBag).
		Expect().Status(http.StatusOK).Header(HeaderUpstream).IsEqual("backup")

	// Then the call's server span continues the caller's trace
	srv := oneSpan(t, rec, "call primary")
	if srv.SpanKind() != trace.SpanKindServer || srv.Parent().SpanID().String() != callerSpan ||
		srv.SpanContext().TraceID().String() != callerTrace || !srv.Parent().IsRemote() {
		t.Fatalf("server span: kind %v, parent %v, trace %v", srv.SpanKind(), srv.Parent().SpanID(), srv.SpanContext().TraceID())
	}
	wantAttrs(t, "server span", srv.Attributes(), map[string]string{
		"http.request.method": "GET", "url.path": "/call/primary/search", "sidecar.upstream": "primary",
		"http.response.status_code": "200", "sidecar.outcome": "fallback", "sidecar.answered_by": "backup",
		"sidecar.attempts": "3",
	})
	if srv.Status().Code == codes.Error {
		t.Errorf("server span status %v, want not an error: the call was answered", srv.Status())
	}
	// And metrics saw the server span
	mu.Lock()
	if len(observed) != 1 || !observed[0].Equal(srv.SpanContext()) {
		t.Errorf("Observe got span contexts %v, want the server span's %v", observed, srv.SpanContext())
	}
	mu.Unlock()

	// And each attempt has a client span under it, with its place in the call
	attempts := append(spansNamed(rec, "attempt primary"), spansNamed(rec, "attempt backup")...)
	if len(attempts) != 3 {
		t.Fatalf("%d attempt spans, want 3", len(attempts))
	}
	port := func(u *seenHeaders) string {
		_, p := sidecartest.SplitHostPort(t, u.Listener.Addr().String())
		return strconv.Itoa(p)
	}
	byInstance := map[string]*seenHeaders{"svc-a": a, "svc-b": b, backup.Listener.Addr().String(): backup}
	for i, at := range attempts {
		got := attrs(at.Attributes())
		up := byInstance[got["sidecar.instance"]]
		if up == nil {
			t.Fatalf("attempt %d went to instance %q", i+1, got["sidecar.instance"])
		}
		want := map[string]string{
			"sidecar.attempt": strconv.Itoa(i + 1), "sidecar.fallback_index": "0", "sidecar.retry": strconv.Itoa(i),
			"sidecar.upstream": "primary", "server.address": "127.0.0.1", "server.port": port(up),
			"sidecar.breaker": "primary@" + up.Listener.Addr().String(), "sidecar.breaker.state": "closed",
			"http.response.status_code": "503", "sidecar.outcome": "error",
		}
		if i == 2 {
			want["sidecar.fallback_index"], want["sidecar.retry"], want["sidecar.upstream"] = "1", "0", "backup"
			want["sidecar.breaker"], want["http.response.status_code"], want["sidecar.outcome"] = "backup@"+up.Listener.Addr().String(), "200", "ok"
		}
		wantAttrs(t, "attempt "+strconv.Itoa(i+1), at.Attributes(), want)
		if at.SpanKind() != trace.SpanKindClient || at.Parent().SpanID() != srv.SpanContext().SpanID() ||
			at.SpanContext().TraceID() != srv.SpanContext().TraceID() {
			t.Errorf("attempt %d: kind %v, parent %v, want a client span under the server span", i+1, at.SpanKind(), at.Parent().SpanID())
		}
		if wantErr := i < 2; (at.Status().Code == codes.Error) != wantErr || wantErr && !strings.Contains(at.Status().Description, "503") {
			t.Errorf("attempt %d: status %v", i+1, at.Status())
		}
		// And the instance received the attempt's own context: the
		// caller's trace, the attempt as parent, the caller's tracestate
		// and baggage
		seen := up.requests()
		if len(seen) != 1 {
			t.Fatalf("instance %s received %d requests, want 1", got["sidecar.instance"], len(seen))
		}
		if want := "00-" + callerTrace + "-" + at.SpanContext().SpanID().String() + "-01"; seen[0].Get("Traceparent") != want {
			t.Errorf("attempt %d sent traceparent %q, want %q", i+1, seen[0].Get("Traceparent"), want)
		}
		if seen[0].Get("Tracestate") != callerState || seen[0].Get("Baggage") != callerBag {
			t.Errorf("attempt %d sent tracestate %q, baggage %q", i+1, seen[0].Get("Tracestate"), seen[0].Get("Baggage"))
		}
	}
	// And no attribute carries the query string
	for _, s := range rec.Ended() {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "secret") {
				t.Errorf("span %q attribute %s carries the query: %s", s.Name(), kv.Key, kv.Value.Emit())
			}
		}
	}
}

func TestWithoutTracerTheCallersTraceContextPassesUntouched(t *testing.T) {
	up := newSeenHeaders(t, http.StatusOK)
	_, e := callProxy(t, map[string]policies.Upstream{"up": {URL: up.URL, Retries: 1}}, &sidecartest.Discovery{}, time.Minute)
	e.GET("/call/up/x").WithHeader("Traceparent", callerParent).WithHeader("Tracestate", callerState).
		WithHeader("Baggage", callerBag).Expect().Status(http.StatusOK)
	e.GET("/call/up/x").Expect().Status(http.StatusOK)
	seen := up.requests()
	if len(seen) != 2 {
		t.Fatalf("%d requests", len(seen))
	}
	if seen[0].Get("Traceparent") != callerParent || seen[0].Get("Tracestate") != callerState || seen[0].Get("Baggage") != callerBag {
		t.Errorf("the upstream received %v, want the caller's trace headers as sent", seen[0])
	}
	if len(seen[1].Values("Traceparent")) != 0 || len(seen[1].Values("Tracestate")) != 0 {
		t.Errorf("a call without a trace reached the upstream with %v", seen[1])
	}
}

func TestIngressTaskOfAnIsolatedAgentGoesToAPeerUnderOneTrace(t *testing.T) {
	agent := sidecartest.NewUpstream(t, "agent", http.StatusOK)
	peer := newSeenHeaders(t, http.StatusOK)
	d := &sidecartest.Discovery{}
	d.Set("writer", peer.instance(t, "writer-2", "writer"))
	tracer, rec := newTracer(t)
	s := ingressProxyWith(t, agent, 0, d, map[string]policies.Upstream{}, Options{Tracer: tracer,
		AgentIsolated: func() (string, bool) { return "missed_heartbeats", true }})

	// When a task comes in a trace while the local agent is isolated
	sidecartest.NewExpect(t, "http://"+s.ingressAddr).POST("/task").WithHeader("Traceparent", callerParent).
		WithText("t1").Expect().Status(http.StatusOK)

	// Then the peer took it, and the task's span says so
	if agent.Calls.Load() != 0 {
		t.Fatalf("the isolated agent received %d tasks", agent.Calls.Load())
	}
	srv := oneSpan(t, rec, "task writer")
	wantAttrs(t, "task span", srv.Attributes(), map[string]string{
		"sidecar.upstream": "writer", "sidecar.outcome": "fallback", "sidecar.answered_by": "writer-2",
		"sidecar.attempts": "1", "http.response.status_code": "200", "url.path": "/task", "http.request.method": "POST",
	})
	if srv.SpanKind() != trace.SpanKindServer || srv.Parent().SpanID().String() != callerSpan {
		t.Errorf("task span: kind %v, parent %v", srv.SpanKind(), srv.Parent().SpanID())
	}
	// And the skipped local agent is an event on it, with the reason
	var skipped []map[string]string
	for _, ev := range srv.Events() {
		if ev.Name == "skipped" {
			skipped = append(skipped, attrs(ev.Attributes))
		}
	}
	if len(skipped) != 1 || skipped[0]["sidecar.target"] != "local" || !strings.Contains(skipped[0]["sidecar.reason"], "isolated (missed heartbeats)") {
		t.Errorf("skipped events %v, want one for the local agent, isolated", skipped)
	}
	at := oneSpan(t, rec, "attempt peer")
	wantAttrs(t, "peer attempt", at.Attributes(), map[string]string{
		"sidecar.attempt": "1", "sidecar.fallback_index": "1", "sidecar.retry": "0", "sidecar.instance": "writer-2",
		"sidecar.outcome": "ok", "http.response.status_code": "200",
	})
	if at.Parent().SpanID() != srv.SpanContext().SpanID() {
		t.Errorf("the peer attempt's parent is %v, want the task span", at.Parent().SpanID())
	}
	// And the peer's sidecar continues the attempt's context
	seen := peer.requests()
	if want := "00-" + callerTrace + "-" + at.SpanContext().SpanID().String() + "-01"; len(seen) != 1 || seen[0].Get("Traceparent") != want {
		t.Errorf("the peer received %v, want traceparent %q", seen, want)
	}
}

func TestSkippedTargetsAreEventsAndErrorBodiesCarryTheTraceID(t *testing.T) {
	for _, tc := range []struct {
		name       string
		header     http.Header // what the failing upstream answers with
		wantReason string
	}{
		{"breaker open", http.Header{}, "breaker open"},
		{"held by Retry-After", http.Header{"Retry-After": {"600"}}, "rate limited until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			t.Cleanup(down.Close)
			tracer, rec := newTracer(t)
			_, e := callProxyWith(t, map[string]policies.Upstream{"up": {URL: down.URL}}, &sidecartest.Discovery{}, time.Minute,
				Options{Tracer: tracer})
			// Given an upstream whose breaker opened
			for i := 0; i < 3; i++ {
				e.GET("/call/up/x").Expect()
			}
			rec.Reset()
			// When a call comes
			r := e.GET("/call/up/x").WithHeader("Traceparent", callerParent).Expect().Status(http.StatusServiceUnavailable)
			// Then its error body carries the trace id
			r.JSON().Object().Value("error").Object().HasValue("type", "unavailable").HasValue("trace_id", callerTrace)
			// And its span has an event for the skipped instance, and failed
			srv := oneSpan(t, rec, "call up")
			var skipped []map[string]string
			for _, ev := range srv.Events() {
				if ev.Name == "skipped" {
					skipped = append(skipped, attrs(ev.Attributes))
				}
			}
			target := "up@" + down.Listener.Addr().String()
			if len(skipped) != 1 || skipped[0]["sidecar.target"] != target || !strings.HasPrefix(skipped[0]["sidecar.reason"], tc.wantReason) {
				t.Errorf("skipped events %v, want one for %s: %s", skipped, target, tc.wantReason)
			}
			wantAttrs(t, "server span", srv.Attributes(), map[string]string{
				"sidecar.outcome": "rejected", "sidecar.attempts": "0", "http.response.status_code": "503"})
			if srv.Status().Code != codes.Error || srv.Status().Description != errUnavailable {
				t.Errorf("server span status %v, want an error: %s", srv.Status(), errUnavailable)
			}
			if len(spansNamed(rec, "attempt up")) != 0 {
				t.Errorf("an attempt span for a call that was not sent")
			}
		})
	}
}

func TestErrorBodiesCarryTheTraceID(t *testing.T) {
	up := sidecartest.NewUpstream(t, "up", http.StatusOK)
	ups := func() map[string]policies.Upstream { return map[string]policies.Upstream{"up": {URL: up.URL}} }
	tracer, rec := newTracer(t)
	_, off := callProxy(t, ups(), &sidecartest.Discovery{}, time.Minute)
	_, on := callProxyWith(t, ups(), &sidecartest.Discovery{}, time.Minute, Options{Tracer: tracer})

	// With tracing off or on, the caller's trace id is in the sidecar's errors
	for _, e := range []*httpexpect.Expect{off, on} {
		e.GET("/call/nope/x").WithHeader("Traceparent", callerParent).Expect().Status(http.StatusNotFound).
			JSON().Object().Value("error").Object().HasValue("trace_id", callerTrace)
		e.GET("/call/up/%2e%2e/x").WithHeader("Traceparent", callerParent).Expect().Status(http.StatusBadRequest).
			JSON().Object().Value("error").Object().HasValue("trace_id", callerTrace)
		// And an unknown upstream, which gets no span, names no trace when the caller has none
		o := e.GET("/call/nope/x").Expect().Status(http.StatusNotFound).JSON().Object().Value("error").Object()
		o.NotContainsKey("trace_id")
	}
	// With tracing on, a call without a trace starts one, which the error names
	rec.Reset()
	id := on.GET("/call/up/%2e%2e/x").Expect().Status(http.StatusBadRequest).
		JSON().Object().Value("error").Object().Value("trace_id").String().Raw()
	srv := oneSpan(t, rec, "call up")
	if id != srv.SpanContext().TraceID().String() {
		t.Errorf("error body trace id %q, want the call span's %s", id, srv.SpanContext().TraceID())
	}
	wantAttrs(t, "refused call", srv.Attributes(), map[string]string{"http.response.status_code": "400", "sidecar.attempts": "0"})
}

// logLines are the JSON log lines in logs whose message is msg.
func logLines(logs *testutil.SyncBuffer, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["@message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestLogLinesAboutACallCarryTheTraceID(t *testing.T) {
	// Given an upstream that is a sidecar's ingress refusing our token, and
	// one that switches to a protocol nobody asked for
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", IngressChallenge)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(refusing.Close)
	switching := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
	}))
	t.Cleanup(switching.Close)
	for _, traced := range []bool{false, true} {
		t.Run("traced="+strconv.FormatBool(traced), func(t *testing.T) {
			logs := &testutil.SyncBuffer{}
			opts := Options{Log: hclog.New(&hclog.LoggerOptions{Output: logs, JSONFormat: true, Level: hclog.Debug})}
			var rec *tracetest.SpanRecorder
			if traced {
				opts.Tracer, rec = newTracer(t)
			}
			p, e := callProxyWith(t, map[string]policies.Upstream{
				"sidecars": {URL: refusing.URL, IngressToken: "not-the-one"},
				"ws":       {URL: switching.URL},
			}, &sidecartest.Discovery{}, time.Minute, opts)

			// When calls in a trace fail so
			e.POST("/call/sidecars/task").WithHeader("Traceparent", callerParent).WithText("t").Expect().
				Status(http.StatusBadGateway).JSON().Object().Value("error").Object().
				HasValue("type", errIngressToken).HasValue("trace_id", callerTrace)
			c := sidecartest.RawRequest(t, p.Addr(), "GET /call/ws/socket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"+
				"Upgrade: echo\r\nTraceparent: "+callerParent+"\r\n\r\n")
			var body struct {
				Error struct {
					TraceID string `json:"trace_id"`
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || body.Error.TraceID != callerTrace {
				t.Fatalf("a refused protocol switch: %s, trace id %q", resp.Status, body.Error.TraceID)
			}

			// Then the log lines about them carry the caller's trace id
			for _, msg := range []string{"a sidecar's ingress refused the call for its ingress token", "proxied call failed"} {
				lines := logLines(logs, msg)
				if len(lines) != 1 || lines[0]["trace_id"] != callerTrace {
					t.Errorf("log lines %q: %v, want one with trace_id %s", msg, lines, callerTrace)
				}
			}
			if traced {
				srv := oneSpan(t, rec, "call ws")
				wantAttrs(t, "switch refused", srv.Attributes(), map[string]string{"http.response.status_code": "502"})
				if srv.Status().Code != codes.Error {
					t.Errorf("call span status %v", srv.Status())
				}
			}
		})
	}
}

// An attempt's trace context reaches the target whatever carries the
// request: the proxy's own HTTP/1.1 client, net/http's, HTTP/2; and a body
// sent again to a fallback goes with the fallback attempt's own context.
func TestEveryTransportCarriesTheAttemptsContext(t *testing.T) {
	type got struct{ traceparent, body, proto string }
	serve := func(t *testing.T, tls bool, status int) (string, func() []got) {
		var mu sync.Mutex
		var seen []got
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, got{r.Header.Get("Traceparent"), string(b), r.Proto})
			mu.Unlock()
			w.WriteHeader(status)
		}))
		if tls {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return srv.URL, func() []got { mu.Lock(); defer mu.Unlock(); return append([]got(nil), seen...) }
	}
	for _, tc := range []struct {
		name, proto string
		tls         bool
		transport   func(t *testing.T) http.RoundTripper
	}{
		{"h1", "HTTP/1.1", false, func(t *testing.T) http.RoundTripper {
			rt := NewTransport(nil)
			t.Cleanup(rt.CloseIdleConnections)
			return rt
		}},
		{"net/http", "HTTP/1.1", false, func(t *testing.T) http.RoundTripper {
			rt := &http.Transport{}
			t.Cleanup(rt.CloseIdleConnections)
			return rt
		}},
		{"HTTP/2", "HTTP/2.0", true, func(t *testing.T) http.RoundTripper {
			// httptest's TLS servers share one certificate
			probe := httptest.NewTLSServer(http.NotFoundHandler())
			rt := probe.Client().Transport.(*http.Transport).Clone()
			probe.Close()
			rt.ForceAttemptHTTP2 = true
			t.Cleanup(rt.CloseIdleConnections)
			return rt
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primaryURL, primarySeen := serve(t, tc.tls, http.StatusServiceUnavailable)
			backupURL, backupSeen := serve(t, tc.tls, http.StatusOK)
			tracer, rec := newTracer(t)
			_, e := callProxyWith(t, map[string]policies.Upstream{
				"primary": {URL: primaryURL, Fallback: []string{"backup"}},
				"backup":  {URL: backupURL},
			}, &sidecartest.Discovery{}, time.Minute, Options{Tracer: tracer, Transport: tc.transport(t)})

			e.POST("/call/primary/task").WithHeader("Traceparent", callerParent).WithText("the task").
				Expect().Status(http.StatusOK)

			for _, c := range []struct {
				span string
				seen []got
			}{{"attempt primary", primarySeen()}, {"attempt backup", backupSeen()}} {
				at := oneSpan(t, rec, c.span)
				want := got{"00-" + callerTrace + "-" + at.SpanContext().SpanID().String() + "-01", "the task", tc.proto}
				if len(c.seen) != 1 || c.seen[0] != want {
					t.Errorf("%s: the target received %+v, want %+v", c.span, c.seen, want)
				}
			}
		})
	}
}

// An upgraded connection's attempt carries its context, and its span
// lasts as long as the connection.
func TestUpgradeCarriesTheAttemptsContext(t *testing.T) {
	sent := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent <- r.Header.Get("Traceparent")
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		line, _ := brw.ReadString('\n')
		_, _ = io.WriteString(c, "echo: "+line)
	}))
	t.Cleanup(up.Close)
	tracer, rec := newTracer(t)
	p, _ := callProxyWith(t, map[string]policies.Upstream{"ws": {URL: up.URL}}, &sidecartest.Discovery{}, time.Minute,
		Options{Tracer: tracer})

	c := sidecartest.RawRequest(t, p.Addr(), "GET /call/ws/socket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"+
		"Upgrade: echo\r\nTraceparent: "+callerParent+"\r\n\r\n")
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = io.WriteString(c, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("through the upgraded connection: %q %v", line, err)
	}
	if n := len(spansNamed(rec, "attempt ws")); n != 0 {
		t.Fatalf("the attempt's span ended while its connection was open")
	}
	_ = c.Close()
	testutil.Eventually(t, "the call's spans end", 5*time.Second, func() bool {
		return len(spansNamed(rec, "attempt ws")) == 1 && len(spansNamed(rec, "call ws")) == 1
	})
	at := oneSpan(t, rec, "attempt ws")
	if got, want := <-sent, "00-"+callerTrace+"-"+at.SpanContext().SpanID().String()+"-01"; got != want {
		t.Errorf("the upgrade request carried traceparent %q, want %q", got, want)
	}
	wantAttrs(t, "upgrade attempt", at.Attributes(), map[string]string{"http.response.status_code": "101", "sidecar.outcome": "ok"})
}

// A caller whose trace is not sampled gets no span recorded, and its
// targets are told so, under the attempt's span id.
func TestASampledOutCallPassesItsDecisionOn(t *testing.T) {
	up := newSeenHeaders(t, http.StatusOK)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)) // parent-based: follows the caller
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_, e := callProxyWith(t, map[string]policies.Upstream{"up": {URL: up.URL}}, &sidecartest.Discovery{}, time.Minute,
		Options{Tracer: tp.Tracer("github.com/agent-sidecar/sidecar")})

	notSampled := "00-" + callerTrace + "-" + callerSpan + "-00"
	e.GET("/call/up/x").WithHeader("Traceparent", notSampled).Expect().Status(http.StatusOK)

	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded for a call the caller did not sample", n)
	}
	seen := up.requests()
	tp0 := seen[0].Get("Traceparent")
	if len(seen) != 1 || !strings.HasPrefix(tp0, "00-"+callerTrace+"-") || !strings.HasSuffix(tp0, "-00") || tp0 == notSampled {
		t.Fatalf("the upstream received traceparent %q, want the caller's trace, not sampled, under a span of the sidecar", tp0)
	}
}
