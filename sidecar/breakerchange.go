package sidecar

import (
	"fmt"
	"sync"
	"time"

	"github.com/agent-sidecar/sidecar/sidecar/breaker"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

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
	s.incidents.BreakerChanged(ch)
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
