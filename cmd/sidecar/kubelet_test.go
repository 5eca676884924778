//go:build e2e && unix

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// Kubernetes' defaults for a probe that sets none of these fields
// (k8s.io/api/core/v1.Probe): the kubelet probes every periodSeconds,
// waits timeoutSeconds for an answer, restarts the container after
// failureThreshold failures in a row, and counts the container alive again
// after successThreshold successes (which must be 1 for a liveness probe).
const (
	probePeriod           = 10 * time.Second
	probeTimeout          = 1 * time.Second
	probeFailureThreshold = 3
	probeSuccessThreshold = 1
)

// kubeletStopGrace stands for the pod's terminationGracePeriodSeconds
// (30 s by default): the kubelet sends SIGTERM, then SIGKILL once it has
// passed. A stopped (SIGSTOP) process never acts on the SIGTERM, so the
// test waits this long for nothing; it is shorter than Kubernetes' default
// to keep the test short.
const kubeletStopGrace = 2 * time.Second

// agentProc is one agent process, as a container the kubelet runs.
type agentProc = testbin.Process

// startAgentProc runs argv with exactly env (nothing inherited: no
// SIDECAR_TOKEN of the test's environment reaches the agent), its output
// in logs.
func startAgentProc(argv, env []string, logs *testutil.SyncBuffer) (*agentProc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	p, err := testbin.StartCmd(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return p, nil
}

// probeResult is one liveness probe the kubelet made.
type probeResult struct {
	at     time.Time
	ok     bool
	detail string // the status and answer, or the error
}

// container is one agent the kubelet keeps alive by its liveness probe.
type container struct {
	name    string
	liveURL string                     // the liveness probe: GET on the sidecar's probe listener
	start   func() (*agentProc, error) // starts the agent (again)

	mu       sync.Mutex
	proc     *agentProc
	probes   []probeResult
	restarts []time.Time // when each restart was done (the new process started)
	err      error       // why a restart failed; the kubelet stops probing then
}

// current is the agent process running now.
func (c *container) current() *agentProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// history returns the probes made and the restarts done so far, and why a
// restart failed.
func (c *container) history() ([]probeResult, []time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]probeResult(nil), c.probes...), append([]time.Time(nil), c.restarts...), c.err
}

// kubelet probes each container's liveness at Kubernetes' default cadence
// and restarts a container after probeFailureThreshold failures in a row,
// as the kubelet restarts a container whose liveness probe fails under
// restartPolicy Always. Only the first restart of a container comes at
// once in Kubernetes (later ones back off from 10 s, doubling); the test
// expects one.
type kubelet struct {
	client *http.Client
	stopCh chan struct{}
	wg     sync.WaitGroup
}

// startKubelet starts probing the containers (the first probe at once, as
// with initialDelaySeconds 0) until the test ends, when it stops each
// container's current process.
func startKubelet(t *testing.T, containers ...*container) *kubelet {
	k := &kubelet{
		// The kubelet's HTTP probe: its own timeout, no connection reuse.
		client: &http.Client{Timeout: probeTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
		stopCh: make(chan struct{}),
	}
	for _, c := range containers {
		k.wg.Add(1)
		go k.run(c)
	}
	t.Cleanup(func() {
		k.stop()
		for _, c := range containers {
			if p := c.current(); p != nil {
				p.Kill()
			}
		}
	})
	return k
}

// stop ends the probing; it may be called again.
func (k *kubelet) stop() {
	select {
	case <-k.stopCh:
	default:
		close(k.stopCh)
	}
	k.wg.Wait()
}

// run is the probe worker of one container.
func (k *kubelet) run(c *container) {
	defer k.wg.Done()
	tick := time.NewTicker(probePeriod)
	defer tick.Stop()
	failures, successes := 0, 0
	for {
		r := k.probe(c.liveURL)
		c.mu.Lock()
		c.probes = append(c.probes, r)
		c.mu.Unlock()
		if r.ok {
			if successes++; successes >= probeSuccessThreshold {
				failures = 0
			}
		} else {
			failures, successes = failures+1, 0
		}
		if failures >= probeFailureThreshold {
			// Liveness failed: kill the container and start it again. The
			// probe's counts start over with the new container.
			// as a container runtime does: SIGTERM, then SIGKILL after the grace
			c.current().StopWithin(kubeletStopGrace)
			p, err := c.start()
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.proc = p
			c.restarts = append(c.restarts, time.Now())
			c.mu.Unlock()
			failures, successes = 0, 0
		}
		select {
		case <-k.stopCh:
			return
		case <-tick.C:
		}
	}
}

// probe makes one HTTP liveness probe as the kubelet does: a GET that
// succeeds with a status from 200 to 399 within probeTimeout.
func (k *kubelet) probe(url string) probeResult {
	r := probeResult{at: time.Now()}
	resp, err := k.client.Get(url)
	if err != nil {
		r.detail = err.Error()
		return r
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<10)) // the kubelet reads up to 10 KiB
	r.ok = resp.StatusCode >= 200 && resp.StatusCode < 400
	r.detail = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	return r
}
