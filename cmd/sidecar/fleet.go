package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/report"
)

// agentTag is the tag every sidecar registers its agent with.
const agentTag = "ai-agent"

// FleetInstance is one agent instance of `sidecar fleet -json`.
type FleetInstance struct {
	Service   string `json:"service"`
	ID        string `json:"id"`
	Node      string `json:"node"`
	Address   string `json:"address"`
	Port      int    `json:"port"`
	Heartbeat string `json:"heartbeat"` // the heartbeat check: passing, warning, critical ("" when missing)
	Sidecar   string `json:"sidecar"`   // the sidecar check
	// LastHeartbeat is the time of the last heartbeat the check reports.
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	Isolated      bool       `json:"isolated"`
	OpenBreakers  int        `json:"open_breakers"`
	Degraded      bool       `json:"degraded"`     // a model chain served by a fallback model
	Answered1h    string     `json:"answered_1h"`  // e.g. "99.5%"; "" without traffic
	SidecarAddr   string     `json:"sidecar_addr"` // the control API, from service meta
	Version       string     `json:"version"`      // the sidecar's version, from service meta
	// SpendTodayUSD is what the agent's model answers cost on the current
	// UTC day, in US dollars at the models' prices, and TokensToday their
	// tokens; absent when the sidecar reported no usage today.
	SpendTodayUSD *float64 `json:"spend_today_usd,omitempty"`
	TokensToday   int64    `json:"tokens_today,omitempty"`
	// Reported is when the sidecar last wrote its report to Consul KV
	// (consul.fleet_prefix); nil without one, and then the fields above
	// that come from it are empty.
	Reported *time.Time `json:"reported,omitempty"`
}

func runFleet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	consulAddr := fs.String("consul", "", "Consul HTTP address (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500); the token is $CONSUL_HTTP_TOKEN")
	service := fs.String("service", "", "only instances of this service")
	critical := fs.Bool("critical", false, "only instances that are not healthy: a check not passing, or open breakers")
	asJSON := fs.Bool("json", false, "print the instances as a JSON array")
	watch := fs.Bool("watch", false, "redraw whenever an instance changes (a check in Consul, or a sidecar's report); Ctrl-C stops")
	prefix := fs.String("prefix", policies.DefaultFleetPrefix, "the Consul KV prefix of the sidecars' reports (their consul.fleet_prefix)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar fleet [-consul ADDR] [-service NAME] [-critical] [-json] [-watch] [-prefix KV-PREFIX]

Prints one line per agent instance across the fleet (every service tagged
ai-agent): its checks, the age of its last heartbeat, open breakers, the
share of calls answered in the last hour, and what its model calls cost
today (UTC). The checks' statuses come from
Consul's health state; the rest from the report each sidecar keeps in
Consul KV (consul.fleet_prefix), which it rewrites when its state changes.

Exit status: 0 when every instance listed is healthy, 1 when one is not,
3 when Consul does not answer.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sidecar fleet: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	client, err := discovery.NewClient(discovery.Config{Address: *consulAddr})
	if err != nil {
		fmt.Fprintf(stderr, "sidecar fleet: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := colorsFor(stdout)
	warned := map[string]bool{} // reports that do not decode, named once
	var index uint64
	var drawn string
	for {
		// A blocking query returns at once when a check changes; reports
		// change in KV, so -watch also looks again every fleetPoll.
		entries, next, err := client.Fleet(ctx, agentTag, index, fleetPoll)
		var reports map[string]*report.Report
		if err == nil {
			reports, err = readReports(ctx, client, *prefix, stderr, warned)
		}
		if err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			fmt.Fprintf(stderr, "sidecar fleet: Consul at %s: %v\n", client.Address(), err)
			if !*watch {
				return exitUnreachable
			}
			select {
			case <-ctx.Done():
				return exitOK
			case <-time.After(2 * time.Second):
				continue
			}
		}
		var list []FleetInstance
		unhealthy := false
		for _, e := range entries {
			in := fleetInstance(e, reports[e.ID], time.Now())
			bad := !in.healthy()
			if (*service != "" && in.Service != *service) || (*critical && !bad) {
				continue
			}
			unhealthy = unhealthy || bad
			list = append(list, in)
		}
		var out strings.Builder
		if *asJSON {
			if list == nil {
				list = []FleetInstance{}
			}
			b, _ := json.MarshalIndent(list, "", "  ")
			fmt.Fprintf(&out, "%s\n", b)
		} else {
			printFleet(&out, list, time.Now(), p)
		}
		if !*watch {
			fmt.Fprint(stdout, out.String())
			if unhealthy {
				return exitError
			}
			return exitOK
		}
		if next == index {
			next++ // the index went back (Consul restarted): read afresh
		}
		index = next
		if out.String() == drawn {
			continue // nothing changed
		}
		drawn = out.String()
		if !*asJSON && p.on {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		fmt.Fprint(stdout, drawn)
		if !*asJSON {
			fmt.Fprintf(stdout, "%s\n", p.dim(fmt.Sprintf("Consul %s, index %d, %s; redraws on change, Ctrl-C stops",
				client.Address(), next, time.Now().Format("15:04:05"))))
		}
	}
}

// fleetPoll bounds a blocking query of `sidecar fleet -watch`: reports in
// KV are looked at again at least this often.
const fleetPoll = 2 * time.Second

func (in FleetInstance) healthy() bool {
	return in.Heartbeat == string(discovery.Passing) && (in.Sidecar == string(discovery.Passing) || in.Sidecar == "") &&
		in.OpenBreakers == 0 && !in.Isolated
}

// fleetInstance is one instance as Consul sees it (its checks' statuses,
// which reach the catalog at once) and as its sidecar last reported it in
// KV (rep; nil when the sidecar writes none). A spend reported for another
// day than now's (UTC) is left out.
func fleetInstance(e discovery.ServiceEntry, rep *report.Report, now time.Time) FleetInstance {
	in := FleetInstance{Service: e.Name, ID: e.ID, Node: e.Node, Address: e.Address, Port: e.Port,
		SidecarAddr: e.Meta["sidecar_control"], Version: e.Meta["sidecar_version"]}
	for _, ch := range e.Checks {
		switch ch.Name {
		case "heartbeat":
			in.Heartbeat = string(ch.Status)
		case "sidecar":
			in.Sidecar = string(ch.Status)
		}
	}
	if rep == nil {
		return in
	}
	in.Reported = &rep.Updated
	in.LastHeartbeat = rep.LastHeartbeat
	in.Isolated = rep.Isolated
	in.OpenBreakers = len(rep.OpenBreakers)
	in.Degraded = len(rep.Degraded) > 0
	if rep.Answered1h != nil {
		in.Answered1h = report.Percent(*rep.Answered1h)
	}
	if sp := rep.SpendToday; sp != nil && sp.Day == now.UTC().Format("2006-01-02") {
		cost := sp.CostUSD
		in.SpendTodayUSD, in.TokensToday = &cost, sp.Tokens
	}
	return in
}

// readReports reads the reports under prefix, by service ID. One that does
// not decode is left out and named on stderr once (warned).
func readReports(ctx context.Context, client *discovery.Client, prefix string, stderr io.Writer, warned map[string]bool) (map[string]*report.Report, error) {
	out := map[string]*report.Report{}
	if prefix == "" {
		return out, nil
	}
	pairs, _, err := client.KVList(ctx, prefix, 0, 0)
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		r, err := report.Decode(p.Value)
		if err != nil {
			if !warned[p.Key] {
				fmt.Fprintf(stderr, "sidecar fleet: ignoring Consul KV %s: %v\n", p.Key, err)
				warned[p.Key] = true
			}
			continue
		}
		if report.Key(prefix, r.ID) == p.Key {
			out[r.ID] = &r
		}
	}
	return out, nil
}

func printFleet(w io.Writer, list []FleetInstance, now time.Time, p palette) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no agent instances (services tagged ai-agent) match")
		return
	}
	// cell is a column's plain text and the colour it is printed in; widths
	// are those of the plain text, so colours do not break the alignment.
	type cell struct {
		text  string
		color func(string) string
	}
	plain := func(s string) string { return s }
	status := func(s string) cell {
		switch s {
		case "passing":
			return cell{s, p.good}
		case "warning":
			return cell{s, p.warn}
		case "":
			return cell{"-", p.dim}
		}
		return cell{s, p.bad}
	}
	rows := [][]cell{{{"SERVICE", plain}, {"ID", plain}, {"NODE", plain}, {"HEARTBEAT", plain}, {"SIDECAR", plain},
		{"LAST BEAT", plain}, {"OPEN BREAKERS", plain}, {"ANSWERED 1H", plain}, {"SPEND TODAY", plain}}}
	for _, in := range list {
		beat := "-"
		if in.LastHeartbeat != nil {
			beat = ago(now, *in.LastHeartbeat)
		}
		hb := status(in.Heartbeat)
		if in.Isolated {
			hb = cell{"ISOLATED", p.bad}
		}
		sc := status(in.Sidecar)
		if in.Degraded {
			sc.text += " (degraded)"
		}
		answered := in.Answered1h
		if answered == "" {
			answered = "-"
		}
		open := cell{fmt.Sprint(in.OpenBreakers), plain}
		if in.OpenBreakers > 0 {
			open.color = p.bad
		}
		spend := cell{"-", p.dim}
		if in.SpendTodayUSD != nil {
			spend = cell{fmt.Sprintf("%s (%s tokens)", usd(*in.SpendTodayUSD), tokenCount(in.TokensToday)), plain}
		}
		rows = append(rows, []cell{{in.Service, plain}, {in.ID, plain}, {in.Node, plain}, hb, sc, {beat, plain}, open,
			{answered, plain}, spend})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c.text)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := ""
			if i < len(r)-1 {
				pad = strings.Repeat(" ", widths[i]-len([]rune(c.text))+2)
			}
			b.WriteString(c.color(c.text) + pad)
		}
		fmt.Fprintln(w, b.String())
	}
}
