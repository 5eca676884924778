package sidecar

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

func execCfg(restart string, script string) policies.Exec {
	return policies.Exec{
		Command: []string{"/bin/sh", "-c", script}, Restart: restart,
		StopTimeout: 500 * time.Millisecond, RestartBackoff: 20 * time.Millisecond, MaxRestartBackoff: 100 * time.Millisecond,
	}
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

	testutil.Eventually(t, "the heartbeat sent on SIGTERM", 10*time.Second, func() bool {
		b, _ := os.ReadFile(codes)
		return len(b) > 0
	})
	if b, _ := os.ReadFile(codes); !strings.HasPrefix(string(b), "409") {
		t.Fatalf("the heartbeat of the process being stopped got %q, want 409", b)
	}
	testutil.Eventually(t, "the restarted process's heartbeat", 10*time.Second, func() bool { return !s.tracker.Snapshot().IsolatedNow() })
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
