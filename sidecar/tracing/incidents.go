package tracing

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/health"
)

// Names of the incident spans' attributes and events (docs/tracing.md).
const (
	attrBreaker         = "sidecar.breaker"
	attrBreakerReason   = "sidecar.breaker.reason"
	attrIsolationReason = "sidecar.isolation.reason"
	attrEndedByShutdown = "sidecar.ended_by_shutdown"
	attrRestartAttempt  = "sidecar.restart.attempt"
	attrRestartReason   = "sidecar.restart.reason"
	attrNotifyTargets   = "sidecar.notify.targets"
	eventHalfOpen       = "half_open"
	eventReopened       = "reopened"
	eventRestart        = "restart"
	eventNotified       = "notified"
	spanBreakerOpen     = "breaker open "
	spanAgentIsolated   = "agent isolated "
)

// Incidents keeps a span open for as long as an incident lasts: a
// breaker from its opening to its close (`breaker open {breaker}`), the
// agent from its isolation to its recovery (`agent isolated {agent id}`).
// Each is a root span, so it shows on its own in the tracing UI. A nil
// *Incidents (tracing off) does nothing.
type Incidents struct {
	tracer  trace.Tracer
	agentID string

	// mu guards the open spans. The tracer's calls made under it (start,
	// event, end) never call back into the sidecar.
	mu       sync.Mutex
	breakers map[string]trace.Span
	isolated trace.Span
}

// NewIncidents returns nil when tracer is nil.
func NewIncidents(tracer trace.Tracer, agentID string) *Incidents {
	if tracer == nil {
		return nil
	}
	return &Incidents{tracer: tracer, agentID: agentID, breakers: map[string]trace.Span{}}
}

// BreakerChanged follows a breaker's transition: open starts its span (or,
// after half-open, adds "reopened"), half-open adds "half_open", close
// ends it.
func (is *Incidents) BreakerChanged(ch breaker.Change) {
	if is == nil {
		return
	}
	at := trace.WithTimestamp(ch.At)
	is.mu.Lock()
	defer is.mu.Unlock()
	span := is.breakers[ch.Name]
	switch ch.To {
	case breaker.Open:
		if span != nil {
			span.AddEvent(eventReopened, at, trace.WithAttributes(attribute.String(attrBreakerReason, ch.Reason)))
			return
		}
		_, span = is.tracer.Start(context.Background(), spanBreakerOpen+ch.Name, trace.WithNewRoot(),
			trace.WithSpanKind(trace.SpanKindInternal), at,
			trace.WithAttributes(attribute.String(attrBreaker, ch.Name), attribute.String(attrBreakerReason, ch.Reason),
				attribute.String(AttrAgentID, is.agentID)))
		is.breakers[ch.Name] = span
	case breaker.HalfOpen:
		if span != nil {
			span.AddEvent(eventHalfOpen, at)
		}
	case breaker.Closed:
		if span != nil {
			span.End(at)
			delete(is.breakers, ch.Name)
		}
	}
}

// BreakersGone ends the spans of breakers that no longer exist (a reload
// dropped their upstream, their instance left Consul).
func (is *Incidents) BreakersGone(names []string, at time.Time) {
	if is == nil {
		return
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, name := range names {
		if span := is.breakers[name]; span != nil {
			span.End(trace.WithTimestamp(at))
			delete(is.breakers, name)
		}
	}
}

// AgentChanged follows the agent's health: isolation starts its span,
// recovery ends it.
func (is *Incidents) AgentChanged(tr health.Transition) {
	if is == nil {
		return
	}
	at := trace.WithTimestamp(tr.At)
	is.mu.Lock()
	defer is.mu.Unlock()
	switch tr.Kind {
	case health.Isolated:
		if is.isolated != nil {
			return
		}
		_, is.isolated = is.tracer.Start(context.Background(), spanAgentIsolated+is.agentID, trace.WithNewRoot(),
			trace.WithSpanKind(trace.SpanKindInternal), at,
			trace.WithAttributes(attribute.String(AttrAgentID, is.agentID), attribute.String(attrIsolationReason, tr.Reason)))
	case health.Recovered:
		if is.isolated != nil {
			is.isolated.End(at)
			is.isolated = nil
		}
	}
}

// Notified adds "notified" to the isolation's span: the isolation was
// handed to targets notify targets.
func (is *Incidents) Notified(targets int, at time.Time) {
	if is == nil {
		return
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.isolated != nil {
		is.isolated.AddEvent(eventNotified, trace.WithTimestamp(at), trace.WithAttributes(attribute.Int(attrNotifyTargets, targets)))
	}
}

// Restarted adds "restart" to the isolation's span: the supervisor
// Restarted the agent (attempt counts the restarts since the sidecar
// started).
func (is *Incidents) Restarted(attempt int, reason string, at time.Time) {
	if is == nil {
		return
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.isolated != nil {
		is.isolated.AddEvent(eventRestart, trace.WithTimestamp(at), trace.WithAttributes(
			attribute.Int(attrRestartAttempt, attempt), attribute.String(attrRestartReason, reason)))
	}
}

// Isolated says whether an isolation's span is open.
func (is *Incidents) Isolated() bool {
	if is == nil {
		return false
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.isolated != nil
}

// Shutdown ends the spans still open, marked sidecar.ended_by_shutdown.
func (is *Incidents) Shutdown(at time.Time) {
	if is == nil {
		return
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	end := func(span trace.Span) {
		span.SetAttributes(attribute.Bool(attrEndedByShutdown, true))
		span.End(trace.WithTimestamp(at))
	}
	for name, span := range is.breakers {
		end(span)
		delete(is.breakers, name)
	}
	if is.isolated != nil {
		end(is.isolated)
		is.isolated = nil
	}
}
