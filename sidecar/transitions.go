package sidecar

import (
	"sync"

	"github.com/agent-sidecar/sidecar/sidecar/health"
)

// transitionQueue hands the heartbeat tracker's transitions to dispatch in
// the order the tracker made them. The tracker is called from several
// goroutines (heartbeats, the deadline watcher, reloads): without the
// queue, a heartbeat's recovery could be notified before the isolation the
// watcher found a moment earlier, leaving operations told the agent is
// isolated. As the breakers' listeners do, a caller that finds another
// dispatching leaves its transitions to that one and returns at once, so a
// heartbeat never waits for another's notifications.
type transitionQueue struct {
	mu       sync.Mutex
	pending  []health.Transition
	draining bool
}

// run calls track (a tracker method) with the queue locked, so what it
// returns is queued in the order the tracker made it, then dispatches
// everything queued unless another goroutine is dispatching already. It
// returns how many transitions track made.
func (q *transitionQueue) run(track func() []health.Transition, dispatch func([]health.Transition)) int {
	q.mu.Lock()
	trs := track()
	q.pending = append(q.pending, trs...)
	if q.draining || len(q.pending) == 0 {
		q.mu.Unlock()
		return len(trs)
	}
	q.draining = true
	defer func() { // also when dispatch panics: the next caller dispatches
		q.draining = false
		q.mu.Unlock()
	}()
	for len(q.pending) > 0 {
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		func() {
			defer q.mu.Lock()
			dispatch(batch)
		}()
	}
	return len(trs)
}
