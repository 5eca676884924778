package sidecar

// What the sidecar tells about its link to Consul: consul.lost when the
// registration or an update fails, consul.regained when it works again
// (or Consul lost the registration and the sidecar made it again).

import (
	"context"
	"fmt"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// watchRegistration publishes consul.lost and consul.regained when the
// registration's state changes.
func (s *Sidecar) watchRegistration() {
	reg := s.registry.State()
	ok := consulOK(reg)
	s.mu.Lock()
	was, seen, lastN := s.consulWasOK, s.consulSeen, s.consulRegistrations
	s.consulWasOK, s.consulSeen, s.consulRegistrations = ok, true, reg.Registrations
	s.mu.Unlock()
	switch {
	case !seen || (ok && lastN == 0):
		// the first look, or the first registration
	case was && !ok:
		s.publish(notify.Event{Type: notify.EventConsulLost, Detail: reg.LastError,
			Text: "Consul does not take updates: " + firstNonEmpty(reg.LastError, "no answer") + ". Retrying; the sidecar works on without it."})
	case !was && ok:
		s.publish(notify.Event{Type: notify.EventConsulRegained, Text: fmt.Sprintf("Consul at %s takes updates again; the agent is registered.", reg.ConsulAddress)})
	case ok && lastN > 0 && reg.Registrations > lastN:
		s.publish(notify.Event{Type: notify.EventConsulRegained, Reason: "reregistered",
			Text: fmt.Sprintf("Registered in Consul at %s again: Consul had lost the registration (restarted with its state lost?).", reg.ConsulAddress)})
	}
}

// consulOK reports whether the agent is registered and the last update of
// Consul succeeded.
func consulOK(reg discovery.RegistrationState) bool {
	return reg.Registered && !consulFailing(reg)
}

// consulFailing reports whether the last attempt to register or update
// Consul failed.
func consulFailing(reg discovery.RegistrationState) bool {
	return reg.LastError != "" && !reg.LastErrorAt.Before(reg.LastRegistered)
}

// consulCheckInterval is how often the registration's state is looked at.
const consulCheckInterval = time.Second

// watchConsul publishes consul.lost and consul.regained until ctx is done.
func (s *Sidecar) watchConsul(ctx context.Context) {
	t := time.NewTicker(consulCheckInterval)
	defer t.Stop()
	s.watchRegistration()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.watchRegistration()
		}
	}
}
