package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
)

// TestProberLeavesNoConnectionBehind checks that a stopped prober keeps no
// keep-alive connection to an agent that is still up.
func TestProberLeavesNoConnectionBehind(t *testing.T) {
	agent := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(agent.Close)
	// The check runs before the agent stops: only the prober's own
	// connection could be left.
	testutil.VerifyNoLeaks(t)
	beats := make(chan Heartbeat, 1)
	p := NewProber(hclog.NewNullLogger(), policies.Probe{URL: agent.URL + "/healthz", Interval: time.Hour, Timeout: time.Second},
		func(hb Heartbeat) { beats <- hb })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	select {
	case hb := <-beats:
		if hb.Source != SourceProbe || hb.Status != ReportOK {
			t.Errorf("probe heartbeat %+v, want an ok heartbeat from the probe", hb)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no probe answered")
	}
	cancel()
	<-done
}
