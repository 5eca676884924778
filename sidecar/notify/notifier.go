// Package notify delivers the sidecar's events to webhooks: the Event
// body, the event types, a bounded queue with retries, and a client that
// never follows a redirect.
package notify

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

// Event types. Those of the agent's health and of breakers are sent to
// notification targets; all of them go to the sidecar's event stream.
const (
	EventAgentIsolated  = "agent.isolated"
	EventAgentRecovered = "agent.recovered"
	EventBreakerOpen    = "breaker.open"
	EventBreakerClosed  = "breaker.closed"
	EventAgentRestarted = "agent.restarted"
	EventModelDegraded  = "model.degraded"
	EventModelRestored  = "model.restored"
	EventConsulLost     = "consul.lost"
	EventConsulRegained = "consul.regained"
	EventConfigApplied  = "config.applied"  // a reload (a file or a fleet policy changed) took effect
	EventConfigRejected = "config.rejected" // a reload failed; the last good configuration stays
	EventBudgetWarning  = "budget.warning"  // a budget's spend crossed its warn_at percentage
	EventBudgetExceeded = "budget.exceeded" // a budget is spent
	EventBudgetBurning  = "budget.burning"  // at the recent rate, a budget will be spent before its window resets
)

// Event is the JSON body POSTed to every notify webhook.
type Event struct {
	Type          string    `json:"type"`
	Agent         string    `json:"agent"`
	AgentID       string    `json:"agent_id"`
	Breaker       string    `json:"breaker,omitempty"` // breaker.open / breaker.closed
	Model         string    `json:"model,omitempty"`   // model.degraded / model.restored; budget.*: the model of the answer
	Budget        string    `json:"budget,omitempty"`  // budget.warning / budget.exceeded / budget.burning
	Reason        string    `json:"reason,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	Time          time.Time `json:"time"`
	// Text is a one-line summary, so Slack-style hooks display something.
	Text string `json:"text"`
}

// queueSize bounds the events waiting for delivery; when it is full,
// the newest event is dropped with an error log rather than blocking a
// heartbeat or a request.
const queueSize = 256

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

// Options are the collaborators of a notifier.
type Options struct {
	// Log receives delivery failures and, at info level, deliveries.
	// Default: no log.
	Log hclog.Logger
	// Transport carries the webhook requests. Default:
	// http.DefaultTransport (NewTransport builds the sidecar's).
	Transport http.RoundTripper
	// Backoff is the first retry delay, doubled per attempt and capped at
	// 30s. Default: 1s.
	Backoff time.Duration
}

// New returns a notifier for the named targets. Their timeout and retries
// are used as they are: policies resolves their defaults.
func New(targets []policies.Notify, opts Options) *Notifier {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	return &Notifier{
		log:     opts.Log,
		client:  &http.Client{Transport: opts.Transport, CheckRedirect: refuseRedirect},
		queue:   make(chan delivery, queueSize),
		targets: targets,
		backoff: opts.Backoff,
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

// Stats counts deliveries for status output.
type Stats struct {
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
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.targets))
	for _, t := range n.targets {
		names = append(names, t.Name)
	}
	return Stats{Targets: names, Delivered: n.sent, Failed: n.failed, Dropped: n.dropped, Queued: len(n.queue),
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
	ctx, cancel := context.WithTimeout(ctx, d.target.Timeout)
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
