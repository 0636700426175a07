package ike_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// TestMessageIDWindow checks the responder's window of one request (RFC
// 7296 section 2.3): the expected request is answered, a retransmit of
// the last one gets the cached response again, older and newer ones are
// dropped and counted. Requests are sealed with the IKE SA's keys as a
// would, so only their message IDs are wrong.
func TestMessageIDWindow(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.establish() // IKE_SA_INIT 0, IKE_AUTH 1: b expects 2
	sa := tb.established(tb.b)
	request := func(id uint32) []byte {
		t.Helper()
		b, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: id, Flags: message.FlagInitiator}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	deliver := func(data []byte) (sent []ike.Datagram) {
		t.Helper()
		before := len(tb.net.Log)
		tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: data})
		sent = append(sent, tb.net.Log[before:]...)
		tb.net.Drop() // a does not see b's answers here
		return sent
	}
	stats := tb.b.e.Stats()

	// HDR(ID 2), SK {} --> <-- HDR(ID 2), SK {}: the expected request.
	req2 := request(2)
	first := deliver(req2)
	if len(first) != 1 || !tb.b.log.contains("generating INFORMATIONAL response 2 [ ]") {
		t.Fatalf("request 2 not answered: %d datagrams", len(first))
	}

	// The same request again: the cached response, octet for octet.
	again := deliver(req2)
	if len(again) != 1 || !bytes.Equal(again[0].Data, first[0].Data) {
		t.Fatal("retransmitted request not answered from the cache")
	}
	if !tb.b.log.contains("received retransmit of request with ID 2, retransmitting response") {
		t.Error("retransmit not logged")
	}
	if tb.b.log.count("generating INFORMATIONAL response 2") != 1 {
		t.Error("retransmitted request processed twice")
	}

	// Older than the window: IKE_AUTH's ID 1.
	if sent := deliver(request(1)); len(sent) != 0 {
		t.Fatal("old request answered")
	}
	if !tb.b.log.contains("received message ID 1, expected 3, ignored") {
		t.Error("old request not logged")
	}
	// Ahead of the window: ID 4 while 3 is expected.
	if sent := deliver(request(4)); len(sent) != 0 {
		t.Fatal("request from the future answered")
	}
	if !tb.b.log.contains("received message ID 4, expected 3, ignored") {
		t.Error("too new request not logged")
	}
	s := tb.b.e.Stats()
	if s.DroppedMessageID-stats.DroppedMessageID != 2 {
		t.Fatalf("dropped %d requests for their message ID, want 2", s.DroppedMessageID-stats.DroppedMessageID)
	}
	// A response nobody asked for (b has no request in flight).
	resp, err := tb.b.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 0, Flags: message.FlagInitiator | message.FlagResponse}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent := deliver(resp); len(sent) != 0 || tb.b.e.Stats().DroppedMessageID != s.DroppedMessageID+1 {
		t.Fatal("unexpected response not dropped and counted")
	}
	// The window still moves: 3 is answered.
	if sent := deliver(request(3)); len(sent) != 1 || !tb.b.log.contains("generating INFORMATIONAL response 3 [ ]") {
		t.Fatal("request 3 not answered")
	}
	tb.established(tb.b)
}
