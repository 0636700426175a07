package ike_test

import (
	"crypto"
	"crypto/x509"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// raBed is a remote-access gateway (b, sun.example.org with a
// certificate, users authenticated with EAP, virtual IPs from a pool) and
// its road warriors: a and those added with client.
type raBed struct {
	*testbed
	ca     *iketest.CA
	pool   *ike.Pool
	users  []ike.EAPSecret
	gwConn *ike.Connection
}

type raOptions struct {
	serverMethods, clientMethods []eap.Type
	poolAddrs                    string // default 10.3.200.1-10.3.200.2
	password                     string // a's password, default carol's right one
	user                         string // a's identity, default carol
	// backend, when set, makes the gateway's remote round eap-radius,
	// relaying to it (eap_relay_test.go), with eapID as its eap_id.
	backend ike.EAPBackend
	eapID   string
	// clientCert, when set, gives a the certificate and key of its local
	// round (EAP-TLS), made with the gateway's CA at hand; the gateway
	// then trusts that CA.
	clientCert func(ca *iketest.CA) (crypto.Signer, *x509.Certificate)
}

func newRABed(t *testing.T, o raOptions) *raBed {
	t.Helper()
	if o.serverMethods == nil {
		o.serverMethods = []eap.Type{eap.TypeMSCHAPv2}
	}
	if o.clientMethods == nil {
		o.clientMethods = []eap.Type{eap.TypeMSCHAPv2}
	}
	if o.poolAddrs == "" {
		o.poolAddrs = "10.3.200.1-10.3.200.2"
	}
	if o.user == "" {
		o.user = "carol"
	}
	if o.password == "" {
		o.password = "carol's password"
	}
	first, last, _ := cutRange(o.poolAddrs)
	leases, err := pool.FromRange("rw", first, last)
	if err != nil {
		t.Fatal(err)
	}
	rb := &raBed{ca: iketest.NewCA(t, "RA CA", nil),
		pool: &ike.Pool{Leases: leases, DNS: []netip.Addr{netip.MustParseAddr("10.3.0.1")}, Subnets: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		users: []ike.EAPSecret{
			{IDs: []string{"carol"}, Secret: []byte("carol's password")},
			{IDs: []string{"dave"}, Secret: []byte("dave's password")},
		}}
	key := iketest.NewKey(t, "ecdsa")
	cert := rb.ca.Issue(t, key, "sun.example.org", []string{"sun.example.org"}, nil, []net.IP{addrB.AsSlice()})
	var gwCAs []*x509.Certificate
	var clientKey crypto.Signer
	var clientCert *x509.Certificate
	if o.clientCert != nil {
		clientKey, clientCert = o.clientCert(rb.ca)
		gwCAs = []*x509.Certificate{rb.ca.Cert}
	}
	rb.testbed = newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			rb.clientConn(c, o.user, o.clientMethods)
			if clientCert != nil {
				c.Local[0].Certs, c.Local[0].PrivateKey = []*x509.Certificate{clientCert}, clientKey
			}
		},
		connB: func(c *ike.Connection) {
			c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org"), Certs: []*x509.Certificate{cert}, PrivateKey: key}}
			c.Remote = []*ike.AuthConfig{{Auth: ike.AuthEAP, EAPMethods: o.serverMethods, EAPID: "%any"}}
			if o.backend != nil {
				c.Remote = []*ike.AuthConfig{{Auth: ike.AuthEAPRadius, EAPID: o.eapID}}
			}
			c.RemoteAddrs = nil
			c.Pools = []string{"rw"}
			c.Children[0].RemoteTS = []ike.TSSpec{ike.DynamicTS()}
			rb.gwConn = c
		},
		cfgA: func(c *ike.Config) {
			c.Credentials = ike.Credentials{CAs: []*x509.Certificate{rb.ca.Cert}, EAP: []ike.EAPSecret{{IDs: []string{o.user}, Secret: []byte(o.password)}}}
		},
		cfgB: func(c *ike.Config) {
			c.Credentials = ike.Credentials{EAP: rb.users, CAs: gwCAs}
			c.Pools = []*ike.Pool{rb.pool}
			c.EAPBackend = o.backend
		},
	})
	return rb
}

func cutRange(s string) (netip.Addr, netip.Addr, bool) {
	for i := range s {
		if s[i] == '-' {
			return netip.MustParseAddr(s[:i]), netip.MustParseAddr(s[i+1:]), true
		}
	}
	return netip.Addr{}, netip.Addr{}, false
}

// clientConn makes a road warrior's connection of the base one.
func (rb *raBed) clientConn(c *ike.Connection, user string, methods []eap.Type) {
	c.Local = []*ike.AuthConfig{{Auth: ike.AuthEAP, EAPMethods: methods, ID: ike.MustParseIdentity(user)}}
	c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org")}}
	c.VIPs = []netip.Addr{netip.IPv4Unspecified()}
	c.Children[0].LocalTS = []ike.TSSpec{ike.DynamicTS()}
}

// client adds another road warrior at addr, as user with password.
func (rb *raBed) client(name string, addr netip.Addr, user, password string, spiBase uint32) *peer {
	c := baseConn(addr, addrB, user, "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	rb.clientConn(c, user, []eap.Type{eap.TypeMSCHAPv2})
	return rb.newPeer(name, addr, c, "", spiBase, func(cfg *ike.Config) {
		cfg.Credentials = ike.Credentials{CAs: []*x509.Certificate{rb.ca.Cert}, EAP: []ike.EAPSecret{{IDs: []string{user}, Secret: []byte(password)}}}
	})
}

func (rb *raBed) connect(p *peer) {
	rb.t.Helper()
	if _, err := p.e.Initiate("gw"); err != nil {
		rb.t.Fatal(err)
	}
	rb.net.Flush()
}

func wantLog(t *testing.T, p *peer, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !p.log.contains(l) {
			t.Errorf("%s's log lacks %q", p.name, l)
		}
	}
}

// TestRemoteAccessMSCHAPv2: RFC 7296 section 2.16 end to end, our client
// against our gateway: EAP-Identity, EAP-MSCHAPv2, AUTH over the MSK,
// then the CHILD_SA with the client's selector narrowed to the virtual
// IP the CFG_REPLY carried, with the pool's DNS server. Deleting the IKE
// SA takes the lease offline.
func TestRemoteAccessMSCHAPv2(t *testing.T) {
	rb := newRABed(t, raOptions{})
	rb.establish()
	vip := netip.MustParseAddr("10.3.200.1")
	c, g := rb.established(rb.a), rb.established(rb.b)
	if !slices.Equal(c.LocalVIPs, []netip.Addr{vip}) || !slices.Equal(g.RemoteVIPs, []netip.Addr{vip}) {
		t.Fatalf("virtual IPs: client %v, gateway %v", c.LocalVIPs, g.RemoteVIPs)
	}
	if g.EAPIdentity != "carol" || c.EAPIdentity != "carol" {
		t.Errorf("EAP identities: gateway %q, client %q", g.EAPIdentity, c.EAPIdentity)
	}
	if len(c.Children) != 1 || len(g.Children) != 1 {
		t.Fatalf("CHILD_SAs: client %d, gateway %d", len(c.Children), len(g.Children))
	}
	want := "10.3.200.1/32"
	if got := c.Children[0].LocalTS; len(got) != 1 || got[0].String() != want {
		t.Errorf("client's local selectors %v, want %s", got, want)
	}
	if got := g.Children[0].RemoteTS; len(got) != 1 || got[0].String() != want {
		t.Errorf("gateway's remote selectors %v, want %s", got, want)
	}
	rb.checkKeys()
	wantLog(t, rb.b, "initiating EAP_IDENTITY method", "EAP method EAP_MSCHAPV2 succeeded, MSK established",
		"authentication of 'carol' with EAP successful", "peer requested virtual IP %any", "assigning virtual IP 10.3.200.1 to peer 'carol'")
	wantLog(t, rb.a, "authentication of 'sun.example.org' with EAP successful", "received virtual IP 10.3.200.1", "received DNS server 10.3.0.1")
	if _, online, _ := rb.pool.Leases.Stats(); online != 1 {
		t.Errorf("%d leases online, want 1", online)
	}
	if err := rb.a.e.DeleteIKESA(c.ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	rb.wantNoSAs(rb.a)
	rb.wantNoSAs(rb.b)
	if _, online, offline := rb.pool.Leases.Stats(); online != 0 || offline != 1 {
		t.Errorf("after the delete: %d online, %d offline leases, want 0 and 1", online, offline)
	}
}

// TestRemoteAccessRefused: a wrong password and an unknown user get
// AUTHENTICATION_FAILED and charon's log line with the cause; the
// gateway keeps nothing, and no address is leased.
func TestRemoteAccessRefused(t *testing.T) {
	for _, tc := range []struct{ name, user, password, log string }{
		{"wrong-password", "carol", "not carol's password", "EAP method EAP_MSCHAPV2 failed for peer carol: wrong password"},
		{"unknown-user", "eve", "eve's password", "EAP method EAP_MSCHAPV2 failed for peer eve: unknown user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := newRABed(t, raOptions{user: tc.user, password: tc.password})
			rb.establish()
			wantLog(t, rb.b, tc.log)
			wantLog(t, rb.a, "received AUTHENTICATION_FAILED notify error")
			rb.wantNoSAs(rb.a)
			rb.wantNoSAs(rb.b)
			if n := rb.b.e.Stats().EAPFailures; n != 1 {
				t.Errorf("EAPFailures %d, want 1", n)
			}
			if size, online, offline := rb.pool.Leases.Stats(); online+offline != 0 {
				t.Errorf("pool of %d: %d online, %d offline after a refusal", size, online, offline)
			}
		})
	}
}

// TestRemoteAccessMD5: eap-dynamic offers EAP-MSCHAPv2, the client Naks
// it for EAP-MD5, which has no MSK: both AUTH payloads use SK_p.
func TestRemoteAccessMD5(t *testing.T) {
	rb := newRABed(t, raOptions{serverMethods: []eap.Type{eap.TypeMSCHAPv2, eap.TypeMD5}, clientMethods: []eap.Type{eap.TypeMD5}})
	rb.establish()
	rb.established(rb.a)
	rb.established(rb.b)
	rb.checkKeys()
	wantLog(t, rb.b, "EAP method EAP_MD5 succeeded, no MSK established", "assigning virtual IP 10.3.200.1 to peer 'carol'")
}

// TestRemoteAccessPool: two addresses for three users. The third is
// refused with INTERNAL_ADDRESS_FAILURE (its IKE SA stands, without
// CHILD_SA, as with charon); a user who comes back gets the address it
// had, and a new one is given one never handed out before that of a user
// who left.
func TestRemoteAccessPool(t *testing.T) {
	rb := newRABed(t, raOptions{})
	rb.users = append(rb.users, ike.EAPSecret{IDs: []string{"frank"}, Secret: []byte("frank's password")})
	rb.b.e.SetCredentials(ike.Credentials{EAP: rb.users})
	rb.establish() // carol: .1
	dave := rb.client("dave", addrC, "dave", "dave's password", 0xc3000000)
	rb.connect(dave) // dave: .2
	if g := rb.established(dave); !slices.Equal(g.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.200.2")}) {
		t.Fatalf("dave's virtual IPs %v", g.LocalVIPs)
	}
	frank := rb.client("frank", netip.MustParseAddr("192.0.2.4"), "frank", "frank's password", 0xc4000000)
	rb.connect(frank)
	wantLog(t, rb.b, "no virtual IP found for %any requested by 'frank'")
	wantLog(t, frank, "received INTERNAL_ADDRESS_FAILURE notify, no CHILD_SA built")
	if f := rb.established(frank); len(f.Children) != 0 || len(f.LocalVIPs) != 0 {
		t.Errorf("frank without an address: %+v", f)
	}
	if n := rb.b.e.Stats().VIPFailures; n != 1 {
		t.Errorf("VIPFailures %d, want 1", n)
	}
	// carol leaves and comes back: .1 again.
	if err := rb.a.e.DeleteIKESA(rb.established(rb.a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	rb.establish()
	if c := rb.established(rb.a); !slices.Equal(c.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.200.1")}) {
		t.Errorf("carol's virtual IPs on her return %v, want 10.3.200.1", c.LocalVIPs)
	}
}

// TestRemoteAccessHostileEAP: an authenticated initiator sending garbage
// where its EAP Response belongs ends its own IKE SA with
// AUTHENTICATION_FAILED, counted, and nothing else.
func TestRemoteAccessHostileEAP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte // EAP payload body, or nil for no EAP payload
	}{
		{"truncated", []byte{2, 1, 0, 4}},
		{"request-code", []byte{1, 0, 0, 5, 1}},
		{"expanded-type", []byte{2, 0, 0, 12, 254, 0, 0, 0, 0, 0, 0, 1}},
		{"nak-for-nothing", []byte{2, 0, 0, 6, 3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := sendEAPResponse(t, tc.payload)
			if n := rb.b.e.Stats(); n.Panics != 0 || n.EAPFailures != 1 {
				t.Errorf("stats: %+v", n)
			}
			if len(rb.b.sas()) != 0 {
				t.Errorf("gateway kept the IKE SA: %+v", rb.b.sas())
			}
		})
	}
}

// TestRemoteAccessRestart: a gateway restarted (Detach, Import into a
// new engine with fresh pools, as the daemon does) gives the taken-back
// IKE SA its lease again and carries the offline leases over, so that a
// new client is not handed an address in use.
func TestRemoteAccessRestart(t *testing.T) {
	rb := newRABed(t, raOptions{poolAddrs: "10.3.200.1-10.3.200.3"})
	rb.establish() // carol: .1
	dave := rb.client("dave", addrC, "dave", "dave's password", 0xc3000000)
	rb.connect(dave) // dave: .2
	if err := dave.e.DeleteIKESA(rb.established(dave).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush() // dave's .2 offline
	st := rb.b.e.Detach()
	leases, _ := pool.FromRange("rw", netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("10.3.200.3"))
	fresh := &ike.Pool{Leases: leases, DNS: rb.pool.DNS}
	rb.b = rb.restartPeer(rb.b, st, rb.gwConn, 0xc5000000, func(c *ike.Config) {
		c.Credentials = ike.Credentials{EAP: rb.users}
		c.Pools = []*ike.Pool{fresh}
	})
	if size, online, offline := leases.Stats(); online != 1 || offline != 1 {
		t.Fatalf("after the restart: pool of %d with %d online, %d offline leases, want 1 and 1", size, online, offline)
	}
	if g := rb.established(rb.b); !slices.Equal(g.RemoteVIPs, []netip.Addr{netip.MustParseAddr("10.3.200.1")}) || g.EAPIdentity != "carol" {
		t.Errorf("taken-back IKE SA: %+v", g)
	}
	dave2 := rb.client("dave2", netip.MustParseAddr("192.0.2.5"), "dave", "dave's password", 0xc6000000)
	rb.connect(dave2)
	if g := rb.established(dave2); !slices.Equal(g.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.200.2")}) {
		t.Errorf("dave after the restart got %v, want his 10.3.200.2", g.LocalVIPs)
	}
	// carol leaves: her lease goes offline in the new pool.
	if err := rb.a.e.DeleteIKESA(rb.established(rb.a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	if _, online, offline := leases.Stats(); online != 1 || offline != 1 {
		t.Errorf("after carol left: %d online, %d offline, want 1 and 1", online, offline)
	}
}

// sendEAPResponse runs IKE_AUTH up to the gateway's first EAP Request,
// drops the client's answer and sends the gateway raw (an EAP payload's
// body) in its place, from the authenticated client.
func sendEAPResponse(t *testing.T, raw []byte) *raBed {
	rb := newRABed(t, raOptions{})
	rb.quiet = true
	if _, err := rb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// IKE_SA_INIT both ways, the first IKE_AUTH both ways: the gateway
	// waits for an EAP Response, and the client's is dropped.
	for range 4 {
		rb.net.Deliver()
	}
	rb.net.Drop()
	g := rb.b.sas()
	if len(g) != 1 {
		t.Fatalf("gateway has %d IKE SAs", len(g))
	}
	body := make([]byte, 4+len(raw))
	copy(body[4:], raw)
	body[2], body[3] = byte(len(body)>>8), byte(len(body))
	pkt, err := rb.b.e.SealAsPeer(g[0].ID, message.Header{ExchangeType: message.IKE_AUTH, Flags: message.FlagInitiator, MessageID: 2},
		message.PayloadEAP, body)
	if err != nil {
		return rb
	}
	rb.b.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrB, 4500), Remote: netip.AddrPortFrom(addrA, 4500), Data: append([]byte{0, 0, 0, 0}, pkt...)})
	return rb
}

// FuzzRemoteAccessEAPResponse: whatever an authenticated client sends
// where its EAP Response belongs, the gateway neither panics nor
// establishes the IKE SA.
func FuzzRemoteAccessEAPResponse(f *testing.F) {
	f.Add([]byte{2, 0x40, 0, 10, 1, 'c', 'a', 'r', 'o', 'l'})
	f.Add([]byte{2, 0, 0, 6, 3, 4})
	f.Add([]byte{2, 0, 0, 5, 26})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 2000 {
			return
		}
		rb := sendEAPResponse(t, raw)
		if n := rb.b.e.Stats(); n.Panics != 0 {
			t.Fatalf("panics: %d", n.Panics)
		}
		for _, sa := range rb.b.sas() {
			if sa.State == ike.IKESAEstablished {
				t.Fatalf("established on %x", raw)
			}
		}
	})
}

// TestRemoteAccessIPv6: a client asking for an IPv4 and an IPv6 address
// gets one of each, from the pool of each family, and its selectors are
// both.
func TestRemoteAccessIPv6(t *testing.T) {
	rb := newRABed(t, raOptions{})
	leases6, err := pool.FromPrefix("rw6", netip.MustParsePrefix("fd00:3::/120"))
	if err != nil {
		t.Fatal(err)
	}
	p6 := &ike.Pool{Leases: leases6, DNS: []netip.Addr{netip.MustParseAddr("fd00::53")}, DNSDomains: []string{"corp.example"}}
	rb.gwConn.Pools = []string{"rw", "rw6"}
	if err := rb.b.e.AddConnection(rb.gwConn); err != nil {
		t.Fatal(err)
	}
	rb.b.e.SetPools([]*ike.Pool{rb.pool, p6})
	c := baseConn(addrA, addrB, "carol", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	rb.clientConn(c, "carol", []eap.Type{eap.TypeMSCHAPv2})
	c.VIPs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.2.0.0/16", "fd00:2::/64")
	if err := rb.a.e.AddConnection(c); err != nil {
		t.Fatal(err)
	}
	rb.gwConn.Children[0].LocalTS = ike.MustParseTSSpecs("10.2.0.0/16", "fd00:2::/64")
	if err := rb.b.e.AddConnection(rb.gwConn); err != nil {
		t.Fatal(err)
	}
	rb.establish()
	want := []netip.Addr{netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("fd00:3::1")}
	cl, g := rb.established(rb.a), rb.established(rb.b)
	if !slices.Equal(cl.LocalVIPs, want) || !slices.Equal(g.RemoteVIPs, want) {
		t.Fatalf("virtual IPs: client %v, gateway %v", cl.LocalVIPs, g.RemoteVIPs)
	}
	if len(g.Children) != 1 || len(g.Children[0].RemoteTS) != 2 || g.Children[0].RemoteTS[1].String() != "fd00:3::1/128" {
		t.Errorf("gateway's CHILD_SA: %+v", g.Children)
	}
	wantLog(t, rb.b, "peer requested virtual IP %any6", "assigning virtual IP fd00:3::1 to peer 'carol'")
	wantLog(t, rb.a, "received DNS server fd00::53")
}

// TestRemoteAccessRetransmit: a response lost in the middle of EAP is
// sent again from the gateway's response cache when the client
// retransmits its request; the conversation goes on unharmed.
func TestRemoteAccessRetransmit(t *testing.T) {
	for lost := 2; lost <= 6; lost++ {
		rb := newRABed(t, raOptions{})
		if _, err := rb.a.e.Initiate("gw"); err != nil {
			t.Fatal(err)
		}
		// Datagrams alternate request, response: drop the lost-th response.
		for i := 0; i < 2*lost-1; i++ {
			rb.net.Deliver()
		}
		rb.net.Drop()
		rb.advance(5 * time.Second)
		rb.net.Flush()
		rb.established(rb.a)
		rb.established(rb.b)
		rb.checkKeys()
		if !rb.b.log.contains("retransmitting response") {
			t.Errorf("response %d lost: the gateway did not answer the retransmit from its cache", lost)
		}
	}
}

// TestRemoteAccessWithoutEAP: virtual IPs do not need EAP. A road warrior
// that authenticates with a PSK (or a certificate) asks for an address in
// its IKE_AUTH request and the gateway leases one, as charon does with
// any authentication; with the pool exhausted the IKE SA stays without a
// CHILD_SA, refused with INTERNAL_ADDRESS_FAILURE.
func TestRemoteAccessWithoutEAP(t *testing.T) {
	leases, err := pool.FromRange("rw", netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("10.3.200.1"))
	if err != nil {
		t.Fatal(err)
	}
	p := &ike.Pool{Leases: leases, DNS: []netip.Addr{netip.MustParseAddr("10.3.0.1")}}
	tb := newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			c.VIPs = []netip.Addr{netip.IPv4Unspecified()}
			c.Children[0].LocalTS = []ike.TSSpec{ike.DynamicTS()}
		},
		connB: func(c *ike.Connection) {
			c.RemoteAddrs = nil
			c.Remote[0].ID = ike.MustParseIdentity("%any")
			c.Pools = []string{"rw"}
			c.Children[0].RemoteTS = []ike.TSSpec{ike.DynamicTS()}
		},
		cfgB: func(c *ike.Config) { c.Pools = []*ike.Pool{p} },
	})
	tb.establish()
	vip := []netip.Addr{netip.MustParseAddr("10.3.200.1")}
	c, g := tb.established(tb.a), tb.established(tb.b)
	if !slices.Equal(c.LocalVIPs, vip) || !slices.Equal(g.RemoteVIPs, vip) || !slices.Equal(c.DNSServers, p.DNS) {
		t.Fatalf("client VIPs %v DNS %v, gateway %v; want %v and DNS %v", c.LocalVIPs, c.DNSServers, g.RemoteVIPs, vip, p.DNS)
	}
	if len(g.Children) != 1 || g.Children[0].RemoteTS[0].String() != "10.3.200.1/32" {
		t.Errorf("gateway's CHILD_SA %+v, want its remote selector the virtual IP", g.Children)
	}
	if vips := tb.a.dp.VirtualIPs(); !slices.Equal(vips, vip) {
		t.Errorf("client dataplane virtual IPs %+v, want %v", vips, vip)
	}
	// A second client with the pool exhausted: its IKE SA, no CHILD_SA.
	d := baseConn(addrC, addrB, "dave", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
	d.VIPs = []netip.Addr{netip.IPv4Unspecified()}
	d.Children[0].LocalTS = []ike.TSSpec{ike.DynamicTS()}
	dave := tb.newPeer("dave", addrC, d, "this is a shared secret", 0xc3000000, nil)
	if _, err := dave.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if !tb.b.log.contains("no virtual IP found for %any requested by") || !dave.log.contains("INTERNAL_ADDRESS_FAILURE") {
		t.Error("an exhausted pool did not refuse dave with INTERNAL_ADDRESS_FAILURE")
	}
	for _, sa := range dave.sas() {
		if len(sa.Children) != 0 || len(sa.LocalVIPs) != 0 {
			t.Errorf("dave got %+v", sa)
		}
	}
}
