package bpf_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
)

// espTo is ESP from the peer to dst with the given SPI.
func espTo(dst netip.Addr, spi uint32) []byte {
	src := peer4
	if dst.Is6() {
		src = peer6
	}
	return packet.Build(packet.Spec{Src: src, Dst: dst, Proto: packet.ProtoESP, Payload: packet.ESP(spi, 1, 64)})
}

// TestForeignSAsShareSPI: SPIs are per destination (RFC 4301 4.1), so
// SAs outside the allocated range may share one. They share its window
// in sa_foreign; those that do not fit go to the sa_in hash, which only
// lookups in that window ask. Each SA gets its own packets and counters,
// through adds, deletes, a move and a bulk load.
func TestForeignSAsShareSPI(t *testing.T) {
	const spi = 0x0badcafe // outside the allocated range
	var all7 []netip.Addr
	for i := range 5 {
		all7 = append(all7, netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}))
	}
	all7 = append(all7, us6, netip.MustParseAddr("2001:db8:2::2"))
	stranger := netip.AddrFrom4([4]byte{192, 0, 2, 99})

	for _, bulk := range []bool{false, true} {
		objs, s := loadObjects(t)
		dsts := append([]netip.Addr(nil), all7...)
		var sas []maps.InboundSA
		for _, d := range dsts {
			sas = append(sas, maps.InboundSA{SPI: spi, Dst: d, CPU: maps.NoCPU})
		}
		// An AH SA with the same SPI and destination as an ESP one.
		sas = append(sas, maps.InboundSA{SPI: spi, Dst: dsts[0], Proto: maps.SAProtoAH, CPU: maps.NoCPU})
		if bulk {
			if err := s.SA.PutMany(sas); err != nil {
				t.Fatal(err)
			}
		} else {
			for _, sa := range sas {
				if err := s.SA.Put(sa); err != nil {
					t.Fatal(err)
				}
			}
		}
		var cfg bpf.XdpsecXsConfig
		if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Flags&0x8 == 0 { // XS_CFG_FOREIGN_HASHED
			t.Fatalf("bulk %v: 8 SAs with one SPI, a window of 4, and nothing went to the hash", bulk)
		}
		want := map[netip.Addr]uint64{}
		for round := range 2 {
			for _, d := range dsts {
				if got := run(t, objs.XdpWan, espTo(d, spi)); got != xdpPass {
					t.Fatalf("bulk %v: ESP %#x to %s: verdict %d, want pass", bulk, spi, d, got)
				}
				want[d]++
			}
			if got := run(t, objs.XdpWan, espTo(stranger, spi)); got != xdpDrop {
				t.Fatalf("bulk %v: ESP %#x to %s (no SA): verdict %d, want drop", bulk, spi, stranger, got)
			}
			if got := run(t, objs.XdpWan, espTo(dsts[1], spi+1)); got != xdpDrop {
				t.Fatalf("bulk %v: ESP %#x to %s (no SA): verdict %d, want drop", bulk, spi+1, dsts[1], got)
			}
			if round == 0 {
				// One from the window and one from the hash leave; their
				// packets are dropped, everyone else's still pass.
				for _, d := range []netip.Addr{dsts[0], dsts[6]} {
					if err := s.SA.Delete(maps.SAProtoESP, spi, d); err != nil {
						t.Fatal(err)
					}
					want[d] = 0
					if got := run(t, objs.XdpWan, espTo(d, spi)); got != xdpDrop {
						t.Fatalf("bulk %v: ESP to %s after its SA was deleted: verdict %d, want drop", bulk, d, got)
					}
					if _, err := s.SA.Get(maps.SAProtoESP, spi, d); !errors.Is(err, maps.ErrNoSA) {
						t.Fatalf("bulk %v: Get of the deleted SA to %s: %v, want ErrNoSA", bulk, d, err)
					}
				}
				// The last one moves (MOBIKE) to where the first was.
				if err := s.SA.Move(maps.SAProtoESP, spi, dsts[5], dsts[0]); err != nil {
					t.Fatal(err)
				}
				want[dsts[0]] = want[dsts[5]]
				want[dsts[5]] = 0
				dsts = []netip.Addr{dsts[0], dsts[1], dsts[2], dsts[3], dsts[4]}
			}
		}
		for d, n := range want {
			st, err := s.SA.Get(maps.SAProtoESP, spi, d)
			if n == 0 {
				if !errors.Is(err, maps.ErrNoSA) {
					t.Fatalf("bulk %v: SA to %s moved away, Get: %v", bulk, d, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("bulk %v: Get %s: %v", bulk, d, err)
			}
			if st.RxSeenPackets != n {
				t.Fatalf("bulk %v: SA to %s counted %d packets, want %d", bulk, d, st.RxSeenPackets, n)
			}
		}
		all, err := s.SA.List()
		if err != nil {
			t.Fatal(err)
		}
		// 8 put, 2 deleted.
		if len(all) != 6 {
			t.Fatalf("bulk %v: List has %d SAs, want 6: %+v", bulk, len(all), all)
		}
		if got := run(t, objs.XdpWan, packet.Build(packet.Spec{Src: peer4, Dst: dsts[0], Proto: packet.ProtoAH,
			Payload: packet.AH(spi, 1, 64)})); got != xdpPass {
			t.Fatalf("bulk %v: AH with the shared SPI: verdict %d, want pass", bulk, got)
		}
		// All gone: the flags go, and made-up SPIs are dropped unseen.
		for _, sa := range all {
			if err := s.SA.Delete(sa.Proto, sa.SPI, sa.Dst); err != nil {
				t.Fatal(err)
			}
		}
		if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Flags&(0x1|0x8) != 0 {
			t.Fatalf("bulk %v: flags %#x with no foreign SAs left", bulk, cfg.Flags)
		}
		objs.Close()
	}
}

// TestForeignSAInHashStays: an SA that went to the hash when its window
// was full stays there when it is put again (one by one or in bulk) after
// a slot of the window has come free, so there is one entry to delete and
// its packets stop when it is deleted.
func TestForeignSAInHashStays(t *testing.T) {
	const spi = 0x0badf00d
	for _, bulk := range []bool{false, true} {
		objs, s := loadObjects(t)
		var sas []maps.InboundSA
		for i := range 5 {
			sas = append(sas, maps.InboundSA{SPI: spi, Dst: netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i)}), CPU: maps.NoCPU})
		}
		if err := s.SA.PutMany(sas); err != nil {
			t.Fatal(err)
		}
		last := sas[4]
		if err := s.SA.Delete(maps.SAProtoESP, spi, sas[0].Dst); err != nil {
			t.Fatal(err)
		}
		if bulk {
			if err := s.SA.PutMany([]maps.InboundSA{last}); err != nil {
				t.Fatal(err)
			}
		} else if err := s.SA.Put(last); err != nil {
			t.Fatal(err)
		}
		all, err := s.SA.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 {
			t.Fatalf("bulk %v: List has %d SAs after 5 put, 1 deleted and 1 put again, want 4: %+v", bulk, len(all), all)
		}
		if got := run(t, objs.XdpWan, espTo(last.Dst, spi)); got != xdpPass {
			t.Fatalf("bulk %v: ESP to %s: verdict %d, want pass", bulk, last.Dst, got)
		}
		if err := s.SA.Delete(maps.SAProtoESP, spi, last.Dst); err != nil {
			t.Fatal(err)
		}
		if got := run(t, objs.XdpWan, espTo(last.Dst, spi)); got != xdpDrop {
			t.Fatalf("bulk %v: ESP to %s after its SA was deleted: verdict %d, want drop", bulk, last.Dst, got)
		}
		objs.Close()
	}
}
