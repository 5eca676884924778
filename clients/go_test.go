//go:build e2e

package clients_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/clients/go/sidecarclient"
	"github.com/agent-sidecar/sidecar/internal/testbin"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// The Go client against the real sidecar and Consul: the scenarios of the
// Node client's tests.

const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// sidecarProc is a sidecar process on a free port, restartable on it.
type sidecarProc struct {
	t        *testing.T
	id, addr string
	consul   string // the Consul agent's HTTP address
	cfg      string
	out      *testutil.SyncBuffer
	proc     *testbin.Process
}

// procOptions are what a test's sidecar adds to the common configuration.
type procOptions struct {
	health string // lines of the health block
	hcl    string // blocks after it
	token  string // listen.token
}

var sidecarSerial int

// startSidecarProc starts a sidecar for a fresh agent id with heartbeats
// every second and what o adds.
func startSidecarProc(t *testing.T, o procOptions) *sidecarProc {
	t.Helper()
	consul := consulAddr(t)
	sidecarSerial++
	dir := t.TempDir()
	s := &sidecarProc{t: t, id: fmt.Sprintf("go-client-%d-%d", os.Getpid(), sidecarSerial), out: &testutil.SyncBuffer{}, consul: consul}
	s.addr = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	tokenLine := ""
	if o.token != "" {
		tokenLine = fmt.Sprintf("token = %q", o.token)
	}
	cfg := fmt.Sprintf(`
agent {
  name      = "go-client-test"
  id        = %q
  state_dir = %q
}
listen {
  address = %q
  %s
}
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "1s"
  %s
}
%s
`, s.id, filepath.Join(dir, "state"), s.addr, tokenLine, o.health, o.hcl)
	s.cfg = filepath.Join(dir, "sidecar.hcl")
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *sidecarProc) start() {
	s.t.Helper()
	cmd := exec.Command(sidecarBin, "agent", "-config", s.cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CONSUL_HTTP_ADDR=" + s.consul, "OPENAI_API_KEY=sk-go-client-test-key"}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	proc, err := testbin.StartCmd(cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	s.proc = proc
	testutil.EventuallySeen(s.t, "the sidecar to answer", 20*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + s.addr + "/v1/health")
		if err != nil {
			return false, s.out.String()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, s.out.String()
	})
}

func (s *sidecarProc) stop() {
	if s.proc == nil {
		return
	}
	s.proc.StopWithin(15 * time.Second)
	s.proc = nil
}

func heartbeatCheck(t *testing.T, s *sidecarProc) *api.AgentCheck {
	serviceID := s.id
	cfg := api.DefaultNonPooledConfig()
	cfg.Address, cfg.Token = s.consul, ""
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checks, err := c.Agent().Checks()
	if err != nil {
		return nil
	}
	for _, check := range checks {
		if check.ServiceID == serviceID && check.Name == "heartbeat" {
			return check
		}
	}
	return nil
}

func health(t *testing.T, sc *sidecarclient.Client) map[string]any {
	status, err := sc.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := status["health"].(map[string]any)
	return h
}

func TestGoClientHeartbeatsMakeTheAgentPassing(t *testing.T) {
	s := startSidecarProc(t, procOptions{})
	sc := sidecarclient.New(s.addr, "")
	hb := sc.StartHeartbeats(context.Background(), sidecarclient.HeartbeatOptions{Every: 500 * time.Millisecond, Note: "handled 0 tasks"})
	defer hb.Stop()

	testutil.Eventually(t, "a passing heartbeat check", 20*time.Second, func() bool {
		c := heartbeatCheck(t, s)
		return c != nil && c.Status == "passing"
	})
	if c := heartbeatCheck(t, s); !bytes.Contains([]byte(c.Output), []byte("handled 0 tasks")) {
		t.Errorf("check output %q lacks the note", c.Output)
	}
}

func TestGoClientFrozenProgressIsolatesTheAgent(t *testing.T) {
	s := startSidecarProc(t, procOptions{health: `stall_after = "2s"`})
	sc := sidecarclient.New(s.addr, "")
	hb := sc.StartHeartbeats(context.Background(), sidecarclient.HeartbeatOptions{Every: 300 * time.Millisecond, Progress: int64(7)})
	defer hb.Stop()

	// Given progress that moves, the sidecar shows it and the agent is healthy.
	ctx, stopWork := context.WithCancel(context.Background())
	var work sync.WaitGroup
	work.Go(func() {
		for tick := time.NewTicker(200 * time.Millisecond); ; {
			select {
			case <-ctx.Done():
				tick.Stop()
				return
			case <-tick.C:
				hb.AddProgress(1)
			}
		}
	})
	testutil.Eventually(t, "progress past 7 in status", 10*time.Second, func() bool {
		h := health(t, sc)
		p, _ := strconv.Atoi(fmt.Sprint(h["progress"]))
		return h["state"] == "healthy" && p > 7
	})

	// When it freezes while heartbeats go on, then the agent is isolated as stalled.
	stopWork()
	work.Wait()
	testutil.EventuallySeen(t, "a stalled agent", 15*time.Second, func() (bool, string) {
		h := health(t, sc)
		return h["state"] == "isolated" && h["reason"] == "stalled", fmt.Sprint(h)
	})
	if c := heartbeatCheck(t, s); c == nil || c.Status != "critical" {
		t.Errorf("check %+v, want critical", c)
	}
}

func TestGoClientCallThatFailsOverSaysTheFallbackAnswered(t *testing.T) {
	type seen struct {
		key, traceparent string
	}
	var mu sync.Mutex
	var primarySaw, backupSaw []seen
	record := func(to *[]seen, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		*to = append(*to, seen{r.Header.Get("Idempotency-Key"), r.Header.Get("Traceparent")})
	}
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(&primarySaw, r)
		http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
	}))
	defer primary.Close()
	backup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(&backupSaw, r)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"answered":"backup","got":%s}`, body)
	}))
	defer backup.Close()
	s := startSidecarProc(t, procOptions{hcl: fmt.Sprintf(`
upstream "primary" {
  url      = %q
  fallback = ["backup"]
}
upstream "backup" { url = %q }
`, primary.URL, backup.URL)})
	sc := sidecarclient.New(s.addr, "")

	incoming := http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}}
	ctx := sidecarclient.WithTraceHeaders(context.Background(), incoming)
	resp, err := sc.Call(ctx, "primary", "/task", sidecarclient.CallOptions{JSON: map[string]string{"input": "a haiku"}})
	if err != nil {
		t.Fatalf("call: %v\n%s", err, s.out.String())
	}
	var got struct {
		Answered string
		Got      map[string]string
	}
	if err := resp.JSON(&got); err != nil || got.Answered != "backup" || got.Got["input"] != "a haiku" {
		t.Errorf("answer %s: %v", resp.Body, err)
	}
	if resp.Upstream != "backup" || !resp.Fallback {
		t.Errorf("upstream %q fallback %v, want backup, true", resp.Upstream, resp.Fallback)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(primarySaw) == 0 || len(backupSaw) != 1 {
		t.Fatalf("primary saw %d calls, backup %d", len(primarySaw), len(backupSaw))
	}
	if backupSaw[0].key == "" || backupSaw[0].key != primarySaw[0].key {
		t.Errorf("Idempotency-Key %q at the backup, %q at the primary: want one key", backupSaw[0].key, primarySaw[0].key)
	}
	if tp := backupSaw[0].traceparent; len(tp) < 35 || tp[3:35] != traceID {
		t.Errorf("traceparent %q at the backup, want trace %s", tp, traceID)
	}
}

func TestGoClientErrorsAreOfTheirKind(t *testing.T) {
	dead := testutil.FreePort(t)
	token := "go-client-token-0123456789"
	s := startSidecarProc(t, procOptions{token: token, hcl: fmt.Sprintf(`
model "dead" {
  provider = "openai"
  base_url = "http://127.0.0.1:%d/v1"
  api_key  = env("OPENAI_API_KEY")
}
`, dead)})

	_, err := sidecarclient.New(s.addr, "wrong-token-0123456789").Heartbeat(context.Background(), sidecarclient.Heartbeat{})
	var e *sidecarclient.Error
	if !errors.Is(err, sidecarclient.ErrUnauthorized) || !errors.As(err, &e) || e.Status != 401 || e.Type != "unauthorized" {
		t.Errorf("wrong token: %v, want ErrUnauthorized, 401 unauthorized", err)
	}
	sc := sidecarclient.New(s.addr, token)

	_, err = sc.Heartbeat(context.Background(), sidecarclient.Heartbeat{Status: "great"})
	if !errors.Is(err, sidecarclient.ErrBadRequest) || !errors.As(err, &e) || e.Type != "invalid_request" {
		t.Errorf("bad heartbeat: %v, want ErrBadRequest, invalid_request", err)
	}
	_, err = sc.Chat(context.Background(), "dead", []sidecarclient.Message{{Role: "user", Content: "hi"}}, 0)
	if !errors.Is(err, sidecarclient.ErrUnavailable) || !errors.As(err, &e) || e.Code != "models_unavailable" {
		t.Errorf("dead model: %v, want ErrUnavailable, models_unavailable", err)
	}
	if _, err := sidecarclient.New("127.0.0.1:"+strconv.Itoa(dead), "").Status(context.Background()); !errors.Is(err, sidecarclient.ErrUnreachable) {
		t.Errorf("no sidecar: %v, want ErrUnreachable", err)
	}
}

func TestGoClientHeartbeatLoopOutlivesASidecarRestart(t *testing.T) {
	s := startSidecarProc(t, procOptions{})
	sc := sidecarclient.New(s.addr, "")
	logs := &testutil.SyncBuffer{}
	hb := sc.StartHeartbeats(context.Background(), sidecarclient.HeartbeatOptions{
		Every: 500 * time.Millisecond, Progress: "step-1", Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	defer hb.Stop()
	passing := func() bool { c := heartbeatCheck(t, s); return c != nil && c.Status == "passing" }
	testutil.Eventually(t, "a passing check", 20*time.Second, passing)

	// Given the sidecar stops, the loop warns and keeps trying.
	s.stop()
	testutil.Eventually(t, "a warning", 10*time.Second, func() bool { return bytes.Contains([]byte(logs.String()), []byte("heartbeat failed")) })

	// When it comes back, then the same loop makes the agent healthy and passing again.
	hb.SetProgress("step-2")
	s.start()
	testutil.EventuallySeen(t, "heartbeats answered again", 20*time.Second, func() (bool, string) {
		h := health(t, sc)
		return h["state"] == "healthy" && h["progress"] == "step-2", fmt.Sprint(h)
	})
	testutil.Eventually(t, "a passing check after the restart", 20*time.Second, passing)
	if n := bytes.Count([]byte(logs.String()), []byte("heartbeat failed")); n != 1 {
		t.Errorf("%d warnings, want one for the outage:\n%s", n, logs.String())
	}
}
