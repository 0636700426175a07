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
	}{
		{false, 10, 1000},
		{false, 100, 1500},
		{false, 1000, 2000},
		{false, 10000, 3000},
		{true, 100, 1000},
		{true, 3000, 2000},
	}
	total := 0
	for i, c := range cases {
		objs, s := loadObjectsSized(t, uint32(c.policies+64))
		g := spdtest.New(uint64(1000+i), c.v6)
		ps, err := s.SPD.Replace(g.Policies(c.policies))
		if err != nil {
			t.Fatalf("%d policies: %v", c.policies, err)
		}
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
// spd_host, the rest in spd_dst; a packet to a host whose own policies do
// not match falls back to the shorter prefixes' rules through the node
// chain. The set is changed live (both generations), replaced by one
// without hosts (the generation's host bit cleared) and back.
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
			checkSPDMaps(t, objs, hosts)
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

// checkSPDMaps checks that the active generation holds exactly the host
// destinations in spd_host and none in spd_dst, and that the config bit
// that sends lookups to spd_host is set when there are any.
func checkSPDMaps(t *testing.T, objs *bpf.XdpsecObjects, hosts map[netip.Prefix]bool) {
	t.Helper()
	var cfg bpf.XdpsecXsConfig
	if err := objs.Config.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	gen := uint8(cfg.SpdGen & 1)
	var (
		hk    bpf.XdpsecXsSpdHostKey
		dk    bpf.XdpsecXsSpdDstKey
		v     uint32
		nhost int
	)
	it := objs.SpdHost.Iterate()
	for it.Next(&hk, &v) {
		if hk.Gen != gen {
			continue
		}
		nhost++
		a := netip.AddrFrom16(hk.Addr)
		if hk.Family == bpf.XdpsecXsFamilyXS_FAMILY_IPV4 {
			a = netip.AddrFrom4([4]byte(hk.Addr[:4]))
		}
		if !hosts[netip.PrefixFrom(a, a.BitLen())] {
			t.Fatalf("spd_host has %s, which no policy has as its destination", a)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if nhost != len(hosts) {
		t.Fatalf("spd_host has %d entries in generation %d, want %d", nhost, gen, len(hosts))
	}
	it = objs.SpdDst.Iterate()
	for it.Next(&dk, &v) {
		if dk.Gen == gen && (dk.Prefixlen == 32+32 && dk.Family == bpf.XdpsecXsFamilyXS_FAMILY_IPV4 || dk.Prefixlen == 32+128) {
			t.Fatalf("spd_dst has a host prefix: %+v", dk)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	const hostsBit = 0x2 // XS_CFG_SPD_HOSTS(0); generation 1's is 0x4
	if on := cfg.Flags&(hostsBit<<gen) != 0; on != (len(hosts) > 0) {
		t.Fatalf("generation %d: host bit %v with %d host destinations", gen, on, len(hosts))
	}
}
