// Package sidecar is the sidecar's runtime: lifecycle, the control API,
// heartbeat tracking and isolation, notifications and agent supervision.
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
	"net/http/httputil"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
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
	Discovery Discovery
	// AgentOutput receives the supervised agent's stdout and stderr.
	// Default: the sidecar's own.
	AgentOutput io.Writer
	// Executable is the sidecar program, passed to the supervised agent as
	// SIDECAR_BIN so a shell agent can run "$SIDECAR_BIN heartbeat".
	Executable string
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

	breakers  *breaker.Set
	notices   breakerNotices
	discovery Discovery
	watcher   *discovery.Watcher // nil when Options.Discovery is set
	router    *router
	proxy     *httputil.ReverseProxy
	gateway   *gateway.Gateway
	metrics   *metrics
	// transports are the clients of calls, notifications and models; their
	// idle connections are closed on shutdown.
	transports []interface{ CloseIdleConnections() }
	events     *eventHub
	stopping   chan struct{} // closed when shutdown starts: ends event streams

	tracker    *health.HeartbeatTracker
	registry   Registry
	notifier   *notify.Notifier
	supervisor *supervise.Supervisor // nil unless agent.exec is set

	wake    chan struct{} // nudges the deadline watcher
	checkMu sync.Mutex    // orders check pushes so the newest state wins

	reloadMu   sync.Mutex   // one reload at a time, applied in the order loaded
	mu         sync.RWMutex // guards cfg, lastReload, probeStop
	cfg        *policies.Config
	lastReload *ReloadInfo
	// The Consul state last seen, for consul.lost and consul.regained.
	consulWasOK, consulSeen bool
	consulRegistrations     int
	probeStop               context.CancelFunc
	probeWG                 sync.WaitGroup
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
	s.breakers = breaker.NewSet()
	s.breakers.OnChange(s.onBreakerChange)
	consulCfg := ConsulConfig(cfg)
	for _, w := range append(consulCfg.Warnings(), cfg.Warnings()...) {
		log.Warn(w)
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
	s.router = newRouter(s, s.discovery, s.breakers)
	s.metrics = newMetrics(s)
	roots := cfg.TLS.CertPool()
	callRT, notifyRT, modelRT := newCallTransport(roots), notify.NewTransport(roots), gateway.NewTransport(roots)
	s.transports = []interface{ CloseIdleConnections() }{callRT, notifyRT, modelRT}
	s.proxy = newReverseProxy(&callTransport{rt: callRT, metrics: s.metrics, log: log.Named("call")}, s)
	s.notifier = notify.New(notifyTargets(cfg), notify.Options{Log: log.Named("notify"), Transport: notifyRT})
	s.gateway = gateway.New(cfg, gateway.Options{Breakers: s.breakers, Log: log, Transport: modelRT,
		OnDegradedChange: s.onDegradedChange, Observe: s.observeModel})

	ln, err := net.Listen("tcp", cfg.Listen.Address)
	if err != nil {
		return nil, fmt.Errorf("control API: cannot listen on %s: %w (set listen.address to a free address)", cfg.Listen.Address, err)
	}
	s.listener = limitListener(ln, cfg.Listen.MaxConnections)
	if cfg.Ingress != nil {
		iln, err := net.Listen("tcp", cfg.Ingress.Address)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("ingress: cannot listen on %s: %w (set ingress.address to a free address)", cfg.Ingress.Address, err)
		}
		s.ingressLn = limitListener(iln, cfg.Ingress.MaxConnections)
		s.ingressSrv = newServer(s.guardIngress(s.ingressHandler()), s.httpLog)
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
	s.pushCheck() // Consul gets the first state with the registration
	s.pushSidecarCheck()

	if cfg.Agent.Exec != nil {
		s.supervisor = s.superviseAgent(cfg, ln.Addr())
	}

	e := newControlAPI(s)
	handler := s.guardControl(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/call/"):
			s.serveCall(w, r)
			return
		case strings.HasPrefix(r.URL.Path, "/llm/"):
			s.gateway.ServeHTTP(w, r)
			return
		}
		e.ServeHTTP(w, r)
	}))
	s.server = newServer(handler, s.httpLog)
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
	var qs []discovery.Query
	for _, u := range cfg.Upstreams {
		if u.Service != "" {
			qs = append(qs, queryOf(u))
		}
	}
	if cfg.Ingress != nil {
		qs = append(qs, discovery.Query{Service: cfg.Agent.Name})
	}
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
}

// Addr is the control API's bound address.
func (s *Sidecar) Addr() string { return s.listener.Addr().String() }

// Close releases the listeners of a sidecar whose Run was never called.
func (s *Sidecar) Close() error {
	s.closeListeners()
	return nil
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
		"control_api", s.Addr(), "ingress", s.IngressAddr(), "consul", cfg.Consul.Address)

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	regCtx, stopReg := context.WithCancel(bg)
	notifyCtx, stopNotify := context.WithCancel(bg)
	agentCtx, stopAgent := context.WithCancel(bg)

	var wg sync.WaitGroup
	regDone := make(chan struct{})
	go func() { defer close(regDone); s.registry.Run(regCtx) }()
	drainCtx, stopDrain := context.WithCancel(bg)
	defer stopDrain()
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); s.notifier.Run(notifyCtx, drainCtx) }()
	wg.Add(2)
	go func() { defer wg.Done(); s.watch(bg) }()
	go func() { defer wg.Done(); s.refreshSidecarCheck(bg) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.pruneDeparted(bg) }()
	watchDone := make(chan struct{})
	if s.watcher != nil {
		go func() { defer close(watchDone); s.watcher.Run(bg) }()
	} else {
		close(watchDone)
	}
	s.startProbe(cfg.Health.Probe)
	agentDone := make(chan struct{})
	if s.supervisor != nil {
		go func() { defer close(agentDone); s.supervisor.Run(agentCtx) }()
	} else {
		close(agentDone)
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- s.server.Serve(s.listener) }()
	if s.ingressSrv != nil {
		go func() {
			if err := s.ingressSrv.Serve(s.ingressLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("ingress: %w", err)
			}
		}()
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
	var shutdowns sync.WaitGroup
	for _, srv := range []*http.Server{s.server, s.ingressSrv} {
		if srv == nil {
			continue
		}
		shutdowns.Add(1)
		go func() {
			defer shutdowns.Done()
			if err := srv.Shutdown(deadline); err != nil {
				s.log.Warn("in-flight requests did not finish in time", "error", err)
			}
		}()
	}
	shutdowns.Wait()
	stopAgent()
	<-agentDone
	s.stopProbe()
	stopReg()
	<-regDone
	if err := s.registry.Deregister(deadline); err != nil {
		s.log.Warn("could not deregister from Consul", "error", err)
	} else {
		s.log.Info("deregistered from Consul", "service_id", cfg.Agent.ID)
	}
	go func() { <-deadline.Done(); stopDrain() }()
	stopNotify()
	<-notifyDone
	stopBG()
	wg.Wait()
	for _, t := range s.transports {
		t.CloseIdleConnections()
	}
	<-watchDone
	// The Consul clients' kept-alive connections, for a process that goes
	// on without this sidecar (tests, embedding).
	if c, ok := s.registry.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	if s.watcher != nil {
		s.watcher.CloseIdleConnections()
	}
	s.log.Info("sidecar stopped")
	return runErr
}

// Beat records a heartbeat (from the API or a probe) and acts on what it
// changed. It never blocks on Consul or on notifications.
func (s *Sidecar) Beat(hb health.Heartbeat) health.HealthSnapshot {
	trs := s.tracker.Beat(s.now(), hb)
	s.dispatch(trs)
	s.pushCheck()
	s.nudge()
	return s.tracker.Snapshot()
}

// refreshSidecarCheck keeps the sidecar check's TTL fresh.
func (s *Sidecar) refreshSidecarCheck(ctx context.Context) {
	t := time.NewTicker(sidecarCheckRefresh)
	defer t.Stop()
	reg := time.NewTicker(time.Second)
	defer reg.Stop()
	s.watchRegistration()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.pushSidecarCheck()
		case <-reg.C:
			s.watchRegistration()
		}
	}
}

// watch evaluates the tracker's deadlines as they come due.
func (s *Sidecar) watch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.tracker.NextDeadline().Sub(s.now())
		// While the agent is isolated its check is refreshed well within
		// the TTL, so Consul keeps the sidecar's own words ("ISOLATED
		// since …") rather than expiring it into "TTL expired".
		isolated := s.tracker.Snapshot().IsolatedNow()
		if refresh := s.Config().Health.TTL() / 3; isolated && refresh > 0 && refresh < wait {
			wait = refresh
		}
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if trs := s.tracker.Evaluate(s.now()); len(trs) > 0 {
			s.dispatch(trs)
			s.pushCheck()
		} else if isolated {
			s.pushCheck()
		}
	}
}

func (s *Sidecar) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch acts on transitions: logs, notifications, restarts. It runs
// without the tracker's lock held.
func (s *Sidecar) dispatch(trs []health.Transition) {
	if len(trs) == 0 {
		return
	}
	cfg := s.Config()
	restartOnIsolation := cfg.Agent.Exec != nil && cfg.Agent.Exec.RestartOnIsolation && s.supervisor != nil
	for _, tr := range trs {
		ev := notify.Event{Agent: cfg.Agent.Name, AgentID: cfg.Agent.ID, Reason: tr.Reason, Detail: tr.Detail,
			LastHeartbeat: tr.LastHeartbeat, Time: tr.At.UTC()}
		switch tr.Kind {
		case health.Isolated:
			s.metrics.isolations.WithLabelValues(tr.Reason).Inc()
			s.log.Warn("agent isolated", "reason", tr.Reason, "detail", tr.Detail, "last_heartbeat", health.Stamp(tr.LastHeartbeat))
			ev.Type = notify.EventAgentIsolated
			ev.Text = fmt.Sprintf("Agent %s (%s) is isolated: %s.", cfg.Agent.ID, cfg.Agent.Name, tr.Detail)
			if restartOnIsolation {
				ev.Text += " Restarting it."
			}
			s.notifier.Send(ev)
			s.publish(ev)
			if restartOnIsolation {
				s.supervisor.Restart("isolated: " + tr.Reason)
			}
		case health.Recovered:
			s.metrics.recoveries.Inc()
			s.log.Info("agent recovered", "detail", tr.Detail)
			ev.Type = notify.EventAgentRecovered
			ev.Text = fmt.Sprintf("Agent %s (%s) recovered: %s.", cfg.Agent.ID, cfg.Agent.Name, tr.Detail)
			s.notifier.Send(ev)
			s.publish(ev)
		case health.StillIsolated:
			s.log.Warn("agent still isolated", "reason", tr.Reason)
			if restartOnIsolation {
				s.supervisor.Restart("still isolated: " + tr.Reason)
			}
		}
	}
}

// pushCheck hands the current heartbeat check state to the registry.
func (s *Sidecar) pushCheck() {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	status, output := health.FormatCheck(s.tracker.Snapshot())
	s.registry.SetCheck(heartbeatCheckID(s.Config().Agent.ID), status, truncate(output, maxCheckOutput))
}

// maxCheckOutput stays under Consul's default check output limit (4 KiB).
const maxCheckOutput = 4000

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len(" …(truncated)")] + " …(truncated)"
}

func (s *Sidecar) startProbe(p *policies.Probe) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.probeStop = cancel
	s.mu.Unlock()
	pr := health.NewProber(s.log.Named("probe"), *p, func(hb health.Heartbeat) {
		if s.supervisor == nil || !s.supervisor.Restarting() { // see Supervisor.Restarting
			s.Beat(hb)
		}
	})
	s.probeWG.Add(1)
	go func() { defer s.probeWG.Done(); pr.Run(ctx) }()
}

func (s *Sidecar) stopProbe() {
	s.mu.Lock()
	stop := s.probeStop
	s.probeStop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.probeWG.Wait()
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

// hostname is used in status output.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// ConsulConfig is how the sidecar (and anything else reading its
// configuration) talks to Consul: address, token and TLS settings.
func ConsulConfig(cfg *policies.Config) discovery.Config {
	c := cfg.Consul
	return discovery.Config{Address: c.Address, Token: c.Token, SyncInterval: c.SyncInterval,
		TLS: discovery.TLSConfig{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
			ServerName: c.TLSServerName, InsecureSkipVerify: c.InsecureSkipVerify}}
}
