package bpf_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/internal/packet"
	"github.com/xdpsec/xdpsec/loader"
	"github.com/xdpsec/xdpsec/maps"
	"github.com/xdpsec/xdpsec/maps/spdtest"
)

// frameFor builds the packet a maps.Packet describes.
func frameFor(p maps.Packet) []byte {
	spec := packet.Spec{Src: p.Src, Dst: p.Dst, Proto: p.Proto}
	switch {
	case !p.HasPort && p.Proto != packet.ProtoICMP:
		// A non-first fragment: the protocol is known, the ports are not.
		spec.Fragment, spec.FragOffset, spec.Payload = true, 64, make([]byte, 24)
	case p.Proto == packet.ProtoTCP:
		spec.Payload = packet.TCP(p.Src, p.Dst, 1000, p.Dport, packet.TCPAck, nil, nil)
	case p.Proto == packet.ProtoUDP:
		spec.Payload = packet.UDP(p.Src, p.Dst, 1000, p.Dport, []byte{1, 2, 3})
	default:
		spec.Payload = []byte{8, 0, 0, 0, 0, 0, 0, 0}
	}
	return packet.Build(spec)
}

func checkAgainstReference(t *testing.T, prog loader.TCVerdict, ps []maps.Policy, pkt maps.Packet) {
	t.Helper()
	want, ok := maps.Match(ps, pkt)
	if !ok {
		if prog.PolicyID != 0 {
			t.Fatalf("packet %+v: tc_lan chose policy %d, the reference none", pkt, prog.PolicyID)
		}
		return
	}
	if prog.PolicyID != want.ID || prog.Action != want.Action {
		t.Fatalf("packet %+v: tc_lan chose policy %d (%s), the reference %d (%s)",
			pkt, prog.PolicyID, maps.ActionName(prog.Action), want.ID, maps.ActionName(want.Action))
	}
}

// TestSPDDifferential runs random policy sets of up to 10,000 policies
// through the compiler into the maps and random packets through tc_lan,
// and fails on any packet where tc_lan and the reference matcher disagree.
// Then it changes the live set policy by policy and checks again, so both
// generations of the compiled maps are exercised.
func TestSPDDifferential(t *testing.T) {
	cases := []struct {
		v6       bool
		policies int
		packets  int
		manyLens bool // more destination lengths than are hashed
	}{
		{false, 10, 1000, false},
		{false, 100, 1500, false},
		{false, 1000, 2000, false},
		{false, 10000, 3000, false},
		{true, 100, 1000, false},
		{true, 3000, 2000, false},
		{false, 2000, 2000, true},
		{true, 1000, 1500, true},
	}
	total := 0
	for i, c := range cases {
		objs, s := loadObjectsSized(t, uint32(c.policies+64))
		g := spdtest.New(uint64(1000+i), c.v6)
		if c.manyLens {
			g.ManyDstLengths()
		}
		ps, err := s.SPD.Replace(g.Policies(c.policies))
		if err != nil {
			t.Fatalf("%d policies: %v", c.policies, err)
		}
		checkSPDMaps(t, objs, ps)
		for range c.packets {
			pkt := g.Packet()
			v, err := loader.RunTC(objs.TcLan, frameFor(pkt))
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstReference(t, v, ps, pkt)
			total++
		}

		// Live changes: delete some, add some, check after each batch.
		for round := range 3 {
			for j := 0; j < 5; j++ {
				victim := ps[(round*5+j)*7%len(ps)].ID
				if err := s.SPD.Delete(victim); err != nil {
					t.Fatal(err)
				}
				added, err := s.SPD.Add(g.Policy())
				if err != nil {
					t.Fatal(err)
				}
				if added.ID != victim {
					t.Fatalf("added policy got ID %d, want the freed %d", added.ID, victim)
				}
			}
			if ps, err = s.SPD.Policies(); err != nil {
				t.Fatal(err)
			}
			checkSPDMaps(t, objs, ps)
			for range 100 {
				pkt := g.Packet()
				v, err := loader.RunTC(objs.TcLan, frameFor(pkt))
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstReference(t, v, ps, pkt)
				total++
			}
		}

		// One batch (SPD.Apply, as the daemon writes): 5 deleted, 5 new
		// added, and one equal to a stored policy, which keeps its ID.
		var del []uint32
		for j := range 5 {
			del = append(del, ps[j*11%len(ps)].ID)
		}
		dup := ps[len(ps)-1]
		if slices.Contains(del, dup.ID) {
			t.Fatalf("test setup: the duplicate %d is among the deleted", dup.ID)
		}
		add := []maps.Policy{g.Policy(), g.Policy(), g.Policy(), g.Policy(), g.Policy(), dup}
		add[5].ID = 0
		added, err := s.SPD.Apply(add, del)
		if err != nil {
			t.Fatal(err)
		}
		if len(added) != 6 || added[5].ID != dup.ID {
			t.Fatalf("Apply returned %+v; the equal policy should keep ID %d", added, dup.ID)
		}
		before := len(ps)
		if ps, err = s.SPD.Policies(); err != nil {
			t.Fatal(err)
		}
		if len(ps) != before {
			t.Fatalf("%d policies after deleting 5 and adding 5 new ones to %d", len(ps), before)
		}
		for range 100 {
			pkt := g.Packet()
			v, err := loader.RunTC(objs.TcLan, frameFor(pkt))
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstReference(t, v, ps, pkt)
			total++
		}
		objs.Close()
	}
	t.Logf("%d packets agreed with the reference matcher", total)
	if total < 10000 {
		t.Fatalf("only %d packets checked", total)
	}
}

// TestSPDDifferentialHosts is the differential test for a remote-access
// gateway's set: thousands of host destinations (/32, /128) inside pools
// that shorter prefixes' policies cover. Host destinations are found in
// spd_prefix like every other length; a packet to a host whose own
// policies do not match falls back to the shorter prefixes' rules through
// the node chain. The set is changed live (both generations), replaced by
// one without hosts (the generation's lengths lose the host length) and back.
func TestSPDDifferentialHosts(t *testing.T) {
	cases := []struct {
		v6              bool
		hosts, shorter  int
		packets, rounds int
	}{
		{false, 5000, 300, 3000, 3},
		{true, 2000, 200, 2000, 3},
	}
	for i, c := range cases {
		g := spdtest.New(uint64(2000+i), c.v6)
		hs := g.HostSet(c.hosts, c.shorter)
		all := hs.Policies()
		objs, s := loadObjectsSized(t, uint32(len(all)+64))
		var hostHits, fallbacks, unmatched int
		check := func(what string, ps []maps.Policy, n int) {
			t.Helper()
			hosts := map[netip.Prefix]bool{}
			for _, p := range ps {
				if p.Dst.IsSingleIP() {
					hosts[p.Dst] = true
				}
			}
			checkSPDMaps(t, objs, ps)
			for range n {
				pkt := hs.Packet()
				v, err := loader.RunTC(objs.TcLan, frameFor(pkt))
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstReference(t, v, ps, pkt)
				if hosts[netip.PrefixFrom(pkt.Dst, pkt.Dst.BitLen())] {
					switch want, ok := maps.Match(ps, pkt); {
					case !ok:
						unmatched++
					case want.Dst.IsSingleIP():
						hostHits++
					default:
						fallbacks++
					}
				}
			}
			t.Logf("v6=%v %s: %d policies, %d host destinations agree", c.v6, what, len(ps), len(hosts))
		}

		ps, err := s.SPD.Replace(all)
		if err != nil {
			t.Fatal(err)
		}
		check("replaced", ps, c.packets)
		// Clients come and go: each change compiles into the other
		// generation. Policies are added for new hosts and existing ones.
		for round := range c.rounds {
			for j := range 10 {
				victim := ps[(len(hs.Shorter)+(round*10+j)*37)%len(ps)].ID
				if err := s.SPD.Delete(victim); err != nil {
					t.Fatal(err)
				}
				p := g.Policy()
				a := hs.Addrs[(round*10+j)*13%len(hs.Addrs)]
				if j%2 == 0 {
					a = hs.NewAddr()
				}
				p.Dst = netip.PrefixFrom(a, a.BitLen())
				if _, err := s.SPD.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			if ps, err = s.SPD.Policies(); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("live change %d", round+1), ps, c.packets/4)
		}
		if ps, err = s.SPD.Replace(hs.ShorterOnly()); err != nil {
			t.Fatal(err)
		}
		check("without hosts", ps, c.packets/2)
		if ps, err = s.SPD.Replace(all); err != nil {
			t.Fatal(err)
		}
		check("hosts again", ps, c.packets/2)
		t.Logf("v6=%v: packets to hosts: %d chose a host's policy, %d fell back to a shorter prefix's, %d none",
			c.v6, hostHits, fallbacks, unmatched)
		if hostHits < c.packets/10 || fallbacks < c.packets/10 {
			t.Fatalf("test setup: %d host hits and %d fallbacks are too few to tell", hostHits, fallbacks)
		}
		objs.Close()
	}
}

// checkSPDMaps checks the active generation's destination lookup maps
// against the policy set: per family, the longest distinct destination
// lengths (at most XS_SPD_HASH_LENS) in the config's spd_lens, longest
// first, with the trie flag when there are more; exactly the destinations
// of those lengths in spd_prefix, and exactly the others in spd_dst.
func checkSPDMaps(t *testing.T, objs *bpf.XdpsecObjects, ps []maps.Policy) {
	t.Helper()
	const hashLens, withTrie = 7, 0x80 // XS_SPD_HASH_LENS, XS_SPD_LENS_TRIE
	var cfg bpf.XdpsecXsConfig
	if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	gen := uint8(cfg.SpdGen & 1)
	dsts := map[netip.Prefix]bool{}
	lens := map[bool][]int{}
	for _, p := range ps {
		if !dsts[p.Dst] {
			dsts[p.Dst] = true
			if v4 := p.Dst.Addr().Is4(); !slices.Contains(lens[v4], p.Dst.Bits()) {
				lens[v4] = append(lens[v4], p.Dst.Bits())
			}
		}
	}
	hashed := map[bool]map[int]bool{true: {}, false: {}}
	for fam, v4 := range []bool{true, false} {
		want := lens[v4]
		slices.Sort(want)
		slices.Reverse(want)
		wantN := uint8(min(len(want), hashLens))
		if len(want) > hashLens {
			wantN |= withTrie
		}
		got := cfg.SpdLens[int(gen)<<1|fam]
		if got.N != wantN {
			t.Fatalf("generation %d, IPv4 %v: spd_lens n=%#x, want %#x (lengths %v)", gen, v4, got.N, wantN, want)
		}
		for i := range min(len(want), hashLens) {
			if int(got.Len[i]) != want[i] {
				t.Fatalf("generation %d, IPv4 %v: spd_lens %v, want the longest of %v", gen, v4, got.Len, want)
			}
			hashed[v4][want[i]] = true
		}
	}
	addrOf := func(fam bpf.XdpsecXsFamily, b [16]byte) netip.Addr {
		if fam == bpf.XdpsecXsFamilyXS_FAMILY_IPV4 {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16(b)
	}
	var (
		pk4           bpf.XdpsecXsSpdPrefix4Key
		pk6           bpf.XdpsecXsSpdPrefix6Key
		dk            bpf.XdpsecXsSpdDstKey
		v             uint32
		nhash, ntrie  int
		wantH, wantTr int
	)
	for d := range dsts {
		if hashed[d.Addr().Is4()][d.Bits()] {
			wantH++
		} else {
			wantTr++
		}
	}
	hashedDst := func(d netip.Prefix) {
		t.Helper()
		nhash++
		if !dsts[d] || !hashed[d.Addr().Is4()][d.Bits()] {
			t.Fatalf("spd_prefix has %s, which is not a destination of a hashed length", d)
		}
	}
	it := objs.SpdPrefix4.Iterate()
	for it.Next(&pk4, &v) {
		if pk4.Gen == gen {
			hashedDst(netip.PrefixFrom(netip.AddrFrom4(pk4.Addr), int(pk4.Len)))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it = objs.SpdPrefix6.Iterate()
	for it.Next(&pk6, &v) {
		if pk6.Gen == gen {
			hashedDst(netip.PrefixFrom(netip.AddrFrom16(pk6.Addr), int(pk6.Len)))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it = objs.SpdDst.Iterate()
	for it.Next(&dk, &v) {
		if dk.Gen != gen {
			continue
		}
		ntrie++
		d := netip.PrefixFrom(addrOf(dk.Family, dk.Addr), int(dk.Prefixlen-32))
		if !dsts[d] || hashed[d.Addr().Is4()][d.Bits()] {
			t.Fatalf("spd_dst has %s, which is not a destination of a trie length", d)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if nhash != wantH || ntrie != wantTr {
		t.Fatalf("generation %d: %d entries in spd_prefix and %d in spd_dst, want %d and %d", gen, nhash, ntrie, wantH, wantTr)
	}
}
