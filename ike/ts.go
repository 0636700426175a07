package ike

import (
	"net/netip"
	"strconv"

	"github.com/xdpsec/xdpsec/ike/message"
)

// TrafficSelector is one traffic selector (RFC 7296 section 3.13.1): an
// address range, an IP protocol (0 for any) and a port range.
type TrafficSelector struct {
	Protocol           uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
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
// "10.1.0.1..10.1.0.9", "10.1.0.0/16[tcp/80]", "10.1.0.0/16[icmp/8]".
func (ts TrafficSelector) String() string {
	var buf [64]byte
	return string(ts.appendTo(buf[:0]))
}

func (ts TrafficSelector) appendTo(b []byte) []byte {
	// As String would print them, invalid values included.
	addr := func(b []byte, a netip.Addr) []byte {
		if !a.IsValid() {
			return append(b, "invalid IP"...)
		}
		return a.AppendTo(b)
	}
	if p, ok := ts.Prefix(); ok && p.IsValid() {
		b = p.AppendTo(b)
	} else if ok {
		b = append(b, "invalid Prefix"...)
	} else {
		b = addr(b, ts.Start)
		b = append(b, ".."...)
		b = addr(b, ts.End)
	}
	if ts.Protocol == 0 && ts.anyPort() {
		return b
	}
	b = append(b, '[')
	if ts.Protocol != 0 {
		b = append(b, protocolName(ts.Protocol)...)
	}
	b = append(b, ts.portSuffix()...)
	return append(b, ']')
}

func (ts TrafficSelector) anyPort() bool { return ts.StartPort == 0 && ts.EndPort == 0xffff }

// portSuffix is "/port" or "/from-to", empty for any port; ICMP and
// ICMPv6 write type and code as charon does ("/8", "/3(4)", "/8-9").
func (ts TrafficSelector) portSuffix() string {
	switch {
	case ts.anyPort():
		return ""
	case isICMP(ts.Protocol) && !ts.Opaque():
		if ts.StartPort == ts.EndPort {
			return "/" + icmpString(ts.StartPort)
		}
		return "/" + icmpString(ts.StartPort) + "-" + icmpString(ts.EndPort)
	case ts.StartPort == ts.EndPort:
		return "/" + strconv.Itoa(int(ts.StartPort))
	}
	return "/" + strconv.Itoa(int(ts.StartPort)) + "-" + strconv.Itoa(int(ts.EndPort))
}

func formatTS(list []TrafficSelector) string {
	var buf [128]byte
	b := buf[:0]
	for i, ts := range list {
		if i > 0 {
			b = append(b, ' ')
		}
		b = ts.appendTo(b)
	}
	return string(b)
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
// configured ones allow, in the order of our configuration. A selector
// inside another of the result adds nothing and is left out, as charon
// leaves it out: the first selectors of a request an acquire triggered
// are the packet's addresses (RFC 7296 section 2.9), inside the
// configured ones.
func narrowTS(configured, proposed []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, c := range configured {
		for _, p := range proposed {
			if i, ok := c.Intersect(p); ok && !containsTS(out, i) {
				out = append(out, i)
			}
		}
	}
	return withoutRedundant(out)
}

// withoutRedundant drops the selectors that lie inside another of the
// list.
func withoutRedundant(list []TrafficSelector) []TrafficSelector {
	out := list[:0:0]
	for i, ts := range list {
		inside := false
		for j, o := range list {
			if i != j && o != ts && o.Contains(ts) {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, ts)
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

// logTSSelection explains a failed selection as charon's child_cfg does
// ("selecting traffic selectors for us:" and a " config: ..., received:
// ... => match/no match" line per pair): both sides' selectors, so that
// an operator sees which of them do not fit. local says whose they are.
func (sa *ikeSA) logTSSelection(local bool, configured, received []TrafficSelector) {
	who := "other"
	if local {
		who = "us"
	}
	sa.log.Info("selecting traffic selectors for " + who + ":")
	for _, c := range configured {
		for _, r := range received {
			if i, ok := c.Intersect(r); ok {
				infof(sa.log, " config: %s, received: %s => match: %s", c, r, i)
			} else {
				infof(sa.log, " config: %s, received: %s => no match", c, r)
			}
		}
	}
}

// logTSProposal lists the selectors we proposed (charon's "proposing
// traffic selectors for us:").
func (sa *ikeSA) logTSProposal(local []TrafficSelector, remote []TrafficSelector) {
	for _, side := range []struct {
		who string
		ts  []TrafficSelector
	}{{"us", local}, {"other", remote}} {
		sa.log.Info("proposing traffic selectors for " + side.who + ":")
		for _, ts := range side.ts {
			sa.log.Info(" " + ts.String())
		}
	}
}
