package sidecarclient

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Heartbeat is the body of POST /v1/heartbeat. Status is "ok" (also when
// empty), "degraded" or "failing"; Progress is a string or a number that
// changes while the agent gets work done.
type Heartbeat struct {
	Status   string         `json:"status,omitempty"`
	Note     string         `json:"note,omitempty"`
	Metrics  map[string]any `json:"metrics,omitempty"`
	Progress any            `json:"progress,omitempty"`
}

// HeartbeatReply is the part of the agent's health the sidecar answers a
// heartbeat with: State is "waiting", "healthy" or "isolated".
type HeartbeatReply struct {
	State   string    `json:"state"`
	NextDue time.Time `json:"next_due"`
}

// Heartbeat tells the sidecar the agent is alive, once.
func (c *Client) Heartbeat(ctx context.Context, hb Heartbeat) (*HeartbeatReply, error) {
	var reply HeartbeatReply
	return &reply, c.control(ctx, http.MethodPost, "/v1/heartbeat", hb, &reply)
}

// Status is GET /v1/status: the sidecar, the agent's health, breakers,
// models and more, as decoded JSON.
func (c *Client) Status(ctx context.Context) (map[string]any, error) {
	var status map[string]any
	return status, c.control(ctx, http.MethodGet, "/v1/status", nil, &status)
}

// control is a request of the control API: bounded by controlTimeout, never
// with trace headers.
func (c *Client) control(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	resp, err := c.send(ctx, request{method: method, url: c.addr + path, body: in})
	if err != nil {
		return err
	}
	return resp.JSON(out)
}

const (
	defaultHeartbeatEvery = 5 * time.Second
	minHeartbeatWait      = 100 * time.Millisecond
	retryHeartbeatEvery   = time.Second // while the sidecar does not answer: it may be restarting
)

// HeartbeatOptions configure a heartbeat loop; all are optional.
type HeartbeatOptions struct {
	// Every is the time between heartbeats (default 5s). The loop never
	// waits longer than half the time the sidecar still waits for the next
	// one (its answer's next_due).
	Every time.Duration
	// Status, Note, Metrics and Progress are the first heartbeat's; change
	// them with the Heartbeats' setters.
	Status   string
	Note     string
	Metrics  map[string]any
	Progress any
	// Logger gets a warning when heartbeats start failing and a line when
	// they are answered again (nil: slog.Default()).
	Logger *slog.Logger
}

// Heartbeats is a running heartbeat loop. Its methods are safe for
// concurrent use.
type Heartbeats struct {
	c     *Client
	every time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	hb   Heartbeat
	last *HeartbeatReply

	cancel context.CancelFunc
	done   chan struct{}
}

// StartHeartbeats sends a heartbeat at once, then every opts.Every, in a
// goroutine that runs until ctx is done or Stop is called. A heartbeat that
// fails (the sidecar restarting, say) is logged and tried again a second
// later; the loop never gives up.
func (c *Client) StartHeartbeats(ctx context.Context, opts HeartbeatOptions) *Heartbeats {
	every := opts.Every
	if every <= 0 {
		every = defaultHeartbeatEvery
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &Heartbeats{
		c: c, every: every, log: log, cancel: cancel, done: make(chan struct{}),
		hb: Heartbeat{Status: opts.Status, Note: opts.Note, Metrics: maps.Clone(opts.Metrics), Progress: opts.Progress},
	}
	go h.run(ctx)
	return h
}

func (h *Heartbeats) run(ctx context.Context) {
	defer close(h.done)
	failing := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		h.mu.Lock()
		hb := h.hb
		h.mu.Unlock()
		reply, err := h.c.Heartbeat(ctx, hb)
		wait := h.every
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				h.log.Warn("sidecar: heartbeat failed, trying again", "error", err)
			}
			failing = true
			wait = min(wait, retryHeartbeatEvery)
		default:
			if failing {
				h.log.Info("sidecar: heartbeats are answered again", "state", reply.State)
			}
			failing = false
			h.mu.Lock()
			h.last = reply
			h.mu.Unlock()
			if !reply.NextDue.IsZero() {
				wait = min(wait, max(minHeartbeatWait, time.Until(reply.NextDue)/2))
			}
		}
		timer.Reset(wait)
	}
}

// SetProgress sets the progress: a number or a string that changes while
// the agent gets work done. Frozen longer than the sidecar's
// health.stall_after, the agent is isolated.
func (h *Heartbeats) SetProgress(v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hb.Progress = v
}

// AddProgress adds n to a numeric progress (a non-numeric one starts at 0)
// and returns the new value.
func (h *Heartbeats) AddProgress(n int64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var p int64
	switch v := h.hb.Progress.(type) {
	case int64:
		p = v
	case int:
		p = int64(v)
	case float64:
		p = int64(v)
	}
	p += n
	h.hb.Progress = p
	return p
}

// SetNote sets the note shown in status and Consul (up to 1 KiB).
func (h *Heartbeats) SetNote(note string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hb.Note = note
}

// SetMetrics sets the metrics (number, string or boolean values) shown in
// status and Consul. The map is copied: the caller may change it afterwards.
func (h *Heartbeats) SetMetrics(m map[string]any) {
	m = maps.Clone(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hb.Metrics = m
}

// SetStatus sets the reported status: "ok", "degraded" or "failing" (the
// Consul check turns critical).
func (h *Heartbeats) SetStatus(status string) error {
	switch status {
	case "ok", "degraded", "failing":
	default:
		return fmt.Errorf("sidecar: status %q: use \"ok\", \"degraded\" or \"failing\"", status)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hb.Status = status
	return nil
}

// Last is the sidecar's last answer (nil before the first).
func (h *Heartbeats) Last() *HeartbeatReply {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Stop ends the loop and waits for it. Safe to call more than once.
func (h *Heartbeats) Stop() {
	h.cancel()
	<-h.done
}
