//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// sidecarBin is the binary built once for the end-to-end tests.
var sidecarBin string

func TestMain(m *testing.M) {
	bin, err := testbin.BuildSidecar("sidecar-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sidecarBin = bin
	code := m.Run()
	_ = os.RemoveAll(filepath.Dir(bin))
	os.Exit(code)
}

// repoRoot is the repository root (for examples/).
func repoRoot(t *testing.T) string { return testbin.RepoRoot() }

func needPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is needed for the end-to-end tests (apt-get install python3)")
		}
		t.Skip("python3 not found")
	}
	return p
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(sidecarBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.hcl", "agent {\n  name = \"writer\"\n}\nhealth {\n  heartbeat_interval = \"1m\"\n}\n")
	notSidecar := httptest.NewServer(http.NotFoundHandler())
	defer notSidecar.Close()
	emptyKey := writeFile(t, dir, "empty-key.hcl", "agent {\n  name = \"writer\"\n}\nmodel \"gpt-4o\" {\n  provider = \"openai\"\n"+
		"  api_key = env(\"SIDECAR_TEST_KEY_THAT_IS_NOT_SET\")\n}\n")
	notifyNobody := writeFile(t, dir, "notify-nobody.hcl", "agent {\n  name = \"writer\"\n}\nhealth {\n  notify = []\n}\n"+
		"notify \"ops\" {\n  webhook = \"https://hooks.example.com/agents\"\n}\n")
	bad := writeFile(t, dir, "bad.hcl", "agent {\n  name = \"writer\"\n  prot = 8081\n}\nhealth {\n  heartbeat_interval = \"5x\"\n}\n")
	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"valid file", []string{"validate", good}, exitOK, []string{"configuration valid", `"writer"`}},
		{"invalid file names every error with file:line:col", []string{"validate", bad}, exitError,
			[]string{bad + ":3:3", "prot", bad + ":6:", "heartbeat_interval", `"5x"`}},
		{"a model key from an unset variable is valid, with a warning", []string{"validate", emptyKey}, exitOK,
			[]string{"configuration valid", `warning: model "gpt-4o": api_key is set but empty`, "https://api.openai.com/v1"}},
		{"notify blocks that health.notify = [] leaves unused are valid, with a warning", []string{"validate", notifyNobody}, exitOK,
			[]string{"configuration valid", "warning: health.notify is []: isolations notify nobody", "(ops)"}},
		{"no arguments", []string{"validate"}, exitUsage, []string{"Usage: sidecar validate"}},
		{"missing file", []string{"validate", filepath.Join(dir, "nope.hcl")}, exitError, []string{"nope.hcl"}},
		{"the shipped example configuration", []string{"validate", filepath.Join(repoRoot(t), "sidecar.hcl")}, exitOK,
			[]string{"configuration valid", `"gpt-4o-mini"`}},
		{"the demo's configuration of a writer", []string{"validate", filepath.Join(repoRoot(t), "tools/demo/fleet.hcl"),
			filepath.Join(repoRoot(t), "tools/demo/writer-1.hcl")}, exitOK,
			[]string{"configuration valid", `"writer-1"`, `"writer-lite"`, `"researcher"`, `"gpt-4o" → "gpt-4o-mini"`}},
		{"unknown command", []string{"frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`}},
		{"version", []string{"version"}, exitOK, []string{"sidecar "}},
		{"agent without config", []string{"agent"}, exitUsage, []string{"-config FILE"}},
		{"heartbeat with a bad status", []string{"heartbeat", "-status", "great"}, exitUsage, []string{"ok, degraded or failing"}},
		{"health of a sidecar that is not there", []string{"health", "-addr", "http://127.0.0.1:1"}, exitUnreachable, []string{"did not answer"}},
		{"health of something that is not a sidecar", []string{"health", "-addr", notSidecar.URL}, exitError, []string{"unexpected answer", "404"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, nil, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}

func TestHeartbeatCommandUnreachable(t *testing.T) {
	_, errOut, code := runCLI(t, []string{"SIDECAR_ADDR=http://127.0.0.1:" + fmt.Sprint(testutil.FreePort(t))}, "heartbeat")
	if code != exitUnreachable || !strings.Contains(errOut, "did not answer") {
		t.Fatalf("exit %d (%s), want %d", code, errOut, exitUnreachable)
	}
}

// TestSupervisedAgentEndToEnd runs the real binary with the example Python
// agent under supervision against a real Consul: the agent heartbeats, hangs,
// is isolated and restarted without anyone touching it, and recovers.
func TestSupervisedAgentEndToEnd(t *testing.T) {
	py := needPython(t)
	consul := consultest.Start(t)
	hookEvents := make(chan map[string]any, 16)
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		_ = json.NewDecoder(r.Body).Decode(&ev)
		hookEvents <- ev
		w.WriteHeader(http.StatusNoContent)
	})}
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = hook.Serve(hl) }()
	defer hook.Close()

	controlPort, agentPort := testutil.FreePort(t), testutil.FreePort(t)
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "sidecar.hcl", fmt.Sprintf(`
agent {
  name = "writer"
  id   = "writer-e2e"
  port = %[2]d
  exec {
    command = [%[3]q, %[4]q]
    env     = { AGENT_PORT = "%[2]d", HEARTBEAT_EVERY = "0.5" }
    restart_on_isolation = true
    stop_timeout = "2s"
  }
}
listen { address = "127.0.0.1:%[1]d" }
consul {
  address = %[5]q
  sync_interval = "1s"
  deregister_critical_after = "1m"
}
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "500ms"
  notify             = ["ops"]
}
notify "ops" { webhook = "http://%[6]s/hook" }
`, controlPort, agentPort, py, filepath.Join(repoRoot(t), "examples", "python", "agent.py"), consul.HTTPAddr, hl.Addr().String()))

	var logs testutil.SyncBuffer
	cmd := exec.Command(sidecarBin, "agent", "-config", cfgFile, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", logs.String())
		}
	}()

	client, err := discovery.NewClient(discovery.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	checkStatus := func() discovery.CheckStatus {
		checks, err := client.AgentChecks(context.Background(), "writer-e2e")
		if err != nil {
			return ""
		}
		for _, c := range checks {
			if c.Name == "heartbeat" {
				return c.Status
			}
		}
		return ""
	}
	control := fmt.Sprintf("http://127.0.0.1:%d", controlPort)
	status := func() map[string]any {
		resp, err := http.Get(control + "/v1/status")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var st map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st
	}
	processField := func(k string) float64 {
		st := status()
		if p, ok := st["process"].(map[string]any); ok {
			f, _ := p[k].(float64)
			return f
		}
		return -1
	}

	// Given the agent runs under its sidecar and heartbeats
	testutil.Eventually(t, "passing in Consul", 30*time.Second, func() bool { return checkStatus() == discovery.Passing })
	firstPID := processField("pid")

	// And a shell heartbeat through the CLI is accepted
	out, errOut, code := runCLI(t, []string{"SIDECAR_ADDR=" + control}, "heartbeat", "-note", "from cron", "-metric", "queue=3")
	if code != exitOK || !strings.Contains(out, "heartbeat accepted") {
		t.Fatalf("heartbeat command: exit %d: %s %s", code, out, errOut)
	}

	// When the agent hangs
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/hang", agentPort), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Then it goes critical, operations are notified, and it is restarted
	testutil.Eventually(t, "critical in Consul", 15*time.Second, func() bool { return checkStatus() == discovery.Critical })
	select {
	case ev := <-hookEvents:
		if ev["type"] != "agent.isolated" || ev["agent_id"] != "writer-e2e" || !strings.Contains(fmt.Sprint(ev["text"]), "Restarting") {
			t.Fatalf("first notification %v, want agent.isolated", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no isolation notification")
	}
	testutil.Eventually(t, "a restart", 20*time.Second, func() bool { return processField("restarts") >= 1 })
	if pid := processField("pid"); pid == firstPID {
		t.Fatalf("pid %v unchanged after the restart", pid)
	}
	// And the events say so: isolated, then restarted
	testutil.Eventually(t, "agent.isolated then agent.restarted in the events", 5*time.Second, func() bool {
		var types []string
		if evs, ok := status()["events"].([]any); ok {
			for _, ev := range evs {
				if m, ok := ev.(map[string]any); ok {
					types = append(types, fmt.Sprint(m["type"]))
				}
			}
		}
		return strings.Contains(strings.Join(types, ","), "agent.isolated,agent.restarted")
	})
	// And the new process recovers the agent by itself
	testutil.Eventually(t, "passing again", 30*time.Second, func() bool { return checkStatus() == discovery.Passing })
	select {
	case ev := <-hookEvents:
		if ev["type"] != "agent.recovered" {
			t.Fatalf("second notification %v, want agent.recovered", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no recovery notification")
	}

	// When the configuration becomes invalid and SIGHUP asks for a reload
	if err := os.WriteFile(cfgFile, []byte("agent {\n  name = 42x\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	// Then it is rejected with its position and the sidecar keeps running
	testutil.Eventually(t, "the reload error", 10*time.Second, func() bool {
		st := status()
		lr, _ := st["last_reload"].(map[string]any)
		return lr != nil && lr["ok"] == false && strings.Contains(fmt.Sprint(lr["error"]), "sidecar.hcl:2:")
	})
	if checkStatus() != discovery.Passing {
		t.Fatal("a rejected reload disturbed the agent")
	}

	// When the sidecar gets SIGTERM, it stops the agent, deregisters and exits 0
	agentPID := int(processField("pid"))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("sidecar exit: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("sidecar did not exit after SIGTERM")
	}
	if err := syscall.Kill(agentPID, 0); err == nil {
		t.Fatalf("agent process %d still runs after the sidecar stopped", agentPID)
	}
	entries, err := client.ServiceHealth(context.Background(), "writer")
	if err != nil || len(entries) != 0 {
		t.Fatalf("after shutdown: %v %+v, want the service deregistered", err, entries)
	}
}
