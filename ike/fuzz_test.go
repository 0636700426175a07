package ike_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func seedDatagrams(f *testing.F) {
	tb := newTestbed(&testing.T{}, bedOptions{})
	tb.establish()
	tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID)
	tb.net.Flush()
	tb.b.e.RekeyIKESA(tb.established(tb.b).ID)
	tb.net.Flush()
	for _, d := range tb.net.Log {
		f.Add(d.Data)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff})
}

// FuzzResponder feeds arbitrary datagrams to a responder with no IKE SA:
// nothing may panic, everything is dropped or answered.
func FuzzResponder(f *testing.F) {
	seedDatagrams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := newTestbed(t, bedOptions{cfgB: func(c *ike.Config) { c.CookieThreshold = 2 }})
		for _, port := range []uint16{500, 4500} {
			d := data
			if port == 4500 {
				d = append([]byte{0, 0, 0, 0}, data...)
			}
			tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, port), Remote: netip.AddrPortFrom(addrA, port), Data: d})
			// twice: the second is a retransmit, or hits the state the
			// first created
			tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, port), Remote: netip.AddrPortFrom(addrA, port), Data: d})
		}
		tb.net.Flush()
		tb.advance(40 * time.Second)
	})
}

// FuzzEstablished feeds arbitrary datagrams to both ends of an established
// IKE SA, with the SA's SPIs patched in so that they get past the lookup.
func FuzzEstablished(f *testing.F) {
	seedDatagrams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := newTestbed(t, bedOptions{})
		tb.establish()
		sa := tb.established(tb.b)
		d := append([]byte(nil), data...)
		if len(d) >= message.HeaderLen {
			// Our SPIs, version 2 and a length that matches: past the
			// header checks to the SA lookup, decryption and reassembly.
			for i := range 8 {
				d[i] = byte(sa.SPIi >> (56 - 8*i))
				d[8+i] = byte(sa.SPIr >> (56 - 8*i))
			}
			d[17] = 0x20
			binary.BigEndian.PutUint32(d[24:], uint32(len(d)))
		}
		tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: d})
		tb.a.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrA, 500), Remote: netip.AddrPortFrom(addrB, 500), Data: d})
		tb.advance(200 * time.Second)
	})
}

// FuzzAuthenticated sends the established responder authentic SK messages
// (sealed with the right keys) with arbitrary inner payloads, to reach the
// exchange tasks: CREATE_CHILD_SA, INFORMATIONAL, or responses.
func FuzzAuthenticated(f *testing.F) {
	f.Add(uint8(0), uint8(message.PayloadD), []byte{0, 0, 0, 8, 3, 4, 0, 1, 0xc2, 0, 0, 1})
	f.Add(uint8(1), uint8(message.PayloadN), []byte{0, 0, 0, 12, 3, 4, 0x40, 0x09, 0xc2, 0, 0, 1})
	f.Add(uint8(1), uint8(message.PayloadSA), []byte{0, 0, 0, 4})
	f.Add(uint8(2), uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, sel uint8, first uint8, plaintext []byte) {
		tb := newTestbed(t, bedOptions{})
		tb.establish()
		sa := tb.established(tb.b)
		exchanges := []message.ExchangeType{message.INFORMATIONAL, message.CREATE_CHILD_SA, message.INFORMATIONAL, message.IKE_AUTH}
		h := message.Header{ExchangeType: exchanges[sel%4], MessageID: 2, Flags: message.FlagInitiator}
		if sel&4 != 0 {
			h.Flags |= message.FlagResponse
			h.MessageID = uint32(sel>>3) % 2
		}
		b, err := tb.b.e.SealAsPeer(sa.ID, h, message.PayloadType(first), plaintext)
		if err != nil {
			return
		}
		tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: b})
		tb.advance(200 * time.Second)
	})
}
