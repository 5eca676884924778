// Package sidecar is the sidecar's composition root: New builds the parts
// (health, supervise, notify, gateway, the call path) and Run runs them,
// with the control API and its auth, status, the event stream, the
// serialized reload, metrics and the sidecar's own Consul check.
package sidecar

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/guard"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/kvpolicy"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/proxy"
	"github.com/agent-sidecar/sidecar/sidecar/report"
	"github.com/agent-sidecar/sidecar/sidecar/spend"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// ShutdownTimeout bounds a graceful shutdown: draining in-flight requests,
// stopping the agent, deregistering and flushing notifications.
const ShutdownTimeout = 20 * time.Second

// Registry is what the sidecar needs from Consul; discovery.Registrar
// implements it, and unit tests may hand in a fake.
type Registry interface {
	Run(ctx context.Context)
	SetCheck(checkID string, status discovery.CheckStatus, output string)
	Update(svc discovery.Service)
	Deregister(ctx context.Context) error
	State() discovery.RegistrationState
}

// Options are the optional parts of a sidecar.
type Options struct {
	// Reload loads the configuration again (SIGHUP, POST /v1/reload). Nil
	// means there is nothing to reload (the -dev configuration). A
	// configuration returned with a *PoliciesRejected error is applied.
	Reload func() (*policies.Config, error)
	// Registry replaces the Consul registrar (tests).
	Registry Registry
	// Now replaces the clock (tests).
	Now func() time.Time
	// Discovery replaces the Consul watcher of healthy instances (tests).
	Discovery proxy.Discovery
	// AgentOutput receives the supervised agent's stdout and stderr.
	// Default: the sidecar's own.
	AgentOutput io.Writer
	// Policies follows the fleet-wide policies in Consul KV
	// (kvpolicy.Follow); Run reloads on each change. Nil: none.
	Policies *kvpolicy.Follower
	// ReloadOn reloads the configuration on each value received
	// (SIGHUP), while Run runs.
	ReloadOn <-chan os.Signal
	// Reports replaces the Consul KV store of the fleet report (tests).
	// Default: Consul, unless consul.fleet_prefix is "" or Registry is
	// set (a test without Consul).
	Reports report.Store
	// BudgetTotals replaces the Consul KV store of the totals of the
	// service budgets (tests). Default: Consul, unless consul.fleet_prefix
	// is "" or Registry is set.
	BudgetTotals budget.KV
	// Executable is the sidecar program, passed to the supervised agent as
	// SIDECAR_BIN so a shell agent can run "$SIDECAR_BIN heartbeat".
	Executable string
	// TraceExporter replaces the OTLP exporter of the spans when tracing
	// is on (tests).
	TraceExporter sdktrace.SpanExporter
}

// Sidecar runs beside one agent.
type Sidecar struct {
	// heartbeatToken is the supervised agent's own token under
	// token_scope "mutating": accepted for heartbeats only. Random per
	// start; never shown.
	heartbeatToken string

	log      hclog.Logger
	opts     Options
	now      func() time.Time
	started  time.Time
	listener net.Listener
	server   *http.Server
	httpLog  *stdlog.Logger

	// The ingress (nil unless configured) takes tasks for the agent.
	ingressLn  net.Listener
	ingressSrv *http.Server
	// The probe listener (nil unless configured) answers a kubelet.
	probes *probeListener

	breakers  *breaker.Set
	notices   breakerNotices
	discovery proxy.Discovery
	watcher   *discovery.Watcher // nil when Options.Discovery is set
	proxy     *proxy.Proxy       // /call/ and the ingress
	reporter  *report.Writer     // the fleet report in Consul KV; nil without one
	gateway   *gateway.Gateway
	metrics   *metrics
	spend     *spend.Keeper // tokens and cost of the models' answers, and the budgets they count against
	// transports are the clients of calls, notifications and models; their
	// idle connections are closed on shutdown.
	transports []interface{ CloseIdleConnections() }
	events     *eventHub
	stopping   chan struct{} // closed when shutdown starts: ends event streams

	// tracing exports the spans; nil when tracing is off. incidents keeps
	// the spans of open breakers and of the agent's isolation.
	tracing   *tracing.Provider
	incidents *tracing.Incidents

	tracker *health.HeartbeatTracker
	// transitions passes the tracker's transitions to dispatch in order.
	transitions transitionQueue
	registry    Registry
	notifier    *notify.Notifier
	supervisor  *supervise.Supervisor // nil unless agent.exec is set

	wake    chan struct{} // nudges the deadline watcher
	checkMu sync.Mutex    // orders heartbeat check pushes so the newest state wins
	// sidecarCheckMu does the same for the sidecar check, pushed from the
	// refresh ticker, breaker and model changes and reloads at once, and
	// from within itself (see pushSidecarCheck); sidecarCheckStale says a
	// push came while it was held.
	sidecarCheckMu    sync.Mutex
	sidecarCheckStale atomic.Bool

	reloadMu   sync.Mutex   // one reload at a time, applied in the order loaded
	mu         sync.RWMutex // guards cfg, lastReload, the Consul state last seen
	cfg        *policies.Config
	lastReload *ReloadInfo
	// The Consul state last seen, for consul.lost and consul.regained.
	consulWasOK, consulSeen bool
	consulRegistrations     int
	// The running prober (nil: none) and whether Run has stopped probing
	// for good; guarded by reloadMu, so a reload cannot race Run.
	prober        *taskGroup
	proberStopped bool
}

// New builds a sidecar and binds its control listener, so a port in use is
// reported before Run. The caller must call Run, or Close if it does not.
func New(cfg *policies.Config, log hclog.Logger, opts Options) (*Sidecar, error) {
	if cfg == nil {
		return nil, errors.New("sidecar: nil config")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sidecar{log: log, opts: opts, now: opts.Now, cfg: cfg, wake: make(chan struct{}, 1),
		events: newEventHub(), stopping: make(chan struct{}), heartbeatToken: rand.Text()}
	s.started = s.now()
	s.httpLog = log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	s.tracker = health.NewHeartbeatTracker(cfg.Health, s.started)
	s.notices = breakerNotices{lastOpen: map[string]time.Time{}, notified: map[string]bool{}}
	s.breakers = breaker.NewSetWithClock(s.now)
	s.breakers.OnChange(s.onBreakerChange)
	consulCfg := ConsulConfig(cfg)
	for _, w := range append(consulCfg.Warnings(), cfg.Warnings()...) {
		log.Warn(w)
	}
	tp, err := tracing.New(context.Background(), tracing.Options{Config: cfg.Tracing, ServiceName: cfg.Agent.Name,
		AgentID: cfg.Agent.ID, Log: log, Exporter: opts.TraceExporter})
	if err != nil {
		return nil, err
	}
	built := false
	defer func() {
		if !built {
			s.shutdownTracing()
		}
	}()
	s.tracing, s.incidents = tp, tracing.NewIncidents(tp.Tracer(), cfg.Agent.ID)
	if tp != nil {
		// Never the headers: they hold the collector's credentials.
		log.Info("tracing on", "endpoint", tp.Endpoint, "protocol", tp.Protocol, "sampler", tp.Sampler)
	}

	s.discovery = opts.Discovery
	if s.discovery == nil {
		w, err := discovery.NewWatcher(consulCfg, log.Named("discovery"))
		if err != nil {
			return nil, fmt.Errorf("consul: %w", err)
		}
		s.watcher, s.discovery = w, w
		s.watchQueries(cfg)
	}
	roots := cfg.TLS.CertPool()
	callRT, notifyRT, modelRT := proxy.NewTransport(roots), notify.NewTransport(roots), gateway.NewTransport(roots)
	s.transports = []interface{ CloseIdleConnections() }{callRT, notifyRT, modelRT}
	s.notifier = notify.New(notifyTargets(cfg), notify.Options{Log: log.Named("notify"), Transport: notifyRT})
	s.metrics = newMetrics(metricSources{now: s.now, health: s.tracker.Snapshot, breakers: s.breakers.Snapshots,
		registration: func() discovery.RegistrationState { return s.registry.State() }, notifications: s.notifier.Stats,
		models: func() []gateway.ModelStatus { return s.gateway.Models() }, budgets: func() []budget.Status { return s.spend.Budgets() }})
	s.proxy = proxy.New(cfg, proxy.Options{Breakers: s.breakers, Discovery: s.discovery, Log: log, ErrorLog: s.httpLog,
		Transport: callRT, Now: s.now, Observe: s.metrics.observe, Tracer: tp.Tracer(),
		AgentIsolated:   func() (string, bool) { h := s.tracker.Snapshot(); return h.Reason, h.IsolatedNow() },
		BreakersDropped: s.breakersDropped, InstancesDeparted: s.forgetDeparted})
	s.spend = spend.New(cfg, spend.Options{Now: s.now, Config: s.Config, Tokens: s.metrics.tokens, Cost: s.metrics.costUSD,
		Log: log, OnEvent: func(ev notify.Event) { s.publish(ev); s.notifier.Send(ev) }})
	s.gateway = gateway.New(cfg, gateway.Options{Breakers: s.breakers, Log: log, Transport: modelRT, Now: s.now, Tracer: tp.Tracer(),
		OnDegradedChange: s.onDegradedChange, Observe: s.observeModel, OnUsage: s.spend.Record, Admit: s.spend.Admit})

	ln, err := net.Listen("tcp", cfg.Listen.Address)
	if err != nil {
		return nil, fmt.Errorf("control API: cannot listen on %s: %w (set listen.address to a free address)", cfg.Listen.Address, err)
	}
	s.listener = guard.LimitListener(ln, cfg.Listen.MaxConnections)
	if cfg.Ingress != nil {
		iln, err := net.Listen("tcp", cfg.Ingress.Address)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("ingress: cannot listen on %s: %w (set ingress.address to a free address)", cfg.Ingress.Address, err)
		}
		s.ingressLn = guard.LimitListener(iln, cfg.Ingress.MaxConnections)
		ingress := func() *policies.Ingress { return s.Config().Ingress }
		s.ingressSrv = newServer(guard.Ingress(s.proxy.IngressHandler(), ingress), s.httpLog)
	}
	if s.probes, err = s.listenProbes(cfg.Listen.ProbeAddress, cfg.Listen.MaxConnections); err != nil {
		s.closeListeners()
		return nil, err
	}

	s.registry = opts.Registry
	if s.registry == nil {
		reg, err := discovery.NewRegistrar(consulCfg, s.service(cfg), log.Named("discovery"))
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("consul: %w", err)
		}
		s.registry = reg
	}
	store, totals := opts.Reports, opts.BudgetTotals
	if (store == nil || totals == nil) && opts.Registry == nil && cfg.Consul.FleetPrefix != "" {
		c, err := discovery.NewClient(consulCfg)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("consul: %w", err)
		}
		if store == nil {
			store = c
		}
		if totals == nil {
			totals = c
		}
		s.transports = append(s.transports, c) // its kept-alive connections close with the others
	}
	if cfg.Consul.FleetPrefix != "" {
		s.spend.ShareTotals(totals, cfg.Consul.FleetPrefix)
	}
	if store != nil && cfg.Consul.FleetPrefix != "" {
		s.reporter = report.NewWriter(store, report.Key(cfg.Consul.FleetPrefix, cfg.Agent.ID), s.fleetReport, s.now,
			log.Named("fleet"))
	}
	s.pushCheck() // Consul gets the first state with the registration
	s.pushSidecarCheck()

	if cfg.Agent.Exec != nil {
		s.supervisor = s.superviseAgent(cfg, ln.Addr())
	}

	e := newControlAPI(s)
	handler := guard.Control(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/call/"):
			s.proxy.ServeCall(w, r)
			return
		case strings.HasPrefix(r.URL.Path, "/llm/"):
			s.gateway.ServeHTTP(w, r)
			return
		}
		e.ServeHTTP(w, r)
	}), guard.ControlOptions{Listen: func() policies.Listen { return s.Config().Listen }, Addr: s.Addr,
		HeartbeatToken: s.heartbeatToken})
	s.server = newServer(handler, s.httpLog)
	built = true
	return s, nil
}

// Limits of the sidecar's HTTP servers.
const (
	// MaxHeaderBytes bounds a request's headers; larger ones get 431.
	MaxHeaderBytes = 64 << 10
	// ReadHeaderTimeout bounds the wait for a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout = 2 * time.Minute
)

// newServer returns an HTTP server with the sidecar's limits. There is no
// read or write timeout on the whole request: calls and model streams may
// run for minutes, bounded by their own timeouts.
func newServer(h http.Handler, errLog *stdlog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout,
		MaxHeaderBytes: MaxHeaderBytes, ErrorLog: errLog}
}

// service is the Consul service definition for cfg, with the bound ingress
// address when the ingress is enabled.
func (s *Sidecar) service(cfg *policies.Config) discovery.Service {
	var ingress string
	if s.ingressLn != nil {
		ingress = s.ingressLn.Addr().String()
	}
	svc := serviceFor(cfg, ingress)
	if s.listener != nil {
		svc.Meta["sidecar_control"] = s.listener.Addr().String()
	}
	return svc
}

// IngressAddr is the ingress's bound address, "" when it is not enabled.
func (s *Sidecar) IngressAddr() string {
	if s.ingressLn == nil {
		return ""
	}
	return s.ingressLn.Addr().String()
}

// watchQueries makes the watcher follow every Consul upstream (and the
// agent's own service, for ingress peers), so no call waits for Consul.
func (s *Sidecar) watchQueries(cfg *policies.Config) {
	if s.watcher == nil {
		return
	}
	qs := proxy.Queries(cfg)
	for _, q := range qs {
		s.watcher.Watch(q)
	}
	s.watcher.Retain(qs)
}

func (s *Sidecar) closeListeners() {
	_ = s.listener.Close()
	if s.ingressLn != nil {
		_ = s.ingressLn.Close()
	}
	if s.probes != nil {
		_ = s.probes.ln.Close()
	}
}

// Addr is the control API's bound address.
func (s *Sidecar) Addr() string { return s.listener.Addr().String() }

// Close releases the listeners of a sidecar whose Run was never called,
// and exports the spans it made.
func (s *Sidecar) Close() error {
	s.closeListeners()
	s.incidents.Shutdown(s.now())
	s.shutdownTracing()
	return nil
}

// TracingShutdownTimeout bounds the export of the spans still buffered
// when the sidecar stops.
const TracingShutdownTimeout = 5 * time.Second

// shutdownTracing exports the spans still buffered and stops the
// exporter; nothing when tracing is off.
func (s *Sidecar) shutdownTracing() {
	if s.tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), TracingShutdownTimeout)
	defer cancel()
	if err := s.tracing.Shutdown(ctx); err != nil {
		s.log.Warn("could not export the last spans", "error", err)
	}
}

// Config returns the configuration in force.
func (s *Sidecar) Config() *policies.Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// Run serves until ctx is done, then shuts down gracefully: stop accepting,
// drain in-flight requests, stop the agent, deregister from Consul, flush
// notifications, all within ShutdownTimeout. It returns nil after a clean
// shutdown.
func (s *Sidecar) Run(ctx context.Context) error {
	cfg := s.Config()
	s.log.Info("sidecar starting", "version", version.Version, "agent", cfg.Agent.Name, "agent_id", cfg.Agent.ID,
		"control_api", s.Addr(), "ingress", s.IngressAddr(), "probes", s.ProbeAddr(), "consul", cfg.Consul.Address)

	// Every goroutine Run starts is in one of these groups, stopped in the
	// shutdown order below.
	agentCtx, agent := newTaskGroup()
	regCtx, registry := newTaskGroup()
	notifyCtx, notifications := newTaskGroup()
	bg, background := newTaskGroup()
	reportCtx, reports := newTaskGroup()
	reloadCtx, reloads := newTaskGroup()
	_, servers := newTaskGroup()
	drainCtx, stopDrain := context.WithCancel(context.Background())
	defer stopDrain()

	registry.Go(func() { s.registry.Run(regCtx) })
	notifications.Go(func() { s.notifier.Run(notifyCtx, drainCtx) })
	background.Go(func() { s.watch(bg) })
	background.Go(func() { s.refreshSidecarCheck(bg) })
	background.Go(func() { s.watchConsul(bg) })
	background.Go(func() { s.proxy.Run(bg) })
	background.Go(func() { s.spend.Run(bg) })
	if s.reporter != nil {
		reports.Go(func() { s.reporter.Run(reportCtx) })
	}
	if k := s.opts.Policies; k != nil {
		s.transports = append(s.transports, k)
		s.reportPoliciesAtStart(k)
		reloads.Go(func() { k.Watch(reloadCtx, s.log.Named("policies"), func() { _, _ = s.Reload() }) })
	}
	if s.opts.ReloadOn != nil {
		reloads.Go(func() { s.reloadOnSignal(reloadCtx) })
	}
	if s.watcher != nil {
		background.Go(func() { s.watcher.Run(bg) })
	}
	s.startProbe(cfg.Health.Probe)
	if s.supervisor != nil {
		agent.Go(func() { s.supervisor.Run(agentCtx) })
	}

	serveErr := make(chan error, 3)
	servers.Go(func() { serveErr <- s.server.Serve(s.listener) })
	if s.ingressSrv != nil {
		servers.Go(func() {
			if err := s.ingressSrv.Serve(s.ingressLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("ingress: %w", err)
			}
		})
	}
	var probeSrv *http.Server
	if p := s.probes; p != nil {
		probeSrv = p.srv
		servers.Go(func() {
			if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("probe listener: %w", err)
			}
		})
	}

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "timeout", ShutdownTimeout)
	case err := <-serveErr:
		runErr = fmt.Errorf("control API stopped: %w", err)
		s.log.Error("control API stopped", "error", err)
	}

	close(s.stopping)
	deadline, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	_, shutdowns := newTaskGroup()
	for _, srv := range []*http.Server{s.server, s.ingressSrv, probeSrv} {
		if srv == nil {
			continue
		}
		shutdowns.Go(func() {
			if err := srv.Shutdown(deadline); err != nil {
				s.log.Warn("in-flight requests did not finish in time", "error", err)
			}
		})
	}
	shutdowns.Stop()
	servers.Stop()
	reloads.Stop()
	agent.Stop()
	s.stopProbe()
	registry.Stop()
	reports.Stop()
	if err := s.registry.Deregister(deadline); err != nil {
		s.log.Warn("could not deregister from Consul", "error", err)
	} else {
		s.log.Info("deregistered from Consul", "service_id", cfg.Agent.ID)
	}
	if s.reporter != nil {
		if err := s.reporter.Delete(deadline); err != nil {
			s.log.Warn("could not delete the fleet report from Consul KV", "error", err)
		}
	}
	// Queued notifications get one attempt each, until the deadline.
	defer context.AfterFunc(deadline, stopDrain)()
	notifications.Stop()
	background.Stop()
	for _, t := range s.transports {
		t.CloseIdleConnections()
	}
	// The Consul clients' kept-alive connections, for a process that goes
	// on without this sidecar (tests, embedding).
	if c, ok := s.registry.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	if s.watcher != nil {
		s.watcher.CloseIdleConnections()
	}
	s.incidents.Shutdown(s.now())
	s.shutdownTracing()
	s.log.Info("sidecar stopped")
	return runErr
}

func notifyTargets(cfg *policies.Config) []policies.Notify {
	out := make([]policies.Notify, 0, len(cfg.Health.Notify))
	for _, name := range cfg.Health.Notify {
		if n, ok := cfg.Notify[name]; ok {
			n.Name = name
			out = append(out, n)
		}
	}
	return out
}

// ConsulConfig is how the sidecar (and anything else reading its
// configuration) talks to Consul: address, token and TLS settings.
func ConsulConfig(cfg *policies.Config) discovery.Config {
	c := cfg.Consul
	return discovery.Config{Address: c.Address, Token: c.Token, SyncInterval: c.SyncInterval,
		TLS: discovery.TLSConfig{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
			ServerName: c.TLSServerName, InsecureSkipVerify: c.InsecureSkipVerify}}
}
