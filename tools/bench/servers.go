package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// answer600 is the upstream's answer: 600 bytes of JSON, the size of a
// typical tool reply (as in sidecar/bench_test.go).
var answer600 = `{"result":"` + strings.Repeat("x", 600-13) + `"}`

// Hidden subcommands: the harness runs itself as the upstream and as the
// plain Go proxy, so that each is a process of its own whose CPU can be
// read from /proc.
const (
	cmdUpstream = "serve-upstream"
	cmdGoProxy  = "serve-goproxy"
)

// serve runs a hidden subcommand until SIGTERM or SIGINT.
func serve(name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	target := fs.String("target", "", "the upstream's base URL (serve-goproxy)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch name {
	case cmdUpstream:
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, answer600)
		})
	case cmdGoProxy:
		u, err := url.Parse(*target)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-target: want a base URL, got %q", *target)
		}
		rp := httputil.NewSingleHostReverseProxy(u)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		rp.Transport = tr
		h = rp
	}
	srv := &http.Server{Addr: *addr, Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
