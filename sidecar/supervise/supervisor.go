// Package supervise runs the agent process beside the sidecar: it starts it
// in its own process group with a filtered environment, restarts it per
// the restart policy or when asked to, and stops its whole group.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/policies"
)

// stableAfter is how long a process must run before its restart delay is
// reset to the configured first delay.
const stableAfter = time.Minute

// Supervisor runs the agent process, restarts it when it exits (per the
// restart policy, with backoff) or when asked to (isolation), and stops it
// on shutdown. The process runs in its own process group: after its leader
// exits, on a restart and on shutdown the whole group is stopped, so no
// child of the agent outlives it.
type Supervisor struct {
	log    hclog.Logger
	env    []string // SIDECAR_* variables added to the process environment
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	// onStart is called (without locks held) after each start.
	onStart func(pid int)

	// wake tells Run that a restart request is pending.
	wake chan struct{}

	mu       sync.Mutex
	cfg      policies.Exec
	pid      int
	pgid     int // the process group to stop; 0 when none may be left
	running  bool
	stopping bool // the process is being stopped to be restarted
	started  time.Time
	restarts int
	lastExit string
	lastWhy  string
	// accepting says whether a restart request now has a process to apply
	// to: one runs (and onStart has run for it), or one exited and waits
	// for a request to be started again. Requests made during the backoff
	// before a start are dropped: the next process starts anyway, with a
	// full TTL of its own.
	accepting bool
	// pending is the reason of the restart request waiting for the running
	// process (hasPending); start clears it, so a request never outlives
	// the process it was made for.
	pending    string
	hasPending bool
}

// Options are the collaborators of a supervisor.
type Options struct {
	// Log receives the process's starts, exits and restarts. Default: no log.
	Log hclog.Logger
	// Env are variables added to the process's environment (the SIDECAR_*
	// ones), after those it inherits and before exec.env.
	Env []string
	// OnStart is called (without locks held) after each start, before a
	// restart request may apply to the new process.
	OnStart func(pid int)
	// Output receives the process's stdout and stderr. Default: the
	// sidecar's own.
	Output io.Writer
	// Now is the clock of start times and of the backoff reset. Default:
	// time.Now.
	Now func() time.Time
}

// New prepares a supervisor of the process cfg describes; Run starts it.
func New(cfg policies.Exec, opts Options) *Supervisor {
	s := &Supervisor{
		log: opts.Log, cfg: cfg, env: opts.Env, onStart: opts.OnStart, now: opts.Now,
		stdout: os.Stdout, stderr: os.Stderr,
		wake: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Output != nil {
		s.stdout, s.stderr = opts.Output, opts.Output
	}
	return s
}

// SetExec applies a new exec config from the next start on.
func (s *Supervisor) SetExec(cfg policies.Exec) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// Restart asks for the current process to be stopped and started again. It
// never blocks; a request while one is pending for the same process is
// merged with it. A request made while no process runs (during the delay
// before a restart) is dropped, and one left over from an earlier process
// never stops the next.
func (s *Supervisor) Restart(reason string) {
	s.mu.Lock()
	if !s.accepting {
		s.mu.Unlock()
		s.log.Debug("restart request dropped: no process to restart yet", "reason", reason)
		return
	}
	if !s.hasPending {
		s.pending, s.hasPending = reason, true
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// takeRestart returns the pending restart request, if any, and clears it.
func (s *Supervisor) takeRestart() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reason, ok := s.pending, s.hasPending
	s.pending, s.hasPending = "", false
	return reason, ok
}

// State is the supervised process's state for status output.
type State struct {
	Command  []string  `json:"command"`
	Running  bool      `json:"running"`
	PID      int       `json:"pid,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
	// LastRestartReason says why the process was last restarted.
	LastRestartReason string `json:"last_restart_reason,omitempty"`
}

// State returns the process state.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{Command: s.cfg.Command, Running: s.running, PID: s.pid, Started: s.started,
		Restarts: s.restarts, LastExit: s.lastExit, LastRestartReason: s.lastWhy}
}

// Run starts the process and keeps it running per the restart policy until
// ctx is done; then it stops the process group (SIGTERM, SIGKILL after the
// stop timeout) and returns.
func (s *Supervisor) Run(ctx context.Context) {
	s.mu.Lock()
	delay := s.cfg.RestartBackoff
	s.mu.Unlock()
	for {
		s.mu.Lock()
		cfg := s.cfg
		s.mu.Unlock()

		cmd, err := s.start(cfg)
		if err != nil {
			s.log.Error("agent process did not start", "command", cfg.Command[0], "error", err, "retry_in", delay)
			if !sleepCtx(ctx, delay) {
				return
			}
			delay = min(delay*2, cfg.MaxRestartBackoff)
			continue
		}
		startedAt := s.now()
		exited := make(chan error, 1)
		go func() { err := cmd.Wait(); releaseProcess(cmd); exited <- err }()

		why, stopped := s.supervise(ctx, cmd, exited, cfg)
		if stopped {
			return
		}

		if s.now().Sub(startedAt) >= stableAfter {
			delay = cfg.RestartBackoff
		}
		s.mu.Lock()
		s.restarts++
		s.lastWhy = why
		s.mu.Unlock()
		s.log.Info("agent process will start again", "reason", why, "in", delay)
		if !sleepCtx(ctx, delay) {
			return
		}
		delay = min(delay*2, cfg.MaxRestartBackoff)
	}
}

// supervise waits for the process cmd to exit or to be asked
// to restart, and stops its process group. It returns why the process is to
// start again, or stopped when ctx ended (the group is stopped then too).
func (s *Supervisor) supervise(ctx context.Context, cmd *exec.Cmd, exited <-chan error, cfg policies.Exec) (why string, stopped bool) {
	for {
		select {
		case <-ctx.Done():
			s.stop(cmd, exited, cfg.StopTimeout)
			return "", true
		case <-s.wake:
			reason, ok := s.takeRestart()
			if !ok {
				continue // already taken
			}
			s.log.Warn("restarting agent process", "pid", cmd.Process.Pid, "reason", reason)
			s.mu.Lock()
			s.stopping = true // until the next process starts
			s.mu.Unlock()
			s.stop(cmd, exited, cfg.StopTimeout)
			return reason, false
		case err := <-exited:
			s.mu.Lock()
			s.accepting = false
			s.mu.Unlock()
			s.exited(err)
			// What the leader left behind goes with it.
			s.stopGroup(cmd.Process.Pid, cfg.StopTimeout)
			if shouldRestart(cfg.Restart, err) {
				return "process exited: " + describeExit(err), false
			}
			s.log.Warn("agent process exited; not restarting", "restart", cfg.Restart, "exit", describeExit(err))
			// A restart request (isolation) starts it again.
			s.mu.Lock()
			s.accepting = true
			s.mu.Unlock()
			for {
				select {
				case <-ctx.Done():
					return "", true
				case <-s.wake:
					if reason, ok := s.takeRestart(); ok {
						s.mu.Lock()
						s.accepting = false
						s.mu.Unlock()
						return reason, false
					}
				}
			}
		}
	}
}

func (s *Supervisor) start(cfg policies.Exec) (*exec.Cmd, error) {
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setProcAttr(cmd.SysProcAttr)
	if cfg.User != "" {
		uid, gid, problem := policies.LookupUser(cfg.User)
		if problem != "" {
			return nil, fmt.Errorf("agent.exec.user: %s", problem)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	}
	vars := s.env
	if cfg.User != "" {
		// Who the agent is, not who the sidecar is.
		if u, err := user.LookupId(strconv.FormatUint(uint64(cmd.SysProcAttr.Credential.Uid), 10)); err == nil {
			vars = append([]string{"USER=" + u.Username, "LOGNAME=" + u.Username, "HOME=" + u.HomeDir}, s.env...)
		}
	}
	cmd.Env = agentEnviron(os.Environ(), cfg.PassEnv, vars, cfg.Env)
	if err := startProcess(cmd); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.pid, s.pgid, s.running, s.started, s.stopping = cmd.Process.Pid, cmd.Process.Pid, true, s.now(), false
	s.accepting, s.pending, s.hasPending = false, "", false
	s.mu.Unlock()
	s.log.Info("agent process started", "pid", cmd.Process.Pid, "command", cfg.Command[0])
	if s.onStart != nil {
		s.onStart(cmd.Process.Pid)
	}
	// Only now, with the health tracker told of the new process, may a
	// restart request apply to it.
	s.mu.Lock()
	s.accepting = true
	s.mu.Unlock()
	return cmd, nil
}

func (s *Supervisor) exited(err error) {
	s.mu.Lock()
	s.running, s.pid = false, 0
	s.lastExit = describeExit(err)
	s.mu.Unlock()
	s.log.Info("agent process exited", "exit", describeExit(err))
}

func shouldRestart(policy string, err error) bool {
	switch policy {
	case policies.RestartNever:
		return false
	case policies.RestartOnFailure:
		return err != nil
	default:
		return true
	}
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %s", ws.Signal())
		}
	}
	return err.Error()
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Restarting says whether the process is being stopped to be restarted. A
// heartbeat it sends meanwhile (a stopped process, woken by SIGCONT to take
// its SIGTERM, may send one it had queued) does not count.
func (s *Supervisor) Restarting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}
