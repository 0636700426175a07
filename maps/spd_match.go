package maps

import "net/netip"

// Packet is what policy selection looks at in a packet.
type Packet struct {
	Src, Dst netip.Addr
	Proto    uint8
	Dport    uint16
	HasPort  bool // false for non-first fragments and truncated L4 headers
}

// Matches reports whether the policy's selectors cover the packet.
func (p *Policy) Matches(pkt Packet) bool {
	src, dst := unmap(pkt.Src), unmap(pkt.Dst)
	if src.Is4() != p.Src.Addr().Is4() || dst.Is4() != p.Dst.Addr().Is4() {
		return false
	}
	if !p.Dst.Contains(dst) || !p.Src.Contains(src) {
		return false
	}
	if p.Proto != 0 && p.Proto != pkt.Proto {
		return false
	}
	if p.AnyPorts() {
		return true
	}
	return pkt.HasPort && pkt.Dport >= p.DportLo && pkt.Dport <= p.DportHi
}

// moreSpecific orders policies as selection prefers them: longer
// destination prefix, then longer source prefix, then lower priority value,
// then lower ID.
func moreSpecific(a, b *Policy) bool {
	if a.Dst.Bits() != b.Dst.Bits() {
		return a.Dst.Bits() > b.Dst.Bits()
	}
	if a.Src.Bits() != b.Src.Bits() {
		return a.Src.Bits() > b.Src.Bits()
	}
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	return a.ID < b.ID
}

// Match is the reference policy selection: of all policies whose selectors
// cover the packet, the most specific. It is deliberately the plainest
// possible code, the yardstick the compiled lookup is tested against.
func Match(policies []Policy, pkt Packet) (Policy, bool) {
	var best *Policy
	for i := range policies {
		p := &policies[i]
		if !p.Matches(pkt) {
			continue
		}
		if best == nil || moreSpecific(p, best) {
			best = p
		}
	}
	if best == nil {
		return Policy{}, false
	}
	return *best, true
}
