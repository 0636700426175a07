package ike_test

import (
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func pfs(c *ike.Connection) { c.Children[0].ESPProposals = []string{"aes128gcm16-x25519"} }

func TestChildRekey(t *testing.T) {
	for _, side := range []string{"initiator", "responder"} {
		for _, withPFS := range []bool{false, true} {
			name := side
			if withPFS {
				name += "/pfs"
			}
			t.Run(name, func(t *testing.T) {
				o := bedOptions{}
				if withPFS {
					o.connA, o.connB = pfs, pfs
				}
				tb := newTestbed(t, o)
				tb.establish()
				p := tb.a
				if side == "responder" {
					p = tb.b
				}
				old := tb.children(p)[0]
				// HDR, SK {N(REKEY_SA), SA, Ni, [KEi,] TSi, TSr} -->
				// <-- HDR, SK {SA, Nr, [KEr,] TSi, TSr}
				// then the old CHILD_SA is deleted: D(ESP) --> <-- D(ESP)
				if err := p.e.RekeyChildSA(old.ID); err != nil {
					t.Fatal(err)
				}
				tb.net.Flush()
				ca, cb := tb.children(tb.a), tb.children(tb.b)
				if len(ca) != 1 || len(cb) != 1 {
					t.Fatalf("children after rekey: %d %d", len(ca), len(cb))
				}
				if ca[0].SPIIn == old.SPIIn || ca[0].SPIIn == old.SPIOut || ca[0].State != ike.ChildSAInstalled {
					t.Fatalf("CHILD_SA not replaced: %+v", ca[0])
				}
				if ca[0].ReqID != old.ReqID {
					t.Errorf("reqid changed: %d -> %d", old.ReqID, ca[0].ReqID)
				}
				tb.checkKeys()
				if len(tb.a.dp.Policies()) != 3 || len(tb.b.dp.Policies()) != 3 {
					t.Errorf("policies: %d %d", len(tb.a.dp.Policies()), len(tb.b.dp.Policies()))
				}
				if withPFS && !p.log.contains("[ N(REKEY_SA) SA No KE TSi TSr ]") {
					t.Error("no KE in rekey")
				}
			})
		}
	}
}

func TestChildRekeySimultaneous(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	oa, ob := tb.children(tb.a)[0], tb.children(tb.b)[0]
	// Both ends send HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} at once; each
	// answers the other's, so two new CHILD_SAs appear; the initiator of
	// the exchange with the lowest nonce deletes its redundant one and the
	// winner deletes the old one (RFC 7296 2.8.1).
	if err := tb.a.e.RekeyChildSA(oa.ID); err != nil {
		t.Fatal(err)
	}
	if err := tb.b.e.RekeyChildSA(ob.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	ca, cb := tb.children(tb.a), tb.children(tb.b)
	if len(ca) != 1 || len(cb) != 1 {
		t.Fatalf("children after simultaneous rekey: a %+v, b %+v", ca, cb)
	}
	if ca[0].SPIIn != cb[0].SPIOut || ca[0].SPIIn == oa.SPIIn {
		t.Fatalf("a and b kept different CHILD_SAs: %+v %+v", ca[0], cb[0])
	}
	tb.checkKeys()
	if !tb.a.log.contains("detected CHILD_SA rekey collision") || !tb.b.log.contains("detected CHILD_SA rekey collision") {
		t.Error("collision not detected")
	}
	if tb.a.log.contains("collision lost") == tb.b.log.contains("collision lost") {
		t.Error("not exactly one side lost")
	}
}

func TestIKERekey(t *testing.T) {
	for _, side := range []string{"initiator", "responder"} {
		t.Run(side, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{})
			tb.establish()
			p := tb.a
			if side == "responder" {
				p = tb.b
			}
			old := tb.established(p)
			oldChild := old.Children[0]
			// HDR, SK {SA, Ni, KEi} --> <-- HDR, SK {SA, Nr, KEr}
			// then the old IKE SA is deleted over itself: D(IKE) --> <-- {}
			if err := p.e.RekeyIKESA(old.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			na, nb := tb.established(tb.a), tb.established(tb.b)
			if na.SPIi != nb.SPIi || na.SPIr != nb.SPIr || na.SPIi == old.SPIi {
				t.Fatalf("new IKE SA SPIs: %+v %+v", na, nb)
			}
			if len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 {
				t.Fatalf("old IKE SA left: %d %d", len(tb.a.sas()), len(tb.b.sas()))
			}
			if na.Initiator != (side == "initiator") {
				t.Errorf("roles of the new IKE SA wrong")
			}
			if len(na.Children) != 1 || na.Children[0].ID != oldChild.ID {
				t.Fatalf("CHILD_SA did not move: %+v", na.Children)
			}
			// the new IKE SA works: rekey the CHILD_SA over it and delete it.
			if err := tb.a.e.RekeyChildSA(na.Children[0].ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.checkKeys()
			if err := tb.b.e.DeleteIKESA(tb.established(tb.b).ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.wantNoSAs(tb.a)
			tb.wantNoSAs(tb.b)
		})
	}
}

func TestIKERekeySimultaneous(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	// Both ends send HDR, SK {SA, Ni, KEi}; both new IKE SAs come up, the
	// redundant one (lowest nonce) is deleted by its initiator, the old one
	// by the winner (RFC 7296 2.8.2).
	if err := tb.a.e.RekeyIKESA(tb.established(tb.a).ID); err != nil {
		t.Fatal(err)
	}
	if err := tb.b.e.RekeyIKESA(tb.established(tb.b).ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	na, nb := tb.established(tb.a), tb.established(tb.b)
	if len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 {
		t.Fatalf("IKE SAs left: %+v / %+v", tb.a.sas(), tb.b.sas())
	}
	if na.SPIi != nb.SPIi || na.SPIr != nb.SPIr {
		t.Fatalf("different IKE SAs survived")
	}
	if len(na.Children) != 1 || len(nb.Children) != 1 {
		t.Fatalf("children: %d %d", len(na.Children), len(nb.Children))
	}
	tb.checkKeys()
	if tb.a.log.contains("IKE_SA rekey collision lost") == tb.b.log.contains("IKE_SA rekey collision lost") {
		t.Error("not exactly one side lost")
	}
}

func TestRekeyTimers(t *testing.T) {
	set := func(c *ike.Connection) {
		c.RekeyTime = 2 * time.Hour
		c.Children[0].RekeyTime = 20 * time.Minute
	}
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	tb.establish()
	first := tb.children(tb.a)[0]
	tb.advance(21 * time.Minute)
	if c := tb.children(tb.a); len(c) != 1 || c[0].ID == first.ID {
		t.Fatalf("CHILD_SA not rekeyed by its timer: %+v", c)
	}
	oldIKE := tb.established(tb.a)
	tb.advance(2 * time.Hour)
	if n := tb.established(tb.a); n.SPIi == oldIKE.SPIi {
		t.Fatal("IKE SA not rekeyed by its timer")
	}
	tb.checkKeys()
}

func TestChildRekeySimultaneousReordered(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	oa, ob := tb.children(tb.a)[0], tb.children(tb.b)[0]
	tb.a.e.RekeyChildSA(oa.ID)
	tb.b.e.RekeyChildSA(ob.ID)
	// queue: [a's request, b's request]. b answers a's request (and sees
	// the collision); then a's response overtakes b's request, so a
	// finishes without knowing of b's rekey and deletes the old CHILD_SA.
	// b's request then finds it gone: TEMPORARY_FAILURE, and b keeps the
	// CHILD_SA of a's exchange.
	tb.net.Deliver()
	tb.net.Reverse()
	tb.net.Flush()
	ca, cb := tb.children(tb.a), tb.children(tb.b)
	if len(ca) != 1 || len(cb) != 1 || ca[0].SPIIn != cb[0].SPIOut || ca[0].SPIIn == oa.SPIIn {
		t.Fatalf("children: a %+v, b %+v", ca, cb)
	}
	if !tb.b.log.contains("received TEMPORARY_FAILURE notify") {
		t.Error("no TEMPORARY_FAILURE")
	}
	tb.checkKeys()
}

func TestIKERekeySimultaneousReordered(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	tb.a.e.RekeyIKESA(tb.established(tb.a).ID)
	tb.b.e.RekeyIKESA(tb.established(tb.b).ID)
	tb.net.Deliver()
	tb.net.Reverse()
	tb.net.Flush()
	na, nb := tb.established(tb.a), tb.established(tb.b)
	if len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 || na.SPIi != nb.SPIi || na.SPIr != nb.SPIr {
		t.Fatalf("IKE SAs: a %+v / b %+v", tb.a.sas(), tb.b.sas())
	}
	if len(na.Children) != 1 || len(nb.Children) != 1 {
		t.Fatalf("children: %d %d", len(na.Children), len(nb.Children))
	}
	tb.checkKeys()
}

func TestIKEHardLifetime(t *testing.T) {
	// b's rekey is never answered (CREATE_CHILD_SA is lost, and b keeps
	// retransmitting), so over_time ends its IKE SA.
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			c.RekeyTime = 10 * time.Hour
			c.Children[0].RekeyTime = 10 * time.Hour
		},
		connB: func(c *ike.Connection) {
			c.Children[0].RekeyTime = 10 * time.Hour
			c.RekeyTime = time.Hour
			c.OverTime = 10 * time.Minute
			c.RandTime = time.Second
		},
		cfgB: func(c *ike.Config) { c.RetransmitTries = 100 },
	})
	tb.establish()
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if h, err := message.UnmarshalHeader(d.Data); err == nil && h.ExchangeType == message.CREATE_CHILD_SA {
			return nil
		}
		return []ike.Datagram{d}
	}
	tb.advance(69 * time.Minute)
	if sas := tb.b.sas(); len(sas) == 0 || sas[0].State != ike.IKESARekeying {
		t.Fatalf("want the IKE SA rekeying: %+v", sas)
	}
	tb.advance(2 * time.Minute)
	if !tb.b.log.contains("IKE_SA gw[1] reached its hard lifetime, deleting") {
		t.Fatal("IKE SA outlived its lifetime")
	}
	tb.wantNoSAs(tb.b)
}
