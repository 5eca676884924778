//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// startSidecarBinary runs the sidecar binary with cfg until the test ends
// and returns its control URL.
func startSidecarBinary(t *testing.T, name, cfg string) string {
	t.Helper()
	port := testutil.FreePort(t)
	control, _ := startHealthySidecar(t, name, writeFile(t, t.TempDir(), name+".hcl", fmt.Sprintf(cfg, port)), port)
	return control
}

func TestFleetCommand(t *testing.T) {
	// Consul's default check_update_interval (5m), as on a real cluster:
	// a check's output reaches the catalog minutes late, its status at once.
	// Everything fleet shows beyond the statuses comes from the reports
	// the sidecars keep in KV.
	consul := consultest.Start(t, consultest.DefaultCheckUpdateInterval())
	cfg := func(id string) string {
		return `
agent {
  name = "writer"
  id   = "` + id + `"
}
listen { address = "127.0.0.1:%d" }
consul { address = "` + consul.HTTPAddr + `" }
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 1
  grace              = "300ms"
}
upstream "down" { url = "http://127.0.0.1:1" }
`
	}
	a := startSidecarBinary(t, "writer-1", cfg("writer-1"))
	b := startSidecarBinary(t, "writer-2", cfg("writer-2"))

	// Given writer-1 heartbeats all along, writer-2 never does and has a
	// breaker open
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	beat := func(control string) {
		defer wg.Done()
		for ctx.Err() == nil {
			if resp, err := http.Post(control+"/v1/heartbeat", "application/json", nil); err == nil {
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	wg.Add(1)
	go beat(a)
	defer func() { cancel(); wg.Wait() }()
	for i := 0; i < 3; i++ {
		if resp, err := http.Get(b + "/call/down/x"); err == nil {
			resp.Body.Close()
		}
	}
	env := []string{"CONSUL_HTTP_ADDR=" + consul.HTTPAddr}
	var out string
	testutil.Eventually(t, "both instances in the fleet view", 15*time.Second, func() bool {
		out, _, _ = runCLI(t, env, "fleet")
		return strings.Contains(out, "writer-1") && strings.Contains(out, "ISOLATED") && strings.Contains(out, "passing")
	})

	// Then fleet shows one line per instance and exits 1
	_, _, code := runCLI(t, env, "fleet")
	if code != exitError {
		t.Fatalf("fleet exit %d, want 1 (writer-2 is isolated):\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SERVICE") {
		t.Fatalf("fleet output:\n%s", out)
	}
	w1, w2 := strings.Fields(lines[1]), strings.Fields(lines[2])
	if w1[1] != "writer-1" || w1[3] != "passing" || w1[4] != "passing" || !(strings.Contains(lines[1], "ago") || strings.Contains(lines[1], "just now")) {
		t.Errorf("writer-1 line %q", lines[1])
	}
	if w2[1] != "writer-2" || w2[3] != "ISOLATED" || w2[4] != "warning" || !strings.Contains(lines[2], "  1  ") {
		t.Errorf("writer-2 line %q (want isolated, sidecar warning, 1 open breaker)", lines[2])
	}

	// And -critical keeps the unhealthy one; -json is stable
	out, _, _ = runCLI(t, env, "fleet", "-critical")
	if strings.Contains(out, "writer-1") || !strings.Contains(out, "writer-2") {
		t.Errorf("fleet -critical:\n%s", out)
	}
	out, _, _ = runCLI(t, env, "fleet", "-json", "-service", "writer")
	var list []FleetInstance
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Fatalf("fleet -json: %v\n%s", err, out)
	}
	if list[1].ID != "writer-2" || !list[1].Isolated || list[1].OpenBreakers != 1 || list[1].SidecarAddr != strings.TrimPrefix(b, "http://") ||
		list[0].LastHeartbeat == nil || list[0].Heartbeat != "passing" {
		t.Errorf("fleet -json %+v", list)
	}
	if list[0].Reported == nil || list[1].Reported == nil {
		t.Errorf("fleet -json without the reports' times: %+v", list)
	}

	// A report someone else wrote that does not decode is named and skipped
	if err := consulPut(consul.HTTPAddr, "sidecar/fleet/junk", `{"id":`); err != nil {
		t.Fatal(err)
	}
	if out, errOut, _ := runCLI(t, env, "fleet"); !strings.Contains(errOut, "ignoring Consul KV sidecar/fleet/junk") ||
		!strings.Contains(out, "writer-2") {
		t.Errorf("a junk report: stdout %s stderr %s", out, errOut)
	}
	if out, _, _ := runCLI(t, env, "fleet", "-service", "nobody"); !strings.Contains(out, "no agent instances") {
		t.Errorf("an empty selection: %s", out)
	}

	// When writer-2 heartbeats, fleet -watch redraws with it passing
	watch := exec.Command(sidecarBin, "fleet", "-watch", "-service", "writer")
	watch.Env = append(watch.Environ(), env...)
	var wout testutil.SyncBuffer
	watch.Stdout, watch.Stderr = &wout, &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Process.Kill(); _ = watch.Wait() }()
	testutil.Eventually(t, "the first drawing", 10*time.Second, func() bool { return strings.Contains(wout.String(), "redraws on change") })
	wg.Add(1)
	go beat(b)
	testutil.Eventually(t, "a redraw with writer-2 recovered", 10*time.Second, func() bool {
		draws := strings.Split(wout.String(), "SERVICE")
		last := draws[len(draws)-1]
		return len(draws) > 2 && !strings.Contains(last, "ISOLATED")
	})

	// A Consul that does not answer: exit 3
	if _, errOut, code := runCLI(t, nil, "fleet", "-consul", "127.0.0.1:1"); code != exitUnreachable || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("unreachable Consul: exit %d %s", code, errOut)
	}
}

// consulPut writes a KV entry through Consul's HTTP API.
func consulPut(addr, key, value string) error {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/kv/"+key, strings.NewReader(value))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s", key, resp.Status)
	}
	return nil
}
