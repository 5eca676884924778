package sidecar

import (
	"context"
	"fmt"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// Beat records a heartbeat (from the API or a probe) and acts on what it
// changed. It never blocks on Consul or on notifications.
func (s *Sidecar) Beat(hb health.Heartbeat) health.HealthSnapshot {
	s.transitions.run(func() []health.Transition { return s.tracker.Beat(s.now(), hb) }, s.dispatch)
	s.pushCheck()
	s.nudge()
	return s.tracker.Snapshot()
}

// watch evaluates the tracker's deadlines as they come due.
func (s *Sidecar) watch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.tracker.NextDeadline().Sub(s.now())
		// While the agent is isolated its check is refreshed well within
		// the TTL, so Consul keeps the sidecar's own words ("ISOLATED
		// since …") rather than expiring it into "TTL expired".
		isolated := s.tracker.Snapshot().IsolatedNow()
		if refresh := s.Config().Health.TTL() / 3; isolated && refresh > 0 && refresh < wait {
			wait = refresh
		}
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if s.transitions.run(func() []health.Transition { return s.tracker.Evaluate(s.now()) }, s.dispatch) > 0 {
			s.pushCheck()
		} else if isolated {
			s.pushCheck()
		}
	}
}

func (s *Sidecar) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch acts on transitions: logs, notifications, restarts. It runs
// without the tracker's lock held.
func (s *Sidecar) dispatch(trs []health.Transition) {
	if len(trs) == 0 {
		return
	}
	cfg := s.Config()
	restartOnIsolation := cfg.Agent.Exec != nil && cfg.Agent.Exec.RestartOnIsolation && s.supervisor != nil
	for _, tr := range trs {
		s.incidents.AgentChanged(tr)
		ev := notify.Event{Agent: cfg.Agent.Name, AgentID: cfg.Agent.ID, Reason: tr.Reason, Detail: tr.Detail,
			LastHeartbeat: tr.LastHeartbeat, Time: tr.At.UTC()}
		switch tr.Kind {
		case health.Isolated:
			s.metrics.isolations.WithLabelValues(tr.Reason).Inc()
			s.log.Warn("agent isolated", "reason", tr.Reason, "detail", tr.Detail, "last_heartbeat", health.Stamp(tr.LastHeartbeat))
			ev.Type = notify.EventAgentIsolated
			ev.Text = fmt.Sprintf("Agent %s (%s) is isolated: %s.", cfg.Agent.ID, cfg.Agent.Name, tr.Detail)
			if restartOnIsolation {
				ev.Text += " Restarting it."
			}
			s.notifier.Send(ev)
			if n := len(notifyTargets(cfg)); n > 0 {
				s.incidents.Notified(n, tr.At)
			}
			s.publish(ev)
			if restartOnIsolation {
				s.supervisor.Restart("isolated: " + tr.Reason)
			}
		case health.Recovered:
			s.metrics.recoveries.Inc()
			s.log.Info("agent recovered", "detail", tr.Detail)
			ev.Type = notify.EventAgentRecovered
			ev.Text = fmt.Sprintf("Agent %s (%s) recovered: %s.", cfg.Agent.ID, cfg.Agent.Name, tr.Detail)
			s.notifier.Send(ev)
			s.publish(ev)
		case health.StillIsolated:
			s.log.Warn("agent still isolated", "reason", tr.Reason)
			if restartOnIsolation {
				s.supervisor.Restart("still isolated: " + tr.Reason)
			}
		}
	}
}

// pushCheck hands the current heartbeat check state to the registry.
func (s *Sidecar) pushCheck() {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	status, output := health.FormatCheck(s.tracker.Snapshot())
	s.registry.SetCheck(heartbeatCheckID(s.Config().Agent.ID), status, truncate(output, maxCheckOutput))
	s.nudgeReport()
}

// startProbe starts the prober of the configuration Run starts with.
func (s *Sidecar) startProbe(p *policies.Probe) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.restartProbe(p)
}

// restartProbe stops the running prober, if any, and waits for it, then
// starts one for p (nil: none), unless Run has stopped probing. The caller
// holds reloadMu, which serializes it with Run's start and stop.
func (s *Sidecar) restartProbe(p *policies.Probe) {
	if s.prober != nil {
		s.prober.Stop()
		s.prober = nil
	}
	if p == nil || s.proberStopped {
		return
	}
	pr := health.NewProber(s.log.Named("probe"), *p, func(hb health.Heartbeat) {
		if s.supervisor == nil || !s.supervisor.Restarting() { // see supervise.Supervisor.Restarting
			s.Beat(hb)
		}
	})
	ctx, g := newTaskGroup()
	g.Go(func() { pr.Run(ctx) })
	s.prober = g
}

// stopProbe stops the prober for good (Run's shutdown): a reload after it
// starts none.
func (s *Sidecar) stopProbe() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.proberStopped = true
	s.restartProbe(nil)
}
