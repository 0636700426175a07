// Package spdtest makes random policy sets and packets for testing the
// SPD compiler and tc_lan against the reference matcher.
package spdtest

import (
	"math/rand/v2"
	"net/netip"

	"github.com/xdpsec/xdpsec/maps"
)

// Gen makes random policy sets whose selectors nest and overlap,
// drawn from small address pools so that random packets hit them.
type Gen struct {
	r     *rand.Rand
	v6    bool
	sites []netip.Addr
}

// New returns a generator; the same seed gives the same sets.
func New(seed uint64, v6 bool) *Gen {
	g := &Gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), v6: v6}
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
		Dst:      g.prefix([]int{8, 12, 16, 20, 24, 24, 28, 32, 32}),
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
