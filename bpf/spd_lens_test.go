package bpf_test

import (
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
)

// TestTCLanNestedLengths: one policy per destination length from the
// host out to /8 (25 lengths for IPv4, 121 for IPv6, more than the 7
// tc_lan hashes: the longest in spd_prefix, the rest in the spd_dst
// trie), all containing the packet's destination. The most specific
// matches; deleting policies from the longest one by one walks the answer
// across the hash/trie boundary, each change into the other generation.
// A second destination differs from the first in bit 20, so only /19 and
// shorter contain it: while the hashed lengths are longer, it is found in
// the trie.
// A policy of a shorter length with a better priority never wins: priority
// only orders equally specific selectors.
func TestTCLanNestedLengths(t *testing.T) {
	for _, c := range []struct {
		src, dst netip.Addr
		shortest int
	}{
		{lanHost, remote, 8},
		{lanHost6, remote6, 8},
	} {
		objs, s := loadObjects(t)
		bits := c.dst.BitLen()
		var ps []maps.Policy
		for l := bits; l >= c.shortest; l-- {
			id := uint32(bits - l + 1) // the host's policy is 1
			p := pol(id, netip.PrefixFrom(c.src, 0).String(), netip.PrefixFrom(c.dst, l).Masked().String(), maps.ActionProtect,
				prio(uint32(bits-l))) // shorter: better priority, which must not count
			ps = append(ps, p)
		}
		if _, err := s.SPD.Replace(ps); err != nil {
			t.Fatal(err)
		}
		pkt := udpPkt(c.src, c.dst, 53)
		b := c.dst.AsSlice()
		b[2] ^= 0x10 // bit 20 from the top
		far, _ := netip.AddrFromSlice(b)
		farPkt := udpPkt(c.src, far, 53)
		for i, p := range ps {
			// The longest remaining policy of at most /19.
			want := ps[max(i, bits-19)]
			v, err := loader.RunTC(objs.TcLan, farPkt)
			if err != nil {
				t.Fatal(err)
			}
			if v.PolicyID != want.ID {
				t.Fatalf("%s with policies for /%d and shorter: tc_lan chose policy %d, want %d (%s)",
					far, p.Dst.Bits(), v.PolicyID, want.ID, want.Dst)
			}
			v, err = loader.RunTC(objs.TcLan, pkt)
			if err != nil {
				t.Fatal(err)
			}
			if v.PolicyID != p.ID {
				t.Fatalf("%s with policies for /%d and shorter: tc_lan chose policy %d, want %d (%s)",
					c.dst, p.Dst.Bits(), v.PolicyID, p.ID, p.Dst)
			}
			if err := s.SPD.Delete(p.ID); err != nil {
				t.Fatal(err)
			}
			if i == len(ps)-1 {
				v, err := loader.RunTC(objs.TcLan, pkt)
				if err != nil {
					t.Fatal(err)
				}
				if v.PolicyID != 0 {
					t.Fatalf("%s with no policies left: tc_lan chose policy %d", c.dst, v.PolicyID)
				}
			}
		}
		objs.Close()
	}
}
