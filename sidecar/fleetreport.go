package sidecar

import (
	"slices"

	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/report"
)

// fleetReport is this sidecar's state for `sidecar fleet`, kept in Consul
// KV under consul.fleet_prefix by s.reporter.
func (s *Sidecar) fleetReport() report.Report {
	cfg := s.Config()
	h := s.tracker.Snapshot()
	r := report.Report{Agent: cfg.Agent.Name, ID: cfg.Agent.ID, Isolated: h.IsolatedNow()}
	if !h.LastHeartbeat.IsZero() {
		t := h.LastHeartbeat.UTC()
		r.LastHeartbeat = &t
	}
	for _, b := range s.breakers.Snapshots() {
		if b.State != breaker.Closed.String() {
			r.OpenBreakers = append(r.OpenBreakers, b.Name)
		}
	}
	for _, d := range s.gateway.Degraded() {
		r.Degraded = append(r.Degraded, d.Model)
	}
	slices.Sort(r.OpenBreakers)
	slices.Sort(r.Degraded)
	for _, w := range s.metrics.avail.Windows(s.now()) {
		if w.Window == "1h" {
			r.Answered1h = w.Ratio
		}
	}
	r.SpendToday = s.spend.Spend()
	return r
}

// nudgeReport says the state in the fleet report may have changed.
func (s *Sidecar) nudgeReport() {
	if s.reporter != nil {
		s.reporter.Nudge()
	}
}
