package sidecar

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

func execCfg(restart string, script string) policies.Exec {
	return policies.Exec{
		Command: []string{"/bin/sh", "-c", script}, Restart: restart,
		StopTimeout: 500 * time.Millisecond, RestartBackoff: 20 * time.Millisecond, MaxRestartBackoff: 100 * time.Millisecond,
	}
}

func runSupervisor(t *testing.T, s *Supervisor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestSupervisorRestartPolicies(t *testing.T) {
	cases := []struct {
		name        string
		restart     string
		script      string
		wantRestart bool
	}{
		{"always restarts a clean exit", policies.RestartAlways, "exit 0", true},
		{"on-failure restarts a failure", policies.RestartOnFailure, "exit 3", true},
		{"on-failure leaves a clean exit", policies.RestartOnFailure, "exit 0", false},
		{"never leaves a failure", policies.RestartNever, "exit 1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var starts atomic.Int32
			s := NewSupervisor(hclog.NewNullLogger(), execCfg(tc.restart, tc.script), nil, func(int) { starts.Add(1) })
			runSupervisor(t, s)
			if tc.wantRestart {
				waitFor(t, "three starts", 5*time.Second, func() bool { return starts.Load() >= 3 })
				return
			}
			waitFor(t, "the exit", 5*time.Second, func() bool { st := s.State(); return !st.Running && st.LastExit != "" })
			time.Sleep(200 * time.Millisecond) // several backoffs: no restart may follow
			if n := starts.Load(); n != 1 {
				t.Fatalf("started %d times, want 1", n)
			}
		})
	}
}

func TestSupervisorRestartsHungProcessWithEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	// A process that ignores SIGTERM and hangs: only SIGKILL stops it.
	script := `echo "$SIDECAR_HEARTBEAT_URL $EXTRA" >> ` + out + `; trap '' TERM; while :; do sleep 0.05; done`
	cfg := execCfg(policies.RestartAlways, script)
	cfg.Env = map[string]string{"EXTRA": "x1"}
	var starts atomic.Int32
	s := NewSupervisor(hclog.NewNullLogger(), cfg, []string{"SIDECAR_HEARTBEAT_URL=http://127.0.0.1:7/v1/heartbeat"}, func(int) { starts.Add(1) })
	runSupervisor(t, s)
	waitFor(t, "first start", 5*time.Second, func() bool { return starts.Load() == 1 })
	first := s.State().PID
	// Freeze it, as a hung agent would be.
	_ = syscall.Kill(first, syscall.SIGSTOP)

	s.Restart("isolated: missed_heartbeats")
	waitFor(t, "restart", 5*time.Second, func() bool { return starts.Load() == 2 && s.State().Running })
	st := s.State()
	if st.PID == first || st.Restarts != 1 || st.LastRestartReason != "isolated: missed_heartbeats" || !strings.Contains(st.LastExit, "killed") {
		t.Fatalf("state after restart %+v (first pid %d)", st, first)
	}
	if err := syscall.Kill(first, 0); err == nil {
		t.Fatalf("the hung process %d is still alive", first)
	}
	waitFor(t, "env written twice", 5*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "http://127.0.0.1:7/v1/heartbeat x1") == 2
	})
}

func TestSupervisorRunsTheAgentAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a process as another user needs root")
	}
	uid, _, problem := policies.LookupUser("nobody")
	if problem != "" {
		t.Skip(problem)
	}
	// A file the other user may write, in a directory it can reach
	f, err := os.CreateTemp("", "agent-uid-*")
	if err != nil {
		t.Fatal(err)
	}
	out := f.Name()
	_ = f.Close()
	_ = os.Chmod(out, 0o666)
	t.Cleanup(func() { _ = os.Remove(out) })
	cfg := execCfg(policies.RestartNever, `echo "$(id -u) $USER" > `+out+"; sleep 5")
	cfg.User = "nobody"
	var starts atomic.Int32
	s := NewSupervisor(hclog.NewNullLogger(), cfg, nil, func(int) { starts.Add(1) })
	runSupervisor(t, s)
	waitFor(t, "the agent's uid and user name written", 5*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == strconv.FormatUint(uint64(uid), 10)+" nobody"
	})
}

// needCurl ends the test when curl, which the supervised agents of these
// tests heartbeat with, is missing: a skip, a failure under CI=true.
func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is needed (.ci/run installs it)")
		}
		t.Skip("curl not found")
	}
}

// A stopped agent being restarted is sent SIGCONT with its SIGTERM and may
// send a heartbeat before it exits; that heartbeat must not count, or the
// agent would "recover" a millisecond after it was isolated (and its
// Consul check would never show critical).
func TestHeartbeatFromAProcessBeingRestartedIsIgnored(t *testing.T) {
	needCurl(t)
	codes := filepath.Join(t.TempDir(), "codes")
	// One heartbeat at start, then none; on SIGTERM one more, whose status
	// goes to a file.
	script := `curl -s -o /dev/null -X POST "$SIDECAR_HEARTBEAT_URL"; ` +
		`trap 'curl -s -o /dev/null -w "%{http_code}\n" -X POST "$SIDECAR_HEARTBEAT_URL" >> ` + codes + `; exit 0' TERM; ` +
		`while :; do sleep 0.05; done`
	ex := execCfg(policies.RestartAlways, script)
	ex.RestartOnIsolation, ex.StopTimeout = true, 5*time.Second
	cfg := testConfig()
	cfg.Agent.Exec = &ex
	cfg.Health.HeartbeatInterval, cfg.Health.MissedHeartbeats, cfg.Health.Grace = 300*time.Millisecond, 1, 100*time.Millisecond
	s, _, _ := startSidecar(t, cfg, Options{AgentOutput: io.Discard})

	waitFor(t, "the heartbeat sent on SIGTERM", 10*time.Second, func() bool {
		b, _ := os.ReadFile(codes)
		return len(b) > 0
	})
	if b, _ := os.ReadFile(codes); !strings.HasPrefix(string(b), "409") {
		t.Fatalf("the heartbeat of the process being stopped got %q, want 409", b)
	}
	waitFor(t, "the restarted process's heartbeat", 10*time.Second, func() bool { return !s.tracker.Snapshot().IsolatedNow() })
	var order []string
	for _, ev := range s.events.since(0, eventHistory) {
		switch ev.Type {
		case notify.EventAgentIsolated, notify.EventAgentRecovered, notify.EventAgentRestarted:
			order = append(order, ev.Type)
		}
	}
	if len(order) < 3 || order[0] != notify.EventAgentIsolated || order[1] != notify.EventAgentRestarted || order[2] != notify.EventAgentRecovered {
		t.Fatalf("events %v, want isolated, restarted, then recovered", order)
	}
}
