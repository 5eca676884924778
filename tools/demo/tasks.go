package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is how one task ended.
type outcome int

const (
	byPrimary       outcome = iota // the agent it was sent to, with the primary model
	byPeer                         // another instance of the same service
	byService                      // the fallback service (writer-lite)
	byLiteModel                    // the agent it was sent to, with the lighter model
	byOtherProvider                // the agent it was sent to, with the other provider's model (translated)
	failed                         // an error answer: a clear error, but not handled
	lost                           // no answer at all
)

// counts are the outcomes of the tasks of one phase (or of the whole run).
type counts struct {
	Sent, Primary, Peer, Service, LiteModel, OtherProvider, Failed, Lost int
}

func (c counts) Handled() int  { return c.Primary + c.Fallback() }
func (c counts) Fallback() int { return c.Peer + c.Service + c.LiteModel + c.OtherProvider }
func (c counts) Unhandled() int {
	return c.Sent - c.Handled()
}

func (c *counts) add(o outcome) {
	switch o {
	case byPrimary:
		c.Primary++
	case byPeer:
		c.Peer++
	case byService:
		c.Service++
	case byLiteModel:
		c.LiteModel++
	case byOtherProvider:
		c.OtherProvider++
	case failed:
		c.Failed++
	case lost:
		c.Lost++
	}
}

func (c counts) plus(o counts) counts {
	return counts{c.Sent + o.Sent, c.Primary + o.Primary, c.Peer + o.Peer, c.Service + o.Service,
		c.LiteModel + o.LiteModel, c.OtherProvider + o.OtherProvider, c.Failed + o.Failed, c.Lost + o.Lost}
}

// generator sends a task every interval, in turn to each ingress address (the
// writers' sidecars), and counts how each ended, per phase.
type generator struct {
	targets  []string
	interval time.Duration
	client   *http.Client

	mu       sync.Mutex
	phase    int
	phases   []counts
	pending  []int     // tasks in flight, per phase
	recent   []outcome // the last outcomes, newest last
	errors   []string  // the first few errors, for the summary
	inflight sync.WaitGroup
	running  atomic.Int64
}

func newGenerator(targets []string, interval time.Duration, phases int) *generator {
	return &generator{
		targets: targets, interval: interval, phases: make([]counts, phases), pending: make([]int, phases),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
	}
}

// setPhase counts the tasks sent from now on in phase i.
func (g *generator) setPhase(i int) {
	g.mu.Lock()
	g.phase = i
	g.recent = nil
	g.mu.Unlock()
}

// run sends tasks until ctx ends, then waits for those in flight.
func (g *generator) run(ctx context.Context) {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			g.inflight.Wait()
			return
		case <-t.C:
		}
		g.mu.Lock()
		phase := g.phase
		g.phases[phase].Sent++
		g.pending[phase]++
		g.mu.Unlock()
		g.inflight.Add(1)
		g.running.Add(1)
		go func(n, phase int) {
			defer g.inflight.Done()
			defer g.running.Add(-1)
			o, detail := g.send(g.targets[n%len(g.targets)], n)
			g.mu.Lock()
			g.phases[phase].add(o)
			g.pending[phase]--
			g.recent = append(g.recent, o)
			if len(g.recent) > 50 {
				g.recent = g.recent[1:]
			}
			if detail != "" && len(g.errors) < 5 {
				g.errors = append(g.errors, detail)
			}
			g.mu.Unlock()
		}(n, phase)
	}
}

// send sends one task. Its Idempotency-Key tells the sidecar the task may
// be given to another agent when the first one hangs mid-task.
func (g *generator) send(addr string, n int) (outcome, string) {
	key := make([]byte, 8)
	_, _ = rand.Read(key)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/task",
		strings.NewReader(fmt.Sprintf(`{"input":"task %d"}`, n)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", hex.EncodeToString(key))
	resp, err := g.client.Do(req)
	if err != nil {
		return lost, fmt.Sprintf("task %d to %s: no answer: %v", n, addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return failed, fmt.Sprintf("task %d to %s: %s %s", n, addr, resp.Status, strings.TrimSpace(string(body)))
	}
	var ans struct {
		Degraded bool   `json:"degraded"`
		Model    string `json:"model"`
	}
	_ = json.Unmarshal(body, &ans)
	switch {
	case resp.Header.Get("X-Sidecar-Fallback") == "true" && resp.Header.Get("X-Sidecar-Upstream") != "peer":
		return byService, ""
	case resp.Header.Get("X-Sidecar-Fallback") == "true":
		return byPeer, ""
	case ans.Degraded && ans.Model == "claude-haiku":
		return byOtherProvider, ""
	case ans.Degraded:
		return byLiteModel, ""
	}
	return byPrimary, ""
}

// drained says whether every task sent before phase i has ended, so a
// fault injected now cannot touch a task counted in an earlier phase.
func (g *generator) drained(i int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.pending[:i] {
		if n > 0 {
			return false
		}
	}
	return true
}

// snapshot returns the counts of every phase so far.
func (g *generator) snapshot() []counts {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]counts(nil), g.phases...)
}

// lastAll says whether the last n outcomes of this phase all satisfy ok.
func (g *generator) lastAll(n int, ok func(outcome) bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.recent) < n {
		return false
	}
	for _, o := range g.recent[len(g.recent)-n:] {
		if !ok(o) {
			return false
		}
	}
	return true
}

func (g *generator) firstErrors() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.errors...)
}

// line is the live progress line.
func (g *generator) line() string {
	var total counts
	for _, c := range g.snapshot() {
		total = total.plus(c)
	}
	return fmt.Sprintf("tasks sent %d · by primary %d · by fallback %d (peer %d, writer-lite %d, gpt-4o-mini %d, claude-haiku %d) · failed %d · in flight %d",
		total.Sent, total.Primary, total.Fallback(), total.Peer, total.Service, total.LiteModel, total.OtherProvider,
		total.Failed+total.Lost, g.running.Load())
}
