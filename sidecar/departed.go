package sidecar

// forgetDeparted drops what the sidecar keeps about the breakers of Consul
// instances the proxy has forgotten (gone for longer than max_open_for):
// their notification memory and metric series. The sidecar check, which no
// longer counts them, is refreshed.
func (s *Sidecar) forgetDeparted(names []string) {
	s.notices.mu.Lock()
	for _, name := range names {
		delete(s.notices.lastOpen, name)
		delete(s.notices.notified, name)
	}
	s.notices.mu.Unlock()
	s.metrics.forgetBreakers(names)
	s.incidents.BreakersGone(names, s.now())
	s.pushSidecarCheck()
}
