package ike

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// manualClock is a base clock for timerQueue's tests: time moves through
// advance, which fires the due timers in deadline order.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	armed  int // AfterFunc calls
}

type manualTimer struct {
	c    *manualClock
	when time.Time
	f    func()
	done bool
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed++
	t := &manualTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *manualTimer
		for _, t := range c.timers {
			if !t.done && !t.when.After(end) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.done = true
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}

// TestTimerQueueOrder starts timers at random deadlines, stops some, and
// starts more from callbacks: the others fire once each, at their
// deadline, in deadline order (first started first among equal ones),
// and the base clock holds one timer at most.
func TestTimerQueueOrder(t *testing.T) {
	base := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	q := newTimerQueue(base)
	start := base.Now()
	rng := rand.New(rand.NewPCG(3, 4))
	type fired struct {
		id   int
		when time.Time
		at   time.Time
	}
	var got []fired
	want := map[int]time.Time{}
	var stopped []Timer
	var add func(id int, d time.Duration, chained bool)
	add = func(id int, d time.Duration, chained bool) {
		when := q.Now().Add(d)
		want[id] = when
		q.AfterFunc(d, func() {
			got = append(got, fired{id, when, q.Now()})
			if !chained && id%7 == 0 {
				add(id+100000, time.Duration(rng.IntN(50))*time.Second, true)
			}
		})
	}
	for i := range 2000 {
		d := time.Duration(rng.IntN(600)) * time.Second
		if i%5 == 0 {
			tm := q.AfterFunc(d, func() { t.Errorf("a stopped timer fired") })
			stopped = append(stopped, tm)
			continue
		}
		add(i, d, false)
	}
	for _, tm := range stopped {
		if !tm.Stop() {
			t.Fatal("Stop of a pending timer reported false")
		}
		if tm.Stop() {
			t.Fatal("second Stop reported true")
		}
	}
	for range 700 {
		base.advance(time.Second)
		if n := base.pending(); n > 1 {
			t.Fatalf("base clock has %d timers pending, want at most 1", n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d timers fired, want %d", len(got), len(want))
	}
	seen := map[int]bool{}
	for i, f := range got {
		if seen[f.id] {
			t.Fatalf("timer %d fired twice", f.id)
		}
		seen[f.id] = true
		if !f.at.Equal(f.when) {
			t.Errorf("timer %d fired at %s, due %s", f.id, f.at.Sub(start), f.when.Sub(start))
		}
		if i > 0 && f.when.Before(got[i-1].when) {
			t.Errorf("timer %d (due %s) fired after timer %d (due %s)", f.id, f.when.Sub(start), got[i-1].id, got[i-1].when.Sub(start))
		}
	}
	if !slices.IsSortedFunc(got, func(a, b fired) int { return a.when.Compare(b.when) }) {
		t.Error("not in deadline order")
	}
}

// TestTimerQueueSystemClock runs the queue on package time: an earlier
// timer started after a later one still fires first, and a stopped one
// never does.
func TestTimerQueueSystemClock(t *testing.T) {
	q := newTimerQueue(SystemClock{})
	ch := make(chan int, 3)
	q.AfterFunc(300*time.Millisecond, func() { ch <- 2 })
	s := q.AfterFunc(100*time.Millisecond, func() { ch <- 99 })
	q.AfterFunc(50*time.Millisecond, func() { ch <- 1 })
	s.Stop()
	for _, want := range []int{1, 2} {
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("timer %d fired, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timer %d did not fire", want)
		}
	}
}
