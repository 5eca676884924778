//go:build e2e

// Package chaos_test is the fault-injection suite (make chaos; make test
// runs it in its short form). Each scenario builds a small fleet of real
// processes (Consul, sidecars, python agents), puts it under steady load
// with vegeta, injects one fault, removes it, and checks that every request
// ended in an answer (first choice or fallback) or a clear error, never a
// hang or a silent drop, and that the system returned to normal.
package chaos_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

var (
	full      = flag.Bool("chaos.full", false, "the long form: longer faults, Consul down for a minute, a soak of minutes")
	tablePath = flag.String("chaos.table", "", "also write the results table (Markdown) to this file")
)

var sidecarBin string

// row is one line of the results table.
type row struct {
	Scenario                                  string
	Requests, Primary, Fallback, Errors, Lost int
	Recovery                                  string
	Note                                      string
}

var (
	rowsMu sync.Mutex
	rows   []row
)

func TestMain(m *testing.M) {
	flag.Parse()
	bin, err := testbin.BuildSidecar("chaos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sidecarBin = bin
	code := m.Run()
	_ = os.RemoveAll(filepath.Dir(bin))
	if table := renderTable(); table != "" {
		fmt.Print(table)
		if *tablePath != "" {
			_ = os.MkdirAll(filepath.Dir(*tablePath), 0o755)
			if err := os.WriteFile(*tablePath, []byte(table), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	os.Exit(code)
}

func renderTable() string {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	mode := "short"
	if *full {
		mode = "full"
	}
	fmt.Fprintf(&b, "Fault-injection suite (%s form), %s, %s, %d CPUs\n\n", mode, time.Now().UTC().Format("2006-01-02"),
		runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	b.WriteString("| scenario | requests | primary | fallback | clear errors | lost | recovery | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s |\n", r.Scenario, r.Requests, r.Primary, r.Fallback,
			r.Errors, r.Lost, r.Recovery, r.Note)
	}
	return b.String()
}

func record(r row) {
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
}

func dur(short, long time.Duration) time.Duration {
	if *full {
		return long
	}
	return short
}

// request kinds of the load.
const (
	taskCall   = "task"   // POST /call/writer/task
	modelCall  = "model"  // POST /llm/v1/chat/completions
	streamCall = "stream" // the same, streamed
	flakyCall  = "flaky"  // POST /call/flaky/work
)

// targeter sends the kinds in turn, each with a fresh Idempotency-Key.
func (f *fleet) targeter(kinds ...string) vegeta.Targeter {
	var mu sync.Mutex
	n := 0
	base := f.dispatcher.control
	return func(tgt *vegeta.Target) error {
		mu.Lock()
		kind := kinds[n%len(kinds)]
		n++
		mu.Unlock()
		key := make([]byte, 8)
		_, _ = rand.Read(key)
		tgt.Method = http.MethodPost
		tgt.Header = http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {hex.EncodeToString(key)}}
		switch kind {
		case taskCall:
			tgt.URL, tgt.Body = base+"/call/writer/task", []byte(`{"input":"a task"}`)
		case modelCall, streamCall:
			tgt.URL = base + "/llm/v1/chat/completions"
			tgt.Body = fmt.Appendf(nil, `{"model":"gpt-4o","stream":%t,"messages":[{"role":"user","content":"hello"}]}`, kind == streamCall)
		case flakyCall:
			tgt.URL, tgt.Body = base+"/call/flaky/work", []byte(`{}`)
		}
		return nil
	}
}

// outcome of one request.
type outcome int

const (
	primary  outcome = iota // answered by the first choice
	fallback                // answered by a fallback (peer, service, lighter model)
	clearErr                // an error answer saying what went wrong, or refused before anything was sent
	lost                    // no answer, or an answer cut without saying why
)

func classify(r *vegeta.Result) outcome {
	switch {
	case r.Code >= 200 && r.Code < 300:
		if strings.Contains(r.Headers.Get("Content-Type"), "text/event-stream") {
			body := string(r.Body)
			switch {
			case strings.Contains(body, "data: [DONE]"):
			case strings.Contains(body, `"error"`):
				return clearErr // the stream ended with an error event
			default:
				return lost
			}
		}
		if r.Error != "" {
			return lost // the body broke off
		}
		if r.Headers.Get("X-Sidecar-Fallback") == "true" || r.Headers.Get("X-Sidecar-Degraded") == "true" {
			return fallback
		}
		return primary
	case r.Code >= 400:
		var e struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(r.Body, &e) == nil && len(e.Error) > 0 {
			return clearErr
		}
		return lost
	default:
		if strings.Contains(r.Error, "connection refused") {
			return clearErr // nothing was sent: the caller knows to retry
		}
		return lost
	}
}

// load is vegeta attacking the dispatcher at a constant rate until stopped.
type load struct {
	attacker *vegeta.Attacker
	mu       sync.Mutex
	results  []*vegeta.Result
	done     chan struct{}
}

func (f *fleet) startLoad(rate int, kinds ...string) *load {
	l := &load{attacker: vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.KeepAlive(true)), done: make(chan struct{})}
	ch := l.attacker.Attack(f.targeter(kinds...), vegeta.ConstantPacer{Freq: rate, Per: time.Second}, 0, "chaos")
	go func() {
		defer close(l.done)
		for r := range ch {
			l.mu.Lock()
			l.results = append(l.results, r)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *load) stop() []*vegeta.Result {
	l.attacker.Stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

// streak says whether the last n results (by end time) were all answered
// by the first choice.
func (l *load) streak(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.results) < n {
		return false
	}
	for _, r := range l.results[len(l.results)-n:] {
		if classify(r) != primary {
			return false
		}
	}
	return true
}

// scenario is one fault: inject it, hold it, heal it.
type scenario struct {
	name  string
	rate  int
	kinds []string
	// fault injects the fault and returns what heals it (nil when the
	// system heals itself, e.g. a restart).
	fault func(f *fleet) (heal func())
	hold  time.Duration
	// normal is the extra condition of "back to normal" (besides a streak
	// of first-choice answers), e.g. every agent registered again.
	normal func(f *fleet) bool
	// streakOf is the streak of first-choice answers that means normal (0:
	// 10).
	streakOf int
	// wantFallback: the fault must have been absorbed by fallbacks.
	wantFallback bool
	note         func(f *fleet) string
}

func runScenario(t *testing.T, sc scenario) {
	f := newFleet(t)
	l := f.startLoad(sc.rate, sc.kinds...)
	time.Sleep(2 * time.Second) // steady state first
	// Recovery is timed from the end of the fault, or for a fault that
	// heals itself (a crash, a hang: the sidecar restarts the agent) from
	// the fault.
	healed := time.Now()
	heal := sc.fault(f)
	if heal != nil {
		time.Sleep(sc.hold)
		heal()
		healed = time.Now()
	}
	streak := sc.streakOf
	if streak == 0 {
		streak = 10
	}
	if !testutil.Poll(60*time.Second, func() bool { return l.streak(streak) && (sc.normal == nil || sc.normal(f)) }) {
		l.stop()
		t.Fatalf("%s: not back to normal 60s after the fault ended\n%s", sc.name, f.logs())
	}
	recovery := time.Since(healed)
	time.Sleep(500 * time.Millisecond)
	results := l.stop()

	r, lostOnes := tally(sc.name, results)
	r.Recovery = fmt.Sprintf("%.1fs", recovery.Seconds())
	if sc.note != nil {
		r.Note = sc.note(f)
	}
	record(r)
	t.Logf("%+v", r)
	if r.Lost > 0 {
		t.Errorf("%s: %d of %d requests lost (no answer or cut without a reason): %s\n%s", sc.name, r.Lost, r.Requests,
			strings.Join(lostOnes, "; "), f.logs())
	}
	if sc.wantFallback && r.Fallback == 0 {
		t.Errorf("%s: no request was answered by a fallback: %+v", sc.name, r)
	}
	if r.Primary == 0 {
		t.Errorf("%s: no request answered by the first choice: %+v", sc.name, r)
	}
}

// tally counts how the results ended, into a table row (Recovery "-"), and
// describes the first few lost ones.
func tally(scenario string, results []*vegeta.Result) (row, []string) {
	r := row{Scenario: scenario, Requests: len(results), Recovery: "-"}
	var lostOnes []string
	for _, res := range results {
		switch classify(res) {
		case primary:
			r.Primary++
		case fallback:
			r.Fallback++
		case clearErr:
			r.Errors++
		case lost:
			r.Lost++
			if len(lostOnes) < 5 {
				lostOnes = append(lostOnes, fmt.Sprintf("%s %s: %d %q %.200s", res.Method, res.URL, res.Code, res.Error, res.Body))
			}
		}
	}
	return r, lostOnes
}

func bothRegistered(f *fleet) bool { return f.passing("writer-1") && f.passing("writer-2") }

func TestChaos(t *testing.T) {
	hold := dur(4*time.Second, 15*time.Second)
	tasks := []string{taskCall}
	models := []string{modelCall, streamCall}
	scenarios := []scenario{
		{name: "Consul killed and restarted (state lost)", rate: 20, kinds: tasks, hold: hold, normal: bothRegistered,
			fault: func(f *fleet) func() { f.consul.Stop(); return func() { f.consul.Restart(f.t) } }},
		{name: fmt.Sprintf("Consul unreachable for %s", dur(10*time.Second, time.Minute)), rate: 20, kinds: tasks,
			hold: dur(10*time.Second, time.Minute), normal: bothRegistered,
			fault: func(f *fleet) func() { f.consul.Stop(); return func() { f.consul.Restart(f.t) } }},
		{name: "Consul slow (every answer 2s late)", rate: 20, kinds: tasks, hold: hold, normal: bothRegistered,
			fault: func(f *fleet) func() {
				f.consulVia.delay.Store(int64(2 * time.Second))
				return func() { f.consulVia.delay.Store(0) }
			}},
		{name: "agent crashes", rate: 20, kinds: tasks, hold: hold, wantFallback: true,
			normal: func(f *fleet) bool { return f.writers[0].restarts() > 0 && bothRegistered(f) },
			fault: func(f *fleet) func() {
				_ = f.writers[0].agentControl("/crash", "")
				return nil
			},
			note: func(f *fleet) string { return fmt.Sprintf("%d restart(s)", f.writers[0].restarts()) }},
		{name: "agent hangs (SIGSTOP)", rate: 20, kinds: tasks, hold: hold, wantFallback: true,
			normal: func(f *fleet) bool { return f.writers[0].restarts() > 0 && bothRegistered(f) },
			fault: func(f *fleet) func() {
				if pid := f.writers[0].agentPID(); pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGSTOP)
				} else {
					f.t.Fatal("no pid for writer-1's agent")
				}
				return nil
			},
			note: func(f *fleet) string {
				return fmt.Sprintf("isolated and restarted (%d restart(s))", f.writers[0].restarts())
			}},
		{name: "agent answers slowly (5s)", rate: 20, kinds: tasks, hold: hold, wantFallback: true,
			fault: func(f *fleet) func() {
				_ = f.writers[0].agentControl("/slow", `{"seconds":5}`)
				return func() { _ = f.writers[0].agentControl("/heal", "") }
			}},
		{name: "agent answers garbage (not HTTP)", rate: 20, kinds: tasks, hold: hold, wantFallback: true,
			fault: func(f *fleet) func() {
				_ = f.writers[0].agentControl("/garbage", "")
				return func() { _ = f.writers[0].agentControl("/heal", "") }
			}},
		{name: "model fails every call", rate: 20, kinds: models, hold: hold, wantFallback: true,
			fault: modelFault(fakellm.Faults{FailNext: 1 << 30, FailStatus: 503})},
		{name: "model fails 30% of calls", rate: 20, kinds: models, hold: hold, wantFallback: true,
			fault: modelFault(fakellm.Faults{FailRate: 30, FailStatus: 503})},
		{name: "model stalls before the first byte", rate: 10, kinds: []string{streamCall}, hold: hold, wantFallback: true,
			fault: modelFault(fakellm.Faults{Stall: time.Minute})},
		{name: "model cuts streams midway", rate: 20, kinds: []string{streamCall}, hold: hold,
			fault: modelFault(fakellm.Faults{CutAfter: 2})},
		{name: "model resets connections", rate: 20, kinds: models, hold: hold, wantFallback: true,
			fault: modelFault(fakellm.Faults{Reset: true})},
		{name: "sidecar restarted under load (SIGTERM)", rate: 20, kinds: tasks, hold: dur(2*time.Second, 5*time.Second),
			normal: bothRegistered,
			fault: func(f *fleet) func() {
				f.stop(f.writers[0])
				return func() { f.launch(f.writers[0]) }
			}},
	}
	scenarios = append(scenarios, hostileScenarios(hold)...)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			need(t, "python3")
			runScenario(t, sc)
		})
	}
	t.Run("burst of 1000 concurrent calls, 30% upstream failures", func(t *testing.T) {
		need(t, "python3")
		burst(t)
	})
	t.Run("soak", func(t *testing.T) {
		need(t, "python3")
		soak(t, dur(20*time.Second, 3*time.Minute))
	})
}

func modelFault(faults fakellm.Faults) func(f *fleet) func() {
	return func(f *fleet) func() {
		f.primary.Set(faults)
		return f.primary.Heal
	}
}

// burst sends 1000 calls at once to an upstream that answers in 500 ms and
// fails 30% of them.
func burst(t *testing.T) {
	f := newFleet(t)
	f.flaky.delay.Store(int64(500 * time.Millisecond))
	f.flaky.failRate.Store(30)
	f.steadyDelay.Store(int64(500 * time.Millisecond))
	attacker := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.Workers(1000), vegeta.MaxWorkers(1000))
	next := f.targeter(flakyCall)
	var mu sync.Mutex
	sent := 0
	exactly1000 := func(tgt *vegeta.Target) error {
		mu.Lock()
		defer mu.Unlock()
		if sent == 1000 {
			return vegeta.ErrNoTargets
		}
		sent++
		return next(tgt)
	}
	start := time.Now()
	var results []*vegeta.Result
	for r := range attacker.Attack(exactly1000, vegeta.ConstantPacer{Freq: 10000, Per: time.Second}, time.Second, "burst") {
		if r.Error != vegeta.ErrNoTargets.Error() { // vegeta's own end-of-targets marker
			results = append(results, r)
		}
	}
	took := time.Since(start)
	r, _ := tally("burst of 1000 concurrent calls, 30% upstream failures", results)
	var m vegeta.Metrics
	for _, res := range results {
		m.Add(res)
	}
	m.Close()
	r.Note = fmt.Sprintf("up to %d calls in flight at once; all answered in %.1fs, p99 %s",
		f.peakInFlight.Load(), took.Seconds(), m.Latencies.P99.Round(time.Millisecond))
	record(r)
	t.Logf("%+v", r)
	if r.Requests != 1000 || r.Lost > 0 || r.Fallback == 0 || f.peakInFlight.Load() < 500 {
		t.Errorf("burst: %+v; want 1000 requests, none lost, some by the fallback, at least 500 in flight at once (peak %d)\n%s", r, f.peakInFlight.Load(), f.logs())
	}
}

// soak runs steady mixed load and checks that the sidecars' goroutines,
// open files and memory stay flat.
func soak(t *testing.T, d time.Duration) {
	f := newFleet(t)
	l := f.startLoad(30, taskCall, modelCall, streamCall)
	procs := []*sidecarProc{f.dispatcher, f.writers[0]}
	sample := func() [][3]float64 {
		var out [][3]float64
		for _, p := range procs {
			out = append(out, [3]float64{p.metric("go_goroutines"), p.metric("process_open_fds"), p.metric("process_resident_memory_bytes")})
		}
		return out
	}
	time.Sleep(5 * time.Second) // warm up: connection pools, buffers
	first := sample()
	time.Sleep(d)
	last := sample()
	results := l.stop()
	time.Sleep(3 * time.Second) // idle connections close
	settled := sample()

	r, _ := tally(fmt.Sprintf("soak, %s of mixed load", d.Round(time.Second)), results)
	var notes []string
	for i, p := range procs {
		a, b := first[i], last[i]
		notes = append(notes, fmt.Sprintf("%s: goroutines %.0f→%.0f, fds %.0f→%.0f, RSS %.1f→%.1f MB",
			p.id, a[0], b[0], a[1], b[1], a[2]/1e6, b[2]/1e6))
		if b[0] > a[0]*1.5+20 {
			t.Errorf("%s: goroutines grew from %.0f to %.0f under steady load", p.id, a[0], b[0])
		}
		if b[1] > a[1]+20 {
			t.Errorf("%s: open files grew from %.0f to %.0f under steady load", p.id, a[1], b[1])
		}
		if b[2] > a[2]*1.5+16e6 {
			t.Errorf("%s: RSS grew from %.1f MB to %.1f MB under steady load", p.id, a[2]/1e6, b[2]/1e6)
		}
		if s := settled[i]; s[0] > a[0]+10 {
			t.Errorf("%s: %.0f goroutines after the load stopped, %.0f under load at the start", p.id, s[0], a[0])
		}
	}
	r.Note = strings.Join(notes, "; ")
	record(r)
	t.Logf("%+v", r)
	if r.Lost > 0 || r.Errors > 0 {
		t.Errorf("soak: %+v; want every request answered", r)
	}
}

func need(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed (.ci/run installs it)", bin)
		}
		t.Skipf("%s not found", bin)
	}
}
