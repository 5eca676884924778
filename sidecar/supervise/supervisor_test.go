package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/hashicorp/go-hclog"
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
			var logs testutil.SyncBuffer
			s := New(execCfg(tc.restart, tc.script), Options{OnStart: func(int) { starts.Add(1) },
				Log: hclog.New(&hclog.LoggerOptions{Output: &logs})})
			runSupervisor(t, s)
			if tc.wantRestart {
				testutil.Eventually(t, "three starts", 5*time.Second, func() bool { return starts.Load() >= 3 })
				return
			}
			// The supervisor says it will not restart, and then waits for a
			// restart request only: no restart may follow.
			testutil.EventuallySeen(t, "the decision not to restart", 5*time.Second, func() (bool, string) {
				return strings.Contains(logs.String(), "not restarting"), logs.String()
			})
			if st := s.State(); st.Running || st.LastExit == "" {
				t.Fatalf("state %+v, want exited", st)
			}
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
	s := New(cfg, Options{Env: []string{"SIDECAR_HEARTBEAT_URL=http://127.0.0.1:7/v1/heartbeat"}, OnStart: func(int) { starts.Add(1) }})
	runSupervisor(t, s)
	envLines := func() (int, string) {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "http://127.0.0.1:7/v1/heartbeat x1"), string(b)
	}
	testutil.EventuallySeen(t, "the first start's env written", 5*time.Second, func() (bool, string) {
		n, b := envLines()
		return starts.Load() == 1 && n == 1, fmt.Sprintf("%d starts, env file %q", starts.Load(), b)
	})
	first := s.State().PID
	// Freeze it, as a hung agent would be.
	_ = syscall.Kill(first, syscall.SIGSTOP)

	s.Restart("isolated: missed_heartbeats")
	testutil.Eventually(t, "restart", 5*time.Second, func() bool { return starts.Load() == 2 && s.State().Running })
	st := s.State()
	if st.PID == first || st.Restarts != 1 || st.LastRestartReason != "isolated: missed_heartbeats" || !strings.Contains(st.LastExit, "killed") {
		t.Fatalf("state after restart %+v (first pid %d)", st, first)
	}
	if err := syscall.Kill(first, 0); err == nil {
		t.Fatalf("the hung process %d is still alive", first)
	}
	testutil.EventuallySeen(t, "env written twice", 5*time.Second, func() (bool, string) {
		n, b := envLines()
		return n == 2, fmt.Sprintf("env file %q", b)
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
	s := New(cfg, Options{OnStart: func(int) { starts.Add(1) }})
	runSupervisor(t, s)
	testutil.Eventually(t, "the agent's uid and user name written", 5*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == strconv.FormatUint(uint64(uid), 10)+" nobody"
	})
}
