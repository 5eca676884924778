package sidecar

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// countSeries counts the metric samples whose line starts with prefix.
func countSeries(text, prefix string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// Instances that come and go in Consul leave nothing behind once gone for
// longer than max_open_for: the breakers, metric series and in-flight
// counters come back to those of the live instances, and an open breaker of
// an instance that left stops making the sidecar check warn.
func TestStateOfInstancesGoneFromConsulIsPruned(t *testing.T) {
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	consul := consultest.Start(t)
	c := consul.Client(t)

	cfg := consulUpstreamConfig(consul.HTTPAddr, "svc", sidecartest.Breaker(100*time.Millisecond)) // max_open_for 800ms
	s := runConsulSidecar(t, cfg)
	e := sidecartest.NewExpect(t, "http://"+s.Addr())
	sidecarCheck := func() string {
		checks, err := c.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		if ch, ok := checks[sidecarCheckID(cfg.Agent.ID)]; ok {
			return ch.Status
		}
		return ""
	}

	// Given an instance whose breaker is open, so the sidecar check warns
	bad := sidecartest.NewUpstream(t, "bad", http.StatusInternalServerError)
	registerInstance(t, c, "svc-bad", bad)
	testutil.Eventually(t, "the bad instance known", 5*time.Second, func() bool {
		return e.GET("/call/svc/x").Expect().Raw().Header.Get("X-Answered-By") == "bad"
	})
	for i := 0; i < 3; i++ {
		e.GET("/call/svc/x").Expect()
	}
	testutil.Eventually(t, "the sidecar check warning", 5*time.Second, func() bool { return sidecarCheck() == api.HealthWarning })

	// When it leaves and many instances come and go after it
	if err := c.Agent().ServiceDeregister("svc-bad"); err != nil {
		t.Fatal(err)
	}
	const rounds = 25
	for i := 0; i < rounds; i++ {
		u := sidecartest.NewUpstream(t, fmt.Sprintf("u%d", i), http.StatusOK)
		id := fmt.Sprintf("svc-%d", i)
		registerInstance(t, c, id, u)
		testutil.Eventually(t, id+" answering", 5*time.Second, func() bool {
			return e.GET("/call/svc/x").Expect().Raw().Header.Get("X-Answered-By") == u.Name
		})
		if i < rounds-1 {
			if err := c.Agent().ServiceDeregister(id); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Then once they have been gone for longer than max_open_for, only the live instance's state is left
	testutil.Eventually(t, "the state of departed instances pruned", 10*time.Second, func() bool { return s.breakers.Len() == 1 })
	last := fmt.Sprintf("svc@%s", hostOfName(t, s))
	if snaps := s.breakers.Snapshots(); snaps[0].Name != last {
		t.Fatalf("the breaker left is %s, want %s", snaps[0].Name, last)
	}
	text := scrape(e)
	if n := countSeries(text, "sidecar_breaker_state{"); n != 3 {
		t.Errorf("%d sidecar_breaker_state series, want 3 (one breaker)", n)
	}
	if n := countSeries(text, `sidecar_breaker_transitions_total{breaker="svc@`+bad.HostPort()); n != 0 {
		t.Errorf("the departed bad instance keeps %d transition series", n)
	}
	// And the departed instance's open breaker no longer makes the sidecar check warn
	testutil.Eventually(t, "the sidecar check passing", 5*time.Second, func() bool { return sidecarCheck() == api.HealthPassing })
}

// hostOfName is the host:port of the one live instance, from the sidecar's
// view of Consul.
func hostOfName(t *testing.T, s *Sidecar) string {
	t.Helper()
	for _, b := range s.breakers.Snapshots() {
		if _, hp, ok := strings.Cut(b.Name, "@"); ok {
			return hp
		}
	}
	t.Fatal("no breaker")
	return ""
}
