package ike_test

import (
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

// TestCustomPorts runs IKE on ports other than 500 and 4500.
func TestCustomPorts(t *testing.T) {
	t.Run("no NAT", func(t *testing.T) {
		ports := func(c *ike.Config) { c.Port, c.NATTPort = 10500, 14500 }
		remote := func(c *ike.Connection) { c.RemotePort = 10500 }
		tb := newTestbed(t, bedOptions{cfgA: ports, cfgB: ports, connA: remote, connB: remote})
		tb.establish()
		a, b := tb.established(tb.a), tb.established(tb.b)
		if a.Local.Port() != 10500 || a.Remote.Port() != 10500 || b.Local.Port() != 10500 || b.Remote.Port() != 10500 {
			t.Fatalf("ports: a %v-%v b %v-%v", a.Local, a.Remote, b.Local, b.Remote)
		}
		for _, d := range tb.net.Log {
			if d.Local.Port() != 10500 || d.Remote.Port() != 10500 {
				t.Fatalf("datagram %v -> %v", d.Local, d.Remote)
			}
		}
		tb.checkKeys()
	})
	t.Run("float to 4500", func(t *testing.T) {
		// a on 500/4500 talks to b's custom IKE port 10500, b's NAT-T port
		// is 4500. With UDP encapsulation forced both float as charon's
		// do: a's peer port to 4500 because a used 500, b's own port to
		// its NAT-T port because it used its IKE port, b's peer port to
		// 4500 because it was 500.
		encap := func(c *ike.Connection) { c.Encap = true }
		tb := newTestbed(t, bedOptions{
			connA: func(c *ike.Connection) { encap(c); c.RemotePort = 10500 },
			connB: encap,
			cfgB:  func(c *ike.Config) { c.Port = 10500 },
		})
		tb.establish()
		a, b := tb.established(tb.a), tb.established(tb.b)
		natt := func(addr netip.Addr) netip.AddrPort { return netip.AddrPortFrom(addr, 4500) }
		if a.Local != natt(addrA) || a.Remote != natt(addrB) || b.Local != natt(addrB) || b.Remote != natt(addrA) {
			t.Fatalf("ports: a %v-%v b %v-%v", a.Local, a.Remote, b.Local, b.Remote)
		}
		if d := tb.net.Log[0]; d.Local.Port() != 500 || d.Remote.Port() != 10500 {
			t.Fatalf("IKE_SA_INIT %v -> %v", d.Local, d.Remote)
		}
		for _, p := range []*peer{tb.a, tb.b} {
			for _, sa := range p.dp.SAs() {
				if sa.Encap == nil || sa.Encap.SrcPort != 4500 || sa.Encap.DstPort != 4500 {
					t.Fatalf("%s: SA %08x encap %+v", p.name, sa.SPI, sa.Encap)
				}
			}
		}
		tb.checkKeys()
		// b rekeys, from its side of the floated ports.
		if err := tb.b.e.RekeyIKESA(b.ID); err != nil {
			t.Fatal(err)
		}
		tb.net.Flush()
		tb.established(tb.a)
		tb.established(tb.b)
	})
	t.Run("encap on one side", func(t *testing.T) {
		// encap = yes on a alone: a fakes its NAT detection hash, so b
		// sees a NAT and both sides put their SAs in UDP, and both list
		// their CHILD_SAs as encapsulated although a detected no NAT.
		tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.Encap = true }})
		tb.establish()
		for _, p := range []*peer{tb.a, tb.b} {
			sa := tb.established(p)
			if len(sa.Children) != 1 || !sa.Children[0].Encap {
				t.Errorf("%s: CHILD_SAs %+v, want one listed as encapsulated", p.name, sa.Children)
			}
			for _, s := range p.dp.SAs() {
				if s.Encap == nil {
					t.Errorf("%s: SA %08x without UDP encapsulation", p.name, s.SPI)
				}
			}
		}
		if a, b := tb.established(tb.a), tb.established(tb.b); a.NATLocal || a.NATRemote || !b.NATRemote {
			t.Errorf("NAT detection: a local %v remote %v, b remote %v; want only b to see a NAT (a's)", a.NATLocal, a.NATRemote, b.NATRemote)
		}
	})
}
