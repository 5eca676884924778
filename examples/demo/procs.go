package main

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

// proc is one process the demo started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// procs starts processes, each in its own process group with its output in
// a log file, and stops them all, newest first.
type procs struct {
	root, logs string
	mu         sync.Mutex
	list       []*proc
}

func (p *procs) start(name string, env []string, argv ...string) error {
	f, err := os.Create(filepath.Join(p.logs, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: Ctrl-C reaches the demo only, which then
	// stops everything in order (a sidecar stops its agent gracefully).
	// Pdeathsig: should the demo itself be killed, the process is told too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s (%s): %w", name, argv[0], err)
	}
	pr := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(pr.done) }()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
	return nil
}

// exited reports a process that has stopped on its own.
func (p *procs) exited() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.list {
		select {
		case <-pr.done:
			return fmt.Sprintf("%s exited (%v); see %s", pr.name, pr.cmd.ProcessState, filepath.Join(p.logs, pr.name+".log"))
		default:
		}
	}
	return ""
}

// stopAll sends SIGTERM to every process group, newest first, waits up to
// 10 s for each, then kills what is left.
func (p *procs) stopAll() {
	p.mu.Lock()
	list := append([]*proc(nil), p.list...)
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

// portsFree fails when one of the demo's ports is taken, e.g. by an
// earlier demo still running.
func portsFree(ports []int) error {
	for _, port := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("port %d is in use; stop what uses it (an earlier demo?) and try again", port)
		}
		l.Close()
	}
	return nil
}

// waitUntil polls cond every 200 ms until it holds, the limit passes, a
// process dies or the context ends.
func waitUntil(ctx context.Context, f *procs, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if msg := f.exited(); msg != "" {
			return errors.New(msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not happen within %s; logs in %s", what, limit, f.logs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// post sends a POST with an empty body and ignores the answer (control
// endpoints of the fake models and agents).
func post(url, body string) error {
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
