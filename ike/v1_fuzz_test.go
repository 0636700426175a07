package ike_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// seedV1Datagrams adds every datagram of an IKEv1 life (Main Mode, Quick
// Mode, a Quick Mode rekey, DPD, deletes) as a seed.
func seedV1Datagrams(f *testing.F) {
	tb := v1Bed(&testing.T{}, func(c *ike.Connection) { c.DPDDelay = 10 * time.Second })
	id := tb.establish()
	tb.a.e.RekeyChildSA(tb.children(tb.a)[0].ID)
	tb.net.Flush()
	tb.advance(15 * time.Second)
	tb.a.e.DeleteIKESA(id)
	tb.net.Flush()
	for _, d := range tb.net.Log {
		f.Add(d.Data)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 28))
}

// FuzzV1Responder feeds arbitrary datagrams to an IKEv1 responder with no
// ISAKMP SA (Aggressive Mode enabled, so both first messages reach their
// code): nothing may panic, everything is dropped or answered.
func FuzzV1Responder(f *testing.F) {
	seedV1Datagrams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := v1Bed(t, func(c *ike.Connection) { c.Aggressive = true })
		for _, port := range []uint16{500, 4500} {
			d := data
			if port == 4500 {
				d = append([]byte{0, 0, 0, 0}, data...)
			}
			for range 2 { // the second is a retransmit, or meets the state the first made
				tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, port), Remote: netip.AddrPortFrom(addrA, port), Data: d})
			}
		}
		tb.net.Flush()
		tb.advance(40 * time.Second)
	})
}

// FuzzV1Established feeds arbitrary datagrams to both ends of an
// established ISAKMP SA, with its cookies, version 1.0 and a matching
// length patched in, so that they reach decryption, the Quick Mode and
// informational exchanges and fragment reassembly.
func FuzzV1Established(f *testing.F) {
	seedV1Datagrams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := v1Bed(t, func(c *ike.Connection) { c.DPDDelay = 10 * time.Second })
		tb.establish()
		sa := tb.established(tb.b)
		d := append([]byte(nil), data...)
		if len(d) >= 28 {
			binary.BigEndian.PutUint64(d[0:], sa.SPIi)
			binary.BigEndian.PutUint64(d[8:], sa.SPIr)
			d[17] = 0x10
			binary.BigEndian.PutUint32(d[24:], uint32(len(d)))
		}
		tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: d})
		tb.a.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrA, 500), Remote: netip.AddrPortFrom(addrB, 500), Data: d})
		tb.advance(60 * time.Second)
	})
}
