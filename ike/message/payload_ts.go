package message

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Traffic Selector payloads TSi and TSr (RFC 7296 section 3.13):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Number of TSs |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       <Traffic Selectors>                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Traffic selector (section 3.13.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   TS Type     |IP Protocol ID*|       Selector Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Start Port*         |           End Port*           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Starting Address*                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Ending Address*                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// (* fields of the address-range types.) Selector Length is 16 for
// TS_IPV4_ADDR_RANGE and 40 for TS_IPV6_ADDR_RANGE. Other TS types (Fibre
// Channel, security labels) only share the first four octets; their bodies
// are kept as octets so that the exchange can answer for them.
//
// Ports are not checked for Start <= End: Start 65535 with End 0 is how
// RFC 7296 writes OPAQUE ports.
const (
	tsPayloadFixedLen = 4  // Number of TSs and RESERVED
	tsHeaderLen       = 4  // TS Type, IP Protocol ID, Selector Length
	tsIPv4Len         = 16 // TS_IPV4_ADDR_RANGE selector
	tsIPv6Len         = 40 // TS_IPV6_ADDR_RANGE selector
)

// TrafficSelectors is the body shared by TSi and TSr.
type TrafficSelectors struct {
	Selectors []TrafficSelector
}

// TSi is the initiator's Traffic Selector payload.
type TSi struct{ TrafficSelectors }

// TSr is the responder's Traffic Selector payload.
type TSr struct{ TrafficSelectors }

func (*TSi) Type() PayloadType { return PayloadTSi }
func (*TSr) Type() PayloadType { return PayloadTSr }

func (p *TSi) appendBody(b []byte) ([]byte, error) { return p.TrafficSelectors.appendBody(b) }
func (p *TSr) appendBody(b []byte) ([]byte, error) { return p.TrafficSelectors.appendBody(b) }

// TrafficSelector is one traffic selector.
type TrafficSelector struct {
	TSType TSType
	// IPProtocol is the IP protocol number, 0 for any. For TS types
	// other than the address ranges it holds the second octet as sent.
	IPProtocol uint8
	// StartPort and EndPort are the port range (ICMP: type and code in
	// the two octets).
	StartPort, EndPort uint16
	// StartAddress and EndAddress are the address range, both IPv4 for
	// TS_IPV4_ADDR_RANGE and both IPv6 for TS_IPV6_ADDR_RANGE.
	StartAddress, EndAddress netip.Addr
	// Opaque is the selector after its first four octets for TS types
	// other than the address ranges; nil for those.
	Opaque []byte
}

func (ts *TrafficSelectors) appendBody(b []byte) ([]byte, error) {
	if len(ts.Selectors) > 0xff {
		return b, fmt.Errorf("%d traffic selectors: %w", len(ts.Selectors), ErrTooLarge)
	}
	b = append(b, byte(len(ts.Selectors)), 0, 0, 0)
	for i := range ts.Selectors {
		var err error
		if b, err = ts.Selectors[i].append(b); err != nil {
			return b, fmt.Errorf("traffic selector %d: %w", i+1, err)
		}
	}
	return b, nil
}

func (s *TrafficSelector) append(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, byte(s.TSType), s.IPProtocol, 0, 0)
	switch s.TSType {
	case TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE:
		is4 := s.TSType == TS_IPV4_ADDR_RANGE
		for _, a := range []netip.Addr{s.StartAddress, s.EndAddress} {
			if !a.IsValid() || a.Is4() != is4 || a.Zone() != "" {
				return b, fmt.Errorf("%v with address %v: %w", s.TSType, a, ErrMalformed)
			}
		}
		if len(s.Opaque) != 0 {
			return b, fmt.Errorf("%v with opaque body: %w", s.TSType, ErrMalformed)
		}
		b = binary.BigEndian.AppendUint16(b, s.StartPort)
		b = binary.BigEndian.AppendUint16(b, s.EndPort)
		b = append(b, s.StartAddress.AsSlice()...)
		b = append(b, s.EndAddress.AsSlice()...)
	default:
		if s.StartPort != 0 || s.EndPort != 0 || s.StartAddress.IsValid() || s.EndAddress.IsValid() {
			return b, fmt.Errorf("%v with ports or addresses: %w", s.TSType, ErrMalformed)
		}
		b = append(b, s.Opaque...)
	}
	return putLength16(b, start, "traffic selector")
}

func unmarshalTrafficSelectors(b []byte) (TrafficSelectors, error) {
	var ts TrafficSelectors
	if len(b) < tsPayloadFixedLen {
		return ts, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	count := int(b[0])
	b = b[tsPayloadFixedLen:]
	if count > 0 {
		ts.Selectors = make([]TrafficSelector, 0, min(count, len(b)/tsHeaderLen))
	}
	for i := 1; i <= count; i++ {
		if len(b) < tsHeaderLen {
			return ts, fmt.Errorf("traffic selector %d of %d: header of %d octets: %w", i, count, len(b), ErrTruncated)
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < tsHeaderLen {
			return ts, fmt.Errorf("traffic selector %d: length %d: %w", i, n, ErrBadLength)
		}
		if n > len(b) {
			return ts, fmt.Errorf("traffic selector %d: length %d, %d octets left: %w", i, n, len(b), ErrTruncated)
		}
		s, err := unmarshalTrafficSelector(b[:n])
		if err != nil {
			return ts, fmt.Errorf("traffic selector %d: %w", i, err)
		}
		ts.Selectors = append(ts.Selectors, s)
		b = b[n:]
	}
	if len(b) != 0 {
		return ts, fmt.Errorf("%d octets after the %d traffic selectors announced: %w", len(b), count, ErrBadLength)
	}
	return ts, nil
}

// unmarshalTrafficSelector decodes one selector, b being exactly Selector
// Length octets.
func unmarshalTrafficSelector(b []byte) (TrafficSelector, error) {
	s := TrafficSelector{TSType: TSType(b[0]), IPProtocol: b[1]}
	var want int
	switch s.TSType {
	case TS_IPV4_ADDR_RANGE:
		want = tsIPv4Len
	case TS_IPV6_ADDR_RANGE:
		want = tsIPv6Len
	default:
		s.Opaque = clone(b[tsHeaderLen:])
		return s, nil
	}
	if len(b) != want {
		return s, fmt.Errorf("%v of %d octets, want %d: %w", s.TSType, len(b), want, ErrBadLength)
	}
	s.StartPort = binary.BigEndian.Uint16(b[4:6])
	s.EndPort = binary.BigEndian.Uint16(b[6:8])
	alen := (want - 8) / 2
	s.StartAddress, _ = netip.AddrFromSlice(b[8 : 8+alen])
	s.EndAddress, _ = netip.AddrFromSlice(b[8+alen : 8+2*alen])
	return s, nil
}
