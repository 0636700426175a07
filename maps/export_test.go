package maps

import "net/netip"

// CompiledWalk compiles a policy set and returns a lookup that walks the
// compiled layout in Go exactly as tc_lan walks it in BPF.
func CompiledWalk(ps []Policy) (func(Packet) (uint32, bool), error) {
	c, err := compileSPD(ps)
	if err != nil {
		return nil, err
	}
	return c.walk, nil
}

// walk does in Go what tc_lan's spd_lookup does in BPF, over the compiled
// structures (relative indices), with the same step budget.
func (c *compiledSPD) walk(pkt Packet) (uint32, bool) {
	dst, src := unmap(pkt.Dst), unmap(pkt.Src)
	node := -1
	// spd_prefix, longest hashed length first: the first hit is the
	// longest match; then the trie with the shorter lengths.
	l := c.lens[lensIndex(dst.Is4())]
	for i := 0; i < int(l.N&^lensWithTrie) && node < 0; i++ {
		want := netip.PrefixFrom(dst, int(l.Len[i])).Masked()
		for _, e := range c.hashed {
			if e.prefix == want {
				node = int(e.node)
			}
		}
	}
	if node < 0 && l.N&lensWithTrie != 0 {
		best := -1
		for _, e := range c.dsts {
			if e.prefix.Addr().Is4() == dst.Is4() && e.prefix.Contains(dst) && e.prefix.Bits() > best {
				node, best = int(e.node), e.prefix.Bits()
			}
		}
	}
	if node < 0 {
		return 0, false
	}
	srcHead := func(node int) uint32 {
		n := c.nodes[node]
		if n.Nsrc != sourcesInTrie {
			for j := 0; j < int(n.Nsrc); j++ {
				a, _ := addrFrom(familyOf(src), n.Src[j])
				if netip.PrefixFrom(a, int(n.SrcLen[j])).Contains(src) {
					return n.SrcHead[j]
				}
			}
			return bpfNone
		}
		head, best := uint32(bpfNone), -1
		for _, e := range c.srcs {
			if int(e.node) == node && e.prefix.Addr().Is4() == src.Is4() && e.prefix.Contains(src) && e.prefix.Bits() > best {
				head, best = e.head, e.prefix.Bits()
			}
		}
		return head
	}
	r, first := uint32(bpfNone), true
	for i := 0; i < MaxLookupSteps; i++ {
		if r == bpfNone {
			if !first {
				if c.nodes[node].Parent == bpfNone {
					return 0, false
				}
				node = int(c.nodes[node].Parent)
			}
			first = false
			r = srcHead(node)
			continue
		}
		rule := c.rules[r]
		probe := Policy{Proto: rule.Proto, DportLo: rule.DportLo, DportHi: rule.DportHi}
		if (probe.Proto == 0 || probe.Proto == pkt.Proto) &&
			(probe.AnyPorts() || pkt.HasPort && pkt.Dport >= probe.DportLo && pkt.Dport <= probe.DportHi) {
			return rule.PolicyId, true
		}
		r = rule.Next
	}
	return 0, false
}
