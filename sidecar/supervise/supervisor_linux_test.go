package supervise

import (
	"context"
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
)

// alive reports whether pid runs (a zombie has exited).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	state, _, ok := statStateGroup(b)
	return ok && state != 'Z' && state != 'X'
}

// pidsIn reads the pids written one a line to file, killing them all when
// the test ends (so a failing test leaves no process behind).
func pidsIn(t *testing.T, file string) []int {
	t.Helper()
	b, _ := os.ReadFile(file)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

func killAllIn(t *testing.T, file string) {
	t.Cleanup(func() {
		for _, pid := range pidsIn(t, file) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func TestAgentEnvironmentHoldsNoSecretOfTheSidecar(t *testing.T) {
	// Given a sidecar whose environment holds a provider key, a Consul
	// token and the control API's token, and a variable the operator
	// passes on by name
	t.Setenv("OPENAI_API_KEY", "sk-planted-provider-key")
	t.Setenv("CONSUL_HTTP_TOKEN", "planted-consul-token")
	t.Setenv("SIDECAR_TOKEN", "planted-sidecar-token-0123456789")
	t.Setenv("SLACK_WEBHOOK_TOKEN", "planted-webhook-token")
	t.Setenv("MYAGENT_MODE", "batch")
	t.Setenv("LC_TIME", "C")
	out := filepath.Join(t.TempDir(), "env")
	cfg := execCfg(policies.RestartNever, "env > "+out+".tmp; mv "+out+".tmp "+out)
	cfg.Env = map[string]string{"EXTRA": "x1"}
	cfg.PassEnv = []string{"MYAGENT_*"}
	s := New(cfg, Options{Env: []string{"SIDECAR_ADDR=http://127.0.0.1:7"}})
	runSupervisor(t, s)

	// When the agent prints its environment
	var env string
	testutil.Eventually(t, "the agent's environment", 5*time.Second, func() bool {
		b, err := os.ReadFile(out)
		env = string(b)
		return err == nil
	})

	// Then no secret of the sidecar is in it
	for _, secret := range []string{"sk-planted-provider-key", "planted-consul-token", "planted-sidecar-token", "planted-webhook-token"} {
		if strings.Contains(env, secret) {
			t.Errorf("the agent sees %q", secret)
		}
	}
	// And what it needs is
	for _, want := range []string{"PATH=" + os.Getenv("PATH"), "LC_TIME=C", "MYAGENT_MODE=batch", "EXTRA=x1", "SIDECAR_ADDR=http://127.0.0.1:7"} {
		if !strings.Contains("\n"+env, "\n"+want+"\n") {
			t.Errorf("the agent's environment lacks %s:\n%s", want, env)
		}
	}
}

// agentWithChild is an agent script that starts a child ignoring SIGTERM
// (its pid appended to children), then runs tail.
func agentWithChild(children, tail string) string {
	return `sh -c 'trap "" TERM; echo $$ >> ` + children + `; while :; do sleep 0.05; done' & ` +
		`while [ ! -s ` + children + ` ]; do sleep 0.01; done; ` + tail
}

func TestAgentChildrenDoNotOutliveTheAgent(t *testing.T) {
	cases := []struct {
		name string
		tail string // what the agent does once its child runs
		act  func(s *Supervisor, cancel context.CancelFunc)
		// done says when the first agent process is gone
		done func(s *Supervisor, starts int32) bool
	}{
		{"restarted on request", "while :; do sleep 0.05; done",
			func(s *Supervisor, _ context.CancelFunc) { s.Restart("isolated: missed_heartbeats") },
			func(_ *Supervisor, starts int32) bool { return starts >= 2 }},
		{"the agent exits by itself", "exit 3", func(*Supervisor, context.CancelFunc) {},
			func(_ *Supervisor, starts int32) bool { return starts >= 2 }},
		{"the sidecar shuts down", "while :; do sleep 0.05; done",
			func(_ *Supervisor, cancel context.CancelFunc) { cancel() }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			children := filepath.Join(t.TempDir(), "children")
			killAllIn(t, children)
			var starts atomic.Int32
			s := New(execCfg(policies.RestartAlways, agentWithChild(children, tc.tail)),
				Options{OnStart: func(int) { starts.Add(1) }})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			// Given an agent whose child ignores SIGTERM
			testutil.Eventually(t, "the agent's child", 5*time.Second, func() bool { return len(pidsIn(t, children)) > 0 })
			child := pidsIn(t, children)[0]

			// When the agent is restarted, exits, or the sidecar stops
			tc.act(s, cancel)
			if tc.done != nil {
				testutil.Eventually(t, "the next start", 10*time.Second, func() bool { return tc.done(s, starts.Load()) })
			} else {
				<-done
			}

			// Then the child went with it
			if alive(child) {
				t.Fatalf("the agent's child %d still runs", child)
			}
		})
	}
}
