//go:build e2e

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// The secret parts of webhook and probe URLs (their path, query and user
// information) and the supervised command's arguments appear in no status,
// event, log line or Consul check, also when a reload is rejected because
// a webhook URL is mistyped.
func TestSecretURLsAndArgumentsStayOutOfEveryOutput(t *testing.T) {
	secrets := []string{"hook-s3cret", "hook2-s3cret", "hookq-s3cret", "probe-s3cret", "probeq-s3cret", "argv-s3cret"}
	consul := consultest.Start(t)
	client := consul.Client(t)
	var hookBodies testutil.SyncBuffer
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(&hookBodies, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer probe.Close()

	controlPort := testutil.FreePort(t)
	control := fmt.Sprintf("http://127.0.0.1:%d", controlPort)
	config := func(notify string) string {
		return fmt.Sprintf(`
agent {
  name = "writer"
  id   = "writer-redact"
  exec {
    command      = ["sh", "-c", "exec sleep 300", "argv-s3cret"]
    stop_timeout = "2s"
  }
}
listen { address = "127.0.0.1:%d" }
consul {
  address       = %q
  sync_interval = "500ms"
}
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "500ms"
  notify             = ["ops"]
  probe {
    url      = "%s/healthz/probe-s3cret?key=probeq-s3cret"
    interval = "300ms"
  }
}
%s`, controlPort, consul.HTTPAddr, probe.URL, notify)
	}
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "sidecar.hcl", config(fmt.Sprintf(`notify "ops" { webhook = "%s/hook/hook-s3cret" }`, hook.URL)))

	var logs testutil.SyncBuffer
	cmd := startSidecar(t, &logs, "agent", "-config", cfgFile, "-log-level", "debug")
	checks := func() map[string]*api.AgentCheck {
		cs, _ := client.Agent().Checks()
		return cs
	}

	// Given the probed agent is passing in Consul
	testutil.Eventually(t, "the heartbeat check passing with the probe's note", 30*time.Second, func() bool {
		c := checks()["writer-redact:heartbeat"]
		return c != nil && c.Status == api.HealthPassing && strings.Contains(c.Output, "(probe)")
	})

	// When the configuration gets mistyped webhook URLs and is reloaded
	writeFile(t, dir, "sidecar.hcl", config(`
notify "ops" { webhook = "hooks.example.com/services/T000/hook-s3cret" }
notify "team" { webhook = "htps://hooks.example.com/services/T000/hook2-s3cret?token=hookq-s3cret" }
`))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	// Then the rejection says where and what is wrong
	testutil.Eventually(t, "the sidecar check to report the rejection", 15*time.Second, func() bool {
		c := checks()["writer-redact:sidecar"]
		return c != nil && c.Status == api.HealthWarning && strings.Contains(c.Output, "notify.ops.webhook")
	})
	status, errOut, _ := runCLI(t, []string{"SIDECAR_ADDR=" + control}, "status", "-json")
	for _, want := range []string{`"config.rejected"`, "sidecar.hcl:", "notify.ops.webhook", "notify.team.webhook",
		"must be an absolute http or https URL", `\"hooks.example.com/\u003credacted\u003e\"`} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s%s", want, status, errOut)
		}
	}
	// And no secret appears anywhere
	text, _, _ := runCLI(t, []string{"SIDECAR_ADDR=" + control}, "status")
	var consulText strings.Builder
	for id, c := range checks() {
		fmt.Fprintf(&consulText, "%s: %s\n%s\n%s\n", id, c.Status, c.Notes, c.Output)
	}
	services, _ := client.Agent().Services()
	for _, s := range services {
		fmt.Fprintf(&consulText, "%+v\n", *s)
	}
	outputs := map[string]string{
		"status -json":         status,
		"status":               text,
		"the log":              logs.String(),
		"the Consul checks":    consulText.String(),
		"the webhook's events": hookBodies.String(),
	}
	for where, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s contains %q:\n%s", where, s, out)
			}
		}
	}
	if !strings.Contains(consulText.String(), probe.URL) {
		t.Errorf("the check notes do not name the probe's host %s:\n%s", probe.URL, consulText.String())
	}
}

// startSidecar runs the binary with its output in logs; the test's end
// stops it with SIGTERM (so it stops its agent) and waits for it.
func startSidecar(t *testing.T, logs *testutil.SyncBuffer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(sidecarBin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", logs.String())
		}
	})
	return cmd
}
