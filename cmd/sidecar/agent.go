package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar"
	"github.com/agent-sidecar/sidecar/sidecar/kvpolicy"
	"github.com/agent-sidecar/sidecar/sidecar/supervise"
)

// pathList collects -config and -config-dir values in command-line order.
type pathList struct {
	paths *[]string
	dir   bool
}

func (p pathList) String() string { return "" }
func (p pathList) Set(v string) error {
	if p.dir {
		st, err := os.Stat(v)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory (use -config for a file)", v)
		}
	}
	*p.paths = append(*p.paths, v)
	return nil
}

func runAgent(args []string, stderr io.Writer) int {
	// Signals first, so a signal during start-up is a graceful stop too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var paths []string
	fs.Var(pathList{paths: &paths}, "config", "configuration `FILE` (repeatable)")
	fs.Var(pathList{paths: &paths, dir: true}, "config-dir", "load every *.hcl in `DIR` in name order (repeatable)")
	dev := fs.Bool("dev", false, "run with the built-in defaults and no configuration file")
	level := fs.String("log-level", envOr("SIDECAR_LOG_LEVEL", "info"), "log level: trace, debug, info, warn, error ($SIDECAR_LOG_LEVEL)")
	jsonLogs := fs.Bool("log-json", os.Getenv("SIDECAR_LOG_JSON") == "true", "log as JSON lines ($SIDECAR_LOG_JSON=true)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sidecar agent -config FILE... | -config-dir DIR... | -dev

Runs the sidecar beside one agent: the control API (heartbeats, status,
reload), Consul registration with a TTL heartbeat check, isolation after
missed heartbeats, notifications and (with agent.exec) supervision of the
agent process. SIGHUP reloads the configuration; SIGINT/SIGTERM stop it
gracefully (a second signal kills the agent's processes and exits at once).

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), `
Exit codes: 0 clean shutdown, 1 invalid configuration or failed run,
2 bad flags, 130 forced exit on a second signal.
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sidecar agent: unexpected argument %q (use -config FILE)\n", fs.Arg(0))
		return exitUsage
	}
	switch {
	case *dev && len(paths) > 0:
		fmt.Fprintln(stderr, "sidecar agent: -dev runs without files; drop -dev or the -config/-config-dir flags")
		return exitUsage
	case !*dev && len(paths) == 0:
		fmt.Fprintln(stderr, "sidecar agent: no configuration: give -config FILE, -config-dir DIR, or -dev")
		return exitUsage
	}
	var cfg *policies.Config
	var opts sidecar.Options
	if *dev {
		cfg = policies.Dev()
	} else {
		var err error
		if cfg, err = policies.Load(paths...); err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
		opts.Reload = func() (*policies.Config, error) { return policies.Load(paths...) }
		// Fleet-wide policies from Consul KV, below the files: read once
		// now (briefly: Consul may be down), then followed by Run.
		if cfg.Consul.PolicyPrefix != "" {
			kv, withKV, err := kvpolicy.Follow(cfg, sidecar.ConsulConfig(cfg), paths, 5*time.Second)
			if err != nil {
				fmt.Fprintln(stderr, "sidecar agent:", err)
				return exitError
			}
			cfg, opts.Policies, opts.Reload = withKV, kv, kv.Load
		}
	}
	// The log block of the configuration, unless a flag or the environment
	// says otherwise.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["log-level"] && os.Getenv("SIDECAR_LOG_LEVEL") == "" && cfg.Log.Level != "" {
		*level = cfg.Log.Level
	}
	if !set["log-json"] && os.Getenv("SIDECAR_LOG_JSON") == "" {
		*jsonLogs = cfg.Log.JSON
	}
	lvl := hclog.LevelFromString(*level)
	if lvl == hclog.NoLevel {
		fmt.Fprintf(stderr, "sidecar agent: unknown -log-level %q: use trace, debug, info, warn or error\n", *level)
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sidecar", Level: lvl, JSONFormat: *jsonLogs, Output: stderr})
	if *dev {
		log.Warn("running with the built-in -dev configuration")
	}

	// Orphans of the agent (and, as a container's PID 1, of anything)
	// come to the sidecar, which reaps them.
	if cfg.Agent.Exec != nil || os.Getpid() == 1 {
		if pid1, err := supervise.ReapOrphans(); err != nil {
			log.Warn("cannot become a child subreaper: orphans of the agent go to init", "error", err)
		} else if pid1 {
			log.Debug("running as PID 1: reaping orphaned processes")
		}
	}

	if exe, err := os.Executable(); err == nil {
		opts.Executable = exe
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	opts.ReloadOn = hup
	s, err := sidecar.New(cfg, log, opts)
	if err != nil {
		log.Error("sidecar did not start", "error", err)
		return exitError
	}

	go func() {
		<-ctx.Done()
		// The graceful shutdown has begun; a second signal exits at once.
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		log.Warn("second signal: killing the agent's processes and exiting without finishing the shutdown")
		s.KillAgent()
		os.Exit(exitForced)
	}()

	if err := s.Run(ctx); err != nil {
		log.Error("sidecar stopped with an error", "error", err)
		return exitError
	}
	return exitOK
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}
