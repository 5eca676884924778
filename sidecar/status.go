package sidecar

import (
	"net/http"
	"os"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/internal/redact"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
	"github.com/agent-sidecar/sidecar/sidecar/spend"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
	"github.com/labstack/echo/v4"
)

// Status is the body of GET /v1/status.
type Status struct {
	Sidecar       SidecarInfo                      `json:"sidecar"`
	Agent         AgentInfo                        `json:"agent"`
	Health        health.HealthSnapshot            `json:"health"`
	AgentProbes   AgentProbes                      `json:"agent_probes"`
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
	Usage         *spend.UsageToday                `json:"usage,omitempty"`   // today's (UTC); absent until an answer reported usage
	Budgets       []budget.Status                  `json:"budgets,omitempty"` // absent without budget blocks
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
	// ProbeAPI is the probe listener's address, when there is one.
	ProbeAPI string `json:"probe_api,omitempty"`
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
			Uptime: readable.Duration(s.now().Sub(s.started)).String(), ControlAPI: s.Addr(), ProbeAPI: s.ProbeAddr()},
		Agent:         AgentInfo{Name: svc.Name, ID: svc.ID, Address: svc.Address, Port: svc.Port, Tags: svc.Tags},
		Health:        s.tracker.Snapshot(),
		AgentProbes:   s.agentProbes(),
		Registration:  s.registry.State(),
		Notifications: s.notifier.Stats(),
		Breakers:      s.breakers.Snapshots(),
		Models:        s.gateway.Models(),
		Degraded:      s.gateway.Degraded(),
		Availability:  s.metrics.avail.Windows(s.now()),
		Usage:         s.spend.Today(),
		Budgets:       s.spend.Budgets(),
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

// hostname is used in status output.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
