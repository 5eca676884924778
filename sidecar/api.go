package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/jsonguard"
	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/internal/redact"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
)

// Limits on what an agent may send in a heartbeat.
const (
	maxHeartbeatBody = 64 << 10
	maxNoteLen       = 1024
	maxMetrics       = 64
	maxProgressLen   = 256
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

// heartbeatBody is the JSON an agent may POST to /v1/heartbeat.
type heartbeatBody struct {
	Status   string          `json:"status"`
	Note     string          `json:"note"`
	Metrics  map[string]any  `json:"metrics"`
	Progress json.RawMessage `json:"progress"`
}

// parseHeartbeat validates a heartbeat body. An empty body is an "ok"
// heartbeat.
func parseHeartbeat(body []byte) (Heartbeat, error) {
	hb := Heartbeat{Status: ReportOK, Source: "api"}
	if len(bytes.TrimSpace(body)) == 0 {
		return hb, nil
	}
	if _, err := jsonguard.Scan(body, jsonguard.MaxDepth); jsonguard.TooDeep(err) {
		return hb, badRequest("heartbeat body is %s; send a flat {\"status\":…,\"metrics\":{…}} object", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var in heartbeatBody
	if err := dec.Decode(&in); err != nil {
		return hb, badRequest("heartbeat body is not valid JSON: %s; send {\"status\":\"ok|degraded|failing\",\"note\":\"…\",\"metrics\":{…},\"progress\":…} or an empty body", jsonErr(err))
	}
	if dec.More() {
		return hb, badRequest("heartbeat body has data after the JSON object; send exactly one object")
	}
	switch in.Status {
	case "", ReportOK, ReportDegraded, ReportFailing:
		if in.Status != "" {
			hb.Status = in.Status
		}
	default:
		return hb, badRequest("heartbeat status %q is not valid: use \"ok\", \"degraded\" or \"failing\"", clip(in.Status, 40))
	}
	if len(in.Note) > maxNoteLen {
		return hb, badRequest("heartbeat note is %d bytes; the limit is %d", len(in.Note), maxNoteLen)
	}
	hb.Note = in.Note
	if len(in.Metrics) > maxMetrics {
		return hb, badRequest("heartbeat has %d metrics; the limit is %d", len(in.Metrics), maxMetrics)
	}
	if len(in.Metrics) > 0 {
		hb.Metrics = make(map[string]any, len(in.Metrics))
		for k, v := range in.Metrics {
			switch v := v.(type) {
			case json.Number:
				if i, err := v.Int64(); err == nil {
					hb.Metrics[k] = i
				} else if f, err := v.Float64(); err == nil {
					hb.Metrics[k] = f
				} else {
					return hb, badRequest("metric %q: %s is not a number", clip(k, 40), clip(v.String(), 40))
				}
			case string:
				hb.Metrics[k] = clip(v, 128)
			case bool:
				hb.Metrics[k] = v
			default:
				return hb, badRequest("metric %q must be a number, string or boolean", clip(k, 40))
			}
		}
	}
	p, err := parseProgress(in.Progress)
	if err != nil {
		return hb, err
	}
	hb.Progress = p
	return hb, nil
}

func parseProgress(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var p string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &p); err != nil {
			return "", badRequest("progress is not a valid JSON string")
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		p = string(raw)
	default:
		return "", badRequest("progress must be a string or a number (anything that changes while the agent gets work done)")
	}
	if len(p) > maxProgressLen {
		return "", badRequest("progress is %d bytes; the limit is %d", len(p), maxProgressLen)
	}
	return p, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, got %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return err.Error()
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
	if c.Request().ContentLength > maxHeartbeatBody {
		return &httpError{status: http.StatusRequestEntityTooLarge, typ: errTooLarge,
			msg: fmt.Sprintf("request body is larger than %d bytes", maxHeartbeatBody)}
	}
	body, err := readBody(c, maxHeartbeatBody)
	if err != nil {
		return err
	}
	hb, err := parseHeartbeat(body)
	if err != nil {
		return err
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
	Health        HealthSnapshot                   `json:"health"`
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
