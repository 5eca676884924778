//go:build e2e && unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// The sidecars' heartbeat settings, scaled down from the defaults so the
// test takes well under a minute and a half; the kubelet keeps Kubernetes'
// defaults (kubelet_test.go). The agents heartbeat every 500 ms.
const (
	heartbeatInterval = 2 * time.Second
	missedHeartbeats  = 2
	heartbeatGrace    = 1 * time.Second
	// isolationSlack is what detection may take beyond the missed
	// intervals and the grace: the sidecar's check and its update of the
	// TTL check in Consul.
	isolationSlack = 2 * time.Second
)

// writer is one agent of the service "writer" and its sidecar, run as
// separate processes (no agent.exec block), as two containers of a pod.
type writer struct {
	id                      string
	control, ingress, probe string // http://127.0.0.1:port: the sidecar's listeners
	agentPort               int
	agentLogs               *testutil.SyncBuffer // of every process the agent ran as
	container               *container
}

// TestKubeletRestartsHungAgent runs two agents of one service, each beside
// its own sidecar with a probe listener, and a kubelet that restarts an
// agent when its liveness probe fails. One agent hangs (SIGSTOP): it is
// critical in Consul within two heartbeat intervals plus the grace,
// operations are notified once, its liveness fails, the kubelet restarts
// it and it is passing again; the tasks sent to its ingress meanwhile are
// answered by its peer, none lost.
func TestKubeletRestartsHungAgent(t *testing.T) {
	consul := consultest.Start(t)
	client := consul.Client(t)
	hook := startOpsHook(t)
	agentBin := buildGoAgent(t)

	writers := []*writer{newWriter(t, 1, consul.HTTPAddr, hook.url), newWriter(t, 2, consul.HTTPAddr, hook.url)}
	var containers []*container
	for _, w := range writers {
		w.container = &container{name: w.id, liveURL: w.probe + "/v1/agent/live", start: func() (*agentProc, error) {
			return startAgentProc([]string{agentBin}, []string{
				"SIDECAR_ADDR=" + w.control, "SIDECAR_AGENT_ID=" + w.id,
				"AGENT_PORT=" + strconv.Itoa(w.agentPort), "HEARTBEAT_EVERY=0.5",
			}, w.agentLogs)
		}}
		p, err := w.container.start()
		if err != nil {
			t.Fatal(err)
		}
		w.container.proc = p
		containers = append(containers, w.container)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, w := range writers {
				probes, _, err := w.container.history()
				t.Logf("%s: liveness probes %+v (restart error: %v)\nagent logs:\n%s", w.id, probes, err, w.agentLogs.String())
			}
		}
	})

	// Given both agents heartbeat, are passing in Consul and take tasks
	for _, w := range writers {
		testutil.EventuallySeen(t, w.id+" passing in Consul", 30*time.Second, func() (bool, string) {
			s := heartbeatCheck(client, w.id)
			return s == api.HealthPassing, s
		})
		testutil.EventuallySeen(t, "a task to "+w.id+"'s ingress answered by "+w.id, 10*time.Second, func() (bool, string) {
			r := sendTask(taskClient, w, 0)
			return r.by == w.id, r.String()
		})
	}
	// And a kubelet probes their liveness, and tasks flow to both ingresses
	kl := startKubelet(t, containers...)
	load := startTaskLoad(writers)
	defer load.stop()
	time.Sleep(time.Second)

	// When writer-1's agent hangs
	hung := writers[0]
	hungAt := time.Now()
	if err := hung.container.current().Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	since := func() time.Duration { return time.Since(hungAt).Round(100 * time.Millisecond) }

	// Then it is critical in Consul within two intervals plus grace
	detectLimit := missedHeartbeats*heartbeatInterval + heartbeatGrace + isolationSlack
	testutil.EventuallySeen(t, "writer-1 critical in Consul", detectLimit, func() (bool, string) {
		s := heartbeatCheck(client, hung.id)
		return s == api.HealthCritical, s
	})
	criticalAfter := since()
	// And its readiness fails on the probe listener, so a Service would
	// stop sending it traffic
	if code, body := getProbe(hung.probe + "/v1/agent/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/agent/ready of an isolated agent: %d %s, want 503", code, body)
	}
	// And operations are notified
	testutil.Eventually(t, "an agent.isolated notification", 10*time.Second, func() bool {
		return hook.count("agent.isolated", hung.id) >= 1
	})

	// And its liveness fails at the kubelet's first probe after the
	// isolation (health.liveness_after defaults to 0s), and the kubelet
	// restarts it after failureThreshold failed probes
	restartLimit := detectLimit + probeFailureThreshold*probePeriod + kubeletStopGrace + 5*time.Second
	testutil.EventuallySeen(t, "the kubelet to restart writer-1", restartLimit-since(), func() (bool, string) {
		probes, restarts, err := hung.container.history()
		if err != nil {
			t.Fatalf("the kubelet could not restart writer-1: %v", err)
		}
		return len(restarts) == 1, fmt.Sprintf("%d probes, the last %+v", len(probes), probes[max(len(probes)-1, 0):])
	})
	probes, restarts, _ := hung.container.history()
	var livenessFailedAfter time.Duration
	for _, p := range probes {
		if !p.ok {
			if p.at.Before(hungAt) {
				t.Errorf("the liveness probe failed before the agent hung: %+v", p)
			} else if livenessFailedAfter == 0 {
				livenessFailedAfter = p.at.Sub(hungAt).Round(100 * time.Millisecond)
				if !strings.Contains(p.detail, "503") || !strings.Contains(p.detail, `"isolated"`) {
					t.Errorf("the failed liveness probe answered %s, want 503 with state isolated", p.detail)
				}
			}
		}
	}
	if limit := criticalAfter + probePeriod + probeTimeout; livenessFailedAfter == 0 || livenessFailedAfter > limit {
		t.Errorf("the liveness probe first failed %s after the hang, want by %s (isolated after %s)", livenessFailedAfter, limit, criticalAfter)
	}
	restartedAfter := restarts[0].Sub(hungAt).Round(100 * time.Millisecond)
	if want := livenessFailedAfter + (probeFailureThreshold-1)*probePeriod; restartedAfter < want {
		t.Errorf("restarted %s after the hang, before %d failed probes (%s)", restartedAfter, probeFailureThreshold, want)
	}

	// And the new process heartbeats and is passing again
	testutil.EventuallySeen(t, "writer-1 passing again", 15*time.Second, func() (bool, string) {
		s := heartbeatCheck(client, hung.id)
		return s == api.HealthPassing, s
	})
	passingAfter := since()
	for _, path := range []string{"/v1/agent/live", "/v1/agent/ready"} {
		if code, body := getProbe(hung.probe + path); code != http.StatusOK {
			t.Errorf("GET %s after the restart: %d %s, want 200", path, code, body)
		}
	}
	testutil.Eventually(t, "operations told it recovered", 10*time.Second, func() bool {
		return hook.count("agent.recovered", hung.id) >= 1
	})
	// And takes its tasks again
	testutil.EventuallySeen(t, "a task to writer-1's ingress answered by writer-1", 15*time.Second, func() (bool, string) {
		r := sendTask(taskClient, hung, -1)
		return r.by == hung.id, r.String()
	})
	time.Sleep(time.Second)
	load.stop()
	kl.stop()

	// And no task was lost: those sent to writer-1 while it was hung were
	// answered by its peer
	tasks := load.results()
	lost, failed, meanwhile, byPeer := 0, 0, 0, 0
	for _, r := range tasks {
		switch {
		case r.status == 0:
			lost++
		case r.status != http.StatusOK:
			failed++
		}
		if r.status != http.StatusOK && lost+failed <= 5 {
			t.Errorf("task %s", r)
		}
		if r.to == hung.id && r.sent.After(hungAt) && r.sent.Before(restarts[0]) {
			meanwhile++
			if r.by == writers[1].id {
				byPeer++
			}
		}
	}
	if lost+failed > 0 {
		t.Errorf("%d tasks lost and %d failed of %d", lost, failed, len(tasks))
	}
	if byPeer == 0 || byPeer != meanwhile {
		t.Errorf("%d of the %d tasks sent to writer-1's ingress while it was hung were answered by writer-2, want all", byPeer, meanwhile)
	}
	// And operations were notified exactly once, about writer-1 only
	if n := hook.count("agent.isolated", hung.id); n != 1 {
		t.Errorf("%d agent.isolated notifications for writer-1, want 1: %v", n, hook.all())
	}
	if n := hook.count("agent.isolated", writers[1].id); n != 0 {
		t.Errorf("%d agent.isolated notifications for writer-2, want 0", n)
	}
	// And the kubelet never restarted the healthy agent
	if probes, restarts, _ := writers[1].container.history(); len(restarts) != 0 || slices.ContainsFunc(probes, func(p probeResult) bool { return !p.ok }) {
		t.Errorf("writer-2 was restarted %d times; its probes: %+v", len(restarts), probes)
	}
	t.Logf("hung at 0 s: critical in Consul after %s, liveness failed after %s, restarted after %s, passing again after %s",
		criticalAfter, livenessFailedAfter, restartedAfter, passingAfter)
	t.Logf("tasks: %d sent, %d answered, %d lost, %d failed; %d sent to writer-1 while it was hung, %d of them answered by writer-2",
		len(tasks), len(tasks)-lost-failed, lost, failed, meanwhile, byPeer)
}

// buildGoAgent builds the Go example agent beside the sidecar binary.
func buildGoAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(sidecarBin), "agent-go")
	if err := testbin.BuildGo("./examples/go/agent", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// newWriter starts the sidecar of writer-i: no exec block, a probe
// listener, an ingress whose tasks go to a peer after 2 s without an
// answer, and a notify block with health.notify unset (so isolations
// notify it).
func newWriter(t *testing.T, i int, consulAddr, hookURL string) *writer {
	w := &writer{id: fmt.Sprintf("writer-%d", i), agentPort: testutil.FreePort(t), agentLogs: &testutil.SyncBuffer{}}
	controlPort, probePort, ingressPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	file := writeFile(t, t.TempDir(), w.id+".hcl", fmt.Sprintf(`
agent {
  name = "writer"
  id   = %[1]q
  port = %[2]d
}
listen {
  address       = "127.0.0.1:%[3]d"
  probe_address = "127.0.0.1:%[4]d"
}
ingress {
  address = "127.0.0.1:%[5]d"
  timeout = "2s"
}
consul {
  address = %[6]q
  sync_interval = "1s"
  deregister_critical_after = "1m"
}
health {
  heartbeat_interval = %[7]q
  missed_heartbeats  = %[8]d
  grace              = %[9]q
}
breaker "default" {
  consecutive_failures = 3
  open_for = "2s"
}
notify "ops" { webhook = "%[10]s/hook" }
`, w.id, w.agentPort, controlPort, probePort, ingressPort, consulAddr,
		heartbeatInterval.String(), missedHeartbeats, heartbeatGrace.String(), hookURL))
	w.control, _ = startHealthySidecar(t, w.id, file, controlPort)
	w.ingress = fmt.Sprintf("http://127.0.0.1:%d", ingressPort)
	w.probe = fmt.Sprintf("http://127.0.0.1:%d", probePort)
	return w
}

// heartbeatCheck is the status of the agent's heartbeat check in Consul.
func heartbeatCheck(client *api.Client, id string) string {
	checks, err := client.Agent().Checks()
	if err != nil {
		return "unknown: " + err.Error()
	}
	for _, c := range checks {
		if c.ServiceID == id && c.Name == "heartbeat" {
			return c.Status
		}
	}
	return "not registered"
}

// getProbe makes a GET on a probe listener and returns the status and
// answer (0 when it did not answer).
func getProbe(url string) (int, string) {
	c := http.Client{Timeout: probeTimeout}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<10))
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// opsHook is the operations webhook: it records every event it receives.
type opsHook struct {
	url    string
	mu     sync.Mutex
	events []map[string]any
}

func startOpsHook(t *testing.T) *opsHook {
	h := &opsHook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev) == nil {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// count is the number of events of the type received for the agent.
func (h *opsHook) count(typ, agentID string) int {
	n := 0
	for _, ev := range h.all() {
		if ev["type"] == typ && ev["agent_id"] == agentID {
			n++
		}
	}
	return n
}

// all returns the events received so far.
func (h *opsHook) all() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...)
}
