package ike_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// Spoofing tests: an attacker who sees an IKE SA's SPIs in clear sends
// datagrams from the peer's address. Nothing of the IKE SA may change
// before a message's integrity check passes (RFC 7296 sections 2.21.2 and
// 2.23); each forgery is dropped and counted, and the SA keeps working.

// forge builds an IKE message as such an attacker can, without keys: the
// header and whatever octets follow it.
func forge(spiI, spiR uint64, x message.ExchangeType, flags message.Flags, id uint32, next message.PayloadType, body []byte) []byte {
	h, err := (&message.Message{Header: message.Header{InitiatorSPI: spiI, ResponderSPI: spiR, ExchangeType: x, Flags: flags, MessageID: id}}).Marshal()
	if err != nil {
		panic(err)
	}
	b := append(h, body...)
	b[16] = byte(next)
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// skFraming is an SK payload whose length disagrees with the message: its
// framing fails before any integrity check.
func skFraming() []byte {
	return append([]byte{byte(message.PayloadD), 0, 0, 4}, bytes.Repeat([]byte{0xa5}, 40)...)
}

// skfNumberZero is an SKF payload with Fragment Number 0, refused before
// its integrity check.
func skfNumberZero() []byte {
	body := bytes.Repeat([]byte{0x5a}, 40)
	b := []byte{byte(message.PayloadD), 0, 0, byte(8 + len(body)), 0, 0, 0, 1}
	return append(b, body...)
}

// spoof hands data to p as if it came from the IKE port of the peer.
func spoof(p *peer, peerAddr netip.Addr, data []byte) {
	p.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(p.addr, 500), Remote: netip.AddrPortFrom(peerAddr, 500), Data: data})
}

// wantRekeyWorks rekeys the CHILD_SA from p and checks that both
// dataplanes end up with the new SAs and keys that agree.
func (tb *testbed) wantRekeyWorks(p *peer) {
	tb.t.Helper()
	old := tb.children(p)[0]
	if err := p.e.RekeyChildSA(old.ID); err != nil {
		tb.t.Fatal(err)
	}
	tb.net.Flush()
	ca, cb := tb.children(tb.a), tb.children(tb.b)
	if len(ca) != 1 || len(cb) != 1 || ca[0].SPIIn == old.SPIIn || ca[0].SPIIn == old.SPIOut || ca[0].State != ike.ChildSAInstalled {
		tb.t.Fatalf("CHILD_SA rekey from %s failed: a %+v, b %+v", p.name, ca, cb)
	}
	tb.settleRekeys()
	tb.checkKeys()
}

// statsDelta is what changed between two Stats.
func statsDelta(after, before ike.Stats) ike.Stats {
	return ike.Stats{
		Sent:                  after.Sent - before.Sent,
		DroppedMalformed:      after.DroppedMalformed - before.DroppedMalformed,
		DroppedUnknownSA:      after.DroppedUnknownSA - before.DroppedUnknownSA,
		DroppedAuthentication: after.DroppedAuthentication - before.DroppedAuthentication,
		DroppedMessageID:      after.DroppedMessageID - before.DroppedMessageID,
		DroppedUnexpected:     after.DroppedUnexpected - before.DroppedUnexpected,
		InvalidSyntaxSent:     after.InvalidSyntaxSent - before.InvalidSyntaxSent,
	}
}

// TestSpoofedUndecodableRequest: a forged request with the next message
// ID whose SK or SKF framing is broken was taken for an authentic but
// undecodable one (RFC 7296 section 2.21): answered with INVALID_SYNTAX,
// its message ID consumed and the answer cached, so that the peer's real
// request with that ID got the cached INVALID_SYNTAX and the peer deleted
// the IKE SA (section 2.21.3). It must be dropped as malformed.
func TestSpoofedUndecodableRequest(t *testing.T) {
	for _, target := range []string{"responder", "initiator"} {
		for name, body := range map[string][]byte{"SK length": skFraming(), "SKF number 0": skfNumberZero()} {
			t.Run(target+"/"+name, func(t *testing.T) {
				tb := newTestbed(t, bedOptions{})
				tb.establish()
				// The responder expects the initiator's request 2, the
				// initiator the responder's request 0.
				p, other, flags, id := tb.b, tb.a, message.FlagInitiator, uint32(2)
				if target == "initiator" {
					p, other, flags, id = tb.a, tb.b, 0, 0
				}
				sa := tb.established(p)
				next := message.PayloadSK
				if name == "SKF number 0" {
					next = message.PayloadSKF
				}
				before := p.e.Stats()
				for _, x := range []message.ExchangeType{message.INFORMATIONAL, message.CREATE_CHILD_SA} {
					spoof(p, other.addr, forge(sa.SPIi, sa.SPIr, x, flags, id, next, body))
				}
				d := statsDelta(p.e.Stats(), before)
				if d != (ike.Stats{DroppedMalformed: 2}) {
					t.Fatalf("forged requests not dropped as malformed: %+v", d)
				}
				if len(tb.net.Queued()) != 0 {
					t.Fatal("forged requests answered")
				}
				// The real peer's next request gets its own answer.
				tb.wantRekeyWorks(other)
				tb.wantRekeyWorks(p)
			})
		}
	}
}

// TestSpoofedIKEAuthHalfOpen: while the responder waits for IKE_AUTH,
// forged IKE_AUTH requests (bad ICV, broken framing) and forged
// IKE_SA_INIT retransmits change nothing and are answered with nothing;
// only the real IKE_AUTH request completes the SA (RFC 7296 section
// 2.21.2 lets only an authenticated error end it).
func TestSpoofedIKEAuthHalfOpen(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	var held []ike.Datagram
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if h, err := message.UnmarshalHeader(d.Data); err == nil && h.ExchangeType == message.IKE_AUTH && !h.IsResponse() {
			held = append(held, d)
			return nil
		}
		return []ike.Datagram{d}
	}
	tb.establish()
	sas := tb.b.sas()
	if len(held) != 1 || len(sas) != 1 || sas[0].State != ike.IKESAConnecting {
		t.Fatalf("want one held IKE_AUTH request and a CONNECTING responder: %d, %+v", len(held), sas)
	}
	spiI, spiR := sas[0].SPIi, sas[0].SPIr
	initReq := tb.net.Log[0].Data
	if h, err := message.UnmarshalHeader(initReq); err != nil || h.ExchangeType != message.IKE_SA_INIT || h.IsResponse() {
		t.Fatalf("first datagram is not the IKE_SA_INIT request: %+v %v", h, err)
	}

	badICV := bytes.Clone(held[0].Data)
	badICV[len(badICV)-1] ^= 1
	// An IKE_SA_INIT request from the initiator's address with its SPI
	// that is not the one answered: no retransmit.
	otherInit := forge(spiI, 0, message.IKE_SA_INIT, message.FlagInitiator, 0, message.PayloadNone, nil)
	before := tb.b.e.Stats()
	for _, b := range [][]byte{
		badICV,
		forge(spiI, spiR, message.IKE_AUTH, message.FlagInitiator, 1, message.PayloadSK, skFraming()),
		forge(spiI, spiR, message.IKE_AUTH, message.FlagInitiator, 1, message.PayloadSKF, skfNumberZero()),
		otherInit,
		forge(spiI, spiR, message.IKE_SA_INIT, message.FlagInitiator, 0, message.PayloadNone, nil),
	} {
		spoof(tb.b, addrA, b)
	}
	d := statsDelta(tb.b.e.Stats(), before)
	if d != (ike.Stats{DroppedAuthentication: 1, DroppedMalformed: 2, DroppedUnexpected: 2}) {
		t.Fatalf("forgeries not dropped and counted: %+v", d)
	}
	if len(tb.net.Queued()) != 0 {
		t.Fatal("forgeries answered")
	}
	if sas := tb.b.sas(); len(sas) != 1 || sas[0].State != ike.IKESAConnecting {
		t.Fatalf("responder's SA changed: %+v", sas)
	}
	// The real IKE_SA_INIT retransmit is still answered from the cache.
	spoof(tb.b, addrA, initReq)
	if d := statsDelta(tb.b.e.Stats(), before); d.Sent != 1 || len(tb.b.sas()) != 1 {
		t.Fatalf("IKE_SA_INIT retransmit not answered once: %+v, %d SAs", d, len(tb.b.sas()))
	}
	tb.net.Drop()

	tb.net.Filter = nil
	for _, d := range held {
		tb.b.e.HandleDatagram(ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data})
	}
	tb.net.Flush()
	tb.established(tb.a)
	tb.established(tb.b)
	tb.checkKeys()
	tb.wantRekeyWorks(tb.a)
	tb.wantRekeyWorks(tb.b)
}

// TestSpoofedIKESAInitToEstablished: unprotected IKE_SA_INIT messages
// carrying an established IKE SA's SPIs are dropped and counted: a
// "retransmit" of an earlier request is not answered from the response
// cache, and responses and error notifies (COOKIE, INVALID_KE_PAYLOAD,
// NO_PROPOSAL_CHOSEN) are not acted upon.
func TestSpoofedIKESAInitToEstablished(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish()
	sa := tb.established(tb.b)
	notify := func(t message.NotifyType, data []byte) []byte {
		n, err := (&message.Message{Payloads: []message.Payload{&message.Notify{NotifyType: t, Data: data}}}).Marshal()
		if err != nil {
			panic(err)
		}
		return n[message.HeaderLen:]
	}
	// To the responder: a request with the ID of the IKE_AUTH request
	// answered last, and one with the next ID.
	before := tb.b.e.Stats()
	spoof(tb.b, addrA, forge(sa.SPIi, sa.SPIr, message.IKE_SA_INIT, message.FlagInitiator, 1, message.PayloadNone, nil))
	spoof(tb.b, addrA, forge(sa.SPIi, sa.SPIr, message.IKE_SA_INIT, message.FlagInitiator, 2, message.PayloadNone, nil))
	if d := statsDelta(tb.b.e.Stats(), before); d != (ike.Stats{DroppedUnexpected: 2}) {
		t.Fatalf("responder: %+v", d)
	}
	// To the initiator: responses to an IKE_SA_INIT it no longer runs,
	// with the responder's SPI (the message IDs it could expect) or
	// without (as an error notify to IKE_SA_INIT is sent).
	before = tb.a.e.Stats()
	for _, n := range [][]byte{
		notify(message.COOKIE, bytes.Repeat([]byte{1}, 16)),
		notify(message.INVALID_KE_PAYLOAD, []byte{0, 19}),
		notify(message.NO_PROPOSAL_CHOSEN, nil),
	} {
		for _, id := range []uint32{0, 2} {
			spoof(tb.a, addrB, forge(sa.SPIi, sa.SPIr, message.IKE_SA_INIT, message.FlagResponse, id, message.PayloadN, n))
		}
		spoof(tb.a, addrB, forge(sa.SPIi, 0, message.IKE_SA_INIT, message.FlagResponse, 0, message.PayloadN, n))
	}
	if d := statsDelta(tb.a.e.Stats(), before); d != (ike.Stats{DroppedMessageID: 6, DroppedUnknownSA: 3}) {
		t.Fatalf("initiator: %+v", d)
	}
	if len(tb.net.Queued()) != 0 {
		t.Fatal("forgeries answered")
	}
	tb.wantRekeyWorks(tb.a)
	tb.wantRekeyWorks(tb.b)
}

// TestReplayedFragmentsOutsideWindow: authentic SKF fragments of the
// peer's earlier requests, replayed (their ICV is still good), are dropped
// by message ID before reassembly. Kept, four of them pushed the request
// being reassembled out of the reassembler's slots, and its last fragment
// completed nothing.
func TestReplayedFragmentsOutsideWindow(t *testing.T) {
	tb := newTestbed(t, bedOptions{cfgA: func(c *ike.Config) { c.FragmentSize = 200 }})
	tb.establish()
	for range 3 {
		tb.wantRekeyWorks(tb.a)
	}
	isRequestFragment := func(d ike.Datagram) (message.Header, bool) {
		h, err := message.UnmarshalHeader(d.Data)
		return h, err == nil && h.NextPayload == message.PayloadSKF && !h.IsResponse() && d.Local.Addr() == addrA
	}
	old := map[uint32][]byte{} // first fragment by message ID
	for _, d := range tb.net.Log {
		if h, ok := isRequestFragment(d); ok && binary.BigEndian.Uint16(d.Data[message.HeaderLen+4:]) == 1 {
			old[h.MessageID] = d.Data
		}
	}
	if len(old) < 4 {
		t.Fatalf("%d fragmented requests of a, want 4", len(old))
	}

	// a's next rekey request, in fragments: all but the last reach b,
	// then the replays, then the last.
	var held []ike.Datagram
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if _, ok := isRequestFragment(d); ok {
			held = append(held, d)
			return nil
		}
		return []ike.Datagram{d}
	}
	first := tb.children(tb.a)[0]
	if err := tb.a.e.RekeyChildSA(first.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.net.Filter = nil
	if len(held) < 2 {
		t.Fatalf("rekey request in %d fragments", len(held))
	}
	deliver := func(d ike.Datagram) {
		tb.b.e.HandleDatagram(ike.Datagram{Local: d.Remote, Remote: d.Local, Data: d.Data})
	}
	for _, d := range held[:len(held)-1] {
		deliver(d)
	}
	before := tb.b.e.Stats()
	for _, b := range old {
		spoof(tb.b, addrA, b)
	}
	if d := statsDelta(tb.b.e.Stats(), before); d != (ike.Stats{DroppedMessageID: uint64(len(old))}) {
		t.Fatalf("replayed fragments: %+v", d)
	}
	deliver(held[len(held)-1])
	if d := statsDelta(tb.b.e.Stats(), before); d.Sent != 1 {
		t.Fatalf("rekey request not reassembled and answered: %+v", d)
	}
	tb.net.Flush()
	if c := tb.children(tb.a); len(c) != 1 || c[0].SPIIn == first.SPIIn {
		t.Fatalf("CHILD_SA not rekeyed: %+v", c)
	}
	tb.settleRekeys()
	tb.checkKeys()
	tb.wantRekeyWorks(tb.b)
}
