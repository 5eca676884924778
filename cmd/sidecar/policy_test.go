//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// TestFleetPoliciesFromConsulKV pushes policies with `sidecar policy`, and
// checks that a running sidecar applies them (fleet, then per service),
// rejects an invalid one while keeping the last good policy (status,
// events, the sidecar check), and that a push based on an old read is
// refused.
func TestFleetPoliciesFromConsulKV(t *testing.T) {
	consul := consultest.Start(t)
	client := consul.Client(t)
	env := []string{"CONSUL_HTTP_ADDR=" + consul.HTTPAddr}
	dir := t.TempDir()
	fleetDir := filepath.Join(dir, "fleet")
	serviceDir := filepath.Join(dir, "writer")
	writeFile(t, mkdir(t, fleetDir), "breakers.hcl", "breaker \"default\" {\n  consecutive_failures = 7\n}\n")
	writeFile(t, mkdir(t, serviceDir), "breakers.hcl", "breaker \"default\" {\n  consecutive_failures = 6\n}\n")

	// diff, then push at the index diff read.
	out, errOut, code := runCLI(t, env, "policy", "diff", fleetDir)
	m := regexp.MustCompile(`push -index (\d+)`).FindStringSubmatch(out)
	if code != exitOK || !strings.Contains(out, "+ sidecar/policies/breakers.hcl (new") || m == nil {
		t.Fatalf("policy diff: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCLI(t, env, "policy", "push", "-index", m[1], fleetDir); code != exitOK {
		t.Fatalf("policy push: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, _ = runCLI(t, env, "policy", "diff", fleetDir); !strings.Contains(out, "no changes") {
		t.Fatalf("diff after push: %s", out)
	}

	control := startSidecarBinary(t, "kv", fmt.Sprintf(`
agent {
  name = "writer"
  id   = "writer-kv"
}
listen { address = "127.0.0.1:%%d" }
consul {
  address       = %q
  policy_prefix = "sidecar/policies"
}
health { heartbeat_interval = "1m" }
upstream "search" { url = "http://127.0.0.1:9" }
`, consul.HTTPAddr))
	threshold := func() float64 {
		var st struct {
			Config struct {
				Breakers map[string]struct {
					ConsecutiveFailures float64 `json:"consecutive_failures"`
				} `json:"breakers"`
			} `json:"config"`
		}
		resp, err := http.Get(control + "/v1/status")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st.Config.Breakers["default"].ConsecutiveFailures
	}
	if got := threshold(); got != 7 {
		t.Fatalf("at start the fleet policy gives %v consecutive failures, want 7", got)
	}

	// A change of the fleet policy reaches the running sidecar.
	writeFile(t, fleetDir, "breakers.hcl", "breaker \"default\" {\n  consecutive_failures = 4\n}\n")
	out, _, _ = runCLI(t, env, "policy", "diff", fleetDir)
	if !strings.Contains(out, "~ sidecar/policies/breakers.hcl") || !strings.Contains(out, "-  consecutive_failures = 7") ||
		!strings.Contains(out, "+  consecutive_failures = 4") {
		t.Fatalf("diff of a change:\n%s", out)
	}
	stale := regexp.MustCompile(`push -index (\d+)`).FindStringSubmatch(out)[1]
	if out, errOut, code = runCLI(t, env, "policy", "push", fleetDir); code != exitOK {
		t.Fatalf("push: %d %s%s", code, out, errOut)
	}
	testutil.Eventually(t, "the new fleet policy applied", 10*time.Second, func() bool { return threshold() == 4 })

	// Another operator's push based on the old read is refused.
	writeFile(t, fleetDir, "breakers.hcl", "breaker \"default\" {\n  consecutive_failures = 9\n}\n")
	_, errOut, code = runCLI(t, env, "policy", "push", "-index", stale, fleetDir)
	if code != exitError || !strings.Contains(errOut, "changed since index") {
		t.Fatalf("a push at a stale index: exit %d %s", code, errOut)
	}

	// The service's own policy wins over the fleet's.
	if out, errOut, code = runCLI(t, env, "policy", "push", "-service", "writer", serviceDir); code != exitOK ||
		!strings.Contains(out, "sidecar/policies/service/writer/breakers.hcl") {
		t.Fatalf("push -service: %d %s%s", code, out, errOut)
	}
	testutil.Eventually(t, "the service policy applied", 10*time.Second, func() bool { return threshold() == 6 })

	// An invalid policy written straight into KV is rejected: the last good
	// policy stays, and status, events and the sidecar check say so.
	if _, err := client.KV().Put(&api.KVPair{Key: "sidecar/policies/broken.hcl",
		Value: []byte("breaker \"broken\" {\n  open_for = \"soon\"\n}\n")}, nil); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the sidecar check to report the rejection", 10*time.Second, func() bool {
		checks, _ := client.Agent().Checks()
		c := checks["writer-kv:sidecar"]
		return c != nil && c.Status == api.HealthWarning && strings.Contains(c.Output, "consul:sidecar/policies/broken.hcl:2:3")
	})
	if got := threshold(); got != 6 {
		t.Fatalf("after a rejected policy the threshold is %v, want the last good 6", got)
	}
	st, _, _ := runCLI(t, []string{"SIDECAR_ADDR=" + control}, "status", "-json")
	if !strings.Contains(st, `"config.rejected"`) || !strings.Contains(st, "open_for") {
		t.Fatalf("status lacks the rejection event:\n%s", st)
	}
	// Removing it applies the good policies again.
	if _, err := client.KV().Delete("sidecar/policies/broken.hcl", nil); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the sidecar check passing again", 10*time.Second, func() bool {
		checks, _ := client.Agent().Checks()
		c := checks["writer-kv:sidecar"]
		return c != nil && c.Status == api.HealthPassing
	})

	// Invalid files are never pushed.
	writeFile(t, fleetDir, "agent.hcl", "agent {\n  name = \"x\"\n}\n")
	_, errOut, code = runCLI(t, env, "policy", "push", fleetDir)
	if code != exitError || !strings.Contains(errOut, filepath.Join(fleetDir, "agent.hcl")+":1:1") || !strings.Contains(errOut, "nothing read from or written") {
		t.Fatalf("push of an invalid directory: exit %d %s", code, errOut)
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
