package sidecar

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/health"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
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

// breakerNotices limits breaker notifications to one per breaker per
// open_for, and sends "closed" only after an "open" was sent.
type breakerNotices struct {
	mu       sync.Mutex
	lastOpen map[string]time.Time
	notified map[string]bool
}

// onBreakerChange runs (without locks held) on every breaker transition.
func (s *Sidecar) onBreakerChange(ch breaker.Change) {
	s.metrics.transitions.WithLabelValues(ch.Name, ch.To.String()).Inc()
	switch ch.To {
	case breaker.Open:
		s.log.Warn("breaker opened", "breaker", ch.Name, "reason", ch.Reason,
			"consecutive_failures", ch.ConsecutiveFailures, "open_for", ch.OpenFor)
		s.publish(notify.Event{Type: notify.EventBreakerOpen, Breaker: ch.Name, Reason: ch.Reason, Time: ch.At.UTC(),
			Text: fmt.Sprintf("Breaker %s opened: %s; calls go to the fallback for %s.", ch.Name, ch.Reason, ch.OpenFor)})
	case breaker.HalfOpen:
		s.log.Info("breaker half-open: letting a probe through", "breaker", ch.Name)
	case breaker.Closed:
		s.log.Info("breaker closed", "breaker", ch.Name)
		s.publish(notify.Event{Type: notify.EventBreakerClosed, Breaker: ch.Name, Reason: ch.Reason, Time: ch.At.UTC(),
			Text: fmt.Sprintf("Breaker %s closed: %s.", ch.Name, firstNonEmpty(ch.Reason, "the target answers again"))})
	}
	s.pushSidecarCheck()

	cfg := s.Config()
	n := &s.notices
	n.mu.Lock()
	var ev *notify.Event
	now := s.now()
	switch ch.To {
	case breaker.Open:
		if last, ok := n.lastOpen[ch.Name]; !ok || now.Sub(last) >= ch.OpenFor {
			n.lastOpen[ch.Name] = now
			n.notified[ch.Name] = true
			ev = &notify.Event{Type: notify.EventBreakerOpen, Reason: ch.Reason,
				Detail: fmt.Sprintf("%s; calls go to the fallback for %s", ch.Reason, ch.OpenFor),
				Text:   fmt.Sprintf("Breaker %s on agent %s opened: %s. Calls go to the fallback for %s.", ch.Name, cfg.Agent.ID, ch.Reason, ch.OpenFor)}
		}
	case breaker.Closed:
		if n.notified[ch.Name] {
			delete(n.notified, ch.Name)
			ev = &notify.Event{Type: notify.EventBreakerClosed, Detail: "a probe call succeeded",
				Text: fmt.Sprintf("Breaker %s on agent %s closed: the target answers again.", ch.Name, cfg.Agent.ID)}
		}
	}
	n.mu.Unlock()
	if ev != nil {
		ev.Agent, ev.AgentID, ev.Breaker, ev.Time = cfg.Agent.Name, cfg.Agent.ID, ch.Name, ch.At.UTC()
		s.notifier.Send(*ev)
	}
}

// pushSidecarCheck hands the sidecar check's state to the registry.
func (s *Sidecar) pushSidecarCheck() {
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
