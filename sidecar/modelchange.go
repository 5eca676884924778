package sidecar

import (
	"fmt"

	"github.com/agent-sidecar/sidecar/sidecar/gateway"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// onDegradedChange publishes a model chain starting or stopping to be
// served by a fallback model.
func (s *Sidecar) onDegradedChange(d gateway.Degradation, degraded bool) {
	s.pushSidecarCheck()
	if degraded {
		s.publish(notify.Event{Type: notify.EventModelDegraded, Model: d.Model, Reason: d.Reason, Detail: "answered by " + d.ServedBy,
			Text: fmt.Sprintf("Model %s is degraded: answers come from %s (%s).", d.Model, d.ServedBy, d.Reason)})
		return
	}
	s.publish(notify.Event{Type: notify.EventModelRestored, Model: d.Model,
		Text: fmt.Sprintf("Model %s answers again (degraded since %s).", d.Model, d.Since.UTC().Format("15:04:05"))})
}
