package sidecar

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/health"
)

// Outcomes of a call, task or model request, for metrics.
const (
	resultSuccess  = "success"  // answered by the first choice
	resultFallback = "fallback" // answered by a fallback
	resultFailure  = "failure"  // ended in an error: a failure status, a timeout, a broken connection
	resultRejected = "rejected" // nothing could take it (every breaker open, nothing passing)
)

// Kinds of traffic, for metrics.
const (
	kindUpstream = "upstream" // /call/{upstream}/…
	kindModel    = "model"    // /llm/…
	kindTask     = "task"     // the ingress
)

// metrics holds the sidecar's Prometheus registry. Counters the sidecar
// already keeps (heartbeats, breakers, notifications, registration) are
// read at scrape time; only what happens on the request path is counted
// here.
type metrics struct {
	reg         *prometheus.Registry
	isolations  *prometheus.CounterVec
	recoveries  prometheus.Counter
	transitions *prometheus.CounterVec
	requests    *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	degraded    *prometheus.CounterVec
	avail       availability

	mu      sync.RWMutex
	targets map[[2]string]*targetMetrics // by kind and target
}

// targetMetrics are the request metrics of one kind and target, resolved
// once so the request path does not look labels up.
type targetMetrics struct {
	outcomes map[string]prometheus.Counter
	seconds  prometheus.Observer
}

// latencyBuckets span tool calls (milliseconds) to long model answers
// (minutes).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics(s *Sidecar) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), targets: map[[2]string]*targetMetrics{}}
	m.isolations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidecar_agent_isolations_total",
		Help: "Times the agent was isolated, by reason (missed_heartbeats, stalled)."}, []string{"reason"})
	m.recoveries = prometheus.NewCounter(prometheus.CounterOpts{Name: "sidecar_agent_recoveries_total",
		Help: "Times the agent recovered from isolation."})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidecar_breaker_transitions_total",
		Help: "Breaker state changes, by breaker and the state entered."}, []string{"breaker", "to"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidecar_requests_total",
		Help: "Calls (/call/), model requests (/llm/) and tasks (ingress), by kind, target and outcome " +
			"(success, fallback, failure, rejected)."}, []string{"kind", "target", "outcome"})
	m.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sidecar_request_duration_seconds",
		Help: "Time from a request's arrival to its answer's headers, by kind and target.", Buckets: latencyBuckets},
		[]string{"kind", "target"})
	m.degraded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidecar_model_degraded_answers_total",
		Help: "Model answers given by a fallback model, by the model asked for and the one that answered."},
		[]string{"model", "served_by"})
	m.reg.MustRegister(m.isolations, m.recoveries, m.transitions, m.requests, m.seconds, m.degraded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{s: s})
	for _, r := range []string{health.ReasonMissedHeartbeats, health.ReasonStalled} {
		m.isolations.WithLabelValues(r)
	}
	return m
}

// observe counts one finished request.
func (m *metrics) observe(kind, target, outcome string, d time.Duration) {
	key := [2]string{kind, target}
	m.mu.RLock()
	tm, ok := m.targets[key]
	m.mu.RUnlock()
	if !ok {
		tm = &targetMetrics{outcomes: map[string]prometheus.Counter{}, seconds: m.seconds.WithLabelValues(kind, target)}
		for _, o := range []string{resultSuccess, resultFallback, resultFailure, resultRejected} {
			tm.outcomes[o] = m.requests.WithLabelValues(kind, target, o)
		}
		m.mu.Lock()
		m.targets[key] = tm
		m.mu.Unlock()
	}
	tm.outcomes[outcome].Inc()
	tm.seconds.Observe(d.Seconds())
	m.avail.Record(outcome == resultSuccess || outcome == resultFallback, time.Now())
}

// forgetBreaker drops the transition series of a breaker that is gone (its
// state, trips and rejections are read from the breakers at scrape time).
func (m *metrics) forgetBreaker(name string) {
	for _, st := range []breaker.State{breaker.Closed, breaker.Open, breaker.HalfOpen} {
		m.transitions.DeleteLabelValues(name, st.String())
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// stateCollector reads the sidecar's own state at scrape time.
type stateCollector struct{ s *Sidecar }

var (
	descHeartbeats = prometheus.NewDesc("sidecar_heartbeats_total",
		"Heartbeats received from the agent (probes included).", nil, nil)
	descHeartbeatAge = prometheus.NewDesc("sidecar_last_heartbeat_age_seconds",
		"Seconds since the last heartbeat; absent before the first.", nil, nil)
	descAgentState = prometheus.NewDesc("sidecar_agent_state",
		"1 for the agent's current health state (waiting, healthy, isolated), 0 for the others.", []string{"state"}, nil)
	descBreakerState = prometheus.NewDesc("sidecar_breaker_state",
		"1 for each breaker's current state (closed, open, half-open), 0 for the others.", []string{"breaker", "state"}, nil)
	descBreakerTrips = prometheus.NewDesc("sidecar_breaker_trips_total",
		"Times each breaker opened.", []string{"breaker"}, nil)
	descBreakerRejected = prometheus.NewDesc("sidecar_breaker_rejected_total",
		"Calls each breaker kept from its target while open.", []string{"breaker"}, nil)
	descRegistered = prometheus.NewDesc("sidecar_consul_registered",
		"1 while the agent is registered in Consul.", nil, nil)
	descRegistrations = prometheus.NewDesc("sidecar_consul_registrations_total",
		"Successful registrations in Consul (a re-registration after Consul lost its state counts).", nil, nil)
	descConsulErrors = prometheus.NewDesc("sidecar_consul_error",
		"1 while the last attempt to register or update Consul failed.", nil, nil)
	descNotifications = prometheus.NewDesc("sidecar_notifications_total",
		"Notifications by result (delivered, failed, dropped).", []string{"result"}, nil)
	descModelCalls = prometheus.NewDesc("sidecar_model_calls_total",
		"Requests sent to each model (fallbacks included), by result: answered, failed, skipped (breaker open).",
		[]string{"model", "result"}, nil)
	descAvailability = prometheus.NewDesc("sidecar_availability_ratio",
		"Share of calls, model requests and tasks that ended in an answer (first choice or fallback) over the window; "+
			"absent without traffic.", []string{"window"}, nil)
	descAvailRequests = prometheus.NewDesc("sidecar_availability_requests",
		"Calls, model requests and tasks that ended in the window, by result (answered, error).",
		[]string{"window", "result"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeartbeats, descHeartbeatAge, descAgentState, descBreakerState,
		descBreakerTrips, descBreakerRejected, descRegistered, descRegistrations, descConsulErrors,
		descNotifications, descModelCalls, descAvailability, descAvailRequests} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	now := s.now()
	h := s.tracker.Snapshot()
	ch <- prometheus.MustNewConstMetric(descHeartbeats, prometheus.CounterValue, float64(h.Heartbeats))
	if !h.LastHeartbeat.IsZero() {
		ch <- prometheus.MustNewConstMetric(descHeartbeatAge, prometheus.GaugeValue, now.Sub(h.LastHeartbeat).Seconds())
	}
	for _, st := range []string{"waiting", "healthy", "isolated"} {
		ch <- prometheus.MustNewConstMetric(descAgentState, prometheus.GaugeValue, boolValue(h.State == st), st)
	}
	for _, b := range s.breakers.Snapshots() {
		for _, st := range []breaker.State{breaker.Closed, breaker.Open, breaker.HalfOpen} {
			ch <- prometheus.MustNewConstMetric(descBreakerState, prometheus.GaugeValue,
				boolValue(b.State == st.String()), b.Name, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descBreakerTrips, prometheus.CounterValue, float64(b.Trips), b.Name)
		ch <- prometheus.MustNewConstMetric(descBreakerRejected, prometheus.CounterValue, float64(b.Rejected), b.Name)
	}
	reg := s.registry.State()
	ch <- prometheus.MustNewConstMetric(descRegistered, prometheus.GaugeValue, boolValue(reg.Registered))
	ch <- prometheus.MustNewConstMetric(descRegistrations, prometheus.CounterValue, float64(reg.Registrations))
	ch <- prometheus.MustNewConstMetric(descConsulErrors, prometheus.GaugeValue, boolValue(consulFailing(reg)))
	n := s.notifier.Stats()
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n.Delivered), "delivered")
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n.Dropped), "dropped")
	for _, m := range s.gateway.Models() {
		ch <- prometheus.MustNewConstMetric(descModelCalls, prometheus.CounterValue, float64(m.Answers), m.Label, "answered")
		ch <- prometheus.MustNewConstMetric(descModelCalls, prometheus.CounterValue, float64(m.Failures), m.Label, "failed")
		ch <- prometheus.MustNewConstMetric(descModelCalls, prometheus.CounterValue, float64(m.Skipped), m.Label, "skipped")
	}
	for _, w := range s.metrics.avail.Windows(now) {
		if w.Ratio != nil {
			ch <- prometheus.MustNewConstMetric(descAvailability, prometheus.GaugeValue, *w.Ratio, w.Window)
		}
		ch <- prometheus.MustNewConstMetric(descAvailRequests, prometheus.GaugeValue, float64(w.Answered), w.Window, "answered")
		ch <- prometheus.MustNewConstMetric(descAvailRequests, prometheus.GaugeValue, float64(w.Errors), w.Window, "error")
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeModel counts one model request the gateway finished.
func (s *Sidecar) observeModel(model, servedBy, outcome string, d time.Duration) {
	s.metrics.observe(kindModel, model, outcome, d)
	if outcome == resultFallback {
		s.metrics.degraded.WithLabelValues(model, servedBy).Inc()
	}
}
