package bpf_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/maps"
)

const (
	knownSPI   = 0x0c0ffee1 // outside the allocated range: found by hash
	unknownSPI = 0xdead0002
	slotSPI    = slotBase + 77 // inside it: found by index
)

func esp4(spi uint32) []byte {
	return packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoESP, Payload: packet.ESP(spi, 1, 64)})
}

func esp6(spi uint32) []byte {
	return packet.Build(packet.Spec{Src: peer6, Dst: us6, Proto: packet.ProtoESP, Payload: packet.ESP(spi, 1, 64)})
}

func udp(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	return packet.Build(packet.Spec{Src: src, Dst: dst, Proto: packet.ProtoUDP,
		Payload: packet.UDP(src, dst, sport, dport, payload)})
}

func natt4(payload []byte) []byte { return udp(peer4, us4, 4500, packet.PortNATT, payload) }

func ike4(src netip.Addr, msg []byte) []byte { return udp(src, us4, 500, packet.PortIKE, msg) }

func withMarker(msg []byte) []byte { return append(append([]byte{}, packet.NonESPMarker...), msg...) }

// truncateIP cuts a built IPv4 frame to n bytes after the IP header,
// keeping the IP header's length fields consistent with what is left.
func truncateIP(frame []byte, n int) []byte {
	f := append([]byte(nil), frame[:14+20+n]...)
	binary.BigEndian.PutUint16(f[14+2:], uint16(20+n))
	return f
}

// padTo pads a frame to the Ethernet minimum, as a NIC hands it to XDP.
func padTo(frame []byte, n int) []byte {
	for len(frame) < n {
		frame = append(frame, 0)
	}
	return frame
}

func addSA(spi uint32, dst netip.Addr, cpu int) func(*testing.T, *maps.Set) {
	return func(t *testing.T, s *maps.Set) {
		if err := s.SA.Put(maps.InboundSA{SPI: spi, Dst: dst, CPU: cpu}); err != nil {
			t.Fatal(err)
		}
	}
}

func rateLimit(rate, burst uint32) func(*testing.T, *maps.Set) {
	return func(t *testing.T, s *maps.Set) {
		if err := s.Config.SetIKERateLimit(maps.IKERateLimit{Rate: rate, Burst: burst}); err != nil {
			t.Fatal(err)
		}
	}
}

func both(fs ...func(*testing.T, *maps.Set)) func(*testing.T, *maps.Set) {
	return func(t *testing.T, s *maps.Set) {
		for _, f := range fs {
			f(t, s)
		}
	}
}

func repeat(pkt []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = pkt
	}
	return out
}

type xdpFixture struct {
	name     string
	setup    func(*testing.T, *maps.Set)
	packets  [][]byte
	verdicts []uint32 // one per packet
	counters map[string]uint64
	check    func(*testing.T, *maps.Set)
}

func TestXDPWanFixtures(t *testing.T) {
	ikeInit := packet.IKESAInit(0x1111)
	ikeAuth := packet.IKEHeader(0x1111, 0x2222, 2, 35, 0x08, 1)
	ikeInitResp := packet.IKEHeader(0x1111, 0x2222, 2, 34, 0x20, 0)
	ikev1Main := packet.IKEHeader(0x3333, 0, 1, 2, 0, 0)
	ikev1Quick := packet.IKEHeader(0x3333, 0x4444, 1, 32, 1, 0x55)

	fixtures := []xdpFixture{
		{
			name: "ipv4 ESP, known SA", setup: addSA(knownSPI, us4, maps.NoCPU),
			packets: [][]byte{esp4(knownSPI)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
			check: func(t *testing.T, s *maps.Set) {
				sa, err := s.SA.Get(maps.SAProtoESP, knownSPI, us4)
				if err != nil {
					t.Fatal(err)
				}
				if sa.RxSeenPackets != 1 || sa.RxSeenBytes != 20+8+64 {
					t.Errorf("per-SA rx_seen = %d packets %d bytes, want 1, %d", sa.RxSeenPackets, sa.RxSeenBytes, 20+8+64)
				}
			},
		},
		{
			name: "ipv4 ESP, SA in the allocated SPI range", setup: addSA(slotSPI, us4, maps.NoCPU),
			packets: [][]byte{esp4(slotSPI)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
			check: func(t *testing.T, s *maps.Set) {
				sa, err := s.SA.Get(maps.SAProtoESP, slotSPI, us4)
				if err != nil {
					t.Fatal(err)
				}
				if sa.RxSeenPackets != 1 || sa.RxSeenBytes != 20+8+64 {
					t.Errorf("slot SA rx_seen = %d packets %d bytes", sa.RxSeenPackets, sa.RxSeenBytes)
				}
			},
		},
		{
			name: "ipv6 ESP-in-UDP, SA in the allocated SPI range", setup: addSA(slotSPI, us6, 1),
			packets:  [][]byte{udp(peer6, us6, 4500, 4500, packet.ESP(slotSPI, 3, 80))},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name: "SPI in the range, empty slot", setup: addSA(slotSPI, us4, maps.NoCPU),
			packets: [][]byte{esp4(slotSPI + 1)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "SPI in the range, slot of another destination", setup: addSA(slotSPI, us4b, maps.NoCPU),
			packets: [][]byte{esp4(slotSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "SPI in the range, slot of the other family", setup: addSA(slotSPI, us6, maps.NoCPU),
			packets: [][]byte{esp4(slotSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "slot SA steered to its CPU",
			setup: both(addSA(slotSPI, us4, 0), func(t *testing.T, s *maps.Set) {
				if err := s.CPUs.Enable(0, 256); err != nil {
					t.Fatal(err)
				}
			}),
			packets: [][]byte{esp4(slotSPI)}, verdicts: []uint32{xdpRedirect},
			counters: map[string]uint64{"rx_seen": 1, "redirect_cpu": 1},
		},
		{
			name: "ipv4 ESP, unknown SPI", setup: addSA(knownSPI, us4, maps.NoCPU),
			packets: [][]byte{esp4(unknownSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "ipv4 ESP, known SPI for another destination", setup: addSA(knownSPI, us4b, maps.NoCPU),
			packets: [][]byte{esp4(knownSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "ipv6 ESP, known SA", setup: addSA(knownSPI, us6, maps.NoCPU),
			packets: [][]byte{esp6(knownSPI)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name: "ipv6 ESP, unknown SPI", setup: addSA(knownSPI, us6, maps.NoCPU),
			packets: [][]byte{esp6(unknownSPI)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "ipv6 ESP behind hop-by-hop, routing and destination options", setup: addSA(knownSPI, us6, maps.NoCPU),
			packets: [][]byte{packet.Build(packet.Spec{Src: peer6, Dst: us6, Proto: packet.ProtoESP,
				IPv6Ext: []uint8{0, 43, 60}, Payload: packet.ESP(knownSPI, 1, 32)})},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name: "VLAN-tagged ipv4 ESP, known SA", setup: addSA(knownSPI, us4, maps.NoCPU),
			packets: [][]byte{packet.Build(packet.Spec{Src: peer4, Dst: us4, VLAN: 42, Proto: packet.ProtoESP,
				Payload: packet.ESP(knownSPI, 7, 100)})},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name: "VLAN-tagged ipv6 ESP, unknown SPI",
			packets: [][]byte{packet.Build(packet.Spec{Src: peer6, Dst: us6, VLAN: 7, Proto: packet.ProtoESP,
				Payload: packet.ESP(unknownSPI, 7, 100)})},
			verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "ESP steered to its SA's CPU",
			setup: both(addSA(knownSPI, us4, 0), func(t *testing.T, s *maps.Set) {
				if err := s.CPUs.Enable(0, 256); err != nil {
					t.Fatal(err)
				}
			}),
			packets: [][]byte{esp4(knownSPI)}, verdicts: []uint32{xdpRedirect},
			counters: map[string]uint64{"rx_seen": 1, "redirect_cpu": 1},
		},
		{
			name: "ESP for a CPU without a queue passes", setup: addSA(knownSPI, us4, 0),
			packets: [][]byte{esp4(knownSPI)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name: "ESP-in-UDP, known SA", setup: addSA(knownSPI, us4, maps.NoCPU),
			packets: [][]byte{natt4(packet.ESP(knownSPI, 3, 80))}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name: "ESP-in-UDP, unknown SPI", setup: addSA(knownSPI, us4, maps.NoCPU),
			packets: [][]byte{natt4(packet.ESP(unknownSPI, 3, 80))}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "ipv6 ESP-in-UDP, known SA", setup: addSA(knownSPI, us6, maps.NoCPU),
			packets:  [][]byte{udp(peer6, us6, 4500, 4500, packet.ESP(knownSPI, 3, 80))},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"rx_seen": 1},
		},
		{
			name:    "NAT-T keepalive in a padded minimum frame",
			packets: [][]byte{padTo(natt4([]byte{0xff}), 60)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"natt_keepalive": 1},
		},
		{
			name:    "one-byte UDP 4500 payload that is no keepalive",
			packets: [][]byte{natt4([]byte{0x01})}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"malformed": 1},
		},
		{
			name:    "UDP 4500 payload too short for a marker or SPI",
			packets: [][]byte{padTo(natt4([]byte{0x01, 0x02}), 60)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"malformed": 1},
		},
		{
			name:    "ESP-in-UDP truncated inside the ESP header",
			packets: [][]byte{natt4([]byte{0xc0, 0xff, 0xee, 0x01, 0, 0})}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"malformed": 1},
		},
		{
			name:    "ESP truncated inside its header",
			packets: [][]byte{truncateIP(esp4(knownSPI), 6)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"malformed": 1},
		},
		{
			name:    "UDP header truncated",
			packets: [][]byte{truncateIP(natt4(packet.ESP(knownSPI, 1, 8)), 5)}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"malformed": 1},
		},
		{
			name:    "IKE header truncated on port 500",
			packets: [][]byte{ike4(peer4, ikeInit[:12])}, verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"malformed": 1},
		},
		{
			name: "IKE_SA_INIT on port 500 under the limit", setup: rateLimit(10, 5),
			packets: [][]byte{ike4(peer4, ikeInit)}, verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"ike": 1, "ike_sa_init": 1},
		},
		{
			name: "IKE_AUTH behind the non-ESP marker on 4500", setup: rateLimit(1, 1),
			packets:  repeat(natt4(withMarker(ikeAuth)), 3),
			verdicts: []uint32{xdpPass, xdpPass, xdpPass},
			counters: map[string]uint64{"ike": 3},
		},
		{
			name: "IKE_SA_INIT policed above the burst", setup: rateLimit(1, 3),
			packets:  repeat(ike4(peer4, ikeInit), 5),
			verdicts: []uint32{xdpPass, xdpPass, xdpPass, xdpDrop, xdpDrop},
			counters: map[string]uint64{"ike": 3, "ike_sa_init": 3, "ike_ratelimit": 2},
		},
		{
			name: "IKE_SA_INIT behind the marker policed too", setup: rateLimit(1, 1),
			packets:  repeat(natt4(withMarker(ikeInit)), 2),
			verdicts: []uint32{xdpPass, xdpDrop},
			counters: map[string]uint64{"ike": 1, "ike_sa_init": 1, "ike_ratelimit": 1},
		},
		{
			name: "policing is per source", setup: rateLimit(1, 1),
			packets:  [][]byte{ike4(peer4, ikeInit), ike4(peer4b, ikeInit), ike4(peer4, ikeInit)},
			verdicts: []uint32{xdpPass, xdpPass, xdpDrop},
			counters: map[string]uint64{"ike": 2, "ike_sa_init": 2, "ike_ratelimit": 1},
		},
		{
			name: "IKE_SA_INIT responses are not policed", setup: rateLimit(1, 1),
			packets:  repeat(ike4(peer4, ikeInitResp), 3),
			verdicts: []uint32{xdpPass, xdpPass, xdpPass},
			counters: map[string]uint64{"ike": 3},
		},
		{
			name: "IKEv1 Main Mode first message policed, Quick Mode not", setup: rateLimit(1, 1),
			packets:  [][]byte{ike4(peer4, ikev1Main), ike4(peer4, ikev1Main), ike4(peer4, ikev1Quick)},
			verdicts: []uint32{xdpPass, xdpDrop, xdpPass},
			counters: map[string]uint64{"ike": 2, "ike_sa_init": 1, "ike_ratelimit": 1},
		},
		{
			name: "rate 0 disables the policer", setup: rateLimit(0, 0),
			packets:  repeat(ike4(peer4, ikeInit), 10),
			verdicts: []uint32{xdpPass, xdpPass, xdpPass, xdpPass, xdpPass, xdpPass, xdpPass, xdpPass, xdpPass, xdpPass},
			counters: map[string]uint64{"ike": 10, "ike_sa_init": 10},
		},
		{
			name: "ipv4 non-first fragment passes",
			packets: [][]byte{packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoESP,
				Fragment: true, FragOffset: 185, Payload: make([]byte, 40)})},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"fragment": 1},
		},
		{
			name: "ipv4 first fragment of ESP is looked up",
			packets: [][]byte{packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoESP,
				Fragment: true, MoreFragments: true, Payload: packet.ESP(unknownSPI, 1, 32)})},
			verdicts: []uint32{xdpDrop},
			counters: map[string]uint64{"no_sa": 1},
		},
		{
			name: "ipv6 non-first fragment passes",
			packets: [][]byte{packet.Build(packet.Spec{Src: peer6, Dst: us6, Proto: packet.ProtoESP,
				Fragment: true, FragOffset: 100, Payload: make([]byte, 40)})},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"fragment": 1},
		},
		{
			name:     "TCP is none of ours",
			packets:  [][]byte{packet.Build(packet.Spec{Src: peer4, Dst: us4, Proto: packet.ProtoTCP, Payload: packet.TCP(peer4, us4, 1234, 443, packet.TCPAck, nil, nil)})},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"pass": 1},
		},
		{
			name:     "UDP to another port is none of ours",
			packets:  [][]byte{udp(peer4, us4, 53, 53, []byte("query"))},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"pass": 1},
		},
		{
			name:     "ARP is none of ours",
			packets:  [][]byte{append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...)},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"pass": 1},
		},
		{
			name:     "runt frame passes untouched",
			packets:  [][]byte{{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45}},
			verdicts: []uint32{xdpPass},
			counters: map[string]uint64{"pass": 1},
		},
	}

	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			objs, s := loadObjects(t)
			if f.setup != nil {
				f.setup(t, s)
			}
			if len(f.verdicts) != len(f.packets) {
				t.Fatalf("fixture has %d packets but %d verdicts", len(f.packets), len(f.verdicts))
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

// TestSATableSlots checks the SPI-indexed half of the SA table: counters
// kept on update, refused reuse of an SPI for another destination, delete.
func TestSATableSlots(t *testing.T) {
	objs, s := loadObjects(t)
	addSA(slotSPI, us4, maps.NoCPU)(t, s)
	for range 2 {
		run(t, objs.XdpWan, esp4(slotSPI))
	}
	addSA(slotSPI, us4, 1)(t, s)
	sa, err := s.SA.Get(maps.SAProtoESP, slotSPI, us4)
	if err != nil {
		t.Fatal(err)
	}
	if sa.CPU != 1 || sa.RxSeenPackets != 2 {
		t.Errorf("after update: cpu %d, %d packets; want 1, 2", sa.CPU, sa.RxSeenPackets)
	}
	if err := s.SA.Put(maps.InboundSA{SPI: slotSPI, Dst: us4b, CPU: maps.NoCPU}); err == nil {
		t.Error("an SPI in use was given to another destination")
	}
	list, err := s.SA.List()
	if err != nil || len(list) != 1 || list[0].SPI != slotSPI || list[0].RxSeenPackets != 2 {
		t.Errorf("list = %+v, %v", list, err)
	}
	if err := s.SA.Delete(maps.SAProtoESP, slotSPI, us4b); !errors.Is(err, maps.ErrNoSA) {
		t.Errorf("delete for the wrong destination: %v", err)
	}
	if err := s.SA.Delete(maps.SAProtoESP, slotSPI, us4); err != nil {
		t.Fatal(err)
	}
	if got := run(t, objs.XdpWan, esp4(slotSPI)); got != xdpDrop {
		t.Errorf("after delete: verdict %d", got)
	}
	// A new SA in the slot starts from zero.
	addSA(slotSPI, us4b, maps.NoCPU)(t, s)
	if sa, err := s.SA.Get(maps.SAProtoESP, slotSPI, us4b); err != nil || sa.RxSeenPackets != 0 {
		t.Errorf("reused slot: %+v, %v", sa, err)
	}
}

// TestSATableUpdateKeepsCounters checks that changing an SA's CPU keeps its
// per-CPU rx_seen counters, and that counters count the IP datagram, not
// the Ethernet padding of a short frame.
func TestSATableUpdateKeepsCounters(t *testing.T) {
	objs, s := loadObjects(t)
	addSA(knownSPI, us4, maps.NoCPU)(t, s)
	short := padTo(natt4(packet.ESP(knownSPI, 1, 0)), 60) // 20+8+8 bytes of IP in a 60-byte frame
	for range 3 {
		if got := run(t, objs.XdpWan, short); got != xdpPass {
			t.Fatalf("verdict %d", got)
		}
	}
	addSA(knownSPI, us4, 1)(t, s)
	sa, err := s.SA.Get(maps.SAProtoESP, knownSPI, us4)
	if err != nil {
		t.Fatal(err)
	}
	if sa.CPU != 1 || sa.RxSeenPackets != 3 || sa.RxSeenBytes != 3*(20+8+8) {
		t.Errorf("after update: cpu %d, %d packets, %d bytes; want cpu 1, 3 packets, %d bytes",
			sa.CPU, sa.RxSeenPackets, sa.RxSeenBytes, 3*(20+8+8))
	}
	if err := s.SA.Delete(maps.SAProtoESP, knownSPI, us4); err != nil {
		t.Fatal(err)
	}
	if err := s.SA.Delete(maps.SAProtoESP, knownSPI, us4); !errors.Is(err, maps.ErrNoSA) {
		t.Errorf("second delete: %v, want ErrNoSA", err)
	}
	if got := run(t, objs.XdpWan, short); got != xdpDrop {
		t.Errorf("after delete: verdict %d, want drop", got)
	}
}

// TestSATableMove checks that an SA moved to a new destination (MOBIKE)
// keeps its rx_seen counters, is found at the new address and no longer
// at the old one, for an SPI of the slot range and for a foreign one.
func TestSATableMove(t *testing.T) {
	objs, s := loadObjects(t)
	to := func(dst netip.Addr, spi uint32) []byte {
		return packet.Build(packet.Spec{Src: peer4, Dst: dst, Proto: packet.ProtoESP, Payload: packet.ESP(spi, 1, 64)})
	}
	for _, spi := range []uint32{slotSPI, knownSPI} {
		addSA(spi, us4, 1)(t, s)
		for range 2 {
			run(t, objs.XdpWan, to(us4, spi))
		}
		if err := s.SA.Move(maps.SAProtoESP, spi, us4, us4b); err != nil {
			t.Fatal(err)
		}
		if got := run(t, objs.XdpWan, to(us4, spi)); got != xdpDrop {
			t.Errorf("SPI %#x at the old address: verdict %d, want drop", spi, got)
		}
		if got := run(t, objs.XdpWan, to(us4b, spi)); got == xdpDrop {
			t.Errorf("SPI %#x at the new address: dropped", spi)
		}
		sa, err := s.SA.Get(maps.SAProtoESP, spi, us4b)
		if err != nil {
			t.Fatal(err)
		}
		if sa.RxSeenPackets != 3 || sa.CPU != 1 {
			t.Errorf("SPI %#x after the move: %d packets on CPU %d, want 3 on 1", spi, sa.RxSeenPackets, sa.CPU)
		}
		if _, err := s.SA.Get(maps.SAProtoESP, spi, us4); !errors.Is(err, maps.ErrNoSA) {
			t.Errorf("SPI %#x still at the old address: %v", spi, err)
		}
		if err := s.SA.Move(maps.SAProtoESP, spi, us4, us4b); !errors.Is(err, maps.ErrNoSA) {
			t.Errorf("moving SPI %#x from where it is not: %v, want ErrNoSA", spi, err)
		}
	}
}
