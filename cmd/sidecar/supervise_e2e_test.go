//go:build e2e && linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// procStat reads the state and parent of pid; ok is false once it is gone.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

// running reports whether pid runs (a zombie has exited).
func running(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// zombieChildren lists the exited, unreaped children of pid.
func zombieChildren(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(n); ok && ppid == pid && state == 'Z' {
			out = append(out, n)
		}
	}
	return out
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	testutil.Eventually(t, "pid in "+filepath.Base(file), 10*time.Second, func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // should a test fail
	return pid
}

// superviseConfig writes a configuration that supervises script; Consul is
// not reachable (the sidecar keeps retrying), which these tests do not need.
func superviseConfig(t *testing.T, dir, script string) string {
	return writeFile(t, dir, "sidecar.hcl", fmt.Sprintf(`
agent {
  name = "writer"
  exec {
    command      = ["/bin/sh", "-c", %q]
    stop_timeout = "1m"
  }
}
listen { address = "127.0.0.1:%d" }
consul { address = "127.0.0.1:%d" }
`, script, testutil.FreePort(t), testutil.FreePort(t)))
}

func startSidecarBin(t *testing.T, argv []string) (*exec.Cmd, chan error, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second // should a process it started keep its output open
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", logs.String())
		}
	})
	return cmd, exited, logs
}

func TestKilledSidecarTakesItsAgentAlong(t *testing.T) {
	dir := t.TempDir()
	agentPID := filepath.Join(dir, "agent.pid")
	cfg := superviseConfig(t, dir, `echo $$ > `+agentPID+`; trap "" TERM; while :; do sleep 0.05; done`)
	cmd, exited, _ := startSidecarBin(t, []string{sidecarBin, "agent", "-config", cfg})

	// Given a supervised agent that ignores SIGTERM
	agent := readPID(t, agentPID)

	// When the sidecar is killed outright
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	exited <- nil // for the cleanup

	// Then the agent does not run on without it
	testutil.Eventually(t, "the agent to die with its sidecar", 10*time.Second, func() bool { return !running(agent) })
}

func TestSecondSignalStopsTheAgentsProcesses(t *testing.T) {
	dir := t.TempDir()
	agentPID, childPID, termed := filepath.Join(dir, "agent.pid"), filepath.Join(dir, "child.pid"), filepath.Join(dir, "termed")
	// An agent that takes its time to stop, with a child ignoring SIGTERM.
	script := `echo $$ > ` + agentPID + `; ` +
		`sh -c 'trap "" TERM; echo $$ > ` + childPID + `; while :; do sleep 0.05; done' & ` +
		`trap 'touch ` + termed + `' TERM; while :; do sleep 0.05; done`
	cmd, exited, _ := startSidecarBin(t, []string{sidecarBin, "agent", "-config", superviseConfig(t, dir, script)})
	agent, child := readPID(t, agentPID), readPID(t, childPID)

	// Given a graceful shutdown that waits for the agent (stop_timeout 1m)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	testutil.Eventually(t, "the agent to get SIGTERM", 10*time.Second, func() bool { _, err := os.Stat(termed); return err == nil })

	// When a second signal forces the exit
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var ee *exec.ExitError
	if err := <-exited; !errors.As(err, &ee) || ee.ExitCode() != exitForced {
		t.Fatalf("sidecar exit: %v, want exit status %d", err, exitForced)
	}
	exited <- nil

	// Then neither the agent nor its child runs on
	testutil.Eventually(t, "the agent and its child to be gone", 10*time.Second, func() bool { return !running(agent) && !running(child) })
}

// Orphans re-parented to the sidecar (PID 1 of a container, or a child
// subreaper) are reaped, not left as zombies.
func TestSidecarReapsOrphans(t *testing.T) {
	cases := []struct {
		name   string
		prefix []string // how the sidecar is run
	}{
		{"as a child subreaper", nil},
		{"as PID 1", []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prefix != nil {
				if os.Geteuid() != 0 {
					t.Skip("a PID namespace needs root")
				}
				if _, err := exec.LookPath(tc.prefix[0]); err != nil {
					t.Skip("unshare not found")
				}
			}
			dir := t.TempDir()
			agentPID := filepath.Join(dir, "agent.pid")
			// The agent leaves five orphans behind, which exit shortly after.
			script := `echo $$ > ` + agentPID + `; ` +
				`for i in 1 2 3 4 5; do (sh -c 'sleep 0.2; touch ` + dir + `/orphan-'$i &); done; ` +
				`while :; do sleep 0.05; done`
			argv := append(append([]string(nil), tc.prefix...), sidecarBin, "agent", "-config", superviseConfig(t, dir, script))
			cmd, _, _ := startSidecarBin(t, argv)
			sidecar := cmd.Process.Pid
			if tc.prefix != nil {
				// unshare forks the sidecar: PID 1 of the new namespace
				testutil.Eventually(t, "the sidecar under unshare", 10*time.Second, func() bool {
					for _, e := range must(os.ReadDir("/proc")) {
						if n, err := strconv.Atoi(e.Name()); err == nil {
							if _, ppid, ok := procStat(n); ok && ppid == cmd.Process.Pid {
								sidecar = n
								return true
							}
						}
					}
					return false
				})
			}

			// Given the orphans have exited
			testutil.Eventually(t, "the agent", 10*time.Second, func() bool { _, err := os.Stat(agentPID); return err == nil })
			testutil.Eventually(t, "the orphans to exit", 10*time.Second, func() bool {
				m, _ := filepath.Glob(filepath.Join(dir, "orphan-*"))
				return len(m) == 5
			})

			// Then the sidecar reaps them
			testutil.Eventually(t, "no zombie children of the sidecar", 10*time.Second, func() bool { return len(zombieChildren(sidecar)) == 0 })
		})
	}
}

func must[T any](v T, _ error) T { return v }
