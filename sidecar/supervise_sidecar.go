package sidecar

// KillAgent sends SIGKILL to the supervised agent's process group, for a
// forced exit that cannot wait for the graceful stop. Without agent.exec it
// does nothing.
func (s *Sidecar) KillAgent() {
	if s.supervisor != nil {
		s.supervisor.Kill()
	}
}
