package ike

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdpsec/xdpsec/ike/message"
)

// TrafficSelector is one traffic selector (RFC 7296 section 3.13.1): an
// address range, an IP protocol (0 for any) and a port range.
type TrafficSelector struct {
	Protocol           uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
}

var protocolNames = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}

// ParseTS parses a selector as swanctl.conf's local_ts and remote_ts write
// it: a prefix ("10.1.0.0/16"), an address, a range ("10.1.0.1-10.1.0.9"),
// optionally followed by "[proto/port]" ("[tcp/80]", "[udp]", "[6/1024-2048]").
// "dynamic" is resolved by the caller.
func ParseTS(s string) (TrafficSelector, error) {
	ts := TrafficSelector{EndPort: 0xffff}
	addr, rest, hasProto := strings.Cut(strings.TrimSpace(s), "[")
	if hasProto {
		if !strings.HasSuffix(rest, "]") {
			return ts, fmt.Errorf("traffic selector %q: missing ]", s)
		}
		proto, port, hasPort := strings.Cut(strings.TrimSuffix(rest, "]"), "/")
		if p, ok := protocolNames[proto]; ok {
			ts.Protocol = p
		} else if proto != "" && proto != "any" {
			n, err := strconv.ParseUint(proto, 10, 8)
			if err != nil {
				return ts, fmt.Errorf("traffic selector %q: protocol %q", s, proto)
			}
			ts.Protocol = uint8(n)
		}
		if hasPort && port != "" && port != "any" {
			lo, hi, isRange := strings.Cut(port, "-")
			a, err1 := strconv.ParseUint(lo, 10, 16)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.ParseUint(hi, 10, 16)
			}
			if err1 != nil || err2 != nil || a > b {
				return ts, fmt.Errorf("traffic selector %q: port %q", s, port)
			}
			ts.StartPort, ts.EndPort = uint16(a), uint16(b)
		}
	}
	switch {
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return ts, fmt.Errorf("traffic selector %q: %w", s, err)
		}
		ts.Start, ts.End = prefixRange(p.Masked())
	case strings.Contains(addr, "-"):
		lo, hi, _ := strings.Cut(addr, "-")
		a, err1 := netip.ParseAddr(lo)
		b, err2 := netip.ParseAddr(hi)
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() || b.Less(a) {
			return ts, fmt.Errorf("traffic selector %q: bad range", s)
		}
		ts.Start, ts.End = a, b
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return ts, fmt.Errorf("traffic selector %q: %w", s, err)
		}
		ts.Start, ts.End = a, a
	}
	return ts, nil
}

// HostTS is the selector of one address, all protocols and ports.
func HostTS(a netip.Addr) TrafficSelector {
	return TrafficSelector{Start: a.Unmap(), End: a.Unmap(), EndPort: 0xffff}
}

func prefixRange(p netip.Prefix) (netip.Addr, netip.Addr) {
	start := p.Addr()
	b := start.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	end, _ := netip.AddrFromSlice(b)
	return start, end
}

// Prefix returns the selector's address range as a prefix if it is one.
func (ts TrafficSelector) Prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= ts.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(ts.Start, bits)
		if p.Masked().Addr() != ts.Start {
			continue
		}
		if _, end := prefixRange(p); end == ts.End {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// String formats the selector as charon logs it: "10.1.0.0/16",
// "10.1.0.1..10.1.0.9", "10.1.0.0/16[tcp/80]".
func (ts TrafficSelector) String() string {
	var b strings.Builder
	if p, ok := ts.Prefix(); ok {
		b.WriteString(p.String())
	} else {
		b.WriteString(ts.Start.String() + ".." + ts.End.String())
	}
	if ts.Protocol == 0 && ts.StartPort == 0 && ts.EndPort == 0xffff {
		return b.String()
	}
	b.WriteByte('[')
	name := strconv.Itoa(int(ts.Protocol))
	for n, p := range protocolNames {
		if p == ts.Protocol {
			name = n
		}
	}
	if ts.Protocol != 0 {
		b.WriteString(name)
	}
	if ts.StartPort != 0 || ts.EndPort != 0xffff {
		b.WriteByte('/')
		if ts.StartPort == ts.EndPort {
			b.WriteString(strconv.Itoa(int(ts.StartPort)))
		} else {
			b.WriteString(strconv.Itoa(int(ts.StartPort)) + "-" + strconv.Itoa(int(ts.EndPort)))
		}
	}
	b.WriteByte(']')
	return b.String()
}

func formatTS(list []TrafficSelector) string {
	s := make([]string, len(list))
	for i, ts := range list {
		s[i] = ts.String()
	}
	return strings.Join(s, " ")
}

// Contains reports whether o lies entirely inside ts.
func (ts TrafficSelector) Contains(o TrafficSelector) bool {
	i, ok := ts.Intersect(o)
	return ok && i == o
}

// Intersect returns the selector both ts and o cover (RFC 7296 section 2.9
// narrowing).
func (ts TrafficSelector) Intersect(o TrafficSelector) (TrafficSelector, bool) {
	var r TrafficSelector
	if ts.Start.Is4() != o.Start.Is4() || !ts.Start.IsValid() || !o.Start.IsValid() {
		return r, false
	}
	switch {
	case ts.Protocol == 0:
		r.Protocol = o.Protocol
	case o.Protocol == 0 || o.Protocol == ts.Protocol:
		r.Protocol = ts.Protocol
	default:
		return r, false
	}
	r.StartPort, r.EndPort = max(ts.StartPort, o.StartPort), min(ts.EndPort, o.EndPort)
	if r.StartPort > r.EndPort {
		return r, false
	}
	r.Start, r.End = ts.Start, ts.End
	if ts.Start.Less(o.Start) {
		r.Start = o.Start
	}
	if o.End.Less(ts.End) {
		r.End = o.End
	}
	if r.End.Less(r.Start) {
		return r, false
	}
	return r, true
}

// narrowTS returns the part of the peer's proposed selectors that our
// configured ones allow, in the order of our configuration.
func narrowTS(configured, proposed []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, c := range configured {
		for _, p := range proposed {
			if i, ok := c.Intersect(p); ok && !containsTS(out, i) {
				out = append(out, i)
			}
		}
	}
	return out
}

func containsTS(list []TrafficSelector, ts TrafficSelector) bool {
	for _, t := range list {
		if t == ts {
			return true
		}
	}
	return false
}

// subsetTS reports whether every selector in got lies inside one of offered.
func subsetTS(got, offered []TrafficSelector) bool {
	for _, g := range got {
		ok := false
		for _, o := range offered {
			if o.Contains(g) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(got) > 0
}

func tsToWire(list []TrafficSelector) message.TrafficSelectors {
	var out message.TrafficSelectors
	for _, ts := range list {
		t := message.TS_IPV4_ADDR_RANGE
		if !ts.Start.Is4() {
			t = message.TS_IPV6_ADDR_RANGE
		}
		out.Selectors = append(out.Selectors, message.TrafficSelector{
			TSType: t, IPProtocol: ts.Protocol, StartPort: ts.StartPort, EndPort: ts.EndPort,
			StartAddress: ts.Start, EndAddress: ts.End,
		})
	}
	return out
}

// tsFromWire keeps the address range selectors; others (Fibre Channel,
// security labels) cannot be installed and are left out.
func tsFromWire(w message.TrafficSelectors) []TrafficSelector {
	var out []TrafficSelector
	for _, s := range w.Selectors {
		if s.TSType != message.TS_IPV4_ADDR_RANGE && s.TSType != message.TS_IPV6_ADDR_RANGE {
			continue
		}
		if !s.StartAddress.IsValid() || !s.EndAddress.IsValid() || s.EndAddress.Less(s.StartAddress) || s.StartPort > s.EndPort {
			continue
		}
		out = append(out, TrafficSelector{Protocol: s.IPProtocol, StartPort: s.StartPort, EndPort: s.EndPort,
			Start: s.StartAddress, End: s.EndAddress})
	}
	return out
}
