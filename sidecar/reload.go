package sidecar

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/kvpolicy"
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
// but the local files do: Reload applies that configuration and reports
// Err as the reason the policies were rejected.
type PoliciesRejected = kvpolicy.Rejected

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
	merged, restart := policies.KeepRestartOnly(prev, next) // which: the reload tags of policies.Config
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
	s.spend.SetBudgets(merged.Budgets)
	s.gateway.SetConfig(merged)
	if s.supervisor != nil && merged.Agent.Exec != nil {
		s.supervisor.SetExec(*merged.Agent.Exec)
	}
	if !reflect.DeepEqual(prev.Health.Probe, merged.Health.Probe) {
		s.restartProbe(merged.Health.Probe) // reloadMu is held
	}
	s.transitions.run(func() []health.Transition { return s.tracker.SetHealth(merged.Health, now) }, s.dispatch)
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
