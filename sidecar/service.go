package sidecar

import (
	"fmt"
	"net"
	"strconv"

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

// maxCheckOutput stays under Consul's default check output limit (4 KiB).
const maxCheckOutput = 4000

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len(" …(truncated)")] + " …(truncated)"
}
