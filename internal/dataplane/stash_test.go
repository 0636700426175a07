package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/testenv"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// fakeStash is xdp_wan's stash queue and the programs that take frames
// back, recording what happens to each frame (named by its first byte).
type fakeStash struct {
	ev     *events
	queue  []maps.StashedFrame
	size   int
	inject error
}

func (s *fakeStash) Drain(max int) ([]maps.StashedFrame, error) {
	n := min(max, len(s.queue))
	out := slices.Clone(s.queue[:n])
	s.queue = s.queue[n:]
	return out, nil
}
func (s *fakeStash) Push(f maps.StashedFrame) error {
	if len(s.queue) >= s.size {
		return maps.ErrStashFull
	}
	s.ev.add("stash push %c", f.Frame[0])
	s.queue = append(s.queue, f)
	return nil
}
func (s *fakeStash) Capacity() int { return s.size }
func (s *fakeStash) Inject(f maps.StashedFrame) error {
	if s.inject != nil {
		return s.inject
	}
	s.ev.add("stash inject %c on %d/%d", f.Frame[0], f.Ifindex, f.RxQueue)
	return nil
}
func (s *fakeStash) Expire(f maps.StashedFrame) error {
	s.ev.add("stash expire %c", f.Frame[0])
	return nil
}

func newStashDataplane(t *testing.T) (*KernelDataplane, *fakeKernel, *fakeBPF, *fakeStash, *events) {
	ev := &events{}
	k := &fakeKernel{ev: ev, states: map[uint32]xfrm.State{}}
	b := &fakeBPF{ev: ev, sas: map[uint32]maps.InboundSA{}, cpus: []int{0, 1}}
	st := &fakeStash{ev: ev, size: 8}
	d := NewKernelDataplane(KernelConfig{Kernel: k, BPF: b, Log: testenv.Logger(t), Stash: st,
		Device: func(netip.Addr) (string, error) { return "wan0", nil }})
	t.Cleanup(d.Close)
	return d, k, b, st, ev
}

// TestDataplaneStash: with a stash, an allocated SPI is pending in the
// BPF SA table at once; installing its inbound SA completes the kernel SA
// before the BPF entry becomes active (until then xdp_wan stashes), then
// hands the stashed packets of installed SAs to the stack, puts back
// those of SPIs still pending, and drops those that waited too long or
// whose SPI nobody holds.
func TestDataplaneStash(t *testing.T) {
	d, _, b, st, ev := newStashDataplane(t)
	spi, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	if sa := b.sas[spi]; !sa.Pending {
		t.Fatalf("allocated SPI %.8x: BPF entry %+v, want pending", spi, sa)
	}
	now := monotonic()
	frame := func(name byte, spi uint32, age time.Duration) maps.StashedFrame {
		return maps.StashedFrame{Stashed: now - age, Ifindex: 7, RxQueue: 1, SPI: spi, Proto: maps.SAProtoESP, Dst: us, Frame: []byte{name}}
	}
	st.queue = []maps.StashedFrame{
		frame('a', spi, 10*time.Millisecond),
		frame('b', other, 10*time.Millisecond),     // still pending: back in the queue
		frame('c', other, stashMaxAge+time.Second), // pending, but waited too long
		frame('d', 0xc0000fff, 0),                  // an SPI nobody holds
		frame('e', spi, 5*time.Millisecond),
	}
	ev.list = nil
	if err := d.AddSA(testSA(spi, true)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("kernel update %.8x", spi),
		fmt.Sprintf("bpf put %.8x cpu 0", spi), // active only once the kernel SA is complete
		"stash inject a on 7/1",
		"stash push b",
		"stash expire c",
		"stash expire d",
		"stash inject e on 7/1",
	}
	if !slices.Equal(ev.list, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev.list, "\n"), strings.Join(want, "\n"))
	}
	if len(st.queue) != 1 || st.queue[0].Frame[0] != 'b' {
		t.Errorf("stash left with %d frames, want b", len(st.queue))
	}
	if sa := b.sas[spi]; sa.Pending {
		t.Errorf("installed SA still pending in the BPF table")
	}

	// An SPI given back without an SA leaves the table; its packets
	// then wait for nothing.
	ev.list = nil
	if err := d.DeleteSA(ike.SAID{Dst: us, SPI: other}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.sas[other]; ok {
		t.Errorf("released SPI %.8x still in the BPF table", other)
	}
	if len(d.pending) != 0 {
		t.Errorf("pending SPIs left: %v", d.pending)
	}
}

// TestDataplaneStashInjectFails: a frame the kernel does not take back
// is dropped, counted, not lost from the counters.
func TestDataplaneStashInjectFails(t *testing.T) {
	d, _, _, st, ev := newStashDataplane(t)
	spi, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	st.inject = fmt.Errorf("no such device")
	st.queue = []maps.StashedFrame{{Stashed: monotonic(), SPI: spi, Proto: maps.SAProtoESP, Dst: us, Frame: []byte{'a'}}}
	if err := d.AddSA(testSA(spi, true)); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ev.list, "stash expire a") {
		t.Errorf("a frame that could not be injected was not counted as dropped: %v", ev.list)
	}
}

// TestDataplaneStalePending: an SPI allocated and never installed nor
// given back (the exchange died) leaves the BPF SA table once its larval
// kernel SA is gone, and not before.
func TestDataplaneStalePending(t *testing.T) {
	d, k, b, _, _ := newStashDataplane(t)
	stale, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	larval, err := d.AllocateSPI(ike.SAProtoESP, them, us)
	if err != nil {
		t.Fatal(err)
	}
	// The fake kernel keeps no larval SAs: give one of them its own.
	k.states[larval] = xfrm.State{SPI: larval, Proto: xfrm.ProtoESP, Dst: us}
	d.mu.Lock()
	for id, p := range d.pending {
		p.at = p.at.Add(-2 * pendingMaxAge)
		d.pending[id] = p
	}
	d.lastSweep = time.Time{}
	d.mu.Unlock()
	if _, err := d.AllocateSPI(ike.SAProtoESP, them, us); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.sas[stale]; ok {
		t.Errorf("SPI %.8x whose larval SA is gone is still pending in the BPF table", stale)
	}
	if _, ok := b.sas[larval]; !ok {
		t.Errorf("SPI %.8x whose larval SA is still there left the BPF table", larval)
	}
	if len(d.pending) != 2 {
		t.Errorf("%d pending SPIs, want 2", len(d.pending))
	}
}

// TestDataplaneAdoptPending: pending SPIs a killed daemon left behind
// leave the table when their kernel SA is gone, wait for their larval SA
// to expire, and turn active when their kernel SA is complete.
func TestDataplaneAdoptPending(t *testing.T) {
	d, k, b, _, _ := newStashDataplane(t)
	const gone, larval, complete = 0xc0000101, 0xc0000102, 0xc0000103
	for _, spi := range []uint32{gone, larval, complete} {
		b.sas[spi] = maps.InboundSA{SPI: spi, Dst: us, CPU: 1, Pending: true}
	}
	b.sas[0xc0000104] = maps.InboundSA{SPI: 0xc0000104, Dst: us, CPU: 1}
	k.states[larval] = xfrm.State{SPI: larval, Proto: xfrm.ProtoESP, Dst: us}
	k.states[complete] = xfrm.State{SPI: complete, Proto: xfrm.ProtoESP, Dst: us}
	k.larval = map[uint32]bool{larval: true}
	if err := d.AdoptPending(); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.sas[gone]; ok {
		t.Error("a pending SPI without a kernel SA is still in the table")
	}
	if sa, ok := b.sas[larval]; !ok || !sa.Pending {
		t.Errorf("a pending SPI with a larval kernel SA: %+v, %v; want it kept pending", sa, ok)
	}
	if _, ok := d.pending[ike.SAID{Dst: us, SPI: larval}]; !ok {
		t.Error("a pending SPI with a larval kernel SA is not tracked for release")
	}
	if sa := b.sas[complete]; sa.Pending || sa.CPU != 1 {
		t.Errorf("a pending SPI with a complete kernel SA: %+v; want it active on CPU 1", sa)
	}
	if len(d.pending) != 1 || len(b.sas) != 3 {
		t.Errorf("%d pending, %d in the table; want 1, 3", len(d.pending), len(b.sas))
	}
}
