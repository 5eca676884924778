package gateway

import (
	"context"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/policies"
)

// queue holds a model's own limits: max_concurrent requests in flight and
// rpm requests a minute. A request over either waits up to queue_timeout,
// then goes on down the chain: a fleet over its provider limit sends the
// overflow to the fallback instead of a storm of 429s.
type queue struct {
	slots   chan struct{} // nil: no max_concurrent
	rate    *rate.Limiter // nil: no rpm
	timeout time.Duration // the wait in effect (queue_timeout, else its default)
	max     int
	rpm     int
	set     time.Duration // queue_timeout as configured, to tell a change
}

// newQueue returns the queue of m, nil when m has no limit.
func newQueue(m *policies.Model) *queue {
	if m.MaxConcurrent <= 0 && m.RPM <= 0 {
		return nil
	}
	q := &queue{timeout: m.QueueTimeout, max: m.MaxConcurrent, rpm: m.RPM, set: m.QueueTimeout}
	if q.timeout <= 0 {
		q.timeout = policies.DefaultQueueTimeout
	}
	if m.MaxConcurrent > 0 {
		q.slots = make(chan struct{}, m.MaxConcurrent)
	}
	if m.RPM > 0 {
		// Spread evenly, at most a second's share at once.
		q.rate = rate.NewLimiter(rate.Limit(float64(m.RPM)/60), max(1, (m.RPM+59)/60))
	}
	return q
}

// same reports whether q already has m's limits (a reload keeps it, and
// the requests in flight it counts).
func (q *queue) same(m *policies.Model) bool {
	return q.max == m.MaxConcurrent && q.rpm == m.RPM && q.set == m.QueueTimeout
}

// enter waits for the model's turn, at most queue_timeout. It returns the
// function that gives the slot back when the call is over, or why the
// request did not get a turn in time.
func (q *queue) enter(ctx context.Context) (leave func(), why string) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	leave = func() {}
	if q.slots != nil {
		select {
		case q.slots <- struct{}{}:
			leave = func() { <-q.slots }
		case <-ctx.Done():
			return nil, strconv.Itoa(q.max) + " requests in flight (max_concurrent), none finished within " +
				readable.Duration(q.timeout).String() + " (queue_timeout)"
		}
	}
	if q.rate != nil {
		// Wait refuses at once a turn that would come after the deadline.
		if err := q.rate.Wait(ctx); err != nil {
			leave()
			return nil, "at its limit of " + strconv.Itoa(q.rpm) + " requests a minute (rpm), no turn within " +
				readable.Duration(q.timeout).String() + " (queue_timeout)"
		}
	}
	return leave, ""
}

// queueOf returns the queue of model m (nil when it has no limit).
func (g *Gateway) queueOf(m *policies.Model) *queue {
	if m.MaxConcurrent <= 0 && m.RPM <= 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.queues[m.Label]
	if q == nil || !q.same(m) {
		q = newQueue(m)
		g.queues[m.Label] = q
	}
	return q
}
