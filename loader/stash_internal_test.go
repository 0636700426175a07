package loader

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/internal/packet"
)

// TestCompleteUDPChecksum: a UDP checksum left partial (or wrong) is
// replaced by the right one over IPv4 and IPv6; a correct one, a zero
// one over IPv4, a fragment and other protocols stay as they are.
func TestCompleteUDPChecksum(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.1")
	v6a, v6b := netip.MustParseAddr("2001:db8:1::7"), netip.MustParseAddr("2001:db8:2::1")
	esp := packet.ESP(0xc0000005, 1, 48)
	udp := func(src, dst netip.Addr) []byte {
		return packet.Build(packet.Spec{Src: src, Dst: dst, Proto: packet.ProtoUDP, Payload: packet.UDP(src, dst, 4500, 4500, esp)})
	}
	for _, c := range []struct {
		name  string
		frame []byte
		csum  int // offset of the UDP checksum
	}{
		{"ipv4", udp(v4a, v4b), 14 + 20 + 6},
		{"ipv6", udp(v6a, v6b), 14 + 40 + 6},
	} {
		good := bytes.Clone(c.frame)
		completeUDPChecksum(c.frame)
		if !bytes.Equal(c.frame, good) {
			t.Errorf("%s: a correct checksum was changed", c.name)
		}
		c.frame[c.csum], c.frame[c.csum+1] = 0x12, 0x34 // as a partial checksum looks
		completeUDPChecksum(c.frame)
		if !bytes.Equal(c.frame, good) {
			t.Errorf("%s: checksum %x after completing, want %x", c.name, c.frame[c.csum:c.csum+2], good[c.csum:c.csum+2])
		}
	}
	zero := udp(v4a, v4b)
	zero[14+20+6], zero[14+20+7] = 0, 0
	want := bytes.Clone(zero)
	completeUDPChecksum(zero)
	if !bytes.Equal(zero, want) {
		t.Error("an IPv4 datagram without a checksum got one")
	}
	frag := udp(v4a, v4b)
	frag[14+6] |= 0x20 // more fragments
	frag[14+20+6] ^= 0xff
	want = bytes.Clone(frag)
	completeUDPChecksum(frag)
	if !bytes.Equal(frag, want) {
		t.Error("a fragment's checksum was changed")
	}
	raw := packet.Build(packet.Spec{Src: v4a, Dst: v4b, Proto: packet.ProtoESP, Payload: esp})
	want = bytes.Clone(raw)
	completeUDPChecksum(raw)
	if !bytes.Equal(raw, want) {
		t.Error("ESP without UDP was changed")
	}
	completeUDPChecksum(raw[:20]) // short: no panic
}
