// Package gateway is the sidecar's model gateway: OpenAI- and
// Anthropic-compatible endpoints under /llm/ that send each request to the
// model it names and, when that model fails or its breaker is open, the
// same request to the next model of its degradation chain. Only the fields
// that must change are rewritten (model, a capped max_tokens, dropped
// fields); the rest of the body goes upstream byte for byte.
package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway/translate"
	"github.com/agent-sidecar/sidecar/sidecar/h1"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// Response headers the gateway sets on every answer.
const (
	HeaderModel    = "X-Sidecar-Model"       // the label of the model that answered
	HeaderDegraded = "X-Sidecar-Degraded"    // "true" when it was not the requested model
	HeaderAttempts = "X-Sidecar-Attempts"    // upstream calls made for this request
	HeaderOverhead = "X-Sidecar-Overhead-Ms" // time spent in the sidecar itself
)

// BreakerPrefix starts the name of every model's breaker: "model:gpt-4o".
const BreakerPrefix = "model:"

// BreakerName is the name of a model's breaker.
func BreakerName(label string) string { return BreakerPrefix + label }

// degradedHold is how long a degradation is reported after the last
// degraded answer when no answer has come since.
const degradedHold = 5 * time.Minute

// Options are the gateway's collaborators.
type Options struct {
	Breakers  *breaker.Set
	Log       hclog.Logger
	Transport http.RoundTripper // default: NewTransport(nil)
	// OnDegradedChange is called (without locks held) when a chain starts
	// (degraded true) or stops being served by a fallback model.
	OnDegradedChange func(d Degradation, degraded bool)
	// Observe is called once per finished request (not for requests the
	// agent abandoned, nor for bad requests): the model asked for, the one
	// that answered ("" when none did), how it ended and the time to the
	// answer's headers, and the request's span (zero when it has none): its
	// trace id becomes the duration histogram's exemplar.
	Observe func(model, servedBy string, o outcome.Outcome, d time.Duration, sc trace.SpanContext)
	// OnUsage is called (no locks held) once per answer whose usage was
	// reported, when the answer has ended (see Usage).
	OnUsage func(Usage)
	// Admit, when set, is called once per request before its chain, with
	// the label of the model asked for (a configured one), and decides
	// whether the request goes ahead, is rejected or goes to another
	// model's chain (spending budgets).
	Admit func(model string) Admission
	// Now is the clock of the times the gateway reports (degraded since,
	// last failure). Default time.Now. Durations (timeouts, latency) are
	// measured on the monotonic clock.
	Now func() time.Time
	// Tracer makes a server span per request and a client span per model
	// attempt, whose context goes into the attempt's request (propagated
	// with tracing.Propagation). Nil: tracing is off, no span is made and a
	// caller's traceparent passes through untouched.
	Tracer trace.Tracer
}

// Gateway serves /llm/. It is safe for concurrent use.
type Gateway struct {
	opts  Options
	log   hclog.Logger
	rt    http.RoundTripper
	state atomic.Pointer[state]

	mu       sync.Mutex
	stats    map[string]*modelStats // by label
	degraded map[string]*Degradation
	queues   map[string]*queue // by label, for models with max_concurrent or rpm
}

// state is what one configuration gives the gateway.
type state struct {
	models   map[string]*policies.Model // by label
	byName   map[string]*policies.Model // by upstream name, when unambiguous
	labels   []string
	breakers map[string]policies.Breaker
	maxBody  int64
}

// New returns a gateway serving the models of cfg.
func New(cfg *policies.Config, opts Options) *Gateway {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Breakers == nil {
		opts.Breakers = breaker.NewSet()
	}
	g := &Gateway{opts: opts, log: opts.Log.Named("gateway"), rt: opts.Transport,
		stats: map[string]*modelStats{}, degraded: map[string]*Degradation{}, queues: map[string]*queue{}}
	if g.rt == nil {
		g.rt = NewTransport(nil)
	}
	g.SetConfig(cfg)
	return g
}

// NewTransport returns the transport used for model calls. HTTPS ones (to a
// provider, HTTP/2 where offered) and those a proxy from the environment
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) applies to go through net/http's
// Transport; plain-HTTP ones that go straight to the model (one served on
// the host or in the cluster) through package h1, which make bench measured
// cheaper. No transparent decompression: streams are relayed as they come.
// Certificates are verified against roots (nil: the system's).
func NewTransport(roots *x509.CertPool) *Transport {
	return &Transport{
		std: &http.Transport{
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           modelDialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			DisableCompression:    true,
			ExpectContinueTimeout: time.Second,
		},
		plain: &h1.Transport{
			DialContext:         modelDialer.DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

var modelDialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

// Transport is the model calls' RoundTripper (see NewTransport).
type Transport struct {
	std   *http.Transport
	plain *h1.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" {
		if proxy, err := t.std.Proxy(req); err == nil && proxy == nil {
			return t.plain.RoundTrip(req)
		}
	}
	return t.std.RoundTrip(req)
}

// CloseIdleConnections closes the kept-alive connections of both.
func (t *Transport) CloseIdleConnections() {
	t.std.CloseIdleConnections()
	t.plain.CloseIdleConnections()
}

// SetConfig applies a (re)loaded configuration. Requests in flight finish
// with the models they started with. cfg is resolved (policies.Load): its
// values, gateway.max_request_bytes among them, are used as they are.
func (g *Gateway) SetConfig(cfg *policies.Config) {
	st := &state{models: map[string]*policies.Model{}, byName: map[string]*policies.Model{},
		breakers: cfg.Breakers, maxBody: cfg.Gateway.MaxRequestBytes}
	for label, m := range cfg.Models {
		m := m
		if m.Label == "" {
			m.Label = label
		}
		if m.Name == "" {
			m.Name = label
		}
		st.models[label] = &m
		st.labels = append(st.labels, label)
	}
	sort.Strings(st.labels)
	// A request may name a model by its upstream name. When several models
	// share a name, the one no other model falls back to (a chain's head)
	// wins, then the alphabetically first.
	isFallback := map[string]bool{}
	for _, m := range st.models {
		if m.Fallback != "" {
			isFallback[m.Fallback] = true
		}
	}
	for _, label := range st.labels {
		m := st.models[label]
		if _, taken := st.models[m.Name]; taken {
			continue
		}
		if prev, ok := st.byName[m.Name]; ok && (!isFallback[prev.Label] || isFallback[label]) {
			continue
		}
		st.byName[m.Name] = m
	}
	g.state.Store(st)
	// Each model's breaker exists from the start, so status and
	// /v1/breakers show it before the first call.
	for _, label := range st.labels {
		g.breaker(st, st.models[label])
	}

	g.mu.Lock()
	for label := range g.degraded {
		if _, ok := st.models[label]; !ok {
			delete(g.degraded, label)
		}
	}
	for label := range g.queues {
		if _, ok := st.models[label]; !ok {
			delete(g.queues, label)
		}
	}
	g.mu.Unlock()
}

// lookup finds the model a request names: by label, else by upstream name.
func (st *state) lookup(name string) *policies.Model {
	if m, ok := st.models[name]; ok {
		return m
	}
	return st.byName[name]
}

// chain returns the model and the models it falls back to, in order.
func (st *state) chain(first *policies.Model) []*policies.Model {
	var out []*policies.Model
	for m := first; m != nil && !slices.Contains(out, m); m = st.models[m.Fallback] {
		out = append(out, m)
	}
	return out
}

// breaker returns the breaker of a model, created on first use.
func (g *Gateway) breaker(st *state, m *policies.Model) *breaker.Breaker {
	return g.opts.Breakers.Ensure(BreakerName(m.Label), st.breakers[m.Breaker])
}

// BreakerConfigs returns the breaker settings of every model of cfg by
// breaker name, so a reload can rebind them.
func BreakerConfigs(cfg *policies.Config) map[string]policies.Breaker {
	out := make(map[string]policies.Breaker, len(cfg.Models))
	for label, m := range cfg.Models {
		out[BreakerName(label)] = cfg.Breakers[m.Breaker]
	}
	return out
}

// endpoint is one API the gateway serves.
type endpoint struct {
	provider string
	upstream string // path appended to the model's base_url
	kind     string
	// tokens are the fields that bound the answer's length, in the order
	// they are looked for; a cap is written to the first one present, else
	// to the first one.
	tokens []string
}

const (
	kindChat       = translate.KindChat
	kindCompletion = "completion"
	kindEmbedding  = "embedding"
	kindResponse   = translate.KindResponse
	kindMessage    = translate.KindMessage
	kindCount      = "count" // Anthropic's token count: the request of a message, no answer text
)

// endpoints by request path below /llm.
var endpoints = map[string]endpoint{
	"/v1/chat/completions":      {policies.ProviderOpenAI, "/chat/completions", kindChat, []string{"max_tokens", "max_completion_tokens"}},
	"/v1/completions":           {policies.ProviderOpenAI, "/completions", kindCompletion, []string{"max_tokens"}},
	"/v1/embeddings":            {policies.ProviderOpenAI, "/embeddings", kindEmbedding, nil},
	"/v1/responses":             {policies.ProviderOpenAI, "/responses", kindResponse, []string{"max_output_tokens"}},
	"/v1/messages":              {policies.ProviderAnthropic, "/v1/messages", kindMessage, []string{"max_tokens"}},
	"/v1/messages/count_tokens": {policies.ProviderAnthropic, "/v1/messages/count_tokens", kindCount, nil},
}

// endpointFor is the endpoint a model of this provider serves a kind of
// request on, for error messages.
func endpointFor(provider string) string {
	if provider == policies.ProviderAnthropic {
		return "/llm/v1/messages"
	}
	return "/llm/v1/chat/completions (or completions, embeddings, responses)"
}

// ServeHTTP serves a request below /llm/.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := g.state.Load()
	path := strings.TrimPrefix(r.URL.Path, "/llm")
	provider := policies.ProviderOpenAI
	if path == "/v1/messages" || r.Header.Get("Anthropic-Version") != "" {
		provider = policies.ProviderAnthropic
	}
	if path == "/v1/models" || strings.HasPrefix(path, "/v1/models/") {
		if r.Method != http.MethodGet {
			refuse(w, r, nil, provider, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here: use GET", 0)
			return
		}
		if id, ok := strings.CutPrefix(path, "/v1/models/"); ok {
			g.serveModel(w, r, st, provider, id)
			return
		}
		g.serveModels(w, st, provider)
		return
	}
	ep, ok := endpoints[path]
	if !ok {
		refuse(w, r, nil, provider, http.StatusNotFound, "the model gateway has no endpoint "+r.URL.Path+
			": it serves POST /llm/v1/chat/completions, /llm/v1/completions, /llm/v1/embeddings, /llm/v1/responses, "+
			"/llm/v1/messages, /llm/v1/messages/count_tokens and GET /llm/v1/models[/{model}]", 0)
		return
	}
	if r.Method != http.MethodPost {
		refuse(w, r, nil, provider, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here: use POST", 0)
		return
	}
	var sp *requestSpan
	if g.opts.Tracer != nil {
		sp, r = g.startRequest(r, ep)
		defer sp.end()
	}
	buf, status, msg := readBody(r, st.maxBody)
	if status != 0 {
		refuse(w, r, sp, provider, status, msg, 0)
		return
	}
	body := pin(buf)
	defer body.unpin()
	req, msg := parseRequest(buf.Bytes(), ep)
	req.pinned = body
	if msg != "" {
		refuse(w, r, sp, provider, http.StatusBadRequest, msg, 0)
		return
	}
	first := st.lookup(req.model)
	sp.named(req.model, first)
	if first == nil {
		refuse(w, r, sp, provider, http.StatusNotFound, modelNotFound(req.model, st.labels), 0)
		return
	}
	if first.Provider != ep.provider {
		if _, why := translate.For(ep.kind, first.Provider); why != "" {
			refuse(w, r, sp, provider, http.StatusBadRequest, "model "+strconv.Quote(req.model)+" speaks the "+first.Provider+
				" API: send it to "+endpointFor(first.Provider), 0)
			return
		}
	}
	c := &call{g: g, st: st, ep: ep, req: req, in: r, w: w, start: start, first: first, from: first, span: sp}
	if g.opts.Admit != nil {
		a := g.opts.Admit(first.Label)
		if a.Reject {
			refuse(w, r, sp, provider, http.StatusTooManyRequests, a.Reason, a.RetryAfter)
			return
		}
		if to := st.models[a.DegradeTo]; to != nil && to != first {
			c.from = to
			why := "a budget is spent: every request goes to " + to.Label
			c.reasons = append(c.reasons, why)
			sp.skipped(first.Label, why)
		}
	}
	c.run()
	sp.done(c)
}

// refuse answers a request the gateway does not pass on with the
// provider's error shape, carrying the request's trace id when it has
// one.
func refuse(w http.ResponseWriter, r *http.Request, sp *requestSpan, provider string, status int, msg string, retryAfter time.Duration) {
	sp.refused(status)
	writeError(w, provider, status, msg, retryAfter, tracing.TraceID(r.Context(), r.Header))
}

func modelNotFound(name string, labels []string) string {
	list := "none (add a model block)"
	if len(labels) > 0 {
		list = strings.Join(labels, ", ")
	}
	return "the model " + strconv.Quote(name) + " is not configured in the sidecar; configured models: " + list
}

// Model list items in each provider's shape.
type (
	anthropicModel struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	openAIModel struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
)

func modelItem(st *state, provider, label string) any {
	if provider == policies.ProviderAnthropic {
		return anthropicModel{Type: "model", ID: label, DisplayName: label, CreatedAt: "1970-01-01T00:00:00Z"}
	}
	return openAIModel{ID: label, Object: "model", OwnedBy: st.models[label].Provider}
}

// serveModels lists the configured labels in the provider's list format.
func (g *Gateway) serveModels(w http.ResponseWriter, st *state, provider string) {
	data := []any{}
	for _, label := range st.labels {
		data = append(data, modelItem(st, provider, label))
	}
	if provider == policies.ProviderAnthropic {
		var firstID, lastID *string
		if len(st.labels) > 0 {
			firstID, lastID = &st.labels[0], &st.labels[len(st.labels)-1]
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": false, "first_id": firstID, "last_id": lastID})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// serveModel answers one model of the list, by label.
func (g *Gateway) serveModel(w http.ResponseWriter, r *http.Request, st *state, provider, id string) {
	if _, ok := st.models[id]; !ok {
		refuse(w, r, nil, provider, http.StatusNotFound, modelNotFound(id, st.labels), 0)
		return
	}
	writeJSON(w, http.StatusOK, modelItem(st, provider, id))
}
