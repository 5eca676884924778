package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Report is everything one run measured; -json writes it.
type Report struct {
	Date     string            `json:"date"`
	Machine  Machine           `json:"machine"`
	Settings Settings          `json:"settings"`
	Versions map[string]string `json:"versions"`
	Rows     []Row             `json:"rows"`
	Failover []failoverResult  `json:"failover"`
	// Tracing is what the traced sidecar exported.
	Tracing *TracingReport `json:"tracing,omitempty"`
	// Skipped names the columns that were not measured, and why.
	Skipped map[string]string `json:"skipped,omitempty"`
	Notes   []string          `json:"notes,omitempty"`
	Seconds float64           `json:"seconds"` // the whole run
}

// TracingReport is what the traced sidecar ("sidecar_traced" in the
// rows) sent to the harness's OTLP sink over the run.
type TracingReport struct {
	Sampler         string    `json:"sampler"`
	Protocol        string    `json:"protocol"`
	Requests        int64     `json:"requests"` // sent to the traced sidecar, warm-up included
	Sink            SinkStats `json:"sink"`
	SpansPerRequest float64   `json:"spans_per_request"`
	BytesPerRequest float64   `json:"bytes_per_request"`
}

// Machine is where the run happened.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
}

// Settings are the run's parameters.
type Settings struct {
	Rounds             int     `json:"rounds"`
	LatencyAttackSec   float64 `json:"latency_attack_s"`
	LatencyRate        int     `json:"latency_rate_per_s"`
	ThroughputSec      float64 `json:"throughput_attack_s"`
	ThroughputConns    int     `json:"throughput_connections"`
	TTFBSamples        int     `json:"ttfb_samples_per_round"`
	Streams            int     `json:"streams"`
	StreamEventDelay   string  `json:"stream_event_delay"`
	FailoverRequests   int     `json:"failover_requests"`
	FailoverRate       int     `json:"failover_rate_per_s"`
	BreakerFailures    int     `json:"breaker_consecutive_failures"`
	BreakerOpenFor     string  `json:"breaker_open_for"`
	UpstreamAnswerSize int     `json:"upstream_answer_bytes"`
}

// Row is one measurement: a value per column that applies (direct, nginx,
// goproxy, sidecar, portkey) and, where they apply, the ratios
// sidecar/goproxy and sidecar/nginx, each over the rounds.
type Row struct {
	Key    string           `json:"key"`
	Name   string           `json:"name"`
	Unit   string           `json:"unit"`
	Cells  map[string]*Stat `json:"cells"`
	Ratios map[string]*Stat `json:"ratios,omitempty"`
	// MayBeZero marks a row whose expected value is 0 (failures).
	MayBeZero bool `json:"may_be_zero,omitempty"`
	prec      int
}

// Stat is a value measured once per round: its median, minimum and
// maximum, and every round's value.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Rounds []float64 `json:"rounds"`
}

func newStat(v []float64) *Stat {
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	r := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	rounds := make([]float64, len(v))
	for i, x := range v {
		rounds[i] = r(x)
	}
	return &Stat{Median: r(med), Min: r(s[0]), Max: r(s[len(s)-1]), Rounds: rounds}
}

// rowDef describes a row of the table.
type rowDef struct {
	key, name, unit string
	prec            int  // decimals shown
	ratios          bool // sidecar/goproxy and sidecar/nginx
	mayBeZero       bool
}

var rowDefs = []rowDef{
	{key: "call.p50", name: "/call/ latency p50, 1 conn", unit: "µs"},
	{key: "call.p99", name: "/call/ latency p99, 1 conn", unit: "µs"},
	{key: "call.added_p50", name: "/call/ added latency p50", unit: "µs", ratios: true},
	{key: "call.added_p99", name: "/call/ added latency p99", unit: "µs", ratios: true},
	{key: "call.rps", name: "/call/ throughput, 32 conns", unit: "req/s", ratios: true},
	{key: "call.rps_vs_direct", name: "/call/ throughput / direct", unit: "×", prec: 2},
	{key: "call.cpu", name: "/call/ CPU per request (direct: upstream's)", unit: "µs", prec: 1, ratios: true},
	{key: "call.traced_added_p50", name: "/call/ tracing's added latency p50 (vs sidecar)", unit: "µs"},
	{key: "call.traced_added_p99", name: "/call/ tracing's added latency p99 (vs sidecar)", unit: "µs"},
	{key: "call.traced_added_cpu", name: "/call/ tracing's added CPU per request", unit: "µs", prec: 1},
	{key: "call.traced_rps_vs_sidecar", name: "/call/ throughput traced / untraced", unit: "×", prec: 2},
	{key: "llm.p50", name: "/llm/ chat latency p50, 1 conn", unit: "µs"},
	{key: "llm.p99", name: "/llm/ chat latency p99, 1 conn", unit: "µs"},
	{key: "llm.added_p50", name: "/llm/ chat added latency p50", unit: "µs"},
	{key: "llm.added_p99", name: "/llm/ chat added latency p99", unit: "µs"},
	{key: "llm.rps", name: "/llm/ chat throughput, 32 conns", unit: "req/s"},
	{key: "llm.rps_vs_direct", name: "/llm/ chat throughput / direct", unit: "×", prec: 2},
	{key: "llm.cpu", name: "/llm/ CPU per request (direct: model's)", unit: "µs", prec: 1},
	{key: "llm.traced_added_p50", name: "/llm/ tracing's added latency p50 (vs sidecar)", unit: "µs"},
	{key: "llm.traced_added_p99", name: "/llm/ tracing's added latency p99 (vs sidecar)", unit: "µs"},
	{key: "llm.traced_added_cpu", name: "/llm/ tracing's added CPU per request", unit: "µs", prec: 1},
	{key: "llm.traced_rps_vs_sidecar", name: "/llm/ throughput traced / untraced", unit: "×", prec: 2},
	{key: "tracing.spans_per_request", name: "tracing: spans exported per request", unit: "spans", prec: 2},
	{key: "tracing.bytes_per_request", name: "tracing: OTLP bytes exported per request", unit: "B"},
	{key: "stream.ttfb_p50", name: "stream: first event p50, 1 conn", unit: "µs"},
	{key: "stream.added_ttfb_p50", name: "stream: added first-event time p50", unit: "µs"},
	{key: "stream.added_ttfb_p99", name: "stream: added first-event time p99", unit: "µs"},
	{key: "rss.start", name: "sidecar RSS idle, after start", unit: "MiB", prec: 1},
	{key: "rss.after_load", name: "sidecar RSS idle, after the load", unit: "MiB", prec: 1},
	{key: "rss.streams", name: "sidecar RSS, {streams} slow streams open", unit: "MiB", prec: 1},
	{key: "rss.per_stream", name: "sidecar RSS per open stream", unit: "KiB", prec: 1},
	{key: "failover.primary_calls", name: "failover: calls to the failing primary, of {requests}", unit: "calls"},
	{key: "failover.opened_ms", name: "failover: first failure → breaker open", unit: "ms", prec: 1},
	{key: "failover.failed", name: "failover: requests failed for the agent", unit: "req", mayBeZero: true},
	{key: "failover.p50_ms", name: "failover: latency p50 while failing", unit: "ms", prec: 2},
}

// collector gathers one value per round for each row and column.
type collector map[string]map[string][]float64

func (c collector) add(key, col string, v float64) {
	if c[key] == nil {
		c[key] = map[string][]float64{}
	}
	c[key][col] = append(c[key][col], v)
}

// rows turns what was collected into the report's rows, in table order.
func (c collector) rows(names *strings.Replacer) []Row {
	var out []Row
	for _, d := range rowDefs {
		vals := c[d.key]
		if len(vals) == 0 {
			continue
		}
		name := names.Replace(d.name)
		r := Row{Key: d.key, Name: name, Unit: d.unit, Cells: map[string]*Stat{}, MayBeZero: d.mayBeZero, prec: d.prec}
		for col, v := range vals {
			r.Cells[col] = newStat(v)
		}
		if d.ratios {
			side := vals[colSidecar]
			for _, other := range []string{colGoProxy, colNginx} {
				o := vals[other]
				if len(o) == 0 || len(o) != len(side) {
					continue
				}
				ratios := make([]float64, len(o))
				for i := range o {
					ratios[i] = side[i] / o[i]
				}
				if r.Ratios == nil {
					r.Ratios = map[string]*Stat{}
				}
				r.Ratios[colSidecar+"/"+other] = newStat(ratios)
			}
		}
		out = append(out, r)
	}
	return out
}

// printTable writes the report as a table: the median of the rounds with
// their range in brackets.
func (rep *Report) printTable(w io.Writer) {
	fmt.Fprintf(w, "\nBenchmark %s: %d CPU (%s), %s; %d round(s), interleaved\n", rep.Date, rep.Machine.CPUs,
		rep.Machine.Model, rep.Machine.Kernel, rep.Settings.Rounds)
	fmt.Fprintf(w, "latency: %d req/s for %gs at 1 connection; throughput: %d connections for %gs; median of the rounds [min–max]\n\n",
		rep.Settings.LatencyRate, rep.Settings.LatencyAttackSec, rep.Settings.ThroughputConns, rep.Settings.ThroughputSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	cols := []string{colDirect, colNginx, colGoProxy, colSidecar, colTraced, colPortkey}
	heads := []string{"direct", "nginx", "Go proxy", "sidecar", "sidecar traced", "Portkey", "sidecar/Go proxy", "sidecar/nginx"}
	// The names padded to one width: left-aligned in a right-aligned table.
	width := len("measurement")
	for _, r := range rep.Rows {
		width = max(width, utf8.RuneCountInString(r.Name))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) }
	fmt.Fprintf(tw, "%s\tunit\t%s\t\n", pad("measurement"), strings.Join(heads, "\t"))
	for _, r := range rep.Rows {
		cells := []string{pad(r.Name), r.Unit}
		for _, c := range cols {
			cells = append(cells, fmtStat(r.Cells[c], r.prec))
		}
		cells = append(cells, fmtStat(r.Ratios[colSidecar+"/"+colGoProxy], 2), fmtStat(r.Ratios[colSidecar+"/"+colNginx], 2))
		fmt.Fprintf(tw, "%s\t\n", strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
	for i, c := range cols {
		if why, ok := rep.Skipped[c]; ok {
			fmt.Fprintf(w, "\n%s skipped: %s", heads[i], why)
		}
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if t := rep.Tracing; t != nil {
		fmt.Fprintf(w, "\nsidecar traced: the same configuration with tracing on (sampler %s, OTLP %s to the harness's sink): "+
			"%d spans in %d exports (%d bytes) for %d requests", t.Sampler, t.Protocol, t.Sink.Spans, t.Sink.Exports,
			t.Sink.Bytes, t.Requests)
	}
	fmt.Fprintf(w, "\n\n%s in %.0fs\n", versionsLine(rep.Versions), rep.Seconds)
}

func fmtStat(s *Stat, prec int) string {
	if s == nil {
		return "–"
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	if len(s.Rounds) < 2 || f(s.Min) == f(s.Max) {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func versionsLine(v map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(v)) {
		parts = append(parts, k+" "+v[k])
	}
	return strings.Join(parts, ", ")
}

// writeJSON writes the report to path (its directory created).
func (rep *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// machine describes this machine: CPUs, their model, the kernel.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	// What uname -sr prints.
	typ, _ := os.ReadFile("/proc/sys/kernel/ostype")
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.Kernel = strings.TrimSpace(strings.TrimSpace(string(typ)) + " " + strings.TrimSpace(string(rel)))
	return m
}

func date() string { return time.Now().UTC().Format("2006-01-02 15:04 UTC") }
