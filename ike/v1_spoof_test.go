package ike_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/isakmp"
)

// spoofV1 builds a datagram with the cookies of an established ISAKMP SA
// (both travel in clear), the given exchange, flags and message ID, and
// body as what follows the header; no key is needed to make it.
func spoofV1(sa ike.IKESAInfo, exch isakmp.ExchangeType, flags isakmp.Flags, mid uint32, next isakmp.PayloadType, body []byte) []byte {
	b := make([]byte, isakmp.HeaderLen, isakmp.HeaderLen+len(body))
	binary.BigEndian.PutUint64(b[0:], sa.SPIi)
	binary.BigEndian.PutUint64(b[8:], sa.SPIr)
	b[16] = byte(next)
	b[17] = 0x10
	b[18] = byte(exch)
	b[19] = byte(flags)
	binary.BigEndian.PutUint32(b[20:], mid)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

// garbage is 64 octets that decrypt to whatever they decrypt to.
func garbage() []byte {
	g := make([]byte, 64)
	for i := range g {
		g[i] = byte(i*37 + 11)
	}
	return g
}

// unencryptedNotify is a plain N payload: DOI IPsec, protocol ISAKMP, no
// SPI, INVALID_PAYLOAD_TYPE.
func unencryptedNotify() []byte {
	return []byte{0, 0, 0, 12, 0, 0, 0, 1, 1, 0, 0, 1}
}

// wantV1Rekey rekeys a's IPsec SA with Quick Mode and checks that both
// ends installed the successor with the same keys: the ISAKMP SA's IV
// chain and message IDs are intact.
func (tb *testbed) wantV1Rekey() {
	tb.t.Helper()
	before := tb.children(tb.a)
	if len(before) != 1 {
		tb.t.Fatalf("a has %d IPsec SAs before the rekey", len(before))
	}
	if err := tb.a.e.RekeyChildSA(before[0].ID); err != nil {
		tb.t.Fatal(err)
	}
	tb.net.Flush()
	tb.settleRekeys()
	after := tb.children(tb.a)
	if len(after) != 1 || after[0].SPIIn == before[0].SPIIn {
		tb.t.Fatalf("Quick Mode rekey did not complete: before %+v, after %+v", before, after)
	}
	tb.wantV1Established()
}

// TestV1SpoofedMessageIDZero is the remote crash of issue 13: an attacker
// who saw the cookies sends, from any address, (1) an informational
// exchange with message ID 0 (unencrypted), or a Quick Mode with message
// ID 0 and garbage ciphertext, then (2) an encrypted Main Mode message
// with message ID 0. Datagram 1 used to drop the phase 1 IV (so every
// later Quick Mode failed), datagram 2 then panicked in CBC decryption.
// Now both are dropped and counted, and a Quick Mode rekey still works.
func TestV1SpoofedMessageIDZero(t *testing.T) {
	first := map[string]func(sa ike.IKESAInfo) []byte{
		"informational": func(sa ike.IKESAInfo) []byte {
			return spoofV1(sa, isakmp.ExchangeInformational, 0, 0, isakmp.PayloadNotify, unencryptedNotify())
		},
		"informational encrypted": func(sa ike.IKESAInfo) []byte {
			return spoofV1(sa, isakmp.ExchangeInformational, isakmp.FlagEncryption, 0, isakmp.PayloadHash, garbage())
		},
		"quick mode": func(sa ike.IKESAInfo) []byte {
			return spoofV1(sa, isakmp.ExchangeQuick, isakmp.FlagEncryption, 0, isakmp.PayloadHash, garbage())
		},
	}
	spoofer := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.66"), 500)
	for name, make1 := range first {
		for _, second := range []bool{false, true} {
			variant := name
			if second {
				variant += " then main mode"
			}
			t.Run(variant, func(t *testing.T) {
				tb := v1Bed(t)
				tb.establish()
				tb.wantV1Established()
				for _, p := range []*peer{tb.a, tb.b} {
					sa := tb.established(p)
					d := []ike.Datagram{{Local: netip.AddrPortFrom(p.addr, 500), Remote: spoofer, Data: make1(sa)}}
					if second {
						d = append(d, ike.Datagram{Local: netip.AddrPortFrom(p.addr, 500), Remote: spoofer,
							Data: spoofV1(sa, isakmp.ExchangeMain, isakmp.FlagEncryption, 0, isakmp.PayloadID, garbage())})
					}
					before := p.e.Stats()
					for _, x := range d {
						p.e.HandleDatagram(x)
					}
					after := p.e.Stats()
					if dropped := droppedTotal(after) - droppedTotal(before); dropped != uint64(len(d)) {
						t.Errorf("%s: %d spoofed datagrams, %d counted as dropped (%+v)", p.name, len(d), dropped, after)
					}
					if after.Sent != before.Sent {
						t.Errorf("%s answered a spoofed datagram", p.name)
					}
				}
				// The spoofer's address must not have become the peer's.
				for _, p := range []*peer{tb.a, tb.b} {
					if r := tb.established(p).Remote; r.Addr() == spoofer.Addr() {
						t.Fatalf("%s moved its ISAKMP SA to the spoofer: %v", p.name, r)
					}
				}
				tb.wantV1Rekey()
				tb.advance(time.Minute)
				tb.wantV1Established()
			})
		}
	}
}

func droppedTotal(s ike.Stats) uint64 {
	return s.DroppedMalformed + s.DroppedUnknownSA + s.DroppedAuthentication + s.DroppedMessageID + s.DroppedUnexpected + s.DroppedESP
}

// TestV1ForgedPhase1Message: a copy of Main Mode message 5 or 6 with its
// last ciphertext block changed (it still decrypts and parses, its HASH no
// longer verifies) reaches the receiver just before the real one. It is
// dropped and counted, and neither the IV chain nor the retransmission
// of the message it answers moves: the real message then establishes the
// ISAKMP SA as if the forgery had never come.
func TestV1ForgedPhase1Message(t *testing.T) {
	for _, to := range []string{"responder", "initiator"} {
		t.Run(to, func(t *testing.T) {
			// Without INITIAL-CONTACT: that notify follows HASH_I and is
			// not covered by it (RFC 2409 section 5), so a flip in the
			// last block would garble it instead of the HASH.
			tb := v1Bed(t, func(c *ike.Connection) { c.Unique = ike.UniqueNever })
			dst := map[string]netip.Addr{"responder": addrB, "initiator": addrA}[to]
			forged := 0
			tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
				h, err := isakmp.UnmarshalHeader(d.Data)
				if err != nil || h.Exchange != isakmp.ExchangeMain || h.Flags&isakmp.FlagEncryption == 0 || d.Remote.Addr() != dst || forged > 0 {
					return []ike.Datagram{d}
				}
				forged++
				f := append([]byte(nil), d.Data...)
				for i := len(f) - 16; i < len(f); i++ {
					f[i] ^= 0xa5
				}
				return []ike.Datagram{{Local: d.Local, Remote: d.Remote, Data: f}, d}
			}
			tb.establish()
			if forged != 1 {
				t.Fatalf("no encrypted Main Mode message to forge")
			}
			tb.wantV1Established()
			p := map[string]*peer{"responder": tb.b, "initiator": tb.a}[to]
			if n := p.e.Stats().DroppedAuthentication; n != 1 {
				t.Errorf("%s counted %d unauthenticated messages, want the forgery", p.name, n)
			}
			if !p.log.contains("dropped: calculated HASH does not match") {
				t.Errorf("%s did not log why it dropped the forgery", p.name)
			}
			tb.wantV1Rekey()
		})
	}
}

// TestV1UnencryptedPhase1Forgery: once the keys are there, an unencrypted
// ID+HASH with the cookies of a Main Mode in progress (anybody can make
// one) is dropped and changes nothing; it used to fail the exchange and
// destroy the SA.
func TestV1UnencryptedPhase1Forgery(t *testing.T) {
	tb := v1Bed(t)
	forged := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		h, err := isakmp.UnmarshalHeader(d.Data)
		if err != nil || h.Exchange != isakmp.ExchangeMain || h.Flags&isakmp.FlagEncryption == 0 || d.Remote.Addr() != addrB || forged > 0 {
			return []ike.Datagram{d}
		}
		forged++
		h.Flags = 0
		m := &isakmp.Message{Header: h, Payloads: []isakmp.Payload{
			&isakmp.Identification{IDType: isakmp.IDType(1), Data: addrA.AsSlice()}, &isakmp.Hash{Data: make([]byte, 32)}}}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return []ike.Datagram{{Local: d.Local, Remote: d.Remote, Data: b}, d}
	}
	tb.establish()
	if forged != 1 {
		t.Fatal("no Main Mode message 5 to forge")
	}
	tb.wantV1Established()
	if n := tb.b.e.Stats().DroppedUnexpected; n != 1 {
		t.Errorf("b counted %d unexpected messages, want the forgery", n)
	}
}
