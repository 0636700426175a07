package ike_test

import (
	"fmt"
	"github.com/xdpsec/xdpsec/ike/transform"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func pfs(c *ike.Connection) {
	c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519")
}

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
				tb.settleRekeys()
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
	tb.settleRekeys()
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
			tb.settleRekeys()
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

// TestChildRekeyTimerDuringIKERekey: the CHILD_SA's rekey timer fires
// while its IKE SA is being rekeyed. The CHILD_SA rekey waits in the
// queue and runs over the new IKE SA; dropped, the CHILD_SA would reach
// its hard lifetime without a successor.
func TestChildRekeyTimerDuringIKERekey(t *testing.T) {
	set := func(c *ike.Connection) {
		c.RekeyTime = 2 * time.Hour
		c.RandExact = true
		c.Children[0].RekeyTime = 20 * time.Minute
		c.Children[0].RandExact = true
	}
	// The peer rekeys nothing in this time.
	late := func(c *ike.Connection) {
		c.RekeyTime = 10 * time.Hour
		c.Children[0].RekeyTime = 10 * time.Hour
	}
	tb := newTestbed(t, bedOptions{connA: set, connB: late})
	tb.establish()
	first := tb.children(tb.a)[0]
	tb.advance(20*time.Minute - time.Second)
	oldIKE := tb.established(tb.a)
	// HDR, SK {SA, Ni, KEi} --> (not yet delivered) while the CHILD_SA's
	// soft lifetime passes.
	if err := tb.a.e.RekeyIKESA(oldIKE.ID); err != nil {
		t.Fatal(err)
	}
	tb.clock.Advance(2 * time.Second)
	tb.net.Flush()
	n := tb.established(tb.a)
	if n.SPIi == oldIKE.SPIi {
		t.Fatal("IKE SA not rekeyed")
	}
	if len(n.Children) != 1 || n.Children[0].ID == first.ID {
		t.Fatalf("CHILD_SA not rekeyed over the new IKE SA: %+v", n.Children)
	}
	tb.advance(3 * time.Minute)
	if c := tb.children(tb.a); len(c) != 1 || tb.a.log.contains("expired, deleting") {
		t.Fatalf("CHILD_SA expired: %+v", c)
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
	tb.settleRekeys()
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

// TestChildInvalidKE: a CREATE_CHILD_SA whose KE group the responder does
// not want is answered with INVALID_KE_PAYLOAD and retried with the
// requested group in a new exchange (RFC 7296 section 1.3).
func TestChildInvalidKE(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ecp256")
		},
		connB: func(c *ike.Connection) {
			c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-ecp256")
		},
	})
	tb.establish()
	old := tb.children(tb.a)[0]
	// HDR, SK {N(REKEY_SA), SA, Ni, KEi(x25519), TSi, TSr} -->
	// <-- HDR, SK {N(INVALID_KE_PAYLOAD: ECP_256)}
	// HDR, SK {N(REKEY_SA), SA, Ni, KEi(ecp256), TSi, TSr} -->
	// <-- HDR, SK {SA, Nr, KEr, TSi, TSr}
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if !tb.b.log.contains("DH group CURVE_25519 unacceptable, requesting ECP_256") ||
		!tb.b.log.contains("generating CREATE_CHILD_SA response 2 [ N(INVAL_KE) ]") {
		t.Error("b did not log INVALID_KE_PAYLOAD")
	}
	if !tb.a.log.contains("peer didn't accept DH group CURVE_25519, it requested ECP_256") ||
		!tb.a.log.contains("generating CREATE_CHILD_SA request 3 [ N(REKEY_SA) SA No KE TSi TSr ]") {
		t.Error("a did not retry")
	}
	if c := tb.children(tb.a); len(c) != 1 || c[0].SPIIn == old.SPIIn {
		t.Fatalf("not rekeyed: %+v", c)
	}
	tb.settleRekeys()
	tb.checkKeys()
}

// TestChildRekeyOrdering steps a CHILD_SA rekey message by message and
// checks when each side's SAs come and go, so that no ESP packet meets a
// peer without the SA it was sent on:
//   - the responder installs its new inbound SA before it answers, but its
//     new outbound SA only when the initiator's DELETE of the old CHILD_SA
//     arrives (the initiator installs the matching inbound SA when the
//     response arrives, in between);
//   - both keep the old inbound SA for DeleteRekeyedDelay after deleting
//     the old CHILD_SA, for packets sent on it just before.
func TestChildRekeyOrdering(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	old := tb.children(tb.a)[0]
	direction := func(p *peer) (in, out []uint32) {
		for _, s := range p.dp.SAs() {
			if s.Inbound {
				in = append(in, s.SPI)
			} else {
				out = append(out, s.SPI)
			}
		}
		slices.Sort(in)
		slices.Sort(out)
		return in, out
	}
	want := func(step string, p *peer, in, out []uint32) {
		t.Helper()
		slices.Sort(in)
		slices.Sort(out)
		gotIn, gotOut := direction(p)
		if !slices.Equal(gotIn, in) || !slices.Equal(gotOut, out) {
			t.Fatalf("%s: %s has inbound SAs %08x and outbound %08x, want %08x and %08x\n%s",
				step, p.name, gotIn, gotOut, in, out, strings.Join(p.dp.Events(), "\n"))
		}
	}
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	// HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} -->
	if !tb.net.Deliver() {
		t.Fatal("no CREATE_CHILD_SA request")
	}
	cb := tb.children(tb.b)
	if len(cb) != 2 {
		t.Fatalf("b has %d CHILD_SAs after the rekey request, want 2", len(cb))
	}
	newB := cb[1]
	want("request answered", tb.b, []uint32{old.SPIOut, newB.SPIIn}, []uint32{old.SPIIn})
	// <-- HDR, SK {SA, Nr, TSi, TSr}; a installs both and deletes the old one.
	if !tb.net.Deliver() {
		t.Fatal("no CREATE_CHILD_SA response")
	}
	want("response received", tb.a, []uint32{old.SPIIn, newB.SPIOut}, []uint32{old.SPIOut, newB.SPIIn})
	// HDR, SK {D(ESP, old SPI_i)} -->: b sends on the new SA from now on,
	// and keeps receiving on the old one for a while.
	if !tb.net.Deliver() {
		t.Fatal("no DELETE")
	}
	want("DELETE received", tb.b, []uint32{old.SPIOut, newB.SPIIn}, []uint32{newB.SPIOut})
	ev := tb.b.dp.Events()
	addOut := slices.Index(ev, fmt.Sprintf("add SA %08x in=false", newB.SPIOut))
	delOld := slices.Index(ev, fmt.Sprintf("delete SA %08x", old.SPIIn))
	if addOut < 0 || delOld < 0 || addOut > delOld {
		t.Errorf("b: the new outbound SA must be added before the old one goes:\n%s", strings.Join(ev, "\n"))
	}
	// <-- HDR, SK {D(ESP, old SPI_r)}
	if !tb.net.Deliver() {
		t.Fatal("no DELETE response")
	}
	want("DELETE answered", tb.a, []uint32{old.SPIIn, newB.SPIOut}, []uint32{newB.SPIIn})
	if tb.net.Deliver() {
		t.Fatal("more messages than the four of a rekey")
	}
	tb.advance(deleteRekeyedDelay - time.Second)
	want("before the delay", tb.a, []uint32{old.SPIIn, newB.SPIOut}, []uint32{newB.SPIIn})
	want("before the delay", tb.b, []uint32{old.SPIOut, newB.SPIIn}, []uint32{newB.SPIOut})
	tb.advance(2 * time.Second)
	want("after the delay", tb.a, []uint32{newB.SPIOut}, []uint32{newB.SPIIn})
	want("after the delay", tb.b, []uint32{newB.SPIIn}, []uint32{newB.SPIOut})
	tb.checkKeys()
	// The IKE SA going takes the SAs with it, retired or not.
	if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if err := tb.a.e.DeleteIKESA(tb.established(tb.a).ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.a.e.Close()
	tb.b.e.Close()
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}
