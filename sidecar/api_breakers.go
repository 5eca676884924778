package sidecar

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleBreakers serves GET /v1/breakers.
func (s *Sidecar) handleBreakers(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"breakers": s.breakers.Snapshots()})
}

// handleBreakerAction serves POST /v1/breakers/{name}/{open|close|reset}.
func (s *Sidecar) handleBreakerAction(c echo.Context) error {
	name, action := c.Param("name"), c.Param("action")
	b, ok := s.breakers.Lookup(name)
	if !ok {
		return &httpError{status: http.StatusNotFound, typ: errNotFound,
			msg: fmt.Sprintf("no breaker named %q; GET /v1/breakers lists them (a breaker exists once a call went through it)", name)}
	}
	switch action {
	case "open":
		b.ForceOpen()
	case "close":
		b.Close()
	case "reset":
		b.Reset()
	default:
		return badRequest("unknown action %q: use open, close or reset", action)
	}
	s.log.Warn("breaker changed by an operator", "breaker", name, "action", action)
	s.pushSidecarCheck()
	return c.JSON(http.StatusOK, b.Snapshot())
}
