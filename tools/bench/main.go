// Command bench is the benchmark harness behind `make bench`. It runs
// the sidecar as it runs in production, a process of its own built by
// `make build`, beside the alternatives an operator would weigh it against,
// and measures what each costs on the same machine in the same run:
//
//   - an upstream answering a fixed 600-byte JSON body (this program
//     re-executed as `bench serve-upstream`), called directly, through
//     nginx (upstream keepalive 64, two workers), through a plain Go
//     httputil.ReverseProxy (`bench serve-goproxy`: the default
//     transport with 64 idle connections per host) and through the
//     sidecar's /call/up/ (the upstream found in Consul, with breaker,
//     balancing and fallback logic included);
//   - the same sidecar configuration with tracing on, every request
//     sampled (sampler always_on), its spans sent over OTLP/HTTP to a sink
//     the harness runs (it decodes and counts them, then drops them): the
//     "sidecar traced" column, on /call/ and /llm/, and the rows of what
//     tracing adds to the untraced sidecar (latency, CPU per request,
//     throughput), round by round. The run fails when the sink got no
//     span;
//   - two fake models (bin/fakellm, gpt-4o and its fallback gpt-4o-mini),
//     called directly and through the sidecar's /llm/v1/chat/completions,
//     and, when it can be installed from npm, through Portkey's open-source
//     AI gateway with a fallback config of the same two models.
//
// Every process runs in its own process group, so that its CPU time can be
// read from /proc/PID/stat (nginx: master and workers together) and all of
// them are stopped at the end, also on Ctrl-C. A Consul dev agent (the
// binary scripts/consul.sh builds, or $CONSUL_BIN) holds the upstream's
// registration, which the sidecar's discovery follows as in production.
//
// What it measures, interleaved in rounds (in each round every path in
// turn, the order rotated by one each round) and reported as the median of
// the rounds with their minimum and maximum:
//
//   - added latency, p50 and p99, at one connection: a vegeta attack at a
//     constant rate low enough not to queue (300/s for 3 s); added = the
//     path's percentile minus the direct call's in the same round;
//   - throughput at 32 connections (vegeta with 32 workers, unpaced, 3 s),
//     its ratio to direct calls, and the CPU per request of the proxy
//     process over the attack (for direct calls: of the server itself);
//   - the same for chat completions through /llm/ against the fake model
//     directly, and the time to the first event of a streamed completion
//     (200 samples a round at one connection, read as SSE lines);
//   - the sidecar's RSS idle after start, idle after the load, and with
//     1,000 slow streams open through /llm/ at once (the model sends an
//     event every 500 ms);
//   - failover: the primary model answers every call with 503 while 100
//     requests are sent at 50/s; how many reached the failing primary (the
//     sidecar's breaker opens after 3 failures, then lets one probe
//     through per open_for, 1 s here, doubling) and how long after the
//     first failure the breaker opened; the same for Portkey, which has no
//     breaker and so tries the primary every time.
//
// It prints a table, with the ratios sidecar/Go proxy and sidecar/nginx
// where both apply, and with -json writes everything, with the machine and
// the date, so that runs can be compared:
//
//	make build && go -C tools run ./bench -root "$PWD" -json "$PWD/test-artifacts/bench.json"
//
// nginx missing: as root, it is installed with apt-get (nginx-light); else
// its column is skipped with a note (under CI=true a missing nginx is an
// error). Portkey failing to install or run skips its column, saying why.
// -quick runs one round of 1 s attacks with 100 streams and no Portkey.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the run's parameters (flags).
type options struct {
	root, jsonPath   string
	rounds           int
	latencyDur       time.Duration
	rate             int
	throughputDur    time.Duration
	conns            int
	ttfbSamples      int
	streams          int
	eventDelay       time.Duration
	failoverRequests int
	failoverRate     int
	portkey          bool
	log              io.Writer // progress
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == cmdUpstream || os.Args[1] == cmdGoProxy) {
		if err := serve(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	o := options{log: os.Stderr}
	var quick bool
	flag.StringVar(&o.root, "root", ".", "the repository: the binaries are ROOT/bin/sidecar and ROOT/bin/fakellm (make build)")
	flag.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to this file")
	flag.BoolVar(&quick, "quick", false, "1 round, 1 s attacks, 100 streams, no Portkey")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; each measures every path once")
	flag.DurationVar(&o.latencyDur, "latency-time", 3*time.Second, "length of each one-connection latency attack")
	flag.IntVar(&o.rate, "rate", 300, "requests per second of the latency attacks")
	flag.DurationVar(&o.throughputDur, "throughput-time", 3*time.Second, "length of each throughput attack")
	flag.IntVar(&o.conns, "conns", 32, "connections of the throughput attacks")
	flag.IntVar(&o.ttfbSamples, "ttfb-samples", 200, "streamed completions per path and round for the first-event time")
	flag.IntVar(&o.streams, "streams", 1000, "slow streams held open through the sidecar for its RSS")
	flag.BoolVar(&o.portkey, "portkey", true, "also measure Portkey's AI gateway (installed from npm into a temp dir)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: unexpected arguments:", flag.Args())
		os.Exit(2)
	}
	o.eventDelay, o.failoverRequests, o.failoverRate = 500*time.Millisecond, 100, 50
	if quick {
		o.rounds, o.latencyDur, o.throughputDur, o.streams, o.portkey = 1, time.Second, time.Second, 100, false
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if ctx.Err() != nil {
			os.Exit(130)
		}
		os.Exit(1)
	}
	rep.printTable(os.Stdout)
	if o.jsonPath != "" {
		if err := rep.writeJSON(o.jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Println("report written to", o.jsonPath)
	}
}

// bench is one run: the processes, the ways of reaching them, and what
// was measured.
type bench struct {
	o       options
	tmp     string
	g       *group
	rep     *Report
	c       collector
	sidecar *proc
	// the traced sidecar, its collector, and the requests sent to it
	traced     *proc
	sink       *otlpSink
	tracedSent int64
	// the base URLs of the two fake models
	primary, lite string
	call, llm     []endpoint // direct first
	stream        []endpoint // direct, sidecar
	sidecarLLM    endpoint
	portkeyLLM    *endpoint
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.log, "bench: "+format+"\n", args...)
}

// run starts everything, measures, and stops everything, always.
func run(ctx context.Context, o options) (*Report, error) {
	began := time.Now()
	root, err := filepath.Abs(o.root)
	if err != nil {
		return nil, err
	}
	bins := map[string]string{"sidecar": filepath.Join(root, "bin", "sidecar"), "fakellm": filepath.Join(root, "bin", "fakellm")}
	for _, p := range bins {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make build` in %s first", p, root)
		}
	}
	tmp, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	g := &group{dir: tmp}
	defer g.stopAll()

	b := &bench{o: o, tmp: tmp, g: g, c: collector{}, rep: &Report{
		Date: date(), Machine: machine(), Skipped: map[string]string{},
		Versions: map[string]string{"go": strings.TrimPrefix(runtime.Version(), "go")},
		Settings: Settings{Rounds: o.rounds, LatencyAttackSec: o.latencyDur.Seconds(), LatencyRate: o.rate,
			ThroughputSec: o.throughputDur.Seconds(), ThroughputConns: o.conns, TTFBSamples: o.ttfbSamples,
			Streams: o.streams, StreamEventDelay: o.eventDelay.String(), FailoverRequests: o.failoverRequests,
			FailoverRate: o.failoverRate, BreakerFailures: 3, BreakerOpenFor: "1s", UpstreamAnswerSize: len(answer600)},
	}}
	defer func() {
		if b.sink != nil {
			b.sink.close()
		}
	}()
	if err := raiseFileLimit(); err != nil {
		b.logf("could not raise the open-files limit (%v); %d streams may not fit", err, o.streams)
	}
	if err := b.start(ctx, bins); err != nil {
		return nil, err
	}
	if err := b.measure(ctx); err != nil {
		return nil, err
	}
	b.rep.Rows = b.c.rows(strings.NewReplacer("{streams}", strconv.Itoa(o.streams),
		"{requests}", strconv.Itoa(o.failoverRequests)))
	b.rep.Seconds = time.Since(began).Seconds()
	return b.rep, nil
}

// start starts the upstream, the Go proxy, the two fake models, the
// sidecar, nginx and Portkey, and checks that each path answers.
func (b *bench) start(ctx context.Context, bins map[string]string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b.logf("starting the upstream, the Go proxy, the fake models and the sidecar (logs in %s)", b.tmp)
	upAddr, up, err := b.startHTTP(ctx, "upstream", "/search", exe, cmdUpstream)
	if err != nil {
		return err
	}
	gpAddr, gp, err := b.startHTTP(ctx, "goproxy", "/search", exe, cmdGoProxy, "-target", "http://"+upAddr)
	if err != nil {
		return err
	}
	primaryAddr, primary, err := b.startHTTP(ctx, "gpt-4o", "/_stats", bins["fakellm"], "-name", "gpt-4o")
	if err != nil {
		return err
	}
	liteAddr, _, err := b.startHTTP(ctx, "gpt-4o-mini", "/_stats", bins["fakellm"], "-name", "gpt-4o-mini")
	if err != nil {
		return err
	}
	b.primary, b.lite = "http://"+primaryAddr, "http://"+liteAddr

	consulAddr, err := b.startConsul(upAddr)
	if err != nil {
		return fmt.Errorf("consul (the sidecar's /call/up/ finds the upstream through it): %w", err)
	}
	scAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if b.sidecar, err = b.startSidecar(ctx, "sidecar", colSidecar, bins["sidecar"], scAddr,
		sidecarConfig("", scAddr, consulAddr, primaryAddr, liteAddr)); err != nil {
		return err
	}
	if out, err := exec.Command(bins["sidecar"], "version").Output(); err == nil {
		b.rep.Versions["sidecar"] = strings.TrimPrefix(strings.Fields(string(out) + " ? ?")[1], "v")
	}

	chat := http.Header{"Content-Type": {"application/json"}}
	b.call = []endpoint{
		{col: colDirect, method: http.MethodGet, url: "http://" + upAddr + "/search", pgid: up.pid()},
		{col: colGoProxy, method: http.MethodGet, url: "http://" + gpAddr + "/search", pgid: gp.pid()},
		{col: colSidecar, method: http.MethodGet, url: "http://" + scAddr + "/call/up/search", pgid: b.sidecar.pid()},
	}
	b.sidecarLLM = endpoint{col: colSidecar, method: http.MethodPost, url: "http://" + scAddr + "/llm/v1/chat/completions",
		body: []byte(chatRequest), header: chat, pgid: b.sidecar.pid()}
	b.llm = []endpoint{
		{col: colDirect, method: http.MethodPost, url: b.primary + "/v1/chat/completions", body: []byte(chatRequest),
			header: chat, pgid: primary.pid()},
		b.sidecarLLM,
	}
	b.stream = []endpoint{b.llm[0], b.sidecarLLM}

	if addr, p, err := b.startNginx(ctx, upAddr); err != nil {
		if os.Getenv("CI") == "true" {
			return fmt.Errorf("nginx (CI=true, so it may not be skipped): %w", err)
		}
		b.rep.Skipped[colNginx] = err.Error()
		b.logf("nginx skipped: %v", err)
	} else {
		b.call = append(b.call, endpoint{col: colNginx, method: http.MethodGet, url: "http://" + addr + "/search", pgid: p.pid()})
	}

	if err := b.startTraced(ctx, bins["sidecar"], consulAddr, primaryAddr, liteAddr); err != nil {
		return fmt.Errorf("the traced sidecar: %w", err)
	}

	if b.o.portkey {
		if e, err := b.startPortkey(ctx, primaryAddr, liteAddr); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.rep.Skipped[colPortkey] = err.Error()
			b.logf("Portkey skipped: %v", err)
		} else {
			b.portkeyLLM = &e
			b.llm = append(b.llm, e)
		}
	} else {
		b.rep.Skipped[colPortkey] = "not measured (-quick or -portkey=false)"
	}

	// Every path answers as it should before anything is measured.
	for _, e := range append(append([]endpoint{}, b.call...), b.llm...) {
		if err := check(e); err != nil {
			return err
		}
		if e.col == colTraced {
			b.tracedSent++
		}
	}
	return nil
}

// startSidecar writes config to name.hcl, starts the sidecar bin on it as
// name, waits for its API on addr and records its RSS at rest in column
// col.
func (b *bench) startSidecar(ctx context.Context, name, col, bin, addr, config string) (*proc, error) {
	conf := filepath.Join(b.tmp, name+".hcl")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return nil, err
	}
	p, err := b.g.start(name, "", nil, bin, "agent", "-config", conf)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/v1/health", 15*time.Second); err != nil {
		return nil, err
	}
	idle, err := rss(p.pid())
	if err != nil {
		return nil, err
	}
	b.c.add("rss.start", col, mib(idle))
	return p, nil
}

// startTraced starts the sink and a second sidecar with the same
// configuration plus a tracing block that samples every request and sends
// its spans to the sink, and adds it to the /call/ and /llm/ paths.
func (b *bench) startTraced(ctx context.Context, bin, consulAddr, primaryAddr, liteAddr string) error {
	sink, err := startSink()
	if err != nil {
		return err
	}
	b.sink = sink
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	// Its own agent id: two agents of one id would take each other's
	// registration in Consul.
	text := sidecarConfig("bench-traced", addr, consulAddr, primaryAddr, liteAddr) + tracingConfig(sink.addr)
	if b.traced, err = b.startSidecar(ctx, "sidecar-traced", colTraced, bin, addr, text); err != nil {
		return err
	}
	chat := http.Header{"Content-Type": {"application/json"}}
	b.call = append(b.call, endpoint{col: colTraced, method: http.MethodGet, url: "http://" + addr + "/call/up/search",
		pgid: b.traced.pid()})
	b.llm = append(b.llm, endpoint{col: colTraced, method: http.MethodPost, url: "http://" + addr + "/llm/v1/chat/completions",
		body: []byte(chatRequest), header: chat, pgid: b.traced.pid()})
	return nil
}

// tracingConfig is the traced sidecar's tracing block: every request
// sampled, OTLP over HTTP to the sink.
func tracingConfig(sink string) string {
	return fmt.Sprintf(`
tracing {
  enabled  = true
  endpoint = "http://%s"
  protocol = "http/protobuf"
  sampler  = "always_on"
}
`, sink)
}

// startHTTP starts a server on a free loopback port (passed as -addr) and
// waits until GET path answers.
func (b *bench) startHTTP(ctx context.Context, name, path string, argv ...string) (string, *proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	p, err := b.g.start(name, "", nil, append(argv, "-addr", addr)...)
	if err != nil {
		return "", nil, err
	}
	return addr, p, waitHTTP(ctx, p, "http://"+addr+path, 15*time.Second)
}

// sidecarConfig is the sidecar's configuration: the upstream "up" found
// in Consul (the service the harness registered), gpt-4o falling back to
// gpt-4o-mini, breakers that open after 3 failures for 1 s (doubling).
// id is agent.id ("": the default).
func sidecarConfig(id, listen, consul, primary, lite string) string {
	agent := `agent { name = "bench" }`
	if id != "" {
		agent = fmt.Sprintf("agent {\n  name = \"bench\"\n  id   = %q\n}", id)
	}
	return fmt.Sprintf(`# Written by tools/bench.
%s
listen { address = %q }
consul { address = %q }

breaker "default" {
  consecutive_failures = 3
  open_for             = "1s"
}

upstream "up" { service = %q }

model "gpt-4o" {
  provider = "openai"
  base_url = "http://%s/v1"
  api_key  = "bench"
  fallback = "gpt-4o-mini"
}

model "gpt-4o-mini" {
  provider = "openai"
  base_url = "http://%s/v1"
  api_key  = "bench"
}
`, agent, listen, consul, upstreamService, primary, lite)
}

// check sends one request on e and wants 200 (through the sidecar's
// gateway: answered by gpt-4o itself).
func check(e endpoint) error {
	req, err := http.NewRequest(e.method, e.url, strings.NewReader(string(e.body)))
	if err != nil {
		return err
	}
	req.Header = e.header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", e.col, e.url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s (%s): %s %s", e.col, e.url, resp.Status, body)
	}
	if m := resp.Header.Get("X-Sidecar-Model"); m != "" && m != "gpt-4o" {
		return fmt.Errorf("%s (%s): answered by %s, not gpt-4o", e.col, e.url, m)
	}
	return nil
}

// measure runs the rounds, then the streams and the failover.
func (b *bench) measure(ctx context.Context) error {
	b.logf("warming up every path")
	for _, e := range append(append([]endpoint{}, b.call...), b.llm...) {
		if _, err := b.attack(ctx, e, b.o.conns, 0, 500*time.Millisecond); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if b.portkeyLLM != nil { // Node's JIT: warm at the latency test's pace too
		if _, err := attack(ctx, *b.portkeyLLM, 1, b.o.rate, time.Second); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for r := range b.o.rounds {
		b.logf("round %d of %d", r+1, b.o.rounds)
		if err := b.round(ctx, r); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	after, err := rss(b.sidecar.pid())
	if err != nil {
		return err
	}
	b.c.add("rss.after_load", colSidecar, mib(after))
	if err := b.spans(); err != nil {
		return err
	}
	if err := b.streams(ctx, after); err != nil {
		return err
	}
	return b.failovers(ctx)
}

// round measures every path once, starting at a different one each round.
func (b *bench) round(ctx context.Context, r int) error {
	for _, kind := range []struct {
		prefix string
		paths  []endpoint
	}{{"call", b.call}, {"llm", b.llm}} {
		// Latency at one connection.
		p50, p99 := map[string]float64{}, map[string]float64{}
		for _, e := range rotate(kind.paths, r) {
			res, err := b.attack(ctx, e, 1, b.o.rate, b.o.latencyDur)
			if err != nil {
				return err
			}
			p50[e.col], p99[e.col] = us(res.quantile(0.50)), us(res.quantile(0.99))
			b.c.add(kind.prefix+".p50", e.col, p50[e.col])
			b.c.add(kind.prefix+".p99", e.col, p99[e.col])
		}
		for _, e := range kind.paths[1:] {
			b.c.add(kind.prefix+".added_p50", e.col, p50[e.col]-p50[colDirect])
			b.c.add(kind.prefix+".added_p99", e.col, p99[e.col]-p99[colDirect])
		}
		if _, ok := p50[colTraced]; ok {
			b.c.add(kind.prefix+".traced_added_p50", colTraced, p50[colTraced]-p50[colSidecar])
			b.c.add(kind.prefix+".traced_added_p99", colTraced, p99[colTraced]-p99[colSidecar])
		}
		// Throughput at b.o.conns connections (Portkey: latency only).
		rps, cpu := map[string]float64{}, map[string]float64{}
		for _, e := range rotate(kind.paths, r) {
			if e.col == colPortkey {
				continue
			}
			res, err := b.attack(ctx, e, b.o.conns, 0, b.o.throughputDur)
			if err != nil {
				return err
			}
			rps[e.col] = res.rps()
			b.c.add(kind.prefix+".rps", e.col, rps[e.col])
			cpu[e.col] = res.cpuPerRequest()
			b.c.add(kind.prefix+".cpu", e.col, cpu[e.col])
		}
		if _, ok := rps[colTraced]; ok {
			b.c.add(kind.prefix+".traced_added_cpu", colTraced, cpu[colTraced]-cpu[colSidecar])
			b.c.add(kind.prefix+".traced_rps_vs_sidecar", colTraced, rps[colTraced]/rps[colSidecar])
		}
		for _, e := range kind.paths[1:] {
			if e.col != colPortkey {
				b.c.add(kind.prefix+".rps_vs_direct", e.col, rps[e.col]/rps[colDirect])
			}
		}
	}
	// The first event of a stream: direct, then the sidecar; the other
	// way round every other round.
	var first [2][]time.Duration
	order := []int{0, 1}
	if r%2 == 1 {
		order = []int{1, 0}
	}
	for _, i := range order {
		d, err := ttfb(ctx, b.stream[i], b.o.ttfbSamples)
		if err != nil {
			return err
		}
		first[i] = d
		b.c.add("stream.ttfb_p50", b.stream[i].col, us(d[len(d)/2]))
	}
	q := func(d []time.Duration, p float64) float64 { return us(d[min(len(d)-1, int(p*float64(len(d))))]) }
	b.c.add("stream.added_ttfb_p50", colSidecar, q(first[1], 0.5)-q(first[0], 0.5))
	b.c.add("stream.added_ttfb_p99", colSidecar, q(first[1], 0.99)-q(first[0], 0.99))
	return nil
}

// attack is attack, counting the requests sent to the traced sidecar.
func (b *bench) attack(ctx context.Context, e endpoint, conns, rate int, d time.Duration) (attackResult, error) {
	res, err := attack(ctx, e, conns, rate, d)
	if e.col == colTraced {
		b.tracedSent += int64(res.ok + res.failed)
	}
	return res, err
}

// spans reads the traced sidecar's RSS, stops it (it exports the spans
// still buffered as it shuts down), and checks what the sink received:
// no span at all means that the traced column measured no tracing.
func (b *bench) spans() error {
	after, err := rss(b.traced.pid())
	if err != nil {
		return err
	}
	b.c.add("rss.after_load", colTraced, mib(after))
	b.traced.stop()
	st := b.sink.stats()
	b.sink.close()
	b.rep.Tracing = &TracingReport{Sampler: "always_on", Protocol: "http/protobuf", Requests: b.tracedSent, Sink: st}
	if st.Spans == 0 || st.Exports == 0 {
		return fmt.Errorf("the traced sidecar sent no span to the sink (%d exports, %d rejected) for %d requests: "+
			"its column measured no tracing; see %s", st.Exports, st.Rejected, b.tracedSent, b.traced.log)
	}
	if st.Rejected > 0 {
		return fmt.Errorf("the sink rejected %d of the traced sidecar's exports; see %s", st.Rejected, b.traced.log)
	}
	perReq := float64(st.Spans) / float64(b.tracedSent)
	b.rep.Tracing.SpansPerRequest = perReq
	b.rep.Tracing.BytesPerRequest = float64(st.Bytes) / float64(b.tracedSent)
	b.c.add("tracing.spans_per_request", colTraced, perReq)
	b.c.add("tracing.bytes_per_request", colTraced, b.rep.Tracing.BytesPerRequest)
	b.logf("the sink got %d spans in %d exports (%d bytes) for %d traced requests", st.Spans, st.Exports, st.Bytes, b.tracedSent)
	if perReq < 2 {
		// A server span and an attempt span per request: fewer means the
		// batch processor's queue overflowed and dropped some.
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("the traced sidecar exported %.2f spans per request, fewer than the 2 "+
			"it makes: its span queue overflowed under load and dropped some (its CPU per request is then a little low)", perReq))
	}
	return nil
}

// streams holds b.o.streams slow streams open through the sidecar and
// reads its RSS. idle is its RSS before.
func (b *bench) streams(ctx context.Context, idle int64) error {
	b.logf("holding %d slow streams open through the sidecar", b.o.streams)
	// A reply of 120 words at one event per delay: a minute per stream,
	// far longer than it takes to open them all.
	reply := strings.TrimSpace(strings.Repeat("slow ", 120))
	ctl := fmt.Sprintf(`{"event_delay":%q,"reply":%q}`, b.o.eventDelay, reply)
	if err := post(b.primary+"/_control", ctl); err != nil {
		return err
	}
	res, err := holdStreams(ctx, b.sidecarLLM.url, b.o.streams, b.sidecar.pid())
	if e := post(b.primary+"/_heal", ""); e != nil && err == nil {
		err = e
	}
	if e := post(b.primary+"/_control", `{"reply":"Hello from fakellm."}`); e != nil && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("%d streams through the sidecar: %w", b.o.streams, err)
	}
	b.logf("%d streams open after %s", res.opened, res.took.Round(time.Millisecond))
	b.c.add("rss.streams", colSidecar, mib(res.rss))
	b.c.add("rss.per_stream", colSidecar, float64(res.rss-idle)/1024/float64(b.o.streams))
	return nil
}

// failovers makes the primary model fail every call and counts the calls
// that still reach it, through the sidecar and through Portkey.
func (b *bench) failovers(ctx context.Context) error {
	gws := []endpoint{b.sidecarLLM}
	if b.portkeyLLM != nil {
		gws = append(gws, *b.portkeyLLM)
	}
	for _, e := range gws {
		b.logf("failover through %s: the primary fails every call, %d requests at %d/s", e.col, b.o.failoverRequests, b.o.failoverRate)
		f, err := failover(ctx, e.col, e, b.o.failoverRequests, b.o.failoverRate, b.primary, b.lite)
		if err != nil {
			return fmt.Errorf("failover through %s: %w", e.col, err)
		}
		b.rep.Failover = append(b.rep.Failover, f)
		b.c.add("failover.primary_calls", e.col, float64(f.PrimaryCalls))
		b.c.add("failover.failed", e.col, float64(f.Failed))
		b.c.add("failover.p50_ms", e.col, f.MedianMs)
		if e.col == colSidecar {
			if f.OpenedAfterMs < 0 {
				return fmt.Errorf("failover through the sidecar: its breaker never opened (%d calls reached the failing primary)", f.PrimaryCalls)
			}
			b.c.add("failover.opened_ms", e.col, f.OpenedAfterMs)
		}
	}
	return nil
}

// rotate returns the paths starting at index r (mod their number).
func rotate(paths []endpoint, r int) []endpoint {
	r %= len(paths)
	return append(append([]endpoint{}, paths[r:]...), paths[:r]...)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
func mib(b int64) float64        { return float64(b) / (1 << 20) }
