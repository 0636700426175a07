package ike_test

import (
	"crypto/x509"
	"github.com/xdpsec/xdpsec/ike/transform"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func TestDeleteFromEachSide(t *testing.T) {
	for _, side := range []string{"initiator", "responder"} {
		t.Run(side, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{})
			tb.establish()
			del, other := tb.a, tb.b
			if side == "responder" {
				del, other = tb.b, tb.a
			}
			// Delete the CHILD_SA: HDR, SK {D(ESP, SPI)} --> <-- HDR, SK {D(ESP, SPI)}
			child := tb.children(del)[0]
			if err := del.e.DeleteChildSA(child.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			if n := len(tb.children(del)) + len(tb.children(other)); n != 0 {
				t.Fatalf("%d CHILD_SAs left", n)
			}
			if len(del.dp.SAs())+len(other.dp.SAs())+len(del.dp.Policies())+len(other.dp.Policies()) != 0 {
				t.Fatalf("dataplane not empty")
			}
			if !other.log.contains("received DELETE for ESP CHILD_SA with SPI") || !del.log.contains("sending DELETE for ESP CHILD_SA") {
				t.Error("delete not logged")
			}
			// Delete the IKE SA: HDR, SK {D(IKE)} --> <-- HDR, SK {}
			if err := del.e.DeleteIKESA(tb.established(del).ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.wantNoSAs(del)
			tb.wantNoSAs(other)
			if !other.log.contains("received DELETE for IKE_SA gw[1]") || !del.log.contains("IKE_SA gw[1] deleted") {
				t.Error("IKE delete not logged")
			}
		})
	}
}

func TestDeleteIKESARemovesChildren(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	id := tb.establish()
	if err := tb.a.e.DeleteIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

func TestRetransmitDropped(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	// Drop the first IKE_SA_INIT request and the first IKE_AUTH response.
	dropped := map[string]bool{}
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		h, err := message.UnmarshalHeader(d.Data)
		if err != nil {
			return []ike.Datagram{d}
		}
		key := h.ExchangeType.String() + reqOrResp(h)
		if (key == "IKE_SA_INITrequest" || key == "IKE_AUTHresponse") && !dropped[key] {
			dropped[key] = true
			return nil
		}
		return []ike.Datagram{d}
	}
	tb.establish()
	if len(tb.a.sas()) != 1 || tb.a.sas()[0].State != ike.IKESAConnecting {
		t.Fatalf("want a CONNECTING IKE_SA, got %+v", tb.a.sas())
	}
	// RFC 7296 2.1: the initiator retransmits after its timeout (4s)
	tb.advance(4 * time.Second)
	if !tb.a.log.contains("sending retransmit 1 of request message ID 0, seq 1") {
		t.Fatal("no IKE_SA_INIT retransmit")
	}
	// the IKE_AUTH response was lost; the retransmitted request is answered
	// from the responder's cache.
	tb.advance(4 * time.Second)
	if !tb.a.log.contains("sending retransmit 1 of request message ID 1, seq 1") {
		t.Fatal("no IKE_AUTH retransmit")
	}
	if !tb.b.log.contains("received retransmit of request with ID 1, retransmitting response") {
		t.Fatal("responder did not answer from its cache")
	}
	tb.established(tb.a)
	tb.established(tb.b)
	tb.checkKeys()
}

func reqOrResp(h message.Header) string {
	if h.IsResponse() {
		return "response"
	}
	return "request"
}

func TestRetransmitGiveUp(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram { return nil }
	tb.establish()
	// 4s * 1.8^n: 4, 7.2, 12.96, 23.3, 42, 75.6: 165s in all
	tb.advance(164 * time.Second)
	if tb.a.log.count("sending retransmit") != 5 {
		t.Fatalf("retransmits: %d", tb.a.log.count("sending retransmit"))
	}
	if len(tb.a.sas()) != 1 {
		t.Fatal("gave up too early")
	}
	tb.advance(2 * time.Second)
	if !tb.a.log.contains("giving up after 5 retransmits") {
		t.Fatal("did not give up")
	}
	tb.wantNoSAs(tb.a)
}

func TestResponseCacheDuplicates(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	// Every datagram arrives twice.
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram { return []ike.Datagram{d, d} }
	tb.establish()
	tb.established(tb.a)
	tb.established(tb.b)
	tb.checkKeys()
	if len(tb.b.sas()) != 1 {
		t.Fatalf("responder has %d IKE_SAs", len(tb.b.sas()))
	}
	if !tb.b.log.contains("received retransmit of request with ID 1, retransmitting response") {
		t.Error("duplicate IKE_AUTH not answered from cache")
	}
	if tb.a.e.Stats().DroppedMessageID == 0 {
		t.Error("duplicate responses not dropped")
	}
}

func TestProposalMismatch(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519")
		},
		connB: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256-sha256-modp2048")
		},
	})
	tb.establish()
	// HDR, SAi1, KEi, Ni --> <-- HDR, N(NO_PROPOSAL_CHOSEN)
	for _, want := range []string{
		"received proposals: IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519",
		"configured proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
		"no proposal found",
		"generating IKE_SA_INIT response 0 [ N(NO_PROP) ]",
	} {
		if !tb.b.log.contains(want) {
			t.Errorf("b did not log %q", want)
		}
	}
	if !tb.a.log.contains("received NO_PROPOSAL_CHOSEN notify error") {
		t.Error("a did not log the error")
	}
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

func TestPSKMismatch(t *testing.T) {
	tb := newTestbed(t, bedOptions{pskA: "secret one", pskB: "secret two"})
	tb.establish()
	// IKE_AUTH request --> <-- HDR, SK {N(AUTHENTICATION_FAILED)}
	if !tb.b.log.contains("tried 1 shared key for 'sun.example.org' - 'moon.example.org', but MAC mismatched") ||
		!tb.b.log.contains("generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]") {
		t.Error("b did not refuse")
	}
	if !tb.a.log.contains("received AUTHENTICATION_FAILED notify error") {
		t.Error("a did not see AUTHENTICATION_FAILED")
	}
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

func TestTSMismatch(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connB: func(c *ike.Connection) { c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.9.0.0/16") },
	})
	tb.establish()
	// the IKE SA is up, the CHILD_SA is refused: <-- HDR, SK {IDr, AUTH, N(TS_UNACCEPTABLE)}
	tb.established(tb.a)
	tb.established(tb.b)
	if !tb.b.log.contains("generating IKE_AUTH response 1 [ IDr AUTH N(TS_UNACCEPT) N(MSG_ID_SYN_SUP) ]") {
		t.Error("b did not answer TS_UNACCEPTABLE")
	}
	// Both sides' selectors are logged, in charon's words: b's choice
	// against what a proposed, and what a proposed.
	for _, want := range []string{
		"looking for a child config for 10.2.0.0/16 === 10.1.0.0/16",
		`  candidate "net":`,
		"selecting traffic selectors for us:",
		" config: 10.2.0.0/16, received: 10.2.0.0/16 => match: 10.2.0.0/16",
		"selecting traffic selectors for other:",
		" config: 10.9.0.0/16, received: 10.1.0.0/16 => no match",
		"traffic selectors 10.2.0.0/16 === 10.1.0.0/16 unacceptable",
	} {
		if !tb.b.log.contains(want) {
			t.Errorf("b did not log %q", want)
		}
	}
	for _, want := range []string{
		"received TS_UNACCEPTABLE notify, no CHILD_SA built",
		"proposing traffic selectors for us:",
		" 10.1.0.0/16",
		"proposing traffic selectors for other:",
		" 10.2.0.0/16",
	} {
		if !tb.a.log.contains(want) {
			t.Errorf("a did not log %q", want)
		}
	}
	if len(tb.children(tb.a))+len(tb.children(tb.b)) != 0 {
		t.Error("CHILD_SAs were built")
	}
	if len(tb.a.dp.SAs())+len(tb.b.dp.SAs()) != 0 || tb.a.dp.AllocatedSPIs() != 0 {
		t.Error("dataplane not clean")
	}
}

func TestESPProposalMismatch(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connB: func(c *ike.Connection) {
			c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes256-sha512")
		},
	})
	tb.establish()
	tb.established(tb.a)
	if !tb.b.log.contains("received proposals: ESP:AES_GCM_16_128/NO_EXT_SEQ") || !tb.b.log.contains("configured proposals: ESP:AES_CBC_256/HMAC_SHA2_512_256/NO_EXT_SEQ") {
		t.Error("proposals not logged")
	}
	if !tb.a.log.contains("received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built") {
		t.Error("a did not log NO_PROPOSAL_CHOSEN")
	}
}

func TestInitiatorRejectsResponder(t *testing.T) {
	trusted, untrusted := newCA(t, "Trusted CA", nil), newCA(t, "Untrusted CA", nil)
	keyB := newKey(t, "ecdsa")
	certB := untrusted.Issue(t, keyB, "sun.example.org", []string{"sun.example.org"}, nil, nil)
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) { c.Remote[0].Auth = ike.AuthPubkey },
		connB: func(c *ike.Connection) {
			c.Local[0] = &ike.AuthConfig{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org"), Certs: []*x509.Certificate{certB}, PrivateKey: keyB}
		},
		cfgA: func(c *ike.Config) { c.Credentials.CAs = []*x509.Certificate{trusted.Cert} },
	})
	tb.establish()
	// b accepts a's PSK and considers the IKE SA up; a finds no trusted
	// path for b's certificate and says so:
	// HDR, SK {N(AUTHENTICATION_FAILED)} --> <-- HDR, SK {}
	if !tb.a.log.contains("no trusted ECDSA public key found for 'sun.example.org'") ||
		!tb.a.log.contains("generating INFORMATIONAL request 2 [ N(AUTH_FAILED) ]") {
		t.Fatal("a did not reject b")
	}
	if !tb.b.log.contains("received AUTHENTICATION_FAILED error notify") {
		t.Fatal("b not told")
	}
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}
