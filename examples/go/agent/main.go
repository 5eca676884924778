// Command agent is a minimal AI agent that runs beside its sidecar, the Go
// twin of examples/python/agent.py (standard library and sidecarclient only).
//
// It takes tasks over HTTP, heartbeats to its sidecar with a note, metrics
// and a progress counter, asks a model through the sidecar's gateway (MODEL),
// calls another agent through the sidecar's /call/ (PEER), and can be told to
// hang, stall or fail so you can watch the sidecar deal with it. The trace
// context of each task (traceparent) goes on with its model and peer requests.
//
// Environment: SIDECAR_ADDR (default http://127.0.0.1:7070), SIDECAR_TOKEN,
// SIDECAR_AGENT_ID (default go-agent), AGENT_PORT (default 8083),
// HEARTBEAT_EVERY seconds (default 5), MODEL and PEER (default: none).
//
// Endpoints: POST /task {"input": "..."}, GET /healthz, POST /hang, /stall,
// /fail, /heal, /crash. SIGUSR1 hangs the agent too.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agent-sidecar/sidecar/clients/go/sidecarclient"
)

type agent struct {
	id, model, peer string
	sc              *sidecarclient.Client
	hb              *sidecarclient.Heartbeats
	log             *slog.Logger
	started         time.Time

	tasks                  atomic.Int64
	stalled, failing, hung atomic.Bool
	stopping               chan struct{} // closed on SIGTERM
}

// logf logs one line to stderr: "agent {id}: ...".
func (a *agent) logf(level slog.Level, format string, args ...any) {
	a.log.Log(context.Background(), level, fmt.Sprintf("agent %s: "+format, append([]any{a.id}, args...)...))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	a := &agent{
		id: env("SIDECAR_AGENT_ID", "go-agent"), model: os.Getenv("MODEL"), peer: os.Getenv("PEER"),
		sc: sidecarclient.FromEnv(), started: time.Now(),
		log: slog.New(slog.NewTextHandler(os.Stderr, nil)), stopping: make(chan struct{}),
	}
	port, err := strconv.Atoi(env("AGENT_PORT", "8083"))
	every, err2 := strconv.ParseFloat(env("HEARTBEAT_EVERY", "5"), 64)
	if err != nil || err2 != nil || every <= 0 {
		a.logf(slog.LevelError, "AGENT_PORT must be a port and HEARTBEAT_EVERY a positive number of seconds")
		os.Exit(2)
	}

	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	go func() {
		for sig := range signals {
			if sig == syscall.SIGUSR1 {
				a.hang("SIGUSR1")
				continue
			}
			// Stop taking tasks, give those under way 3 s, drop the rest.
			a.logf(slog.LevelInfo, "%s: stopping", sig)
			close(a.stopping)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			close(stopped)
			return
		}
	}()
	a.hb = a.sc.StartHeartbeats(context.Background(), sidecarclient.HeartbeatOptions{
		Every: time.Duration(every * float64(time.Second)), Status: "ok", Note: "handled 0 tasks", Progress: int64(0),
		Logger: a.log.With("agent", a.id),
	})
	go a.workLoop()

	a.logf(slog.LevelInfo, "taking tasks on %s, heartbeating to %s every %gs", srv.Addr, a.sc.Addr(), every)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		a.logf(slog.LevelError, "serving: %v", err)
		os.Exit(1)
	}
	<-stopped
}

// workLoop stands for the agent's main loop (polling a queue, thinking, ...):
// its turns are the heartbeat's progress, which freezes when the agent
// stalls or hangs.
func (a *agent) workLoop() {
	for range time.Tick(500 * time.Millisecond) {
		if !a.stalled.Load() && !a.hung.Load() {
			a.hb.AddProgress(1)
		}
		n := a.tasks.Load()
		a.hb.SetNote(fmt.Sprintf("handled %d tasks", n))
		a.hb.SetMetrics(map[string]any{"tasks": n, "uptime_s": int64(time.Since(a.started).Round(time.Second).Seconds())})
	}
}

func (a *agent) hang(why string) {
	if a.hung.CompareAndSwap(false, true) {
		a.logf(slog.LevelWarn, "%s: hanging, no more heartbeats or answers", why)
		go a.hb.Stop() // a hung agent sends no heartbeats: only a restart helps
	}
}

func (a *agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /task", a.task)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, map[string]any{"status": "ok"}) })
	mux.HandleFunc("POST /hang", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, map[string]any{"hanging": true})
		a.hang("told to hang")
	})
	toggle := func(flag *atomic.Bool, to bool, note string, answer map[string]any) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			a.logf(slog.LevelWarn, "%s", note)
			flag.Store(to)
			reply(w, 200, answer)
		}
	}
	mux.HandleFunc("POST /stall", toggle(&a.stalled, true, "told to stall: heartbeats go on, progress stops", map[string]any{"stalled": true}))
	mux.HandleFunc("POST /fail", toggle(&a.failing, true, "told to fail: every task gets 503", map[string]any{"failing": true}))
	mux.HandleFunc("POST /heal", toggle(&a.failing, false, "told to heal: taking tasks again", map[string]any{"failing": false}))
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, map[string]any{"crashing": true})
		_ = http.NewResponseController(w).Flush()
		a.logf(slog.LevelWarn, "told to crash")
		os.Exit(1)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { reply(w, 404, map[string]any{"error": "not found"}) })
	// A hung agent answers nothing: each request waits until its caller gives
	// up, or until SIGTERM, when its connection is dropped unanswered.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.hung.Load() {
			select {
			case <-r.Context().Done():
			case <-a.stopping:
			}
			panic(http.ErrAbortHandler)
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *agent) task(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	var task map[string]any
	if len(strings.TrimSpace(string(raw))) == 0 {
		task = map[string]any{} // an empty body is an empty task
	} else if err != nil || json.Unmarshal(raw, &task) != nil {
		reply(w, 400, map[string]any{"error": "body must be JSON"})
		return
	}
	if a.failing.Load() {
		reply(w, 503, map[string]any{"agent": a.id, "error": "told to fail"})
		return
	}
	a.tasks.Add(1)
	// The task's trace context goes on with every request made for it.
	ctx := sidecarclient.WithTraceHeaders(r.Context(), r.Header)
	input, ok := task["input"].(string)
	if !ok && task["input"] != nil {
		input = fmt.Sprint(task["input"])
	}
	answer := map[string]any{"agent": a.id, "output": "done: " + input}
	if a.peer != "" {
		a.askPeer(ctx, input, answer)
	}
	if a.model != "" {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		msgs := []sidecarclient.Message{{Role: "system", Content: "You are a concise writer."}, {Role: "user", Content: input}}
		got, err := a.sc.Chat(ctx, a.model, msgs, 4000)
		if err != nil {
			reply(w, 502, map[string]any{"agent": a.id, "error": err.Error()})
			return
		}
		answer["output"], answer["model"], answer["degraded"] = got.Content, got.Model, got.Degraded
	}
	reply(w, 200, answer)
}

// askPeer sends the task to PEER through the sidecar, which picks a healthy
// instance (found in Consul) behind its breaker. The client gives the POST an
// Idempotency-Key: the sidecar may send it again if an instance fails mid-call.
// A failed call is reported in the answer; the task still succeeds.
func (a *agent) askPeer(ctx context.Context, input string, answer map[string]any) {
	resp, err := a.sc.Call(ctx, a.peer, "/task", sidecarclient.CallOptions{
		JSON: map[string]string{"input": input}, Timeout: 30 * time.Second,
	})
	var e *sidecarclient.Error
	var got any
	switch {
	case errors.As(err, &e):
		answer["peer_error"] = fmt.Sprintf("%d: %s", e.Status, e.Message)
	case err != nil:
		answer["peer_error"] = err.Error()
	case resp.JSON(&got) != nil:
		answer["peer_error"] = "the peer's answer is not JSON"
	default:
		answer["peer"] = got
	}
}

func reply(w http.ResponseWriter, status int, body map[string]any) {
	raw, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}
