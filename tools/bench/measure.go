package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Columns of the table: the ways of reaching a server.
const (
	colDirect  = "direct"
	colNginx   = "nginx"
	colGoProxy = "goproxy"
	colSidecar = "sidecar"
	colTraced  = "sidecar_traced" // the same sidecar, tracing every request
	colPortkey = "portkey"
)

// chatRequest is the chat completion every model path is sent (as in
// sidecar/bench_model_test.go); streamRequest the same, streamed.
const (
	chatRequest   = `{"model":"gpt-4o","messages":[{"role":"user","content":"Summarise the report in one line."}],"temperature":0.2}`
	streamRequest = `{"model":"gpt-4o","messages":[{"role":"user","content":"Summarise the report in one line."}],"stream":true,"temperature":0.2}`
)

// endpoint is one way of reaching a server: the request to send, and the
// process group whose CPU this path costs (the proxy's; for direct calls,
// the server's own).
type endpoint struct {
	col    string
	method string
	url    string
	body   []byte
	header http.Header
	pgid   int
}

func (e endpoint) target() vegeta.Target {
	return vegeta.Target{Method: e.method, URL: e.url, Body: e.body, Header: e.header}
}

// attackResult is what one vegeta attack measured.
type attackResult struct {
	lat    []time.Duration // of the successful requests, sorted
	ok     int
	failed int
	errs   map[string]int // failure → count
	wall   time.Duration  // from the first request sent to the last answer read
	cpu    time.Duration  // CPU used by the endpoint's process group meanwhile
}

func (r attackResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

func (r attackResult) rps() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.ok) / r.wall.Seconds()
}

// cpuPerRequest in microseconds.
func (r attackResult) cpuPerRequest() float64 {
	if r.ok == 0 {
		return 0
	}
	return float64(r.cpu) / 1e3 / float64(r.ok)
}

// attack runs vegeta against e with conns connections (as many workers,
// never more) for d, at rate requests per second (0: as fast as the
// connections go). Its own transport is closed afterwards, so that no
// idle connection of an attack lingers into the next one.
func attack(ctx context.Context, e endpoint, conns, rate int, d time.Duration) (attackResult, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
	}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr, Timeout: 10 * time.Second}), // first: the options below set its transport
		vegeta.Connections(conns), vegeta.Workers(uint64(conns)), vegeta.MaxWorkers(uint64(conns)),
		vegeta.KeepAlive(true), vegeta.MaxBody(0),
	)
	t := e.target()
	targeter := func(tgt *vegeta.Target) error { *tgt = t; return nil }
	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second} // Freq 0: no pacing, MaxWorkers bounds it

	cpu0, err := groupCPU(e.pgid)
	if err != nil {
		return attackResult{}, err
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-stopped:
		}
	}()
	r := attackResult{errs: map[string]int{}}
	var first, last time.Time
	for res := range atk.Attack(targeter, pacer, d, e.col) {
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if end := res.Timestamp.Add(res.Latency); end.After(last) {
			last = end
		}
		if res.Error != "" || res.Code != http.StatusOK {
			r.failed++
			r.errs[fmt.Sprintf("%d %s", res.Code, res.Error)]++
			continue
		}
		r.ok++
		r.lat = append(r.lat, res.Latency)
	}
	cpu1, err := groupCPU(e.pgid)
	if err != nil {
		return r, err
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.cpu, r.wall = cpu1-cpu0, last.Sub(first)
	slices.Sort(r.lat)
	if r.ok == 0 || r.failed*100 > r.ok+r.failed {
		return r, fmt.Errorf("%s (%s): %d of %d requests failed: %v", e.col, e.url, r.failed, r.ok+r.failed, r.errs)
	}
	return r, nil
}

// ttfb sends n streamed chat completions one after another on one
// connection and returns the time from sending each to reading its first
// SSE data line (the first event: what an agent waits for), sorted.
func ttfb(ctx context.Context, e endpoint, n int) ([]time.Duration, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	out := make([]time.Duration, 0, n)
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(streamRequest))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		br := bufio.NewReader(resp.Body)
		var first time.Duration
		for first == 0 {
			line, err := br.ReadString('\n')
			if err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("%s: the stream ended before its first event: %v", e.url, err)
			}
			if strings.HasPrefix(line, "data:") {
				first = time.Since(t0)
			}
		}
		_, _ = io.Copy(io.Discard, br)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", e.url, resp.Status)
		}
		out = append(out, first)
	}
	slices.Sort(out)
	return out, nil
}

// streamsResult is the sidecar's memory with many slow streams open.
type streamsResult struct {
	opened int   // streams that had received their first event when RSS was read
	rss    int64 // bytes
	took   time.Duration
}

// holdStreams opens n streamed chat completions through url at once (the
// model sends an event every so often, so each stays open), waits until
// every one has received its first event, reads the RSS of process pid,
// then closes them all.
func holdStreams(ctx context.Context, url string, n, pid int) (streamsResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// No limit on connections per host: every stream needs its own.
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var opened, ended atomic.Int64
	errc := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(streamRequest))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				errc <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errc <- errors.New(resp.Status)
				return
			}
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					errc <- fmt.Errorf("stream ended before its first event: %v", err)
					return
				}
				if strings.HasPrefix(line, "data:") {
					break
				}
			}
			opened.Add(1)
			_, _ = io.Copy(io.Discard, br) // until the stream ends or ctx does
			ended.Add(1)
		}()
	}
	defer wg.Wait() // after cancel (deferred later, run earlier)
	defer cancel()
	var r streamsResult
	deadline := time.After(60 * time.Second)
	for opened.Load() < int64(n) {
		select {
		case err := <-errc:
			return r, fmt.Errorf("a stream failed (%d of %d open): %w", opened.Load(), n, err)
		case <-deadline:
			return r, fmt.Errorf("only %d of %d streams received their first event within 60s", opened.Load(), n)
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.took = time.Since(t0)
	time.Sleep(300 * time.Millisecond) // let the sidecar settle with all of them open
	var err error
	if r.rss, err = rss(pid); err != nil {
		return r, err
	}
	r.opened = int(opened.Load() - ended.Load())
	if r.opened < n {
		return r, fmt.Errorf("%d of %d streams ended before the RSS was read: make the model's stream longer", n-r.opened, n)
	}
	return r, nil
}

// failoverResult is what happened while the primary model failed every call.
type failoverResult struct {
	Gateway        string  `json:"gateway"`
	Requests       int     `json:"requests"`
	RatePerSec     int     `json:"rate_per_s"`
	PrimaryCalls   int64   `json:"primary_calls"`   // calls that reached the failing primary
	FallbackCalls  int64   `json:"fallback_calls"`  // calls the lighter model answered
	Failed         int     `json:"failed"`          // requests the agent saw fail
	OpenedAfterMs  float64 `json:"opened_after_ms"` // first failure → last call to reach the primary before the breaker opened; -1 when it never opened
	CallsUntilOpen int     `json:"calls_until_open"`
	MedianMs       float64 `json:"median_latency_ms"`
}

// failover sends n requests at rate per second, one at a time, to e while
// the primary model answers every call with 503, and counts from the
// models' own /_stats the calls that reached the failing primary and the
// lighter model. For the sidecar, X-Sidecar-Attempts tells which requests
// tried the primary (2 attempts) and which skipped it (1 attempt, answered
// by the fallback: the breaker was open).
func failover(ctx context.Context, gateway string, e endpoint, n, rate int, primary, lite string) (failoverResult, error) {
	r := failoverResult{Gateway: gateway, Requests: n, RatePerSec: rate, OpenedAfterMs: -1}
	for _, m := range []string{primary, lite} {
		if err := post(m+"/_stats/reset", ""); err != nil {
			return r, err
		}
	}
	if err := post(primary+"/_control", `{"fail_rate":100,"fail_status":503}`); err != nil {
		return r, err
	}
	defer func() { _ = post(primary+"/_heal", "") }()

	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	type call struct {
		start, end time.Time
		attempts   int
	}
	calls := make([]call, 0, n)
	var lat []time.Duration
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return r, ctx.Err()
			}
		}
		req, err := http.NewRequestWithContext(ctx, e.method, e.url, bytes.NewReader(e.body))
		if err != nil {
			return r, err
		}
		for k, v := range e.header {
			req.Header[k] = v
		}
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			r.Failed++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		end := time.Now()
		lat = append(lat, end.Sub(t0))
		if resp.StatusCode != http.StatusOK {
			r.Failed++
		}
		a, _ := strconv.Atoi(resp.Header.Get("X-Sidecar-Attempts"))
		calls = append(calls, call{t0, end, a})
	}
	var err error
	if r.PrimaryCalls, err = statsCalls(primary); err != nil {
		return r, err
	}
	if r.FallbackCalls, err = statsCalls(lite); err != nil {
		return r, err
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.MedianMs = float64(lat[len(lat)/2]) / 1e6
	}
	if gateway == colSidecar {
		// The breaker opened after the last of the leading calls that
		// tried the primary, before the first that skipped it.
		for i, cl := range calls {
			if cl.attempts != 1 {
				continue
			}
			if i > 0 && calls[0].attempts >= 2 {
				r.CallsUntilOpen = i
				r.OpenedAfterMs = float64(calls[i-1].end.Sub(calls[0].start)) / 1e6
			}
			break
		}
	}
	return r, nil
}

// statsCalls reads a fake model's count of API calls.
func statsCalls(base string) (int64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/_stats")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Calls int64 `json:"calls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("%s/_stats: %w", base, err)
	}
	return st.Calls, nil
}

// post sends a control request to a fake model; non-2xx is an error.
func post(url, body string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, b)
	}
	return nil
}
