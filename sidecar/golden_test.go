package sidecar_test

// Golden tests of what users of a sidecar see: the /v1/status JSON, the
// /v1/breakers JSON, both Consul check outputs and the webhook bodies,
// through a scripted life (started, heartbeat, breaker opened, isolated,
// recovered) on a fake clock. They use only the public surface (New,
// Options{Registry, Discovery, Now}, Addr, Run and the control API) so they
// hold across a restructuring of the package's insides.
//
// go test -run Golden ./sidecar/ -update rewrites testdata/golden/*; review
// the diff as a user would read it.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pmezard/go-difflib/difflib"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/sidecartest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenT0 is the fake clock's start: a fixed instant, so every time the
// sidecar computes from its clock is the same on every run.
var goldenT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// checkUpdate is one SetCheck call.
type checkUpdate struct {
	ID     string
	Status discovery.CheckStatus
	Output string
}

// recordingRegistry stands in for Consul (Options.Registry): it records
// every check update and reports a registered service.
type recordingRegistry struct {
	mu      sync.Mutex
	updates []checkUpdate
}

func (r *recordingRegistry) Run(ctx context.Context) { <-ctx.Done() }
func (r *recordingRegistry) SetCheck(id string, st discovery.CheckStatus, out string) {
	r.mu.Lock()
	r.updates = append(r.updates, checkUpdate{id, st, out})
	r.mu.Unlock()
}
func (r *recordingRegistry) Update(discovery.Service)         {}
func (r *recordingRegistry) Deregister(context.Context) error { return nil }
func (r *recordingRegistry) State() discovery.RegistrationState {
	return discovery.RegistrationState{Registered: true, ConsulAddress: "127.0.0.1:8500", ServiceID: "writer-1",
		LastRegistered: goldenT0, Registrations: 1}
}

// last returns the latest update of the check whose ID ends in ":"+name.
func (r *recordingRegistry) last(name string) (checkUpdate, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.updates) - 1; i >= 0; i-- {
		if strings.HasSuffix(r.updates[i].ID, ":"+name) {
			return r.updates[i], true
		}
	}
	return checkUpdate{}, false
}

// checkIDs returns the distinct check IDs updated, in order of first update.
func (r *recordingRegistry) checkIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	seen := map[string]bool{}
	for _, u := range r.updates {
		if !seen[u.ID] {
			seen[u.ID] = true
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// staticDiscovery stands in for the Consul watcher (Options.Discovery):
// fixed instances per service.
type staticDiscovery map[string][]discovery.Instance

func (d staticDiscovery) Instances(q discovery.Query) discovery.InstanceSet {
	ins, ok := d[q.Service]
	return discovery.InstanceSet{Instances: ins, Known: ok}
}

func (d staticDiscovery) Wait(_ context.Context, q discovery.Query) discovery.InstanceSet {
	return d.Instances(q)
}

// webhookSink is the notify webhook: it keeps every body it receives.
type webhookSink struct {
	mu     sync.Mutex
	bodies []json.RawMessage
}

func (w *webhookSink) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.bodies = append(w.bodies, body)
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

func (w *webhookSink) received() []json.RawMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]json.RawMessage(nil), w.bodies...)
}

// goldenSidecar is a running sidecar of testdata/golden/sidecar.hcl and
// what the test observes it through.
type goldenSidecar struct {
	t        *testing.T
	s        *sidecar.Sidecar
	clock    *testutil.Clock
	registry *recordingRegistry
	webhook  *webhookSink
	client   *http.Client
	base     string
	// boundPorts names the ports bound for this run (listeners of the
	// sidecar and of the test's servers), for maskVolatile.
	boundPorts map[string]string
}

func startGoldenSidecar(t *testing.T) *goldenSidecar {
	t.Helper()
	g := &goldenSidecar{t: t, clock: testutil.NewClock(goldenT0), registry: &recordingRegistry{},
		webhook: &webhookSink{}, boundPorts: map[string]string{}}

	// The servers stop after the sidecar (cleanups run last first).
	hook := httptest.NewServer(g.webhook)
	t.Cleanup(hook.Close)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "researched")
	}))
	t.Cleanup(upstream.Close)
	t.Setenv("GOLDEN_WEBHOOK_URL", hook.URL+"/hooks/agents")

	cfg, err := policies.Load(filepath.Join("testdata", "golden", "sidecar.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	upHost, upPort := sidecartest.SplitHostPort(t, upstream.Listener.Addr().String())
	disc := staticDiscovery{"research-svc": {{ID: "research-1", Service: "research-svc", Node: "node-1",
		Address: upHost, Port: upPort}}}
	s, err := sidecar.New(cfg, hclog.NewNullLogger(), sidecar.Options{Registry: g.registry, Discovery: disc, Now: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	g.s, g.base = s, "http://"+s.Addr()
	g.bind("control-port", s.Addr())
	g.bind("upstream-port", upstream.Listener.Addr().String())
	g.bind("webhook-port", hook.Listener.Addr().String())

	tr := http.DefaultTransport.(*http.Transport).Clone()
	g.client = &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// The ingress's and the probe listener's bound addresses, as
	// /v1/status reports them.
	var st struct {
		Sidecar struct {
			ProbeAPI string `json:"probe_api"`
		} `json:"sidecar"`
		Ingress string `json:"ingress"`
	}
	if err := json.Unmarshal(g.do(http.MethodGet, "/v1/status", "", http.StatusOK), &st); err != nil ||
		st.Ingress == "" || st.Sidecar.ProbeAPI == "" {
		t.Fatalf("no ingress or probe listener address in /v1/status: %v", err)
	}
	g.bind("ingress-port", st.Ingress)
	g.bind("probe-port", st.Sidecar.ProbeAPI)
	return g
}

func (g *goldenSidecar) bind(name, hostPort string) {
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		g.t.Fatal(err)
	}
	g.boundPorts[port] = "<" + name + ">"
}

// do sends a request to the control API and returns the answer's body.
func (g *goldenSidecar) do(method, path, body string, wantStatus int) []byte {
	g.t.Helper()
	req, err := http.NewRequestWithContext(g.t.Context(), method, g.base+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		g.t.Fatalf("%s %s: %s, want %d: %s", method, path, resp.Status, wantStatus, out)
	}
	return out
}

// statusSummary is the part of /v1/status the test waits on.
type statusSummary struct {
	Health struct {
		State string `json:"state"`
	} `json:"health"`
	Notifications struct {
		Delivered int `json:"delivered"`
		Queued    int `json:"queued"`
	} `json:"notifications"`
}

// settle waits until the health state is want, the webhook has received
// deliveries bodies and the sidecar has counted them, and the heartbeat
// check pushed to Consul has status check; it returns /v1/status.
func (g *goldenSidecar) settle(want string, deliveries int, check discovery.CheckStatus) []byte {
	g.t.Helper()
	var raw []byte
	what := fmt.Sprintf("state %q with %d webhook deliveries and a %s heartbeat check", want, deliveries, check)
	testutil.EventuallySeen(g.t, what, 10*time.Second, func() (bool, string) {
		raw = g.do(http.MethodGet, "/v1/status", "", http.StatusOK)
		var st statusSummary
		if err := json.Unmarshal(raw, &st); err != nil {
			g.t.Fatal(err)
		}
		hb, _ := g.registry.last("heartbeat")
		return st.Health.State == want && st.Notifications.Delivered == deliveries && st.Notifications.Queued == 0 &&
				len(g.webhook.received()) == deliveries && hb.Status == check,
			fmt.Sprintf("state %q, %d delivered, %d queued, %d received, check %s",
				st.Health.State, st.Notifications.Delivered, st.Notifications.Queued, len(g.webhook.received()), hb.Status)
	})
	return raw
}

// Volatile values, replaced by maskVolatile.
var (
	loopbackPort  = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):(\d+)\b`)
	jsonPort      = regexp.MustCompile(`"port":(\d+)`)
	jsonVersion   = regexp.MustCompile(`"version":"[^"]*"`)
	breakerTimes  = regexp.MustCompile(`"(opened_at|last_failure)":"[^"]*"`)
	breakerEvent  = regexp.MustCompile(`("type":"breaker\.[a-z]+"[^{}]*?"time":)"[^"]*"`)
	breakerSince  = regexp.MustCompile(`(?m)^(- \S+ (?:open|half-open) since )\d\d:\d\d:\d\d`)
	breakerSinceX = "${1}<breaker clock>"
	checkedAt     = regexp.MustCompile(`(Checked \d{4}-\d\d-\d\d \d\d:\d\d):\d\d( UTC\.)`)
)

// maskVolatile replaces what differs from run to run and is not the
// sidecar's to decide: the ports bound for this run (of the sidecar's
// listeners and of the test's servers), the process ID, the host name and
// the build's version. It also masks the wall-clock times the breakers
// stamp (opened_at, last_failure, the time of breaker events and the
// "since" of open breakers in the sidecar check): the breakers read
// time.Now, not Options.Now, so those differ on every run. And it masks
// the seconds of the sidecar check's "Checked …" stamp: besides the pushes
// the test causes, the sidecar refreshes that check on a real-time ticker
// (every 10s), which a slow run may meet at a later fake time. Everything
// else is the sidecar's output as is.
func (g *goldenSidecar) maskVolatile(s string) string {
	s = loopbackPort.ReplaceAllStringFunc(s, func(m string) string {
		sub := loopbackPort.FindStringSubmatch(m)
		if name, ok := g.boundPorts[sub[2]]; ok {
			return sub[1] + ":" + name
		}
		return m
	})
	s = jsonPort.ReplaceAllStringFunc(s, func(m string) string {
		if name, ok := g.boundPorts[jsonPort.FindStringSubmatch(m)[1]]; ok {
			return `"port":"` + name + `"`
		}
		return m
	})
	s = strings.ReplaceAll(s, fmt.Sprintf(`"pid":%d`, os.Getpid()), `"pid":"<pid>"`)
	if h, err := os.Hostname(); err == nil && h != "" {
		s = strings.ReplaceAll(s, fmt.Sprintf(`"host":%q`, h), `"host":"<hostname>"`)
	}
	s = jsonVersion.ReplaceAllString(s, `"version":"<version>"`)
	s = breakerTimes.ReplaceAllString(s, `"$1":"<breaker clock>"`)
	s = breakerEvent.ReplaceAllString(s, `$1"<breaker clock>"`)
	s = breakerSince.ReplaceAllString(s, breakerSinceX)
	s = checkedAt.ReplaceAllString(s, "$1:<ss>$2")
	return s
}

// prettyJSON masks raw (compact JSON) and indents it, keeping the order of
// its keys.
func (g *goldenSidecar) prettyJSON(raw []byte) []byte {
	g.t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		g.t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	masked := g.maskVolatile(compact.String())
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(masked), "", "  "); err != nil {
		g.t.Fatalf("masked JSON: %v\n%s", err, masked)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// checksNow writes both checks' latest updates as a person reads them.
func (g *goldenSidecar) checksNow(state string) string {
	g.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "=== %s\n", state)
	for _, name := range []string{"heartbeat", "sidecar"} {
		u, ok := g.registry.last(name)
		if !ok {
			g.t.Fatalf("no %s check pushed", name)
		}
		fmt.Fprintf(&b, "--- check %s: %s\n%s\n", u.ID, u.Status, g.maskVolatile(u.Output))
	}
	return b.String()
}

// TestGoldenStatusAndChecks drives a sidecar through the states a user
// meets and compares /v1/status, /v1/breakers, the Consul checks and the
// webhook bodies with testdata/golden.
func TestGoldenStatusAndChecks(t *testing.T) {
	g := startGoldenSidecar(t)
	var checks strings.Builder

	// Given a sidecar just started, waiting for the first heartbeat
	raw := g.settle("waiting", 0, discovery.Critical)
	compareGolden(t, "status-1-started.json", g.prettyJSON(raw))
	checks.WriteString(g.checksNow("1 started: waiting for the first heartbeat"))

	// When the agent heartbeats with a note, metrics and progress
	g.clock.Set(goldenT0.Add(1 * time.Second))
	beat := g.do(http.MethodPost, "/v1/heartbeat",
		`{"status":"ok","note":"handled 3 tasks","metrics":{"tasks_done":3,"queue_depth":1.5,"model":"gpt-4o","busy":true},"progress":42}`,
		http.StatusOK)
	compareGolden(t, "heartbeat-answer.json", g.prettyJSON(beat))
	raw = g.settle("healthy", 0, discovery.Passing)
	compareGolden(t, "status-2-heartbeat.json", g.prettyJSON(raw))
	checks.WriteString(g.checksNow("2 healthy: a heartbeat with a note, metrics and progress"))

	// When a call goes through the Consul upstream (creating its breaker)
	// and an operator opens that breaker
	g.clock.Set(goldenT0.Add(1500 * time.Millisecond))
	if got := string(g.do(http.MethodGet, "/call/researcher/summarize", "", http.StatusOK)); got != "researched" {
		t.Fatalf("call answered %q", got)
	}
	var breakers struct {
		Breakers []struct {
			Name string `json:"name"`
		} `json:"breakers"`
	}
	if err := json.Unmarshal(g.do(http.MethodGet, "/v1/breakers", "", http.StatusOK), &breakers); err != nil {
		t.Fatal(err)
	}
	var name string // the instance's breaker, "researcher@127.0.0.1:<upstream-port>"
	for _, b := range breakers.Breakers {
		if strings.HasPrefix(b.Name, "researcher@") {
			name = b.Name
		}
	}
	if name == "" {
		t.Fatalf("no breaker of the researcher upstream in %+v", breakers)
	}
	opened := g.do(http.MethodPost, "/v1/breakers/"+name+"/open", "", http.StatusOK)
	compareGolden(t, "breaker-open-answer.json", g.prettyJSON(opened))
	raw = g.settle("healthy", 1, discovery.Passing)
	compareGolden(t, "status-3-breaker-open.json", g.prettyJSON(raw))
	compareGolden(t, "breakers-3-breaker-open.json", g.prettyJSON(g.do(http.MethodGet, "/v1/breakers", "", http.StatusOK)))
	checks.WriteString(g.checksNow("3 breaker open: opened by an operator"))

	// When the agent stays silent past its TTL (2 × 1s + 500ms)
	g.clock.Set(goldenT0.Add(10 * time.Second))
	raw = g.settle("isolated", 2, discovery.Critical)
	compareGolden(t, "status-4-isolated.json", g.prettyJSON(raw))
	checks.WriteString(g.checksNow("4 isolated: missed heartbeats"))

	// When it heartbeats again
	g.clock.Set(goldenT0.Add(12 * time.Second))
	g.do(http.MethodPost, "/v1/heartbeat", `{"status":"degraded","note":"back after a pause"}`, http.StatusOK)
	raw = g.settle("healthy", 3, discovery.Warning)
	compareGolden(t, "status-5-recovered.json", g.prettyJSON(raw))
	checks.WriteString(g.checksNow("5 recovered: a degraded heartbeat"))

	// Then the checks read right in every state, and exactly two checks
	// were fed
	fmt.Fprintf(&checks, "=== check IDs pushed\n%s\n", strings.Join(g.registry.checkIDs(), "\n"))
	compareGolden(t, "checks.txt", []byte(checks.String()))

	// And the webhook received breaker.open, agent.isolated and
	// agent.recovered, in order
	var hooks bytes.Buffer
	hooks.WriteString("[")
	for i, b := range g.webhook.received() {
		if i > 0 {
			hooks.WriteString(",")
		}
		hooks.Write(b)
	}
	hooks.WriteString("]")
	compareGolden(t, "webhook-bodies.json", g.prettyJSON(hooks.Bytes()))
}

// compareGolden compares got with testdata/golden/name, or writes it there
// under -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(want)),
			B: difflib.SplitLines(string(got)), FromFile: path, ToFile: "got", Context: 2})
		t.Errorf("%s differs from the golden file (go test -update rewrites it; review the diff):\n%s", path, diff)
	}
}
