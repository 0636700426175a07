package isakmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Identification is the ID payload with the IPsec DOI's fields (RFC 2407
// section 4.6.2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!   ID Type     !  Protocol ID  !             Port              !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                     Identification Data                       ~
//
// In phase 1 it names a peer; in Quick Mode (IDci, IDcr) it is a selector.
type Identification struct {
	IDType   IDType
	Protocol uint8
	Port     uint16
	Data     []byte
}

func (*Identification) Type() PayloadType { return PayloadID }

func (p *Identification) Body() ([]byte, error) {
	b := []byte{byte(p.IDType), p.Protocol}
	b = binary.BigEndian.AppendUint16(b, p.Port)
	return append(b, p.Data...), nil
}

// addrLen is the data length of address types, 0 for the others.
func (t IDType) addrLen() int {
	switch t {
	case IDIPv4Addr:
		return 4
	case IDIPv4AddrSubnet, IDIPv4AddrRange:
		return 8
	case IDIPv6Addr:
		return 16
	case IDIPv6AddrSubnet, IDIPv6AddrRange:
		return 32
	}
	return 0
}

func decodeID(b []byte) (*Identification, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("ID header: %w", ErrTruncated)
	}
	id := &Identification{IDType: IDType(b[0]), Protocol: b[1], Port: binary.BigEndian.Uint16(b[2:]), Data: orNil(b[4:])}
	if n := id.IDType.addrLen(); n != 0 && len(id.Data) != n {
		return nil, fmt.Errorf("%v with %d octets: %w", id.IDType, len(id.Data), ErrMalformed)
	}
	return id, nil
}

// Range returns the addresses an ID of an address type covers: one
// address, a subnet (address and mask; the mask must be contiguous) or a
// range.
func (p *Identification) Range() (first, last netip.Addr, err error) {
	if n := p.IDType.addrLen(); n == 0 || len(p.Data) != n {
		return first, last, fmt.Errorf("%v is not an address: %w", p.IDType, ErrMalformed)
	}
	switch p.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		a, _ := netip.AddrFromSlice(p.Data)
		return a, a, nil
	case IDIPv4AddrRange, IDIPv6AddrRange:
		h := len(p.Data) / 2
		first, _ = netip.AddrFromSlice(p.Data[:h])
		last, _ = netip.AddrFromSlice(p.Data[h:])
		if last.Less(first) {
			return first, last, fmt.Errorf("range %s-%s: %w", first, last, ErrMalformed)
		}
		return first, last, nil
	}
	h := len(p.Data) / 2
	addr, mask := p.Data[:h], p.Data[h:]
	_, ok := maskBits(mask)
	if !ok {
		return first, last, fmt.Errorf("mask %x is not contiguous: %w", mask, ErrMalformed)
	}
	lo, hi := make([]byte, h), make([]byte, h)
	for i := range h {
		lo[i] = addr[i] & mask[i]
		hi[i] = addr[i] | ^mask[i]
	}
	first, _ = netip.AddrFromSlice(lo)
	last, _ = netip.AddrFromSlice(hi)
	return first, last, nil
}

func maskBits(m []byte) (int, bool) {
	n, zero := 0, false
	for _, x := range m {
		for bit := 7; bit >= 0; bit-- {
			if x&(1<<bit) != 0 {
				if zero {
					return 0, false
				}
				n++
			} else {
				zero = true
			}
		}
	}
	return n, true
}

// SubnetID returns an ID_IPV4_ADDR_SUBNET or ID_IPV6_ADDR_SUBNET for p
// (ID_IPV4_ADDR / ID_IPV6_ADDR for a host prefix, as strongSwan sends).
func SubnetID(p netip.Prefix, protocol uint8, port uint16) *Identification {
	p = p.Masked()
	a := p.Addr()
	if p.IsSingleIP() {
		t := IDIPv4Addr
		if a.Is6() {
			t = IDIPv6Addr
		}
		return &Identification{IDType: t, Protocol: protocol, Port: port, Data: a.AsSlice()}
	}
	t := IDIPv4AddrSubnet
	if a.Is6() {
		t = IDIPv6AddrSubnet
	}
	mask := make([]byte, a.BitLen()/8)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return &Identification{IDType: t, Protocol: protocol, Port: port, Data: append(a.AsSlice(), mask...)}
}

// RangeID returns an ID_IPV4_ADDR_RANGE or ID_IPV6_ADDR_RANGE.
func RangeID(first, last netip.Addr, protocol uint8, port uint16) *Identification {
	t := IDIPv4AddrRange
	if first.Is6() {
		t = IDIPv6AddrRange
	}
	return &Identification{IDType: t, Protocol: protocol, Port: port, Data: append(first.AsSlice(), last.AsSlice()...)}
}
