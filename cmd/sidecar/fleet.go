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
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
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
}

func runFleet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	consulAddr := fs.String("consul", "", "Consul HTTP address (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500); the token is $CONSUL_HTTP_TOKEN")
	service := fs.String("service", "", "only instances of this service")
	critical := fs.Bool("critical", false, "only instances that are not healthy: a check not passing, or open breakers")
	asJSON := fs.Bool("json", false, "print the instances as a JSON array")
	watch := fs.Bool("watch", false, "redraw whenever a check in Consul changes (blocking queries); Ctrl-C stops")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar fleet [-consul ADDR] [-service NAME] [-critical] [-json] [-watch]

Prints one line per agent instance across the fleet (every service tagged
ai-agent): its checks, the age of its last heartbeat, open breakers, and the
share of calls answered in the last hour, as its sidecar reports them.

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
	var index uint64
	for {
		entries, next, err := client.Fleet(ctx, agentTag, index, 5*time.Minute)
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
			in := fleetInstance(e)
			bad := !in.healthy()
			if (*service != "" && in.Service != *service) || (*critical && !bad) {
				continue
			}
			unhealthy = unhealthy || bad
			list = append(list, in)
		}
		if *watch && !*asJSON && p.on {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		if *asJSON {
			if list == nil {
				list = []FleetInstance{}
			}
			b, _ := json.MarshalIndent(list, "", "  ")
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printFleet(stdout, list, time.Now(), p)
			if *watch {
				fmt.Fprintf(stdout, "%s\n", p.dim(fmt.Sprintf("Consul %s, index %d, %s; redraws on change, Ctrl-C stops",
					client.Address(), next, time.Now().Format("15:04:05"))))
			}
		}
		if !*watch {
			if unhealthy {
				return exitError
			}
			return exitOK
		}
		if next == index {
			next++ // the index went back (Consul restarted): read afresh
		}
		index = next
	}
}

func (in FleetInstance) healthy() bool {
	return in.Heartbeat == string(discovery.Passing) && (in.Sidecar == string(discovery.Passing) || in.Sidecar == "") &&
		in.OpenBreakers == 0 && !in.Isolated
}

// Patterns of the check outputs the sidecar writes (sidecar/health/check.go
// and sidecar/sidecarcheck.go).
var (
	reBeatAt     = regexp.MustCompile(`(?m)^(?:Heartbeat \w+ at|Last heartbeat:) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`)
	reOpen       = regexp.MustCompile(`(?m)^(\d+) of \d+ breakers not closed`)
	reAnswered1h = regexp.MustCompile(`Answered \(first choice or fallback\): 1h ([\d.]+%)`)
)

func fleetInstance(e discovery.ServiceEntry) FleetInstance {
	in := FleetInstance{Service: e.Name, ID: e.ID, Node: e.Node, Address: e.Address, Port: e.Port,
		SidecarAddr: e.Meta["sidecar_control"], Version: e.Meta["sidecar_version"]}
	for _, ch := range e.Checks {
		switch ch.Name {
		case "heartbeat":
			in.Heartbeat = string(ch.Status)
			in.Isolated = strings.Contains(ch.Output, "ISOLATED since")
			if m := reBeatAt.FindStringSubmatch(ch.Output); m != nil {
				if t, err := time.Parse("2006-01-02 15:04:05", m[1]); err == nil {
					in.LastHeartbeat = &t
				}
			}
		case "sidecar":
			in.Sidecar = string(ch.Status)
			if m := reOpen.FindStringSubmatch(ch.Output); m != nil {
				_, _ = fmt.Sscan(m[1], &in.OpenBreakers)
			}
			in.Degraded = strings.Contains(ch.Output, "Degraded:")
			if m := reAnswered1h.FindStringSubmatch(ch.Output); m != nil {
				in.Answered1h = m[1]
			}
		}
	}
	return in
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
		{"LAST BEAT", plain}, {"OPEN BREAKERS", plain}, {"ANSWERED 1H", plain}}}
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
		rows = append(rows, []cell{{in.Service, plain}, {in.ID, plain}, {in.Node, plain}, hb, sc, {beat, plain}, open, {answered, plain}})
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
