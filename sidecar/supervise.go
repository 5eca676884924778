package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
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
// on shutdown. The process runs in its own process group so that stopping
// it also stops its children.
type Supervisor struct {
	log    hclog.Logger
	env    []string // SIDECAR_* variables added to the process environment
	stdout io.Writer
	stderr io.Writer
	// onStart is called (without locks held) after each start.
	onStart func(pid int)

	restartReq chan string

	mu       sync.Mutex
	cfg      policies.Exec
	pid      int
	running  bool
	stopping bool // the process is being stopped to be restarted
	started  time.Time
	restarts int
	lastExit string
	lastWhy  string
}

// NewSupervisor prepares a supervisor; Run starts the process.
func NewSupervisor(log hclog.Logger, cfg policies.Exec, env []string, onStart func(pid int)) *Supervisor {
	return &Supervisor{
		log: log, cfg: cfg, env: env, onStart: onStart,
		stdout: os.Stdout, stderr: os.Stderr,
		restartReq: make(chan string, 1),
	}
}

// SetExec applies a new exec config from the next start on.
func (s *Supervisor) SetExec(cfg policies.Exec) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// Restart asks for the process to be stopped and started again. It never
// blocks; a request while one is pending is merged with it.
func (s *Supervisor) Restart(reason string) {
	select {
	case s.restartReq <- reason:
	default:
	}
}

// SupervisorState is the supervised process's state for status output.
type SupervisorState struct {
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
func (s *Supervisor) State() SupervisorState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SupervisorState{Command: s.cfg.Command, Running: s.running, PID: s.pid, Started: s.started,
		Restarts: s.restarts, LastExit: s.lastExit, LastRestartReason: s.lastWhy}
}

// Run starts the process and keeps it running per the restart policy until
// ctx is done; then it stops the process (SIGTERM, SIGKILL after the stop
// timeout) and returns.
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
		startedAt := time.Now()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()

		var why string
		select {
		case <-ctx.Done():
			s.stop(cmd, exited, cfg.StopTimeout)
			return
		case why = <-s.restartReq:
			s.log.Warn("restarting agent process", "pid", cmd.Process.Pid, "reason", why)
			s.mu.Lock()
			s.stopping = true // until the next process starts
			s.mu.Unlock()
			s.stop(cmd, exited, cfg.StopTimeout)
		case err := <-exited:
			s.exited(err)
			if !shouldRestart(cfg.Restart, err) {
				s.log.Warn("agent process exited; not restarting", "restart", cfg.Restart, "exit", describeExit(err))
				select {
				case <-ctx.Done():
					return
				case why = <-s.restartReq:
				}
			} else {
				why = "process exited: " + describeExit(err)
			}
		}

		if time.Since(startedAt) >= stableAfter {
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

func (s *Supervisor) start(cfg policies.Exec) (*exec.Cmd, error) {
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cfg.User != "" {
		uid, gid, problem := policies.LookupUser(cfg.User)
		if problem != "" {
			return nil, fmt.Errorf("agent.exec.user: %s", problem)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	}
	env := append(os.Environ(), s.env...)
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+cfg.Env[k])
	}
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.pid, s.running, s.started, s.stopping = cmd.Process.Pid, true, time.Now(), false
	s.mu.Unlock()
	s.log.Info("agent process started", "pid", cmd.Process.Pid, "command", cfg.Command[0])
	if s.onStart != nil {
		s.onStart(cmd.Process.Pid)
	}
	return cmd, nil
}

// stop sends SIGTERM (and SIGCONT, so a stopped process can act on it) to
// the process group, then SIGKILL when it has not exited within timeout.
func (s *Supervisor) stop(cmd *exec.Cmd, exited <-chan error, timeout time.Duration) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-exited:
		s.exited(err)
		return
	case <-t.C:
	}
	s.log.Warn("agent process ignored SIGTERM, killing it", "pid", pgid, "stop_timeout", timeout)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.exited(<-exited)
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
