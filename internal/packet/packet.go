// Package packet builds the packets xdpsec's programs are tested,
// benchmarked and probed with: Ethernet (optionally one VLAN tag), IPv4 or
// IPv6 (optionally with extension headers or as a fragment), and UDP, TCP,
// ESP or any other payload. Checksums are filled in where the protocol has
// them, so a built packet is valid on the wire.
package packet

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers used here.
const (
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoESP    = 50
	ProtoAH     = 51
	ProtoICMP   = 1
	ProtoICMPv6 = 58
)

// Ports of IKE and NAT-T (RFC 7296, RFC 3948).
const (
	PortIKE  = 500
	PortNATT = 4500
)

// Spec describes a packet. Zero values give sensible defaults.
type Spec struct {
	Src, Dst netip.Addr
	VLAN     uint16 // 802.1Q VLAN ID, 0: untagged
	NoEth    bool   // start at the IP header (raw socket payloads)

	Proto   uint8  // IP protocol of Payload when L4 is nil
	Payload []byte // the IP payload, or the L4 payload when L4 is set

	// IPv6 extension headers before the payload: next-header values of
	// hop-by-hop (0), routing (43), destination options (60), each 8 bytes.
	IPv6Ext []uint8
	// Fragment: FragOffset in 8-byte units; MoreFragments sets MF.
	Fragment      bool
	FragOffset    uint16
	MoreFragments bool
	TTL           uint8
}

// Build lays the packet out.
func Build(s Spec) []byte {
	var l3 []byte
	if s.Src.Is4() {
		l3 = ipv4(s)
	} else {
		l3 = ipv6(s)
	}
	if s.NoEth {
		return l3
	}
	eth := make([]byte, 14, 18+len(l3))
	copy(eth[0:6], []byte{0x02, 0, 0, 0, 0, 2})
	copy(eth[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	etype := uint16(0x0800)
	if !s.Src.Is4() {
		etype = 0x86dd
	}
	if s.VLAN != 0 {
		binary.BigEndian.PutUint16(eth[12:], 0x8100)
		eth = binary.BigEndian.AppendUint16(eth, s.VLAN&0x0fff)
		eth = binary.BigEndian.AppendUint16(eth, etype)
	} else {
		binary.BigEndian.PutUint16(eth[12:], etype)
	}
	return append(eth, l3...)
}

func ipv4(s Spec) []byte {
	h := make([]byte, 20, 20+len(s.Payload))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(s.Payload)))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	var frag uint16
	if s.Fragment {
		frag = s.FragOffset & 0x1fff
		if s.MoreFragments {
			frag |= 0x2000
		}
	}
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8] = ttl(s.TTL)
	h[9] = s.Proto
	src, dst := s.Src.As4(), s.Dst.As4()
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
	return append(h, s.Payload...)
}

func ttl(t uint8) uint8 {
	if t == 0 {
		return 64
	}
	return t
}

func ipv6(s Spec) []byte {
	var ext []byte
	next := s.Proto
	// Build extension headers back to front so each names the one after it.
	headers := append([]uint8(nil), s.IPv6Ext...)
	if s.Fragment {
		headers = append(headers, 44)
	}
	for i := len(headers) - 1; i >= 0; i-- {
		var e []byte
		if headers[i] == 44 {
			e = make([]byte, 8)
			off := s.FragOffset << 3
			if s.MoreFragments {
				off |= 1
			}
			binary.BigEndian.PutUint16(e[2:], off)
			binary.BigEndian.PutUint32(e[4:], 0xabcd)
		} else {
			e = make([]byte, 8) // length 0: 8 octets, PadN filled
			e[2], e[3] = 1, 4
		}
		e[0] = next
		next = headers[i]
		ext = append(e, ext...)
	}
	h := make([]byte, 40, 40+len(ext)+len(s.Payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(ext)+len(s.Payload)))
	h[6] = next
	h[7] = ttl(s.TTL)
	src, dst := s.Src.As16(), s.Dst.As16()
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	h = append(h, ext...)
	return append(h, s.Payload...)
}

// Checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func Checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// pseudoSum is the sum of the transport pseudo-header (RFC 768, RFC 8200 8.1).
func pseudoSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		add(a[:])
		add(b[:])
	} else {
		a, b := src.As16(), dst.As16()
		add(a[:])
		add(b[:])
	}
	sum += uint32(proto) + uint32(length)
	return sum
}

// UDP returns a UDP header and payload with its checksum for src->dst.
func UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	u = append(u, payload...)
	c := Checksum(u, pseudoSum(src, dst, ProtoUDP, len(u)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return u
}

// TCPFlags of the TCP header.
const (
	TCPSyn = 0x02
	TCPAck = 0x10
)

// TCP returns a TCP header with options (padded to 4 bytes) and payload,
// checksummed for src->dst.
func TCP(src, dst netip.Addr, sport, dport uint16, flags uint8, options, payload []byte) []byte {
	opts := append([]byte(nil), options...)
	for len(opts)%4 != 0 {
		opts = append(opts, 0) // EOL
	}
	hlen := 20 + len(opts)
	t := make([]byte, 20, hlen+len(payload))
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], 1000)
	t[12] = byte(hlen/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], 65535)
	t = append(t, opts...)
	t = append(t, payload...)
	binary.BigEndian.PutUint16(t[16:], Checksum(t, pseudoSum(src, dst, ProtoTCP, len(t))))
	return t
}

// TCPChecksumOK verifies a TCP segment's checksum.
func TCPChecksumOK(src, dst netip.Addr, seg []byte) bool {
	return Checksum(seg, pseudoSum(src, dst, ProtoTCP, len(seg))) == 0
}

// MSSOption is the TCP MSS option (kind 2, length 4).
func MSSOption(mss uint16) []byte {
	return []byte{2, 4, byte(mss >> 8), byte(mss)}
}

// ESP returns an ESP header (SPI, sequence number) followed by n bytes of
// stand-in ciphertext.
func ESP(spi, seq uint32, n int) []byte {
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint32(b[0:], spi)
	binary.BigEndian.PutUint32(b[4:], seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// AH returns an AH header (RFC 4302 section 2) with a 96-bit ICV of
// made-up bytes and n bytes of payload after it: next header IPv4-in-IP
// (tunnel mode), Payload Len in 32-bit words minus 2.
func AH(spi, seq uint32, n int) []byte {
	const icv = 12
	b := make([]byte, 12+icv+n)
	b[0] = 4                    // next header: IPv4
	b[1] = byte((12+icv)/4 - 2) // Payload Len
	binary.BigEndian.PutUint32(b[4:], spi)
	binary.BigEndian.PutUint32(b[8:], seq)
	for i := 12; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// IKEHeader returns an IKE header (RFC 7296 3.1) with the given fields and
// no payloads: enough for anything that classifies IKE messages.
func IKEHeader(ispi, rspi uint64, major uint8, exchange, flags uint8, msgID uint32) []byte {
	h := make([]byte, 28)
	binary.BigEndian.PutUint64(h[0:], ispi)
	binary.BigEndian.PutUint64(h[8:], rspi)
	h[16] = 0 // next payload: none
	h[17] = major<<4 | 0
	h[18] = exchange
	h[19] = flags
	binary.BigEndian.PutUint32(h[20:], msgID)
	binary.BigEndian.PutUint32(h[24:], 28)
	return h
}

// IKESAInit is an IKEv2 IKE_SA_INIT request opening a new SA.
func IKESAInit(ispi uint64) []byte {
	return IKEHeader(ispi, 0, 2, 34, 0x08, 0)
}

// NonESPMarker prefixes IKE on port 4500 (RFC 3948 2.2).
var NonESPMarker = []byte{0, 0, 0, 0}
