// Package consultest starts a real Consul dev agent for tests. Each call to
// Start runs its own `consul agent -dev` on free loopback ports, so tests can
// run in parallel and never touch a Consul the developer runs for other work.
//
// The binary is looked up in this order: $CONSUL_BIN; the project's cache
// ($SIDECAR_CACHE_DIR/consul-v1.14.11/consul, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/agent-sidecar/consul-v1.14.11/consul, as
// built by `make consul`); `consul` on PATH. When none is found the test is
// skipped, or fails when CI=true.
package consultest

import (
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
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/testbin"
)

// Version is the Consul version the project builds and tests against.
const Version = "v1.14.11"

const (
	readyTimeout = 30 * time.Second       // how long Start waits for a leader
	pollEvery    = 50 * time.Millisecond  // readiness polling interval
	startTries   = 5                      // launches tried before giving up
	outputLimit  = 64 << 10               // bytes of Consul output kept
	tailLimit    = 4 << 10                // bytes of output shown on failure
	retryPause   = 200 * time.Millisecond // pause between launch attempts
)

// Agent is a running (or stopped) Consul dev agent owned by one test.
type Agent struct {
	// HTTPAddr is the agent's HTTP API address, "127.0.0.1:PORT".
	HTTPAddr string

	bin   string
	ports ports
	out   *testbin.Tail
	// defaultCheckUpdate keeps Consul's default check_update_interval
	// (5m): check output reaches the catalog late, as in production.
	defaultCheckUpdate bool

	mu   sync.Mutex
	proc *testbin.Process // nil when stopped
}

// ports are the listeners a dev agent opens; DNS and gRPC are disabled.
type ports struct {
	http, serfLAN, serfWAN, server int
}

// Option changes how Start runs the agent.
type Option func(*Agent)

// DefaultCheckUpdateInterval keeps Consul's own check_update_interval (5
// minutes) instead of pushing every check output to the catalog at once:
// a check's output then reaches the catalog late, as on a real cluster,
// while a change of its status still goes at once.
func DefaultCheckUpdateInterval() Option { return func(a *Agent) { a.defaultCheckUpdate = true } }

// Start starts a Consul dev agent on free loopback ports, waits until it has
// elected itself leader and answers its HTTP API, and stops it when the test
// ends.
func Start(t testing.TB, opts ...Option) *Agent {
	t.Helper()
	bin := Program.Need(t)
	var lastErr error
	for range startTries {
		p, err := freePorts()
		if err != nil {
			t.Fatalf("consultest: picking free ports: %v", err)
		}
		a := &Agent{
			HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.http)),
			bin:      bin,
			ports:    p,
			out:      testbin.NewTail(outputLimit),
		}
		for _, o := range opts {
			o(a)
		}
		// A port picked here may be taken by someone else before Consul
		// binds it; then Consul exits at once and new ports are tried.
		if lastErr = a.launch(); lastErr == nil {
			t.Cleanup(a.Stop)
			return a
		}
		a.Stop()
	}
	t.Fatalf("consultest: starting consul agent -dev (%s) failed after %d attempts: %v",
		bin, startTries, lastErr)
	return nil
}

// Stop stops the agent: SIGTERM, then SIGKILL if it has not exited within 10s.
// It is safe to call more than once, and on an agent that is already stopped.
func (a *Agent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil {
		a.proc.Stop()
		a.proc = nil
	}
}

// Restart stops the agent (if running) and starts it again on the same ports.
// A dev agent keeps no state, so everything registered before is gone: this
// is how tests simulate a Consul that lost its state.
func (a *Agent) Restart(t testing.TB) {
	t.Helper()
	a.Stop()
	var err error
	for range startTries {
		// The old agent's sockets may linger briefly; try again shortly.
		if err = a.launch(); err == nil {
			return
		}
		a.Stop()
		time.Sleep(retryPause)
	}
	t.Fatalf("consultest: restarting consul agent -dev on %s failed: %v", a.HTTPAddr, err)
}

// Client returns a consul/api client for the agent, for assertions in tests.
func (a *Agent) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = a.HTTPAddr
	cfg.Scheme = "http"
	cfg.Token = ""
	cfg.TokenFile = ""
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consultest: consul client for %s: %v", a.HTTPAddr, err)
	}
	return c
}

// Output returns the last part of what the agent printed, for debugging.
func (a *Agent) Output() string { return a.out.String() }

// launch starts the process and waits until it is ready. On error the
// process may still be running; the caller stops it.
func (a *Agent) launch() error { return a.start(nil, nil) }

// start runs consul with the agent's arguments and extra, and waits until
// its HTTP API names a leader and then, when given, until ready says so.
func (a *Agent) start(extra []string, ready func(exited <-chan struct{}) error) error {
	a.mu.Lock()
	if a.proc != nil {
		a.mu.Unlock()
		return errors.New("agent already running")
	}
	proc, err := testbin.Start(a.bin, append(a.args(), extra...), a.out)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	a.proc = proc
	a.mu.Unlock()

	err = WaitReady(a.HTTPAddr, proc.Exited())
	if err == nil && ready != nil {
		err = ready(proc.Exited())
	}
	if err != nil {
		return fmt.Errorf("%w\n--- consul output (tail) ---\n%s", err, a.out.Last(tailLimit))
	}
	return nil
}

func (a *Agent) args() []string {
	p := a.ports
	args := DevArgs("consultest-"+strconv.Itoa(p.http), p.http, p.serfLAN, p.serfWAN, p.server)
	if a.defaultCheckUpdate {
		args = slices.DeleteFunc(args, func(s string) bool { return strings.HasPrefix(s, "-hcl=check_update_interval") })
	}
	return args
}

// DevArgs are the arguments of a Consul dev agent named node on loopback
// with the given ports, DNS and gRPC off, check output pushed to the
// catalog at once and no update checks.
func DevArgs(node string, http, serfLAN, serfWAN, server int) []string {
	return []string{
		"agent", "-dev",
		"-node=" + node,
		"-bind=127.0.0.1",
		"-client=127.0.0.1",
		"-http-port=" + strconv.Itoa(http),
		"-dns-port=-1",
		"-grpc-port=-1",
		"-grpc-tls-port=-1",
		"-serf-lan-port=" + strconv.Itoa(serfLAN),
		"-serf-wan-port=" + strconv.Itoa(serfWAN),
		"-server-port=" + strconv.Itoa(server),
		"-log-level=info",
		`-hcl=check_update_interval = "0s"`,
		"-hcl=disable_update_check = true",
	}
}

// WaitReady polls the Consul agent at addr until it has a leader and
// answers /v1/agent/self, exited is closed (the process ended), or 30 s
// pass.
func WaitReady(addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	lastErr := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("consul exited before it was ready")
		default:
		}
		if lastErr = probe(client, addr); lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("consul exited before it was ready")
		case <-time.After(pollEvery):
		}
	}
	return fmt.Errorf("consul not ready on %s after %s: %v", addr, readyTimeout, lastErr)
}

func probe(client *http.Client, addr string) error {
	var leader string
	if err := getJSON(client, "http://"+addr+"/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader elected yet")
	}
	var self map[string]any
	return getJSON(client, "http://"+addr+"/v1/agent/self", &self)
}

func getJSON(client *http.Client, url string, into any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.Unmarshal(body, into)
}

// freePorts asks the kernel for four free loopback ports. All listeners are
// held open until every port is picked, so the four are distinct.
func freePorts() (ports, error) {
	var got [4]int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for i := range got {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports{}, err
		}
		lns = append(lns, ln)
		got[i] = ln.Addr().(*net.TCPAddr).Port
	}
	// Serf also uses UDP on its ports; check those are free too.
	for _, p := range got[1:3] {
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return ports{}, fmt.Errorf("udp port %d: %w", p, err)
		}
		_ = pc.Close()
	}
	return ports{http: got[0], serfLAN: got[1], serfWAN: got[2], server: got[3]}, nil
}

// Program is Consul as the project builds it (`make consul`) and finds it.
var Program = testbin.Program{
	Name:       "Consul",
	Binary:     "consul",
	Version:    Version,
	EnvVar:     "CONSUL_BIN",
	MakeTarget: "consul",
	Fixture:    "consultest",
}

// Binary returns the Consul binary the tests run (for tests that start
// Consul themselves), or ends the test: skipped without one, failed under
// CI=true.
func Binary(t testing.TB) string { t.Helper(); return Program.Need(t) }

// FindBinary returns the Consul binary to run: $CONSUL_BIN, the one
// scripts/consul.sh caches, or consul on $PATH.
func FindBinary() (string, error) { return Program.Find() }
