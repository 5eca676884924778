package sidecar

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// ErrNothingToReload is returned by Reload when the sidecar runs with the
// built-in -dev configuration.
var ErrNothingToReload = errors.New("the sidecar runs with the built-in -dev configuration: there are no files to reload")

// ReloadInfo describes the last reload attempt.
type ReloadInfo struct {
	At    time.Time `json:"at"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	// Sources are the files that were read.
	Sources []string `json:"sources,omitempty"`
	// RestartRequired lists changed settings that only take effect when the
	// sidecar restarts; the running values were kept.
	RestartRequired []string `json:"restart_required,omitempty"`
	// PoliciesRejected: the fleet policies read from Consul KV were
	// rejected (Error says why; OK is false) while the local files were
	// applied over the last good policies, or over none (Sources).
	PoliciesRejected bool `json:"policies_rejected,omitempty"`
}

// PoliciesRejected is what Options.Reload returns, together with a
// configuration, when the fleet policies read from Consul KV do not load
// but the local files do over the policies in force (or over none, when
// none was ever accepted). Reload applies that configuration and reports
// Err as the reason the policies were rejected.
type PoliciesRejected struct {
	Err error
}

func (e *PoliciesRejected) Error() string { return e.Err.Error() }

func (e *PoliciesRejected) Unwrap() error { return e.Err }

// Reload reads the configuration again and applies it. A configuration
// that does not load or validate is rejected with its error and the running
// configuration stays in force. When only the fleet policies are rejected
// (PoliciesRejected), the local files are applied over the last good
// policies and the rejection is reported as for a rejected configuration.
func (s *Sidecar) Reload() (ReloadInfo, error) {
	if s.opts.Reload == nil {
		return ReloadInfo{}, ErrNothingToReload
	}
	// A SIGHUP, POST /v1/reload and a KV change may come at once: each
	// loads and applies in turn, so the last loaded is the one in force.
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	now := s.now()
	next, err := s.opts.Reload()
	var policiesRejected *PoliciesRejected
	if err != nil && (!errors.As(err, &policiesRejected) || next == nil) {
		info := ReloadInfo{At: now, Error: err.Error()}
		s.mu.Lock()
		s.lastReload = &info
		s.mu.Unlock()
		s.log.Error("configuration rejected; the running configuration stays", "error", err)
		s.publish(notify.Event{Type: notify.EventConfigRejected, Detail: err.Error(),
			Text: "Configuration change rejected; the last good configuration stays in force: " + firstLine(err.Error())})
		s.pushSidecarCheck()
		return info, err
	}

	s.mu.Lock()
	prev := s.cfg
	merged, restart := mergeReload(prev, next)
	s.cfg = merged
	info := ReloadInfo{At: now, OK: true, Sources: merged.Sources, RestartRequired: restart}
	if policiesRejected != nil {
		info.OK, info.Error, info.PoliciesRejected = false, policiesRejected.Err.Error(), true
	}
	s.lastReload = &info
	s.mu.Unlock()
	for _, w := range merged.Warnings() {
		s.log.Warn(w)
	}

	s.notifier.SetTargets(notifyTargets(merged))
	s.registry.Update(s.service(merged))
	s.watchQueries(merged)
	s.proxy.Rebind(merged)
	s.gateway.SetConfig(merged)
	if s.supervisor != nil && merged.Agent.Exec != nil {
		s.supervisor.SetExec(*merged.Agent.Exec)
	}
	if !reflect.DeepEqual(prev.Health.Probe, merged.Health.Probe) {
		s.restartProbe(merged.Health.Probe) // reloadMu is held
	}
	s.dispatch(s.tracker.SetHealth(merged.Health, now))
	s.pushCheck()
	s.nudge()
	for _, key := range restart {
		s.log.Warn("setting changed but needs a sidecar restart; keeping the running value", "key", key)
	}
	s.log.Info("configuration reloaded", "sources", merged.Sources)
	s.publish(notify.Event{Type: notify.EventConfigApplied, Text: fmt.Sprintf("Configuration applied from %d source(s).", len(merged.Sources))})
	if policiesRejected != nil {
		s.log.Error("fleet policies in Consul KV rejected; the last good policies stay in force and the local files "+
			"were applied", "error", policiesRejected.Err)
		s.publish(notify.Event{Type: notify.EventConfigRejected, Detail: info.Error,
			Text: "Fleet policies in Consul KV rejected; the last good policies stay in force and the local files were applied: " +
				firstLine(info.Error)})
	}
	s.pushSidecarCheck()
	return info, nil
}

// mergeReload returns next with the settings that cannot change at run time
// kept from prev, and the names of those that differed.
func mergeReload(prev, next *policies.Config) (*policies.Config, []string) {
	out := *next
	var restart []string
	keep := func(key string, changed bool, apply func()) {
		if changed {
			restart = append(restart, key)
			apply()
		}
	}
	keep("agent.name", prev.Agent.Name != next.Agent.Name, func() { out.Agent.Name = prev.Agent.Name })
	keep("agent.id", prev.Agent.ID != next.Agent.ID, func() { out.Agent.ID = prev.Agent.ID })
	keep("agent.exec", (prev.Agent.Exec == nil) != (next.Agent.Exec == nil), func() { out.Agent.Exec = prev.Agent.Exec })
	keep("listen", !prev.Listen.Equal(next.Listen), func() { out.Listen = prev.Listen })
	keep("log", prev.Log != next.Log, func() { out.Log = prev.Log })
	keep("tls", prev.TLS != next.TLS, func() { out.TLS = prev.TLS })
	keep("ingress.address", ingressAddrOf(prev) != ingressAddrOf(next), func() {
		if next.Ingress != nil && prev.Ingress != nil {
			in := *next.Ingress
			in.Address = prev.Ingress.Address
			out.Ingress = &in
		} else {
			out.Ingress = prev.Ingress
		}
	})
	keep("ingress.max_connections", prev.Ingress != nil && next.Ingress != nil &&
		prev.Ingress.MaxConnections != next.Ingress.MaxConnections, func() {
		in := *out.Ingress
		in.MaxConnections = prev.Ingress.MaxConnections
		out.Ingress = &in
	})
	keep("consul.address", prev.Consul.Address != next.Consul.Address, func() { out.Consul.Address = prev.Consul.Address })
	keep("consul.token", prev.Consul.Token != next.Consul.Token, func() { out.Consul.Token = prev.Consul.Token })
	keep("consul.sync_interval", prev.Consul.SyncInterval != next.Consul.SyncInterval, func() { out.Consul.SyncInterval = prev.Consul.SyncInterval })
	keep("consul.policy_prefix", prev.Consul.PolicyPrefix != next.Consul.PolicyPrefix, func() { out.Consul.PolicyPrefix = prev.Consul.PolicyPrefix })
	keep("consul.fleet_prefix", prev.Consul.FleetPrefix != next.Consul.FleetPrefix, func() { out.Consul.FleetPrefix = prev.Consul.FleetPrefix })
	pc, nc := prev.Consul, next.Consul
	keep("consul TLS (ca_file, cert_file, key_file, tls_server_name, insecure_skip_verify)",
		pc.CAFile != nc.CAFile || pc.CertFile != nc.CertFile || pc.KeyFile != nc.KeyFile ||
			pc.TLSServerName != nc.TLSServerName || pc.InsecureSkipVerify != nc.InsecureSkipVerify,
		func() {
			out.Consul.CAFile, out.Consul.CertFile, out.Consul.KeyFile = pc.CAFile, pc.CertFile, pc.KeyFile
			out.Consul.TLSServerName, out.Consul.InsecureSkipVerify = pc.TLSServerName, pc.InsecureSkipVerify
		})
	return &out, restart
}

func ingressAddrOf(c *policies.Config) string {
	if c.Ingress == nil {
		return ""
	}
	return c.Ingress.Address
}

// reloadOnSignal reloads on each value of Options.ReloadOn until ctx ends.
func (s *Sidecar) reloadOnSignal(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.opts.ReloadOn:
			if _, err := s.Reload(); errors.Is(err, ErrNothingToReload) {
				s.log.Warn("SIGHUP ignored", "reason", err)
			} // other errors are logged with the file:line:col of each
		}
	}
}
