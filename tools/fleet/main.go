// Command fleet runs N agents with their sidecars against one Consul on
// this machine, under steady load, breaks some of them at random, and
// reports how fast each failure was detected, whether any task was lost,
// and what the fleet cost Consul and the machine (make fleet N=50).
//
// Each agent is the Go example agent (examples/go) under its own sidecar,
// an instance of the service "worker", heartbeating every second with a
// heartbeat interval of 2 s, 2 missed and 1 s grace (isolated 5 s after the
// last heartbeat). A dispatcher sidecar sends tasks to the workers through
// /call/worker/ (vegeta, constant rate). The failures, in turn:
//
//	hang   SIGSTOP of an agent: its sidecar isolates it (and restarts it)
//	kill   SIGKILL of a sidecar and its agent: only Consul can tell, when
//	       the TTL of the heartbeat check runs out; the pair is started again
//
// The sidecars talk to Consul through a counting proxy, so the report has
// the requests they make, by kind.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/agent-sidecar/sidecar/tools/internal/proc"
)

const (
	consulHTTP  = 18700
	proxyPort   = 18710
	dispatcher  = 18720
	controlBase = 19300 // sidecar i listens on controlBase+i
	agentBase   = 20300 // agent i takes tasks on agentBase+i
	interval    = 2 * time.Second
	missed      = 2
	grace       = time.Second
)

type options struct {
	root, consulBin string
	n, failures     int
	duration        time.Duration
	rate            int
	out             io.Writer
}

// Report is what a run measured; it is also written as JSON.
type Report struct {
	Agents          int       `json:"agents"`
	Duration        string    `json:"duration"`
	When            time.Time `json:"when"`
	CPUs            int       `json:"cpus"`
	Tasks           int       `json:"tasks"`
	Answered        int       `json:"answered"`
	Errors          int       `json:"clear_errors"`
	Lost            int       `json:"lost"`
	Failures        []Failure `json:"failures"`
	DetectionBound  string    `json:"detection_bound"`
	ConsulCPU       float64   `json:"consul_cpu_percent"`
	ConsulRSSMB     float64   `json:"consul_rss_mb"`
	Writes          float64   `json:"consul_writes_per_s"`
	Reads           float64   `json:"consul_reads_per_s"`
	Blocking        float64   `json:"consul_blocking_queries_per_s"`
	WritesByPath    any       `json:"consul_writes_by_path"`
	SidecarRSSMB    float64   `json:"sidecar_rss_mb_mean"`
	SidecarRSSMaxMB float64   `json:"sidecar_rss_mb_max"`
	SidecarCPU      float64   `json:"sidecar_cpu_percent_mean"`
}

// Failure is one broken agent and how long until Consul said so.
type Failure struct {
	Agent    string  `json:"agent"`
	Kind     string  `json:"kind"` // hang | kill
	Detected float64 `json:"detected_after_s"`
	Within   bool    `json:"within_bound"`
}

func main() {
	n := flag.Int("n", 50, "agents (each with its sidecar)")
	failures := flag.Int("failures", 10, "agents to break, half hung and half killed")
	duration := flag.Duration("duration", 90*time.Second, "how long the load runs")
	rate := flag.Int("rate", 50, "tasks per second")
	root := flag.String("root", ".", "the repository root (binaries in ROOT/bin)")
	jsonOut := flag.String("json", "", "also write the report as JSON to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := os.Getenv("CONSUL_BIN")
	if bin == "" {
		bin = "consul"
	}
	rep, err := run(ctx, options{root: *root, consulBin: bin, n: *n, failures: *failures, duration: *duration, rate: *rate, out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_ = os.MkdirAll(filepath.Dir(*jsonOut), 0o755)
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
		}
	}
	if !rep.ok() {
		os.Exit(1)
	}
}

func (r *Report) ok() bool {
	for _, f := range r.Failures {
		if !f.Within {
			return false
		}
	}
	return r.Lost == 0 && r.Errors == 0
}

// member is one sidecar and its agent.
type member struct {
	id      string
	cfg     string
	control string
	pid     int // the sidecar
}

func run(ctx context.Context, o options) (*Report, error) {
	say := func(format string, args ...any) { fmt.Fprintf(o.out, format+"\n", args...) }
	for _, b := range []string{"sidecar", "agent-go"} {
		if _, err := os.Stat(filepath.Join(o.root, "bin", b)); err != nil {
			return nil, fmt.Errorf("bin/%s is missing: run make build first (make fleet does)", b)
		}
	}
	ports := []int{consulHTTP, consulHTTP + 1, consulHTTP + 2, consulHTTP + 3, proxyPort, dispatcher}
	for i := 0; i < o.n; i++ {
		ports = append(ports, controlBase+i, agentBase+i)
	}
	if err := proc.PortsFree(ports); err != nil {
		return nil, err
	}
	logs, err := os.MkdirTemp("", "sidecar-fleet-")
	if err != nil {
		return nil, err
	}
	ps := &proc.Group{Root: o.root, Logs: logs}
	defer func() { say("stopping everything (logs in %s)", logs); ps.StopAll() }()

	consulPID, err := ps.Start("consul", nil, o.consulBin, "agent", "-dev", "-node", "fleet", "-bind", "127.0.0.1",
		"-client", "127.0.0.1", "-http-port", strconv.Itoa(consulHTTP), "-dns-port", "-1", "-grpc-port", "-1",
		"-grpc-tls-port", "-1", "-server-port", strconv.Itoa(consulHTTP+1), "-serf-lan-port", strconv.Itoa(consulHTTP+2),
		"-serf-wan-port", strconv.Itoa(consulHTTP+3), "-hcl", `check_update_interval = "0s"`, "-hcl", "disable_update_check = true")
	if err != nil {
		return nil, err
	}
	consul, _ := api.NewClient(&api.Config{Address: fmt.Sprintf("127.0.0.1:%d", consulHTTP)})
	if err := ps.WaitUntil(ctx, 30*time.Second, "Consul electing itself leader", func() bool {
		l, err := consul.Status().Leader()
		return err == nil && l != ""
	}); err != nil {
		return nil, err
	}
	counter, err := startCounter(fmt.Sprintf("127.0.0.1:%d", proxyPort), fmt.Sprintf("127.0.0.1:%d", consulHTTP))
	if err != nil {
		return nil, err
	}
	defer counter.srv.Close()

	say("starting %d agents, each under its own sidecar", o.n)
	members := make([]*member, o.n)
	for i := range members {
		m := &member{id: fmt.Sprintf("worker-%d", i+1), control: fmt.Sprintf("http://127.0.0.1:%d", controlBase+i)}
		m.cfg = filepath.Join(logs, m.id+".hcl")
		if err := os.WriteFile(m.cfg, fmt.Appendf(nil, workerConfig, m.id, agentBase+i, controlBase+i, proxyPort,
			interval, missed, grace), 0o644); err != nil {
			return nil, err
		}
		if m.pid, err = ps.Start(m.id, nil, filepath.Join(o.root, "bin", "sidecar"), "agent", "-config", m.cfg); err != nil {
			return nil, err
		}
		members[i] = m
	}
	dcfg := filepath.Join(logs, "dispatcher.hcl")
	if err := os.WriteFile(dcfg, fmt.Appendf(nil, dispatcherConfig, dispatcher, proxyPort), 0o644); err != nil {
		return nil, err
	}
	if _, err := ps.Start("dispatcher", nil, filepath.Join(o.root, "bin", "sidecar"), "agent", "-config", dcfg); err != nil {
		return nil, err
	}
	started := time.Now()
	if err := ps.WaitUntil(ctx, 2*time.Minute, "every agent passing in Consul", func() bool {
		return countPassing(consul) == o.n
	}); err != nil {
		return nil, err
	}
	say("all %d passing in Consul after %.1fs", o.n, time.Since(started).Seconds())

	// Measure from here: steady state, load and failures.
	counter.reset()
	cpu0 := cpuSeconds(consulPID)
	var sidecarCPU0 float64
	for _, m := range members {
		sidecarCPU0 += cpuSeconds(m.pid)
	}
	t0 := time.Now()
	attacker := vegeta.NewAttacker(vegeta.Timeout(30 * time.Second))
	targeter := func(tgt *vegeta.Target) error {
		tgt.Method, tgt.URL = http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/call/worker/task", dispatcher)
		tgt.Body = []byte(`{"input":"a task"}`)
		tgt.Header = http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {strconv.FormatUint(rand.Uint64(), 16)}}
		return nil
	}
	results := attacker.Attack(targeter, vegeta.ConstantPacer{Freq: o.rate, Per: time.Second}, o.duration, "fleet")
	rep := &Report{Agents: o.n, Duration: o.duration.String(), When: time.Now().UTC(), CPUs: numCPU(),
		DetectionBound: (time.Duration(missed)*interval + grace).String()}
	var resMu sync.Mutex
	resDone := make(chan struct{})
	go func() {
		defer close(resDone)
		for r := range results {
			resMu.Lock()
			rep.Tasks++
			switch {
			case r.Code == http.StatusOK:
				rep.Answered++
			case r.Code >= 400 && strings.Contains(string(r.Body), `"error"`):
				rep.Errors++
			default:
				rep.Lost++
			}
			resMu.Unlock()
		}
	}()

	// Break agents at random, spread over the run, one at a time.
	victims := rand.Perm(o.n)[:min(o.failures, o.n)]
	gap := o.duration / time.Duration(len(victims)+1)
	var wg sync.WaitGroup
	var failMu sync.Mutex
	for k, idx := range victims {
		select {
		case <-ctx.Done():
			attacker.Stop()
			return nil, ctx.Err()
		case <-time.After(gap):
		}
		m := members[idx]
		kind := "hang"
		if k%2 == 1 {
			kind = "kill"
		}
		wg.Add(1)
		go func(m *member, kind string) {
			defer wg.Done()
			f := breakAgent(ctx, ps, consul, o.root, m, kind)
			failMu.Lock()
			rep.Failures = append(rep.Failures, f)
			failMu.Unlock()
			say("  %-10s %-4s detected by Consul after %.1fs (bound %s)", f.Agent, f.Kind, f.Detected, rep.DetectionBound)
		}(m, kind)
	}
	<-resDone
	wg.Wait()
	elapsed := time.Since(t0).Seconds()

	rep.ConsulCPU = 100 * (cpuSeconds(consulPID) - cpu0) / elapsed
	rep.ConsulRSSMB = rssMB(consulPID)
	var sidecarCPU1 float64
	var rss []float64
	for _, m := range members {
		sidecarCPU1 += cpuSeconds(m.pid)
		rss = append(rss, rssMB(m.pid))
	}
	rep.SidecarCPU = 100 * (sidecarCPU1 - sidecarCPU0) / elapsed / float64(o.n)
	sort.Float64s(rss)
	var sum float64
	for _, r := range rss {
		sum += r
	}
	rep.SidecarRSSMB, rep.SidecarRSSMaxMB = sum/float64(len(rss)), rss[len(rss)-1]
	rep.Writes, rep.Reads, rep.Blocking, rep.WritesByPath = counter.rates(elapsed)
	sort.Slice(rep.Failures, func(i, j int) bool { return rep.Failures[i].Agent < rep.Failures[j].Agent })
	printReport(o.out, rep)
	return rep, nil
}

// breakAgent hangs or kills one member and measures how long until its
// heartbeat check is critical in Consul; then it brings it back.
func breakAgent(ctx context.Context, ps *proc.Group, consul *api.Client, root string, m *member, kind string) Failure {
	f := Failure{Agent: m.id, Kind: kind, Detected: -1}
	var st struct {
		Process struct {
			PID int `json:"pid"`
		} `json:"process"`
	}
	_ = getJSON(m.control+"/v1/status", &st)
	start := time.Now()
	switch kind {
	case "hang":
		if st.Process.PID > 0 {
			_ = syscall.Kill(st.Process.PID, syscall.SIGSTOP) // the sidecar isolates and restarts it
		}
	case "kill":
		_ = syscall.Kill(-m.pid, syscall.SIGKILL) // the sidecar's process group
		if st.Process.PID > 0 {
			_ = syscall.Kill(-st.Process.PID, syscall.SIGKILL) // and the agent's
		}
	}
	for time.Since(start) < 30*time.Second && ctx.Err() == nil {
		if checkStatus(consul, m.id) == api.HealthCritical {
			f.Detected = time.Since(start).Seconds()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A heartbeat arrives at most every second, so the last one was up to
	// 1 s before the failure; Consul's TTL timer adds its own slack.
	f.Within = f.Detected >= 0 && f.Detected <= (time.Duration(missed)*interval+grace).Seconds()+0.5
	if kind == "kill" {
		time.Sleep(time.Second)
		if pid, err := ps.Start(m.id+"-again", nil, filepath.Join(root, "bin", "sidecar"), "agent", "-config", m.cfg); err == nil {
			m.pid = pid
		}
	}
	return f
}

const workerConfig = `
agent {
  name = "worker"
  id   = %[1]q
  port = %[2]d
  exec {
    command = ["bin/agent-go"]
    env     = { AGENT_PORT = "%[2]d", HEARTBEAT_EVERY = "1" }
    restart_on_isolation = true
    stop_timeout = "2s"
  }
}
listen { address = "127.0.0.1:%[3]d" }
consul {
  address = "127.0.0.1:%[4]d"
  deregister_critical_after = "1m"
}
health {
  heartbeat_interval = %[5]q
  missed_heartbeats  = %[6]d
  grace              = %[7]q
}
`

const dispatcherConfig = `
agent {
  name = "dispatcher"
}
listen { address = "127.0.0.1:%[1]d" }
consul { address = "127.0.0.1:%[2]d" }
health { heartbeat_interval = "1h" }
breaker "default" {
  consecutive_failures = 3
  open_for = "2s"
}
upstream "worker" {
  timeout = "2s"
  retries = 2
}
`

// counter is a reverse proxy in front of Consul that counts requests.
type counter struct {
	srv *http.Server
	mu  sync.Mutex
	by  map[string]int
	w   atomic.Int64
	r   atomic.Int64
	b   atomic.Int64
}

func startCounter(addr, target string) (*counter, error) {
	c := &counter{by: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ErrorLog = log.New(io.Discard, "", 0) // blocking queries cut at shutdown
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet:
			c.w.Add(1)
			c.mu.Lock()
			c.by[r.Method+" "+pathClass(r.URL.Path)]++
			c.mu.Unlock()
		case r.URL.Query().Get("index") != "":
			c.b.Add(1)
		default:
			c.r.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = c.srv.Serve(l) }()
	return c, nil
}

// pathClass drops the IDs from a Consul API path.
func pathClass(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) > 5 {
		parts = parts[:5]
	}
	return strings.Join(parts, "/")
}

func (c *counter) reset() {
	c.w.Store(0)
	c.r.Store(0)
	c.b.Store(0)
	c.mu.Lock()
	c.by = map[string]int{}
	c.mu.Unlock()
}

func (c *counter) rates(secs float64) (writes, reads, blocking float64, by map[string]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	by = map[string]float64{}
	for k, v := range c.by {
		by[k] = float64(v) / secs
	}
	return float64(c.w.Load()) / secs, float64(c.r.Load()) / secs, float64(c.b.Load()) / secs, by
}

func countPassing(c *api.Client) int {
	entries, _, err := c.Health().Service("worker", "", true, nil)
	if err != nil {
		return 0
	}
	return len(entries)
}

func checkStatus(c *api.Client, id string) string {
	checks, err := c.Agent().Checks()
	if err != nil {
		return ""
	}
	for _, ch := range checks {
		if ch.ServiceID == id && ch.Name == "heartbeat" {
			return ch.Status
		}
	}
	return ""
}

func getJSON(u string, into any) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(into)
}

// cpuSeconds is a process's user+system CPU time so far (Linux).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rssMB is a process's resident memory (Linux).
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\n%d agents, %s of load, %d CPUs\n", r.Agents, r.Duration, r.CPUs)
	fmt.Fprintf(w, "  tasks        %d sent, %d answered, %d clear errors, %d lost\n", r.Tasks, r.Answered, r.Errors, r.Lost)
	within, worst := 0, 0.0
	for _, f := range r.Failures {
		if f.Within {
			within++
		}
		worst = max(worst, f.Detected)
	}
	fmt.Fprintf(w, "  failures     %d (hung or killed), %d detected by Consul within %s; slowest %.1fs\n",
		len(r.Failures), within, r.DetectionBound, worst)
	fmt.Fprintf(w, "  Consul       %.1f%% of a CPU, %.0f MB RSS; %.1f writes/s, %.1f reads/s, %.1f blocking queries/s\n",
		r.ConsulCPU, r.ConsulRSSMB, r.Writes, r.Reads, r.Blocking)
	if by, ok := r.WritesByPath.(map[string]float64); ok {
		keys := make([]string, 0, len(by))
		for k := range by {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return by[keys[i]] > by[keys[j]] })
		for _, k := range keys {
			fmt.Fprintf(w, "               %-45s %.2f/s\n", k, by[k])
		}
	}
	fmt.Fprintf(w, "  sidecars     %.1f MB RSS on average (max %.1f), %.2f%% of a CPU each\n", r.SidecarRSSMB, r.SidecarRSSMaxMB, r.SidecarCPU)
}
