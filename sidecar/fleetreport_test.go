package sidecar

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/report"
)

// TestFleetReportFollowsTheAgent: what `sidecar fleet` reads is in Consul
// KV within a second of the change, on a Consul whose check outputs reach
// the catalog only every check_update_interval (its default, 5 minutes).
func TestFleetReportFollowsTheAgent(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	agent := consultest.Start(t, consultest.DefaultCheckUpdateInterval())
	client, err := discovery.NewClient(discovery.Config{Address: agent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	cfg := policies.Dev()
	cfg.Agent.Name, cfg.Agent.ID = "writer", "writer-1"
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Consul.Address = agent.HTTPAddr
	cfg.Health = policies.Health{HeartbeatInterval: 300 * time.Millisecond, MissedHeartbeats: 1, Grace: 100 * time.Millisecond}
	key := report.Key(cfg.Consul.FleetPrefix, "writer-1")
	if key != "sidecar/fleet/writer-1" {
		t.Fatalf("report key %q, want the documented default sidecar/fleet/writer-1", key)
	}
	read := func() (report.Report, bool) {
		pairs, _, err := client.KVList(context.Background(), key, 0, 0)
		if err != nil || len(pairs) != 1 {
			return report.Report{}, false
		}
		r, err := report.Decode(pairs[0].Value)
		return r, err == nil
	}

	s, err := New(cfg, hclog.NewNullLogger(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Given a sidecar whose agent has not heartbeaten yet, its report says so
	var r report.Report
	testutil.Eventually(t, "the first report", 10*time.Second, func() bool { var ok bool; r, ok = read(); return ok })
	if r.Agent != "writer" || r.LastHeartbeat != nil || r.Updated.IsZero() {
		t.Fatalf("first report %+v", r)
	}

	// When the agent heartbeats, the report has its time at once
	before := time.Now().Add(-time.Second)
	sidecartest.NewExpect(t, "http://"+s.Addr()).POST("/v1/heartbeat").Expect().Status(200)
	testutil.Eventually(t, "the heartbeat in the report", 2*time.Second, func() bool {
		r, _ = read()
		return r.LastHeartbeat != nil && r.LastHeartbeat.After(before)
	})

	// When it stops, the isolation is in the report as soon as it happens
	testutil.Eventually(t, "the isolation in the report", 3*time.Second, func() bool { r, _ = read(); return r.Isolated })

	// And a stopped sidecar leaves no report behind
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	if _, ok := read(); ok {
		t.Fatal("the report is still in Consul KV after the sidecar stopped")
	}
}
