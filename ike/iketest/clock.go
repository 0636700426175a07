// Package iketest has the fakes that exchange tests run two engines on: a
// clock that moves only when told and a network that can drop, duplicate,
// reorder and NAT datagrams.
package iketest

import (
	"slices"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// Clock is an ike.Clock whose time moves only through Advance. Timer
// callbacks run on the goroutine calling Advance, in deadline order.
type Clock struct {
	mu     sync.Mutex // guards now, timers, seq
	now    time.Time
	timers []*timer
	seq    uint64
}

type timer struct {
	c       *Clock
	when    time.Time
	seq     uint64
	f       func()
	stopped bool
}

// NewClock returns a clock at a fixed time.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) AfterFunc(d time.Duration, f func()) ike.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *timer) bool { return x == t })
	return was
}

// Advance moves time forward by d, firing due timers in order (and
// timers they start, if due).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *timer
		for _, t := range c.timers {
			if !t.when.After(end) && (next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.timers = slices.DeleteFunc(c.timers, func(x *timer) bool { return x == next })
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}

// Pending is the number of timers not yet fired.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Next returns how long until the next timer fires, if any.
func (c *Clock) Next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *timer
	for _, t := range c.timers {
		if next == nil || t.when.Before(next.when) {
			next = t
		}
	}
	if next == nil {
		return 0, false
	}
	return max(0, next.when.Sub(c.now)), true
}
