package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/agent-sidecar/sidecar/policies"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar validate FILE|DIR...

Loads the given configuration files and directories (every *.hcl in a
directory, in name order) as one configuration, as "sidecar agent" would,
and reports every error with file:line:col, and on stderr what is valid
but probably not meant (a model's api_key that is empty, notify blocks that
health.notify = [] leaves unused, a budget's cost_usd counting a model
without a price).

Exit codes: 0 valid, 1 invalid, 2 no arguments.
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := policies.Load(fs.Args()...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "configuration valid: %d file(s); agent %q (id %q), heartbeat every %s, isolated after %s without one\n",
		len(cfg.Sources), cfg.Agent.Name, cfg.Agent.ID, cfg.Health.HeartbeatInterval, cfg.Health.TTL())
	if len(cfg.Upstreams) > 0 {
		fallbacks := map[string][]string{}
		for name, u := range cfg.Upstreams {
			fallbacks[name] = u.Fallback
		}
		fmt.Fprintf(stdout, "upstreams (/call/…): %s\n", chains(fallbacks))
	}
	if len(cfg.Models) > 0 {
		fallbacks := map[string][]string{}
		for label, m := range cfg.Models {
			if m.Fallback != "" {
				fallbacks[label] = []string{m.Fallback}
			} else {
				fallbacks[label] = nil
			}
		}
		fmt.Fprintf(stdout, "models (/llm/…): %s\n", chains(fallbacks))
	}
	return exitOK
}

// chains prints each chain that starts at a name nothing falls back to, as
// "a → b → c", with a quoted name per step.
func chains(fallbacks map[string][]string) string {
	target := map[string]bool{}
	for _, fs := range fallbacks {
		for _, f := range fs {
			target[f] = true
		}
	}
	var names []string
	for name := range fallbacks {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []string
	for _, name := range names {
		if target[name] {
			continue
		}
		steps := []string{strconv.Quote(name)}
		seen := map[string]bool{name: true}
		for next := fallbacks[name]; len(next) > 0; {
			var group []string
			var after []string
			for _, f := range next {
				if seen[f] {
					continue
				}
				seen[f] = true
				group = append(group, strconv.Quote(f))
				after = append(after, fallbacks[f]...)
			}
			if len(group) == 0 {
				break
			}
			steps = append(steps, strings.Join(group, ", "))
			next = after
		}
		out = append(out, strings.Join(steps, " → "))
	}
	return strings.Join(out, "; ")
}
