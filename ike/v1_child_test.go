package ike_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// TestV1CreateChildSA: a CHILD_SA initiated by name over an established
// ISAKMP SA (swanctl --initiate --child) comes in a Quick Mode of that
// ISAKMP SA, from either end, also after its predecessor was terminated.
// One of a config that is installed is not negotiated again (as with
// IKEv2, and as charon does); the twins "net2" and "net3" of "net", with
// the same selectors, come beside it:
//
//	HASH(1) SA Ni [KE] IDci IDcr -->  <-- HASH(2) SA Nr [KE] IDci IDcr  HASH(3) -->
func TestV1CreateChildSA(t *testing.T) {
	tb := v1Bed(t, twinChildren("net2", "net3"))
	id := tb.establishWith("net")
	tb.wantV1Established()
	isakmpA, isakmpB := tb.established(tb.a), tb.established(tb.b)
	first := isakmpA.Children[0]
	used := map[uint32]bool{first.SPIIn: true, first.SPIOut: true}

	// sameISAKMP checks that no phase 1 ran again: the one ISAKMP SA of
	// each side is the one of the start.
	sameISAKMP := func() {
		t.Helper()
		for _, x := range []struct {
			p    *peer
			want ike.IKESAInfo
		}{{tb.a, isakmpA}, {tb.b, isakmpB}} {
			sas := x.p.sas()
			if len(sas) != 1 || sas[0].ID != x.want.ID || sas[0].SPIi != x.want.SPIi || sas[0].SPIr != x.want.SPIr || sas[0].State != ike.IKESAEstablished {
				t.Fatalf("%s: IKE_SAs %+v, want only %+v", x.p.name, sas, x.want)
			}
		}
	}
	// fresh checks that a CHILD_SA has SPIs not seen before and notes them.
	fresh := func(c ike.ChildSAInfo) {
		t.Helper()
		if !strings.HasPrefix(c.Name, "net") || c.State != ike.ChildSAInstalled || used[c.SPIIn] || used[c.SPIOut] {
			t.Fatalf("CHILD_SA %+v: want a new installed one (SPIs used before: %v)", c, used)
		}
		used[c.SPIIn], used[c.SPIOut] = true, true
	}

	// wantPolicies checks that the CHILD_SAs of one config share their
	// policies: out, in and fwd once per config (the responder takes the
	// first config whose selectors fit, "net", for all of them).
	wantPolicies := func(when string) {
		t.Helper()
		for _, p := range []*peer{tb.a, tb.b} {
			cfgs := map[string]bool{}
			for _, c := range tb.children(p) {
				cfgs[c.Name] = true
			}
			if n := len(p.dp.Policies()); n != 3*len(cfgs) {
				t.Errorf("%s: %d policies%s, want out, in and fwd once for each of %d configs", p.name, n, when, len(cfgs))
			}
		}
	}

	// Terminated, then initiated again by name on the same ISAKMP SA.
	if err := tb.a.e.DeleteChildSA(first.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(tb.children(tb.a)) != 0 || len(tb.children(tb.b)) != 0 || len(tb.a.dp.SAs()) != 0 || len(tb.b.dp.SAs()) != 0 {
		t.Fatalf("the CHILD_SA was not terminated")
	}
	quicks := tb.a.log.count("generating QUICK_MODE request")
	mainModes := tb.a.log.count("generating ID_PROT request")
	if err := tb.a.e.CreateChildSA(id, "net"); err != nil {
		t.Fatalf("CreateChildSA on the ISAKMP SA: %v", err)
	}
	// Until HASH(2) is in, the initiator lists it as being created.
	if cs := tb.children(tb.a); len(cs) != 1 || cs[0].ID != 0 || cs[0].State != ike.ChildSACreated || cs[0].Name != "net" {
		t.Fatalf("a lists %+v while the Quick Mode is under way", cs)
	}
	tb.net.Flush()
	tb.wantV1Established() // one IPsec SA each, SPIs and keys twinned, reqids
	sameISAKMP()
	second := tb.children(tb.a)[0]
	fresh(second)
	if second.ID <= first.ID {
		t.Errorf("new CHILD_SA has ID %d, the terminated one had %d", second.ID, first.ID)
	}
	if n := tb.a.log.count("generating QUICK_MODE request") - quicks; n != 2 {
		t.Errorf("a sent %d Quick Mode requests, want HASH(1) and HASH(3)", n)
	}
	if tb.a.log.count("generating ID_PROT request") != mainModes {
		t.Errorf("a ran Main Mode again")
	}
	if !tb.a.log.contains(fmt.Sprintf("CHILD_SA net{%d} established with SPIs %.8x_i %.8x_o", second.ID, second.SPIIn, second.SPIOut)) {
		t.Errorf("a did not log the new CHILD_SA as charon does")
	}

	// Initiated while it is installed: no Quick Mode, an error naming
	// the installed one.
	quicks = tb.a.log.count("generating QUICK_MODE request")
	if err := tb.a.e.CreateChildSA(id, "net"); !errors.Is(err, ike.ErrChildExists) ||
		!strings.Contains(err.Error(), fmt.Sprintf("existing duplicate net{%d} with SPIs %.8x_i %.8x_o", second.ID, second.SPIIn, second.SPIOut)) {
		t.Fatalf("CreateChildSA of an installed CHILD_SA: %v", err)
	}
	tb.net.Flush()
	if n := tb.a.log.count("generating QUICK_MODE request") - quicks; n != 0 || len(tb.children(tb.a)) != 1 {
		t.Fatalf("a sent %d Quick Mode messages for an installed CHILD_SA", n)
	}
	// Its twin with the same selectors: a second one beside it, each with
	// its own SPIs and keys, sharing the policies of their selectors.
	if err := tb.a.e.CreateChildSA(id, "net2"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	sameISAKMP()
	ca, cb := tb.children(tb.a), tb.children(tb.b)
	if len(ca) != 2 || len(cb) != 2 || ca[0].SPIIn != second.SPIIn {
		t.Fatalf("a has %+v, b %+v: want the installed CHILD_SA and a new one", ca, cb)
	}
	third := ca[1]
	fresh(third)
	if cb[1].SPIIn != third.SPIOut || cb[1].SPIOut != third.SPIIn || cb[0].State != ike.ChildSAInstalled {
		t.Fatalf("b has %+v, a %+v", cb, ca)
	}
	tb.checkKeys() // all four ESP SAs of each side have their twins
	wantPolicies("")

	// The responder of phase 1 initiates one on its ISAKMP SA too.
	if err := tb.b.e.CreateChildSA(isakmpB.ID, "net3"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	sameISAKMP()
	ca, cb = tb.children(tb.a), tb.children(tb.b)
	if len(ca) != 3 || len(cb) != 3 {
		t.Fatalf("a has %d CHILD_SAs, b %d, want 3", len(ca), len(cb))
	}
	fresh(cb[2])
	tb.checkKeys()

	// Terminating one of them leaves the others and their policies.
	if err := tb.a.e.DeleteChildSA(second.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if ca, cb := tb.children(tb.a), tb.children(tb.b); len(ca) != 2 || len(cb) != 2 {
		t.Fatalf("after terminating one: a has %+v, b %+v", ca, cb)
	}
	tb.settleRekeys()
	tb.checkKeys()
	wantPolicies(" after terminating one of three CHILD_SAs")

	// Unknown child configs and ISAKMP SAs are errors.
	if err := tb.a.e.CreateChildSA(id, "nonesuch"); !errors.Is(err, ike.ErrUnknownConnection) {
		t.Errorf("CreateChildSA of an unknown child: %v", err)
	}
	if err := tb.a.e.DeleteIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if err := tb.a.e.CreateChildSA(id, "net"); !errors.Is(err, ike.ErrUnknownSA) {
		t.Errorf("CreateChildSA on a deleted ISAKMP SA: %v", err)
	}
	tb.settleRekeys()
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

// TestV1RekeyDuringReauthentication: an IPsec SA is rekeyed in a Quick
// Mode of the ISAKMP SA that is being reauthenticated; the new ISAKMP SA
// comes up first and the old one goes, with that Quick Mode (found by
// FuzzStatefulV1: the IPsec SA stayed REKEYING for good). The new ISAKMP
// SA rekeys it instead.
func TestV1RekeyDuringReauthentication(t *testing.T) {
	tb := v1Bed(t)
	id := tb.establish()
	old := tb.children(tb.a)[0]
	if err := tb.a.e.RekeyIKESA(id); err != nil {
		t.Fatal(err)
	}
	for range 4 { // Main Mode messages 1 to 4 of the new ISAKMP SA
		tb.net.Deliver()
	}
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.settleRekeys()
	ch := tb.children(tb.a)
	if len(ch) != 1 || ch[0].SPIIn == old.SPIIn || ch[0].State != ike.ChildSAInstalled {
		t.Fatalf("after the reauthentication: %+v, want a successor of %08x installed", ch, old.SPIIn)
	}
	if sa := tb.established(tb.a); sa.ID == id {
		t.Fatalf("the ISAKMP SA was not reauthenticated")
	}
	tb.wantV1Established()
}

// TestV1RekeyGivenUp: a Quick Mode rekey that gets no answer leaves the
// IPsec SA installed, and a later rekey works.
func TestV1RekeyGivenUp(t *testing.T) {
	tb := v1Bed(t)
	tb.establish()
	old := tb.children(tb.a)[0]
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram { return nil }
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.advance(3 * time.Minute)
	if ch := tb.children(tb.a); len(ch) != 1 || ch[0].State != ike.ChildSAInstalled || ch[0].SPIIn != old.SPIIn {
		t.Fatalf("after a rekey without answer: %+v", ch)
	}
	tb.net.Filter = nil
	tb.wantV1Rekey()
}

// TestV1QuickModeDuringPeerReauthentication: the responder of phase 1
// reauthenticates the ISAKMP SA while the initiator runs a Quick Mode on
// the old one; the new ISAKMP SA comes up on the reauthenticating side
// before that Quick Mode's HASH(3) arrives (found by FuzzStatefulV1: the
// old SA was deleted at once, HASH(3) then found no SA, and only one end
// had the new IPsec SA). The old SA now stays until its Quick Modes are
// done, and both ends end up with the same IPsec SAs on the new one.
func TestV1QuickModeDuringPeerReauthentication(t *testing.T) {
	tb := v1Bed(t, twinChildren("net2"))
	id := tb.establishWith("net")
	if err := tb.b.e.RekeyIKESA(tb.established(tb.b).ID); err != nil {
		t.Fatal(err)
	}
	for range 4 { // Main Mode messages 1 to 4; b's MM5 is queued
		tb.net.Deliver()
	}
	if err := tb.a.e.CreateChildSA(id, "net2"); err != nil {
		t.Fatal(err)
	}
	tb.net.Deliver() // MM5: a has the new ISAKMP SA and answers MM6
	tb.net.Deliver() // QM1 on the old ISAKMP SA: b answers QM2
	tb.net.Deliver() // MM6: b has the new ISAKMP SA
	tb.net.Flush()   // QM2, HASH(3), the old ISAKMP SA's DELETE
	tb.settleRekeys()
	a, b := tb.established(tb.a), tb.established(tb.b)
	if a.ID == id || a.SPIi != b.SPIi || a.SPIr != b.SPIr {
		t.Fatalf("ISAKMP SAs: a %+v, b %+v", a, b)
	}
	if len(a.Children) != 2 || len(b.Children) != 2 {
		t.Fatalf("a has %d IPsec SAs, b %d, want both 2", len(a.Children), len(b.Children))
	}
	tb.checkKeys()
}
