//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestStatusCommand(t *testing.T) {
	consul := consultest.Start(t)
	controlPort := testutil.FreePort(t)
	cfgFile := writeFile(t, t.TempDir(), "sidecar.hcl", fmt.Sprintf(`
agent {
  name = "writer"
  id   = "writer-status"
}
listen { address = "127.0.0.1:%d" }
consul { address = %q }
log {
  level = "debug"
  json  = true
}
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 1
  grace              = "300ms"
}
model "gpt-4o" {
  provider = "openai"
  base_url = "http://127.0.0.1:1/v1"
  fallback = "gpt-4o-mini"
}
model "gpt-4o-mini" {
  provider = "openai"
  base_url = "http://127.0.0.1:1/v1"
}
`, controlPort, consul.HTTPAddr))
	logs := startAgentBinary(t, "sidecar", cfgFile).logs
	env := []string{fmt.Sprintf("SIDECAR_ADDR=http://127.0.0.1:%d", controlPort)}
	testutil.Eventually(t, "the control API", 10*time.Second, func() bool {
		_, _, code := runCLI(t, env, "status")
		return code != exitUnreachable
	})

	// Given the agent heartbeats and is registered
	if _, errOut, code := runCLI(t, env, "heartbeat", "-note", "handled 3 tasks", "-q"); code != exitOK {
		t.Fatalf("heartbeat: %d %s", code, errOut)
	}
	testutil.Eventually(t, "registered", 10*time.Second, func() bool {
		out, _, _ := runCLI(t, env, "status")
		return strings.Contains(out, "registered as writer-status")
	})
	out, errOut, code := runCLI(t, env, "status")
	// Then status says so, exits 0, and uses no colours off a terminal
	if code != exitOK {
		t.Fatalf("status exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"writer-status (writer) healthy", "last heartbeat", "note: handled 3 tasks",
		"breakers   2 closed", "gpt-4o → gpt-4o-mini: 0 calls", "no calls or tasks yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\033[") {
		t.Errorf("colour codes off a terminal:\n%q", out)
	}

	// When the agent falls silent, status exits 1 and says why
	testutil.Eventually(t, "isolation", 10*time.Second, func() bool {
		_, _, code := runCLI(t, env, "status")
		return code == exitError
	})
	out, _, _ = runCLI(t, env, "status")
	if !strings.Contains(out, "ISOLATED (missed heartbeats)") || !strings.Contains(out, "no heartbeat for") {
		t.Errorf("isolated status:\n%s", out)
	}
	// And -json prints the control API's status, also exiting 1
	out, _, code = runCLI(t, env, "status", "-json")
	var st struct {
		Health struct{ State string }
		Models []struct{ Label string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitError || st.Health.State != "isolated" || len(st.Models) != 2 {
		t.Fatalf("status -json: exit %d, %v, %+v\n%s", code, err, st, out)
	}

	// The log block applies: debug lines, as JSON
	first := strings.SplitN(logs.String(), "\n", 2)[0]
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil || line["@message"] == nil {
		t.Errorf("log line %q is not JSON: %v", first, err)
	}
	if !strings.Contains(logs.String(), `"@level":"debug"`) {
		t.Errorf("no debug line in the logs")
	}

	// A sidecar that does not answer: exit 3
	_, errOut, code = runCLI(t, []string{"SIDECAR_ADDR=http://127.0.0.1:1"}, "status")
	if code != exitUnreachable || !strings.Contains(errOut, "did not answer") {
		t.Fatalf("unreachable: exit %d %s", code, errOut)
	}
}
