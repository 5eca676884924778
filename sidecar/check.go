package sidecar

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/redact"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/policies"
)

// Names of the Consul checks the sidecar registers.
const (
	heartbeatCheckName = "heartbeat"
	agentTag           = "ai-agent"
)

// heartbeatCheckID is the agent-local Consul check ID of the heartbeat check.
func heartbeatCheckID(agentID string) string { return agentID + ":" + heartbeatCheckName }

// serviceFor builds the Consul service definition of the agent. With the
// ingress enabled, the registered address is the ingress (ingressAddr, the
// bound address), so callers reach the agent through its sidecar.
func serviceFor(cfg *policies.Config, ingressAddr string) discovery.Service {
	tags := []string{agentTag}
	for _, t := range cfg.Agent.Tags {
		if t != agentTag {
			tags = append(tags, t)
		}
	}
	meta := map[string]string{"sidecar_version": version.Version}
	for k, v := range cfg.Agent.Meta {
		meta[k] = v
	}
	h := cfg.Health
	notes := fmt.Sprintf("The agent heartbeats to its sidecar every %s. Critical after %d missed heartbeats (+%s grace): the agent is isolated.",
		h.HeartbeatInterval, h.MissedHeartbeats, h.Grace)
	if h.Probe != nil {
		notes = fmt.Sprintf("The sidecar probes %s every %s; each answer counts as a heartbeat. Critical after %d missed (+%s grace).",
			redact.URL(h.Probe.URL), h.Probe.Interval, h.MissedHeartbeats, h.Grace)
	}
	address, port := cfg.Agent.Address, cfg.Agent.Port
	if ingressAddr != "" {
		if host, p, err := net.SplitHostPort(ingressAddr); err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = cfg.Agent.Address
			}
			address = host
			port, _ = strconv.Atoi(p)
			meta[policies.MetaAgentPort] = strconv.Itoa(cfg.Agent.Port)
		}
	}
	return discovery.Service{
		ID:      cfg.Agent.ID,
		Name:    cfg.Agent.Name,
		Address: address,
		Port:    port,
		Tags:    tags,
		Meta:    meta,
		Checks: []discovery.Check{{
			ID:                      heartbeatCheckID(cfg.Agent.ID),
			Name:                    heartbeatCheckName,
			Notes:                   notes,
			TTL:                     h.TTL(),
			DeregisterCriticalAfter: cfg.Consul.DeregisterCriticalAfter,
		}, {
			ID:   sidecarCheckID(cfg.Agent.ID),
			Name: sidecarCheckName,
			Notes: "Fed by the sidecar itself: passing while every circuit breaker is closed, warning with the list of open ones. " +
				"Critical when the sidecar stopped refreshing it (the sidecar is down).",
			TTL:                     sidecarCheckTTL,
			DeregisterCriticalAfter: cfg.Consul.DeregisterCriticalAfter,
		}},
	}
}

// heartbeatCheck turns the tracker's state into a Consul check status and an
// output written for the person reading the Consul UI.
func heartbeatCheck(s HealthSnapshot) (discovery.CheckStatus, string) {
	var b strings.Builder
	status := discovery.Passing
	switch s.state {
	case StateIsolated:
		status = discovery.Critical
		fmt.Fprintf(&b, "ISOLATED since %s: %s.", stamp(s.Since), s.Detail)
		if !s.LastHeartbeat.IsZero() {
			fmt.Fprintf(&b, "\nLast heartbeat: %s (%s).", stamp(s.LastHeartbeat), s.Reported)
		} else {
			b.WriteString("\nNo heartbeat received yet.")
		}
		b.WriteString("\nA new heartbeat recovers the agent.")
	case StateWaiting:
		status = discovery.Critical
		fmt.Fprintf(&b, "Waiting for the first heartbeat; the agent is isolated if none arrives by %s.", stamp(s.IsolatedAfter))
	default:
		switch s.Reported {
		case ReportDegraded:
			status = discovery.Warning
		case ReportFailing:
			status = discovery.Critical
		}
		fmt.Fprintf(&b, "Heartbeat %s at %s", s.Reported, stamp(s.LastHeartbeat))
		if s.LastSource == "probe" {
			b.WriteString(" (probe)")
		}
		b.WriteString(".")
		if s.Reported == ReportFailing {
			b.WriteString(" The agent reports it is failing.")
		}
		fmt.Fprintf(&b, "\nNext heartbeat due by %s; isolated after %s without one.", stamp(s.NextDue), stamp(s.IsolatedAfter))
	}
	if s.Note != "" {
		fmt.Fprintf(&b, "\nNote: %s", s.Note)
	}
	if len(s.Metrics) > 0 {
		fmt.Fprintf(&b, "\nMetrics: %s", formatMetrics(s.Metrics))
	}
	if s.Progress != "" {
		fmt.Fprintf(&b, "\nProgress: %s (changed %s)", s.Progress, stamp(s.ProgressSince))
	}
	return status, b.String()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
