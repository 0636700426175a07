package xfrm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Selector says which packets a policy (or a transport-mode SA) applies
// to. XFRM matches a port exactly or not at all: strongSwan installs a
// port range as "any port", and so does Policies' caller have to.
//
// For ICMP and ICMPv6 the kernel matches the message type as the source
// port and the code as the destination port (xfrm_flowi_sport/dport in
// include/net/xfrm.h). Type 0 (echo reply) and code 0 are real values,
// so there a port of 0 is made exact with its mask.
type Selector struct {
	Src, Dst netip.Prefix // an invalid (zero) prefix is any address of the other's family
	Proto    uint8        // IP protocol, 0 for any
	SrcPort  uint16       // 0 for any, unless SrcPortMask says otherwise
	DstPort  uint16       // 0 for any, unless DstPortMask says otherwise
	// SrcPortMask and DstPortMask are the bits of the port that must
	// match; 0 means all of them for a non-zero port and none for port 0.
	SrcPortMask, DstPortMask uint16
}

// portMask is the mask a port is installed with (see Selector).
func portMask(port, mask uint16) uint16 {
	if mask == 0 && port != 0 {
		return 0xffff
	}
	return mask
}

// IsZero reports whether the selector is unset.
func (s Selector) IsZero() bool { return s == Selector{} }

func (s Selector) String() string {
	var b strings.Builder
	b.WriteString(prefixString(s.Src, s.Dst))
	b.WriteString(portString(s.SrcPort, s.SrcPortMask))
	b.WriteString(" === ")
	b.WriteString(prefixString(s.Dst, s.Src))
	b.WriteString(portString(s.DstPort, s.DstPortMask))
	if s.Proto != 0 {
		b.WriteString(" proto " + strconv.Itoa(int(s.Proto)))
	}
	return b.String()
}

// portString is "[port]", "[port/mask]" for a partial mask, empty for
// any port.
func portString(port, mask uint16) string {
	switch mask = portMask(port, mask); mask {
	case 0:
		return ""
	case 0xffff:
		return "[" + strconv.Itoa(int(port)) + "]"
	}
	return "[" + strconv.Itoa(int(port)) + "/" + fmt.Sprintf("%#04x", mask) + "]"
}

// normalized spells an unset prefix out as the family's any prefix, as
// the kernel reports it.
func (s Selector) normalized() Selector {
	fam, err := s.family()
	if err != nil {
		return s
	}
	anyP := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if fam == unix.AF_INET6 {
		anyP = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if !s.Src.IsValid() {
		s.Src = anyP
	}
	if !s.Dst.IsValid() {
		s.Dst = anyP
	}
	return s
}

func prefixString(p, other netip.Prefix) string {
	if p.IsValid() {
		return p.String()
	}
	if other.IsValid() && other.Addr().Is6() {
		return "::/0"
	}
	return "0.0.0.0/0"
}

// family is the selector's address family; both prefixes must agree.
func (s Selector) family() (uint16, error) {
	src, dst := s.Src.Addr().Unmap(), s.Dst.Addr().Unmap()
	switch {
	case s.Src.IsValid() && s.Dst.IsValid() && src.Is4() != dst.Is4():
		return 0, fmt.Errorf("selector %s mixes IPv4 and IPv6", s)
	case s.Src.IsValid():
		return familyOf(src), nil
	case s.Dst.IsValid():
		return familyOf(dst), nil
	}
	return 0, fmt.Errorf("selector has neither source nor destination prefix")
}

func (s Selector) encode() (nl.XfrmSelector, error) {
	var sel nl.XfrmSelector
	fam, err := s.family()
	if err != nil {
		return sel, err
	}
	sel.Family = fam
	if s.Src.IsValid() {
		p := s.Src.Masked()
		sel.Saddr = xfrmAddr(p.Addr())
		sel.PrefixlenS = uint8(unmapBits(p))
	}
	if s.Dst.IsValid() {
		p := s.Dst.Masked()
		sel.Daddr = xfrmAddr(p.Addr())
		sel.PrefixlenD = uint8(unmapBits(p))
	}
	sel.Proto = s.Proto
	if m := portMask(s.SrcPort, s.SrcPortMask); m != 0 {
		sel.Sport, sel.SportMask = be16(s.SrcPort&m), be16(m)
	}
	if m := portMask(s.DstPort, s.DstPortMask); m != 0 {
		sel.Dport, sel.DportMask = be16(s.DstPort&m), be16(m)
	}
	return sel, nil
}

// selectorFrom reads a kernel selector; family 0 (an SA for any family)
// gives the zero Selector.
func selectorFrom(sel *nl.XfrmSelector) Selector {
	if sel.Family != unix.AF_INET && sel.Family != unix.AF_INET6 {
		return Selector{}
	}
	s := Selector{
		Src:   netip.PrefixFrom(addrFrom(sel.Family, sel.Saddr), int(sel.PrefixlenS)),
		Dst:   netip.PrefixFrom(addrFrom(sel.Family, sel.Daddr), int(sel.PrefixlenD)),
		Proto: sel.Proto,
	}
	s.SrcPort, s.SrcPortMask = portFrom(sel.Sport, sel.SportMask)
	s.DstPort, s.DstPortMask = portFrom(sel.Dport, sel.DportMask)
	return s
}

// portFrom reads a kernel port and mask (network order) the way Selector
// writes them: an exact non-zero port without its mask.
func portFrom(port, mask uint16) (uint16, uint16) {
	port, mask = fromBE16(port), fromBE16(mask)
	if mask == 0 {
		return 0, 0
	}
	if mask == 0xffff && port != 0 {
		return port, 0
	}
	return port & mask, mask
}

func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

func familyOf(a netip.Addr) uint16 {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// xfrmAddr lays an address out as xfrm_address_t: IPv4 in the first four
// bytes.
func xfrmAddr(a netip.Addr) nl.XfrmAddress {
	var x nl.XfrmAddress
	a = a.Unmap()
	if a.Is4() {
		v4 := a.As4()
		copy(x[:], v4[:])
	} else if a.Is6() {
		x = a.As16()
	}
	return x
}

func addrFrom(family uint16, x nl.XfrmAddress) netip.Addr {
	if family == unix.AF_INET {
		return netip.AddrFrom4([4]byte(x[:4]))
	}
	return netip.AddrFrom16(x)
}

// be16 stores a port in network order in a field the host reads natively.
func be16(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return native.Uint16(b[:])
}

func fromBE16(v uint16) uint16 {
	var b [2]byte
	native.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

func be32(v uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return native.Uint32(b[:])
}

func fromBE32(v uint32) uint32 {
	var b [4]byte
	native.PutUint32(b[:], v)
	return binary.BigEndian.Uint32(b[:])
}
