package ike_test

import (
	"crypto/x509"
	"github.com/xdpsec/xdpsec/ike/transform"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/isakmp"
)

func TestV1MainModeSignatures(t *testing.T) {
	for _, kind := range []string{"rsa", "ecdsa", "ecdsa384", "ecdsa521"} {
		t.Run(kind, func(t *testing.T) {
			ca := newCA(t, "xdpsec test CA", nil)
			tb := certBed(t, kind, nil, "moon.example.org", "sun.example.org", ca, ca, nil, v1("aes128-sha256-modp2048", "aes128-sha256"))
			tb.establish()
			tb.wantV1Established()
			if !tb.b.log.contains("authentication of 'moon.example.org' with") {
				t.Errorf("b did not log the signature authentication")
			}
			// The initiator asks for the responder's certificate in
			// message 3: charon sends it only when asked.
			if !tb.a.log.contains("generating ID_PROT request 0 [ KE No CERTREQ") {
				t.Errorf("a sent no CERTREQ in message 3")
			}
		})
	}
}

func v1Bed(t *testing.T, mod ...func(c *ike.Connection)) *testbed {
	f := both(append([]func(c *ike.Connection){v1("aes128-sha256-modp2048", "aes128-sha256")}, mod...)...)
	return newTestbed(t, bedOptions{connA: f, connB: f})
}

func TestV1Delete(t *testing.T) {
	tb := v1Bed(t)
	id := tb.establish()
	tb.wantV1Established()
	// Deleting the IPsec SA, then the ISAKMP SA: informational D payloads.
	if err := tb.a.e.DeleteChildSA(tb.children(tb.a)[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if len(tb.children(tb.b)) != 0 || len(tb.b.dp.SAs()) != 0 {
		t.Fatalf("b kept the IPsec SA")
	}
	if err := tb.a.e.DeleteIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

func TestV1DPDPeerGone(t *testing.T) {
	for _, action := range []string{"clear", "restart"} {
		t.Run(action, func(t *testing.T) {
			tb := v1Bed(t, func(c *ike.Connection) {
				c.DPDDelay, c.DPDTimeout = 10*time.Second, 30*time.Second
				c.Children[0].DPDAction = dpdActions[action]
			})
			tb.establish()
			tb.wantV1Established()
			// A quiet period: R-U-THERE is answered, nothing dies.
			tb.advance(time.Minute)
			tb.established(tb.a)
			// b vanishes.
			tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
				if d.Remote.Addr() == addrB {
					return nil
				}
				return []ike.Datagram{d}
			}
			tb.advance(time.Minute)
			if !tb.a.log.contains("DPD check timed out") {
				t.Fatalf("a did not declare b dead")
			}
			if action == "restart" && tb.a.log.count("initiating Main Mode IKE_SA") < 2 {
				t.Fatalf("a did not restart")
			}
		})
	}
}

func TestV1NATT(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connA: v1("aes128-sha256-modp2048", "aes128-sha256"),
		connB: func(c *ike.Connection) {
			v1("aes128-sha256-modp2048", "aes128-sha256")(c)
			c.RemoteAddrs = nil
		},
		aAddr: netip.MustParseAddr("10.99.0.1"), noAttach: false,
	})
	tb.nat = true
	tb.net.AddNAT(netip.MustParsePrefix("10.99.0.0/16"), netip.MustParseAddr("198.51.100.7"), 40000)
	tb.establish()
	tb.wantV1Established()
	a := tb.established(tb.a)
	if !a.NATLocal || a.Local.Port() != ike.PortNATT || a.Remote.Port() != ike.PortNATT {
		t.Fatalf("a did not float: %+v", a)
	}
	for _, sa := range tb.a.dp.SAs() {
		if sa.Encap == nil {
			t.Fatalf("SA %08x not UDP-encapsulated", sa.SPI)
		}
	}
	tb.advance(time.Minute)
	if tb.a.e.Stats().KeepAlivesSent == 0 {
		t.Errorf("no keepalives")
	}
}

func TestV1RetransmitDropsAndDuplicates(t *testing.T) {
	tb := v1Bed(t)
	n := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		n++
		switch n % 3 {
		case 1:
			return nil // every third datagram lost
		case 2:
			return []ike.Datagram{d, d} // and some duplicated
		}
		return []ike.Datagram{d}
	}
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.advance(2 * time.Minute)
	tb.net.Filter = nil
	tb.advance(time.Minute)
	tb.wantV1Established()
	if tb.a.e.Stats().Retransmits+tb.b.e.Stats().Retransmits == 0 {
		t.Errorf("no retransmits")
	}
}

func TestV1InvalidIDInformation(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: v1("aes128-sha256-modp2048", "aes128-sha256"),
		connB: func(c *ike.Connection) {
			v1("aes128-sha256-modp2048", "aes128-sha256")(c)
			c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.9.0.0/16")
		}})
	tb.establish()
	if !tb.b.log.contains("no matching CHILD_SA config found for 10.2.0.0/16 === 10.1.0.0/16 (configured: [10.2.0.0/16 === 10.9.0.0/16]), sending INVALID_ID_INFORMATION") {
		t.Errorf("b did not log both selectors")
	}
	if !tb.a.log.contains("received INVALID_ID_INFORMATION error notify for CHILD_SA net: proposed TS 10.1.0.0/16 === 10.2.0.0/16") {
		t.Errorf("a did not log the refusal")
	}
}

func Test3DESRefused(t *testing.T) {
	// A configured proposal with 3DES is refused where it is parsed.
	if _, err := transform.ParseProposals(transform.ProtoIKE, "3des-sha1-modp2048"); err == nil {
		t.Fatalf("3des accepted in a proposal")
	}
	tb := v1Bed(t)
	// A peer proposing 3DES is refused with a log line.
	m := &isakmp.Message{Header: isakmp.Header{InitiatorCookie: 42, Exchange: isakmp.ExchangeMain},
		Payloads: []isakmp.Payload{&isakmp.SecurityAssociation{DOI: isakmp.DOIIPsec, Situation: 1, Proposals: []isakmp.Proposal{{
			Number: 1, Protocol: isakmp.ProtoISAKMP, Transforms: []isakmp.Transform{{Number: 1, ID: 1, Attributes: []isakmp.Attribute{
				isakmp.BasicAttr(isakmp.P1Encryption, isakmp.P1Encr3DES), isakmp.BasicAttr(isakmp.P1Hash, isakmp.P1HashSHA1),
				isakmp.BasicAttr(isakmp.P1AuthMethod, uint16(isakmp.AuthPSK)), isakmp.BasicAttr(isakmp.P1Group, 14)}}}}}}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: b})
	if !tb.b.log.contains("3DES is refused by default") {
		t.Fatalf("b did not log the 3DES refusal")
	}
	if !tb.b.log.contains("N(NO_PROP)") {
		t.Fatalf("b did not answer NO_PROPOSAL_CHOSEN")
	}
}

func TestV1RekeyChild(t *testing.T) {
	tb := v1Bed(t, func(c *ike.Connection) {
		c.Children[0].RekeyTime, c.Children[0].LifeTime = time.Hour, 2*time.Hour
	})
	tb.establish()
	before := tb.children(tb.a)[0]
	tb.advance(70 * time.Minute)
	after := tb.children(tb.a)
	if len(after) != 1 || after[0].SPIIn == before.SPIIn {
		t.Fatalf("IPsec SA not rekeyed: %+v", after)
	}
	tb.checkKeys()
}

func TestV1ReauthISAKMPSA(t *testing.T) {
	tb := v1Bed(t, func(c *ike.Connection) {
		c.RekeyTime = time.Hour
		c.Children[0].RekeyTime = 3 * time.Hour
	})
	tb.establish()
	first := tb.established(tb.a)
	tb.advance(65 * time.Minute)
	now := tb.established(tb.a)
	if now.ID == first.ID || len(now.Children) != 1 {
		t.Fatalf("ISAKMP SA not replaced with its IPsec SA: %+v", now)
	}
	tb.established(tb.b)
	tb.checkKeys()
}

// TestV1Fragmentation: Main Mode with a three-certificate chain through
// datagrams of at most 576 octets. Both ends send the fragmentation vendor
// ID in messages 1/2; message 5, with the chain, goes as FRAG payloads
// (the Cisco/strongSwan extension), one of them duplicated on the way,
// and is reassembled by the responder.
func TestV1Fragmentation(t *testing.T) {
	root := newCA(t, "xdpsec Root CA", nil)
	inter1 := newCA(t, "xdpsec Intermediate CA 1", root)
	inter2 := newCA(t, "xdpsec Intermediate CA 2", inter1)
	keyA, keyB := newKey(t, "rsa"), newKey(t, "rsa")
	certA := inter2.Issue(t, keyA, "moon.example.org", []string{"moon.example.org"}, nil, nil)
	certB := root.Issue(t, keyB, "sun.example.org", []string{"sun.example.org"}, nil, nil)
	small := func(c *ike.Config) {
		c.FragmentSize = 576
		c.Credentials.CAs = []*x509.Certificate{root.Cert}
	}
	toV1 := v1("aes128-sha256-modp2048", "aes128-sha256")
	tb := newTestbed(t, bedOptions{
		cfgA: small, cfgB: small,
		connA: func(c *ike.Connection) {
			toV1(c)
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("moon.example.org"), Certs: []*x509.Certificate{certA, inter2.Cert, inter1.Cert}, PrivateKey: keyA}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org")}}
		},
		connB: func(c *ike.Connection) {
			toV1(c)
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org"), Certs: []*x509.Certificate{certB}, PrivateKey: keyB}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("moon.example.org")}}
		},
	})
	fragments := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if len(d.Data)+28 > 576 {
			t.Errorf("datagram of %d octets", len(d.Data)+28)
		}
		h, err := isakmp.UnmarshalHeader(d.Data)
		if err == nil && h.NextPayload == isakmp.PayloadFragment {
			fragments++
			if fragments == 2 {
				return []ike.Datagram{d, d}
			}
		}
		return []ike.Datagram{d}
	}
	tb.establish()
	tb.wantV1Established()
	if fragments < 3 {
		t.Errorf("%d fragments sent, want the chain cut into at least 3", fragments)
	}
	if !tb.b.log.contains("authentication of 'moon.example.org' with") {
		t.Error("b did not authenticate a through the reassembled chain")
	}
}

// TestV1RekeyKeepsOldInbound: after a Quick Mode rekey the initiator
// deletes the old IPsec SA at once; both ends keep its inbound SA for
// DeleteRekeyedDelay (the responder sees the newer IPsec SA of the same
// selectors), for what the peer sent on it before it switched.
func TestV1RekeyKeepsOldInbound(t *testing.T) {
	tb := v1Bed(t)
	tb.establish()
	old := tb.children(tb.a)[0]
	if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	now := tb.children(tb.a)
	if len(now) != 1 || now[0].SPIIn == old.SPIIn {
		t.Fatalf("IPsec SA not rekeyed: %+v", now)
	}
	count := func(p *peer) (in, out int) {
		for _, s := range p.dp.SAs() {
			if s.Inbound {
				in++
			} else {
				out++
			}
		}
		return in, out
	}
	for _, p := range []*peer{tb.a, tb.b} {
		if in, out := count(p); in != 2 || out != 1 {
			t.Errorf("%s right after the rekey: %d inbound, %d outbound SAs; want the old and new inbound, the new outbound", p.name, in, out)
		}
	}
	tb.settleRekeys()
	for _, p := range []*peer{tb.a, tb.b} {
		if in, out := count(p); in != 1 || out != 1 {
			t.Errorf("%s after DeleteRekeyedDelay: %d inbound, %d outbound SAs", p.name, in, out)
		}
	}
	tb.checkKeys()
}
