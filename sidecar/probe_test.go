package sidecar

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

func TestProbeCountsAsHeartbeat(t *testing.T) {
	// Given an agent that cannot heartbeat but answers /healthz
	var healthy atomic.Bool
	healthy.Store(true)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer agent.Close()
	cfg := testConfig()
	cfg.Health.HeartbeatInterval = 100 * time.Millisecond
	cfg.Health.Grace = 50 * time.Millisecond
	cfg.Health.Probe = &policies.Probe{URL: agent.URL + "/healthz", Interval: 50 * time.Millisecond, Timeout: time.Second}
	_, reg, e := startSidecar(t, cfg, Options{})

	// Then each answer counts as a heartbeat
	testutil.Eventually(t, "probe heartbeats", 5*time.Second, func() bool {
		return reg.check("writer-1:heartbeat").status == discovery.Passing
	})
	if out := reg.check("writer-1:heartbeat").output; !strings.Contains(out, "(probe)") {
		t.Fatalf("check output %q does not say the heartbeat came from the probe", out)
	}
	e.GET("/v1/status").Expect().JSON().Object().Value("health").Object().
		HasValue("state", "healthy").HasValue("last_source", "probe")

	// When the agent stops answering 2xx, then it is isolated
	healthy.Store(false)
	testutil.Eventually(t, "isolation", 5*time.Second, func() bool {
		return reg.check("writer-1:heartbeat").status == discovery.Critical
	})
	e.GET("/v1/status").Expect().JSON().Object().Value("health").Object().
		HasValue("state", "isolated").HasValue("reason", "missed_heartbeats")

	// And when it answers again, it recovers
	healthy.Store(true)
	testutil.Eventually(t, "recovery", 5*time.Second, func() bool {
		return reg.check("writer-1:heartbeat").status == discovery.Passing
	})
}

// TestReloadReplacesTheProber checks that a reload changing the probe's URL
// stops the prober of the old one before the new one starts, also when
// reloads come at once: the old URL is probed no more.
func TestReloadReplacesTheProber(t *testing.T) {
	var oldHits, newHits atomic.Int32
	oldAgent := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { oldHits.Add(1) }))
	defer oldAgent.Close()
	newAgent := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { newHits.Add(1) }))
	defer newAgent.Close()
	probe := func(url string) *policies.Config {
		cfg := testConfig()
		cfg.Health.Probe = &policies.Probe{URL: url + "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second}
		return cfg
	}
	// Given a sidecar probing the old URL
	s, _, _ := startSidecar(t, probe(oldAgent.URL), Options{Reload: func() (*policies.Config, error) {
		return probe(newAgent.URL), nil
	}})
	testutil.Eventually(t, "the old URL probed", 5*time.Second, func() bool { return oldHits.Load() > 0 })

	// When reloads to the new URL come at once
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Reload(); err != nil {
				t.Errorf("Reload: %v", err)
			}
		}()
	}
	wg.Wait()

	// Then only the new URL is probed
	testutil.Eventually(t, "the new URL probed", 5*time.Second, func() bool { return newHits.Load() > 0 })
	before, newBefore := oldHits.Load(), newHits.Load()
	testutil.Eventually(t, "five more probes of the new URL", 5*time.Second, func() bool { return newHits.Load() >= newBefore+5 })
	if n := oldHits.Load(); n != before {
		t.Fatalf("the old URL was probed %d more times after the reload", n-before)
	}
}
