package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// The agent's trace context, as its own tracing sends it.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerParent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// traced runs a gateway over cfg with opts and a tracer whose ended spans
// the returned recorder holds.
func traced(t *testing.T, cfg *policies.Config, opts Options) (string, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	opts.Tracer = tp.Tracer("github.com/agent-sidecar/sidecar")
	srv := httptest.NewServer(New(cfg, opts))
	t.Cleanup(srv.Close)
	return srv.URL + "/llm", sr
}

// requestTrace waits for the next request's server span to end (it ends
// when the handler returns, just after the agent has the answer) and
// returns it with its children, in the order they started.
func requestTrace(t *testing.T, sr *tracetest.SpanRecorder) (sdktrace.ReadOnlySpan, []sdktrace.ReadOnlySpan) {
	t.Helper()
	var server sdktrace.ReadOnlySpan
	testutil.Eventually(t, "the request's span ended", 5*time.Second, func() bool {
		for _, s := range sr.Ended() {
			if s.SpanKind() == trace.SpanKindServer {
				server = s
			}
		}
		return server != nil
	})
	var children []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Parent().SpanID() == server.SpanContext().SpanID() {
			children = append(children, s)
		}
	}
	slices.SortFunc(children, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	sr.Reset()
	return server, children
}

func attrsOf(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// wantAttrs reports every attribute of s that is missing or differs.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]any) {
	t.Helper()
	got := attrsOf(s)
	for k, w := range want {
		v, ok := got[attribute.Key(k)]
		if !ok {
			t.Errorf("span %q has no %s (want %v)", s.Name(), k, w)
			continue
		}
		if g := v.AsInterface(); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("span %q: %s = %v, want %v", s.Name(), k, g, w)
		}
	}
}

// parentIn reads the traceparent a model received: trace id and parent
// span id.
func parentIn(t *testing.T, h http.Header) (string, string) {
	t.Helper()
	parts := strings.Split(h.Get("Traceparent"), "-")
	if len(parts) != 4 {
		t.Fatalf("the model received traceparent %q", h.Get("Traceparent"))
	}
	return parts[1], parts[2]
}

// chatAnswerFull answers a chat completion as OpenAI does: its id, the
// dated model name, a finish reason and the usage.
func chatAnswerFull(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"chatcmpl-42","object":"chat.completion","model":"gpt-4o-mini-2024-07-18",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"from lite"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`)
}

// Given a primary that answers 503 and a fallback that answers, when an
// agent with its own trace context asks the primary, then its trace has
// the request's span with one child per model called, each model saw its
// own call as the parent, and the request's span says who answered and
// why the primary did not.
func TestTraceOfAFallback(t *testing.T) {
	primary := newScriptedModel(t, status(http.StatusServiceUnavailable))
	lite := newScriptedModel(t, chatAnswerFull)
	logs := &testutil.SyncBuffer{}
	var mu sync.Mutex
	var observed trace.SpanContext
	base, sr := traced(t, chainConfig(primary, lite, time.Minute), Options{
		Log: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
		Observe: func(_, _ string, _ outcome.Outcome, _ time.Duration, sc trace.SpanContext) {
			mu.Lock()
			observed = sc
			mu.Unlock()
		},
	})

	resp, body := post(t, base+"/v1/chat/completions", chatBody, "Traceparent", callerParent, "Tracestate", "vendor=v1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	server, tries := requestTrace(t, sr)

	if server.Name() != "llm gpt-4o" || server.SpanKind() != trace.SpanKindServer {
		t.Errorf("request span %q (%v), want \"llm gpt-4o\" (server)", server.Name(), server.SpanKind())
	}
	if server.SpanContext().TraceID().String() != callerTrace || server.Parent().SpanID().String() != callerSpan {
		t.Errorf("the request's span is in trace %s under %s, want the agent's %s under %s",
			server.SpanContext().TraceID(), server.Parent().SpanID(), callerTrace, callerSpan)
	}
	wantAttrs(t, server, map[string]any{
		"http.request.method": "POST", "url.path": "/llm/v1/chat/completions", "gen_ai.operation.name": "chat",
		"gen_ai.request.model": "gpt-4o", "sidecar.served_by": "gpt-4o-mini", "sidecar.degraded": true,
		"sidecar.degraded_reason": "gpt-4o: 503", "sidecar.attempts": 2, "http.response.status_code": 200,
		"sidecar.outcome": "fallback",
	})
	if server.Status().Code == codes.Error {
		t.Errorf("an answered request's span has status %v", server.Status())
	}
	mu.Lock()
	if observed.SpanID() != server.SpanContext().SpanID() {
		t.Errorf("Observe got span %s, want the request's %s", observed.SpanID(), server.SpanContext().SpanID())
	}
	mu.Unlock()

	if len(tries) != 2 {
		t.Fatalf("%d model calls traced, want 2", len(tries))
	}
	first, second := tries[0], tries[1]
	if first.Name() != "chat gpt-4o-2024-08-06" || second.Name() != "chat gpt-4o-mini" {
		t.Errorf("call spans %q, %q; want the operation and the model name sent", first.Name(), second.Name())
	}
	wantAttrs(t, first, map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
		"gen_ai.request.model": "gpt-4o-2024-08-06", "sidecar.model": "gpt-4o", "sidecar.fallback_index": 0,
		"sidecar.attempt": 1, "sidecar.breaker.state": "closed", "sidecar.translated": false, "sidecar.stream": false,
		"server.address": "127.0.0.1", "http.response.status_code": 503,
	})
	if first.Status().Code != codes.Error || first.Status().Description != "503" {
		t.Errorf("the failed call's span has status %v, want Error \"503\"", first.Status())
	}
	wantAttrs(t, second, map[string]any{
		"gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
		"gen_ai.response.id": "chatcmpl-42", "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
		"gen_ai.response.finish_reasons": []string{"stop"}, "sidecar.model": "gpt-4o-mini",
		"sidecar.fallback_index": 1, "sidecar.attempt": 2, "http.response.status_code": 200,
	})
	if second.Status().Code != codes.Unset {
		t.Errorf("the answering call's span has status %v", second.Status())
	}
	if _, ok := attrsOf(second)["sidecar.time_to_first_token_ms"]; !ok || !hasEvent(second, "first_token") {
		t.Errorf("the answering call's span has no time to first token: %v %v", second.Attributes(), second.Events())
	}
	if port := attrsOf(second)["server.port"].AsInt64(); fmt.Sprint(port) != lite.srv.URL[strings.LastIndex(lite.srv.URL, ":")+1:] {
		t.Errorf("server.port %d, model at %s", port, lite.srv.URL)
	}

	for _, c := range []struct {
		model *scriptedModel
		span  sdktrace.ReadOnlySpan
	}{{primary, first}, {lite, second}} {
		_, h := c.model.last()
		traceID, parent := parentIn(t, h)
		if traceID != callerTrace || parent != c.span.SpanContext().SpanID().String() {
			t.Errorf("%s received traceparent %s, want trace %s under its call %s", c.span.Name(), h.Get("Traceparent"),
				callerTrace, c.span.SpanContext().SpanID())
		}
		if h.Get("Tracestate") != "vendor=v1" {
			t.Errorf("%s received tracestate %q, want the agent's", c.span.Name(), h.Get("Tracestate"))
		}
	}
	if !strings.Contains(logs.String(), "degraded answer") || !strings.Contains(logs.String(), "trace_id="+callerTrace) {
		t.Errorf("the degraded answer's log line has no trace id:\n%s", logs)
	}
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	return eventOf(s, name) != nil
}

func eventOf(s sdktrace.ReadOnlySpan, name string) *sdktrace.Event {
	for _, e := range s.Events() {
		if e.Name == name {
			return &e
		}
	}
	return nil
}

// A streamed answer's call span lasts as long as the stream: its first
// token is the first content (not the role chunk before it), and the
// usage and finish reason the stream ends with are on it.
func TestTraceOfAStream(t *testing.T) {
	var mu sync.Mutex
	var contentSent, lastSent time.Time
	model := newScriptedModel(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(data string, at *time.Time) {
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			if at != nil {
				*at = time.Now()
			}
			mu.Unlock()
			_, _ = io.WriteString(w, "data: "+data+"\n\n")
			w.(http.Flusher).Flush()
		}
		const head = `{"id":"chatcmpl-7","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[`
		send(head+`{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`, nil)
		send(head+`{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}`, &contentSent)
		send(head+`{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null}`, nil)
		send(head+`{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}`, nil)
		send(head+`],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`, &lastSent)
		send("[DONE]", nil)
	})
	// Passed on as it comes, and held until the first content (degrade_on
	// "empty"): the model's events are read the same way.
	for _, degradeOn := range [][]string{nil, {policies.DegradeEmpty}} {
		t.Run(fmt.Sprint("degrade_on=", degradeOn), func(t *testing.T) {
			cfg := chainConfig(model, model, time.Minute)
			m := cfg.Models["gpt-4o"]
			m.DegradeOn = degradeOn
			cfg.Models["gpt-4o"] = m
			base, sr := traced(t, cfg, Options{})
			traceStream(t, base, sr, &mu, &contentSent, &lastSent)
		})
	}
}

// traceStream asks for the stream of TestTraceOfAStream's model and
// checks its call span against the times the model sent its first
// content and its last chunk.
func traceStream(t *testing.T, base string, sr *tracetest.SpanRecorder, mu *sync.Mutex, contentSent, lastSent *time.Time) {
	t.Helper()
	resp, events := readStream(t, base+"/v1/chat/completions", streamBody)
	if resp.StatusCode != http.StatusOK || len(events) != 5 {
		t.Fatalf("%s, %d events: %q", resp.Status, len(events), events)
	}
	_, tries := requestTrace(t, sr)
	if len(tries) != 1 {
		t.Fatalf("%d call spans, want 1", len(tries))
	}
	s := tries[0]
	wantAttrs(t, s, map[string]any{
		"sidecar.stream": true, "gen_ai.response.id": "chatcmpl-7", "gen_ai.response.model": "gpt-4o-2024-08-06",
		"gen_ai.usage.input_tokens": 9, "gen_ai.usage.output_tokens": 2, "gen_ai.response.finish_reasons": []string{"length"},
	})
	mu.Lock()
	content, last := *contentSent, *lastSent
	mu.Unlock()
	ev := eventOf(s, "first_token")
	if ev == nil {
		t.Fatalf("no first_token event: %v", s.Events())
	}
	if ev.Time.Before(content) || !ev.Time.Before(last) {
		t.Errorf("first token at %v, want after the first content (%v) and before the stream's end (%v)",
			ev.Time, content, last)
	}
	ttft := attrsOf(s)["sidecar.time_to_first_token_ms"].AsFloat64()
	if want := float64(content.Sub(s.StartTime()).Microseconds()) / 1000; ttft < want {
		t.Errorf("time to first token %.3f ms, the first content was sent %.3f ms after the call started", ttft, want)
	}
	if s.EndTime().Before(last) {
		t.Errorf("the call's span ended at %v, before the stream's last chunk (%v)", s.EndTime(), last)
	}
}

// An OpenAI request served by an Anthropic model: the call span says so,
// and reads the model's own answer (its stop reason and usage), whole and
// streamed.
func TestTraceOfATranslatedCall(t *testing.T) {
	var fakes crossFakes
	var urls [4]string
	fakes.gpt, urls[0] = fakeServer(t, "gpt-4o", "From GPT.")
	fakes.claude, urls[1] = fakeServer(t, "claude-haiku", "From Claude.")
	fakes.claudeBig, urls[2] = fakeServer(t, "claude-sonnet", "From the big Claude.")
	fakes.gptMini, urls[3] = fakeServer(t, "gpt-4o-mini", "From the mini GPT.")
	base, sr := traced(t, crossConfig(urls[0], urls[1], urls[2], urls[3]), Options{})
	fakes.gpt.Set(fakellm.Faults{FailNext: 1000, FailStatus: 503})

	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			req := fmt.Sprintf(`{"model":"gpt-4o","stream":%v,"messages":[{"role":"user","content":"Say hello."}],"max_tokens":50}`, stream)
			resp, body := post(t, base+"/v1/chat/completions", req, "Traceparent", callerParent)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Claude") {
				t.Fatalf("%s %s", resp.Status, body)
			}
			server, tries := requestTrace(t, sr)
			if len(tries) != 2 {
				t.Fatalf("%d call spans, want 2", len(tries))
			}
			s := tries[1]
			if s.Name() != "chat claude-haiku-upstream" {
				t.Errorf("call span %q", s.Name())
			}
			wantAttrs(t, s, map[string]any{
				"gen_ai.provider.name": "anthropic", "gen_ai.system": "anthropic", "sidecar.translated": true,
				"sidecar.stream": stream, "gen_ai.response.model": "claude-haiku-upstream",
				"gen_ai.response.finish_reasons": []string{"end_turn"},
			})
			a := attrsOf(s)
			if !strings.HasPrefix(a["gen_ai.response.id"].AsString(), "msg_") || a["gen_ai.usage.input_tokens"].AsInt64() <= 0 ||
				a["gen_ai.usage.output_tokens"].AsInt64() <= 0 {
				t.Errorf("the Anthropic answer's id and usage are not on its span: %v", s.Attributes())
			}
			wantAttrs(t, server, map[string]any{"sidecar.served_by": "claude-haiku", "sidecar.degraded": true})
			last, _ := fakes.claude.Last()
			if traceID, parent := parentIn(t, last.Header); traceID != callerTrace || parent != s.SpanContext().SpanID().String() {
				t.Errorf("the Anthropic model received traceparent %s, want its call %s as the parent",
					last.Header.Get("Traceparent"), s.SpanContext().SpanID())
			}
		})
	}
}

// A model whose breaker is open is not called: the request's span has a
// skipped event saying so, with the reason of the degradation.
func TestTraceOfABreakerOpenSkip(t *testing.T) {
	primary := newScriptedModel(t, status(http.StatusInternalServerError))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, sr := traced(t, chainConfig(primary, lite, time.Minute), Options{})
	for range 3 { // the breaker opens after 3 failures in a row
		post(t, base+"/v1/chat/completions", chatBody)
		requestTrace(t, sr)
	}

	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderAttempts) != "1" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	server, tries := requestTrace(t, sr)
	if len(tries) != 1 || attrsOf(tries[0])["sidecar.model"].AsString() != "gpt-4o-mini" {
		t.Fatalf("call spans %v, want only the lite model's", tries)
	}
	ev := eventOf(server, "skipped")
	if ev == nil {
		t.Fatalf("no skipped event on the request's span: %v", server.Events())
	}
	got := map[attribute.Key]string{}
	for _, kv := range ev.Attributes {
		got[kv.Key] = kv.Value.AsString()
	}
	if got["sidecar.target"] != "gpt-4o" || !strings.HasPrefix(got["sidecar.reason"], "breaker open (half-open in ") {
		t.Errorf("skipped event %v, want gpt-4o, breaker open", got)
	}
	reason := attrsOf(server)["sidecar.degraded_reason"].AsString()
	if reason != "gpt-4o: "+got["sidecar.reason"] {
		t.Errorf("degraded_reason %q, want the skip's reason", reason)
	}
}

// errorTraceID reads the trace_id inside the error object of an error
// body of either provider.
func errorTraceID(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct {
			TraceID *string `json:"trace_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Error.TraceID == nil {
		return ""
	}
	return *e.Error.TraceID
}

// The gateway's own error bodies, in both providers' shapes, carry the
// request's trace id inside the error object: its span's when tracing is
// on, else the agent's traceparent's; without either, they are the bytes
// they always were.
func TestErrorBodiesCarryTheTraceID(t *testing.T) {
	primary := newScriptedModel(t, status(http.StatusInternalServerError))
	lite := newScriptedModel(t, status(http.StatusInternalServerError))
	tracedBase, sr := traced(t, anthropicChain(primary, lite), Options{})
	plainBase, _ := gw(t, anthropicChain(primary, lite))
	const unknown = `{"model":"nope","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	const known = `{"model":"claude-big","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

	t.Run("tracing on, the agent's context", func(t *testing.T) {
		for _, path := range []string{"/v1/messages", "/v1/chat/completions"} {
			resp, body := post(t, tracedBase+path, unknown, "Traceparent", callerParent)
			if resp.StatusCode != http.StatusNotFound || errorTraceID(t, body) != callerTrace {
				t.Errorf("%s: %s %s, want trace_id %s", path, resp.Status, body, callerTrace)
			}
			server, _ := requestTrace(t, sr)
			wantAttrs(t, server, map[string]any{"http.response.status_code": 404, "gen_ai.request.model": "nope"})
		}
		// The Anthropic shape: {"type":"error","error":{...,"trace_id"}}.
		resp, body := post(t, tracedBase+"/v1/messages", unknown, "Traceparent", callerParent)
		want := string(errorBody(policies.ProviderAnthropic, http.StatusNotFound, modelNotFound("nope", []string{"claude-big", "claude-small"}), callerTrace))
		if resp.StatusCode != http.StatusNotFound || body != want || !strings.HasPrefix(body, `{"type":"error","error":{"type":"not_found_error",`) {
			t.Errorf("got %s\nwant %s", body, want)
		}
		requestTrace(t, sr)
	})
	t.Run("tracing on, no context: the request's own trace", func(t *testing.T) {
		resp, body := post(t, tracedBase+"/v1/messages", known)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s %s", resp.Status, body)
		}
		server, tries := requestTrace(t, sr)
		if id := errorTraceID(t, body); id != server.SpanContext().TraceID().String() || id == callerTrace {
			t.Errorf("503 body %s, want the request span's trace id %s", body, server.SpanContext().TraceID())
		}
		if server.Status().Code != codes.Error || server.Status().Description != "no model could answer" || len(tries) != 2 {
			t.Errorf("request span status %v with %d calls", server.Status(), len(tries))
		}
		wantAttrs(t, server, map[string]any{"sidecar.served_by": "", "sidecar.outcome": "failure", "http.response.status_code": 503})
	})
	t.Run("tracing off: the agent's traceparent", func(t *testing.T) {
		resp, body := post(t, plainBase+"/v1/chat/completions", unknown, "Traceparent", callerParent)
		if resp.StatusCode != http.StatusNotFound || errorTraceID(t, body) != callerTrace || !strings.HasPrefix(body, `{"error":{"message":`) {
			t.Errorf("%s %s, want an OpenAI error with trace_id %s", resp.Status, body, callerTrace)
		}
	})
	t.Run("no trace id: no field", func(t *testing.T) {
		resp, body := post(t, plainBase+"/v1/messages", known)
		want := `{"type":"error","error":{"type":"overloaded_error","message":"no model could answer: claude-big: 500; claude-small: 500"}}`
		if resp.StatusCode != http.StatusServiceUnavailable || body != want {
			t.Errorf("got %s %s\nwant %s", resp.Status, body, want)
		}
		resp, body = post(t, plainBase+"/v1/chat/completions", unknown, "Traceparent", "00-not-a-trace-01")
		if strings.Contains(body, "trace_id") {
			t.Errorf("%s %s: a trace_id from a malformed traceparent", resp.Status, body)
		}
	})
}

// With tracing off nothing of the agent's trace context is touched: the
// model receives its traceparent, tracestate and baggage as they were.
func TestTracingOffPassesTheTraceContextUntouched(t *testing.T) {
	model := newScriptedModel(t, chatOK("hi"))
	base, _ := gw(t, chainConfig(model, model, time.Minute))
	resp, body := post(t, base+"/v1/chat/completions", chatBody,
		"Traceparent", callerParent, "Tracestate", "vendor=v1", "Baggage", "tenant=acme")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, body)
	}
	_, h := model.last()
	for k, want := range map[string]string{"Traceparent": callerParent, "Tracestate": "vendor=v1", "Baggage": "tenant=acme"} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("the model received %s %q, want %q", k, got, want)
		}
	}
}

// A model over HTTPS is called by net/http's transport (HTTP/2 here): it
// too receives the call's context, and the agent's baggage.
func TestTraceContextReachesAModelOverHTTPS(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	var proto string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got, proto = r.Header.Clone(), r.Proto
		mu.Unlock()
		chatOK("over TLS")(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tr := NewTransport(roots)
	t.Cleanup(tr.CloseIdleConnections)
	cfg := &policies.Config{
		Breakers: map[string]policies.Breaker{"default": {}},
		Models:   map[string]policies.Model{"tls": openaiModel("tls", srv.URL)},
		Gateway:  policies.Gateway{MaxRequestBytes: 1 << 20},
	}
	base, sr := traced(t, cfg, Options{Transport: tr, Breakers: breaker.NewSet()})

	resp, body := post(t, base+"/v1/chat/completions", `{"model":"tls","messages":[{"role":"user","content":"hi"}]}`,
		"Traceparent", callerParent, "Baggage", "tenant=acme")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, body)
	}
	_, tries := requestTrace(t, sr)
	mu.Lock()
	defer mu.Unlock()
	traceID, parent := parentIn(t, got)
	if proto != "HTTP/2.0" || traceID != callerTrace || parent != tries[0].SpanContext().SpanID().String() {
		t.Errorf("the model received traceparent %s over %s, want its call %s as the parent over HTTP/2",
			got.Get("Traceparent"), proto, tries[0].SpanContext().SpanID())
	}
	if got.Get("Baggage") != "tenant=acme" {
		t.Errorf("the model received baggage %q", got.Get("Baggage"))
	}
	if tracing.TraceID(context.Background(), got) != callerTrace {
		t.Errorf("the model's trace id is not the agent's")
	}
}

// A spent budget sends the request to a cheaper model: the model asked
// for is a skipped event, and the cheaper model's call is its fallback.
func TestTraceOfABudgetDegrade(t *testing.T) {
	primary := newScriptedModel(t, chatOK("from primary"))
	lite := newScriptedModel(t, chatOK("from lite"))
	base, sr := traced(t, chainConfig(primary, lite, time.Minute), Options{
		Admit: func(string) Admission { return Admission{DegradeTo: "gpt-4o-mini"} }})

	resp, body := post(t, base+"/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderModel) != "gpt-4o-mini" {
		t.Fatalf("%s %v %s", resp.Status, resp.Header, body)
	}
	server, tries := requestTrace(t, sr)
	const why = "a budget is spent: every request goes to gpt-4o-mini"
	ev := eventOf(server, "skipped")
	if ev == nil || fmt.Sprint(ev.Attributes) != fmt.Sprint([]attribute.KeyValue{attrTarget.String("gpt-4o"), attrReason.String(why)}) {
		t.Errorf("skipped event %v, want gpt-4o for a spent budget", ev)
	}
	wantAttrs(t, server, map[string]any{"sidecar.degraded": true, "sidecar.degraded_reason": why, "sidecar.attempts": 1})
	if len(tries) != 1 {
		t.Fatalf("%d call spans, want 1", len(tries))
	}
	wantAttrs(t, tries[0], map[string]any{"sidecar.model": "gpt-4o-mini", "sidecar.fallback_index": 1, "sidecar.attempt": 1})
}

// A stream cut after it reached the agent fails its call and its request,
// and the error event the agent gets carries the trace id.
func TestTraceOfAnInterruptedStream(t *testing.T) {
	model := newScriptedModel(t, sse([]string{chunk("Hel"), chunk("lo")}, 0, false))
	base, sr := traced(t, chainConfig(model, model, time.Minute), Options{})

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(streamBody))
	req.Header.Set("Traceparent", callerParent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(out), "event: error") || !strings.Contains(string(out), `"trace_id":"`+callerTrace+`"`) {
		t.Errorf("the stream ended with\n%s\nwant an error event with the trace id", out)
	}
	server, tries := requestTrace(t, sr)
	const reason = "the stream ended before its last event"
	if len(tries) != 1 || tries[0].Status().Code != codes.Error || tries[0].Status().Description != reason {
		t.Fatalf("call spans %v, want one failed with %q", tries, reason)
	}
	if server.Status().Code != codes.Error || server.Status().Description != "the model's stream was interrupted: "+reason {
		t.Errorf("request span status %v", server.Status())
	}
	wantAttrs(t, server, map[string]any{"sidecar.outcome": "failure", "http.response.status_code": 200})
}
