package dataplane

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xdpsec/xdpsec/maps"
)

// spdWriter puts the daemon's SPD changes into the pinned SPD in batches.
// Every change of the SPD compiles the whole policy set (about 0.1 s at
// 10,000 policies), so one change per CHILD_SA would make bringing up N
// tunnels cost O(N²), all of it under the IKE engine's lock. Instead the
// dataplane queues its changes here and returns; a goroutine applies what
// has queued up with one compile (maps.SPD.Apply) while the engine goes
// on. The kernel's XFRM policies and routes, which carry the traffic, are
// still installed synchronously: the SPD only adds tc_lan's steering,
// counters and MSS clamp, a batch (milliseconds) later.
//
// A batch still costs the whole set's compile and write, and tunnels that
// come up one by one make batches of one: at 300 route-based tunnels in
// the VM guest, the SPD took a quarter of the daemon's CPU, growing with
// every tunnel. So after a batch that took d the writer rests for
// spdRest·d (at most maxSPDRest) before it takes the next, which gathers
// what queued meanwhile: the SPD's share of a CPU stays below
// 1/(1+spdRest), and an entry waits at most about (1+spdRest)·d. flush
// and close cut the rest short.
type spdWriter struct {
	bpf BPF
	log *slog.Logger
	// hurry ends a rest early (flush, close).
	hurry chan struct{}

	mu      sync.Mutex // guards everything below
	adds    []*spdEntry
	dels    []uint32
	busy    bool // a batch is being applied
	idle    *sync.Cond
	kick    chan struct{}
	stopped bool
	exited  bool // the goroutine is gone
	done    chan struct{}
}

// spdEntry is the SPD part of one policyState: the policies it wants, and
// their IDs once they are stored.
type spdEntry struct {
	want    []maps.Policy
	ids     []uint32
	queued  bool // in adds
	removed bool // deleted while its batch was applied
}

func newSPDWriter(bpf BPF, log *slog.Logger) *spdWriter {
	w := &spdWriter{bpf: bpf, log: log, kick: make(chan struct{}, 1), hurry: make(chan struct{}, 1), done: make(chan struct{})}
	w.idle = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// add queues an entry's policies.
func (w *spdWriter) add(e *spdEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.queued = true
	w.adds = append(w.adds, e)
	w.wake()
}

// remove queues the deletion of an entry's policies; an entry still
// queued is simply dropped.
func (w *spdWriter) remove(e *spdEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case e.queued:
		e.queued = false
		for i, q := range w.adds {
			if q == e {
				w.adds = append(w.adds[:i:i], w.adds[i+1:]...)
				break
			}
		}
	case e.ids == nil && w.busy:
		e.removed = true // in the batch being applied
	default:
		w.dels = append(w.dels, e.ids...)
		e.ids = nil
		w.wake()
	}
}

func (w *spdWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *spdWriter) run() {
	defer close(w.done)
	for range w.kick {
		w.mu.Lock()
		if w.stopped && len(w.adds) == 0 && len(w.dels) == 0 {
			w.exited = true
			w.idle.Broadcast()
			w.mu.Unlock()
			return
		}
		adds, dels := w.adds, w.dels
		w.adds, w.dels = nil, nil
		w.busy = true
		var want []maps.Policy
		for _, e := range adds {
			e.queued = false
			want = append(want, e.want...)
		}
		w.mu.Unlock()

		var stored []maps.Policy
		var err error
		var took time.Duration
		if len(want) > 0 || len(dels) > 0 {
			start := time.Now()
			stored, err = w.bpf.ApplyPolicies(want, dels)
			took = time.Since(start)
		}

		w.mu.Lock()
		if err != nil {
			w.log.Warn(fmt.Sprintf("SPD: %d policies not added, %d not deleted: %v", len(want), len(dels), err))
		}
		for _, e := range adds {
			var ids []uint32
			if err == nil {
				for _, p := range stored[:len(e.want)] {
					ids = append(ids, p.ID)
				}
				stored = stored[len(e.want):]
			}
			if e.removed {
				e.removed = false
				w.dels = append(w.dels, ids...)
				continue
			}
			e.ids = ids
		}
		w.busy = false
		if len(w.adds) > 0 || len(w.dels) > 0 || w.stopped {
			w.wake()
		}
		w.idle.Broadcast()
		stopped := w.stopped
		w.mu.Unlock()
		if rest := min(spdRest*took, maxSPDRest); rest > 0 && !stopped {
			select {
			case <-time.After(rest):
			case <-w.hurry:
			}
		}
	}
}

// spdRest and maxSPDRest pace the batches (see spdWriter).
const (
	spdRest    = 3
	maxSPDRest = 2 * time.Second
)

// hurryUp ends the writer's rest.
func (w *spdWriter) hurryUp() {
	select {
	case w.hurry <- struct{}{}:
	default:
	}
}

// flush waits until every change queued so far is in the SPD.
func (w *spdWriter) flush() {
	w.hurryUp()
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.exited && (w.busy || len(w.adds) > 0 || len(w.dels) > 0) {
		w.idle.Wait()
	}
}

// close applies what is queued and stops the goroutine.
func (w *spdWriter) close() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.stopped = true
	w.wake()
	w.mu.Unlock()
	w.hurryUp()
	<-w.done
}
