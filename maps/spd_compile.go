package maps

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/xdpsec/xdpsec/bpf"
)

// MaxLookupSteps mirrors XS_SPD_MAX_STEPS: the most steps tc_lan takes.
const MaxLookupSteps = 256

// Inline sources of a node (XS_SPD_INLINE_SRC, XS_SPD_SRC_TRIE).
const (
	inlineSources = 2
	sourcesInTrie = 0xff
)

// Destination lengths looked up by exact match (XS_SPD_HASH_LENS,
// XS_SPD_LENS_TRIE): the longest hashLens distinct lengths of a family go
// to spd_prefix, the rest to the spd_dst trie.
const (
	hashLens     = 7
	lensWithTrie = 0x80
)

// compiledSPD is a policy set laid out as tc_lan walks it (see the comment
// on the spd_* maps in bpf/xdpsec.h). Node and rule indices are relative to
// the generation they are written into.
type compiledSPD struct {
	hashed   []dstEntry             // destinations of the hashed lengths, for spd_prefix
	dsts     []dstEntry             // destinations of the other lengths, for spd_dst
	lens     [2]bpf.XdpsecXsSpdLens // by lensIndex: the hashed lengths, longest first
	nodes    []bpf.XdpsecXsSpdNode  // parent and inline sources, relative indices
	srcs     []srcEntry             // sources of nodes with more than the inline ones
	rules    []bpf.XdpsecXsSpdRule
	maxSteps int // the longest walk any packet can take
}

type dstEntry struct {
	prefix netip.Prefix
	node   uint32
}

type srcEntry struct {
	node   uint32
	prefix netip.Prefix
	head   uint32 // first rule
}

// prefixSet answers "the longest prefix in the set strictly containing p".
type prefixSet struct {
	has  map[netip.Prefix]uint32
	lens map[bool][]int // by is-IPv4: the distinct lengths present, longest first
}

func newPrefixSet(prefixes []netip.Prefix) *prefixSet {
	s := &prefixSet{has: map[netip.Prefix]uint32{}, lens: map[bool][]int{}}
	seen := map[bool]map[int]bool{true: {}, false: {}}
	for i, p := range prefixes {
		s.has[p] = uint32(i)
		v4 := p.Addr().Is4()
		if !seen[v4][p.Bits()] {
			seen[v4][p.Bits()] = true
			s.lens[v4] = append(s.lens[v4], p.Bits())
		}
	}
	for k := range s.lens {
		slices.SortFunc(s.lens[k], func(a, b int) int { return b - a })
	}
	return s
}

func (s *prefixSet) parent(p netip.Prefix) (uint32, bool) {
	for _, l := range s.lens[p.Addr().Is4()] {
		if l >= p.Bits() {
			continue
		}
		if i, ok := s.has[netip.PrefixFrom(p.Addr(), l).Masked()]; ok {
			return i, true
		}
	}
	return 0, false
}

// lensIndex is the family's half of XS_SPD_LENS_IDX.
func lensIndex(v4 bool) int {
	if v4 {
		return 0
	}
	return 1
}

func comparePrefix(a, b netip.Prefix) int {
	if c := cmp.Compare(a.Bits(), b.Bits()); c != 0 {
		return c
	}
	return a.Addr().Compare(b.Addr())
}

// compileSPD lays out a validated, normalized policy set. It refuses a set
// whose worst lookup would need more than MaxLookupSteps steps, naming the
// destination where that happens.
func compileSPD(policies []Policy) (*compiledSPD, error) {
	byDst := map[netip.Prefix][]*Policy{}
	for i := range policies {
		p := &policies[i]
		byDst[p.Dst] = append(byDst[p.Dst], p)
	}
	dsts := make([]netip.Prefix, 0, len(byDst))
	for d := range byDst {
		dsts = append(dsts, d)
	}
	// Shorter prefixes first: a node's parent gets its index before it.
	slices.SortFunc(dsts, comparePrefix)
	dstSet := newPrefixSet(dsts)

	c := &compiledSPD{nodes: make([]bpf.XdpsecXsSpdNode, len(dsts))}
	hashed := map[bool]map[int]bool{true: {}, false: {}}
	for _, v4 := range []bool{true, false} {
		l := &c.lens[lensIndex(v4)]
		for i, bits := range dstSet.lens[v4] {
			if i == hashLens {
				l.N |= lensWithTrie
				break
			}
			l.Len[i] = uint8(bits)
			l.N++
			hashed[v4][bits] = true
		}
	}
	worst := make([]int, len(dsts)) // steps to walk from this node to the root
	for node, d := range dsts {
		// The longest lengths are hashed: they are tried first, so a hit
		// there is the longest match; the trie only holds shorter ones.
		if hashed[d.Addr().Is4()][d.Bits()] {
			c.hashed = append(c.hashed, dstEntry{prefix: d, node: uint32(node)})
		} else {
			c.dsts = append(c.dsts, dstEntry{prefix: d, node: uint32(node)})
		}
		parent, ok := dstSet.parent(d)
		c.nodes[node].Parent = bpfNone
		if ok {
			c.nodes[node].Parent = parent
		}

		longest := c.compileNode(uint32(node), byDst[d])
		worst[node] = 1 + longest
		if ok {
			worst[node] += worst[parent]
		}
		if worst[node] > MaxLookupSteps {
			return nil, fmt.Errorf("policy set too complex: a packet to %s may need %d lookup steps, at most %d are allowed (too many policies with nested destinations and overlapping sources)",
				d, worst[node], MaxLookupSteps)
		}
		c.maxSteps = max(c.maxSteps, worst[node])
	}
	return c, nil
}

// compileNode adds the source entries and rule chains of one destination
// node and returns its longest chain.
func (c *compiledSPD) compileNode(node uint32, policies []*Policy) int {
	bySrc := map[netip.Prefix][]*Policy{}
	for _, p := range policies {
		bySrc[p.Src] = append(bySrc[p.Src], p)
	}
	srcs := make([]netip.Prefix, 0, len(bySrc))
	for s := range bySrc {
		srcs = append(srcs, s)
	}
	slices.SortFunc(srcs, comparePrefix)
	srcSet := newPrefixSet(srcs)

	heads := make([]uint32, len(srcs))
	chain := make([]int, len(srcs))
	longest := 0
	for i, s := range srcs {
		own := bySrc[s]
		slices.SortFunc(own, func(a, b *Policy) int {
			if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		// A longer source's chain continues into its containing prefix's.
		tail, tailLen := uint32(bpfNone), 0
		if parent, ok := srcSet.parent(s); ok {
			tail, tailLen = heads[parent], chain[parent]
		}
		heads[i] = uint32(len(c.rules))
		for j, p := range own {
			next := uint32(len(c.rules) + 1)
			if j == len(own)-1 {
				next = tail
			}
			c.rules = append(c.rules, bpf.XdpsecXsSpdRule{
				PolicyId:        p.ID,
				Next:            next,
				Proto:           p.Proto,
				Action:          p.Action,
				Mss:             p.MSS,
				DportLo:         p.DportLo,
				DportHi:         p.DportHi,
				IfId:            p.IfID,
				RedirectIfindex: p.Redirect,
			})
		}
		chain[i] = len(own) + tailLen
		longest = max(longest, chain[i])
	}

	n := &c.nodes[node]
	if len(srcs) > inlineSources {
		n.Nsrc = sourcesInTrie
		for i, s := range srcs {
			c.srcs = append(c.srcs, srcEntry{node: node, prefix: s, head: heads[i]})
		}
		return longest
	}
	// Inline, longest first: the first that contains the packet's source is
	// its longest match.
	n.Nsrc = uint8(len(srcs))
	for j := range srcs {
		i := len(srcs) - 1 - j
		n.SrcLen[j] = uint8(srcs[i].Bits())
		n.SrcHead[j] = heads[i]
		n.Src[j] = addrBytes(srcs[i].Addr())
	}
	return longest
}
