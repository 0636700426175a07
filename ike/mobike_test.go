package ike_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// MOBIKE (RFC 4555) between two engines: a, the original initiator, moves;
// b follows after its return routability check.

var (
	addrA2   = netip.MustParseAddr("192.0.2.11")
	addrA3   = netip.MustParseAddr("192.0.2.21")
	insideA  = netip.MustParseAddr("10.0.0.5")
	natPubA  = netip.MustParseAddr("203.0.113.1")
	natInner = netip.MustParsePrefix("10.0.0.0/24")
)

func mobikeOn(c *ike.Connection) { c.NoMobike = false }

// newMobikeBed is a testbed with MOBIKE on both ends, b accepting a from
// anywhere (it roams).
func newMobikeBed(t *testing.T, o bedOptions) *testbed {
	connA, connB := o.connA, o.connB
	o.connA = func(c *ike.Connection) {
		mobikeOn(c)
		if connA != nil {
			connA(c)
		}
	}
	o.connB = func(c *ike.Connection) {
		mobikeOn(c)
		c.RemoteAddrs = nil
		if connB != nil {
			connB(c)
		}
	}
	tb := newTestbed(t, o)
	tb.establish()
	return tb
}

// roam moves a's engine from one address to another, as a host whose
// interface got a new address: the old one is gone from the network.
func (tb *testbed) roam(from, to netip.Addr) {
	tb.net.Attach(from, nil)
	tb.net.Attach(to, tb.a.e)
	tb.a.e.AddressesChanged([]netip.Addr{to})
	tb.net.Flush()
}

// spis are the SPIs of a peer's ESP SAs, sorted.
func spis(p *peer) []uint32 {
	var out []uint32
	for _, sa := range p.dp.SAs() {
		out = append(out, sa.SPI)
	}
	slices.Sort(out)
	return out
}

// wantPath checks where a peer's ESP SAs and policies are: inbound to
// local from remote, outbound the other way, with or without UDP
// encapsulation.
func wantPath(t *testing.T, p *peer, local, remote netip.Addr, encap bool) {
	t.Helper()
	for _, sa := range p.dp.SAs() {
		dst, src := remote, local
		if sa.Inbound {
			dst, src = local, remote
		}
		if sa.Dst != dst || sa.Src != src {
			t.Errorf("%s: SA %08x inbound=%v is %s -> %s, want %s -> %s", p.name, sa.SPI, sa.Inbound, sa.Src, sa.Dst, src, dst)
		}
		if (sa.Encap != nil) != encap {
			t.Errorf("%s: SA %08x encapsulation %+v, want %v", p.name, sa.SPI, sa.Encap, encap)
		}
	}
	for _, pol := range p.dp.Policies() {
		src, dst := local, remote
		if pol.Dir != ike.DirOut {
			src, dst = remote, local
		}
		if pol.TmplSrc != src || pol.TmplDst != dst {
			t.Errorf("%s: policy %s === %s %s has template %s - %s, want %s - %s", p.name, pol.Src, pol.Dst, pol.Dir, pol.TmplSrc, pol.TmplDst, src, dst)
		}
	}
}

func TestMOBIKENegotiation(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	for _, p := range []*peer{tb.a, tb.b} {
		sa := tb.established(p)
		if sa.Local.Port() != ike.PortNATT || sa.Remote.Port() != ike.PortNATT {
			t.Errorf("%s: IKE_SA on %s - %s, want the NAT-T port after IKE_SA_INIT (RFC 4555 section 3.3)", p.name, sa.Local, sa.Remote)
		}
	}
	if !tb.a.log.contains("generating IKE_AUTH request 1 [") || !tb.a.log.contains("N(MOBIKE_SUP) N(NO_ADD_ADDR)") {
		t.Error("a did not announce MOBIKE in its IKE_AUTH request")
	}
	if !tb.a.log.contains("peer supports MOBIKE") {
		t.Error("a did not learn that b supports MOBIKE")
	}
	// ESP is not encapsulated: there is no NAT.
	wantPath(t, tb.a, addrA, addrB, false)

	// With mobike = no on the responder, nothing moves.
	tb2 := newMobikeBed(t, bedOptions{connB: func(c *ike.Connection) { c.NoMobike = true }})
	if tb2.a.log.contains("peer supports MOBIKE") {
		t.Error("MOBIKE negotiated with a responder that has it off")
	}
	tb2.net.Attach(addrA2, tb2.a.e)
	tb2.a.e.AddressesChanged([]netip.Addr{addrA2})
	tb2.net.Flush()
	if tb2.a.log.contains("requesting address change using MOBIKE") {
		t.Error("an address update without MOBIKE negotiated")
	}
}

// The initiator's address changes, no NAT: both ends move their SAs and
// policies, SPIs kept, after b checked the new address with COOKIE2.
func TestMOBIKEUpdateNewAddress(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	before := spis(tb.a)
	var la, lb eventLog
	tb.a.e.SetObserver(&la)
	tb.b.e.SetObserver(&lb)
	idA, idB := tb.established(tb.a).ID, tb.established(tb.b).ID
	tb.roam(addrA, addrA2)
	// Both ends report the move as charon's ike_update, once, before it.
	if got, want := la.take(), []string{fmt.Sprintf("ike-update gw[%d] 192.0.2.1:4500 - 192.0.2.2:4500 -> 192.0.2.11:4500 - 192.0.2.2:4500", idA)}; !slices.Equal(got, want) {
		t.Errorf("a's events:\n got %q\nwant %q", got, want)
	}
	if got, want := lb.take(), []string{fmt.Sprintf("ike-update gw[%d] 192.0.2.2:4500 - 192.0.2.1:4500 -> 192.0.2.2:4500 - 192.0.2.11:4500", idB)}; !slices.Equal(got, want) {
		t.Errorf("b's events:\n got %q\nwant %q", got, want)
	}
	if !tb.a.log.contains("requesting address change using MOBIKE") {
		t.Fatal("a did not request the address change")
	}
	if !tb.a.log.contains("N(UPD_SA_ADDR) N(COOKIE2) N(NATD_S_IP) N(NATD_D_IP)") {
		t.Error("a's update lacks UPDATE_SA_ADDRESSES, COOKIE2 or NAT detection")
	}
	if !tb.b.log.contains("checking path 192.0.2.2[4500] - 192.0.2.11[4500]") {
		t.Error("b did not check the new path with COOKIE2")
	}
	if !tb.b.log.contains("remote address changed from 192.0.2.1 to 192.0.2.11") {
		t.Error("b did not log charon's line for the move")
	}
	if got := tb.established(tb.b).Remote; got != netip.AddrPortFrom(addrA2, ike.PortNATT) {
		t.Errorf("b's IKE_SA is with %s, want %s[4500]", got, addrA2)
	}
	if got := tb.established(tb.a).Local; got.Addr() != addrA2 {
		t.Errorf("a's IKE_SA is on %s", got)
	}
	if !slices.Equal(spis(tb.a), before) || !slices.Equal(spis(tb.b), before) {
		t.Errorf("SPIs changed: a %x, b %x, were %x", spis(tb.a), spis(tb.b), before)
	}
	wantPath(t, tb.a, addrA2, addrB, false)
	wantPath(t, tb.b, addrB, addrA2, false)
	if tb.a.dp.Migrations() == 0 || tb.b.dp.Migrations() == 0 {
		t.Error("the SAs were not migrated in the dataplane")
	}
	tb.checkKeys()
	// The moved IKE SA works: a rekey of the CHILD_SA over the new path.
	if err := tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.settleRekeys()
	if n := len(tb.children(tb.b)); n != 1 {
		t.Fatalf("b has %d CHILD_SAs after the rekey", n)
	}
	wantPath(t, tb.b, addrB, addrA2, false)
}

// The initiator moves behind a NAT, then out of it again: the update's NAT
// detection switches UDP encapsulation of the CHILD_SAs on, then off.
func TestMOBIKEUpdateNAT(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	tb.net.AddNAT(natInner, natPubA, 30000)
	tb.roam(addrA, insideA)
	b := tb.established(tb.b)
	if b.Remote.Addr() != natPubA || !b.NATRemote {
		t.Fatalf("b's IKE_SA is with %s (NAT %v), want %s behind a NAT", b.Remote, b.NATRemote, natPubA)
	}
	if a := tb.established(tb.a); !a.NATLocal {
		t.Error("a does not see its NAT")
	}
	wantPath(t, tb.a, insideA, addrB, true)
	wantPath(t, tb.b, addrB, natPubA, true)
	for _, sa := range tb.b.dp.SAs() {
		if sa.Inbound && sa.Encap.SrcPort != b.Remote.Port() {
			t.Errorf("b's inbound SA encapsulation %+v, want the NAT's port %d", sa.Encap, b.Remote.Port())
		}
	}
	// Keepalives start behind the NAT.
	tb.advance(30 * time.Second)
	if tb.a.e.Stats().KeepAlivesSent == 0 {
		t.Error("no NAT-T keepalives behind the NAT")
	}
	// Out of the NAT again.
	tb.roam(insideA, addrA3)
	b = tb.established(tb.b)
	if b.Remote.Addr() != addrA3 || b.NATRemote || b.NATLocal {
		t.Fatalf("b's IKE_SA is with %s (NAT %v/%v)", b.Remote, b.NATLocal, b.NATRemote)
	}
	wantPath(t, tb.a, addrA3, addrB, false)
	wantPath(t, tb.b, addrB, addrA3, false)
	tb.checkKeys()
}

// notifyChain encodes notify payloads (protocol 0, no SPI) as the inner
// payloads of an SK payload whose first payload is N.
func notifyChain(ns ...*message.Notify) []byte {
	var out []byte
	for i, n := range ns {
		next := byte(0)
		if i+1 < len(ns) {
			next = byte(message.PayloadN)
		}
		l := 8 + len(n.Data)
		out = append(out, next, 0, byte(l>>8), byte(l), 0, 0)
		out = binary.BigEndian.AppendUint16(out, uint16(n.NotifyType))
		out = append(out, n.Data...)
	}
	return out
}

func mkNotify(t message.NotifyType, data []byte) *message.Notify {
	return &message.Notify{NotifyType: t, Data: data}
}

// A COOKIE2 check answered with another cookie moves nothing: the CHILD_SAs
// stay on the old path, the refusal is counted.
func TestMOBIKEForgedCookie2(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	tb.net.Attach(addrA2, tb.a.e)
	// a's update reaches b; b answers and sends its COOKIE2 check (a
	// request: no R flag), which we hold back and answer ourselves with
	// a wrong cookie.
	var check *ike.Datagram
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if d.Local.Addr() == addrB && d.Remote.Addr() == addrA2 && len(d.Data) > 4+19 && message.Flags(d.Data[4+19])&message.FlagResponse == 0 {
			check = &d
			return nil
		}
		return []ike.Datagram{d}
	}
	tb.a.e.AddressesChanged([]netip.Addr{addrA2})
	tb.net.Flush()
	if check == nil || !tb.b.log.contains("checking path") {
		t.Fatal("b sent no COOKIE2 check")
	}
	sa := tb.established(tb.b)
	resp, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 0,
		Flags: message.FlagResponse | message.FlagInitiator}, message.PayloadN,
		notifyChain(mkNotify(message.COOKIE2, []byte("0123456789abcdef"))))
	if err != nil {
		t.Fatal(err)
	}
	before := tb.b.e.Stats().DroppedMOBIKE
	tb.b.e.HandleDatagram(ike.Datagram{Local: check.Local, Remote: check.Remote, Data: withMarker(resp)})
	tb.net.Flush()
	if tb.b.e.Stats().DroppedMOBIKE != before+1 || !tb.b.log.contains("COOKIE2 mismatch, not moving to") {
		t.Error("a forged COOKIE2 was not refused and counted")
	}
	if tb.b.log.contains("remote address changed") {
		t.Error("b moved on a forged COOKIE2")
	}
	wantPath(t, tb.b, addrB, addrA, false)
	if tb.established(tb.b).Remote.Addr() != addrA {
		t.Error("b's IKE_SA moved on a forged COOKIE2")
	}
}

func withMarker(b []byte) []byte { return append([]byte{0, 0, 0, 0}, b...) }

// Only the original initiator moves the SA (RFC 4555 section 3.4): an
// UPDATE_SA_ADDRESSES from the responder is refused, counted, and changes
// nothing.
func TestMOBIKEUpdateFromResponderIgnored(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	sa := tb.established(tb.a)
	req, err := tb.a.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 0}, message.PayloadN,
		notifyChain(mkNotify(message.UPDATE_SA_ADDRESSES, nil), mkNotify(message.COOKIE2, []byte("0123456789abcdef"))))
	if err != nil {
		t.Fatal(err)
	}
	from := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.99"), ike.PortNATT)
	tb.a.e.HandleDatagram(ike.Datagram{Local: sa.Local, Remote: from, Data: withMarker(req)})
	tb.net.Flush()
	if tb.a.e.Stats().DroppedMOBIKE != 1 || !tb.a.log.contains("received UPDATE_SA_ADDRESSES from the responder of the IKE_SA, ignored") {
		t.Error("an update from the responder was not refused")
	}
	if got := tb.established(tb.a).Remote; got != sa.Remote {
		t.Errorf("a's IKE_SA moved to %s", got)
	}
	wantPath(t, tb.a, addrA, addrB, false)
	// The COOKIE2 is echoed all the same (the response went where the
	// request came from).
	if !tb.a.log.contains("generating INFORMATIONAL response 0 [ N(COOKIE2) ]") {
		t.Error("a did not echo the COOKIE2")
	}
}

// A replayed or reordered UPDATE_SA_ADDRESSES (an old message ID) does not
// take the SA back to where it was (RFC 4555 section 3.5).
func TestMOBIKEReplayedUpdate(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	tb.roam(addrA, addrA2)
	var first *ike.Datagram
	for _, d := range tb.net.Log {
		if d.Local.Addr() == addrA2 && d.Remote.Addr() == addrB && first == nil {
			dd := d
			first = &dd
		}
	}
	if first == nil {
		t.Fatal("no update on the wire")
	}
	tb.roam(addrA2, addrA3)
	if tb.established(tb.b).Remote.Addr() != addrA3 {
		t.Fatal("b did not follow the second move")
	}
	// The first update again, from where it came: too old.
	msgDrops := tb.b.e.Stats().DroppedMessageID
	tb.net.Attach(addrA2, tb.a.e)
	tb.b.e.HandleDatagram(ike.Datagram{Local: first.Remote, Remote: first.Local, Data: first.Data})
	// And an authentic one with an old message ID, crafted.
	sa := tb.established(tb.b)
	old, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 2, Flags: message.FlagInitiator},
		message.PayloadN, notifyChain(mkNotify(message.UPDATE_SA_ADDRESSES, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, ike.PortNATT), Remote: netip.AddrPortFrom(addrA2, ike.PortNATT), Data: withMarker(old)})
	tb.net.Flush()
	if tb.b.e.Stats().DroppedMessageID < msgDrops+2 {
		t.Errorf("old updates not dropped by message ID: %d drops, were %d", tb.b.e.Stats().DroppedMessageID, msgDrops)
	}
	if got := tb.established(tb.b).Remote.Addr(); got != addrA3 {
		t.Errorf("a replayed update took b to %s", got)
	}
	wantPath(t, tb.b, addrB, addrA3, false)
}

// When its requests stop being answered on the current path, the
// initiator probes its other addresses, moves to the one that answers and
// tells the peer.
func TestMOBIKEPathProbing(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{connA: func(c *ike.Connection) {
		c.DPDDelay = 10 * time.Second
		c.Children[0].DPDAction = ike.ActionNone
	}, cfgA: func(c *ike.Config) { c.RetransmitTimeout, c.RetransmitBase, c.RetransmitTries = time.Second, 1, 2 }})
	tb.net.Attach(addrA2, tb.a.e)
	tb.a.e.AddressesChanged([]netip.Addr{addrA, addrA2})
	tb.net.Flush()
	// The path from addrA breaks; a is not told.
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if d.Local.Addr() == addrA || d.Remote.Addr() == addrA {
			return nil
		}
		return []ike.Datagram{d}
	}
	tb.advance(40 * time.Second)
	if !tb.a.log.contains("old path is not available anymore, try to find another") {
		t.Fatal("a did not start probing")
	}
	if !tb.a.log.contains("checking path 192.0.2.11[4500] - 192.0.2.2[4500]") {
		t.Error("a did not probe from its other address")
	}
	a := tb.established(tb.a)
	if a.Local.Addr() != addrA2 {
		t.Fatalf("a's IKE_SA is on %s after probing", a.Local)
	}
	if got := tb.established(tb.b).Remote.Addr(); got != addrA2 {
		t.Fatalf("b's IKE_SA is with %s after probing", got)
	}
	wantPath(t, tb.a, addrA2, addrB, false)
	wantPath(t, tb.b, addrB, addrA2, false)
}

// Saved state keeps where MOBIKE moved an IKE SA: a restarted responder
// takes it back at the new addresses, its policies there, and follows the
// next move.
func TestMOBIKERestartKeepsAddresses(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	tb.roam(addrA, addrA2)
	st := tb.b.e.Export()
	connB := baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	mobikeOn(connB)
	connB.RemoteAddrs = nil
	tb.b.e.Close()
	tb.b = tb.restartPeer(tb.b, st, connB, 0xc4000000)
	if got := tb.established(tb.b).Remote; got != netip.AddrPortFrom(addrA2, ike.PortNATT) {
		t.Fatalf("restarted b has its IKE_SA with %s", got)
	}
	wantPath(t, tb.b, addrB, addrA2, false)
	tb.roam(addrA2, addrA3)
	if got := tb.established(tb.b).Remote.Addr(); got != addrA3 {
		t.Fatalf("restarted b did not follow the next move: %s", got)
	}
	wantPath(t, tb.b, addrB, addrA3, false)
}

// An IKE SA rekey by the original responder keeps who may move it: the
// roaming client still sends the updates and the gateway follows them
// (charon keeps COND_ORIGINAL_INITIATOR across rekeys).
func TestMOBIKEAfterIKERekeyByResponder(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{})
	old := tb.established(tb.b)
	if err := tb.b.e.RekeyIKESA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.advance(time.Second)
	n := tb.established(tb.b)
	if n.SPIi == old.SPIi || !n.Initiator {
		t.Fatalf("b did not rekey the IKE_SA as initiator: %+v", n)
	}
	tb.roam(addrA, addrA2)
	if got := tb.established(tb.b).Remote.Addr(); got != addrA2 {
		t.Fatalf("b did not follow a after the rekey: %s", got)
	}
	if tb.a.e.Stats().DroppedMOBIKE != 0 || tb.b.e.Stats().DroppedMOBIKE != 0 {
		t.Error("an update was refused after the rekey")
	}
	wantPath(t, tb.b, addrB, addrA2, false)
	wantPath(t, tb.a, addrA2, addrB, false)
}

// A new path that does not answer the COOKIE2 check is not taken, and the
// IKE SA stays where it was, alive.
func TestMOBIKECheckUnanswered(t *testing.T) {
	tb := newMobikeBed(t, bedOptions{cfgB: func(c *ike.Config) { c.RetransmitTimeout, c.RetransmitBase, c.RetransmitTries = time.Second, 1, 1 }})
	tb.net.Attach(addrA2, tb.a.e)
	// Nothing reaches addrA2 from b: the update's response and the check
	// are lost; a keeps its old address too.
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if d.Local.Addr() == addrB && d.Remote.Addr() == addrA2 {
			return nil
		}
		return []ike.Datagram{d}
	}
	req, err := tb.b.e.SealAsPeer(tb.established(tb.b).ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 2, Flags: message.FlagInitiator},
		message.PayloadN, notifyChain(mkNotify(message.UPDATE_SA_ADDRESSES, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, ike.PortNATT), Remote: netip.AddrPortFrom(addrA2, ike.PortNATT), Data: withMarker(req)})
	tb.advance(10 * time.Second)
	if !tb.b.log.contains("did not answer, the IKE_SA stays on") {
		t.Error("the failed check was not logged")
	}
	b := tb.established(tb.b)
	if b.Remote.Addr() != addrA {
		t.Errorf("b moved to %s without a return routability check", b.Remote)
	}
	wantPath(t, tb.b, addrB, addrA, false)
}

// A route change with the old address still ours: the route to the peer
// now leaves from another address of a's (its first uplink lost its
// default route), and a moves there as on an address change; with the
// source unchanged nothing happens.
func TestMOBIKERouteChange(t *testing.T) {
	source := addrA
	tb := newMobikeBed(t, bedOptions{cfgA: func(c *ike.Config) {
		c.SourceAddress = func(netip.Addr) (netip.Addr, bool) { return source, true }
	}})
	before := spis(tb.a)
	tb.net.Attach(addrA2, tb.a.e)
	tb.a.e.AddressesChanged([]netip.Addr{addrA, addrA2})
	tb.net.Flush()
	if tb.a.log.contains("requesting address change using MOBIKE") {
		t.Fatal("a moved although the route to b still leaves from its address")
	}
	source = addrA2
	tb.a.e.AddressesChanged([]netip.Addr{addrA, addrA2})
	tb.net.Flush()
	if !tb.a.log.contains("the route to 192.0.2.2 leaves from 192.0.2.11 now") || !tb.a.log.contains("requesting address change using MOBIKE") {
		t.Fatal("a did not move after the route to b changed")
	}
	if got := tb.established(tb.b).Remote.Addr(); got != addrA2 {
		t.Errorf("b's IKE_SA is with %s, want %s", got, addrA2)
	}
	if !slices.Equal(spis(tb.b), before) {
		t.Errorf("SPIs changed: %x, were %x", spis(tb.b), before)
	}
	wantPath(t, tb.a, addrA2, addrB, false)
	wantPath(t, tb.b, addrB, addrA2, false)
}
