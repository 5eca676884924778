package discovery_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestRegistrationVisibleInCatalog(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)

	// Given a service whose heartbeat check was set before Run
	svc := testService("writer")
	hb, sc := svc.Checks[0], svc.Checks[1]
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr}, svc, func(r *discovery.Registrar) {
		r.SetCheck(hb.ID, discovery.Passing, "heartbeat received 1s ago")
	})

	// When Run has registered it and pushed the check outputs (Consul takes
	// no output at registration, so they follow a moment later)
	var got discovery.ServiceEntry
	testutil.EventuallySeen(t, "instance in /v1/health/service", 10*time.Second, func() (bool, string) {
		e, ok, detail := instance(c, svc.Name, svc.ID)
		got = e
		outputs := 0
		for _, ch := range e.Checks {
			if ch.ServiceID == svc.ID && ch.Output != "" {
				outputs++
			}
		}
		return ok && outputs == len(svc.Checks), detail
	})

	// Then the catalog shows it as configured, with the desired check states
	checks := map[string]discovery.CheckInfo{}
	for _, ch := range got.Checks {
		checks[ch.CheckID] = ch
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"name", got.Name, svc.Name},
		{"address", got.Address, svc.Address},
		{"port", got.Port, svc.Port},
		{"tags", strings.Join(got.Tags, ","), strings.Join(svc.Tags, ",")},
		{"meta", got.Meta["version"], "1.2.3"},
		{"heartbeat check name", checks[hb.ID].Name, "heartbeat"},
		{"heartbeat status", checks[hb.ID].Status, discovery.Passing},
		{"heartbeat output", checks[hb.ID].Output, "heartbeat received 1s ago"},
		{"sidecar check name", checks[sc.ID].Name, "sidecar"},
		{"sidecar status", checks[sc.ID].Status, discovery.Critical},
		{"sidecar output", checks[sc.ID].Output, discovery.WaitingOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	st := r.State()
	if !st.Registered || st.Registrations != 1 || st.ServiceID != svc.ID || st.ConsulAddress != "http://"+a.HTTPAddr {
		t.Errorf("State = %+v, want registered once at http://%s", st, a.HTTPAddr)
	}
}

func TestSetCheckReachesConsul(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)
	svc := testService("checker")
	hb := svc.Checks[0]
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr}, svc, nil)

	tests := []struct {
		status discovery.CheckStatus
		output string
	}{
		{discovery.Passing, "heartbeat received"},
		{discovery.Warning, "heartbeat late by 3s"},
		{discovery.Critical, "2 heartbeats missed; agent isolated"},
		{discovery.Passing, "heartbeat received again; agent recovered"},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			// When the sidecar sets the check
			r.SetCheck(hb.ID, tt.status, tt.output)

			// Then the agent API and the catalog show that status and output
			testutil.EventuallySeen(t, "agent check", 5*time.Second, checkIs(c, svc.ID, hb.ID, tt.status, tt.output))
			testutil.EventuallySeen(t, "catalog check", 5*time.Second, func() (bool, string) {
				e, ok, detail := instance(c, svc.Name, svc.ID)
				i := slices.IndexFunc(e.Checks, func(ch discovery.CheckInfo) bool { return ch.CheckID == hb.ID })
				return ok && i >= 0 && e.Checks[i].Status == tt.status && e.Checks[i].Output == tt.output, detail
			})
		})
	}
}

func TestCoalescedUpdatesEndWithTheLatest(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)
	svc := testService("burst")
	hb := svc.Checks[0]
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr}, svc, nil)
	testutil.EventuallySeen(t, "registered", 10*time.Second, func() (bool, string) {
		st := r.State()
		return st.Registered, st.LastError
	})

	// When many updates arrive at once
	for i := range 200 {
		r.SetCheck(hb.ID, discovery.Warning, "update "+strings.Repeat("x", i%7))
	}
	r.SetCheck(hb.ID, discovery.Passing, "the last word")

	// Then Consul ends up with the last one
	testutil.EventuallySeen(t, "latest state", 5*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Passing, "the last word"))
}

func TestTTLExpiresWithoutUpdates(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)

	// Given a heartbeat check with a 2s TTL that was passing once
	svc := testService("sleepy")
	svc.Checks = svc.Checks[:1]
	svc.Checks[0].TTL = 2 * time.Second
	hb := svc.Checks[0]
	startRegistrar(t, discovery.Config{Address: a.HTTPAddr}, svc, func(r *discovery.Registrar) {
		r.SetCheck(hb.ID, discovery.Passing, "heartbeat received")
	})
	testutil.EventuallySeen(t, "passing", 10*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Passing, "heartbeat received"))
	passingAt := time.Now()

	// When nothing updates it
	// Then Consul marks it critical by itself once the TTL runs out
	testutil.EventuallySeen(t, "critical after TTL", 10*time.Second, func() (bool, string) {
		ch, ok, detail := agentCheck(c, svc.ID, hb.ID)
		return ok && ch.Status == discovery.Critical && strings.Contains(ch.Output, "TTL expired"), detail
	})
	t.Logf("check went critical %s after it was seen passing", time.Since(passingAt).Round(100*time.Millisecond))
}

func TestDeregisterRemovesService(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)
	svc := testService("leaver")
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr}, svc, nil)
	testutil.EventuallySeen(t, "registered", 10*time.Second, func() (bool, string) {
		_, ok, detail := instance(c, svc.Name, svc.ID)
		return ok, detail
	})

	// When the sidecar shuts down: Run stops, then Deregister
	r.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}

	// Then the service and its checks are gone, and State says so
	if _, ok, _ := instance(c, svc.Name, svc.ID); ok {
		t.Errorf("service %q still in the catalog", svc.ID)
	}
	if checks, err := c.AgentChecks(ctx, svc.ID); err != nil || len(checks) != 0 {
		t.Errorf("agent checks = %+v, %v; want none", checks, err)
	}
	if st := r.State(); st.Registered {
		t.Errorf("State().Registered = true after Deregister")
	}
	// And a second Deregister is harmless
	if err := r.Deregister(ctx); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
}

func TestDeregisterWhileRunning(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)
	svc := testService("early")
	hb := svc.Checks[0]
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr, SyncInterval: 200 * time.Millisecond}, svc, nil)
	testutil.EventuallySeen(t, "registered", 10*time.Second, func() (bool, string) {
		_, ok, detail := instance(c, svc.Name, svc.ID)
		return ok, detail
	})

	// When Deregister is called while Run still runs, and heartbeats go on
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	r.SetCheck(hb.ID, discovery.Passing, "late heartbeat")

	// Then Run does not register the service again
	if testutil.Poll(1500*time.Millisecond, func() bool { // several sync intervals
		_, ok, _ := instance(c, svc.Name, svc.ID)
		return ok
	}) {
		t.Fatalf("service registered again after Deregister")
	}
}

func TestUpdateReregisters(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)

	tests := []struct {
		name   string
		change func(*discovery.Service)
	}{
		{name: "new tags", change: func(s *discovery.Service) { s.Tags = []string{"ai-agent", "writer", "gpu"} }},
		{name: "new ID", change: func(s *discovery.Service) { s.ID = s.Name + "-2" }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a registered service whose heartbeat is passing
			svc := testService("reloaded" + string(rune('a'+i)))
			hb := svc.Checks[0]
			r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr}, svc, func(r *discovery.Registrar) {
				r.SetCheck(hb.ID, discovery.Passing, "heartbeat received")
			})
			testutil.EventuallySeen(t, "registered", 10*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Passing, "heartbeat received"))

			// When the config is reloaded with a changed definition
			newSvc := svc
			tt.change(&newSvc)
			r.Update(newSvc)

			// Then Consul shows the new definition, the check keeps its state,
			// and an old ID is gone
			testutil.EventuallySeen(t, "new definition", 5*time.Second, func() (bool, string) {
				e, ok, detail := instance(c, newSvc.Name, newSvc.ID)
				return ok && slices.Equal(e.Tags, newSvc.Tags), detail
			})
			testutil.EventuallySeen(t, "check state kept", 5*time.Second, checkIs(c, newSvc.ID, hb.ID, discovery.Passing, "heartbeat received"))
			if newSvc.ID != svc.ID {
				testutil.EventuallySeen(t, "old ID removed", 5*time.Second, func() (bool, string) {
					_, ok, detail := instance(c, svc.Name, svc.ID)
					return !ok, detail
				})
			}
			if st := r.State(); st.Registrations != 2 || st.ServiceID != newSvc.ID {
				t.Errorf("State = %+v, want 2 registrations of %q", st, newSvc.ID)
			}
		})
	}
}
