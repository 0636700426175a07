package dataplane

import (
	"fmt"
	"log/slog"
	"sync"

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
type spdWriter struct {
	bpf BPF
	log *slog.Logger

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
	w := &spdWriter{bpf: bpf, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
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
		if len(want) > 0 || len(dels) > 0 {
			stored, err = w.bpf.ApplyPolicies(want, dels)
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
		w.mu.Unlock()
	}
}

// flush waits until every change queued so far is in the SPD.
func (w *spdWriter) flush() {
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
	<-w.done
}
