package dataplane

import (
	"fmt"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"net/netip"
	"sync"
	"testing"

	"github.com/xdpsec/xdpsec/maps"
)

// gatedBPF holds every ApplyPolicies call until the test lets it go, so
// that changes queue up behind it.
type gatedBPF struct {
	fakeBPF
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
	batches [][2]int // adds and deletes of each call
}

func (b *gatedBPF) ApplyPolicies(add []maps.Policy, del []uint32) ([]maps.Policy, error) {
	b.entered <- struct{}{}
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, [2]int{len(add), len(del)})
	return b.fakeBPF.ApplyPolicies(add, del)
}

func spdTestPolicy(i int) maps.Policy {
	return maps.Policy{Src: netip.MustParsePrefix("10.1.0.0/16"), Dst: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 2+i/256, i%256)),
		DportHi: 0xffff, Action: maps.ActionProtect, IfID: 7}
}

// TestSPDWriterBatches: while one SPD change is being applied, the
// changes that come in queue up and go in together in the next one; an
// entry removed before its batch ran never reaches the SPD, and one
// removed while its batch runs is deleted right after.
func TestSPDWriterBatches(t *testing.T) {
	b := &gatedBPF{fakeBPF: fakeBPF{ev: &events{}}, entered: make(chan struct{}), release: make(chan struct{})}
	w := newSPDWriter(b, testenv.Logger(t))
	defer w.close()
	first := &spdEntry{want: []maps.Policy{spdTestPolicy(0)}}
	w.add(first)
	<-b.entered // the first batch is being applied
	var rest []*spdEntry
	for i := 1; i <= 100; i++ {
		e := &spdEntry{want: []maps.Policy{spdTestPolicy(i)}}
		rest = append(rest, e)
		w.add(e)
	}
	w.remove(rest[0]) // queued: never added
	w.remove(first)   // in the batch: deleted after it
	b.release <- struct{}{}
	<-b.entered
	b.release <- struct{}{}
	go func() {
		for range b.entered {
			b.release <- struct{}{}
		}
	}()
	w.flush()
	defer close(b.entered)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.batches) != 2 {
		t.Fatalf("%d SPD changes for 101 entries, want 2: %v", len(b.batches), b.batches)
	}
	if b.batches[0] != [2]int{1, 0} || b.batches[1] != [2]int{99, 1} {
		t.Errorf("batches (adds, deletes) %v, want [1 0] [99 1]", b.batches)
	}
	if len(b.policies) != 99 {
		t.Errorf("SPD holds %d policies, want the 99 entries not removed", len(b.policies))
	}
	for _, p := range b.policies {
		if p.Dst == spdTestPolicy(0).Dst || p.Dst == spdTestPolicy(1).Dst {
			t.Errorf("removed entry's policy %s still in the SPD", p.Dst)
		}
	}
	for _, e := range rest[1:] {
		if len(e.ids) != 1 {
			t.Fatalf("entry without its ID: %+v", e)
		}
	}
}
