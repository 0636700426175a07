package ike_test

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
)

// Reauthentication (reauth_time, reauth.go): a new IKE SA with a full
// IKE_SA_INIT and IKE_AUTH and new CHILD_SAs replaces the old ones, made
// before the old ones are broken unless make-before-break is off.

// reauthEvery sets reauth_time to an hour without jitter, no IKE SA
// rekeying and CHILD_SA rekeying far later.
func reauthEvery(c *ike.Connection) {
	c.RekeyTime, c.ReauthTime, c.OverTime, c.RandTime = 0, time.Hour, 6*time.Minute, 0
	c.RandExact = true
	c.Children[0].RekeyTime = 10 * time.Hour
}

// noRekey keeps the other side from renewing anything during a test.
func noRekey(c *ike.Connection) {
	c.RekeyTime = 24 * time.Hour
	c.Children[0].RekeyTime = 10 * time.Hour
}

func makeBeforeBreak(on bool) func(c *ike.Config) {
	return func(c *ike.Config) { c.MakeBeforeBreak = &on }
}

// reauthResult is what one side saw during a reauthentication: the
// dataplane events after it started and the SAs before and after.
type reauthResult struct {
	events           []string
	oldIKE, newIKE   ike.IKESAInfo
	oldChild, newChd ike.ChildSAInfo
}

// runReauth establishes a (initiator) with b, lets reauth_time pass and
// returns what each side saw.
func runReauth(t *testing.T, tb *testbed) (a, b reauthResult) {
	t.Helper()
	tb.establish()
	a.oldIKE, b.oldIKE = tb.established(tb.a), tb.established(tb.b)
	a.oldChild, b.oldChild = a.oldIKE.Children[0], b.oldIKE.Children[0]
	na, nb := len(tb.a.dp.Events()), len(tb.b.dp.Events())
	tb.advance(time.Hour + time.Minute)
	a.newIKE, b.newIKE = tb.established(tb.a), tb.established(tb.b)
	if len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 {
		t.Fatalf("IKE_SAs: a %+v, b %+v", tb.a.sas(), tb.b.sas())
	}
	if len(a.newIKE.Children) != 1 || len(b.newIKE.Children) != 1 {
		t.Fatalf("CHILD_SAs: a %+v, b %+v", a.newIKE.Children, b.newIKE.Children)
	}
	a.newChd, b.newChd = a.newIKE.Children[0], b.newIKE.Children[0]
	a.events, b.events = tb.a.dp.Events()[na:], tb.b.dp.Events()[nb:]
	for _, r := range []reauthResult{a, b} {
		if r.newIKE.SPIi == r.oldIKE.SPIi || r.newIKE.SPIr == r.oldIKE.SPIr || r.newIKE.ID == r.oldIKE.ID {
			t.Fatalf("IKE SA not replaced: old %+v, new %+v", r.oldIKE, r.newIKE)
		}
		if r.newChd.SPIIn == r.oldChild.SPIIn || r.newChd.SPIOut == r.oldChild.SPIOut {
			t.Fatalf("CHILD_SA not replaced: old %+v, new %+v", r.oldChild, r.newChd)
		}
	}
	if a.newIKE.SPIi != b.newIKE.SPIi || a.newIKE.SPIr != b.newIKE.SPIr {
		t.Fatalf("new IKE SA differs: a %+v, b %+v", a.newIKE, b.newIKE)
	}
	tb.checkKeys()
	for _, p := range []*peer{tb.a, tb.b} {
		if n := len(p.dp.Policies()); n != 3 {
			t.Fatalf("%s: %d policies, want 3", p.name, n)
		}
	}
	return a, b
}

// index returns the position of the first event with prefix, or fails.
func index(t *testing.T, events []string, prefix string) int {
	t.Helper()
	for i, e := range events {
		if strings.HasPrefix(e, prefix) {
			return i
		}
	}
	t.Fatalf("no event %q in %q", prefix, events)
	return -1
}

// wantFullReauth checks a's logs for a reauthentication with a full
// IKE_SA_INIT and IKE_AUTH, without INITIAL_CONTACT when mbb.
func wantFullReauth(t *testing.T, tb *testbed, r reauthResult, mbb bool) {
	t.Helper()
	l := tb.a.log
	for _, s := range []string{
		fmt.Sprintf("reauthenticating IKE_SA gw[%d]", r.oldIKE.ID),
		fmt.Sprintf("initiating IKE_SA gw[%d] to %s", r.newIKE.ID, addrB),
		fmt.Sprintf("IKE_SA gw[%d] established between", r.newIKE.ID),
		fmt.Sprintf("deleting IKE_SA gw[%d]", r.oldIKE.ID),
	} {
		if !l.contains(s) {
			t.Errorf("a logged no %q", s)
		}
	}
	if n := l.count("generating IKE_SA_INIT request"); n != 2 {
		t.Errorf("%d IKE_SA_INIT requests, want 2", n)
	}
	if n := l.count("generating IKE_AUTH request"); n != 2 {
		t.Errorf("%d IKE_AUTH requests, want 2", n)
	}
	// The first IKE_AUTH has INITIAL_CONTACT; the one made before the old
	// IKE SA is broken must not (the peer would drop the old SA at once).
	want := 1
	if !mbb {
		want = 2
	}
	if n := l.count("N(INIT_CONTACT)"); n != want {
		t.Errorf("INITIAL_CONTACT sent %d times, want %d", n, want)
	}
}

// TestReauthMakeBeforeBreak: at reauth_time the initiator establishes a
// new IKE SA and CHILD_SA, both sides install the new SAs before deleting
// the old ones, and the shared policies stay throughout.
func TestReauthMakeBeforeBreak(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: reauthEvery, connB: noRekey, cfgA: makeBeforeBreak(true)})
	a, b := runReauth(t, tb)
	wantFullReauth(t, tb, a, true)
	for name, r := range map[string]reauthResult{"a": a, "b": b} {
		lastAdd := max(index(t, r.events, fmt.Sprintf("add SA %08x", r.newChd.SPIIn)), index(t, r.events, fmt.Sprintf("add SA %08x", r.newChd.SPIOut)))
		firstDel := min(index(t, r.events, fmt.Sprintf("delete SA %08x", r.oldChild.SPIIn)), index(t, r.events, fmt.Sprintf("delete SA %08x", r.oldChild.SPIOut)))
		if lastAdd > firstDel {
			t.Errorf("%s: old SAs deleted before the new ones were installed: %q", name, r.events)
		}
		for _, e := range r.events {
			if strings.Contains(e, "policy") {
				t.Errorf("%s: policies touched during make-before-break: %q", name, r.events)
				break
			}
		}
	}
}

// TestReauthBreakBeforeMake: without make-before-break the old IKE SA and
// its CHILD_SA (and their policies) go first, then the new ones come.
func TestReauthBreakBeforeMake(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: reauthEvery, connB: noRekey, cfgA: makeBeforeBreak(false)})
	a, b := runReauth(t, tb)
	wantFullReauth(t, tb, a, false)
	for name, r := range map[string]reauthResult{"a": a, "b": b} {
		firstAdd := min(index(t, r.events, fmt.Sprintf("add SA %08x", r.newChd.SPIIn)), index(t, r.events, fmt.Sprintf("add SA %08x", r.newChd.SPIOut)))
		lastDel := max(index(t, r.events, fmt.Sprintf("delete SA %08x", r.oldChild.SPIIn)), index(t, r.events, fmt.Sprintf("delete SA %08x", r.oldChild.SPIOut)))
		if firstAdd < lastDel || index(t, r.events, "delete policy") > firstAdd {
			t.Errorf("%s: new SAs before the old were gone: %q", name, r.events)
		}
	}
	if !tb.a.log.contains(fmt.Sprintf("IKE_SA gw[%d] deleted", a.oldIKE.ID)) {
		t.Error("old IKE SA not deleted first")
	}
}

// TestReauthResponderActively: the responder's reauth_time comes first:
// it reauthenticates as initiator of the new IKE SA (charon's "actively"),
// both settings of make-before-break.
func TestReauthResponderActively(t *testing.T) {
	for _, mbb := range []bool{true, false} {
		t.Run(fmt.Sprintf("make_before_break=%v", mbb), func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: noRekey, connB: reauthEvery, cfgB: makeBeforeBreak(mbb)})
			tb.establish()
			old := tb.established(tb.a)
			tb.advance(time.Hour + time.Minute)
			na, nb := tb.established(tb.a), tb.established(tb.b)
			if len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 || na.SPIi == old.SPIi || na.SPIi != nb.SPIi {
				t.Fatalf("IKE_SAs: a %+v, b %+v", tb.a.sas(), tb.b.sas())
			}
			if na.Initiator || !nb.Initiator {
				t.Fatalf("b is not the new IKE SA's initiator: a %+v, b %+v", na, nb)
			}
			if len(na.Children) != 1 || len(nb.Children) != 1 {
				t.Fatalf("CHILD_SAs: a %+v, b %+v", na.Children, nb.Children)
			}
			if !tb.b.log.contains(fmt.Sprintf("reauthenticating IKE_SA gw[%d] actively", old.ID)) {
				t.Error("no active reauthentication logged")
			}
			tb.checkKeys()
		})
	}
}

// TestReauthUniqueReplace: a responder with unique = replace sees the new
// IKE SA as a reauthentication from the same address: it deletes the old
// one later (or the initiator does first), never the new one.
func TestReauthUniqueReplace(t *testing.T) {
	for _, mbb := range []bool{true, false} {
		t.Run(fmt.Sprintf("make_before_break=%v", mbb), func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: reauthEvery, cfgA: makeBeforeBreak(mbb),
				connB: func(c *ike.Connection) { noRekey(c); c.Unique = ike.UniqueReplace }})
			_, b := runReauth(t, tb)
			if mbb && !tb.b.log.contains("schedule delete of duplicate IKE_SA for peer 'moon.example.org' due to uniqueness policy and suspected reauthentication") {
				t.Error("b did not take the new IKE SA for a reauthentication")
			}
			tb.advance(15 * time.Second)
			if n := tb.established(tb.b); n.SPIi != b.newIKE.SPIi || len(n.Children) != 1 || len(tb.b.sas()) != 1 {
				t.Fatalf("b: %+v", tb.b.sas())
			}
			tb.established(tb.a)
			tb.checkKeys()
		})
	}
}

// TestReauthAfterRekey: an IKE SA rekey renews the keys and keeps the
// time of reauthentication (charon's "rescheduling reauthentication").
func TestReauthAfterRekey(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) {
		reauthEvery(c)
		c.RekeyTime = 40 * time.Minute
		c.ReauthTime = 70 * time.Minute
	}, connB: noRekey})
	tb.establish()
	first := tb.established(tb.a)
	tb.advance(41 * time.Minute)
	rekeyed := tb.established(tb.a)
	if rekeyed.SPIi == first.SPIi || tb.a.log.contains("reauthenticating") {
		t.Fatalf("not rekeyed at rekey_time: %+v", rekeyed)
	}
	tb.advance(30 * time.Minute)
	if !tb.a.log.contains(fmt.Sprintf("reauthenticating IKE_SA gw[%d]", rekeyed.ID)) {
		t.Fatal("no reauthentication at reauth_time after the rekey")
	}
	if n := tb.established(tb.a); n.SPIi == rekeyed.SPIi || len(tb.a.sas()) != 1 || len(tb.b.sas()) != 1 {
		t.Fatalf("a %+v, b %+v", tb.a.sas(), tb.b.sas())
	}
	tb.checkKeys()
}

// TestReauthRoadWarrior: a road warrior reauthenticates with EAP again
// and asks for the virtual IP it has; the gateway, responder of an IKE SA
// whose peer authenticated with EAP and holds a virtual IP, leaves the
// reauthentication to it (charon's "initiator did not reauthenticate as
// requested").
func TestReauthRoadWarrior(t *testing.T) {
	for _, mbb := range []bool{true, false} {
		t.Run(fmt.Sprintf("make_before_break=%v", mbb), func(t *testing.T) {
			rb := newRABed(t, raOptions{})
			rb.a.e.Close()
			c := baseConn(addrA, addrB, "carol", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
			rb.clientConn(c, "carol", []eap.Type{eap.TypeMSCHAPv2})
			reauthEvery(c)
			rb.a = rb.newPeer("a", addrA, c, "", 0xc3000000, func(cfg *ike.Config) {
				cfg.Credentials = ike.Credentials{CAs: []*x509.Certificate{rb.ca.Cert}, EAP: []ike.EAPSecret{{IDs: []string{"carol"}, Secret: []byte("carol's password")}}}
				cfg.MakeBeforeBreak = &mbb
			})
			rb.connect(rb.a)
			old := rb.established(rb.a)
			rb.advance(time.Hour + time.Minute)
			n, g := rb.established(rb.a), rb.established(rb.b)
			if n.SPIi == old.SPIi || n.SPIi != g.SPIi || len(rb.b.sas()) != 1 || len(rb.a.sas()) != 1 {
				t.Fatalf("a %+v, b %+v", rb.a.sas(), rb.b.sas())
			}
			if !slices.Equal(n.LocalVIPs, old.LocalVIPs) || !slices.Equal(g.RemoteVIPs, old.LocalVIPs) || len(n.Children) != 1 {
				t.Fatalf("virtual IPs: before %v, after client %v, gateway %v", old.LocalVIPs, n.LocalVIPs, g.RemoteVIPs)
			}
			// The dataplane keeps the virtual IP; made before the break,
			// the old IKE SA's delete does not remove what the new one holds.
			if got := rb.a.dp.VirtualIPs(); !slices.Equal(got, old.LocalVIPs) {
				t.Errorf("client's dataplane virtual IPs %v, want %v: %v", got, old.LocalVIPs, rb.a.dp.Events())
			}
			if removed := slices.Contains(rb.a.dp.Events(), "delete virtual IP "+old.LocalVIPs[0].String()); removed == mbb {
				t.Errorf("virtual IP removed during the reauthentication: %v (make_before_break=%v): %v", removed, mbb, rb.a.dp.Events())
			}
			if rb.b.log.count("EAP method EAP_MSCHAPV2 succeeded") != 2 {
				t.Error("no second EAP authentication")
			}
			if _, online, _ := rb.pool.Leases.Stats(); online != 1 {
				t.Errorf("%d leases online, want 1", online)
			}
			rb.checkKeys()
		})
	}
	t.Run("gateway", func(t *testing.T) {
		rb := newRABed(t, raOptions{})
		rb.b.e.Close()
		rb.gwConn.ReauthTime, rb.gwConn.RekeyTime = time.Hour, 0
		rb.b = rb.newPeer("b", addrB, rb.gwConn, "", 0xc4000000, func(cfg *ike.Config) {
			cfg.Credentials = ike.Credentials{EAP: rb.users}
			cfg.Pools = []*ike.Pool{rb.pool}
		})
		rb.establish()
		old := rb.established(rb.b)
		rb.advance(time.Hour + time.Minute)
		if n := rb.established(rb.b); n.SPIi != old.SPIi {
			t.Fatalf("gateway reauthenticated: %+v", n)
		}
		wantLog(t, rb.b, "initiator did not reauthenticate as requested", fmt.Sprintf("IKE_SA gw[%d] will timeout in", old.ID))
	})
}
