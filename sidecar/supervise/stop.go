package supervise

import (
	"os/exec"
	"syscall"
	"time"
)

// Kill sends SIGKILL to the agent's process group at once, for a forced
// exit that cannot wait for a graceful stop.
func (s *Supervisor) Kill() {
	s.mu.Lock()
	pgid := s.pgid
	s.mu.Unlock()
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// stop sends SIGTERM (and SIGCONT, so a stopped process can act on it) to
// the process group, then SIGKILL to what is left of the group when the
// leader or any other member has not exited within timeout.
func (s *Supervisor) stop(cmd *exec.Cmd, exited <-chan error, timeout time.Duration) {
	s.mu.Lock()
	s.accepting = false
	s.mu.Unlock()
	pgid := cmd.Process.Pid
	begun := s.now()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-exited:
		s.exited(err)
		s.stopGroup(pgid, timeout-s.now().Sub(begun))
		return
	case <-t.C:
	}
	s.log.Warn("agent process ignored SIGTERM, killing it", "pid", pgid, "stop_timeout", timeout)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.exited(<-exited)
	s.stopGroup(pgid, 0)
}

// stopGroup ends what is left of process group pgid once its leader has
// exited: SIGTERM (with SIGCONT), then SIGKILL when members remain after
// timeout. It returns when the group is empty.
func (s *Supervisor) stopGroup(pgid int, timeout time.Duration) {
	defer func() {
		s.mu.Lock()
		if s.pgid == pgid {
			s.pgid = 0
		}
		s.mu.Unlock()
	}()
	if !groupAlive(pgid) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	if waitGroupGone(pgid, timeout) {
		return
	}
	s.log.Warn("processes of the agent's group outlived it, killing them", "pgid", pgid)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !waitGroupGone(pgid, 5*time.Second) {
		s.log.Error("processes of the agent's group survived SIGKILL", "pgid", pgid)
	}
}

// waitGroupGone polls until group pgid is empty or timeout passes.
func waitGroupGone(pgid int, timeout time.Duration) bool {
	if !groupAlive(pgid) {
		return true
	}
	if timeout <= 0 {
		return false
	}
	give := time.NewTimer(timeout)
	defer give.Stop()
	poll := time.NewTicker(25 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-give.C:
			return !groupAlive(pgid)
		case <-poll.C:
			if !groupAlive(pgid) {
				return true
			}
		}
	}
}
