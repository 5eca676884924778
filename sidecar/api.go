package sidecar

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/internal/redact"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
)

// Error types of the control API's JSON errors.
const (
	errInvalidRequest   = "invalid_request"
	errTooLarge         = "request_too_large"
	errNotFound         = "not_found"
	errMethodNotAllowed = "method_not_allowed"
	errInvalidConfig    = "invalid_config"
	errAgentRestarting  = "agent_restarting"
	errInternal         = "internal_error"
	errUnauthorized     = "unauthorized"
)

// APIError is the body of every error the sidecar itself returns:
// {"error":{"type":"…","message":"…"}}.
type APIError struct {
	Error APIErrorBody `json:"error"`
}

// APIErrorBody is the inside of APIError.
type APIErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type httpError struct {
	status int
	typ    string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, typ: errInvalidRequest, msg: fmt.Sprintf(format, args...)}
}

func newControlAPI(s *Sidecar) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard) // echo's own logger is unused; errors go through hclog
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, typ, msg := http.StatusInternalServerError, errInternal, "internal error"
		var he *httpError
		var ee *echo.HTTPError
		switch {
		case errors.As(err, &he):
			status, typ, msg = he.status, he.typ, he.msg
		case errors.As(err, &ee):
			status = ee.Code
			switch status {
			case http.StatusNotFound:
				typ, msg = errNotFound, fmt.Sprintf("no such endpoint: %s %s", c.Request().Method, c.Request().URL.Path)
			case http.StatusMethodNotAllowed:
				typ, msg = errMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", c.Request().Method, c.Request().URL.Path)
			default:
				typ, msg = errInvalidRequest, fmt.Sprint(ee.Message)
			}
		default:
			s.log.Error("control API request failed", "path", c.Request().URL.Path, "error", err)
		}
		_ = c.JSON(status, APIError{Error: APIErrorBody{Type: typ, Message: msg}})
	}
	e.POST("/v1/heartbeat", s.handleHeartbeat)
	e.GET("/v1/status", s.handleStatus)
	e.GET("/v1/health", s.handleHealth)
	e.POST("/v1/reload", s.handleReload)
	e.GET("/v1/breakers", s.handleBreakers)
	e.GET("/v1/events", s.handleEvents)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler()))
	e.POST("/v1/breakers/:name/:action", s.handleBreakerAction)
	return e
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readBody reads at most limit bytes; a larger body is a 413.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	var late *bodyTimeoutError
	switch {
	case errors.As(err, &late):
		return nil, &httpError{status: http.StatusRequestTimeout, typ: errRequestTimeout, msg: late.Error()}
	case err != nil:
		return nil, badRequest("could not read the request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, typ: errTooLarge,
			msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
	}
	return body, nil
}

func (s *Sidecar) handleHeartbeat(c echo.Context) error {
	if c.Request().ContentLength > health.MaxHeartbeatBody {
		return &httpError{status: http.StatusRequestEntityTooLarge, typ: errTooLarge,
			msg: fmt.Sprintf("request body is larger than %d bytes", health.MaxHeartbeatBody)}
	}
	body, err := readBody(c, health.MaxHeartbeatBody)
	if err != nil {
		return err
	}
	hb, err := health.ParseHeartbeat(body)
	if err != nil {
		return badRequest("%s", err)
	}
	if s.supervisor != nil && s.supervisor.Restarting() {
		return &httpError{status: http.StatusConflict, typ: errAgentRestarting,
			msg: "the agent process is being stopped to be restarted; this heartbeat is ignored"}
	}
	return c.JSON(http.StatusOK, s.Beat(hb))
}

func (s *Sidecar) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": version.Version})
}

func (s *Sidecar) handleReload(c echo.Context) error {
	info, err := s.Reload()
	switch {
	case errors.Is(err, ErrNothingToReload):
		return &httpError{status: http.StatusConflict, typ: errInvalidRequest, msg: err.Error()}
	case err != nil:
		return &httpError{status: http.StatusBadRequest, typ: errInvalidConfig,
			msg: "configuration rejected, the running configuration stays: " + err.Error()}
	}
	return c.JSON(http.StatusOK, info)
}

// Status is the body of GET /v1/status.
type Status struct {
	Sidecar       SidecarInfo                      `json:"sidecar"`
	Agent         AgentInfo                        `json:"agent"`
	Health        health.HealthSnapshot            `json:"health"`
	Registration  discovery.RegistrationState      `json:"registration"`
	Process       *supervise.State                 `json:"process,omitempty"`
	Notifications notify.Stats                     `json:"notifications"`
	Breakers      []breaker.Snapshot               `json:"breakers"`
	Models        []gateway.ModelStatus            `json:"models"`
	Degraded      []gateway.Degradation            `json:"degraded,omitempty"`
	Availability  []AvailabilityWindow             `json:"availability"`
	Events        []StreamedEvent                  `json:"events"` // the latest 20, oldest first
	Discovery     map[string]discovery.InstanceSet `json:"discovery,omitempty"`
	Ingress       string                           `json:"ingress,omitempty"`
	LastReload    *ReloadInfo                      `json:"last_reload,omitempty"`
	Config        map[string]any                   `json:"config"`
}

// SidecarInfo describes the sidecar process.
type SidecarInfo struct {
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	Host       string    `json:"host"`
	StartedAt  time.Time `json:"started_at"`
	Uptime     string    `json:"uptime"`
	ControlAPI string    `json:"control_api"`
}

// AgentInfo describes the agent as registered.
type AgentInfo struct {
	Name    string   `json:"name"`
	ID      string   `json:"id"`
	Address string   `json:"address"`
	Port    int      `json:"port,omitempty"`
	Tags    []string `json:"tags"`
}

// Status returns the sidecar's state. It contains no secrets.
func (s *Sidecar) Status() Status {
	s.mu.RLock()
	cfg, last := s.cfg, s.lastReload
	s.mu.RUnlock()
	svc := s.service(cfg)
	st := Status{
		Sidecar: SidecarInfo{Version: version.Version, PID: os.Getpid(), Host: hostname(), StartedAt: s.started.UTC(),
			Uptime: readable.Duration(s.now().Sub(s.started)).String(), ControlAPI: s.Addr()},
		Agent:         AgentInfo{Name: svc.Name, ID: svc.ID, Address: svc.Address, Port: svc.Port, Tags: svc.Tags},
		Health:        s.tracker.Snapshot(),
		Registration:  s.registry.State(),
		Notifications: s.notifier.Stats(),
		Breakers:      s.breakers.Snapshots(),
		Models:        s.gateway.Models(),
		Degraded:      s.gateway.Degraded(),
		Availability:  s.metrics.avail.Windows(s.now()),
		Events:        s.RecentEvents(20),
		Ingress:       s.IngressAddr(),
		LastReload:    last,
		Config:        cfg.Summary(),
	}
	if s.watcher != nil {
		st.Discovery = s.watcher.Sets()
	}
	if s.supervisor != nil {
		ps := s.supervisor.State()
		ps.Command = redact.Command(ps.Command) // arguments may carry secrets
		st.Process = &ps
	}
	return st
}

func (s *Sidecar) handleStatus(c echo.Context) error {
	return c.JSON(http.StatusOK, s.Status())
}
