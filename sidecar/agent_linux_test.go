package sidecar

import (
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// A restart asked for while the supervisor waits to start the agent again
// (an isolation during the backoff) must not stop the process started
// next: with a TTL shorter than the backoff it would stop every new
// process, and a healthy agent would never run again.
func TestRestartRequestDuringBackoffSparesTheNextProcess(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	marker := filepath.Join(t.TempDir(), "crashed-once")
	// The first process crashes at once; every later one heartbeats.
	script := `if [ ! -e ` + marker + ` ]; then touch ` + marker + `; exit 1; fi; ` +
		`while :; do curl -s -o /dev/null -X POST "$SIDECAR_HEARTBEAT_URL"; sleep 0.05; done`
	ex := execCfg(policies.RestartAlways, script)
	ex.RestartOnIsolation = true
	ex.RestartBackoff, ex.MaxRestartBackoff = time.Second, 2*time.Second
	cfg := testConfig()
	cfg.Agent.Exec = &ex
	// TTL 300ms, well below the 1s backoff
	cfg.Health.HeartbeatInterval, cfg.Health.MissedHeartbeats, cfg.Health.Grace = 200*time.Millisecond, 1, 100*time.Millisecond
	s, _, _ := startSidecar(t, cfg, Options{AgentOutput: io.Discard})

	// Given the agent crashed and was isolated while waiting to restart
	testutil.Eventually(t, "isolation during the backoff", 10*time.Second, func() bool { return s.tracker.Snapshot().IsolatedNow() })

	// Then the next process runs and recovers the agent
	testutil.Eventually(t, "the restarted agent's recovery", 15*time.Second, func() bool {
		return s.tracker.Snapshot().State == "healthy" && s.supervisor.State().Running
	})
}
