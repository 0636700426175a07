package bpf_test

import (
	"testing"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
)

func ah4(spi uint32) []byte {
	return packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoAH, Payload: packet.AH(spi, 1, 64)})
}

func ah6(spi uint32) []byte {
	return packet.Build(packet.Spec{Src: peer6, Dst: us6, Proto: packet.ProtoAH, Payload: packet.AH(spi, 1, 64)})
}

func addAHSA(spi uint32, cpu int) func(*testing.T, *maps.Set) {
	return func(t *testing.T, s *maps.Set) {
		if err := s.SA.Put(maps.InboundSA{SPI: spi, Proto: maps.SAProtoAH, Dst: us4, CPU: cpu}); err != nil {
			t.Fatal(err)
		}
	}
}

// wantRxSeen checks an SA's rx_seen counters.
func wantRxSeen(proto maps.SAProto, spi uint32, packets, bytes uint64) func(*testing.T, *maps.Set) {
	return func(t *testing.T, s *maps.Set) {
		sa, err := s.SA.Get(proto, spi, us4)
		if err != nil {
			t.Fatal(err)
		}
		if sa.RxSeenPackets != packets || sa.RxSeenBytes != bytes || sa.Proto != proto {
			t.Errorf("%v SA %#x: rx_seen %d packets %d bytes, proto %v; want %d, %d", proto, spi,
				sa.RxSeenPackets, sa.RxSeenBytes, sa.Proto, packets, bytes)
		}
	}
}

// TestXDPWanAH runs xdp_wan on AH (RFC 4302, IP protocol 51): looked up
// by destination, protocol and SPI like ESP, in the allocated SPI range
// and outside it; an AH SA's SPI does not let ESP in, nor the reverse.
func TestXDPWanAH(t *testing.T) {
	const ahLen = 20 + 24 + 64 // IPv4, AH with a 96-bit ICV, payload
	fixtures := []xdpFixture{
		{
			name: "AH, known SA by hash", setup: addAHSA(knownSPI, maps.NoCPU),
			packets: [][]byte{ah4(knownSPI), ah4(knownSPI)}, verdicts: []uint32{xdpPass, xdpPass},
			counters: map[string]uint64{"rx_seen": 2},
			check:    wantRxSeen(maps.SAProtoAH, knownSPI, 2, 2*ahLen),
		},
		{
			name: "AH, SA in the allocated SPI range", setup: addAHSA(slotSPI, maps.NoCPU),
			packets: [][]byte{ah4(slotSPI)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
			check:    wantRxSeen(maps.SAProtoAH, slotSPI, 1, ahLen),
		},
		{
			name: "AH, unknown SPI", setup: addAHSA(knownSPI, maps.NoCPU),
			packets: [][]byte{ah4(unknownSPI), ah4(slotSPI + 1)}, verdicts: []uint32{xdpDrop, xdpDrop},
			counters: map[string]uint64{"no_sa": 2},
		},
		{
			name: "AH, no SAs at all", packets: [][]byte{ah4(knownSPI), ah6(slotSPI)},
			verdicts: []uint32{xdpDrop, xdpDrop},
			counters: map[string]uint64{"no_sa": 2},
		},
		{
			name: "AH truncated inside its header", setup: addAHSA(knownSPI, maps.NoCPU),
			packets: [][]byte{truncateIP(ah4(knownSPI), 7), truncateIP(ah4(knownSPI), 11)}, verdicts: []uint32{xdpDrop, xdpDrop},
			counters: map[string]uint64{"malformed": 2},
		},
		{
			name: "ESP with an AH SA's SPI (slot)", setup: addAHSA(slotSPI, maps.NoCPU),
			packets: [][]byte{esp4(slotSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
			check:    wantRxSeen(maps.SAProtoAH, slotSPI, 0, 0),
		},
		{
			name: "ESP with an AH SA's SPI (hash)", setup: addAHSA(knownSPI, maps.NoCPU),
			packets: [][]byte{esp4(knownSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "AH with an ESP SA's SPI", setup: both(addSA(knownSPI, us4, maps.NoCPU), addSA(slotSPI, us4, maps.NoCPU)),
			packets: [][]byte{ah4(knownSPI), ah4(slotSPI)}, verdicts: []uint32{xdpDrop, xdpDrop},
			counters: map[string]uint64{"no_sa": 2},
		},
		{
			name: "AH and ESP SAs sharing an SPI by hash", setup: both(addSA(knownSPI, us4, maps.NoCPU), addAHSA(knownSPI, maps.NoCPU)),
			packets: [][]byte{ah4(knownSPI), esp4(knownSPI), esp4(knownSPI)}, verdicts: []uint32{xdpPass, xdpPass, xdpPass},
			counters: map[string]uint64{"rx_seen": 3},
			check: both(wantRxSeen(maps.SAProtoAH, knownSPI, 1, ahLen),
				wantRxSeen(maps.SAProtoESP, knownSPI, 2, 2*(20+8+64))),
		},
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			objs, s := loadObjects(t)
			if f.setup != nil {
				f.setup(t, s)
			}
			for i, pkt := range f.packets {
				if got := run(t, objs.XdpWan, pkt); got != f.verdicts[i] {
					t.Errorf("packet %d: verdict %d, want %d", i, got, f.verdicts[i])
				}
			}
			checkCounters(t, s, f.counters)
			if f.check != nil {
				f.check(t, s)
			}
		})
	}
}

// TestSATableAHSlot checks that an SPI of the allocated range holds one
// SA, of one protocol: the daemon keeps SPIs there unique over AH and
// ESP, and the table refuses an SA of the other protocol in a used slot.
func TestSATableAHSlot(t *testing.T) {
	_, s := loadObjects(t)
	addSA(slotSPI, us4, maps.NoCPU)(t, s)
	if err := s.SA.Put(maps.InboundSA{SPI: slotSPI, Proto: maps.SAProtoAH, Dst: us4, CPU: maps.NoCPU}); err == nil {
		t.Error("an AH SA took the slot of an ESP SA")
	}
	if err := s.SA.Delete(maps.SAProtoAH, slotSPI, us4); err == nil {
		t.Error("deleting the AH SA of an ESP SA's slot worked")
	}
	list, err := s.SA.List()
	if err != nil || len(list) != 1 || list[0].Proto != maps.SAProtoESP {
		t.Errorf("list %+v %v", list, err)
	}
	if err := s.SA.Delete(maps.SAProtoESP, slotSPI, us4); err != nil {
		t.Fatal(err)
	}
	addAHSA(slotSPI, maps.NoCPU)(t, s)
	if list, err := s.SA.List(); err != nil || len(list) != 1 || list[0].Proto != maps.SAProtoAH {
		t.Errorf("list %+v %v", list, err)
	}
}

// BenchmarkXDPWanAH measures xdp_wan per packet (BPF_PROG_TEST_RUN's
// repeat loop) on AH next to ESP of the same size: a known SPI in the
// allocated range (pass), and an unknown one (drop).
func BenchmarkXDPWanAH(b *testing.B) {
	objs, s := loadObjects(b)
	for _, sa := range []maps.InboundSA{{SPI: slotSPI, Dst: us4, CPU: maps.NoCPU}, {SPI: slotSPI + 1, Proto: maps.SAProtoAH, Dst: us4, CPU: maps.NoCPU}} {
		if err := s.SA.Put(sa); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		want uint32
	}{
		{"esp-known", esp4(slotSPI), xdpPass},
		{"ah-known", ah4(slotSPI + 1), xdpPass},
		{"esp-unknown", esp4(slotSPI + 2), xdpDrop},
		{"ah-unknown", ah4(slotSPI + 2), xdpDrop},
	} {
		b.Run(c.name, func(b *testing.B) {
			ret, d, err := objs.XdpWan.Benchmark(c.pkt, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			if ret != c.want {
				b.Fatalf("verdict %d, want %d", ret, c.want)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/pkt")
		})
	}
}
