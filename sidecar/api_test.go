package sidecar

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavv/httpexpect/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/health"
)

// fakeRegistry records check updates; the real registrar is tested against
// a real Consul in the integration tests.
type fakeRegistry struct {
	mu     sync.Mutex
	checks map[string]fakeCheck
	svc    discovery.Service
}

type fakeCheck struct {
	status discovery.CheckStatus
	output string
}

func newFakeRegistry() *fakeRegistry { return &fakeRegistry{checks: map[string]fakeCheck{}} }

func (f *fakeRegistry) Run(ctx context.Context) { <-ctx.Done() }
func (f *fakeRegistry) SetCheck(id string, st discovery.CheckStatus, out string) {
	f.mu.Lock()
	f.checks[id] = fakeCheck{st, out}
	f.mu.Unlock()
}
func (f *fakeRegistry) Update(svc discovery.Service) {
	f.mu.Lock()
	f.svc = svc
	f.mu.Unlock()
}
func (f *fakeRegistry) Deregister(context.Context) error { return nil }
func (f *fakeRegistry) State() discovery.RegistrationState {
	return discovery.RegistrationState{Registered: true, ServiceID: "writer-1"}
}
func (f *fakeRegistry) check(id string) fakeCheck {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks[id]
}

func testConfig() *policies.Config {
	cfg := policies.Dev()
	cfg.Agent.Name, cfg.Agent.ID = "writer", "writer-1"
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Consul.Token = "s3cr3t-consul-token"
	cfg.Health.HeartbeatInterval = time.Hour
	return cfg
}

// startSidecar runs a sidecar with a fake registry until the test ends.
func startSidecar(t *testing.T, cfg *policies.Config, opts Options) (*Sidecar, *fakeRegistry, *httpexpect.Expect) {
	t.Helper()
	testutil.VerifyNoLeaks(t)
	reg := newFakeRegistry()
	opts.Registry = reg
	s, stop := runSidecar(t, cfg, opts)
	t.Cleanup(stop)
	e := sidecartest.NewExpect(t, "http://"+s.Addr())
	return s, reg, e
}

// runSidecar starts a sidecar (with a fake registry unless opts has one)
// and returns a function that shuts it down and waits for it.
func runSidecar(t *testing.T, cfg *policies.Config, opts Options) (*Sidecar, func()) {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = newFakeRegistry()
	}
	s, err := New(cfg, hclog.NewNullLogger(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return s, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestControlAPIHeartbeat(t *testing.T) {
	_, reg, e := startSidecar(t, testConfig(), Options{})

	// Given a sidecar waiting for its agent's first heartbeat
	st := reg.check("writer-1:heartbeat")
	if st.status != discovery.Critical {
		t.Fatalf("check before the first heartbeat: %s, want critical", st.status)
	}

	// When the agent sends an empty heartbeat, then it is healthy
	e.POST("/v1/heartbeat").Expect().Status(http.StatusOK).
		JSON().Object().HasValue("state", "healthy").HasValue("heartbeats", 1)
	if got := reg.check("writer-1:heartbeat").status; got != discovery.Passing {
		t.Fatalf("check after a heartbeat: %s, want passing", got)
	}

	// When it reports degraded with a note, metrics and progress
	e.POST("/v1/heartbeat").WithJSON(map[string]any{
		"status": "degraded", "note": "rate limited", "metrics": map[string]any{"queue": 7, "ok": true}, "progress": 12,
	}).Expect().Status(http.StatusOK).JSON().Object().
		HasValue("reported_status", "degraded").HasValue("progress", "12").HasValue("note", "rate limited")

	// Then Consul shows warning with a readable output
	c := reg.check("writer-1:heartbeat")
	if c.status != discovery.Warning || !strings.Contains(c.output, "Note: rate limited") || !strings.Contains(c.output, "queue=7") {
		t.Fatalf("check %s %q, want warning with note and metrics", c.status, c.output)
	}

	// And status says the same
	h := e.GET("/v1/status").Expect().Status(http.StatusOK).JSON().Object()
	h.Value("health").Object().HasValue("state", "healthy").HasValue("reported_status", "degraded")
	h.Value("agent").Object().HasValue("id", "writer-1").Value("tags").Array().ContainsAll("ai-agent")
	h.Value("registration").Object().HasValue("registered", true)
}

func TestControlAPIBadHeartbeats(t *testing.T) {
	_, reg, e := startSidecar(t, testConfig(), Options{})
	e.POST("/v1/heartbeat").WithJSON(map[string]any{"note": "first"}).Expect().Status(http.StatusOK)
	before := reg.check("writer-1:heartbeat")

	cases := []struct {
		name    string
		body    string
		status  int
		errType string
		mention string
	}{
		{"malformed JSON", `{"status":`, 400, "invalid_request", "not valid JSON"},
		{"not an object", `[1,2]`, 400, "invalid_request", "not valid JSON"},
		{"unknown status", `{"status":"great"}`, 400, "invalid_request", `"great" is not valid`},
		{"unknown field", `{"stauts":"ok"}`, 400, "invalid_request", "stauts"},
		{"nested metric", `{"metrics":{"a":{"b":1}}}`, 400, "invalid_request", `metric "a"`},
		{"object progress", `{"progress":{"x":1}}`, 400, "invalid_request", "progress must be a string or a number"},
		{"trailing data", `{"status":"ok"} {"status":"ok"}`, 400, "invalid_request", "after the JSON object"},
		{"too large", `{"note":"` + strings.Repeat("x", health.MaxHeartbeatBody) + `"}`, 413, "request_too_large", "larger than"},
		{"note too long", `{"note":"` + strings.Repeat("x", 1025) + `"}`, 400, "invalid_request", "note is"},
		{"nested too deep", `{"metrics":{"x":` + strings.Repeat("[", 129) + strings.Repeat("]", 129) + `}}`, 400, "invalid_request",
			"nested deeper than 128 levels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := e.POST("/v1/heartbeat").WithHeader("Content-Type", "application/json").WithText(tc.body).
				Expect().Status(tc.status).JSON().Object().Value("error").Object()
			obj.HasValue("type", tc.errType)
			obj.Value("message").String().Contains(tc.mention)
		})
	}
	// Nothing a bad request sent changed the agent's state.
	if after := reg.check("writer-1:heartbeat"); after != before {
		t.Fatalf("check changed by bad heartbeats: %+v → %+v", before, after)
	}
	e.GET("/v1/status").Expect().JSON().Object().Value("health").Object().
		HasValue("heartbeats", 1).HasValue("note", "first")
}

func TestControlAPIErrorsAndHealth(t *testing.T) {
	_, _, e := startSidecar(t, testConfig(), Options{})
	e.GET("/v1/health").Expect().Status(http.StatusOK).JSON().Object().HasValue("status", "ok")
	e.GET("/v1/nope").Expect().Status(http.StatusNotFound).JSON().Object().
		Value("error").Object().HasValue("type", "not_found")
	e.GET("/v1/heartbeat").Expect().Status(http.StatusMethodNotAllowed).JSON().Object().
		Value("error").Object().HasValue("type", "method_not_allowed")
	// -dev: nothing to reload
	e.POST("/v1/reload").Expect().Status(http.StatusConflict).JSON().Object().
		Value("error").Object().Value("message").String().Contains("-dev")
}

func TestStatusHasNoSecrets(t *testing.T) {
	cfg := testConfig()
	cfg.Notify = map[string]policies.Notify{"ops": {Webhook: "https://user:pw-secret@hooks.example.com/x?key=q-secret", Headers: map[string]string{"Authorization": "Bearer hdr-secret"}}}
	cfg.Health.Notify = []string{"ops"}
	_, _, e := startSidecar(t, cfg, Options{})
	body := e.GET("/v1/status").Expect().Status(http.StatusOK).Body().Raw()
	for _, secret := range []string{"s3cr3t-consul-token", "pw-secret", "q-secret", "hdr-secret"} {
		if strings.Contains(body, secret) {
			t.Errorf("status output contains the secret %q", secret)
		}
	}
}

func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	cfg := testConfig()
	var mu sync.Mutex
	next := func() (*policies.Config, error) { return nil, nil }
	reload := func() (*policies.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		return next()
	}
	s, reg, e := startSidecar(t, cfg, Options{Reload: reload})

	// Given a reload that fails with a positioned error
	mu.Lock()
	next = func() (*policies.Config, error) {
		return nil, policies.Diagnostics{{File: "sidecar.hcl", Line: 3, Column: 5, Key: "health.grace", Message: "invalid duration"}}
	}
	mu.Unlock()
	e.POST("/v1/reload").Expect().Status(http.StatusBadRequest).JSON().Object().
		Value("error").Object().HasValue("type", "invalid_config").
		Value("message").String().Contains("sidecar.hcl:3:5")
	if s.Config().Health.HeartbeatInterval != time.Hour {
		t.Fatal("a rejected reload changed the running config")
	}
	e.GET("/v1/status").Expect().JSON().Object().Value("last_reload").Object().HasValue("ok", false)

	// When a valid config with new tags and a new listen address is loaded
	good := testConfig()
	good.Agent.Tags = []string{"v2"}
	good.Health.HeartbeatInterval = 2 * time.Hour
	good.Listen.Address = "127.0.0.1:7999"
	mu.Lock()
	next = func() (*policies.Config, error) { return good, nil }
	mu.Unlock()
	obj := e.POST("/v1/reload").Expect().Status(http.StatusOK).JSON().Object()
	obj.HasValue("ok", true)
	obj.Value("restart_required").Array().ContainsOnly("listen")

	// Then the new values apply, and the listen address stays
	if got := s.Config().Health.HeartbeatInterval; got != 2*time.Hour {
		t.Fatalf("heartbeat interval %s after reload, want 2h", got)
	}
	if got := s.Config().Listen.Address; got != "127.0.0.1:0" {
		t.Fatalf("listen address %s after reload, want it kept", got)
	}
	reg.mu.Lock()
	tags := reg.svc.Tags
	reg.mu.Unlock()
	if strings.Join(tags, ",") != "ai-agent,v2" {
		t.Fatalf("registered tags %v after reload, want [ai-agent v2]", tags)
	}
}

func TestConcurrentReloadsApplyTheLastLoaded(t *testing.T) {
	// Given reloads that each load a newer configuration (a higher
	// breaker threshold) and take a while to load it
	var n atomic.Int32
	reload := func() (*policies.Config, error) {
		cfg := testConfig()
		b := cfg.Breakers["default"]
		b.ConsecutiveFailures = int(n.Add(1))
		cfg.Breakers["default"] = b
		time.Sleep(time.Millisecond)
		return cfg, nil
	}
	s, _, _ := startSidecar(t, testConfig(), Options{Reload: reload})

	// When many come at once
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = s.Reload() }()
	}
	wg.Wait()

	// Then the configuration in force is the last one loaded
	if got, want := s.Config().Breakers["default"].ConsecutiveFailures, int(n.Load()); got != want {
		t.Fatalf("breaker threshold in force %d, want the last loaded %d", got, want)
	}
}
