package ike

import (
	"container/heap"
	"sync"
	"time"
)

// timerQueue is a Clock that keeps its timers in a heap of its own and
// arms one timer of the clock beneath for the earliest: the engine's
// timers (a CHILD_SA's rekey, an IKE SA's expiry, DPD, ...) are a few per
// SA, and a runtime timer with its callback costs some 300 bytes where an
// entry here costs 80 with the engine's wrapper (afterFuncScoped), a
// closure of its own 48 more. Callbacks run one after the other on the goroutine of
// the clock's timer, in deadline order (first started first among equal
// deadlines), as package time would run them on goroutines of their own;
// the engine's callbacks take its lock themselves.
type timerQueue struct {
	base Clock

	mu      sync.Mutex // guards what follows and every queuedTimer's idx
	h       timerHeap
	seq     uint64
	armed   Timer     // the base clock's timer, nil if none
	armedAt time.Time // when it fires
	gen     uint64    // of armed: a stale one does not clear a newer one
}

func newTimerQueue(base Clock) *timerQueue { return &timerQueue{base: base} }

func (q *timerQueue) Now() time.Time { return q.base.Now() }

// queuedTimer is a timer of a timerQueue.
type queuedTimer struct {
	q    *timerQueue
	when time.Time
	seq  uint64
	idx  int // in q.h; -1 once fired or stopped
	f    func()
	// e, if set, runs f as its timer of sa (afterFuncScoped).
	e  *Engine
	sa panicScope
}

func (q *timerQueue) AfterFunc(d time.Duration, f func()) Timer {
	return q.add(&queuedTimer{f: f}, d)
}

// afterFuncScoped is the engine's AfterFunc for a timer of an IKE SA (nil:
// of the engine): Engine.runTimer runs f.
func (q *timerQueue) afterFuncScoped(d time.Duration, e *Engine, sa panicScope, f func()) Timer {
	return q.add(&queuedTimer{f: f, e: e, sa: sa}, d)
}

func (q *timerQueue) add(t *queuedTimer, d time.Duration) Timer {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	t.q, t.when, t.seq = q, q.base.Now().Add(d), q.seq
	heap.Push(&q.h, t)
	if t.idx == 0 {
		q.arm()
	}
	return t
}

func (t *queuedTimer) Stop() bool {
	q := t.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&q.h, t.idx)
	t.f, t.e, t.sa = nil, nil, nil
	// The base timer stays armed for the old head: it finds nothing due
	// and arms itself for the new one.
	return true
}

// arm sets the base clock's timer for the earliest deadline, unless it is
// set for that or earlier already. q.mu is held.
func (q *timerQueue) arm() {
	if len(q.h) == 0 {
		return
	}
	head := q.h[0].when
	if q.armed != nil {
		if !q.armedAt.After(head) {
			return
		}
		q.armed.Stop()
	}
	q.gen++
	gen := q.gen
	q.armedAt = head
	q.armed = q.base.AfterFunc(max(0, head.Sub(q.base.Now())), func() { q.fire(gen) })
}

// fire runs the due timers and arms the base clock for the next one.
func (q *timerQueue) fire(gen uint64) {
	q.mu.Lock()
	if q.gen == gen {
		q.armed = nil
	}
	for len(q.h) > 0 {
		t := q.h[0]
		if t.when.After(q.base.Now()) {
			break
		}
		heap.Pop(&q.h)
		f, e, sa := t.f, t.e, t.sa
		t.f, t.e, t.sa = nil, nil, nil
		q.mu.Unlock()
		if e != nil {
			e.runTimer(sa, f)
		} else {
			f()
		}
		q.mu.Lock()
	}
	q.arm()
	q.mu.Unlock()
}

// timerHeap orders timers by deadline, then by when they were started.
type timerHeap []*queuedTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if c := h[i].when.Compare(h[j].when); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*queuedTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}
