package testbin

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before it kills.
const StopTimeout = 10 * time.Second

// Process is a running program, started by Start.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start runs bin with args, its stdout and stderr both going to out. On
// Linux the kernel kills it if the test binary dies without running its
// cleanups (a panic or a test timeout), so none is left behind.
func Start(bin string, args []string, out io.Writer) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	return StartCmd(cmd)
}

// StartCmd starts cmd as Start does, for a caller that sets its
// environment, directory and output itself.
func StartCmd(cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM, then SIGKILL if the process has not exited within
// StopTimeout, and returns once it has exited. It is safe to call more than
// once, and on a process that has exited.
func (p *Process) Stop() { p.StopWithin(StopTimeout) }

// StopWithin sends SIGTERM, then SIGKILL if the process has not exited
// within grace, and returns once it has exited: true when it exited
// before the SIGKILL. It is safe to call more than once.
func (p *Process) StopWithin(grace time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return true
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return false
	}
}

// Signal sends sig to the process (SIGSTOP hangs it).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the process at once (SIGKILL), as a crashed machine would,
// and returns once it has exited. It is safe to call more than once.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
