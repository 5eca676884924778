package sidecar

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
)

// kindModel is the kind of the model gateway's requests (/llm/…), for
// metrics; the proxy reports its own (proxy.KindUpstream, proxy.KindTask).
const kindModel = "model"

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
	tokens      *prometheus.CounterVec // model, served_by, type
	costUSD     *prometheus.CounterVec // model, served_by
	avail       availability
	now         func() time.Time

	mu      sync.RWMutex
	targets map[[2]string]*targetMetrics // by kind and target
}

// targetMetrics are the request metrics of one kind and target, resolved
// once so the request path does not look labels up.
type targetMetrics struct {
	outcomes  [outcome.Count]prometheus.Counter // by outcome
	seconds   prometheus.Observer
	exemplars prometheus.ExemplarObserver // seconds, taking a trace id
}

// latencyBuckets span tool calls (milliseconds) to long model answers
// (minutes).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// metricSources are what the metrics read: the clock, and at scrape time
// the state the sidecar already keeps.
type metricSources struct {
	now           func() time.Time
	health        func() health.HealthSnapshot
	breakers      func() []breaker.Snapshot
	registration  func() discovery.RegistrationState
	notifications func() notify.Stats
	models        func() []gateway.ModelStatus
	budgets       func() []budget.Status
}

func newMetrics(src metricSources) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), targets: map[[2]string]*targetMetrics{}, now: src.now}
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
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidecar_model_tokens_total",
		Help: "Tokens the models reported using, by the model asked for, the one that answered and type " +
			"(input, output, cached_input, cache_write)."}, []string{"model", "served_by", "type"})
	m.costUSD = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sidecar_model_cost_usd_total",
		Help: "What the models' answers cost in US dollars, at the price of the model that answered, by the model " +
			"asked for and the one that answered; models without a price are left out."}, []string{"model", "served_by"})
	m.reg.MustRegister(m.isolations, m.recoveries, m.transitions, m.requests, m.seconds, m.degraded, m.tokens, m.costUSD,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{src: src, avail: &m.avail})
	for _, r := range []string{health.ReasonMissedHeartbeats, health.ReasonStalled} {
		m.isolations.WithLabelValues(r)
	}
	return m
}

// observe counts one finished request. A request whose span is sampled
// leaves its trace id on the duration histogram as an exemplar, shown to
// a scraper that asks for OpenMetrics.
func (m *metrics) observe(kind, target string, o outcome.Outcome, d time.Duration, sc trace.SpanContext) {
	key := [2]string{kind, target}
	m.mu.RLock()
	tm, ok := m.targets[key]
	m.mu.RUnlock()
	if !ok {
		h := m.seconds.WithLabelValues(kind, target)
		tm = &targetMetrics{seconds: h, exemplars: h.(prometheus.ExemplarObserver)}
		for _, o := range outcome.All {
			tm.outcomes[o] = m.requests.WithLabelValues(kind, target, o.String())
		}
		m.mu.Lock()
		m.targets[key] = tm
		m.mu.Unlock()
	}
	tm.outcomes[o].Inc()
	if sc.IsSampled() {
		tm.exemplars.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
	} else {
		tm.seconds.Observe(d.Seconds())
	}
	m.avail.Record(o.Answered(), m.now())
}

// breakersDropped forgets the breakers a reload dropped: their metrics
// series and their open spans.
func (s *Sidecar) breakersDropped(names []string) {
	s.metrics.forgetBreakers(names)
	s.incidents.BreakersGone(names, s.now())
}

// forgetBreakers drops the transition series of breakers that are gone
// (their state, trips and rejections are read from the breakers at scrape
// time).
func (m *metrics) forgetBreakers(names []string) {
	for _, name := range names {
		for _, st := range []breaker.State{breaker.Closed, breaker.Open, breaker.HalfOpen} {
			m.transitions.DeleteLabelValues(name, st.String())
		}
	}
}

// handler serves the metrics in the text format and, with exemplars (when
// tracing is on), in OpenMetrics (carrying the duration histogram's
// exemplars) to a scraper that asks for it. Without tracing a scraper gets
// the text format as before: OpenMetrics writes the buckets' le labels
// differently ("1.0" for "1"), which would start every bucket series anew.
func (m *metrics) handler(exemplars bool) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: exemplars})
}

// stateCollector reads the sidecar's own state at scrape time.
type stateCollector struct {
	src   metricSources
	avail *availability
}

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
	descBudgetRatio = prometheus.NewDesc("sidecar_budget_spent_ratio",
		"Share of each budget spent this window: the larger of cost and tokens over their limits (1 or more: spent).",
		[]string{"budget"}, nil)
	descBudgetExceeded = prometheus.NewDesc("sidecar_budget_exceeded",
		"1 while a budget is spent (its action applies until the window resets), else 0.", []string{"budget"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeartbeats, descHeartbeatAge, descAgentState, descBreakerState,
		descBreakerTrips, descBreakerRejected, descRegistered, descRegistrations, descConsulErrors,
		descNotifications, descModelCalls, descAvailability, descAvailRequests, descBudgetRatio, descBudgetExceeded} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.src.now()
	h := c.src.health()
	ch <- prometheus.MustNewConstMetric(descHeartbeats, prometheus.CounterValue, float64(h.Heartbeats))
	if !h.LastHeartbeat.IsZero() {
		ch <- prometheus.MustNewConstMetric(descHeartbeatAge, prometheus.GaugeValue, now.Sub(h.LastHeartbeat).Seconds())
	}
	for _, st := range []string{"waiting", "healthy", "isolated"} {
		ch <- prometheus.MustNewConstMetric(descAgentState, prometheus.GaugeValue, boolValue(h.State == st), st)
	}
	for _, b := range c.src.breakers() {
		for _, st := range []breaker.State{breaker.Closed, breaker.Open, breaker.HalfOpen} {
			ch <- prometheus.MustNewConstMetric(descBreakerState, prometheus.GaugeValue,
				boolValue(b.State == st.String()), b.Name, st.String())
		}
		ch <- prometheus.MustNewConstMetric(descBreakerTrips, prometheus.CounterValue, float64(b.Trips), b.Name)
		ch <- prometheus.MustNewConstMetric(descBreakerRejected, prometheus.CounterValue, float64(b.Rejected), b.Name)
	}
	reg := c.src.registration()
	ch <- prometheus.MustNewConstMetric(descRegistered, prometheus.GaugeValue, boolValue(reg.Registered))
	ch <- prometheus.MustNewConstMetric(descRegistrations, prometheus.CounterValue, float64(reg.Registrations))
	ch <- prometheus.MustNewConstMetric(descConsulErrors, prometheus.GaugeValue, boolValue(consulFailing(reg)))
	n := c.src.notifications()
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n.Delivered), "delivered")
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(n.Dropped), "dropped")
	for _, m := range c.src.models() {
		ch <- prometheus.MustNewConstMetric(descModelCalls, prometheus.CounterValue, float64(m.Answers), m.Label, "answered")
		ch <- prometheus.MustNewConstMetric(descModelCalls, prometheus.CounterValue, float64(m.Failures), m.Label, "failed")
		ch <- prometheus.MustNewConstMetric(descModelCalls, prometheus.CounterValue, float64(m.Skipped), m.Label, "skipped")
	}
	for _, w := range c.avail.Windows(now) {
		if w.Ratio != nil {
			ch <- prometheus.MustNewConstMetric(descAvailability, prometheus.GaugeValue, *w.Ratio, w.Window)
		}
		ch <- prometheus.MustNewConstMetric(descAvailRequests, prometheus.GaugeValue, float64(w.Answered), w.Window, "answered")
		ch <- prometheus.MustNewConstMetric(descAvailRequests, prometheus.GaugeValue, float64(w.Errors), w.Window, "error")
	}
	if c.src.budgets != nil {
		for _, b := range c.src.budgets() {
			ch <- prometheus.MustNewConstMetric(descBudgetRatio, prometheus.GaugeValue, b.SpentRatio(), b.Name)
			ch <- prometheus.MustNewConstMetric(descBudgetExceeded, prometheus.GaugeValue,
				boolValue(b.State == budget.StateExceeded), b.Name)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeModel counts one model request the gateway finished.
func (s *Sidecar) observeModel(model, servedBy string, o outcome.Outcome, d time.Duration, sc trace.SpanContext) {
	s.metrics.observe(kindModel, model, o, d, sc)
	if o == outcome.Fallback {
		s.metrics.degraded.WithLabelValues(model, servedBy).Inc()
	}
}
