// Package fakeclock is the settable clock the provider fakes keep, so that
// tests can expire their tokens, signed URLs and sessions without waiting.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use; its zero value runs on time.Now.
type Clock struct {
	mu  sync.Mutex
	now func() time.Time
}

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

// Set replaces the clock's source of time.
func (c *Clock) Set(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// Advance moves the clock forward by d from wherever it is; it keeps
// running from there.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	base := c.now
	if base == nil {
		base = time.Now
	}
	c.now = func() time.Time { return base().Add(d) }
	c.mu.Unlock()
}
