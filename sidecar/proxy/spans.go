package proxy

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// Spans, when Options.Tracer is set: a server span per call ("call
// {upstream}") or task ("task {service}"), continuing the caller's W3C
// trace, and under it a client span per attempt ("attempt {upstream}"),
// whose context is what the attempt's request carries. With no tracer none
// of this runs and the caller's traceparent passes through untouched.

// served is what a traced request's server span reports when it ends;
// the call transport fills it in (it travels in the callPlan).
type served struct {
	span       trace.Span
	attempts   int // attempts sent so far
	status     int // the status answered, 0 when the caller went away first
	outcome    outcome.Outcome
	hasOutcome bool
	answeredBy string // the upstream, "local" or the peer that answered
	failure    string // why it failed, for the span's status
	canceled   bool   // the caller went away
}

// wrote records the status of an answer the proxy wrote itself before
// routing (writeJSONError calls it); nothing when tracing is off (s nil).
func (s *served) wrote(status int) {
	if s != nil {
		s.status = status
	}
}

// failed records that the sidecar answered with an error of type typ
// rather than the caller going away; nothing when tracing is off.
func (s *served) failed(typ string) {
	if s != nil {
		s.canceled, s.failure = false, typ
	}
}

// startServerSpan starts the server span of req, a child of the caller's
// trace context when its headers carry one, and returns req with the span
// in its context.
func startServerSpan(tracer trace.Tracer, req *http.Request, name, upstream string) (*http.Request, *served) {
	ctx := tracing.Propagation().Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	// The attributes are given at the start, for a sampler that decides
	// by them.
	ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.URLPath(req.URL.Path),
		attribute.String("sidecar.upstream", upstream),
	))
	return req.WithContext(ctx), &served{span: span}
}

// end ends the server span with how the request ended.
func (s *served) end() {
	span := s.span
	if !span.IsRecording() {
		span.End()
		return
	}
	if s.status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(s.status))
	}
	if s.hasOutcome {
		span.SetAttributes(attribute.String("sidecar.outcome", s.outcome.String()))
	} else if s.canceled {
		span.SetAttributes(attribute.String("sidecar.outcome", "canceled"))
	}
	if s.answeredBy != "" {
		span.SetAttributes(attribute.String("sidecar.answered_by", s.answeredBy))
	}
	span.SetAttributes(attribute.Int("sidecar.attempts", s.attempts))
	switch {
	case s.canceled:
		span.SetStatus(codes.Error, "the caller went away")
	case s.failure != "":
		span.SetStatus(codes.Error, s.failure)
	case s.status >= 500:
		span.SetStatus(codes.Error, strconv.Itoa(s.status)+" "+http.StatusText(s.status))
	}
	span.End()
}

// answeredBy names who answered in sidecar.answered_by: the upstream, or
// for a task "local" (the agent) or the peer's instance id.
func answeredBy(st stage, tg target) string {
	switch st.name {
	case "agent":
		return "local"
	case "peer":
		return tg.instance
	}
	return st.name
}

// stageTarget names a whole stage in a "skipped" event: the upstream, or
// "local" for the local agent, or "peer".
func stageTarget(st stage) string {
	if st.name == "agent" {
		return "local"
	}
	return st.name
}

// skipped adds a "skipped" event to the server span: target was not tried,
// for reason. Nothing when tracing is off (s nil).
func (s *served) skipped(target, reason string) {
	if s == nil || !s.span.IsRecording() {
		return
	}
	s.span.AddEvent("skipped", trace.WithAttributes(
		attribute.String("sidecar.target", target),
		attribute.String("sidecar.reason", reason),
	))
}

// breakerSkipped adds the "skipped" event of a target whose breaker
// refused the call, saying why: held by the target's own Retry-After,
// opened by an operator, or open. Nothing when tracing is off (s nil).
func (s *served) breakerSkipped(tg target) {
	if s == nil || !s.span.IsRecording() {
		return
	}
	reason := "breaker open"
	switch snap := tg.breaker.Snapshot(); {
	case snap.Held != "":
		reason = snap.Held
	case snap.Forced:
		reason = "breaker forced open"
	}
	s.skipped(tg.breaker.Name(), reason)
}

// startAttempt starts the client span of one attempt, a child of the
// server span in req's context: the attempt-th of the request, the
// retry-th retry of stage stageIndex (0 the upstream asked or the local
// agent, then the fallbacks, or the peers and the ingress's fallbacks).
func (t *callTransport) startAttempt(req *http.Request, st stage, tg target, stageIndex, retry, attempt int) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(req.Context(), "attempt "+st.name, trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		return ctx, span // sampled out: only its context is passed on
	}
	attrs := []attribute.KeyValue{
		attribute.Int("sidecar.attempt", attempt),
		attribute.Int("sidecar.fallback_index", stageIndex),
		attribute.Int("sidecar.retry", retry),
		attribute.String("sidecar.upstream", st.name),
		attribute.String("sidecar.instance", tg.instance),
		attribute.String("sidecar.breaker", tg.breaker.Name()),
		attribute.String("sidecar.breaker.state", tg.breaker.State().String()),
	}
	if host, port, err := net.SplitHostPort(tg.hostPort); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if n, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(n))
		}
	}
	span.SetAttributes(attrs...)
	return ctx, span
}

// injectAttempt writes the attempt's trace context into its request's
// headers (a copy of the caller's), replacing the caller's traceparent and
// tracestate: the target's own span is then the attempt's child.
func injectAttempt(ctx context.Context, out *http.Request, own bool) {
	if !own {
		out.Header = out.Header.Clone()
	}
	tracing.Inject(ctx, out.Header)
}

// endAttempt records how an attempt ended on its span: the status
// answered (0: none), its outcome and, for a failure, a short reason
// without secrets. The span ends now unless keep (then it ends with the
// answer's body).
func endAttempt(span trace.Span, status int, oc attemptOutcome, detail string, keep bool) {
	if !span.IsRecording() {
		if !keep {
			span.End()
		}
		return
	}
	if status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	span.SetAttributes(attribute.String("sidecar.outcome", oc.String()))
	if oc != outcomeOK {
		if detail == "" {
			detail = oc.String()
		}
		span.SetStatus(codes.Error, detail)
	}
	if !keep {
		span.End()
	}
}

// String names an attempt's outcome in its span's sidecar.outcome.
func (o attemptOutcome) String() string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeFailStatus:
		return "error"
	case outcomeNotSent:
		return "not_sent"
	case outcomeTimeout:
		return "timeout"
	case outcomeBroken:
		return "broken"
	case outcomeCanceled:
		return "canceled"
	case outcomeTokenRefused:
		return "token_refused"
	}
	return "unknown"
}
