// Package jaegertest starts a real Jaeger (v2: OTLP receivers, in-memory
// storage and the query API in one process) for tests, and reads the
// traces it received back through its query API. Each call to Start runs
// its own Jaeger on free loopback ports.
//
// The binary is looked up in this order: $JAEGER_BIN; the project's cache
// ($SIDECAR_CACHE_DIR/jaeger-v1.76.0/jaeger, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/agent-sidecar/jaeger-v1.76.0/jaeger, as
// built by `make jaeger`); `jaeger` on PATH. When none is found the test is
// skipped, or fails when CI=true.
//
// When built jaeger-ui assets are in the cache (…/agent-sidecar/jaeger-ui,
// see docs/development.md), the query service serves them as its UI.
package jaegertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

const (
	readyTimeout = 30 * time.Second // how long Start waits for the listeners
	startTries   = 5                // launches tried before giving up
	outputLimit  = 64 << 10         // bytes of Jaeger output kept
	tailLimit    = 4 << 10          // bytes of output shown on failure
)

// Jaeger is a running (or stopped) Jaeger owned by one test.
type Jaeger struct {
	// OTLPEndpoint is the OTLP/HTTP receiver, "http://127.0.0.1:PORT"
	// (spans go to OTLPEndpoint + "/v1/traces").
	OTLPEndpoint string
	// OTLPGRPCAddr is the OTLP/gRPC receiver, "127.0.0.1:PORT".
	OTLPGRPCAddr string
	// QueryURL is the query API and UI, "http://127.0.0.1:PORT".
	QueryURL string
	// Query reads traces from QueryURL.
	Query *Client

	bin, config string
	ports       Ports
	out         *testbin.Tail

	mu   sync.Mutex
	proc *testbin.Process // nil when stopped
}

// Start starts Jaeger on free loopback ports, waits until its OTLP
// receivers and its query API answer, and stops it when the test ends.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin := Program.Need(t)
	dir := t.TempDir()
	var lastErr error
	for try := range startTries {
		p := freePorts(t)
		j := &Jaeger{
			OTLPEndpoint: "http://" + loopback(p.OTLPHTTP),
			OTLPGRPCAddr: loopback(p.OTLPGRPC),
			QueryURL:     "http://" + loopback(p.QueryHTTP),
			bin:          bin,
			config:       filepath.Join(dir, "jaeger-"+strconv.Itoa(try)+".yaml"),
			ports:        p,
			out:          testbin.NewTail(outputLimit),
		}
		j.Query = &Client{BaseURL: j.QueryURL}
		if err := os.WriteFile(j.config, []byte(Config(p, UIAssets())), 0o600); err != nil {
			t.Fatalf("jaegertest: writing the configuration: %v", err)
		}
		// A port picked here may be taken by someone else before Jaeger
		// binds it; then Jaeger exits at once and new ports are tried.
		if lastErr = j.launch(); lastErr == nil {
			t.Cleanup(j.Stop)
			return j
		}
		j.Stop()
	}
	t.Fatalf("jaegertest: starting %s failed after %d attempts: %v", bin, startTries, lastErr)
	return nil
}

// Trace returns the trace with the given id as Jaeger has it now (no spans
// when it has none), or fails the test when the query fails.
func (j *Jaeger) Trace(t testing.TB, traceID string) Trace {
	t.Helper()
	tr, err := j.Query.Trace(context.Background(), traceID)
	if errors.Is(err, ErrNotFound) {
		return Trace{ID: traceID}
	}
	if err != nil {
		t.Fatalf("jaegertest: reading trace %s: %v", traceID, err)
	}
	return tr
}

// WaitTrace polls Jaeger until the trace has at least minSpans spans and
// returns it; the test fails when it has not within timeout, showing the
// spans that had arrived. Spans reach Jaeger when the sender's exporter
// flushes them: end them and flush (or shut the provider down) first.
func (j *Jaeger) WaitTrace(t testing.TB, traceID string, minSpans int, timeout time.Duration) Trace {
	t.Helper()
	var tr Trace
	testutil.EventuallySeen(t, fmt.Sprintf("%d span(s) of trace %s in Jaeger", minSpans, traceID), timeout,
		func() (bool, string) {
			got, err := j.Query.Trace(context.Background(), traceID)
			switch {
			case errors.Is(err, ErrNotFound):
				return false, "no such trace"
			case err != nil:
				return false, err.Error()
			}
			tr = got
			return len(tr.Spans) >= minSpans, fmt.Sprintf("%d span(s):\n%s", len(tr.Spans), tr.Tree())
		})
	return tr
}

// Output returns the last part of what Jaeger printed, for debugging.
func (j *Jaeger) Output() string { return j.out.String() }

// Stop stops Jaeger: SIGTERM, then SIGKILL if it has not exited within
// 10 s. It is safe to call more than once.
func (j *Jaeger) Stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.proc != nil {
		j.proc.Stop()
		j.proc = nil
	}
}

// launch starts the process and waits until it is ready. On error the
// process may still be running; the caller stops it.
func (j *Jaeger) launch() error {
	j.mu.Lock()
	proc, err := testbin.Start(j.bin, []string{"--config", j.config}, j.out)
	if err != nil {
		j.mu.Unlock()
		return err
	}
	j.proc = proc
	j.mu.Unlock()

	if err := WaitReady(context.Background(), j.Query, j.ports, proc.Exited(), readyTimeout); err != nil {
		return fmt.Errorf("%w\n--- jaeger output (tail) ---\n%s", err, j.out.Last(tailLimit))
	}
	return nil
}

// WaitReady waits until Ready holds; it gives up when exited is closed
// (the process ended), ctx ends or limit passes.
func WaitReady(ctx context.Context, q *Client, p Ports, exited <-chan struct{}, limit time.Duration) error {
	lastErr := errors.New("no answer yet")
	ready := testutil.Poll(limit, func() bool {
		select {
		case <-exited:
			lastErr = errors.New("jaeger exited before it was ready")
			return true
		case <-ctx.Done():
			lastErr = ctx.Err()
			return true
		default:
		}
		lastErr = Ready(ctx, q, p)
		return lastErr == nil
	})
	if ready && lastErr == nil {
		return nil
	}
	if ready { // ended early: exited or ctx
		return lastErr
	}
	return fmt.Errorf("jaeger not ready on %s after %s: %v", q.BaseURL, limit, lastErr)
}

// Ready looks once whether the query API at q answers and the OTLP
// receivers on p accept connections.
func Ready(ctx context.Context, q *Client, p Ports) error {
	if _, err := q.Services(ctx); err != nil {
		return fmt.Errorf("query API: %w", err)
	}
	for _, port := range []int{p.OTLPHTTP, p.OTLPGRPC} {
		c, err := net.DialTimeout("tcp", loopback(port), time.Second)
		if err != nil {
			return fmt.Errorf("OTLP receiver: %w", err)
		}
		c.Close()
	}
	return nil
}

// freePorts picks four distinct free ports below the ephemeral range.
func freePorts(t testing.TB) Ports {
	t.Helper()
	seen := map[int]bool{}
	pick := func() int {
		for {
			if p := testutil.FreePort(t); !seen[p] {
				seen[p] = true
				return p
			}
		}
	}
	return Ports{OTLPHTTP: pick(), OTLPGRPC: pick(), QueryHTTP: pick(), QueryGRPC: pick()}
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
