//go:build unix

package testbin_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestStopWithin(t *testing.T) {
	for _, tt := range []struct {
		name   string
		script string
		want   bool
	}{
		{"exits on SIGTERM", "exec sleep 30", true},
		{"ignores SIGTERM, killed after the grace", "trap '' TERM; echo trapped; while :; do sleep 0.1; done", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := &testutil.SyncBuffer{}
			cmd := exec.Command("sh", "-c", tt.script)
			cmd.Stdout, cmd.Stderr = out, out
			p, err := testbin.StartCmd(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want {
				// the trap is set before SIGTERM is sent
				testutil.Eventually(t, "the trap set", 5*time.Second, func() bool { return out.String() != "" })
			}
			if got := p.StopWithin(200 * time.Millisecond); got != tt.want {
				t.Errorf("StopWithin() = %v; want %v", got, tt.want)
			}
			select {
			case <-p.Exited():
			default:
				t.Error("StopWithin returned before the process exited")
			}
		})
	}
}
