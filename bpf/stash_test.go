package bpf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
)

// stashTestSize is the stash queue's size in tests: small, so that a
// fixture fills it.
const stashTestSize = 4

func pendSA(t *testing.T, s *maps.Set, proto maps.SAProto, spi uint32, dst netip.Addr, cpu int) {
	t.Helper()
	if err := s.SA.Put(maps.InboundSA{SPI: spi, Proto: proto, Dst: dst, CPU: cpu, Pending: true}); err != nil {
		t.Fatal(err)
	}
}

// TestXDPWanStash: ESP, ESP in UDP and AH for a pending SPI are dropped
// by xdp_wan and held in the stash byte for byte, with the SA they are
// for; nothing is counted on the SA, whose counters start when it is
// made active, and then its packets pass as any SA's.
func TestXDPWanStash(t *testing.T) {
	ah4 := packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoAH, Payload: packet.AH(slotSPI+2, 1, 40)})
	for _, c := range []struct {
		name  string
		proto maps.SAProto
		spi   uint32
		dst   netip.Addr
		frame []byte
	}{
		{"ipv4 ESP", maps.SAProtoESP, slotSPI, us4, esp4(slotSPI)},
		{"ipv6 ESP in UDP", maps.SAProtoESP, slotSPI + 1, us6, udp(peer6, us6, 4500, 4500, packet.ESP(slotSPI+1, 3, 80))},
		{"ipv4 AH", maps.SAProtoAH, slotSPI + 2, us4, ah4},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs, s := loadObjects(t)
			pendSA(t, s, c.proto, c.spi, c.dst, 1)
			if got := run(t, objs.XdpWan, c.frame); got != xdpDrop {
				t.Errorf("verdict %d, want drop (stashed)", got)
			}
			checkCounters(t, s, map[string]uint64{"stashed": 1})
			sa, err := s.SA.Get(c.proto, c.spi, c.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !sa.Pending || sa.RxSeenPackets != 0 || sa.CPU != 1 {
				t.Errorf("pending SA = %+v, want pending, CPU 1, nothing seen", sa)
			}
			frames, err := s.Stash.Drain(10)
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != 1 {
				t.Fatalf("stash holds %d frames, want 1", len(frames))
			}
			f := frames[0]
			if !bytes.Equal(f.Frame, c.frame) {
				t.Errorf("stashed frame differs from the one received:\n got %x\nwant %x", f.Frame, c.frame)
			}
			if f.SPI != c.spi || f.Proto != c.proto || f.Dst != c.dst || f.Stashed == 0 {
				t.Errorf("stashed for SA %#08x %v %s at %v, want %#08x %v %s", f.SPI, f.Proto, f.Dst, f.Stashed, c.spi, c.proto, c.dst)
			}
			if more, err := s.Stash.Drain(10); err != nil || len(more) != 0 {
				t.Errorf("second drain: %d frames, %v", len(more), err)
			}

			// Made active, the same SA's packets pass and are counted on it.
			if err := s.SA.Put(maps.InboundSA{SPI: c.spi, Proto: c.proto, Dst: c.dst, CPU: maps.NoCPU}); err != nil {
				t.Fatal(err)
			}
			if got := run(t, objs.XdpWan, c.frame); got != xdpPass {
				t.Errorf("active SA: verdict %d, want pass", got)
			}
			checkCounters(t, s, map[string]uint64{"stashed": 1, "rx_seen": 1})
			if sa, err := s.SA.Get(c.proto, c.spi, c.dst); err != nil || sa.Pending || sa.RxSeenPackets != 1 {
				t.Errorf("active SA = %+v, %v; want not pending, 1 packet seen", sa, err)
			}
		})
	}
}

// TestXDPWanStashLimits: a full stash and a frame too long for an entry
// are drops with their own counters; a pending slot of another
// destination is no_sa; what the daemon puts back comes out last; the
// stash programs count what they hand back and what they drop.
func TestXDPWanStashLimits(t *testing.T) {
	objs, s := loadObjects(t)
	pendSA(t, s, maps.SAProtoESP, slotSPI, us4, maps.NoCPU)
	for i := range stashTestSize + 2 {
		frame := packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoESP, Payload: packet.ESP(slotSPI, uint32(i+1), 64)})
		if got := run(t, objs.XdpWan, frame); got != xdpDrop {
			t.Errorf("packet %d: verdict %d, want drop", i, got)
		}
	}
	long := packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoESP, Payload: packet.ESP(slotSPI, 99, maps.StashFrameMax)})
	if got := run(t, objs.XdpWan, long); got != xdpDrop {
		t.Errorf("long frame: verdict %d, want drop", got)
	}
	other := packet.Build(packet.Spec{Src: peer4, Dst: us4b, Proto: packet.ProtoESP, Payload: packet.ESP(slotSPI, 1, 64)})
	if got := run(t, objs.XdpWan, other); got != xdpDrop {
		t.Errorf("other destination: verdict %d, want drop", got)
	}
	checkCounters(t, s, map[string]uint64{"stashed": stashTestSize, "stash_full": 2, "stash_too_long": 1, "no_sa": 1})

	frames, err := s.Stash.Drain(stashTestSize + 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != stashTestSize {
		t.Fatalf("stash gave %d frames, want %d", len(frames), stashTestSize)
	}
	for i, f := range frames {
		if seq := binary.BigEndian.Uint32(f.Frame[14+20+4:]); seq != uint32(i+1) {
			t.Errorf("frame %d has sequence number %d: not oldest first", i, seq)
		}
	}
	for _, f := range frames[1:] {
		if err := s.Stash.Push(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stash.Push(frames[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Stash.Push(frames[0]); !errors.Is(err, maps.ErrStashFull) {
		t.Errorf("push into a full stash: %v, want ErrStashFull", err)
	}
	again, err := s.Stash.Drain(stashTestSize)
	if err != nil || len(again) != stashTestSize {
		t.Fatalf("drain after push: %d frames, %v", len(again), err)
	}
	if !bytes.Equal(again[stashTestSize-1].Frame, frames[0].Frame) || again[0].Stashed != frames[1].Stashed {
		t.Error("frames put back do not come out in the order they went in, with their times")
	}

	if got := run(t, objs.XdpStashInject, frames[0].Frame); got != xdpPass {
		t.Errorf("xdp_stash_inject: verdict %d, want pass", got)
	}
	if got := run(t, objs.XdpStashExpire, frames[1].Frame); got != xdpDrop {
		t.Errorf("xdp_stash_expire: verdict %d, want drop", got)
	}
	checkCounters(t, s, map[string]uint64{"stashed": stashTestSize, "stash_full": 2, "stash_too_long": 1, "no_sa": 1,
		"stash_injected": 1, "stash_expired": 1})
}

// TestSATablePending: a pending slot of a dead daemon's SPI is no
// obstacle to the SA the kernel gives that SPI to next; an active one is.
// Pending SAs are SPIs of the allocated range only.
func TestSATablePending(t *testing.T) {
	_, s := loadObjects(t)
	pendSA(t, s, maps.SAProtoESP, slotSPI, us4, maps.NoCPU)
	if err := s.SA.Put(maps.InboundSA{SPI: slotSPI, Dst: us4b, CPU: maps.NoCPU, Pending: true}); err != nil {
		t.Errorf("a pending slot kept its SPI from another destination: %v", err)
	}
	if err := s.SA.Put(maps.InboundSA{SPI: slotSPI, Dst: us4b, CPU: maps.NoCPU}); err != nil {
		t.Fatal(err)
	}
	if err := s.SA.Put(maps.InboundSA{SPI: slotSPI, Dst: us4, CPU: maps.NoCPU, Pending: true}); err == nil {
		t.Error("an active SA's SPI was made pending for another destination")
	}
	if err := s.SA.Put(maps.InboundSA{SPI: knownSPI, Dst: us4, CPU: maps.NoCPU, Pending: true}); err == nil {
		t.Error("an SPI outside the allocated range was made pending")
	}
	if err := s.SA.Delete(maps.SAProtoESP, slotSPI, us4b); err != nil {
		t.Fatal(err)
	}
}
