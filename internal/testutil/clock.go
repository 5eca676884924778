package testutil

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand, for the code that takes one
// (sidecar.Options.Now, breaker.NewSetWithClock, proxy.Options.Now...):
// time passes only when the test says so, instead of the test sleeping.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading t0.
func NewClock(t0 time.Time) *Clock { return &Clock{now: t0} }

// Now is the clock's time; pass c.Now as the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
