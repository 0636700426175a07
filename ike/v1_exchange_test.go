package ike_test

import (
	"github.com/xdpsec/xdpsec/ike/transform"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/isakmp"
)

// v1 makes both ends IKEv1 with the given IKE and ESP proposals.
func v1(ikeProp, espProp string) func(c *ike.Connection) {
	return func(c *ike.Connection) {
		c.Version = 1
		c.Proposals = transform.MustParseProposals(transform.ProtoIKE, ikeProp)
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, espProp)
	}
}

func both(fs ...func(c *ike.Connection)) func(c *ike.Connection) {
	return func(c *ike.Connection) {
		for _, f := range fs {
			f(c)
		}
	}
}

func (tb *testbed) wantV1Established() {
	tb.t.Helper()
	a, b := tb.established(tb.a), tb.established(tb.b)
	if a.Version != 1 || b.Version != 1 || a.SPIi != b.SPIi || a.SPIr != b.SPIr || !a.Initiator || b.Initiator {
		tb.t.Fatalf("ISAKMP SAs disagree: %+v %+v", a, b)
	}
	if len(a.Children) != 1 || len(b.Children) != 1 {
		tb.t.Fatalf("children: %d %d", len(a.Children), len(b.Children))
	}
	if a.Children[0].SPIIn != b.Children[0].SPIOut || a.Children[0].SPIOut != b.Children[0].SPIIn {
		tb.t.Fatalf("IPsec SA SPIs disagree")
	}
	// The kernel matches SAs to policies by reqid: every SA must carry
	// its policies' one.
	for _, p := range []*peer{tb.a, tb.b} {
		reqids := map[uint32]bool{}
		for _, pol := range p.dp.Policies() {
			reqids[pol.ReqID] = true
		}
		for _, s := range p.dp.SAs() {
			if s.ReqID == 0 || !reqids[s.ReqID] {
				tb.t.Fatalf("%s: SA %08x (inbound %v) has reqid %d, its policies %v", p.name, s.SPI, s.Inbound, s.ReqID, reqids)
			}
		}
	}
	tb.checkKeys()
}

func TestV1MainModePSK(t *testing.T) {
	for _, c := range []struct{ ike, esp string }{
		{"aes128-sha256-modp2048", "aes128-sha256"},
		{"aes256-sha1-modp2048", "aes256-sha1"},
		{"aes128-sha256-modp2048", "aes128-sha256-modp2048"}, // PFS
		{"aes256-sha384-ecp384", "aes256-sha512-ecp256"},
	} {
		t.Run(c.ike+"/"+c.esp, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: v1(c.ike, c.esp), connB: v1(c.ike, c.esp)})
			// Main Mode: SA -->  <-- SA   KE Ni -->  <-- KE Nr   ID HASH_I* -->  <-- ID HASH_R*
			// Quick Mode: HASH(1) SA Ni [KE] IDci IDcr* -->  <-- HASH(2) ...*   HASH(3)* -->
			tb.establish()
			tb.wantV1Established()
			for _, want := range []string{
				"initiating Main Mode IKE_SA gw[1] to 192.0.2.2",
				"generating ID_PROT request 0 [ SA V V V V V ]",
				"IKE_SA gw[1] established between 192.0.2.1[moon.example.org]...192.0.2.2[sun.example.org]",
				"authentication of 'sun.example.org' with pre-shared key successful",
				"CHILD_SA net{1} established with SPIs",
				"TS 10.1.0.0/16 === 10.2.0.0/16",
				"generating QUICK_MODE request",
			} {
				if !tb.a.log.contains(want) {
					t.Errorf("a did not log %q", want)
				}
			}
			if !tb.b.log.contains("selected proposal: IKE:") {
				t.Errorf("b did not log the selected proposal")
			}
		})
	}
}

func TestV1WrongPSK(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: v1("aes128-sha256-modp2048", "aes128-sha256"), connB: v1("aes128-sha256-modp2048", "aes128-sha256"),
		pskA: "one secret", pskB: "another secret"})
	tb.establish()
	if !tb.b.log.contains("decryption failed?") || !tb.b.log.contains("pre-shared key") {
		t.Fatalf("b did not point at the pre-shared key")
	}
	tb.advance(5 * time.Minute)
	if len(tb.a.sas()) != 0 || len(tb.b.sas()) != 0 {
		t.Fatalf("SAs left: %+v %+v", tb.a.sas(), tb.b.sas())
	}
}

func TestV1AggressiveMode(t *testing.T) {
	aggr := func(c *ike.Connection) { c.Aggressive = true }
	t.Run("enabled", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: both(v1("aes128-sha256-modp2048", "aes128-sha256"), aggr),
			connB: both(v1("aes128-sha256-modp2048", "aes128-sha256"), aggr)})
		tb.establish()
		tb.wantV1Established()
		if !tb.a.log.contains("initiating Aggressive Mode IKE_SA") {
			t.Errorf("not Aggressive Mode")
		}
	})
	t.Run("refused", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: both(v1("aes128-sha256-modp2048", "aes128-sha256"), aggr),
			connB: v1("aes128-sha256-modp2048", "aes128-sha256")})
		tb.establish()
		if !tb.b.log.contains("Aggressive Mode PSK disabled for security reasons") {
			t.Fatalf("b did not log the refusal")
		}
		if !tb.a.log.contains("received AUTHENTICATION_FAILED error notify") {
			t.Fatalf("a did not get AUTHENTICATION_FAILED")
		}
		if len(tb.a.sas()) != 0 || len(tb.b.sas()) != 0 {
			t.Fatalf("SAs left")
		}
	})
}

// TestV1AggressiveQuickModeFirst: the Aggressive Mode initiator is
// established once it sent HASH_I and starts Quick Mode at once; when
// HASH_I is lost or overtaken, the responder gets HASH(1) before phase 1
// completed. As charon, it ignores that Quick Mode ("ignoring QUICK_MODE
// request while phase 1 is incomplete") and relies on retransmissions:
// its own of message 2, answered with HASH_I again, and the initiator's of
// HASH(1).
func TestV1AggressiveQuickModeFirst(t *testing.T) {
	aggr := func(c *ike.Connection) { c.Aggressive = true }
	conn := both(v1("aes128-sha256-modp2048", "aes128-sha256"), aggr)
	for _, c := range []struct {
		name string
		// filter sees the n-th Aggressive Mode or Quick Mode message of a.
		filter func(h isakmp.Header, n int, d ike.Datagram, held *[]ike.Datagram) []ike.Datagram
	}{
		{"hash-i-lost", func(h isakmp.Header, n int, d ike.Datagram, held *[]ike.Datagram) []ike.Datagram {
			if h.Exchange == isakmp.ExchangeAggressive && n == 2 {
				return nil
			}
			return []ike.Datagram{d}
		}},
		{"hash-i-overtaken", func(h isakmp.Header, n int, d ike.Datagram, held *[]ike.Datagram) []ike.Datagram {
			switch {
			case h.Exchange == isakmp.ExchangeAggressive && n == 2:
				*held = append(*held, d)
				return nil
			case h.Exchange == isakmp.ExchangeQuick && len(*held) > 0:
				out := append([]ike.Datagram{d}, *held...)
				*held = nil
				return out
			}
			return []ike.Datagram{d}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: conn, connB: conn})
			var held []ike.Datagram
			n := map[isakmp.ExchangeType]int{}
			tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
				h, err := isakmp.UnmarshalHeader(d.Data)
				if err != nil || d.Local.Addr() != addrA {
					return []ike.Datagram{d}
				}
				n[h.Exchange]++
				return c.filter(h, n[h.Exchange], d, &held)
			}
			tb.establish()
			if !tb.b.log.contains("ignoring QUICK_MODE request while phase 1 is incomplete") {
				t.Fatalf("b did not get Quick Mode before HASH_I")
			}
			tb.advance(time.Minute)
			tb.wantV1Established()
			if tb.a.e.Stats().Retransmits == 0 {
				t.Errorf("a retransmitted nothing")
			}
			if tb.b.log.contains("could not decrypt") || tb.b.log.contains("does not match") {
				t.Errorf("b tried to process a message it could not yet decrypt")
			}
		})
	}
}

// TestV1AggressiveInformationalFirst: an informational message that
// overtakes HASH_I is not retransmitted by anyone, so the responder holds
// it (as charon queues it) and processes it once phase 1 completes: here
// the initiator's DELETE of the ISAKMP SA.
func TestV1AggressiveInformationalFirst(t *testing.T) {
	aggr := func(c *ike.Connection) { c.Aggressive = true }
	conn := both(v1("aes128-sha256-modp2048", "aes128-sha256"), aggr)
	tb := newTestbed(t, bedOptions{connA: conn, connB: conn})
	var hashI []ike.Datagram
	aggressive := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		h, err := isakmp.UnmarshalHeader(d.Data)
		if err != nil || d.Local.Addr() != addrA {
			return []ike.Datagram{d}
		}
		switch h.Exchange {
		case isakmp.ExchangeAggressive:
			if aggressive++; aggressive == 2 {
				hashI = append(hashI, d)
				return nil
			}
		case isakmp.ExchangeQuick:
			return nil
		case isakmp.ExchangeInformational:
			return append([]ike.Datagram{d}, hashI...)
		}
		return []ike.Datagram{d}
	}
	id := tb.establish()
	if len(hashI) != 1 {
		t.Fatalf("HASH_I not held back")
	}
	if err := tb.a.e.DeleteIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	established, deleted := -1, -1
	for i, l := range tb.b.log.all() {
		if strings.Contains(l, "IKE_SA gw[1] established between") && established < 0 {
			established = i
		}
		if strings.Contains(l, "received DELETE for IKE_SA") && deleted < 0 {
			deleted = i
		}
	}
	if !tb.b.log.contains("queueing INFORMATIONAL_V1 request until phase 1 completes") || established < 0 || deleted < established {
		t.Fatalf("b did not hold the DELETE until phase 1 completed (established at line %d, DELETE at %d)", established, deleted)
	}
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}
