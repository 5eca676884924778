//go:build e2e

// Package examples_test runs each example agent beside the real sidecar
// binary and a real Consul, with its own sidecar.hcl (ports moved to free
// ones), and checks what each README claims: heartbeats reach Consul, a
// model call is answered through the gateway (and by the lighter model when
// the primary fails), and a call to another agent goes through /call/.
package examples_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// plantedKey is the provider key the sidecar is given; the agents never see
// it, and the fake models must receive it.
const plantedKey = "sk-examples-planted-key-0123456789"

var binDir string // the sidecar (built once) and the Go example agent

func TestMain(m *testing.M) {
	bin, err := testbin.BuildSidecar("examples-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = filepath.Dir(bin)
	code := m.Run()
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

func buildGoAgent(t *testing.T) {
	t.Helper()
	if err := testbin.BuildGo("./examples/go/agent", filepath.Join(binDir, "agent-go")); err != nil {
		t.Fatal(err)
	}
}

func repoRoot() string { return testbin.RepoRoot() }

// example is one directory of examples/ and the values its sidecar.hcl uses.
type example struct {
	dir, id   string
	control   string // listen.address in its sidecar.hcl
	agentPort int    // 0: the agent takes no tasks
	needs     []string
	prepare   func(t *testing.T) // e.g. its npm packages
	// forwardsTrace: a task's traceparent goes on with the agent's model
	// and peer requests (through its client library).
	forwardsTrace bool
}

var allExamples = []example{
	{dir: "python", id: "writer-1", control: "127.0.0.1:7071", agentPort: 8081, needs: []string{"python3"}, forwardsTrace: true},
	{dir: "node", id: "summarizer-1", control: "127.0.0.1:7072", agentPort: 8082, needs: []string{"node"}, prepare: needNodeModules, forwardsTrace: true},
	{dir: "go", id: "planner-1", control: "127.0.0.1:7073", agentPort: 8083, prepare: buildGoAgent, forwardsTrace: true},
	{dir: "shell", id: "indexer-1", control: "127.0.0.1:7074", needs: []string{"sh", "curl"}},
}

func TestExampleAgents(t *testing.T) {
	consul := consultest.Start(t)
	client := consul.Client(t)
	for _, ex := range allExamples {
		t.Run(ex.dir, func(t *testing.T) {
			for _, bin := range ex.needs {
				need(t, bin)
			}
			if ex.prepare != nil {
				ex.prepare(t)
			}
			runExample(t, ex, consul.HTTPAddr, client)
		})
	}
}

// researcher is the peer every example calls through /call/researcher/task,
// registered in Consul as the service "researcher".
type researcher struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []http.Header
}

func startResearcher(t *testing.T, client *api.Client, id string) *researcher {
	r := &researcher{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var task struct{ Input string }
		_ = json.NewDecoder(req.Body).Decode(&task)
		r.mu.Lock()
		r.calls = append(r.calls, req.Header.Clone())
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"agent":"researcher-1","output":"notes on %s"}`, task.Input)
	}))
	t.Cleanup(r.srv.Close)
	host, port := splitHostPort(t, r.srv.Listener.Addr().String())
	reg := &api.AgentServiceRegistration{ID: id, Name: "researcher", Address: host, Port: port}
	if err := client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("registering the researcher in Consul: %v", err)
	}
	t.Cleanup(func() { _ = client.Agent().ServiceDeregister(id) })
	return r
}

func (r *researcher) received() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.calls...)
}

func runExample(t *testing.T, ex example, consulAddr string, client *api.Client) {
	primary := fakellm.New(fakellm.Options{Name: "gpt-4o", Reply: "Primary answer for " + ex.dir + "."})
	lite := fakellm.New(fakellm.Options{Name: "gpt-4o-mini", Reply: "Lighter answer for " + ex.dir + "."})
	primarySrv, liteSrv := httptest.NewServer(primary), httptest.NewServer(lite)
	t.Cleanup(primarySrv.Close)
	t.Cleanup(liteSrv.Close)
	peer := startResearcher(t, client, "researcher-for-"+ex.id)

	// The example's own configuration, with its ports moved to free ones.
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "examples", ex.dir, "sidecar.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	control := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	subst := map[string]string{
		ex.control:       control,
		"127.0.0.1:9201": strings.TrimPrefix(primarySrv.URL, "http://"),
		"127.0.0.1:9202": strings.TrimPrefix(liteSrv.URL, "http://"),
		`"bin/agent-go"`: strconv.Quote(filepath.Join(binDir, "agent-go")),
	}
	for old, new := range subst {
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	agentPort := 0
	if ex.agentPort != 0 {
		agentPort = testutil.FreePort(t)
		cfg = regexp.MustCompile(`\b`+strconv.Itoa(ex.agentPort)+`\b`).ReplaceAllString(cfg, strconv.Itoa(agentPort))
	}
	// Heartbeat and work every second rather than every five.
	cfg = regexp.MustCompile(`(HEARTBEAT_EVERY|EVERY) = "5"`).ReplaceAllString(cfg, `$1 = "1"`)
	for _, shouldChange := range []string{ex.control, "127.0.0.1:9201", "127.0.0.1:9202"} {
		if !strings.Contains(string(raw), shouldChange) {
			t.Fatalf("examples/%s/sidecar.hcl no longer uses %s; update this test", ex.dir, shouldChange)
		}
	}
	cfgFile := filepath.Join(t.TempDir(), "sidecar.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	out := startSidecar(t, cfgFile, consulAddr)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n--- sidecar and agent output ---\n%s", append(args, out.String())...)
	}

	// Heartbeats reach Consul: the agent's TTL check passes.
	check := waitCheck(t, client, ex.id, "passing", 30*time.Second, out)
	if ex.agentPort == 0 {
		// The shell agent's note says what its round did.
		waitFor(t, "a round in which the peer and the model answered", 20*time.Second, out, func() bool {
			check = checkOf(client, ex.id)
			return check != nil && strings.Contains(check.Output, "researcher answered 200") &&
				strings.Contains(check.Output, "model gpt-4o answered")
		})
	} else if !strings.Contains(check.Output, "handled") {
		fail("the heartbeat check's output lacks the agent's note: %q", check.Output)
	}

	// A task: the model answers through the gateway, the peer through /call/.
	if ex.agentPort != 0 {
		traceparent := ""
		if ex.forwardsTrace {
			traceparent = exampleTraceparent
		}
		ans := tracedTask(t, agentPort, "a haiku", traceparent, out)
		if ans["output"] != "Primary answer for "+ex.dir+"." || ans["model"] != "gpt-4o" || ans["degraded"] != false {
			fail("task answer %v, want the primary model's reply", ans)
		}
		p, _ := ans["peer"].(map[string]any)
		if p == nil || p["output"] != "notes on a haiku" {
			fail("task answer %v lacks the researcher's answer in peer", ans)
		}
	}
	if got := primary.Stats().Calls; got == 0 {
		fail("the primary model received no call")
	}
	last, _ := primary.Last()
	if last.Header.Get("Authorization") != "Bearer "+plantedKey {
		fail("the model call did not carry the key the sidecar injects: %q", last.Header.Get("Authorization"))
	}
	calls := peer.received()
	if len(calls) == 0 {
		fail("the researcher received no call through /call/")
	}
	if calls[0].Get("Idempotency-Key") == "" {
		fail("the peer call lacks an Idempotency-Key (the agent marks its task safe to resend)")
	}
	if strings.Contains(out.String(), plantedKey) {
		fail("the provider key appears in the sidecar's or the agent's output")
	}
	if ex.forwardsTrace {
		// The task's trace goes on: the model and the peer see its trace id
		// (the sidecar may have added a span of its own).
		if got := traceIDOf(last.Header.Get("Traceparent")); got != exampleTraceID {
			fail("the model request's traceparent %q is not of the task's trace %s", last.Header.Get("Traceparent"), exampleTraceID)
		}
		if got := traceIDOf(calls[len(calls)-1].Get("Traceparent")); got != exampleTraceID {
			fail("the peer call's traceparent %q is not of the task's trace %s", calls[len(calls)-1].Get("Traceparent"), exampleTraceID)
		}
	}

	// The primary model fails: the same work is answered by the lighter one.
	primary.Set(fakellm.Faults{FailNext: 1 << 20, FailStatus: http.StatusServiceUnavailable})
	if ex.agentPort != 0 {
		ans := task(t, agentPort, "another haiku", out)
		if ans["output"] != "Lighter answer for "+ex.dir+"." || ans["model"] != "gpt-4o-mini" || ans["degraded"] != true {
			fail("task answer %v while the primary fails, want the lighter model's reply, degraded", ans)
		}
	} else {
		waitFor(t, "a round answered by the lighter model", 20*time.Second, out, func() bool {
			c := checkOf(client, ex.id)
			return c != nil && c.Status == "passing" && strings.Contains(c.Output, "model gpt-4o-mini answered")
		})
	}
	if lite.Stats().Calls == 0 {
		fail("the lighter model received no call")
	}
}

func startSidecar(t *testing.T, cfgFile, consulAddr string) *testutil.SyncBuffer {
	t.Helper()
	out := &testutil.SyncBuffer{}
	cmd := exec.Command(filepath.Join(binDir, "sidecar"), "agent", "-config", cfgFile)
	cmd.Dir = repoRoot() // the examples' commands are relative to it
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+consulAddr, "OPENAI_API_KEY="+plantedKey)
	cmd.Stdout, cmd.Stderr = out, out
	proc, err := testbin.StartCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !proc.StopWithin(15 * time.Second) {
			t.Errorf("the sidecar did not stop within 15s of SIGTERM\n%s", out.String())
		}
	})
	return out
}

// The trace context a task carries in TestExampleAgents.
const (
	exampleTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	exampleTraceparent = "00-" + exampleTraceID + "-00f067aa0ba902b7-01"
)

// traceIDOf is the trace id of a traceparent, "" when it has none.
func traceIDOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

func task(t *testing.T, port int, input string, out *testutil.SyncBuffer) map[string]any {
	t.Helper()
	return tracedTask(t, port, input, "", out)
}

// tracedTask is task with a traceparent header, when not "".
func tracedTask(t *testing.T, port int, input, traceparent string, out *testutil.SyncBuffer) map[string]any {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/task", port),
		strings.NewReader(fmt.Sprintf(`{"input":%q}`, input)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("Traceparent", traceparent)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("task: %v\n%s", err, out.String())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("task: %s %s\n%s", resp.Status, body, out.String())
	}
	return ans
}

func checkOf(client *api.Client, serviceID string) *api.AgentCheck {
	checks, err := client.Agent().Checks()
	if err != nil {
		return nil
	}
	for _, c := range checks {
		if c.ServiceID == serviceID && c.Name == "heartbeat" {
			return c
		}
	}
	return nil
}

func waitCheck(t *testing.T, client *api.Client, serviceID, status string, limit time.Duration, out *testutil.SyncBuffer) *api.AgentCheck {
	t.Helper()
	var c *api.AgentCheck
	waitFor(t, "the heartbeat check of "+serviceID+" to be "+status, limit, out, func() bool {
		c = checkOf(client, serviceID)
		return c != nil && c.Status == status
	})
	return c
}

// waitFor is testutil.Eventually that shows the sidecar's and the agent's
// output when it times out.
func waitFor(t *testing.T, what string, limit time.Duration, out *testutil.SyncBuffer, cond func() bool) {
	t.Helper()
	if !testutil.Poll(limit, cond) {
		t.Fatalf("timed out after %s waiting for %s\n--- sidecar and agent output ---\n%s", limit, what, out.String())
	}
}

func need(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed for this example (.ci/run installs it)", bin)
		}
		t.Skipf("%s not found", bin)
	}
}

func needNodeModules(t *testing.T) {
	t.Helper()
	for _, pkg := range []string{"openai", "agent-sidecar"} {
		if _, err := os.Stat(filepath.Join(repoRoot(), "examples/node/node_modules", pkg)); err == nil {
			continue
		}
		if os.Getenv("CI") == "true" {
			t.Fatal("examples/node needs its packages: run make sdk-deps (npm ci --prefix examples/node)")
		}
		t.Skip("examples/node/node_modules missing: run make sdk-deps")
	}
}

func splitHostPort(t *testing.T, hp string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// TestExampleConfigurationsAreValid loads every configuration the examples
// ship, as `sidecar validate` does (the compose one included, which is not
// run here), and the demo's (tools/demo).
func TestExampleConfigurationsAreValid(t *testing.T) {
	sets := [][]string{{"sidecar.hcl"}}
	for _, dir := range []string{"python", "node", "go", "shell"} {
		sets = append(sets, []string{"examples/" + dir + "/sidecar.hcl"})
	}
	// The compose variants: each sidecar configuration with the models both mount.
	for _, f := range []string{"sidecar.hcl", "sidecar-exec.hcl"} {
		sets = append(sets, []string{"examples/compose/" + f, "examples/compose/models.hcl"})
	}
	for _, m := range []string{"writer-1", "writer-2", "writer-lite", "researcher", "indexer"} {
		sets = append(sets, []string{"tools/demo/fleet.hcl", "tools/demo/" + m + ".hcl"})
	}
	for _, files := range sets {
		args := []string{"validate"}
		for _, f := range files {
			args = append(args, filepath.Join(repoRoot(), f))
		}
		out, err := exec.Command(filepath.Join(binDir, "sidecar"), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "configuration valid") {
			t.Errorf("%v: %v\n%s", files, err, out)
		}
	}
}
