// Command fakellm runs a fake model server: OpenAI- and Anthropic-compatible
// answers, plain and streaming, with failures injected by flags or by its
// /_control endpoint. See test/fakellm/README.md.
//
//	fakellm -addr 127.0.0.1:19200 -name gpt-4o -reply "Hi." -fail-next 3 -fail-status 503
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agent-sidecar/sidecar/test/fakellm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "fakellm:", err)
		os.Exit(2)
	}
}

// config is what the flags set.
type config struct {
	addr string
	opts fakellm.Options
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	var f fakellm.Faults
	fs := flag.NewFlagSet("fakellm", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: fakellm [flags]\n\n"+
			"A fake OpenAI- and Anthropic-compatible model server. Base URLs: http://ADDR/v1 for OpenAI SDKs,\n"+
			"http://ADDR for Anthropic SDKs. Faults can be changed at run time: POST /_control, POST /_heal.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:19200", "address to listen on")
	fs.StringVar(&c.opts.Name, "name", "", "a label for log lines and /_stats (e.g. the model it stands in for)")
	fs.StringVar(&c.opts.Reply, "reply", fakellm.DefaultReply, "the text completions answer")
	fs.Uint64Var(&c.opts.Seed, "seed", 0, "seed for -fail-rate draws (0: random)")
	fs.IntVar(&f.FailNext, "fail-next", 0, "the next N calls answer -fail-status")
	fs.IntVar(&f.FailStatus, "fail-status", fakellm.DefaultFailStatus, "status of injected failures")
	fs.Float64Var(&f.FailRate, "fail-rate", 0, "percentage (0-100) of calls that answer -fail-status")
	fs.DurationVar(&f.Latency, "latency", 0, "delay before each answer's headers")
	fs.DurationVar(&f.Stall, "stall", 0, "wait before the first byte of each answer (or until the client goes away)")
	fs.IntVar(&f.CutAfter, "cut-after", 0, "cut streams after N events (plain answers after half the body) and close the connection")
	fs.BoolVar(&f.Reset, "reset", false, "close every connection without an answer (TCP RST)")
	fs.BoolVar(&f.Empty, "empty", false, "answer empty completions")
	fs.BoolVar(&f.InvalidJSON, "invalid-json", false, "answer text that is not JSON when JSON is asked for")
	fs.DurationVar(&f.EventDelay, "event-delay", 0, "delay between the events of a stream")
	fs.DurationVar(&f.RetryAfter, "retry-after", 0, "Retry-After sent with injected 429, 503 and 529 answers (and the provider's rate-limit reset headers with 429)")
	fs.BoolVar(&f.Quota, "quota", false, "injected failures say the account is out of credit (OpenAI's insufficient_quota; use -fail-status 429)")
	fs.IntVar(&f.ContextLimit, "context-limit", 0, "context window in tokens: longer prompts get the provider's context-length 400 (0: none)")
	fs.IntVar(&f.Nested, "nested", 0, "answer every call with JSON arrays nested N deep")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case f.FailNext < 0 || f.CutAfter < 0 || f.Nested < 0 || f.ContextLimit < 0:
		return c, errors.New("-fail-next, -cut-after, -nested and -context-limit must be 0 or more")
	case f.FailStatus < 400 || f.FailStatus > 599:
		return c, errors.New("-fail-status must be an error status (400-599)")
	case f.FailRate < 0 || f.FailRate > 100:
		return c, errors.New("-fail-rate must be a percentage (0-100)")
	case f.Latency < 0 || f.Stall < 0 || f.EventDelay < 0 || f.RetryAfter < 0:
		return c, errors.New("durations must not be negative")
	}
	c.opts.Faults = f
	return c, nil
}

// run serves until ctx ends; ready, when set, is told the address it
// listens on.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := log.New(stderr, "", log.LstdFlags|log.Lmicroseconds)
	c.opts.Logf = logger.Printf
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           fakellm.New(c.opts),
		ReadHeaderTimeout: 10 * time.Second,
		// Stalls, latency and slow streams end with the server.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    logger,
	}
	name := c.opts.Name
	if name == "" {
		name = "fakellm"
	}
	logger.Printf("%s listening on http://%s (OpenAI base URL http://%[2]s/v1, Anthropic http://%[2]s); faults: %s",
		name, ln.Addr(), describe(c.opts.Faults))
	if ready != nil {
		ready(ln.Addr().String())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	logger.Printf("%s stopped", name)
	return nil
}

// describe lists the faults set, for the first log line.
func describe(f fakellm.Faults) string {
	var s string
	add := func(cond bool, format string, args ...any) {
		if cond {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf(format, args...)
		}
	}
	add(f.FailNext > 0, "fail-next %d (status %d)", f.FailNext, f.FailStatus)
	add(f.FailRate > 0, "fail-rate %g%% (status %d)", f.FailRate, f.FailStatus)
	add(f.Latency > 0, "latency %s", f.Latency)
	add(f.Stall > 0, "stall %s", f.Stall)
	add(f.CutAfter > 0, "cut-after %d", f.CutAfter)
	add(f.Reset, "reset")
	add(f.Empty, "empty")
	add(f.InvalidJSON, "invalid-json")
	add(f.EventDelay > 0, "event-delay %s", f.EventDelay)
	add(f.RetryAfter > 0, "retry-after %s", f.RetryAfter)
	add(f.Quota, "quota")
	add(f.ContextLimit > 0, "context-limit %d", f.ContextLimit)
	if s == "" {
		return "none"
	}
	return s
}
