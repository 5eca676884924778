package sidecar

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agent-sidecar/sidecar/internal/apierror"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/sidecar/guard"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
)

// The agent probes tell an orchestrator about the agent (see
// health.Verdict): a kubelet's livenessProbe restarts the agent's container
// when live fails, as agent.exec restarts a process, and its readinessProbe
// takes the agent out of its Service while ready fails. The sidecar's own
// liveness is /v1/health.
const (
	PathAgentLive  = "/v1/agent/live"
	PathAgentReady = "/v1/agent/ready"
	PathHealth     = "/v1/health"
)

// AgentProbes is what the agent probes answer now, shown in /v1/status.
type AgentProbes struct {
	Live  health.Verdict `json:"live"`
	Ready health.Verdict `json:"ready"`
}

// agentProbes returns both verdicts at the sidecar's clock.
func (s *Sidecar) agentProbes() AgentProbes {
	now := s.now()
	return AgentProbes{Live: s.tracker.Live(now), Ready: s.tracker.Ready(now)}
}

// verdictStatus is the HTTP status of a probe's answer: 200 when it
// passes, 503 when it fails (a kubelet counts any status from 200 to 399 as
// a success).
func verdictStatus(v health.Verdict) int {
	if v.OK() {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// probeAnswers are the probe listener's answers by path, each returning a
// status and a body; the control listener serves the same ones.
func (s *Sidecar) probeAnswers() map[string]func() (int, any) {
	return map[string]func() (int, any){
		PathAgentLive: func() (int, any) {
			v := s.tracker.Live(s.now())
			return verdictStatus(v), v
		},
		PathAgentReady: func() (int, any) {
			v := s.tracker.Ready(s.now())
			return verdictStatus(v), v
		},
		PathHealth: func() (int, any) { return http.StatusOK, sidecarHealth() },
	}
}

// sidecarHealth is the body of GET /v1/health: the sidecar answers, so it
// is alive.
func sidecarHealth() map[string]string {
	return map[string]string{"status": "ok", "version": version.Version}
}

// echoProbe serves one of probeAnswers on the control listener. An answer
// is never cached: it is only true when given.
func echoProbe(answer func() (int, any)) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		status, body := answer()
		return c.JSON(status, body)
	}
}

// probeListener is the read-only listener of listen.probe_address.
type probeListener struct {
	ln  net.Listener
	srv *http.Server
}

// Limits of the probe listener, whose answers are small and immediate: a
// request must arrive, and its answer leave, within these.
const (
	probeReadTimeout  = ReadHeaderTimeout
	probeWriteTimeout = 10 * time.Second
)

// listenProbes binds listen.probe_address ("" : none) with the control
// listener's connection cap and server limits.
func (s *Sidecar) listenProbes(addr string, maxConns int) (*probeListener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("probe listener: cannot listen on %s: %w (set listen.probe_address to a free address)", addr, err)
	}
	srv := newServer(guard.Probes(s.probeHandler()), s.httpLog)
	srv.ReadTimeout, srv.WriteTimeout = probeReadTimeout, probeWriteTimeout
	return &probeListener{ln: guard.LimitListener(ln, maxConns), srv: srv}, nil
}

// probeHandler serves the probe listener: GET of the agent probes and of
// the sidecar's own liveness, at any Host and without a token; every other
// path is 404 and every other method 405.
func (s *Sidecar) probeHandler() http.Handler {
	answers := s.probeAnswers()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer, ok := answers[r.URL.Path]
		switch {
		case !ok:
			apierror.WriteTraced(w, http.StatusNotFound, errNotFound, fmt.Sprintf(
				"no such endpoint: %s %s; the probe listener serves only GET %s, %s and %s (the rest of the API is on the "+
					"control listener)", r.Method, clipPath(r.URL.Path), PathAgentLive, PathAgentReady, PathHealth),
				tracing.TraceID(r.Context(), r.Header))
			return
		case r.Method != http.MethodGet:
			w.Header().Set("Allow", http.MethodGet)
			apierror.WriteTraced(w, http.StatusMethodNotAllowed, errMethodNotAllowed, fmt.Sprintf(
				"method %s not allowed on %s: the probe listener is read-only, use GET", r.Method, r.URL.Path),
				tracing.TraceID(r.Context(), r.Header))
			return
		}
		status, body := answer()
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(append(b, '\n'))
	})
}

// clipPath shortens a path named in an error message.
func clipPath(p string) string {
	const limit = 200
	if len(p) <= limit {
		return p
	}
	return p[:limit] + "…"
}

// ProbeAddr is the probe listener's bound address, "" when it is not
// enabled.
func (s *Sidecar) ProbeAddr() string {
	if s.probes == nil {
		return ""
	}
	return s.probes.ln.Addr().String()
}
