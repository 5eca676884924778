// Package proxy is the sidecar's call proxy: /call/{upstream}/… and the
// ingress. A call goes to a passing instance of its upstream (from Consul
// or a static URL) through that instance's breaker, with retries and then
// the upstream's fallbacks; a task the ingress takes goes to the local
// agent, else to a passing peer, else to the ingress's fallbacks. Like
// package gateway, it gets its collaborators and callbacks in Options and
// holds no pointer back to the sidecar.
package proxy

import (
	"context"
	"errors"
	stdlog "log"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/outcome"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// Kinds of traffic the proxy reports to Options.Observe (the "kind" label
// of the sidecar's request metrics).
const (
	KindUpstream = "upstream" // /call/{upstream}/…
	KindTask     = "task"     // the ingress
)

// Options are the proxy's collaborators.
type Options struct {
	// Breakers holds the breakers of upstream instances, the local agent
	// and peers. Default: a set of its own.
	Breakers *breaker.Set
	// Discovery lists the passing instances of Consul upstreams and of the
	// agent's own service (the ingress's peers).
	Discovery Discovery
	// Log receives the proxy's logs. Default: none.
	Log hclog.Logger
	// ErrorLog receives the reverse proxy's own errors. Default: the
	// standard logger.
	ErrorLog *stdlog.Logger
	// Transport sends each attempt. Default: NewTransport(nil). When it
	// has a CloseIdleTo(addr string) method, the idle connections to
	// instances gone from Consul are closed with it.
	Transport http.RoundTripper
	// Now is the clock that times how long an instance has been gone from
	// Consul, and that an upstream's Retry-After is read against (it should
	// be the breakers' clock). Default: time.Now.
	Now func() time.Time
	// Observe is called once per finished call or task (not when the
	// caller went away): its kind (KindUpstream, KindTask), the upstream
	// called or the agent's service, how it ended, and the time to the
	// answer's headers, and the request's span (zero when it has none): its
	// trace id becomes the duration histogram's exemplar.
	Observe func(kind, target string, o outcome.Outcome, d time.Duration, sc trace.SpanContext)
	// AgentIsolated says whether the local agent is isolated, and the
	// reason (e.g. "missed_heartbeats"); the ingress then sends its tasks
	// elsewhere. Nil: never isolated.
	AgentIsolated func() (reason string, isolated bool)
	// BreakersDropped is called with the breakers Rebind dropped because
	// their upstream left the configuration.
	BreakersDropped func(names []string)
	// InstancesDeparted is called with the breakers of the Consul
	// instances Run forgot (gone for longer than max_open_for), after they
	// were removed from Breakers.
	InstancesDeparted func(names []string)
	// Tracer makes a server span per call and ingress task and a client
	// span per attempt, whose context goes into the attempt's request
	// (propagated with tracing.Propagation). Nil: tracing is off, no span
	// is made and a caller's traceparent passes through untouched.
	Tracer trace.Tracer
}

// Proxy serves /call/ and the ingress. It is safe for concurrent use.
type Proxy struct {
	opts   Options
	log    hclog.Logger
	cfg    atomic.Pointer[policies.Config]
	router *router
	rp     *httputil.ReverseProxy
}

// New returns a proxy for the upstreams and ingress of cfg.
func New(cfg *policies.Config, opts Options) *Proxy {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Breakers == nil {
		opts.Breakers = breaker.NewSet()
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Proxy{opts: opts, log: opts.Log, router: newRouter(opts.Discovery, opts.Breakers)}
	p.cfg.Store(cfg)
	p.rp = newReverseProxy(&callTransport{rt: opts.Transport, observe: opts.Observe, log: opts.Log.Named("call"), now: opts.Now,
		tracer: opts.Tracer},
		opts.Log, opts.ErrorLog)
	return p
}

// Rebind puts cfg in force: calls follow its upstreams at once; existing
// breakers get the settings cfg assigns to their owner (kept when
// unchanged), and those whose upstream is gone are dropped.
func (p *Proxy) Rebind(cfg *policies.Config) {
	p.cfg.Store(cfg)
	if dropped := p.router.rebind(cfg); len(dropped) > 0 && p.opts.BreakersDropped != nil {
		p.opts.BreakersDropped(dropped)
	}
}

// Run forgets, until ctx is done, the state kept for Consul instances that
// have left (see prune).
func (p *Proxy) Run(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.forgetDeparted()
		}
	}
}

// Queries are the discovery queries the proxy's calls need: every Consul
// upstream, and the agent's own service when the ingress is on (its peers).
// A watcher that follows them keeps calls from waiting for Consul.
func Queries(cfg *policies.Config) []discovery.Query {
	var qs []discovery.Query
	for _, u := range cfg.Upstreams {
		if u.Service != "" {
			qs = append(qs, queryOf(u))
		}
	}
	if cfg.Ingress != nil {
		qs = append(qs, discovery.Query{Service: cfg.Agent.Name})
	}
	return qs
}

// newReverseProxy returns the proxy shared by /call/ and the ingress: the
// standard library handles hop-by-hop headers, streaming and trailers; the
// transport chooses where each request goes.
func newReverseProxy(t http.RoundTripper, log hclog.Logger, errLog *stdlog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {}, // the transport sets the destination per attempt
		Transport: t,
		// FlushInterval 0: answers of known length are written in one go;
		// streamed ones (SSE, unknown length) are flushed after every write.
		FlushInterval: 0,
		// Without a pool every request allocates a 32 KiB copy buffer, and
		// the garbage collector it feeds cost about 40% of the CPU per
		// request (make bench, profiled with perf).
		BufferPool: copyBuffers,
		ErrorLog:   errLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
				return // the caller went away
			}
			log.Warn("proxied call failed", tracing.LogPairs(r, "path", r.URL.Path, "error", err)...)
			var sv *served
			if plan, _ := r.Context().Value(planKey{}).(*callPlan); plan != nil {
				sv = plan.served
			}
			sv.failed(errUpstreamBroke)
			writeJSONError(w, r, sv, http.StatusBadGateway, errUpstreamBroke, "the call could not be completed: "+shortError(err))
		},
	}
}

// bufferPool hands the reverse proxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
