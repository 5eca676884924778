// Package proc starts and stops groups of processes for the programs that
// run whole fleets on one machine (make demo, make fleet): each process in
// its own process group with its output in a log file, all stopped in
// reverse order, always.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one process of a Group.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Group starts processes in Root, each in its own process group with its
// output in Logs/NAME.log, and stops them all, newest first.
type Group struct {
	Root, Logs string
	mu         sync.Mutex
	list       []*process
}

// Start starts argv[0] with the environment plus env. It returns the
// process's pid.
func (p *Group) Start(name string, env []string, argv ...string) (int, error) {
	f, err := os.Create(filepath.Join(p.Logs, name+".log"))
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.Root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: Ctrl-C reaches the demo only, which then
	// stops everything in order (a sidecar stops its agent gracefully).
	// Pdeathsig: should the demo itself be killed, the process is told too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return 0, fmt.Errorf("starting %s (%s): %w", name, argv[0], err)
	}
	pr := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(pr.done) }()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
	return cmd.Process.Pid, nil
}

// Exited reports a process that has stopped on its own ("" when none has).
func (p *Group) Exited() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.list {
		select {
		case <-pr.done:
			return fmt.Sprintf("%s exited (%v); see %s", pr.name, pr.cmd.ProcessState, filepath.Join(p.Logs, pr.name+".log"))
		default:
		}
	}
	return ""
}

// StopAll sends SIGTERM to every process group, newest first, waits up to
// 10 s for each, then kills what is left.
func (p *Group) StopAll() {
	p.mu.Lock()
	list := append([]*process(nil), p.list...)
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		_ = syscall.Kill(-list[i].cmd.Process.Pid, syscall.SIGTERM)
	}
	for _, pr := range list {
		select {
		case <-pr.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
			<-pr.done
		}
	}
}

// PortsFree fails when one of the ports is taken on 127.0.0.1, e.g. by an
// earlier run still going.
func PortsFree(ports []int) error {
	for _, port := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("port %d is in use; stop what uses it (an earlier demo?) and try again", port)
		}
		l.Close()
	}
	return nil
}

// WaitUntil polls cond every 200 ms until it holds, the limit passes, a
// process of the group dies or the context ends.
func (f *Group) WaitUntil(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if msg := f.Exited(); msg != "" {
			return errors.New(msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not happen within %s; logs in %s", what, limit, f.Logs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// Post sends a POST and ignores the answer's body (control endpoints of
// fake models and agents); a non-2xx answer is an error.
func Post(url, body string) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}
