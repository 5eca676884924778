package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// TestOptionsNowIsTheSidecarsClock checks that what the sidecar reports
// in time (status, the heartbeat check, events) reads Options.Now.
func TestOptionsNowIsTheSidecarsClock(t *testing.T) {
	start := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := testutil.NewClock(start)
	cfg := testConfig()
	_, reg, e := startSidecar(t, cfg, Options{Now: clock.Now})

	// Given the clock moved on by 90s, when the agent heartbeats
	clock.Advance(90 * time.Second)
	e.POST("/v1/heartbeat").Expect().Status(200)

	// Then status, the check and the event stream use that clock
	st := e.GET("/v1/status").Expect().Status(200).JSON().Object()
	st.Value("sidecar").Object().HasValue("started_at", "2031-03-04T05:06:07Z").HasValue("uptime", "1m30s")
	st.Value("health").Object().HasValue("last_heartbeat", "2031-03-04T05:07:37Z")
	if c := reg.check("writer-1:heartbeat"); c.status != discovery.Passing ||
		!strings.Contains(c.output, "Heartbeat ok at 2031-03-04 05:07:37 UTC") {
		t.Fatalf("heartbeat check %s %q, want passing at the clock's time", c.status, c.output)
	}
	if c := reg.check("writer-1:sidecar"); !strings.Contains(c.output, "Checked 2031-03-04 05:0") {
		t.Fatalf("sidecar check %q, want the clock's time", c.output)
	}
}
