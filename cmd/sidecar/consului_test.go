//go:build e2e

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// chromium returns Debian's headless-capable Chromium ($CHROMIUM, else
// chromium or chromium-browser on PATH). Under CI a missing browser fails
// the test; elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium not found: install Debian's chromium package (apt-get install chromium) or set CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// renderPage opens url in headless Chromium (driven by playwright-core,
// testdata/ui), waits until waitFor shows, saves a screenshot to shot and
// returns the page's text.
func renderPage(t *testing.T, browser, url, waitFor, shot string) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "cmd", "sidecar", "testdata", "ui")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		msg := "playwright-core is not installed: run make sdk-deps"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "render.mjs", url, waitFor, shot)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+browser)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rendering %s (waiting for %q): %v\n%s", url, waitFor, err, stderr.String())
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
	return string(out)
}

// artifacts is where browser tests leave their screenshots:
// $TEST_ARTIFACTS, else test-artifacts/ at the repository's root.
func artifacts(t *testing.T) string {
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConsulUIShowsTheAgentAndItsChecks(t *testing.T) {
	browser := chromium(t)
	consul := consultest.Start(t)
	control := startSidecarBinary(t, "writer-ui", `
agent {
  name = "writer"
  id   = "writer-ui"
}
listen { address = "127.0.0.1:%d" }
consul { address = "`+consul.HTTPAddr+`" }
health {
  heartbeat_interval = "2s"
  missed_heartbeats  = 1
  grace              = "500ms"
}
`)
	// The agent heartbeats until told to stop
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if resp, err := http.Post(control+"/v1/heartbeat", "application/json",
				strings.NewReader(`{"note":"handled 3 tasks","metrics":{"queue":2}}`)); err == nil {
				resp.Body.Close()
			}
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-stopped
	}()
	client, err := discovery.NewClient(discovery.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	var node string
	testutil.Eventually(t, "passing in the catalog", 10*time.Second, func() bool {
		entries, err := client.ServiceHealth(context.Background(), "writer")
		if err != nil || len(entries) != 1 {
			return false
		}
		node = entries[0].Node
		for _, c := range entries[0].Checks {
			if c.Name == "heartbeat" && c.Status == discovery.Passing {
				return true
			}
		}
		return false
	})
	page := fmt.Sprintf("http://%s/ui/dc1/services/writer/instances/%s/writer-ui/health-checks", consul.HTTPAddr, node)
	dir := artifacts(t)

	// A healthy agent: both checks, their outputs as a person reads them
	dom := renderPage(t, browser, page, "Heartbeat ok at", filepath.Join(dir, "consul-ui-healthy.png"))
	for _, want := range []string{"writer-ui", "writer-ui:heartbeat", "writer-ui:sidecar", "heartbeat", "sidecar", "Heartbeat ok at",
		"Note: handled 3 tasks", "Metrics: queue=2", "Sidecar running; no calls through it yet",
		"The agent heartbeats to its sidecar every 2s"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the healthy agent's page lacks %q", want)
		}
	}

	// An isolated agent: the heartbeat check says so, since when and why
	close(stop)
	<-stopped
	testutil.Eventually(t, "isolated in the catalog", 15*time.Second, func() bool {
		entries, err := client.ServiceHealth(context.Background(), "writer")
		if err != nil || len(entries) != 1 {
			return false
		}
		for _, c := range entries[0].Checks {
			// The sidecar's own words, not Consul's "TTL expired": the
			// sidecar keeps an isolated agent's check fresh.
			if c.Name == "heartbeat" && strings.HasPrefix(c.Output, "ISOLATED since") {
				return true
			}
		}
		return false
	})
	dom = renderPage(t, browser, page, "ISOLATED since", filepath.Join(dir, "consul-ui-isolated.png"))
	if strings.Contains(dom, "TTL expired") {
		t.Errorf("the isolated agent's check shows Consul's TTL expiry instead of the sidecar's output")
	}
	for _, want := range []string{"ISOLATED since", "no heartbeat for", "A new heartbeat recovers the agent", "writer-ui:sidecar"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the isolated agent's page lacks %q", want)
		}
	}
}
