package sidecar

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
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
	waitFor(t, "probe heartbeats", 5*time.Second, func() bool {
		return reg.check("writer-1:heartbeat").status == discovery.Passing
	})
	if out := reg.check("writer-1:heartbeat").output; !strings.Contains(out, "(probe)") {
		t.Fatalf("check output %q does not say the heartbeat came from the probe", out)
	}
	e.GET("/v1/status").Expect().JSON().Object().Value("health").Object().
		HasValue("state", "healthy").HasValue("last_source", "probe")

	// When the agent stops answering 2xx, then it is isolated
	healthy.Store(false)
	waitFor(t, "isolation", 5*time.Second, func() bool {
		return reg.check("writer-1:heartbeat").status == discovery.Critical
	})
	e.GET("/v1/status").Expect().JSON().Object().Value("health").Object().
		HasValue("state", "isolated").HasValue("reason", "missed_heartbeats")

	// And when it answers again, it recovers
	healthy.Store(true)
	waitFor(t, "recovery", 5*time.Second, func() bool {
		return reg.check("writer-1:heartbeat").status == discovery.Passing
	})
}
