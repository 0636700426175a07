package ike_test

import (
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// v1 makes both ends IKEv1 with the given IKE and ESP proposals.
func v1(ikeProp, espProp string) func(c *ike.Connection) {
	return func(c *ike.Connection) {
		c.Version = 1
		c.Proposals = []string{ikeProp}
		c.Children[0].ESPProposals = []string{espProp}
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
