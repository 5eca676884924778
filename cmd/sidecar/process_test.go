//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// sidecarProcess is a `sidecar agent` the test started.
type sidecarProcess struct {
	proc *testbin.Process
	logs *testutil.SyncBuffer
}

// startAgentBinary runs `sidecar agent -config file` with its output in
// logs; the test's end kills it and, should the test have failed, logs its
// output under name.
func startAgentBinary(t *testing.T, name, file string) *sidecarProcess {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	proc, err := testbin.Start(sidecarBin, []string{"agent", "-config", file}, logs)
	if err != nil {
		t.Fatal(err)
	}
	p := &sidecarProcess{proc: proc, logs: logs}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs.String())
		}
	})
	return p
}

// stop kills the sidecar and waits for it to exit; it may be called again.
func (p *sidecarProcess) stop() { p.proc.Kill() }

// waitUntil waits up to limit for ready, failing at once should the sidecar
// exit.
func (p *sidecarProcess) waitUntil(t *testing.T, what string, limit time.Duration, ready func() bool) {
	t.Helper()
	testutil.Eventually(t, what, limit, func() bool {
		select {
		case <-p.proc.Exited():
			t.Fatalf("the sidecar exited:\n%s", p.logs.String())
		default:
		}
		return ready()
	})
}

// startHealthySidecar runs the sidecar with the config file, whose listener
// is on port, until the test ends; it returns once `sidecar health` passes,
// with the control URL.
func startHealthySidecar(t *testing.T, name, file string, port int) (string, *sidecarProcess) {
	t.Helper()
	p := startAgentBinary(t, name, file)
	control := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.waitUntil(t, name+" control API", 10*time.Second, func() bool {
		_, _, code := runCLI(t, nil, "health", "-q", "-addr", control)
		return code == exitOK
	})
	return control, p
}

// startModelGateway runs, until the test ends, a sidecar registered as
// name-1 in the Consul agent at consulAddr, with the configuration blocks
// (models, breakers, budgets), its state (a budget's spend) in a directory
// of its own, and a heartbeat interval of an hour; it returns once
// the model gateway lists the models, with the control URL.
func startModelGateway(t *testing.T, name, consulAddr, blocks string) (string, *sidecarProcess) {
	t.Helper()
	port := testutil.FreePort(t)
	file := writeFile(t, t.TempDir(), "sidecar.hcl", fmt.Sprintf(`
agent {
  name      = %q
  id        = "%s-1"
  state_dir = %q
}
listen { address = "127.0.0.1:%d" }
consul {
  address = %q
  deregister_critical_after = "1m"
}
health { heartbeat_interval = "1h" }
`, name, name, t.TempDir(), port, consulAddr)+blocks)
	p := startAgentBinary(t, "sidecar", file)
	control := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.waitUntil(t, "the model gateway", 20*time.Second, func() bool {
		resp, err := http.Get(control + "/llm/v1/models")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return control, p
}

// kvPolicyConfig is the start of the configuration of a sidecar named
// writer with the given id, listening on port, that reads its fleet
// policies from Consul KV under sidecar/policies/.
func kvPolicyConfig(id string, port int, consulAddr string) string {
	return fmt.Sprintf(`
agent {
  name = "writer"
  id   = %q
}
listen { address = "127.0.0.1:%d" }
consul {
  address       = %q
  policy_prefix = "sidecar/policies/"
}
health { heartbeat_interval = "1m" }
`, id, port, consulAddr)
}

// putKV writes value under key in Consul KV.
func putKV(t *testing.T, client *api.Client, key, value string) {
	t.Helper()
	if _, err := client.KV().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		t.Fatal(err)
	}
}
