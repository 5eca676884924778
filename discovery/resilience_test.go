package discovery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// fakeToken is sent to dev agents, which run without ACLs and accept any
// token; it must never show up in errors, State or logs.
const fakeToken = "s3cr3t-token-value"

func TestReregisterAfterConsulLostState(t *testing.T) {
	const syncInterval = time.Second
	tests := []struct {
		name string
		// duringOutage runs while Consul is down, before it comes back
		duringOutage func(r *discovery.Registrar, checkID string)
		wantStatus   discovery.CheckStatus
		wantOutput   string
	}{
		{
			name:       "found missing by the periodic check",
			wantStatus: discovery.Warning,
			wantOutput: "heartbeat late by 3s",
		},
		{
			name: "heartbeat during the outage",
			duringOutage: func(r *discovery.Registrar, checkID string) {
				r.SetCheck(checkID, discovery.Passing, "heartbeat received during outage")
			},
			wantStatus: discovery.Passing,
			wantOutput: "heartbeat received during outage",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := consultest.Start(t)
			c := newClient(t, a)

			// Given a registered service whose heartbeat check is warning
			svc := testService("phoenix")
			hb := svc.Checks[0]
			r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr, SyncInterval: syncInterval}, svc, nil)
			r.SetCheck(hb.ID, discovery.Warning, "heartbeat late by 3s")
			testutil.EventuallySeen(t, "registered", 10*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Warning, "heartbeat late by 3s"))

			// When Consul restarts and loses its state
			a.Stop()
			if tt.duringOutage != nil {
				tt.duringOutage(r.Registrar, hb.ID)
			}
			a.Restart(t)
			back := time.Now()

			// Then the service is registered again soon, with the latest
			// desired status and output
			testutil.EventuallySeen(t, "registered again", syncInterval+10*time.Second, checkIs(c, svc.ID, hb.ID, tt.wantStatus, tt.wantOutput))
			t.Logf("registered again %s after Consul came back", time.Since(back).Round(10*time.Millisecond))
			testutil.EventuallySeen(t, "in the catalog again", 5*time.Second, func() (bool, string) {
				_, ok, detail := instance(c, svc.Name, svc.ID)
				return ok, detail
			})
			if st := r.State(); !st.Registered || st.Registrations < 2 {
				t.Errorf("State = %+v, want registered with at least 2 registrations", st)
			}
		})
	}
}

func TestReregisterAfterServiceRemovedBehindItsBack(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := newClient(t, a)
	svc := testService("removed")
	hb := svc.Checks[0]
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr, SyncInterval: time.Minute}, svc, nil)
	r.SetCheck(hb.ID, discovery.Passing, "ok")
	testutil.EventuallySeen(t, "registered", 10*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Passing, "ok"))

	// Given someone deregistered the service directly in Consul
	if err := a.Client(t).Agent().ServiceDeregister(svc.ID); err != nil {
		t.Fatalf("deregister behind its back: %v", err)
	}

	// When the next heartbeat arrives (long before the periodic check)
	r.SetCheck(hb.ID, discovery.Passing, "ok again")

	// Then the failed TTL update makes it register again at once
	testutil.EventuallySeen(t, "registered again", 5*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Passing, "ok again"))
	if st := r.State(); st.Registrations != 2 {
		t.Errorf("Registrations = %d, want 2", st.Registrations)
	}
}

func TestRegistersOnceConsulAnswers(t *testing.T) {
	t.Parallel()
	// Given the address of a Consul that is not running yet
	a := consultest.Start(t)
	a.Stop()
	c := newClient(t, a)

	svc := testService("patient")
	hb := svc.Checks[0]
	r := startRegistrar(t, discovery.Config{Address: a.HTTPAddr, Token: fakeToken}, svc, func(r *discovery.Registrar) {
		r.SetCheck(hb.ID, discovery.Passing, "heartbeat received")
	})

	// When Run cannot reach it
	// Then State shows the error, without the token
	var st discovery.RegistrationState
	testutil.EventuallySeen(t, "an error in State", 5*time.Second, func() (bool, string) {
		st = r.State()
		return st.LastError != "", "no error yet"
	})
	if st.Registered || st.Registrations != 0 || st.LastErrorAt.IsZero() {
		t.Errorf("State while Consul is down = %+v, want unregistered with an error time", st)
	}
	if !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("LastError = %q, want the connection error", st.LastError)
	}
	if strings.Contains(st.LastError, fakeToken) {
		t.Errorf("LastError contains the token: %q", st.LastError)
	}

	// When Consul starts on that address after Run has retried a few times
	testutil.EventuallySeen(t, "retries with backoff", 5*time.Second, func() (bool, string) {
		return strings.Contains(r.logs.String(), "consul sync failed again"), "no retry logged yet"
	})
	a.Restart(t)
	back := time.Now()

	// Then the service is registered with the desired check state
	testutil.EventuallySeen(t, "registered", 15*time.Second, checkIs(c, svc.ID, hb.ID, discovery.Passing, "heartbeat received"))
	t.Logf("registered %s after Consul came up", time.Since(back).Round(10*time.Millisecond))
	if st := r.State(); !st.Registered || st.Registrations != 1 {
		t.Errorf("State = %+v, want registered once", st)
	}

	// And the outage was logged once as a warning, then "registered", and
	// the token appears nowhere in the logs
	r.stop()
	logs := r.logs.String()
	if n := strings.Count(logs, "[WARN]"); n != 1 {
		t.Errorf("%d warnings logged, want 1 for the outage:\n%s", n, logs)
	}
	if !strings.Contains(logs, "registered:") {
		t.Errorf("no \"registered\" log line:\n%s", logs)
	}
	if strings.Contains(logs, fakeToken) {
		t.Errorf("logs contain the token:\n%s", logs)
	}
}
