package bpf_test

import (
	"slices"
	"testing"

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
