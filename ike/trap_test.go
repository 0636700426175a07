package ike_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// policyCount counts the policies of a reqid in a dataplane.
func policyCount(p *peer, reqid uint32) int {
	n := 0
	for _, pol := range p.dp.Policies() {
		if pol.ReqID == reqid {
			n++
		}
	}
	return n
}

// A trap installs the child's policies (out, in, fwd) without SAs; an
// acquire initiates the CHILD_SA, which takes the trap's reqid and
// policies; acquires while it is pending are counted, not initiated;
// the policies stay after the CHILD_SA goes, and go with the trap.
func TestTrapAcquire(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	if err := tb.a.e.Install("", "net"); err != nil {
		t.Fatal(err)
	}
	traps := tb.a.e.Traps()
	if len(traps) != 1 || traps[0].Conn != "gw" || traps[0].Child != "net" || traps[0].Mode != ike.ModeTunnel ||
		traps[0].LocalTS[0].String() != "10.1.0.0/16" || traps[0].RemoteTS[0].String() != "10.2.0.0/16" {
		t.Fatalf("traps: %+v", traps)
	}
	reqid := traps[0].ReqID
	if n := policyCount(tb.a, reqid); n != 3 {
		t.Fatalf("%d trap policies with reqid %d, want out, in and fwd: %+v", n, reqid, tb.a.dp.Policies())
	}
	if sas := tb.a.dp.SAs(); len(sas) != 0 || len(tb.a.sas()) != 0 {
		t.Fatalf("a trap made SAs: %+v", sas)
	}
	// Installing again is no error and no second set of policies.
	if err := tb.a.e.Install("gw", "net"); err != nil {
		t.Fatal(err)
	}
	if n := len(tb.a.dp.Policies()); n != 3 {
		t.Errorf("%d policies after a second install", n)
	}

	src, dst := netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.2.0.7")
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	// A burst before the answer: one initiation.
	for range 5 {
		if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
			t.Fatal(err)
		}
	}
	if st := tb.a.e.Stats(); st.Acquires != 6 || st.AcquiresPending != 5 || st.AcquiresInitiated != 1 {
		t.Errorf("acquires %d, pending %d, initiated %d; want 6, 5 and 1", st.Acquires, st.AcquiresPending, st.AcquiresInitiated)
	}
	if n := len(tb.a.sas()); n != 1 {
		t.Fatalf("%d IKE SAs after a burst of acquires, want 1", n)
	}
	tb.net.Flush()
	children := tb.children(tb.a)
	if len(children) != 1 || children[0].State != ike.ChildSAInstalled || children[0].ReqID != reqid {
		t.Fatalf("children after the acquire: %+v (trap reqid %d)", children, reqid)
	}
	if n := len(tb.a.dp.Policies()); n != 3 {
		t.Errorf("%d policies with the CHILD_SA installed, want the trap's 3: %+v", n, tb.a.dp.Policies())
	}
	if len(tb.a.dp.SAs()) != 2 {
		t.Errorf("SAs: %+v", tb.a.dp.SAs())
	}
	// Still pending (the CHILD_SA is there): a late acquire starts nothing.
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	if len(tb.a.sas()) != 1 || len(tb.children(tb.a)) != 1 {
		t.Errorf("a late acquire started more: %+v", tb.a.sas())
	}

	// The CHILD_SA goes: the trap keeps the policies.
	if err := tb.a.e.DeleteChildSA(children[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(tb.children(tb.a)) != 0 || len(tb.a.dp.SAs()) != 0 {
		t.Fatalf("CHILD_SA not deleted: %+v", tb.children(tb.a))
	}
	if n := policyCount(tb.a, reqid); n != 3 {
		t.Errorf("%d policies after the CHILD_SA went, want the trap's 3", n)
	}
	// The next acquire negotiates the CHILD_SA on the IKE SA there.
	tb.advance(acquireHoldForTest)
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(tb.a.sas()) != 1 || len(tb.children(tb.a)) != 1 || tb.children(tb.a)[0].ReqID != reqid {
		t.Fatalf("second acquire: IKE SAs %+v, children %+v", tb.a.sas(), tb.children(tb.a))
	}

	// Uninstalled while the CHILD_SA is up: its policies stay with it.
	if err := tb.a.e.Uninstall("", "net"); err != nil {
		t.Fatal(err)
	}
	if len(tb.a.e.Traps()) != 0 {
		t.Error("trap listed after uninstall")
	}
	if n := policyCount(tb.a, reqid); n != 3 {
		t.Errorf("%d policies after uninstall with the CHILD_SA up, want 3", n)
	}
	if err := tb.a.e.DeleteChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if n := len(tb.a.dp.Policies()); n != 0 {
		t.Errorf("%d policies left after the trap and the CHILD_SA went", n)
	}
	if err := tb.a.e.Uninstall("", "net"); !errors.Is(err, ike.ErrNoTrap) {
		t.Errorf("second uninstall: %v, want ErrNoTrap", err)
	}
	if err := tb.a.e.Acquire(reqid, src, dst); !errors.Is(err, ike.ErrNoTrap) {
		t.Errorf("acquire without a trap: %v, want ErrNoTrap", err)
	}
	if st := tb.a.e.Stats(); st.AcquiresUnknown != 1 {
		t.Errorf("unknown acquires %d, want 1", st.AcquiresUnknown)
	}
}

// acquireHoldForTest is past the engine's hold of an initiation.
const acquireHoldForTest = 31 * time.Second

// An acquire whose IKE SA failed initiates again; a trap of an unknown
// child or a connection without a peer address is refused.
func TestTrapErrors(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.RemoteAddrs = nil }})
	if err := tb.a.e.Install("", "nope"); !errors.Is(err, ike.ErrUnknownConnection) {
		t.Errorf("unknown child: %v", err)
	}
	if err := tb.a.e.Install("gw", "net"); err == nil || len(tb.a.dp.Policies()) != 0 {
		t.Errorf("a trap without a remote address: %v, policies %+v", err, tb.a.dp.Policies())
	}
}

// The IKE SA initiated for an acquire fails (no answer): once it is
// gone, the next acquire initiates again.
func TestTrapAcquireAfterFailure(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	if err := tb.a.e.Install("gw", "net"); err != nil {
		t.Fatal(err)
	}
	reqid := tb.a.e.Traps()[0].ReqID
	src, dst := netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.2.0.7")
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	// Nothing reaches b: the retransmits give up.
	for range 200 {
		tb.net.Drop()
		step, ok := tb.clock.Next()
		if !ok {
			break
		}
		tb.clock.Advance(step)
	}
	if n := len(tb.a.sas()); n != 0 {
		t.Fatalf("%d IKE SAs after the retransmits gave up", n)
	}
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	if st := tb.a.e.Stats(); st.AcquiresPending != 0 || len(tb.a.sas()) != 1 {
		t.Errorf("after the failure: pending %d, IKE SAs %d; want 0 and a new one", st.AcquiresPending, len(tb.a.sas()))
	}
	if n := len(tb.a.dp.Policies()); n != 3 {
		t.Errorf("%d policies, want the trap's 3", n)
	}
}

// IKEv1: the acquire starts Main Mode and a Quick Mode for the trapped
// IPsec SA, which takes the trap's reqid and policies; once it is gone,
// the next acquire runs a Quick Mode on the ISAKMP SA there.
func TestTrapAcquireV1(t *testing.T) {
	tb := v1Bed(t)
	if err := tb.a.e.Install("gw", "net"); err != nil {
		t.Fatal(err)
	}
	reqid := tb.a.e.Traps()[0].ReqID
	src, dst := netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.2.0.7")
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.wantV1Established()
	children := tb.children(tb.a)
	if len(children) != 1 || children[0].ReqID != reqid || len(tb.a.dp.Policies()) != 3 {
		t.Fatalf("after the acquire: children %+v, policies %+v (trap reqid %d)", children, tb.a.dp.Policies(), reqid)
	}
	if err := tb.a.e.DeleteChildSA(children[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(tb.children(tb.a)) != 0 || policyCount(tb.a, reqid) != 3 {
		t.Fatalf("after the delete: children %+v, policies %+v", tb.children(tb.a), tb.a.dp.Policies())
	}
	tb.advance(acquireHoldForTest)
	if err := tb.a.e.Acquire(reqid, src, dst); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if n := len(tb.a.sas()); n != 1 || len(tb.children(tb.a)) != 1 || tb.children(tb.a)[0].ReqID != reqid {
		t.Fatalf("second acquire: %d ISAKMP SAs, children %+v", n, tb.children(tb.a))
	}
}

// The request an acquire triggers proposes the packet's addresses first
// (RFC 7296 section 2.9): a responder that cannot take our selectors
// sees them in its log, as we see what we proposed.
func TestTrapAcquireProposesPacketTS(t *testing.T) {
	tb := newTestbed(t, bedOptions{connB: func(c *ike.Connection) { c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.5.0.0/16") }})
	if err := tb.a.e.Install("gw", "net"); err != nil {
		t.Fatal(err)
	}
	if err := tb.a.e.Acquire(tb.a.e.Traps()[0].ReqID, netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.2.0.7")); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if !tb.a.log.contains("proposing traffic selectors for us:") || !tb.a.log.contains(" 10.1.0.5/32") || !tb.a.log.contains(" 10.2.0.7/32") {
		t.Errorf("a did not propose the packet's addresses:\n%s", strings.Join(tb.a.log.all(), "\n"))
	}
	if !tb.b.log.contains("=== 10.1.0.5/32 10.1.0.0/16") {
		t.Errorf("b did not get the packet's address first:\n%s", strings.Join(tb.b.log.all(), "\n"))
	}
}

// dpd_action = trap: when the peer is found dead, the CHILD_SA's trap
// goes in before its SAs go, so its policies never leave; the next
// packet's acquire negotiates it again.
func TestTrapOnDeadPeer(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) {
		c.DPDDelay = 30 * time.Second
		c.Children[0].DPDAction = ike.ActionTrap
	}})
	tb.establish()
	reqid := tb.children(tb.a)[0].ReqID
	before := len(tb.a.dp.Events())
	tb.net.Filter = dropAll // the peer is gone
	tb.advance(31*time.Second + 170*time.Second)
	if len(tb.a.sas()) != 0 || len(tb.a.dp.SAs()) != 0 {
		t.Fatalf("SAs left after the peer died: %+v, %+v", tb.a.sas(), tb.a.dp.SAs())
	}
	traps := tb.a.e.Traps()
	if len(traps) != 1 || traps[0].Child != "net" || traps[0].ReqID != reqid {
		t.Fatalf("traps after the peer died: %+v (CHILD_SA reqid %d)", traps, reqid)
	}
	deletes := 0
	for _, ev := range tb.a.dp.Events()[before:] {
		if strings.HasPrefix(ev, "delete policy") {
			deletes++
		}
	}
	if n := policyCount(tb.a, reqid); n != 3 || deletes != 0 {
		t.Errorf("%d policies with reqid %d, %d deleted meanwhile; want the 3 kept", n, reqid, deletes)
	}
	tb.net.Filter = nil // the peer is back
	if err := tb.a.e.Acquire(reqid, netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.2.0.7")); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if c := tb.children(tb.a); len(c) != 1 || c[0].ReqID != reqid {
		t.Errorf("after the acquire: %+v", c)
	}
}

// close_action = trap: the peer deletes the CHILD_SA; its trap keeps the
// policies.
func TestTrapOnClose(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.Children[0].CloseAction = ike.ActionTrap }})
	tb.establish()
	reqid := tb.children(tb.a)[0].ReqID
	if err := tb.b.e.DeleteChildSA(tb.children(tb.b)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(tb.children(tb.a)) != 0 {
		t.Fatalf("CHILD_SA still there: %+v", tb.children(tb.a))
	}
	if traps := tb.a.e.Traps(); len(traps) != 1 || traps[0].ReqID != reqid || policyCount(tb.a, reqid) != 3 {
		t.Errorf("traps %+v, policies %+v", traps, tb.a.dp.Policies())
	}
	// Deleted by us (swanctl --terminate): no trap.
	tb2 := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.Children[0].CloseAction = ike.ActionTrap }})
	tb2.establish()
	if err := tb2.a.e.DeleteChildSA(tb2.children(tb2.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb2.net.Flush()
	if traps := tb2.a.e.Traps(); len(traps) != 0 || len(tb2.a.dp.Policies()) != 0 {
		t.Errorf("after our own delete: traps %+v, policies %+v", traps, tb2.a.dp.Policies())
	}
}

// Two traps of one connection fire at once: one IKE SA carries both
// CHILD_SAs, the second negotiated after the first's IKE_AUTH.
func TestTrapAcquireTwoChildren(t *testing.T) {
	web := func(local, remote string) func(c *ike.Connection) {
		return func(c *ike.Connection) {
			w := *c.Children[0]
			w.Name, w.LocalTS, w.RemoteTS = "web", ike.MustParseTSSpecs(local), ike.MustParseTSSpecs(remote)
			c.Children = append(c.Children, &w)
		}
	}
	tb := newTestbed(t, bedOptions{connA: web("10.11.0.0/24", "10.12.0.0/24"), connB: web("10.12.0.0/24", "10.11.0.0/24")})
	for _, child := range []string{"net", "web"} {
		if err := tb.a.e.Install("gw", child); err != nil {
			t.Fatal(err)
		}
	}
	traps := tb.a.e.Traps()
	if len(traps) != 2 || traps[0].ReqID == traps[1].ReqID {
		t.Fatalf("traps: %+v", traps)
	}
	for _, tr := range traps {
		if err := tb.a.e.Acquire(tr.ReqID, tr.LocalTS[0].Start, tr.RemoteTS[0].Start); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tb.a.sas()); n != 1 {
		t.Fatalf("%d IKE SAs for two acquires of one connection, want 1", n)
	}
	tb.net.Flush()
	got := map[string]uint32{}
	for _, c := range tb.children(tb.a) {
		got[c.Name] = c.ReqID
	}
	if len(got) != 2 || got[traps[0].Child] != traps[0].ReqID || got[traps[1].Child] != traps[1].ReqID {
		t.Errorf("children %v, traps %+v", got, traps)
	}
	if st := tb.a.e.Stats(); st.AcquiresInitiated != 2 {
		t.Errorf("initiated %d, want 2", st.AcquiresInitiated)
	}
}

// An acquire while the trapped child is already being negotiated (an
// initiate in flight) adds no second CHILD_SA.
func TestTrapAcquireWhileInitiating(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	if err := tb.a.e.Install("gw", "net"); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.a.e.InitiateChildren("gw", "net"); err != nil {
		t.Fatal(err)
	}
	reqid := tb.a.e.Traps()[0].ReqID
	if err := tb.a.e.Acquire(reqid, netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.2.0.7")); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if n := len(tb.a.sas()); n != 1 || len(tb.children(tb.a)) != 1 || len(tb.children(tb.b)) != 1 {
		t.Errorf("IKE SAs %d, children a %+v, b %+v; want one of each", n, tb.children(tb.a), tb.children(tb.b))
	}
}
