package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/internal/redact"
	"github.com/agent-sidecar/sidecar/internal/version"
	"github.com/agent-sidecar/sidecar/policies"
)

// Event types sent to notification targets.
const (
	EventAgentIsolated  = "agent.isolated"
	EventAgentRecovered = "agent.recovered"
)

// Event is the JSON body POSTed to every notify webhook.
type Event struct {
	Type          string    `json:"type"`
	Agent         string    `json:"agent"`
	AgentID       string    `json:"agent_id"`
	Breaker       string    `json:"breaker,omitempty"` // breaker.open / breaker.closed
	Model         string    `json:"model,omitempty"`   // model.degraded / model.restored
	Reason        string    `json:"reason,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	Time          time.Time `json:"time"`
	// Text is a one-line summary, so Slack-style hooks display something.
	Text string `json:"text"`
}

// notifyQueueSize bounds the events waiting for delivery; when it is full,
// the newest event is dropped with an error log rather than blocking a
// heartbeat or a request.
const notifyQueueSize = 256

type delivery struct {
	target policies.Notify
	event  Event
}

// Notifier delivers events to webhooks from a bounded queue, retrying with
// backoff. Send never blocks. It never follows a redirect: the request
// carries the target's headers (often a secret), which must not reach
// another host; a 3xx answer is a failed delivery, not retried.
type Notifier struct {
	log    hclog.Logger
	client *http.Client
	queue  chan delivery

	mu      sync.Mutex
	targets []policies.Notify
	sent    uint64
	failed  uint64
	dropped uint64
	lastErr string // why the last failed delivery failed, with its target

	// backoff is the first retry delay (doubled per attempt, capped at 30s).
	backoff time.Duration
}

// NewNotifier returns a notifier for the named targets.
func NewNotifier(log hclog.Logger, targets []policies.Notify) *Notifier {
	return &Notifier{
		log:     log,
		client:  &http.Client{CheckRedirect: refuseRedirect},
		queue:   make(chan delivery, notifyQueueSize),
		targets: targets,
		backoff: time.Second,
	}
}

// SetTargets replaces the targets (after a reload). Queued deliveries keep
// their original target.
func (n *Notifier) SetTargets(targets []policies.Notify) {
	n.mu.Lock()
	n.targets = targets
	n.mu.Unlock()
}

// Send queues the event for every target. It never blocks.
func (n *Notifier) Send(ev Event) {
	n.mu.Lock()
	targets := n.targets
	n.mu.Unlock()
	for _, t := range targets {
		select {
		case n.queue <- delivery{target: t, event: ev}:
		default:
			n.mu.Lock()
			n.dropped++
			n.mu.Unlock()
			n.log.Error("notification queue full, event dropped", "target", t.Name, "event", ev.Type)
		}
	}
}

// NotifierStats counts deliveries for status output.
type NotifierStats struct {
	Targets   []string `json:"targets"`
	Delivered uint64   `json:"delivered"`
	Failed    uint64   `json:"failed"`
	Dropped   uint64   `json:"dropped"`
	Queued    int      `json:"queued"`
	// LastError says why the last failed delivery failed: "ops: POST
	// https://hooks.example.com/<redacted>: webhook answered 503 …".
	LastError string `json:"last_error,omitempty"`
}

// Stats returns delivery counters.
func (n *Notifier) Stats() NotifierStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.targets))
	for _, t := range n.targets {
		names = append(names, t.Name)
	}
	return NotifierStats{Targets: names, Delivered: n.sent, Failed: n.failed, Dropped: n.dropped, Queued: len(n.queue),
		LastError: n.lastErr}
}

// Run delivers queued events until ctx is done. Then it keeps delivering
// what is already queued until drainCtx is done (one attempt each).
func (n *Notifier) Run(ctx, drainCtx context.Context) {
	for {
		select {
		case d := <-n.queue:
			n.deliver(ctx, d)
		case <-ctx.Done():
			for {
				select {
				case d := <-n.queue:
					n.attempt(drainCtx, d)
				default:
					return
				}
				if drainCtx.Err() != nil {
					return
				}
			}
		}
	}
}

// deliver tries a delivery with retries and backoff; it gives up when the
// retries are used or ctx is done.
func (n *Notifier) deliver(ctx context.Context, d delivery) {
	delay := n.backoff
	for attempt := 0; ; attempt++ {
		err := n.attempt(ctx, d)
		if err == nil {
			return
		}
		var redirect *redirectError
		if attempt >= d.target.Retries || ctx.Err() != nil || errors.As(err, &redirect) {
			n.log.Error("notification not delivered", "target", d.target.Name, "event", d.event.Type,
				"attempts", attempt+1, "error", err)
			n.mu.Lock()
			n.failed++
			n.lastErr = d.target.Name + ": " + err.Error()
			n.mu.Unlock()
			return
		}
		n.log.Warn("notification failed, retrying", "target", d.target.Name, "event", d.event.Type,
			"attempt", attempt+1, "retry_in", delay, "error", err)
		wait := delay + rand.N(delay/4+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// attempt POSTs the event once. Errors name the target and the status but
// never the URL's credentials or the header values.
func (n *Notifier) attempt(ctx context.Context, d delivery) error {
	body, err := json.Marshal(d.event)
	if err != nil {
		return err
	}
	timeout := d.target.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.target.Webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %s", readable.WithoutURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "agent-sidecar/"+version.Version)
	for k, v := range d.target.Headers {
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %s", redact.URL(d.target.Webhook), readable.WithoutURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return &redirectError{webhook: redact.URL(d.target.Webhook), status: resp.Status, location: location(resp),
			key: "notify." + d.target.Name + ".webhook"}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: webhook answered %s", redact.URL(d.target.Webhook), resp.Status)
	}
	n.mu.Lock()
	n.sent++
	n.mu.Unlock()
	n.log.Info("notification delivered", "target", d.target.Name, "event", d.event.Type)
	return nil
}

// refuseRedirect is the webhook client's CheckRedirect: the 3xx answer is
// returned as it is, and nothing is sent to its Location.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redirectError is a webhook's 3xx answer. Sending the event again would
// get the same answer, so it is not retried.
type redirectError struct {
	webhook, status, location, key string
}

func (e *redirectError) Error() string {
	to := "without a valid Location"
	if e.location != "" {
		to = "to " + e.location
	}
	return fmt.Sprintf("POST %s: webhook answered %s %s; redirects are not followed: set %s to the final URL",
		e.webhook, e.status, to, e.key)
}

// location is the redirect target of a 3xx answer as redact.URL shows it,
// "" when it has none.
func location(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil {
		return ""
	}
	return redact.URL(u.String())
}
