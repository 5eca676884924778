package consultest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestStartFailureShowsConsulOutput(t *testing.T) {
	// Given a "consul" that complains and exits at once
	bin := filepath.Join(t.TempDir(), "consul")
	script := "#!/bin/sh\necho '==> Error starting agent: bind: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_BIN", bin)

	// When a test starts it
	rec := &testutil.TBRecorder{TB: t}
	a := Start(rec)

	// Then the test fails with the tail of Consul's output in the message
	if a != nil {
		t.Fatalf("Start returned an agent for a binary that exits")
	}
	for _, want := range []string{"failed after", "bind: address already in use"} {
		if !strings.Contains(rec.FatalMsg, want) {
			t.Errorf("failure message %q does not contain %q", rec.FatalMsg, want)
		}
	}
}
