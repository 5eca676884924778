package sidecar

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/agent-sidecar/sidecar/internal/apierror"
	"github.com/agent-sidecar/sidecar/sidecar/guard"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/tracing"
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
	errRequestTimeout   = "request_timeout"
)

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
		}
		body := apierror.New(typ, msg)
		r := c.Request()
		body.Error.TraceID = tracing.TraceID(r.Context(), r.Header)
		if he == nil && ee == nil {
			args := []any{"path", r.URL.Path, "error", err}
			if body.Error.TraceID != "" {
				args = append(args, "trace_id", body.Error.TraceID)
			}
			s.log.Error("control API request failed", args...)
		}
		_ = c.JSON(status, body)
	}
	e.POST("/v1/heartbeat", s.handleHeartbeat)
	e.GET("/v1/status", s.handleStatus)
	probes := s.probeAnswers()
	for _, path := range []string{PathHealth, PathAgentLive, PathAgentReady} {
		e.GET(path, echoProbe(probes[path]))
	}
	e.POST("/v1/reload", s.handleReload)
	e.GET("/v1/breakers", s.handleBreakers)
	e.GET("/v1/events", s.handleEvents)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler(s.tracing != nil)))
	e.POST("/v1/breakers/:name/:action", s.handleBreakerAction)
	return e
}

// readBody reads at most limit bytes; a larger body is a 413.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	var late *guard.BodyTimeoutError
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
