package sidecar

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/health"
)

// The sidecar's own Consul check: passing while every breaker is closed,
// warning with a readable list when any is open. The sidecar refreshes it;
// when the sidecar dies, Consul marks it critical after the TTL.
const (
	sidecarCheckName    = "sidecar"
	sidecarCheckTTL     = 30 * time.Second
	sidecarCheckRefresh = sidecarCheckTTL / 3
)

func sidecarCheckID(agentID string) string { return agentID + ":" + sidecarCheckName }

// pushSidecarCheck hands the sidecar check's state to the registry. It is
// re-entered: reading the breakers' snapshots moves a breaker whose open
// period has passed to half-open, and that change calls the breaker
// listener, which pushes the check, on this same goroutine. So a push
// never waits for another: it marks the check stale, and whichever call
// holds the lock writes it again before letting go, until it is current.
func (s *Sidecar) pushSidecarCheck() {
	s.sidecarCheckStale.Store(true)
	for s.sidecarCheckStale.Load() {
		if !s.sidecarCheckMu.TryLock() {
			return // the holder sees the mark and writes it again
		}
		s.sidecarCheckStale.Store(false)
		s.writeSidecarCheck()
		s.sidecarCheckMu.Unlock()
	}
}

// writeSidecarCheck writes the sidecar check once. Requires sidecarCheckMu.
func (s *Sidecar) writeSidecarCheck() {
	status, out := sidecarCheck(s.breakers.Snapshots(), s.gateway.Degraded(), s.metrics.avail.Windows(s.now()), s.now())
	s.mu.RLock()
	last := s.lastReload
	s.mu.RUnlock()
	if last != nil && !last.OK {
		status = discovery.Warning
		out = fmt.Sprintf("Configuration change rejected at %s; running the last good one: %s\n%s",
			last.At.UTC().Format("15:04:05"), firstLine(last.Error), out)
	}
	s.registry.SetCheck(sidecarCheckID(s.Config().Agent.ID), status, truncate(out, maxCheckOutput))
	s.nudgeReport()
}

// sidecarCheck writes the sidecar check for people reading the Consul UI.
func sidecarCheck(snaps []breaker.Snapshot, degraded []gateway.Degradation, avail []AvailabilityWindow, now time.Time) (discovery.CheckStatus, string) {
	footer := availabilityLine(avail) + fmt.Sprintf("Checked %s.", health.Stamp(now))
	var models []string
	for _, d := range degraded {
		models = append(models, fmt.Sprintf("model %s answered by %s since %s (%s)",
			d.Model, d.ServedBy, d.Since.UTC().Format("15:04:05"), d.Reason))
	}
	var open []string
	for _, sn := range snaps {
		if sn.State == breaker.Closed.String() {
			continue
		}
		line := fmt.Sprintf("%s %s", sn.Name, sn.State)
		if !sn.OpenedAt.IsZero() {
			line += " since " + sn.OpenedAt.UTC().Format("15:04:05")
		}
		if sn.Forced {
			line += " (opened by an operator)"
		} else if sn.ConsecutiveFailures > 0 {
			line += fmt.Sprintf(", %d consecutive failures", sn.ConsecutiveFailures)
			if sn.LastFailureReason != "" {
				line += " (last: " + sn.LastFailureReason + ")"
			}
		}
		if sn.HalfOpenInText != "" {
			line += ", half-open in " + sn.HalfOpenInText
		}
		open = append(open, line)
	}
	var parts []string
	if len(models) > 0 {
		parts = append(parts, fmt.Sprintf("Degraded: %d model(s) served by a fallback model.\n- %s",
			len(models), strings.Join(models, "\n- ")))
	}
	if len(open) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d breakers not closed: calls go to fallbacks.\n- %s",
			len(open), len(snaps), strings.Join(open, "\n- ")))
	}
	if len(parts) > 0 {
		return discovery.Warning, strings.Join(parts, "\n") + "\n" + footer
	}
	if len(snaps) == 0 {
		return discovery.Passing, "Sidecar running; no calls through it yet. " + footer
	}
	return discovery.Passing, fmt.Sprintf("All %d breakers closed. ", len(snaps)) + footer
}

// availabilityLine says what share of calls and tasks were answered, as a
// sentence ending in a space or a line break; "" without traffic.
func availabilityLine(avail []AvailabilityWindow) string {
	var parts []string
	for _, w := range avail {
		if w.Ratio == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s of %d", w.Window, percent(*w.Ratio), w.Answered+w.Errors))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Answered (first choice or fallback): " + strings.Join(parts, ", ") + ".\n"
}

// percent prints a ratio as a percentage that never rounds up to 100%.
func percent(r float64) string {
	p := math.Floor(r*1000) / 10
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

// refreshSidecarCheck keeps the sidecar check's TTL fresh until ctx is
// done.
func (s *Sidecar) refreshSidecarCheck(ctx context.Context) {
	t := time.NewTicker(sidecarCheckRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.pushSidecarCheck()
		}
	}
}
