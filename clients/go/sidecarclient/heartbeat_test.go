package sidecarclient

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// beats is a fake sidecar whose heartbeat endpoint can be told to fail.
type beats struct {
	mu     sync.Mutex
	down   bool
	bodies []Heartbeat
}

func (b *beats) handle(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var hb Heartbeat
	_ = json.NewDecoder(r.Body).Decode(&hb)
	b.bodies = append(b.bodies, hb)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"state":"healthy","next_due":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano) + `"}`))
}

func (b *beats) start(t *testing.T) *Client {
	srv := httptest.NewServer(http.HandlerFunc(b.handle))
	t.Cleanup(srv.Close)
	return New(srv.URL, "")
}

func (b *beats) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

func (b *beats) lastBody() (Heartbeat, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bodies) == 0 {
		return Heartbeat{}, 0
	}
	return b.bodies[len(b.bodies)-1], len(b.bodies)
}

func TestHeartbeatLoopSendsWhatIsSetAndOutlivesAnAbsentSidecar(t *testing.T) {
	b := &beats{}
	c := b.start(t)
	logs := &testutil.SyncBuffer{}
	hb := c.StartHeartbeats(context.Background(), HeartbeatOptions{
		Every: 20 * time.Millisecond, Note: "starting", Progress: 3,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	defer hb.Stop()

	// The first heartbeat goes at once, with the options' values.
	testutil.Eventually(t, "the first heartbeat", 5*time.Second, func() bool { _, n := b.lastBody(); return n > 0 })
	if first, _ := b.lastBody(); first.Note != "starting" || first.Progress != 3.0 {
		t.Errorf("first heartbeat %+v, want the note and progress given", first)
	}
	if hb.Last() == nil || hb.Last().State != "healthy" {
		t.Errorf("Last() = %+v, want the sidecar's answer", hb.Last())
	}

	// What is set goes with the next heartbeats.
	hb.SetNote("handled 2 tasks")
	hb.SetMetrics(map[string]any{"tasks": 2})
	if got := hb.AddProgress(2); got != 5 {
		t.Errorf("AddProgress = %d, want 5", got)
	}
	if err := hb.SetStatus("degraded"); err != nil {
		t.Fatal(err)
	}
	if err := hb.SetStatus("great"); err == nil {
		t.Error("SetStatus took a status the sidecar refuses")
	}
	testutil.Eventually(t, "a heartbeat with what was set", 5*time.Second, func() bool {
		last, _ := b.lastBody()
		return last.Note == "handled 2 tasks" && last.Progress == 5.0 && last.Status == "degraded" && last.Metrics["tasks"] == 2.0
	})

	// Given the sidecar fails: one warning, and the loop goes on.
	b.setDown(true)
	testutil.Eventually(t, "a warning", 5*time.Second, func() bool { return strings.Contains(logs.String(), "heartbeat failed") })
	_, before := b.lastBody()
	time.Sleep(100 * time.Millisecond) // several turns while the sidecar is away
	if n := strings.Count(logs.String(), "heartbeat failed"); n != 1 {
		t.Errorf("%d warnings, want one per outage:\n%s", n, logs.String())
	}
	// When it is back, then heartbeats are answered again.
	b.setDown(false)
	testutil.Eventually(t, "heartbeats after the outage", 5*time.Second, func() bool { _, n := b.lastBody(); return n > before })
	testutil.Eventually(t, "the recovery logged", 5*time.Second, func() bool { return strings.Contains(logs.String(), "answered again") })

	hb.Stop()
	_, stopped := b.lastBody()
	hb.Stop() // twice is fine
	time.Sleep(60 * time.Millisecond)
	if _, n := b.lastBody(); n != stopped {
		t.Errorf("%d heartbeats after Stop", n-stopped)
	}
}

func TestHeartbeatLoopEndsWithItsContext(t *testing.T) {
	b := &beats{}
	c := b.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	hb := c.StartHeartbeats(ctx, HeartbeatOptions{Every: time.Hour})
	testutil.Eventually(t, "the first heartbeat", 5*time.Second, func() bool { _, n := b.lastBody(); return n > 0 })
	cancel()
	done := make(chan struct{})
	go func() { hb.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop outlived its context")
	}
}
