//go:build e2e

package chaos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

// The hostile scenarios: what an attacker or an unlucky operator does to a
// running fleet, under the same load as the other scenarios. Their own
// requests are not part of the load's tally; the note says how they were
// answered. Each one must leave every sidecar serving.
func hostileScenarios(hold time.Duration) []scenario {
	return []scenario{nestedJSON(hold), badKVPolicy(hold), slowIngressClients(hold), callLoop(hold), endlessHeader(hold)}
}

// count is short in the short form, long in the long one.
func count(short, long int) int {
	if *full {
		return long
	}
	return short
}

// sidecars are every sidecar of the fleet.
func (f *fleet) sidecars() []*sidecarProc { return append([]*sidecarProc{f.dispatcher}, f.writers...) }

// everyoneServing says whether every sidecar process is still running and
// answers /v1/health.
func everyoneServing(f *fleet) bool {
	c := http.Client{Timeout: 3 * time.Second}
	for _, p := range f.sidecars() {
		select {
		case <-p.proc.Exited():
			return false
		default:
		}
		resp, err := c.Get(p.control + "/v1/health")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// attack sends an attacker's requests and counts how they were answered.
type attack struct {
	mu      sync.Mutex
	codes   map[string]int // "400", "508", or "no answer"
	unclear []string       // answers that are not a JSON error
	client  *http.Client
	done    chan struct{}
}

// startAttack sends n requests, conc at a time, in the background.
func startAttack(n, conc int, send func(c *http.Client) (*http.Response, error)) *attack {
	a := &attack{codes: map[string]int{}, done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range next {
				resp, err := send(a.client)
				a.add(resp, err)
			}
		})
	}
	go func() { wg.Wait(); a.client.CloseIdleConnections(); close(a.done) }()
	return a
}

func (a *attack) add(resp *http.Response, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.codes["no answer"]++
		if len(a.unclear) < 3 {
			a.unclear = append(a.unclear, err.Error())
		}
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.codes[fmt.Sprint(resp.StatusCode)]++
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if resp.StatusCode < 400 || json.Unmarshal(body, &e) != nil || len(e.Error) == 0 {
		if len(a.unclear) < 3 {
			a.unclear = append(a.unclear, fmt.Sprintf("%d %.200s", resp.StatusCode, body))
		}
	}
}

// wait waits for every request to be answered.
func (a *attack) wait() { <-a.done }

// answered is how many requests got code, and the summary of all answers,
// e.g. "400×50".
func (a *attack) answered(code int) (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.codes[fmt.Sprint(code)], countsByKey(a.codes)
}

// countsByKey is counts as "400×50, 508×4", in the order of their keys.
func countsByKey(counts map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// check fails the test unless every request got want with a JSON error.
func (a *attack) check(f *fleet, what string, n, want int) {
	got, all := a.answered(want)
	a.mu.Lock()
	unclear := a.unclear
	a.mu.Unlock()
	if got != n || len(unclear) > 0 {
		f.t.Errorf("%s: want %d of %d answered %d with a JSON error, got %s; e.g. %q", what, n, n, want, all, unclear)
	}
}

// checkClear fails the test unless every request got a JSON error, want at
// least once (a breaker may answer the rest: 503 while it is open).
func (a *attack) checkClear(f *fleet, what string, n, want int) {
	got, all := a.answered(want)
	a.mu.Lock()
	unclear := a.unclear
	a.mu.Unlock()
	if got == 0 || len(unclear) > 0 {
		f.t.Errorf("%s: want all %d answered with a JSON error, %d at least once, got %s; e.g. %q", what, n, want, all, unclear)
	}
}

// sampler reads a metric of some sidecars every 100 ms and keeps the
// highest value of each.
type sampler struct {
	mu    sync.Mutex
	first []float64
	peak  []float64
	stop  chan struct{}
	done  chan struct{}
}

func sample(metric string, procs ...*sidecarProc) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range procs {
		v := p.metric(metric)
		s.first = append(s.first, v)
		s.peak = append(s.peak, v)
	}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for i, p := range procs {
				v := p.metric(metric)
				s.mu.Lock()
				s.peak[i] = max(s.peak[i], v)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// end stops sampling and returns the first and the highest values.
func (s *sampler) end() (first, peak []float64) {
	close(s.stop)
	<-s.done
	return s.first, s.peak
}

// 1. A client posts bodies of ten million '[' to the model gateway, and the
// model answers arrays nested ten million deep (the dispatcher's gpt-4o has
// degrade_on, so its answers are parsed). The bodies get 400; the model's
// answers count as failures and the lighter model answers.
func nestedJSON(hold time.Duration) scenario {
	const depth = 10_000_000
	n := count(10, 50)
	var a *attack
	var answers, fallbacks int64
	return scenario{
		name: "hostile: nested JSON, 10M '[' in requests and model answers", rate: 20,
		kinds: []string{taskCall, modelCall}, hold: hold, wantFallback: true,
		normal: everyoneServing,
		fault: func(f *fleet) func() {
			f.primary.ResetStats()
			f.mini.ResetStats()
			f.primary.Set(fakellm.Faults{Nested: depth})
			body := bytes.Repeat([]byte{'['}, depth)
			a = startAttack(n, 2, func(c *http.Client) (*http.Response, error) {
				req, err := http.NewRequest(http.MethodPost, f.dispatcher.control+"/llm/v1/chat/completions", bytes.NewReader(body))
				if err != nil {
					return nil, err
				}
				req.Header.Set("Content-Type", "application/json")
				return c.Do(req)
			})
			return func() {
				a.wait()
				answers, fallbacks = f.primary.Stats().Calls, f.mini.Stats().Calls
				f.primary.Heal()
				a.check(f, "bodies of 10M '['", n, http.StatusBadRequest)
			}
		},
		note: func(f *fleet) string {
			_, all := a.answered(0)
			return fmt.Sprintf("attacker: %d bodies of 10M '[' answered %s; the model answered %d calls nested 10M deep, the lighter model %d",
				n, all, answers, fallbacks)
		},
	}
}

// 2. A policy of 60 KB of nested '[' (a breaker setting of [[[[…) is
// written to the fleet's KV prefix while the fleet runs with a good fleet
// policy; a writer's sidecar is restarted while it is there. Every sidecar
// rejects it, keeps the last good configuration (the restarted one starts
// on its local files and says why), and takes the good policy again once
// the bad key is gone.
func badKVPolicy(hold time.Duration) scenario {
	const goodKey, badKey = "sidecar/policies/breakers.hcl", "sidecar/policies/bad.hcl"
	good := []byte("breaker \"fleet\" {\n  consecutive_failures = 5\n}\n")
	bad := append([]byte("breaker \"broken\" {\n  consecutive_failures = "), bytes.Repeat([]byte{'['}, 60<<10)...)
	var rejectedBy int
	everyoneOnGood := func(f *fleet) bool {
		for _, p := range f.sidecars() {
			if breakerThreshold(p, "fleet") != 5 {
				return false
			}
		}
		return true
	}
	return scenario{
		name: "hostile: a 60 KB policy of nested '[' pushed to Consul KV", rate: 20, kinds: []string{taskCall, modelCall},
		hold: hold, normal: func(f *fleet) bool { return everyoneServing(f) && bothRegistered(f) && everyoneOnGood(f) },
		fault: func(f *fleet) func() {
			kv := f.client.KV()
			if _, err := kv.Put(&api.KVPair{Key: goodKey, Value: good}, nil); err != nil {
				f.t.Fatal(err)
			}
			f.waitFor("the good fleet policy on every sidecar", 15*time.Second, func() bool { return everyoneOnGood(f) })
			if _, err := kv.Put(&api.KVPair{Key: badKey, Value: bad}, nil); err != nil {
				f.t.Fatal(err)
			}
			f.waitFor("every sidecar to reject the bad policy", 15*time.Second, func() bool {
				for _, p := range f.sidecars() {
					if !rejected(p, badKey) {
						return false
					}
				}
				return true
			})
			rejectedBy = len(f.sidecars())
			if !everyoneServing(f) || !everyoneOnGood(f) {
				f.t.Errorf("after the bad policy: a sidecar stopped serving or lost the last good policy\n%s", f.logs())
			}
			// A restart while the bad policy is in KV: the sidecar starts
			// (on its local files) and says why.
			w := f.writers[1]
			f.stop(w)
			before := len(w.out.String())
			f.launch(w)
			f.waitFor(w.id+" to say why it ignores the KV policies", 15*time.Second, func() bool {
				return rejected(w, badKey) || strings.Contains(w.out.String()[before:], badKey)
			})
			return func() {
				if _, err := kv.Delete(badKey, nil); err != nil {
					f.t.Fatal(err)
				}
			}
		},
		note: func(f *fleet) string {
			return fmt.Sprintf("rejected by %d of %d sidecars, last good policy kept; writer-2 restarted meanwhile, started on its local files",
				rejectedBy, len(f.sidecars()))
		},
	}
}

// rejected says whether a sidecar's status shows its last configuration
// change rejected because of key.
func rejected(p *sidecarProc, key string) bool {
	last, _ := p.status()["last_reload"].(map[string]any)
	ok, _ := last["ok"].(bool)
	msg, _ := last["error"].(string)
	return last != nil && !ok && strings.Contains(msg, key)
}

// 3. Hundreds of clients connect to writer-1's ingress, declare a body of
// 2 MB (small enough to be kept for a retry) and send nothing, or a byte
// now and then. The ingress cuts them off (body deadline, connection cap)
// without holding memory for them, and the load it serves goes on.
func slowIngressClients(hold time.Duration) scenario {
	n := count(200, 500)
	var sl *slowClients
	var cut int
	var rssFirst, rssPeak float64
	return scenario{
		name: fmt.Sprintf("hostile: %d slow clients on an ingress", n), rate: 20, kinds: []string{taskCall},
		hold: hold, normal: everyoneServing,
		fault: func(f *fleet) func() {
			w := f.writers[0]
			rss := sample("process_resident_memory_bytes", w)
			sl = startSlowClients(w.ingress, n)
			return func() {
				// The clients stay until the ingress ends them.
				cut = sl.waitCut(slowCutWithin())
				first, peak := rss.end()
				rssFirst, rssPeak = first[0], peak[0]
				sl.close()
				if cut < n {
					f.t.Errorf("the ingress ended %d of %d slow connections within %s", cut, n, slowCutWithin())
				}
				if rssPeak > rssFirst+128e6 {
					f.t.Errorf("%s's memory grew from %.0f MB to %.0f MB with %d slow clients", w.id, rssFirst/1e6, rssPeak/1e6, n)
				}
			}
		},
		note: func(f *fleet) string {
			return fmt.Sprintf("%d of %d ended by the ingress (%s); writer-1 RSS %.0f→%.0f MB at most",
				cut, n, sl.summary(), rssFirst/1e6, rssPeak/1e6)
		},
	}
}

// slowCutWithin bounds how long the ingress may take to end every slow
// connection: its body deadline, and time to spare on a busy machine.
func slowCutWithin() time.Duration { return ingressBodyTimeout() + 30*time.Second }

// slowClients are connections that declare a large body and send little of
// it.
type slowClients struct {
	conns   []net.Conn
	cut     atomic.Int64 // ended by the server
	mu      sync.Mutex
	answers map[string]int // the server's status lines, "closed" for none
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startSlowClients(addr string, n int) *slowClients {
	s := &slowClients{answers: map[string]int{}, stop: make(chan struct{})}
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			s.cut.Add(1)
			s.note("dial refused")
			continue
		}
		s.conns = append(s.conns, c)
		trickle := i%2 == 1
		s.wg.Go(func() { s.send(c, addr, trickle) })
		s.wg.Go(func() { s.read(c) })
	}
	return s
}

func (s *slowClients) note(what string) {
	s.mu.Lock()
	s.answers[what]++
	s.mu.Unlock()
}

// send writes a request head declaring 2 MB, then nothing, or a byte
// every half second.
func (s *slowClients) send(c net.Conn, addr string, trickle bool) {
	head := fmt.Sprintf("POST /task HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{",
		addr, 2_000_000)
	if _, err := io.WriteString(c, head); err != nil || !trickle {
		return
	}
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := c.Write([]byte(" ")); err != nil {
			return
		}
	}
}

// read waits for the server's answer or close.
func (s *slowClients) read(c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	select {
	case <-s.stop:
		return // closed by the test
	default:
	}
	s.cut.Add(1)
	if err == nil {
		status := strings.TrimSpace(line)
		if f := strings.Fields(status); len(f) >= 2 {
			status = f[1]
		}
		s.note(status)
		_, _ = io.Copy(io.Discard, c)
	} else {
		s.note("closed")
	}
}

// waitCut waits up to limit for the server to end every connection and
// returns how many it ended.
func (s *slowClients) waitCut(limit time.Duration) int {
	testutil.Poll(limit, func() bool { return int(s.cut.Load()) >= len(s.conns) })
	return int(s.cut.Load())
}

func (s *slowClients) close() {
	close(s.stop)
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.wg.Wait()
}

func (s *slowClients) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return countsByKey(s.answers)
}

// 4. Service policies in KV make a loop: the dispatcher's upstream "loop"
// is writer-1's /call/loop, and the writers' upstream "loop" is the
// dispatcher's /call/loop. A client calls it. Each call ends in a clear
// error instead of going round until file descriptors run out, and the
// agents' heartbeats keep flowing.
func callLoop(hold time.Duration) scenario {
	const dispatcherKey, writerKey = "sidecar/policies/service/dispatcher/loop.hcl", "sidecar/policies/service/writer/loop.hcl"
	n := count(20, 100)
	var a *attack
	var fdFirst, fdPeak []float64
	stayedPassing := true
	hasLoop := func(p *sidecarProc) bool {
		cfg, _ := p.status()["config"].(map[string]any)
		ups, _ := cfg["upstreams"].(map[string]any)
		_, ok := ups["loop"]
		return ok
	}
	return scenario{
		name: "hostile: a loop of calls through two sidecars", rate: 20, kinds: []string{taskCall, modelCall},
		hold: hold, normal: func(f *fleet) bool { return everyoneServing(f) && bothRegistered(f) },
		fault: func(f *fleet) func() {
			kv := f.client.KV()
			for key, target := range map[string]*sidecarProc{dispatcherKey: f.writers[0], writerKey: f.dispatcher} {
				policy := fmt.Sprintf("upstream \"loop\" {\n  url = %q\n  timeout = \"10s\"\n}\n", target.control+"/call/loop")
				if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(policy)}, nil); err != nil {
					f.t.Fatal(err)
				}
			}
			f.waitFor("the loop in force on the dispatcher and writer-1", 15*time.Second, func() bool {
				return hasLoop(f.dispatcher) && hasLoop(f.writers[0])
			})
			fds := sample("process_open_fds", f.dispatcher, f.writers[0])
			a = startAttack(n, 4, func(c *http.Client) (*http.Response, error) {
				return c.Post(f.dispatcher.control+"/call/loop/x", "application/json", strings.NewReader(`{"input":"round and round"}`))
			})
			watching := make(chan struct{})
			go func() {
				defer close(watching)
				for {
					select {
					case <-a.done:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if !f.passing("writer-1") || !f.passing("writer-2") {
						stayedPassing = false
					}
				}
			}()
			return func() {
				a.wait()
				<-watching
				fdFirst, fdPeak = fds.end()
				for _, key := range []string{dispatcherKey, writerKey} {
					if _, err := kv.Delete(key, nil); err != nil {
						f.t.Fatal(err)
					}
				}
				a.checkClear(f, "calls round the loop", n, http.StatusLoopDetected)
				for i, p := range []*sidecarProc{f.dispatcher, f.writers[0]} {
					if fdPeak[i] > fdFirst[i]+200 {
						f.t.Errorf("%s: open files grew from %.0f to %.0f during the loop", p.id, fdFirst[i], fdPeak[i])
					}
				}
				if !stayedPassing {
					f.t.Errorf("an agent's heartbeat check left passing during the loop\n%s", f.logs())
				}
			}
		},
		note: func(f *fleet) string {
			_, all := a.answered(0)
			return fmt.Sprintf("attacker: %d looping calls answered %s; open files dispatcher %.0f→%.0f, writer-1 %.0f→%.0f at most; agents stayed passing",
				n, all, fdFirst[0], fdPeak[0], fdFirst[1], fdPeak[1])
		},
	}
}

// 5. The flaky upstream turns hostile: it answers "HTTP/1.1 200 OK" and a
// header that never ends. The calls fail (the head is too large), the
// breaker counts them, the fallback answers, and the dispatcher's memory
// stays bounded.
func endlessHeader(hold time.Duration) scenario {
	var rssFirst, rssPeak float64
	var trips float64
	var reason string
	return scenario{
		name: "hostile: an upstream sends an endless header", rate: 20, kinds: []string{flakyCall}, hold: hold,
		wantFallback: true, normal: everyoneServing,
		fault: func(f *fleet) func() {
			rss := sample("process_resident_memory_bytes", f.dispatcher)
			f.flaky.endless.Store(true)
			// A dispatcher that keeps the whole header would take the
			// machine's memory: the upstream stops well before.
			watching := make(chan struct{})
			go func() {
				defer close(watching)
				for f.flaky.endless.Load() {
					if v := f.dispatcher.metric("process_resident_memory_bytes"); v > rss.first[0]+endlessBudget {
						f.flaky.endless.Store(false)
						f.t.Errorf("the dispatcher's memory grew past %.0f MB reading an endless header; stopped it", v/1e6)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			return func() {
				f.flaky.endless.Store(false)
				<-watching
				first, peak := rss.end()
				rssFirst, rssPeak = first[0], peak[0]
				if rssPeak > rssFirst+endlessBudget {
					f.t.Errorf("the dispatcher's memory grew from %.0f MB to %.0f MB", rssFirst/1e6, rssPeak/1e6)
				}
				trips, reason = flakyBreaker(f)
				if trips == 0 {
					f.t.Errorf("the flaky upstream's breaker never opened (last failure %q)", reason)
				}
			}
		},
		note: func(f *fleet) string {
			return fmt.Sprintf("breaker opened %.0f time(s), last failure %q; dispatcher RSS %.0f→%.0f MB at most",
				trips, reason, rssFirst/1e6, rssPeak/1e6)
		},
	}
}

// endlessBudget is how much the dispatcher's memory may grow while an
// upstream sends an endless header (it keeps at most 1 MiB of a response
// head per call).
const endlessBudget = 128e6

// flakyBreaker reads the trips and last failure of the dispatcher's breaker
// for the flaky upstream.
func flakyBreaker(f *fleet) (float64, string) {
	var st struct {
		Breakers []struct {
			Name              string  `json:"name"`
			Trips             float64 `json:"trips"`
			LastFailureReason string  `json:"last_failure_reason"`
		} `json:"breakers"`
	}
	if err := getJSON(f.dispatcher.control+"/v1/breakers", &st); err != nil {
		return 0, err.Error()
	}
	for _, b := range st.Breakers {
		if strings.HasPrefix(b.Name, "flaky@") {
			return b.Trips, b.LastFailureReason
		}
	}
	return 0, "no breaker for flaky"
}

// serveEndlessHeader takes over a connection and writes a status line and
// a header that never ends, until the client goes away or stop says so.
func serveEndlessHeader(w http.ResponseWriter, stop func() bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Endless: "); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte{'a'}, 32<<10)
	for !stop() {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write(chunk); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue // the client is not reading now; see whether to stop
			}
			return
		}
	}
}
