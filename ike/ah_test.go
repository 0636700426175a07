package ike_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// ahChild makes the connection's CHILD_SA AH with the given proposals.
func ahChild(props string, mode ike.Mode) func(c *ike.Connection) {
	return func(c *ike.Connection) {
		c.Children[0].ESPProposals = nil
		c.Children[0].AHProposals = transform.MustParseProposals(transform.ProtoAH, props)
		c.Children[0].Mode = mode
	}
}

// checkAH checks that both ends installed the same AH CHILD_SA: every SA
// is AH, without encryption, with the integrity key its twin has, and
// the policies' templates are AH.
func (tb *testbed) checkAH(integ transform.IntegID, mode ike.Mode) {
	tb.t.Helper()
	for _, p := range []*peer{tb.a, tb.b} {
		sas := tb.children(p)
		if len(sas) != 1 || sas[0].Protocol != ike.SAProtoAH || sas[0].Mode != mode || !strings.HasPrefix(sas[0].Proposal, "AH:") {
			tb.t.Fatalf("%s: CHILD_SAs %+v, want one AH %v", p.name, sas, mode)
		}
		for _, pol := range p.dp.Policies() {
			if pol.Proto != ike.SAProtoAH {
				tb.t.Fatalf("%s: policy %v === %v %v with a %v template", p.name, pol.Src, pol.Dst, pol.Dir, pol.Proto)
			}
		}
	}
	as, bs := tb.a.dp.SAs(), tb.b.dp.SAs()
	if len(as) != 2 || len(bs) != 2 {
		tb.t.Fatalf("a has %d SAs, b %d", len(as), len(bs))
	}
	for _, x := range as {
		y := tb.b.dp.SA(x.SPI)
		if y == nil || x.Proto != ike.SAProtoAH || y.Proto != ike.SAProtoAH || x.Inbound == y.Inbound {
			tb.t.Fatalf("SA %08x: %+v and twin %+v", x.SPI, x, y)
		}
		if x.Encr != 0 || len(x.EncrKey) != 0 || x.Integ != integ || y.Integ != integ ||
			len(x.IntegKey) != integ.KeySize() || !bytes.Equal(x.IntegKey, y.IntegKey) {
			tb.t.Fatalf("SA %08x: encr %v/%d bytes, integ %v/%v, keys equal %v", x.SPI, x.Encr, len(x.EncrKey), x.Integ, y.Integ,
				bytes.Equal(x.IntegKey, y.IntegKey))
		}
		if x.Mode != mode || x.Encap != nil {
			tb.t.Fatalf("SA %08x: mode %v encap %+v", x.SPI, x.Mode, x.Encap)
		}
	}
}

// TestAH negotiates AH CHILD_SAs (RFC 4302) between two engines, in both
// IKE versions, tunnel and transport mode, each end initiating; rekeys
// and deletes them (REKEY_SA and Delete with Protocol ID AH).
func TestAH(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version uint8
		props   string
		integ   transform.IntegID
		mode    ike.Mode
		fromB   bool // b initiates
	}{
		{"IKEv2 tunnel", 2, "sha256", transform.AUTH_HMAC_SHA2_256_128, ike.ModeTunnel, false},
		{"IKEv2 transport, b initiates", 2, "sha512-modp2048,sha1", transform.AUTH_HMAC_SHA2_512_256, ike.ModeTransport, true},
		{"IKEv1 tunnel", 1, "sha256", transform.AUTH_HMAC_SHA2_256_128, ike.ModeTunnel, false},
		{"IKEv1 transport with PFS, b initiates", 1, "sha384-modp2048", transform.AUTH_HMAC_SHA2_384_192, ike.ModeTransport, true},
		{"IKEv1 AES-XCBC", 1, "aesxcbc", transform.AUTH_AES_XCBC_96, ike.ModeTunnel, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := func(c *ike.Connection) {
				if tc.version == 1 {
					v1("aes128-sha256-modp2048", "aes128-sha256")(c)
				}
				ahChild(tc.props, tc.mode)(c)
			}
			tb := newTestbed(t, bedOptions{connA: set, connB: set})
			init, resp := tb.a, tb.b
			if tc.fromB {
				init, resp = tb.b, tb.a
			}
			if _, err := init.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.checkAH(tc.integ, tc.mode)
			if !strings.Contains(strings.Join(init.dp.Events(), "\n"), "allocate AH ") {
				t.Errorf("no AH SPI allocated: %v", init.dp.Events())
			}
			if tc.version == 2 && !resp.log.contains("selected proposal: AH:") {
				t.Errorf("responder did not log the AH proposal it selected")
			}

			old := tb.children(init)[0]
			if err := init.e.RekeyChildSA(old.ID); err != nil {
				t.Fatal(err)
			}
			tb.settleRekeys()
			if ch := tb.children(init); len(ch) != 1 || ch[0].SPIIn == old.SPIIn || ch[0].Protocol != ike.SAProtoAH {
				t.Fatalf("after the rekey: %+v (old SPI %08x)", ch, old.SPIIn)
			}
			tb.checkAH(tc.integ, tc.mode)

			ch := tb.children(resp)[0]
			if err := resp.e.DeleteChildSA(ch.ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			for _, p := range []*peer{tb.a, tb.b} {
				if n := len(tb.children(p)); n != 0 {
					t.Fatalf("%s: %d CHILD_SAs after the delete", p.name, n)
				}
			}
			if !init.log.contains("received DELETE for AH CHILD_SA with SPI") {
				t.Errorf("the peer's DELETE did not name AH")
			}
			if err := init.e.DeleteIKESA(tb.established(init).ID); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			tb.settleRekeys()
			tb.wantNoSAs(tb.a)
			tb.wantNoSAs(tb.b)
		})
	}
}

// TestAHProposalMismatch: an AH CHILD_SA offered to an ESP-only peer (and
// the reverse) is refused with NO_PROPOSAL_CHOSEN, charon's log lines
// naming both sides' proposals.
func TestAHProposalMismatch(t *testing.T) {
	for _, version := range []uint8{2, 1} {
		t.Run(map[uint8]string{1: "IKEv1", 2: "IKEv2"}[version], func(t *testing.T) {
			ver := func(c *ike.Connection) {
				if version == 1 {
					v1("aes128-sha256-modp2048", "aes128-sha256")(c)
				}
			}
			tb := newTestbed(t, bedOptions{connA: both(ver, ahChild("sha256", ike.ModeTunnel)), connB: ver})
			tb.establish()
			if ch := tb.established(tb.a).Children; len(ch) != 0 {
				t.Fatalf("CHILD_SA established: %+v", ch)
			}
			if !tb.b.log.contains("no acceptable proposal found") || !tb.b.log.contains("configured proposals: ESP:") {
				t.Errorf("b did not log the refusal")
			}
			if version == 2 && !tb.b.log.contains("received proposals: AH:HMAC_SHA2_256_128/NO_EXT_SEQ") {
				t.Errorf("b did not log the AH proposal received")
			}
			if n := tb.a.dp.AllocatedSPIs(); n != 0 {
				t.Errorf("a keeps %d SPIs", n)
			}
		})
	}
}

// TestAHBehindNAT: AH authenticates the outer addresses, which a NAT
// rewrites (RFC 3947): with a NAT detected the initiator does not propose
// it and nothing is installed; a responder that sees a NAT refuses it
// (TestV1AHResponderSeesNAT).
func TestAHBehindNAT(t *testing.T) {
	for _, version := range []uint8{2, 1} {
		ver := func(c *ike.Connection) {
			if version == 1 {
				v1("aes128-sha256-modp2048", "aes128-sha256")(c)
			}
		}
		name := map[uint8]string{1: "IKEv1", 2: "IKEv2"}[version]
		t.Run(name+" initiator behind a NAT", func(t *testing.T) {
			tb := newTestbed(t, bedOptions{
				aAddr: netip.MustParseAddr("10.0.0.1"),
				connA: both(ver, ahChild("sha256", ike.ModeTunnel)),
				connB: both(ver, ahChild("sha256", ike.ModeTunnel), func(c *ike.Connection) { c.RemoteAddrs = nil }),
			})
			tb.nat = true
			tb.net.AddNAT(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParseAddr("203.0.113.1"), 30000)
			tb.establish()
			if ch := tb.established(tb.a).Children; len(ch) != 0 {
				t.Fatalf("CHILD_SA established behind a NAT: %+v", ch)
			}
			if !tb.a.log.contains("unable to establish AH CHILD_SA net: AH is not supported behind a NAT") {
				t.Errorf("a did not say why")
			}
			if len(tb.a.dp.SAs()) != 0 || len(tb.b.dp.SAs()) != 0 || tb.a.dp.AllocatedSPIs() != 0 {
				t.Errorf("SAs installed or SPIs kept")
			}
		})
	}
}

// corruptV1SourceNATD rewrites the second NAT-D payload (the sender's own
// address, RFC 3947 3.2) of IKEv1 Main Mode messages a sends on port 500:
// only the responder then sees a NAT. HASH_I does not cover NAT-D, so
// phase 1 still authenticates.
func corruptV1SourceNATD(d ike.Datagram) []ike.Datagram {
	b := d.Data
	if d.Local.Addr() != addrA || d.Remote.Port() != 500 || len(b) < 28 || b[17] != 0x10 || b[18] != 2 || b[19]&1 != 0 {
		return []ike.Datagram{d}
	}
	b = append([]byte(nil), b...)
	next, off, natd := b[16], 28, 0
	for next != 0 && off+4 <= len(b) {
		n := int(b[off+2])<<8 | int(b[off+3])
		if n < 4 || off+n > len(b) {
			break
		}
		if next == 20 || next == 130 { // NAT-D, RFC 3947 or draft
			if natd++; natd == 2 {
				b[off+n-1] ^= 0xff
			}
		}
		next, off = b[off], off+n
	}
	d.Data = b
	return []ike.Datagram{d}
}

// TestV1AHResponderSeesNAT: only the responder detects a NAT (the
// initiator's source NAT-D does not match): the initiator proposes AH in
// Quick Mode and the responder answers NO_PROPOSAL_CHOSEN, saying why.
func TestV1AHResponderSeesNAT(t *testing.T) {
	set := both(func(c *ike.Connection) { v1("aes128-sha256-modp2048", "aes128-sha256")(c) }, ahChild("sha256", ike.ModeTunnel))
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	tb.net.Filter = corruptV1SourceNATD
	tb.establish()
	a, b := tb.established(tb.a), tb.established(tb.b)
	if a.NATLocal || a.NATRemote || !b.NATRemote {
		t.Fatalf("NAT detection: a %v/%v, b remote %v; want only b to see one", a.NATLocal, a.NATRemote, b.NATRemote)
	}
	if len(a.Children) != 0 || len(b.Children) != 0 {
		t.Fatalf("AH CHILD_SA established behind a NAT: %+v %+v", a.Children, b.Children)
	}
	if !tb.b.log.contains("AH is not supported behind a NAT, sending NO_PROPOSAL_CHOSEN for CHILD_SA net") {
		t.Errorf("b did not say why it refused")
	}
	if len(tb.a.dp.SAs()) != 0 || len(tb.b.dp.SAs()) != 0 || tb.b.dp.AllocatedSPIs() != 0 {
		t.Errorf("SAs installed or SPIs kept")
	}
}

// TestAHTakeBack: a restarted engine takes an AH CHILD_SA back from its
// saved state (IKEv2 and IKEv1): the saved SAIDs name AH SAs, the
// policies come back with AH templates, and the peer's rekey installs
// AH SAs again.
func TestAHTakeBack(t *testing.T) {
	for _, version := range []uint8{2, 1} {
		t.Run(map[uint8]string{1: "IKEv1", 2: "IKEv2"}[version], func(t *testing.T) {
			set := func(c *ike.Connection) {
				if version == 1 {
					v1("aes128-sha256-modp2048", "aes128-sha256")(c)
				}
				ahChild("sha256", ike.ModeTunnel)(c)
			}
			tb := newTestbed(t, bedOptions{connA: set, connB: set})
			tb.establish()
			old := tb.children(tb.a)[0]
			st := tb.b.e.Detach()
			var ids []ike.SAID
			if version == 1 {
				ids = st.V1[0].SAIDs()
			} else {
				ids = st.SAs[0].SAIDs()
			}
			if len(ids) != 2 || ids[0].Proto != ike.SAProtoAH || ids[1].Proto != ike.SAProtoAH {
				t.Fatalf("saved SAIDs %+v, want two AH SAs", ids)
			}
			cb := baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
			set(cb)
			tb.b = tb.restartPeer(tb.b, st, cb, 0xc4000000)
			if ch := tb.children(tb.b); len(ch) != 1 || ch[0].Protocol != ike.SAProtoAH || ch[0].SPIIn != old.SPIOut {
				t.Fatalf("taken back: %+v", ch)
			}
			pols := tb.b.dp.Policies()
			if len(pols) == 0 {
				t.Fatal("no policies taken back")
			}
			for _, p := range pols {
				if p.Proto != ike.SAProtoAH {
					t.Fatalf("policy taken back with a %v template", p.Proto)
				}
			}
			if err := tb.a.e.RekeyChildSA(old.ID); err != nil {
				t.Fatal(err)
			}
			tb.settleRekeys()
			ch := tb.children(tb.b)
			if len(ch) != 1 || ch[0].SPIIn == old.SPIOut || ch[0].Protocol != ike.SAProtoAH {
				t.Fatalf("after the rekey: %+v", ch)
			}
			for _, s := range tb.b.dp.SAs() {
				if s.Proto != ike.SAProtoAH || len(s.IntegKey) != 32 || len(s.EncrKey) != 0 {
					t.Errorf("SA %08x after the rekey: %v, integ key %d, encr key %d octets", s.SPI, s.Proto, len(s.IntegKey), len(s.EncrKey))
				}
			}
		})
	}
}

// TestMOBIKEAHIntoNAT: a moves behind a NAT (MOBIKE): its AH CHILD_SA
// cannot follow (AH authenticates the outer addresses), so both ends close
// it, saying why, and remove its SAs; the IKE SA stays.
func TestMOBIKEAHIntoNAT(t *testing.T) {
	set := ahChild("sha256", ike.ModeTunnel)
	tb := newMobikeBed(t, bedOptions{connA: set, connB: set})
	if ch := tb.children(tb.a); len(ch) != 1 || ch[0].Protocol != ike.SAProtoAH {
		t.Fatalf("before the move: %+v", ch)
	}
	tb.net.AddNAT(natInner, natPubA, 30000)
	tb.roam(addrA, insideA)
	tb.settleRekeys()
	for _, p := range []*peer{tb.a, tb.b} {
		if ch := tb.children(p); len(ch) != 0 {
			t.Errorf("%s: AH CHILD_SAs behind a NAT: %+v", p.name, ch)
		}
		if sas := p.dp.SAs(); len(sas) != 0 {
			t.Errorf("%s: %d SAs left", p.name, len(sas))
		}
	}
	if !tb.a.log.contains("AH is not supported behind a NAT, closing CHILD_SA net") &&
		!tb.b.log.contains("AH is not supported behind a NAT, closing CHILD_SA net") {
		t.Error("neither end said why it closed the AH CHILD_SA")
	}
	if b := tb.established(tb.b); b.Remote.Addr() != natPubA || !b.NATRemote {
		t.Errorf("b's IKE_SA is with %s (NAT %v)", b.Remote, b.NATRemote)
	}
}

// TestV1AHChildByProtocol: a Quick Mode responder with an ESP and an AH
// child of the same selectors takes the one whose protocol the peer
// offers.
func TestV1AHChildByProtocol(t *testing.T) {
	for _, proto := range []ike.SAProto{ike.SAProtoAH, ike.SAProtoESP} {
		t.Run(proto.String(), func(t *testing.T) {
			tb := newTestbed(t, bedOptions{
				connA: func(c *ike.Connection) {
					v1("aes128-sha256-modp2048", "aes128-sha256")(c)
					if proto == ike.SAProtoAH {
						ahChild("sha256", ike.ModeTunnel)(c)
					}
				},
				connB: func(c *ike.Connection) {
					v1("aes128-sha256-modp2048", "aes128-sha256")(c)
					esp := *c.Children[0]
					esp.Name = "esp"
					ah := esp
					ah.Name, ah.ESPProposals = "ah", nil
					ah.AHProposals = transform.MustParseProposals(transform.ProtoAH, "sha256")
					c.Children = []*ike.ChildConfig{&esp, &ah}
				},
			})
			tb.establish()
			ch := tb.children(tb.b)
			want := map[ike.SAProto]string{ike.SAProtoAH: "ah", ike.SAProtoESP: "esp"}[proto]
			if len(ch) != 1 || ch[0].Protocol != proto || ch[0].Name != want {
				t.Fatalf("b's CHILD_SAs %+v, want %s (%v)", ch, want, proto)
			}
		})
	}
}
