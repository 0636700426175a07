package maps

import (
	"fmt"
	"net/netip"

	"github.com/xdpsec/xdpsec/bpf"
)

// Family is the address family as the BPF side keys it: the IP version.
type Family = bpf.XdpsecXsFamily

const (
	FamilyIPv4 = bpf.XdpsecXsFamilyXS_FAMILY_IPV4
	FamilyIPv6 = bpf.XdpsecXsFamilyXS_FAMILY_IPV6
)

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// addrBytes lays an address out as the 16-byte key fields want it: IPv4 in
// the first four bytes, the rest zero.
func addrBytes(a netip.Addr) [16]byte {
	var b [16]byte
	if a.Is4() {
		v4 := a.As4()
		copy(b[:], v4[:])
		return b
	}
	return a.As16()
}

func addrFrom(f Family, b [16]byte) (netip.Addr, error) {
	switch f {
	case FamilyIPv4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case FamilyIPv6:
		return netip.AddrFrom16(b), nil
	}
	return netip.Addr{}, fmt.Errorf("unknown address family %d", f)
}

// unmap turns IPv4-mapped IPv6 addresses into IPv4 so that each address
// has one key.
func unmap(a netip.Addr) netip.Addr {
	return a.Unmap()
}
