package ike_test

import (
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/isakmp"
)

// flagsOffset is where the flags octet sits in the ISAKMP header: two
// cookies, next payload, version, exchange type.
const flagsOffset = 8 + 8 + 1 + 1 + 1

// TestV1QuickModeCommitBit: the commit bit (RFC 2408 section 3.1, RFC 2409
// section 5.5) handled as charon 5.9 does, which neither sets it nor acts
// on it. A responder asked to commit still installs its IPsec SAs on
// HASH(3), not before, sends no CONNECTED notify, and does not set the bit
// in its answer (only its inbound SA goes in earlier, with QM2, as with
// the bit clear); a lost HASH(3) is recovered by the responder's
// retransmission of HASH(2). An initiator whose HASH(2) carries the bit
// installs on it and sends HASH(3) as usual.
func TestV1QuickModeCommitBit(t *testing.T) {
	t.Run("initiator-sets-it", func(t *testing.T) {
		tb := v1Bed(t)
		fromA, fromB := 0, 0
		tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
			h, err := isakmp.UnmarshalHeader(d.Data)
			if err != nil || h.Exchange != isakmp.ExchangeQuick {
				return []ike.Datagram{d}
			}
			if d.Local.Addr() == addrA {
				fromA++
				switch fromA {
				case 1: // HASH(1) SA Ni IDci IDcr, now with the commit bit
					d.Data[flagsOffset] |= byte(isakmp.FlagCommit)
				case 2: // HASH(3), lost once
					return nil
				}
				return []ike.Datagram{d}
			}
			fromB++
			if h.Flags&isakmp.FlagCommit != 0 {
				t.Errorf("b set the commit bit in Quick Mode message %d", fromB)
			}
			return []ike.Datagram{d}
		}
		tb.establish()
		if n := len(tb.children(tb.a)); n != 1 {
			t.Fatalf("a has %d IPsec SAs after HASH(2), want 1", n)
		}
		// Before HASH(3) b has its inbound SA only (in with QM2, for
		// a's first packets), no outbound SA, no policies.
		if n, sas := len(tb.children(tb.b)), tb.b.dp.SAs(); n != 0 || len(sas) != 1 || !sas[0].Inbound || len(tb.b.dp.Policies()) != 0 {
			t.Fatalf("b installed before HASH(3): %d IPsec SAs, %d SAs in the dataplane, %d policies", n, len(sas), len(tb.b.dp.Policies()))
		}
		// b retransmits HASH(2); a answers with HASH(3) again.
		tb.advance(30 * time.Second)
		tb.wantV1Established()
		if fromB < 2 {
			t.Errorf("b sent %d Quick Mode messages, want HASH(2) retransmitted", fromB)
		}
		if fromA != 3 {
			t.Errorf("a sent %d Quick Mode messages, want HASH(1) and HASH(3) twice", fromA)
		}
		for _, p := range []*peer{tb.a, tb.b} {
			if p.log.contains("N(CONNECTED)") || p.log.contains("received CONNECTED") {
				t.Errorf("%s sent or got a CONNECTED notify", p.name)
			}
		}
		if !tb.b.log.contains("commit bit set, ignored") {
			t.Errorf("b did not see the commit bit")
		}
		if tb.b.log.count("INFORMATIONAL_V1") != 0 {
			t.Errorf("b sent an informational exchange")
		}
	})
	t.Run("responder-sets-it", func(t *testing.T) {
		tb := v1Bed(t)
		tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
			h, err := isakmp.UnmarshalHeader(d.Data)
			if err == nil && h.Exchange == isakmp.ExchangeQuick && d.Local.Addr() == addrB {
				d.Data[flagsOffset] |= byte(isakmp.FlagCommit)
			}
			return []ike.Datagram{d}
		}
		tb.establish()
		tb.wantV1Established()
		if !tb.a.log.contains("generating QUICK_MODE request") || tb.a.log.contains("N(CONNECTED)") {
			t.Errorf("a did not finish Quick Mode as usual")
		}
		if !tb.a.log.contains("commit bit set in HASH(2), ignored") {
			t.Errorf("a did not see the commit bit")
		}
	})
}

// TestV1QuickModeHash3Lost: the responder's inbound SA goes in with QM2;
// when HASH(3) never comes, the Quick Mode gives up and takes it out
// again, with the SPI.
func TestV1QuickModeHash3Lost(t *testing.T) {
	tb := v1Bed(t)
	fromA := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		h, err := isakmp.UnmarshalHeader(d.Data)
		if err == nil && h.Exchange == isakmp.ExchangeQuick && d.Local.Addr() == addrA {
			fromA++
			if fromA > 1 { // every HASH(3)
				return nil
			}
		}
		return []ike.Datagram{d}
	}
	tb.establish()
	if sas := tb.b.dp.SAs(); len(sas) != 1 || !sas[0].Inbound {
		t.Fatalf("b after QM2: %d SAs in the dataplane, want its inbound SA", len(sas))
	}
	tb.advance(10 * time.Minute)
	if n := len(tb.children(tb.b)); n != 0 {
		t.Fatalf("b has %d IPsec SAs without HASH(3)", n)
	}
	if sas, n := tb.b.dp.SAs(), tb.b.dp.AllocatedSPIs(); len(sas) != 0 || n != 0 {
		t.Errorf("b kept %d SAs and %d SPIs of the Quick Mode that never completed", len(sas), n)
	}
}

// TestV1QuickModeForgery: a forged Quick Mode message with the cookies
// and message ID of the exchange in flight (both on the wire) reaches the
// initiator before the real QM2: one claiming no payloads at all (which
// CBC decryption cannot tell from a real one), and one whose HASH is
// garbage. Both are dropped, and the real QM2 still decrypts: the
// exchange's IV moves on only with a verified HASH.
func TestV1QuickModeForgery(t *testing.T) {
	tb := v1Bed(t)
	forged := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		h, err := isakmp.UnmarshalHeader(d.Data)
		if err != nil || h.Exchange != isakmp.ExchangeQuick || d.Local.Addr() != addrB || forged > 0 {
			return []ike.Datagram{d}
		}
		forged++
		var out []ike.Datagram
		for _, next := range []byte{0, byte(isakmp.PayloadHash)} {
			f := append([]byte(nil), d.Data...)
			f[16] = next // next payload
			for i := isakmp.HeaderLen; i < len(f); i++ {
				f[i] ^= 0x5a
			}
			out = append(out, ike.Datagram{Local: d.Local, Remote: d.Remote, Data: f})
		}
		return append(out, d)
	}
	tb.establish()
	if forged != 1 {
		t.Fatalf("no QM2 to forge")
	}
	tb.wantV1Established()
}
