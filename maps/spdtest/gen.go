// Package spdtest makes random policy sets and packets for testing the
// SPD compiler and tc_lan against the reference matcher.
package spdtest

import (
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/xdpsec/xdpsec/maps"
)

// Gen makes random policy sets whose selectors nest and overlap,
// drawn from small address pools so that random packets hit them.
type Gen struct {
	r     *rand.Rand
	v6    bool
	sites []netip.Addr
	// dstLens are the destination lengths Policy draws from (in IPv4
	// bits; times four for IPv6).
	dstLens []int
}

// ManyDstLengths makes Policy draw destinations from 16 distinct lengths,
// more than tc_lan hashes (XS_SPD_HASH_LENS): the shorter ones then go
// to the destination trie.
func (g *Gen) ManyDstLengths() {
	g.dstLens = []int{0, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32}
}

// New returns a generator; the same seed gives the same sets.
func New(seed uint64, v6 bool) *Gen {
	g := &Gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), v6: v6,
		dstLens: []int{8, 12, 16, 20, 24, 24, 28, 32, 32}}
	for i := 0; i < 64; i++ {
		g.sites = append(g.sites, g.randomAddr())
	}
	return g
}

func (g *Gen) randomAddr() netip.Addr {
	if g.v6 {
		var b [16]byte
		b[0], b[1] = 0xfd, byte(g.r.IntN(32))
		for i := 2; i < 16; i++ {
			b[i] = byte(g.r.IntN(256))
		}
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{byte(10 + g.r.IntN(32)), byte(g.r.IntN(16)), byte(g.r.IntN(256)), byte(g.r.IntN(256))})
}

// near returns an address sharing a random-length prefix with a site.
func (g *Gen) near() netip.Addr {
	site := g.sites[g.r.IntN(len(g.sites))].AsSlice()
	other := g.randomAddr().AsSlice()
	keep := g.r.IntN(len(site)*8 + 1)
	for i := range site {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= keep {
				mask := byte(0x80 >> bit)
				site[i] = site[i]&^mask | other[i]&mask
			}
		}
	}
	a, _ := netip.AddrFromSlice(site)
	return a
}

func (g *Gen) prefix(lengths []int) netip.Prefix {
	l := lengths[g.r.IntN(len(lengths))]
	if g.v6 {
		l *= 4
	}
	return netip.PrefixFrom(g.near(), l).Masked()
}

// Policy returns one random policy without an ID.
func (g *Gen) Policy() maps.Policy {
	p := maps.Policy{
		Dst:      g.prefix(g.dstLens),
		Src:      g.prefix([]int{0, 8, 16, 24, 32}),
		DportLo:  0,
		DportHi:  0xffff,
		Priority: uint32(g.r.IntN(4)),
		Action:   maps.Action(1 + g.r.IntN(3)),
	}
	switch g.r.IntN(4) {
	case 0:
		p.Proto = 6
	case 1:
		p.Proto = 17
	}
	if p.Proto != 0 && g.r.IntN(2) == 0 {
		lo := uint16(g.r.IntN(1000))
		p.DportLo, p.DportHi = lo, lo+uint16(g.r.IntN(100))
	}
	if p.Action == maps.ActionProtect {
		p.IfID = uint32(1 + g.r.IntN(1000))
	}
	return p
}

// Policies returns n random policies with IDs 1..n.
func (g *Gen) Policies(n int) []maps.Policy {
	out := make([]maps.Policy, n)
	for i := range out {
		out[i] = g.Policy()
		out[i].ID = uint32(i + 1)
	}
	return out
}

// Packet returns a random packet near the same address pools.
func (g *Gen) Packet() maps.Packet {
	p := maps.Packet{Src: g.near(), Dst: g.near()}
	switch g.r.IntN(3) {
	case 0:
		p.Proto = 6
	case 1:
		p.Proto = 17
	default:
		p.Proto = 1
	}
	if p.Proto != 1 && g.r.IntN(10) != 0 {
		p.HasPort = true
		p.Dport = uint16(g.r.IntN(1100))
	}
	return p
}

// HostSet is a remote-access gateway's policy set: many host destinations
// (/32, /128), one per client, inside a few pools that shorter prefixes'
// policies cover too.
type HostSet struct {
	Hosts   []maps.Policy // one or two per host address
	Shorter []maps.Policy // pools and prefixes inside them
	Addrs   []netip.Addr  // the host addresses
	pools   []netip.Prefix
	g       *Gen
}

// Policies returns the whole set with IDs 1..n.
func (s *HostSet) Policies() []maps.Policy {
	return withIDs(append(append([]maps.Policy{}, s.Shorter...), s.Hosts...))
}

// ShorterOnly returns the set without its host destinations, IDs 1..n.
func (s *HostSet) ShorterOnly() []maps.Policy {
	return withIDs(append([]maps.Policy{}, s.Shorter...))
}

func withIDs(ps []maps.Policy) []maps.Policy {
	for i := range ps {
		ps[i].ID = uint32(i + 1)
	}
	return ps
}

// HostSet makes a set of hosts host addresses and shorter prefixes'
// policies. A host's own policies are often narrower than its pool's
// (a protocol, a port range, a source prefix), so packets to a host fall
// back to the shorter prefixes' rules as often as they stay with the
// host's.
func (g *Gen) HostSet(hosts, shorter int) *HostSet {
	s := &HostSet{g: g}
	poolBits, subBits := 16, []int{20, 24, 24, 28, 30}
	if g.v6 {
		poolBits, subBits = 112, []int{116, 120, 120, 124, 126}
	}
	for range 4 {
		s.pools = append(s.pools, netip.PrefixFrom(g.sites[g.r.IntN(len(g.sites))], poolBits).Masked())
	}
	for i := range shorter {
		p := g.Policy()
		pool := s.pools[g.r.IntN(len(s.pools))]
		p.Dst = pool
		if i < len(s.pools) {
			// Each pool from anywhere, as a gateway's pool-wide policy.
			p.Dst = s.pools[i]
			p.Src = netip.PrefixFrom(p.Src.Addr(), 0).Masked()
		} else {
			p.Dst = netip.PrefixFrom(g.inPool(pool), subBits[g.r.IntN(len(subBits))]).Masked()
		}
		s.Shorter = append(s.Shorter, p)
	}
	seen := map[netip.Addr]bool{}
	for len(s.Addrs) < hosts {
		a := g.inPool(s.pools[g.r.IntN(len(s.pools))])
		if seen[a] {
			continue
		}
		seen[a] = true
		s.Addrs = append(s.Addrs, a)
		for range 1 + g.r.IntN(2) {
			p := g.Policy()
			p.Dst = netip.PrefixFrom(a, a.BitLen())
			s.Hosts = append(s.Hosts, p)
		}
	}
	return s
}

// NewAddr returns an address in one of the set's pools that is not yet
// one of its hosts, and makes it one.
func (s *HostSet) NewAddr() netip.Addr {
	for {
		a := s.g.inPool(s.pools[s.g.r.IntN(len(s.pools))])
		if !slices.Contains(s.Addrs, a) {
			s.Addrs = append(s.Addrs, a)
			return a
		}
	}
}

// inPool returns a random address inside pool.
func (g *Gen) inPool(pool netip.Prefix) netip.Addr {
	b := pool.Addr().AsSlice()
	r := g.randomAddr().AsSlice()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= pool.Bits() {
				mask := byte(0x80 >> bit)
				b[i] = b[i]&^mask | r[i]&mask
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Packet returns a random packet to a host of the set (most often), to
// another address in its pools, or anywhere near the generator's pools.
func (s *HostSet) Packet() maps.Packet {
	g := s.g
	p := g.Packet()
	switch n := g.r.IntN(10); {
	case n < 6:
		p.Dst = s.Addrs[g.r.IntN(len(s.Addrs))]
	case n < 9:
		p.Dst = g.inPool(s.pools[g.r.IntN(len(s.pools))])
	}
	return p
}
