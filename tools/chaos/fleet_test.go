//go:build e2e

package chaos_test

import (
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// fleet is one scenario's system, all real processes but the fake models
// and the two small services: a Consul dev agent, two python example
// agents (service "writer") under their sidecars with an ingress, and a
// dispatcher sidecar through which all the load goes: tasks to
// /call/writer/task (fallback: the service writer-lite), model calls to
// /llm/v1 (gpt-4o, falling back to gpt-4o-mini) and calls to /call/flaky/
// (fallback: steady).
type fleet struct {
	t          *testing.T
	consul     *consultest.Agent
	consulVia  *delayProxy // what the sidecars talk to: Consul, maybe slowly
	client     *api.Client
	dispatcher *sidecarProc
	writers    []*sidecarProc
	lite       *httptest.Server // the writer-lite service
	primary    *fakellm.Server
	mini       *fakellm.Server
	flaky      *flakyServer
	steady     *httptest.Server
	// steadyDelay slows the steady service's answers; inFlight and
	// peakInFlight count the calls the flaky and steady services are
	// answering at once.
	steadyDelay            atomic.Int64
	inFlight, peakInFlight atomic.Int64
	// mark is in the environment of the fleet's agents, to find those a
	// crashed sidecar left behind.
	mark string
}

// track counts one call in flight at the flaky or steady service.
func (f *fleet) track() func() {
	n := f.inFlight.Add(1)
	for {
		peak := f.peakInFlight.Load()
		if n <= peak || f.peakInFlight.CompareAndSwap(peak, n) {
			break
		}
	}
	return func() { f.inFlight.Add(-1) }
}

type sidecarProc struct {
	id, cfgFile string
	control     string // http://127.0.0.1:port
	ingress     string // host:port, "" for none
	agentPort   int
	out         *testutil.SyncBuffer
	proc        *testbin.Process
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, mark: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())}
	t.Cleanup(f.reapAgents)
	f.consul = consultest.Start(t)
	f.client = f.consul.Client(t)
	f.consulVia = newDelayProxy(t, f.consul.HTTPAddr)
	f.lite = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"agent":"writer-lite","output":"a plainer answer"}`)
	}))
	t.Cleanup(f.lite.Close)
	f.primary = fakellm.New(fakellm.Options{Name: "gpt-4o", Reply: "Primary answer."})
	f.mini = fakellm.New(fakellm.Options{Name: "gpt-4o-mini", Reply: "Lighter answer."})
	primary, mini := httptest.NewServer(f.primary), httptest.NewServer(f.mini)
	t.Cleanup(primary.Close)
	t.Cleanup(mini.Close)
	f.flaky = newFlaky(t, f)
	f.steady = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer f.track()()
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(time.Duration(f.steadyDelay.Load()))
		_, _ = io.WriteString(w, `{"from":"steady"}`)
	}))
	t.Cleanup(f.steady.Close)

	for i := 1; i <= 2; i++ {
		f.writers = append(f.writers, f.startWriter(i, f.consulVia.addr))
	}
	f.startDispatcher(f.consulVia.addr, primary.URL, mini.URL)
	f.waitFor("both writers passing in Consul and known to the dispatcher", 30*time.Second, func() bool {
		return f.passing("writer-1") && f.passing("writer-2") && f.dispatcherKnows(2)
	})
	return f
}

// startDispatcher starts the sidecar all the load goes through.
func (f *fleet) startDispatcher(consulAddr, primaryURL, miniURL string) {
	f.dispatcher = f.startSidecar("dispatcher-1", fmt.Sprintf(`
agent {
  name = "dispatcher"
  id   = "dispatcher-1"
}
listen { address = "127.0.0.1:%[1]d" }
consul {
  address = %[2]q
  sync_interval = "1s"
  policy_prefix = "sidecar/policies/"
}
health { heartbeat_interval = "1h" }
breaker "default" {
  consecutive_failures = 3
  open_for = "2s"
}
upstream "writer" {
  timeout  = "10s"
  fallback = ["writer-lite"]
}
upstream "writer-lite" { url = %[3]q }
upstream "flaky" {
  url      = %[4]q
  timeout  = "10s"
  fallback = ["steady"]
}
upstream "steady" {
  url     = %[5]q
  timeout = "10s"
}
model "gpt-4o" {
  provider = "openai"
  base_url = "%[6]s/v1"
  api_key  = "chaos-test-key"
  timeout  = "5s"
  first_byte_timeout = "1s"
  fallback = "gpt-4o-mini"
  degrade_on = ["empty"]
}
model "gpt-4o-mini" {
  provider = "openai"
  base_url = "%[7]s/v1"
  api_key  = "chaos-test-key"
}
`, testutil.FreePort(f.t), consulAddr, f.lite.URL, f.flaky.srv.URL, f.steady.URL, primaryURL, miniURL), "", 0)
}

// startWriter starts writer-i: the python example agent under its sidecar,
// registered with the Consul agent at consulAddr.
func (f *fleet) startWriter(i int, consulAddr string) *sidecarProc {
	agentPort, ingressPort := testutil.FreePort(f.t), testutil.FreePort(f.t)
	return f.startSidecar(fmt.Sprintf("writer-%d", i), fmt.Sprintf(`
agent {
  name = "writer"
  id   = "writer-%[1]d"
  port = %[2]d
  exec {
    command = ["python3", %[3]q]
    env     = { AGENT_PORT = "%[2]d", HEARTBEAT_EVERY = "0.3", CHAOS_FLEET = %[7]q }
    restart_on_isolation = true
    stop_timeout = "2s"
    restart_backoff = "200ms"
  }
}
listen { address = "127.0.0.1:%[4]d" }
ingress {
  address = "127.0.0.1:%[5]d"
  timeout = "2s"
  body_read_timeout = %[8]q
}
consul {
  address = %[6]q
  sync_interval = "1s"
  deregister_critical_after = "1m"
  policy_prefix = "sidecar/policies/"
}
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "500ms"
}
breaker "default" {
  consecutive_failures = 3
  open_for = "2s"
}
`, i, agentPort, filepath.Join(repoRoot(), "examples/python/agent.py"), testutil.FreePort(f.t), ingressPort, consulAddr, f.mark,
		ingressBodyTimeout().String()),
		fmt.Sprintf("127.0.0.1:%d", ingressPort), agentPort)
}

// ingressBodyTimeout is the writers' ingress.body_read_timeout: the
// default (1m) in the long form, 3s in the short one.
func ingressBodyTimeout() time.Duration { return dur(3*time.Second, time.Minute) }

func (f *fleet) startSidecar(id, cfg, ingress string, agentPort int) *sidecarProc {
	f.t.Helper()
	file := filepath.Join(f.t.TempDir(), id+".hcl")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		f.t.Fatal(err)
	}
	m := regexpListen(cfg)
	p := &sidecarProc{id: id, cfgFile: file, control: "http://" + m, ingress: ingress, agentPort: agentPort, out: &testutil.SyncBuffer{}}
	f.launch(p)
	f.t.Cleanup(func() { f.stop(p) })
	return p
}

// launch starts (or starts again) a sidecar process and waits for its API.
func (f *fleet) launch(p *sidecarProc) {
	f.t.Helper()
	cmd := exec.Command(sidecarBin, "agent", "-config", p.cfgFile)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// An agent a crashed sidecar left behind holds the output pipe open.
	cmd.WaitDelay = 5 * time.Second
	proc, err := testbin.StartCmd(cmd)
	if err != nil {
		f.t.Fatal(err)
	}
	p.proc = proc
	f.waitFor(p.id+"'s control API", 15*time.Second, func() bool {
		resp, err := http.Get(p.control + "/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop sends SIGTERM and waits for a graceful exit.
func (f *fleet) stop(p *sidecarProc) {
	if p.proc == nil {
		return
	}
	if !p.proc.StopWithin(20 * time.Second) {
		f.t.Errorf("%s did not stop within 20s of SIGTERM", p.id)
	}
}

// reapAgents kills the fleet's agents that outlived their sidecar (one that
// crashed cannot stop its agent).
func (f *fleet) reapAgents() {
	if f.mark == "" {
		return
	}
	environs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, file := range environs {
		env, err := os.ReadFile(file)
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "CHAOS_FLEET="+f.mark) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(file))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// waitFor is testutil.Eventually that shows the fleet's logs when it times
// out.
func (f *fleet) waitFor(what string, limit time.Duration, cond func() bool) {
	f.t.Helper()
	if !testutil.Poll(limit, cond) {
		f.t.Fatalf("timed out after %s waiting for %s\n%s", limit, what, f.logs())
	}
}

func (f *fleet) logs() string {
	var b strings.Builder
	for _, p := range append([]*sidecarProc{f.dispatcher}, f.writers...) {
		if p == nil {
			continue
		}
		out := p.out.String()
		if len(out) > 6000 {
			out = "…" + out[len(out)-6000:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", p.id, out)
	}
	return b.String()
}

// passing says whether an agent's heartbeat check passes in Consul.
func (f *fleet) passing(id string) bool {
	checks, err := f.client.Agent().Checks()
	if err != nil {
		return false
	}
	for _, c := range checks {
		if c.ServiceID == id && c.Name == "heartbeat" {
			return c.Status == api.HealthPassing
		}
	}
	return false
}

// dispatcherKnows says whether the dispatcher's discovery lists n passing
// writer instances; it sends one task first, since an upstream is watched
// from its first call on.
func (f *fleet) dispatcherKnows(n int) bool {
	c := http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Post(f.dispatcher.control+"/call/writer/task", "application/json", strings.NewReader(`{"input":"warm-up"}`)); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var st struct {
		Discovery map[string]struct {
			Instances []any `json:"instances"`
		} `json:"discovery"`
	}
	if getJSON(f.dispatcher.control+"/v1/status", &st) != nil {
		return false
	}
	for key, set := range st.Discovery {
		if (key == "writer" || strings.HasPrefix(key, "writer|") || strings.HasPrefix(key, "writer?")) && len(set.Instances) >= n {
			return true
		}
	}
	return false
}

// status reads a sidecar's GET /v1/status.
func (p *sidecarProc) status() map[string]any {
	var st map[string]any
	_ = getJSON(p.control+"/v1/status", &st)
	return st
}

func (p *sidecarProc) agentPID() int {
	proc, _ := p.status()["process"].(map[string]any)
	pid, _ := proc["pid"].(float64)
	return int(pid)
}

func (p *sidecarProc) restarts() int {
	proc, _ := p.status()["process"].(map[string]any)
	n, _ := proc["restarts"].(float64)
	return int(n)
}

// metric reads one unlabelled sample of a sidecar's /metrics.
func (p *sidecarProc) metric(name string) float64 {
	resp, err := http.Get(p.control + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return x
		}
	}
	return -1
}

// agentControl posts to one writer agent's own control endpoints.
func (p *sidecarProc) agentControl(path, body string) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Post(fmt.Sprintf("http://127.0.0.1:%d%s", p.agentPort, path), "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func getJSON(url string, into any) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(into)
}

// delayProxy stands in front of Consul and can delay every answer.
type delayProxy struct {
	addr  string
	delay atomic.Int64
}

func newDelayProxy(t *testing.T, target string) *delayProxy {
	d := &delayProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dl := time.Duration(d.delay.Load()); dl > 0 {
			select {
			case <-time.After(dl):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d.addr = strings.TrimPrefix(srv.URL, "http://")
	return d
}

// flakyServer answers after a delay, and fails a share of calls with 503;
// with endless set it answers a header that never ends.
type flakyServer struct {
	srv      *httptest.Server
	failRate atomic.Int64 // percent
	delay    atomic.Int64
	endless  atomic.Bool
}

func newFlaky(t *testing.T, f *fleet) *flakyServer {
	fl := &flakyServer{}
	fl.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer f.track()()
		_, _ = io.Copy(io.Discard, r.Body)
		if fl.endless.Load() {
			serveEndlessHeader(w, func() bool { return !fl.endless.Load() })
			return
		}
		time.Sleep(time.Duration(fl.delay.Load()))
		if mathrand.IntN(100) < int(fl.failRate.Load()) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"type":"unavailable","message":"flaky"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"from":"flaky"}`)
	}))
	fl.srv.Config.MaxHeaderBytes = 1 << 16
	fl.srv.Start()
	t.Cleanup(fl.srv.Close)
	return fl
}

func regexpListen(cfg string) string {
	i := strings.Index(cfg, `listen { address = "`)
	rest := cfg[i+len(`listen { address = "`):]
	return rest[:strings.Index(rest, `"`)]
}

func repoRoot() string { return testbin.RepoRoot() }
