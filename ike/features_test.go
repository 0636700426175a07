package ike_test

import (
	"crypto/x509"
	"github.com/xdpsec/xdpsec/ike/transform"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func dropAll(d ike.Datagram) []ike.Datagram { return nil }

func TestDPD(t *testing.T) {
	set := func(action string) func(c *ike.Connection) {
		return func(c *ike.Connection) {
			c.DPDDelay = 30 * time.Second
			c.Children[0].DPDAction = dpdActions[action]
		}
	}
	t.Run("alive", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: set("clear")})
		tb.establish()
		// after dpd_delay without traffic: HDR, SK {} --> <-- HDR, SK {}
		tb.advance(31 * time.Second)
		if !tb.a.log.contains("generating INFORMATIONAL request 2 [ ]") || !tb.a.log.contains("parsed INFORMATIONAL response 2 [ ]") {
			t.Fatal("no liveness check")
		}
		tb.established(tb.a)
	})
	t.Run("traffic suppresses DPD", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: set("clear")})
		tb.establish()
		for range 3 {
			tb.advance(20 * time.Second)
			in := tb.children(tb.a)[0].SPIIn
			tb.a.dp.SetStats(ike.SAID{Dst: addrA, SPI: in}, ike.SAStats{Packets: 1, LastUsed: tb.clock.Now()})
		}
		if tb.a.log.contains("generating INFORMATIONAL request") {
			t.Fatal("liveness check despite inbound ESP")
		}
	})
	t.Run("clear", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: set("clear")})
		tb.establish()
		tb.net.Filter = dropAll // the peer is gone
		tb.advance(31*time.Second + 170*time.Second)
		if !tb.a.log.contains("giving up after 5 retransmits") {
			t.Fatal("did not give up")
		}
		tb.wantNoSAs(tb.a)
	})
	t.Run("restart", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: set("restart")})
		tb.establish()
		tb.net.Filter = dropAll
		tb.advance(31*time.Second + 170*time.Second)
		if !tb.a.log.contains("restarting CHILD_SAs of IKE_SA gw[1]") {
			t.Fatal("no restart")
		}
		sas := tb.a.sas()
		if len(sas) != 1 || sas[0].State != ike.IKESAConnecting || sas[0].ID == 1 {
			t.Fatalf("want a new CONNECTING IKE_SA, got %+v", sas)
		}
		tb.net.Filter = nil // the peer is back
		tb.advance(10 * time.Second)
		tb.established(tb.a)
		if len(tb.children(tb.a)) != 1 {
			t.Fatal("CHILD_SA not restarted")
		}
	})
	t.Run("dpd_timeout", func(t *testing.T) {
		tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) {
			set("clear")(c)
			c.DPDTimeout = 10 * time.Second
		}})
		tb.establish()
		tb.net.Filter = dropAll
		tb.advance(42 * time.Second)
		tb.wantNoSAs(tb.a)
	})
}

func TestInvalidKE(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519-ecp256")
		},
		connB: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-ecp256")
		},
	})
	// HDR, SAi1, KEi(x25519), Ni --> <-- HDR, N(INVALID_KE_PAYLOAD: ECP_256)
	// HDR, SAi1, KEi(ecp256), Ni --> <-- HDR, SAr1, KEr, Nr
	tb.establish()
	tb.established(tb.a)
	tb.checkKeys()
	if !tb.b.log.contains("DH group CURVE_25519 unacceptable, requesting ECP_256") ||
		!tb.a.log.contains("peer didn't accept DH group CURVE_25519, it requested ECP_256") {
		t.Error("INVALID_KE_PAYLOAD not logged")
	}
	if len(tb.b.sas()) != 1 {
		t.Errorf("b has %d IKE_SAs", len(tb.b.sas()))
	}
}

func TestCookies(t *testing.T) {
	// unique = never on b: a's first IKE SA sends INITIAL_CONTACT (the
	// second does not: the first is being initiated), and its retransmit
	// reaches b after the second is established, which would have b keep
	// only the first.
	tb := newTestbed(t, bedOptions{cfgB: func(c *ike.Config) { c.CookieThreshold = 1 },
		connB: func(c *ike.Connection) { c.Unique = ike.UniqueNever }})
	// The first IKE_AUTH request is lost, which leaves one half-open IKE SA
	// on b: the threshold is reached.
	lost := false
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if h, err := message.UnmarshalHeader(d.Data); err == nil && h.ExchangeType == message.IKE_AUTH && !lost {
			lost = true
			return nil
		}
		return []ike.Datagram{d}
	}
	tb.establish()
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// HDR(A,0), SAi1, KEi, Ni --> <-- HDR(A,0), N(COOKIE)
	// HDR(A,0), N(COOKIE), SAi1, KEi, Ni --> <-- HDR(A,B), SAr1, KEr, Nr
	tb.net.Flush()
	if tb.b.e.Stats().CookiesSent != 1 || !tb.a.log.contains("received COOKIE notify, retrying with it") {
		t.Fatalf("no cookie exchange: %+v", tb.b.e.Stats())
	}
	if !tb.a.log.contains("generating IKE_SA_INIT request 0 [ N(COOKIE) SA KE No") {
		t.Error("COOKIE not first")
	}
	tb.advance(5 * time.Second)
	for _, p := range []*peer{tb.a, tb.b} {
		for _, sa := range p.sas() {
			if sa.State != ike.IKESAEstablished {
				t.Fatalf("%s: %+v", p.name, sa)
			}
		}
		if len(p.sas()) != 2 {
			t.Fatalf("%s has %d IKE SAs", p.name, len(p.sas()))
		}
	}
	// A forged cookie is refused.
	tb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: forgedCookieRequest(t)})
	if tb.b.e.Stats().CookiesRejected != 0 {
		t.Log("below threshold now, cookie not checked")
	}
}

func forgedCookieRequest(t *testing.T) []byte {
	m := &message.Message{Header: message.Header{InitiatorSPI: 42, ExchangeType: message.IKE_SA_INIT, Flags: message.FlagInitiator},
		Payloads: []message.Payload{&message.Notify{NotifyType: message.COOKIE, Data: []byte("forged cookie....")}, &message.Nonce{Data: make([]byte, 32)}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNATTraversal(t *testing.T) {
	inside := netip.MustParseAddr("10.0.0.1")
	tb := newTestbed(t, bedOptions{
		aAddr: inside,
		connB: func(c *ike.Connection) { c.RemoteAddrs = nil },
	})
	tb.nat = true
	nat := tb.net.AddNAT(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParseAddr("203.0.113.1"), 30000)
	// IKE_SA_INIT on 500 with N(NATD_S_IP) N(NATD_D_IP): the hashes do not
	// match the addresses seen, both ends detect the NAT; IKE_AUTH floats
	// to port 4500 with the non-ESP marker (RFC 7296 2.23).
	tb.establish()
	a, b := tb.established(tb.a), tb.established(tb.b)
	if !a.NATLocal || a.NATRemote || !b.NATRemote || b.NATLocal {
		t.Fatalf("NAT detection: a %v/%v b %v/%v", a.NATLocal, a.NATRemote, b.NATLocal, b.NATRemote)
	}
	if a.Local.Port() != 4500 || a.Remote.Port() != 4500 || b.Local.Port() != 4500 || b.Remote != netip.MustParseAddrPort("203.0.113.1:30001") {
		t.Fatalf("ports: a %v-%v b %v-%v", a.Local, a.Remote, b.Local, b.Remote)
	}
	tb.checkKeys()
	for _, sa := range tb.a.dp.SAs() {
		if sa.Encap == nil || (sa.Inbound && (sa.Encap.SrcPort != 4500 || sa.Encap.DstPort != 4500)) {
			t.Fatalf("a's SA %08x encap %+v", sa.SPI, sa.Encap)
		}
	}
	for _, sa := range tb.b.dp.SAs() {
		if sa.Encap == nil || (!sa.Inbound && sa.Encap.DstPort != 30001) {
			t.Fatalf("b's SA %08x encap %+v", sa.SPI, sa.Encap)
		}
	}
	// The NAT forgets its mapping: the next message comes from a new port
	// and b follows it, moving its SAs along.
	nat.Remap()
	if err := tb.a.e.RekeyChildSA(a.Children[0].ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if b := tb.established(tb.b); b.Remote.Port() != 30002 {
		t.Fatalf("b did not follow the new mapping: %v", b.Remote)
	}
	for _, sa := range tb.b.dp.SAs() {
		if !sa.Inbound && sa.Encap.DstPort != 30002 {
			t.Fatalf("b's outbound SA still to port %d", sa.Encap.DstPort)
		}
	}
	tb.settleRekeys()
	tb.checkKeys()
}

func TestFragmentation(t *testing.T) {
	root := newCA(t, "xdpsec Root CA", nil)
	inter1 := newCA(t, "xdpsec Intermediate CA 1", root)
	inter2 := newCA(t, "xdpsec Intermediate CA 2", inter1)
	keyA, keyB := newKey(t, "rsa"), newKey(t, "ecdsa")
	certA := inter2.Issue(t, keyA, "moon.example.org", []string{"moon.example.org"}, nil, []net.IP{addrA.AsSlice()})
	certB := root.Issue(t, keyB, "sun.example.org", []string{"sun.example.org"}, nil, nil)
	small := func(c *ike.Config) {
		c.FragmentSize = 576
		c.Credentials.CAs = []*x509.Certificate{root.Cert}
	}
	tb := newTestbed(t, bedOptions{
		cfgA: small, cfgB: small,
		connA: func(c *ike.Connection) {
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("moon.example.org"), Certs: []*x509.Certificate{certA, inter2.Cert, inter1.Cert}, PrivateKey: keyA}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org")}}
		},
		connB: func(c *ike.Connection) {
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org"), Certs: []*x509.Certificate{certB}, PrivateKey: keyB}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("moon.example.org")}}
		},
	})
	// Both announce N(FRAG_SUP) in IKE_SA_INIT; the IKE_AUTH request with
	// three certificates is cut into SKF fragments of at most 576-octet
	// datagrams (RFC 7383), reassembled by b. One fragment is duplicated
	// and the first copy of another one lost on the way.
	seen := map[int]bool{}
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if len(d.Data)+28 > 576 {
			t.Errorf("datagram of %d octets", len(d.Data)+28)
		}
		h, err := message.UnmarshalHeader(d.Data)
		if err == nil && h.NextPayload == message.PayloadSKF && !h.IsResponse() {
			n := len(seen)
			seen[len(seen)] = true
			switch n {
			case 1:
				return []ike.Datagram{d, d}
			case 2:
				return nil
			}
		}
		return []ike.Datagram{d}
	}
	tb.establish()
	tb.advance(5 * time.Second)
	tb.established(tb.a)
	tb.established(tb.b)
	tb.checkKeys()
	if !tb.a.log.contains("splitting IKE message") || !tb.b.log.contains("reassembled fragmented IKE message") {
		t.Error("no fragmentation logged")
	}
	if !tb.b.log.contains("authentication of 'moon.example.org' with RSA_EMSA_PSS_SHA2_256 successful") {
		t.Error("chain not validated")
	}
}

func TestTSNarrowing(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) { c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.0.0.0/8") },
		connB: func(c *ike.Connection) {
			c.Children[0].LocalTS = ike.MustParseTSSpecs("10.2.0.0/16")
			c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.1.0.0/24", "10.1.9.0/24[tcp/22]")
		},
	})
	// TSi 10.1.0.0/16, TSr 10.0.0.0/8 --> <-- TSi 10.1.0.0/24 10.1.9.0/24[tcp/22], TSr 10.2.0.0/16
	tb.establish()
	c := tb.children(tb.a)[0]
	if formatTS(c.LocalTS) != "10.1.0.0/24 10.1.9.0/24[tcp/22]" || formatTS(c.RemoteTS) != "10.2.0.0/16" {
		t.Fatalf("narrowed to %s === %s", formatTS(c.LocalTS), formatTS(c.RemoteTS))
	}
	if !tb.a.log.contains("TS 10.1.0.0/24 10.1.9.0/24[tcp/22] === 10.2.0.0/16") {
		t.Error("not logged")
	}
	if n := len(tb.a.dp.Policies()); n != 6 {
		t.Errorf("a has %d policies, want 6", n)
	}
	tb.checkKeys()
}

func formatTS(list []ike.TrafficSelector) string {
	s := ""
	for i, ts := range list {
		if i > 0 {
			s += " "
		}
		s += ts.String()
	}
	return s
}

func TestTransportMode(t *testing.T) {
	set := func(c *ike.Connection) {
		c.Children[0].Mode = ike.ModeTransport
		c.Children[0].LocalTS = ike.MustParseTSSpecs("dynamic")
		c.Children[0].RemoteTS = ike.MustParseTSSpecs("dynamic")
		c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes256-sha256-esn")
	}
	tb := newTestbed(t, bedOptions{connA: set, connB: set})
	// HDR, SK {IDi, IDr, AUTH, N(USE_TRANSPORT_MODE), SA, TSi, TSr} -->
	// <-- HDR, SK {IDr, AUTH, N(USE_TRANSPORT_MODE), SA, TSi, TSr}
	tb.establish()
	c := tb.children(tb.a)[0]
	if c.Mode != ike.ModeTransport || formatTS(c.LocalTS) != "192.0.2.1/32" || formatTS(c.RemoteTS) != "192.0.2.2/32" {
		t.Fatalf("child %+v", c)
	}
	for _, sa := range tb.a.dp.SAs() {
		if sa.Mode != ike.ModeTransport || !sa.ESN {
			t.Fatalf("SA %+v", sa)
		}
	}
	if !tb.b.log.contains("generating IKE_AUTH response 1 [ IDr AUTH N(USE_TRANSP) SA TSi TSr N(MSG_ID_SYN_SUP) ]") {
		t.Error("no USE_TRANSPORT_MODE in response")
	}
	tb.checkKeys()
	// a tunnel-only responder refuses to run in transport mode.
	tb2 := newTestbed(t, bedOptions{connA: set, connB: func(c *ike.Connection) {
		set(c)
		c.Children[0].Mode = ike.ModeTunnel
	}})
	tb2.establish()
	if !tb2.a.log.contains("transport mode requested but not accepted") {
		t.Error("transport mode silently downgraded")
	}
}

func TestCreateChildSA(t *testing.T) {
	add := func(c *ike.Connection) {
		c.Children = append(c.Children, &ike.ChildConfig{Name: "more", LocalTS: c.Children[0].LocalTS, RemoteTS: ike.MustParseTSSpecs("10.3.0.0/16"),
			ESPProposals: transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-ecp256")})
	}
	tb := newTestbed(t, bedOptions{connA: add, connB: func(c *ike.Connection) {
		add(c)
		c.Children[1].LocalTS = ike.MustParseTSSpecs("10.3.0.0/16")
		c.Children[1].RemoteTS = ike.MustParseTSSpecs("10.1.0.0/16")
	}})
	// the second child comes with CREATE_CHILD_SA and PFS:
	// HDR, SK {SA, Ni, KEi, TSi, TSr} --> <-- HDR, SK {SA, Nr, KEr, TSi, TSr}
	tb.establish()
	if len(tb.children(tb.a)) != 2 || len(tb.children(tb.b)) != 2 {
		t.Fatalf("children: %d %d", len(tb.children(tb.a)), len(tb.children(tb.b)))
	}
	if !tb.a.log.contains("generating CREATE_CHILD_SA request 2 [ SA No KE TSi TSr ]") {
		t.Error("no KE")
	}
	tb.checkKeys()
}

func TestSourceAddressLookup(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) { c.LocalAddrs = nil },
		cfgA: func(c *ike.Config) {
			c.SourceAddress = func(remote netip.Addr) (netip.Addr, bool) { return addrA, remote == addrB }
		},
	})
	tb.establish()
	if a := tb.established(tb.a); a.Local.Addr() != addrA || a.NATLocal {
		t.Fatalf("local %v nat %v", a.Local, a.NATLocal)
	}
	tb.checkKeys()
}

func TestIPv6(t *testing.T) {
	a6, b6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	tb := newTestbed(t, bedOptions{
		aAddr: a6, bAddr: b6,
		connA: func(c *ike.Connection) {
			c.Local[0].ID = ike.MustParseIdentity("2001:db8::1")
			c.Remote[0].ID = ike.MustParseIdentity("2001:db8::2")
			c.Children[0].LocalTS = ike.MustParseTSSpecs("fd01::/64")
			c.Children[0].RemoteTS = ike.MustParseTSSpecs("fd02::/64")
		},
		connB: func(c *ike.Connection) {
			c.Local[0].ID = ike.MustParseIdentity("2001:db8::2")
			c.Remote[0].ID = ike.MustParseIdentity("2001:db8::1")
			c.Children[0].LocalTS = ike.MustParseTSSpecs("fd02::/64")
			c.Children[0].RemoteTS = ike.MustParseTSSpecs("fd01::/64")
		},
	})
	tb.establish()
	if !tb.a.log.contains("IKE_SA gw[1] established between 2001:db8::1[2001:db8::1]...2001:db8::2[2001:db8::2]") ||
		!tb.a.log.contains("TS fd01::/64 === fd02::/64") {
		t.Fatal("not established over IPv6")
	}
	tb.checkKeys()
}
