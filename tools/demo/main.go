// Command demo runs a small fleet of agents on one machine, breaks things on
// purpose and shows that the tasks keep getting handled (make demo).
//
// It starts a Consul dev agent, two fake models (gpt-4o and the lighter
// gpt-4o-mini) and five agents in four languages, each under its own
// sidecar (configurations: tools/demo/*.hcl):
//
//	writer-1, writer-2  Python (examples/python), the service "writer"
//	writer-lite         Node   (examples/node), the fallback service of writer
//	researcher          Go     (examples/go), called by the writers via /call/
//	indexer             shell  (examples/shell), reports with sidecar heartbeat
//
// A task generator sends tasks to the writers' sidecars (their ingress) while
// the primary model fails, the indexer's batch job runs away until its
// budget stops it (the demo plays the job), an agent hangs and a whole
// service fails; the demo narrates what the sidecars did about it, from
// their event streams and webhooks, and ends with a table of how every
// task was answered. When a Jaeger is built (make jaeger), the demo starts
// it too and every sidecar sends it its traces (tracing.go). Run it from the
// repository root after make build; -keep leaves the fleet running until
// Ctrl-C. Ctrl-C always stops every process the demo started.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/jaegertest"
	"github.com/agent-sidecar/sidecar/tools/internal/proc"
)

// startProc starts a process of the demo; its pid is not needed.
func startProc(ps *proc.Group, name string, env []string, argv ...string) error {
	_, err := ps.Start(name, env, argv...)
	return err
}

const (
	consulHTTP = "127.0.0.1:18500"
	hookAddr   = "127.0.0.1:19090"
	primaryLLM = "127.0.0.1:19201"
	liteLLM    = "127.0.0.1:19202"
	claudeLLM  = "127.0.0.1:19203"
)

// member is one agent of the fleet with its sidecar.
type member struct {
	id, config string
	control    string // the sidecar's control API
	agent      string // the agent's own task port ("" for none)
}

var fleet = []member{
	{"researcher-1", "researcher.hcl", "127.0.0.1:17074", "127.0.0.1:18084"},
	{"writer-lite-1", "writer-lite.hcl", "127.0.0.1:17073", "127.0.0.1:18083"},
	{"writer-1", "writer-1.hcl", "127.0.0.1:17071", "127.0.0.1:18081"},
	{"writer-2", "writer-2.hcl", "127.0.0.1:17072", "127.0.0.1:18082"},
	{"indexer-1", "indexer.hcl", "127.0.0.1:17075", ""},
}

// ingresses are where the task generator sends tasks: the writers' sidecars.
var ingresses = []string{"127.0.0.1:17081", "127.0.0.1:17082"}

var demoPorts = []int{18500, 18300, 18301, 18302, 19090, 19201, 19202, 19203,
	17071, 17072, 17073, 17074, 17075, 17081, 17082, 17083, 17084, 18081, 18082, 18083, 18084}

type options struct {
	root      string // the repository root; binaries in root/bin
	consulBin string
	jaegerBin string // "" for none: no traces
	short     bool   // shorter phases, for the test
	keep      bool   // leave the fleet running until ctx ends
	out       io.Writer
	tty       bool // draw a live progress line
}

// report is what the run showed.
type report struct {
	Phases   []string
	Counts   []counts
	Total    counts
	Runaway  runaway  // the indexer's runaway job and its budget
	Restarts int      // of writer-1, after it hung
	Errors   []string // the first error answers, if any
}

var phaseNames = []string{
	"1 steady state",
	"2 primary model fails",
	"3 OpenAI down",
	"4 indexer runs away",
	"5 writer-1 hangs",
	"6 service writer fails",
	"7 everything recovers",
}

func main() {
	root := flag.String("root", ".", "the repository root (binaries in ROOT/bin)")
	keep := flag.Bool("keep", os.Getenv("KEEP") == "1", "leave the fleet running until Ctrl-C ($KEEP=1)")
	short := flag.Bool("short", false, "shorter phases")
	flag.Parse()
	consulBin := os.Getenv("CONSUL_BIN")
	if consulBin == "" {
		consulBin = "consul"
	}
	// Jaeger when one is built (make jaeger); the demo never builds it.
	jaegerBin, _ := jaegertest.FindBinary()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, _ := os.Stdout.Stat()
	rep, err := run(ctx, options{root: *root, consulBin: consulBin, jaegerBin: jaegerBin, short: *short,
		keep: *keep, out: os.Stdout, tty: st != nil && st.Mode()&os.ModeCharDevice != 0})
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo: interrupted; everything it started is stopped")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if rep.Total.Unhandled() > 0 || rep.Total.Fallback() == 0 {
		os.Exit(1)
	}
}

// printer writes narration above the live progress line.
type printer struct {
	mu   sync.Mutex
	out  io.Writer
	tty  bool
	live string
}

func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.live != "" {
		fmt.Fprint(p.out, "\r\033[K")
	}
	fmt.Fprintf(p.out, format+"\n", args...)
	if p.tty && p.live != "" {
		fmt.Fprint(p.out, p.live)
	}
}

func (p *printer) setLive(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = "   " + line
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K"+p.live)
	}
}

func (p *printer) clearLive() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.live != "" {
		fmt.Fprint(p.out, "\r\033[K")
	}
	p.live = ""
}

func run(ctx context.Context, o options) (rep report, err error) {
	pr := &printer{out: o.out, tty: o.tty}
	say := pr.say
	head := func(format string, args ...any) { say("\n\033[1m== "+format+"\033[0m", args...) }
	if !o.tty {
		head = func(format string, args ...any) { say("\n== "+format, args...) }
	}
	hold := func(full, short time.Duration) time.Duration {
		if o.short {
			return short
		}
		return full
	}
	bin := func(name string) string { return filepath.Join(o.root, "bin", name) }
	for _, b := range []string{"sidecar", "fakellm", "agent-go"} {
		if _, err := os.Stat(bin(b)); err != nil {
			return rep, fmt.Errorf("%s is missing: run make build first (make demo does)", bin(b))
		}
	}
	if _, err := os.Stat(filepath.Join(o.root, "examples/node/node_modules/openai")); err != nil {
		return rep, errors.New("examples/node needs its packages: npm ci --prefix examples/node (make demo does)")
	}
	if err := proc.PortsFree(demoPorts); err != nil {
		return rep, err
	}
	logs, err := os.MkdirTemp("", "sidecar-demo-")
	if err != nil {
		return rep, err
	}
	ps := &proc.Group{Root: o.root, Logs: logs}
	defer func() {
		pr.clearLive()
		head("stopping everything the demo started")
		ps.StopAll()
		say("   logs kept in %s", logs)
	}()
	hook, err := webhook(hookAddr, say)
	if err != nil {
		return rep, err
	}
	defer hook.Close()

	head("starting a Consul dev agent (UI: http://%s/ui/)", consulHTTP)
	if err := startProc(ps, "consul", nil, o.consulBin, "agent", "-dev", "-node", "demo", "-bind", "127.0.0.1",
		"-client", "127.0.0.1", "-http-port", "18500", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-server-port", "18300", "-serf-lan-port", "18301", "-serf-wan-port", "18302",
		"-hcl", `check_update_interval = "0s"`, "-hcl", "disable_update_check = true"); err != nil {
		return rep, err
	}
	consul, _ := api.NewClient(&api.Config{Address: consulHTTP})
	if err := ps.WaitUntil(ctx, 30*time.Second, "Consul electing itself leader", func() bool {
		l, err := consul.Status().Leader()
		return err == nil && l != ""
	}); err != nil {
		return rep, err
	}

	head("starting three fake models: gpt-4o, its lighter fallback gpt-4o-mini, and claude-haiku (Anthropic's API) after them")
	for _, m := range [][2]string{{"gpt-4o", primaryLLM}, {"gpt-4o-mini", liteLLM}, {"claude-haiku", claudeLLM}} {
		if err := startProc(ps, m[0], nil, bin("fakellm"), "-addr", m[1], "-name", m[0],
			"-reply", "An answer from "+m[0]+"."); err != nil {
			return rep, err
		}
	}

	traces, err := startTracing(ctx, o, ps, head, say)
	if err != nil {
		return rep, err
	}

	head("starting five agents, each under its own sidecar (tools/demo/*.hcl)")
	say("   writer-1, writer-2  Python   service writer: takes the tasks, asks gpt-4o, calls the researcher")
	say("   writer-lite         Node     fallback service of writer, asks gpt-4o-mini")
	say("   researcher          Go       called by the writers through /call/researcher/")
	say("   indexer             shell    a batch job reporting with `sidecar heartbeat`")
	say("   heartbeats every 1-2s; an agent is isolated 5s after its last one")
	// The indexer's budget keeps its spend under DEMO_STATE_DIR: a fresh
	// one for each run, so a run never starts with the last one's spend.
	env := []string{"CONSUL_HTTP_ADDR=" + consulHTTP, "DEMO_MODEL_KEY=demo-key-not-secret",
		"DEMO_STATE_DIR=" + filepath.Join(logs, "state")}
	for _, m := range fleet {
		argv := []string{bin("sidecar"), "agent", "-config", "tools/demo/fleet.hcl", "-config", "tools/demo/" + m.config}
		if traces != nil {
			argv = append(argv, "-config", traces.config)
		}
		if err := startProc(ps, m.id, env, argv...); err != nil {
			return rep, err
		}
	}
	if err := ps.WaitUntil(ctx, 60*time.Second, "every agent passing in Consul", func() bool {
		for _, m := range fleet {
			if checkStatus(consul, m.id) != api.HealthPassing {
				return false
			}
		}
		return true
	}); err != nil {
		return rep, err
	}
	say("   all five pass their heartbeat checks in Consul")

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for _, m := range fleet {
		go watchEvents(watchCtx, m.control, say)
	}

	gen := newGenerator(ingresses, hold(200*time.Millisecond, 150*time.Millisecond), len(phaseNames))
	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan struct{})
	go func() { gen.run(genCtx); close(genDone) }()
	defer func() { stopGen(); <-genDone }()
	go func() {
		for {
			select {
			case <-genDone:
				return
			case <-time.After(250 * time.Millisecond):
				pr.setLive(gen.line())
			}
		}
	}()
	// startPhase counts new tasks in phase i and waits for the earlier
	// phases' tasks to end before the caller injects the phase's fault.
	startPhase := func(i int) error {
		gen.setPhase(i)
		return ps.WaitUntil(ctx, 40*time.Second, "the tasks of the previous phase to end", func() bool { return gen.drained(i) })
	}
	endPhase := func(i int) {
		c := gen.snapshot()[i]
		say("   → %s: %d tasks, %d by primary, %d by fallback (peer %d, writer-lite %d, gpt-4o-mini %d, claude-haiku %d), %d not handled",
			phaseNames[i], c.Sent, c.Primary, c.Fallback(), c.Peer, c.Service, c.LiteModel, c.OtherProvider, c.Unhandled())
	}
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	primaryAgain := func(n int) func() bool {
		return func() bool { return gen.lastAll(n, func(x outcome) bool { return x == byPrimary }) }
	}
	count := func(i int, pick func(counts) int) func() bool {
		return func() bool { return pick(gen.snapshot()[i]) >= 3 }
	}

	// 1. Steady state.
	if err := startPhase(0); err != nil {
		return rep, err
	}
	head("%s: a task every %s to writer-1 and writer-2, through their sidecars", phaseNames[0], gen.interval)
	if err := sleep(hold(6*time.Second, 3*time.Second)); err != nil {
		return rep, err
	}
	endPhase(0)

	// 2. The primary model fails.
	if err := startPhase(1); err != nil {
		return rep, err
	}
	head("%s: gpt-4o answers 503 to every call", phaseNames[1])
	say("   each sidecar's breaker for gpt-4o opens after 3 failures; the same requests go to gpt-4o-mini")
	if err := proc.Post("http://"+primaryLLM+"/_control", `{"fail_next":1000000,"fail_status":503}`); err != nil {
		return rep, err
	}
	if err := ps.WaitUntil(ctx, 30*time.Second, "answers from gpt-4o-mini", count(1, func(c counts) int { return c.LiteModel })); err != nil {
		return rep, err
	}
	if err := sleep(hold(6*time.Second, 3*time.Second)); err != nil {
		return rep, err
	}
	say("   gpt-4o recovers; after open_for (5s) one probe per breaker goes through and closes it")
	if err := proc.Post("http://"+primaryLLM+"/_heal", ""); err != nil {
		return rep, err
	}
	if err := ps.WaitUntil(ctx, 40*time.Second, "gpt-4o answering again", primaryAgain(5)); err != nil {
		return rep, err
	}
	endPhase(1)

	// 3. A provider-wide outage: both OpenAI models fail.
	if err := startPhase(2); err != nil {
		return rep, err
	}
	head("%s: gpt-4o and gpt-4o-mini both answer 503", phaseNames[2])
	say("   the chain's last model is claude-haiku, of the other provider: the sidecars translate the agents'")
	say("   OpenAI requests to Anthropic's Messages API and the answers back; the agents notice nothing")
	for _, addr := range []string{primaryLLM, liteLLM} {
		if err := proc.Post("http://"+addr+"/_control", `{"fail_next":1000000,"fail_status":503}`); err != nil {
			return rep, err
		}
	}
	if err := ps.WaitUntil(ctx, 30*time.Second, "answers from claude-haiku", count(2, func(c counts) int { return c.OtherProvider })); err != nil {
		return rep, err
	}
	if err := sleep(hold(6*time.Second, 3*time.Second)); err != nil {
		return rep, err
	}
	say("   OpenAI recovers; the probes close both breakers and gpt-4o answers again")
	for _, addr := range []string{primaryLLM, liteLLM} {
		if err := proc.Post("http://"+addr+"/_heal", ""); err != nil {
			return rep, err
		}
	}
	if err := ps.WaitUntil(ctx, 40*time.Second, "gpt-4o answering again", primaryAgain(5)); err != nil {
		return rep, err
	}
	endPhase(2)

	// 4. An agent runs away: the demo plays the indexer's batch job
	// calling its model in a loop, until the indexer's budget stops it.
	if err := startPhase(3); err != nil {
		return rep, err
	}
	indexer := fleet[4]
	head("%s: its batch job calls gpt-4o-mini in a loop, 20 times a second", phaseNames[3])
	say("   the indexer's sidecar has a budget (tools/demo/indexer.hcl): %q, %s tokens a minute, warning at 50%%,", runawayBudget, "3000")
	say("   then reject; the writers' tasks go on as before")
	rw, err := runAway(ctx, indexer.control, 50*time.Millisecond, 45*time.Second)
	if err != nil {
		return rep, err
	}
	rep.Runaway = rw
	if rw.Rejected == 0 {
		say("   the runaway job was not stopped: %d calls in %.1fs, %d tokens", rw.Calls, rw.Took.Seconds(), rw.Tokens)
	} else {
		say("   stopped after %d calls in %.1fs: %d answered, %d tokens spent; call %d got 429 %s, Retry-After: %ss:",
			rw.Calls, rw.Took.Seconds(), rw.Answered, rw.Tokens, rw.Calls, rw.Code, rw.RetryAfter)
		say("   %s", rw.Message)
		if n := budgetSpent(indexer.control, runawayBudget); n >= 0 {
			say("   the budget counts %d tokens this window: the runaway job's and those of the indexer's own rounds", n)
		}
		say("   every model call of the indexer gets the same answer until the window resets; the SDKs raise")
		say("   their rate-limit error with that message")
		if err := ps.WaitUntil(ctx, 15*time.Second, "the webhook told of budget.exceeded", func() bool {
			return hook.told("budget.exceeded")
		}); err != nil {
			return rep, err
		}
	}
	if err := sleep(hold(3*time.Second, time.Second)); err != nil {
		return rep, err
	}
	endPhase(3)

	// 5. An agent hangs.
	if err := startPhase(4); err != nil {
		return rep, err
	}
	head("%s: no more heartbeats, no more answers", phaseNames[4])
	say("   its tasks in flight time out (3s) and go to writer-2; after 3 failures its breaker opens")
	before := restarts(fleet[2].control)
	hung := time.Now()
	if err := proc.Post("http://"+fleet[2].agent+"/hang", ""); err != nil {
		return rep, err
	}
	if err := ps.WaitUntil(ctx, 20*time.Second, "writer-1 critical in Consul", func() bool {
		return checkStatus(consul, "writer-1") == api.HealthCritical
	}); err != nil {
		return rep, err
	}
	say("   Consul: writer-1 critical %.1fs after it hung; tasks sent to it go to its peer", time.Since(hung).Seconds())
	if err := ps.WaitUntil(ctx, 30*time.Second, "writer-1 restarted and passing", func() bool {
		return restarts(fleet[2].control) > before && checkStatus(consul, "writer-1") == api.HealthPassing
	}); err != nil {
		return rep, err
	}
	rep.Restarts = restarts(fleet[2].control) - before
	say("   Consul: writer-1 passing again %.1fs after it hung: restarted by its sidecar, nobody involved", time.Since(hung).Seconds())
	if err := sleep(hold(2*time.Second, time.Second)); err != nil {
		return rep, err
	}
	endPhase(4)

	// 6. A whole service fails.
	if err := startPhase(5); err != nil {
		return rep, err
	}
	head("%s: both writers answer every task with 503", phaseNames[5])
	say("   each writer's sidecar tries its agent, then the peer, then the fallback service writer-lite")
	for _, m := range fleet[2:4] {
		if err := proc.Post("http://"+m.agent+"/fail", ""); err != nil {
			return rep, err
		}
	}
	if err := ps.WaitUntil(ctx, 30*time.Second, "answers from writer-lite", count(5, func(c counts) int { return c.Service })); err != nil {
		return rep, err
	}
	if err := sleep(hold(6*time.Second, 3*time.Second)); err != nil {
		return rep, err
	}
	endPhase(5)

	// 7. Everything recovers.
	if err := startPhase(6); err != nil {
		return rep, err
	}
	head("%s: the writers take tasks again", phaseNames[6])
	say("   after open_for a probe closes each breaker and the writers answer their own tasks")
	for _, m := range fleet[2:4] {
		if err := proc.Post("http://"+m.agent+"/heal", ""); err != nil {
			return rep, err
		}
	}
	if err := ps.WaitUntil(ctx, 60*time.Second, "the writers answering again", primaryAgain(10)); err != nil {
		return rep, err
	}
	endPhase(6)

	stopGen()
	<-genDone
	pr.clearLive()
	rep.Phases = phaseNames
	rep.Counts = gen.snapshot()
	for _, c := range rep.Counts {
		rep.Total = rep.Total.plus(c)
	}
	rep.Errors = gen.firstErrors()
	head("summary")
	printSummary(o.out, rep)
	head("the fleet as Consul sees it: sidecar fleet")
	fl := exec.Command(bin("sidecar"), "fleet")
	fl.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+consulHTTP)
	out, _ := fl.CombinedOutput()
	say("%s", indent(string(out)))
	if traces != nil {
		head("traces in Jaeger")
		traces.report(ctx, say)
	}

	if o.keep {
		head("the fleet keeps running: Ctrl-C stops everything")
		say("   Consul UI:  http://%s/ui/dc1/services", consulHTTP)
		if traces != nil {
			say("   Jaeger UI:  %s: the traces of the demo, every sidecar's spans", traces.uiNote())
		}
		say("   a task:     curl -X POST -d '{\"input\":\"a haiku\"}' http://%s/task", ingresses[0])
		say("   hang one:   curl -X POST http://%s/hang", fleet[2].agent)
		say("   status:     SIDECAR_ADDR=http://%s bin/sidecar status", fleet[2].control)
		say("   fleet:      CONSUL_HTTP_ADDR=%s bin/sidecar fleet -watch", consulHTTP)
		say("   events:     curl -N http://%s/v1/events", fleet[2].control)
		say("   logs:       %s", logs)
		say("   tasks go on, one every 500ms:")
		more := newGenerator(ingresses, 500*time.Millisecond, 1)
		moreDone := make(chan struct{})
		go func() { more.run(ctx); close(moreDone) }()
		for {
			select {
			case <-moreDone:
				pr.clearLive()
				say("   since the summary: %s", more.line())
				return rep, nil
			case <-time.After(250 * time.Millisecond):
				pr.setLive(more.line())
			}
		}
	}
	verdict := "every task was handled"
	if n := rep.Total.Unhandled(); n > 0 {
		verdict = fmt.Sprintf("%d task(s) were not handled: %s", n, strings.Join(rep.Errors, "; "))
	}
	head("done: %s; %d by a fallback; no person involved", verdict, rep.Total.Fallback())
	return rep, nil
}

func printSummary(w io.Writer, rep report) {
	row := func(name string, c counts) {
		fmt.Fprintf(w, "   %-26s %5d %8d %9d %6d %12d %12d %13d %7d %5d\n", name, c.Sent, c.Handled(), c.Primary,
			c.Peer, c.Service, c.LiteModel, c.OtherProvider, c.Failed, c.Lost)
	}
	fmt.Fprintf(w, "   %-26s %5s %8s %9s %6s %12s %12s %13s %7s %5s\n", "phase", "sent", "handled", "primary",
		"peer", "writer-lite", "gpt-4o-mini", "claude-haiku", "failed", "lost")
	for i, c := range rep.Counts {
		row(rep.Phases[i], c)
	}
	row("total", rep.Total)
	fmt.Fprintf(w, "   primary: the writer it was sent to, with gpt-4o; peer: the other writer; writer-lite: the fallback\n"+
		"   service; gpt-4o-mini: the lighter model; claude-haiku: the other provider's model, the agent's request\n"+
		"   translated; failed: an error answer; lost: no answer at all\n")
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n   ")
}

// checkStatus is the status of an agent's heartbeat check in Consul.
func checkStatus(c *api.Client, serviceID string) string {
	checks, err := c.Agent().Checks()
	if err != nil {
		return ""
	}
	for _, ch := range checks {
		if ch.ServiceID == serviceID && ch.Name == "heartbeat" {
			return ch.Status
		}
	}
	return ""
}

// restarts is how often a sidecar restarted its agent.
func restarts(control string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + control + "/v1/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct {
		Process struct {
			Restarts int `json:"restarts"`
		} `json:"process"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st.Process.Restarts
}
