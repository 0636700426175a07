package ike_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// xauthBed is a road warrior (a, the XAuth client with vips) and a
// gateway (b, the XAuth server with a pool), both our engine, IKEv1 with
// a group PSK and XAuth.
type xauthOptions struct {
	user, password string // the client's
	aggressive     bool
	push           bool
	unity          bool // the gateway's child has a split-include subnet; a client announces Unity? (ours does not)
	gwAuth         ike.AuthMethod
	backend        ike.XAuthBackend
	// rsa: RSA certificates in phase 1 (XAUTH_INIT_RSA), not the PSK.
	rsa bool
	// sinkA, sinkB: each end's StateSink (state_journal_test.go).
	sinkA, sinkB *replaySink
}

func newXAuthBed(t *testing.T, o xauthOptions) *testbed {
	t.Helper()
	if o.gwAuth == 0 {
		o.gwAuth = ike.AuthXAuth
	}
	leases, err := pool.FromRange("rw", netip.MustParseAddr("10.3.0.1"), netip.MustParseAddr("10.3.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	p := &ike.Pool{Leases: leases, DNS: []netip.Addr{netip.MustParseAddr("10.3.0.53")}}
	v1 := v1("aes128-sha256-modp2048", "aes128-sha256")
	var cas []*x509.Certificate
	if o.rsa {
		ca := newCA(t, "xdpsec XAuth CA", nil)
		cas = []*x509.Certificate{ca.Cert}
		keyA, keyB := newKey(t, "rsa"), newKey(t, "rsa")
		certA := ca.Issue(t, keyA, "moon.example.org", []string{"moon.example.org"}, nil, nil)
		certB := ca.Issue(t, keyB, "sun.example.org", []string{"sun.example.org"}, nil, nil)
		psk := v1
		v1 = func(c *ike.Connection) {
			psk(c)
			key, cert := keyA, certA
			if c.Local[0].ID.String() == "sun.example.org" {
				key, cert = keyB, certB
			}
			c.Local[0] = &ike.AuthConfig{Auth: ike.AuthPubkey, ID: c.Local[0].ID, Certs: []*x509.Certificate{cert}, PrivateKey: key}
			c.Remote[0] = &ike.AuthConfig{Auth: ike.AuthPubkey, ID: c.Remote[0].ID}
		}
	}
	return newTestbed(t, bedOptions{
		connA: func(c *ike.Connection) {
			v1(c)
			c.Aggressive = o.aggressive
			c.Push = o.push
			c.Local = append(c.Local, &ike.AuthConfig{Auth: ike.AuthXAuth, XAuthID: o.user})
			c.VIPs = []netip.Addr{netip.IPv4Unspecified()}
			c.Children[0].LocalTS = []ike.TSSpec{ike.DynamicTS()}
		},
		connB: func(c *ike.Connection) {
			v1(c)
			c.Aggressive = o.aggressive
			c.Push = o.push
			c.RemoteAddrs = nil
			c.Remote = append(c.Remote, &ike.AuthConfig{Auth: o.gwAuth})
			c.Pools = []string{"rw"}
			c.Children[0].RemoteTS = []ike.TSSpec{ike.DynamicTS()}
		},
		cfgA: func(c *ike.Config) {
			c.Credentials.CAs = cas
			c.Credentials.EAP = []ike.EAPSecret{{IDs: []string{o.user}, Secret: []byte(o.password)}}
			if o.sinkA != nil {
				journaled(t, o.sinkA)(c)
			}
		},
		cfgB: func(c *ike.Config) {
			c.Credentials.CAs = cas
			c.Credentials.EAP = []ike.EAPSecret{{IDs: []string{"alice"}, Secret: []byte("alice's password")}}
			c.Pools = []*ike.Pool{p}
			c.XAuthBackend = o.backend
			if o.sinkB != nil {
				journaled(t, o.sinkB)(c)
			}
		},
	})
}

// TestV1XAuthModeConfig: PSK + XAuth in Main and Aggressive Mode, Mode
// Config pull and push: the client gets 10.3.0.1 and the DNS server, its
// IPsec SA covers the virtual IP, and both ends list the XAuth user.
func TestV1XAuthModeConfig(t *testing.T) {
	for _, c := range []struct {
		name             string
		aggressive, push bool
	}{{"main-pull", false, false}, {"aggressive-pull", true, false}, {"main-push", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password", aggressive: c.aggressive, push: c.push})
			// Phase 1 ...  <-- CFG_REQUEST(XAUTH_USER_NAME, XAUTH_USER_PASSWORD)
			// CFG_REPLY(alice, password) -->  <-- CFG_SET(XAUTH_STATUS=OK)  CFG_ACK -->
			// pull: CFG_REQUEST(INTERNAL_IP4_ADDRESS) -->  <-- CFG_REPLY(10.3.0.1)
			// push: <-- CFG_SET(10.3.0.1)  CFG_ACK -->
			// Quick Mode: IDci 10.3.0.1/32, IDcr 10.2.0.0/16.
			tb.establish()
			a, b := tb.established(tb.a), tb.established(tb.b)
			if !slices.Equal(a.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.0.1")}) ||
				!slices.Equal(b.RemoteVIPs, []netip.Addr{netip.MustParseAddr("10.3.0.1")}) {
				t.Fatalf("virtual IPs: client %v, gateway %v", a.LocalVIPs, b.RemoteVIPs)
			}
			if b.EAPIdentity != "alice" || a.EAPIdentity != "alice" {
				t.Errorf("XAuth identities: client %q, gateway %q", a.EAPIdentity, b.EAPIdentity)
			}
			if len(a.Children) != 1 || len(b.Children) != 1 || a.Children[0].LocalTS[0].String() != "10.3.0.1/32" ||
				b.Children[0].RemoteTS[0].String() != "10.3.0.1/32" {
				t.Fatalf("children: %+v %+v", a.Children, b.Children)
			}
			if c.push {
				if !tb.a.log.contains("waiting for Mode Config push of the virtual IP") {
					t.Errorf("client did not wait for the push")
				}
			} else if !tb.b.log.contains("peer requested virtual IP %any") {
				t.Errorf("gateway saw no pull")
			}
			if !slices.Equal(a.DNSServers, []netip.Addr{netip.MustParseAddr("10.3.0.53")}) {
				t.Errorf("client's DNS servers %v", a.DNSServers)
			}
			if vips := tb.a.dp.VirtualIPs(); len(vips) != 1 || vips[0].String() != "10.3.0.1" {
				t.Errorf("client's installed virtual IPs %+v", vips)
			}
			for _, want := range []string{"XAuth authentication of 'alice' successful", "assigning virtual IP 10.3.0.1 to peer 'alice'",
				"generating TRANSACTION request", "IKE_SA gw[1] established between"} {
				if !tb.b.log.contains(want) {
					t.Errorf("gateway did not log %q", want)
				}
			}
			if !tb.a.log.contains("XAuth authentication of 'alice' (myself) successful") {
				t.Errorf("client did not log its XAuth success")
			}
			tb.a.e.DeleteIKESA(a.ID)
			tb.net.Flush()
			tb.wantNoSAs(tb.a)
			tb.wantNoSAs(tb.b)
			if vips := tb.a.dp.VirtualIPs(); len(vips) != 0 {
				t.Errorf("client's virtual IPs left: %+v", vips)
			}
		})
	}
}

// TestV1XAuthWrongPassword: the gateway says FAIL, both ends end the
// ISAKMP SA and say why; no address is leased.
func TestV1XAuthWrongPassword(t *testing.T) {
	for _, c := range []struct{ user, password, why string }{
		{"alice", "not alice's password", "XAuth authentication of 'alice' failed: wrong password"},
		{"mallory", "x", "XAuth authentication of 'mallory' failed: no XAuth secret found for 'mallory'"},
	} {
		tb := newXAuthBed(t, xauthOptions{user: c.user, password: c.password})
		tb.establish()
		if !tb.b.log.contains(c.why) || !tb.b.log.contains("destroying IKE_SA gw[1] after failed XAuth authentication") {
			t.Errorf("gateway did not log %q", c.why)
		}
		if !tb.a.log.contains("XAuth authentication of '" + c.user + "' (myself) failed") {
			t.Errorf("client did not log its failure")
		}
		tb.advance(time.Minute)
		tb.wantNoSAs(tb.a)
		tb.wantNoSAs(tb.b)
		if st := tb.b.e.Stats(); st.XAuthFailures != 1 {
			t.Errorf("XAuthFailures %d", st.XAuthFailures)
		}
	}
}

// fakeXAuthBackend accepts one user and password, and assigns it an
// address.
type fakeXAuthBackend struct {
	user, password string
	framed         netip.Addr
}

func (f *fakeXAuthBackend) Authenticate(ctx context.Context, r ike.XAuthRequest) (ike.XAuthResult, error) {
	return ike.XAuthResult{Accept: r.User == f.user && string(r.Password) == f.password, FramedIP: f.framed, Server: "fake"}, nil
}

// TestV1XAuthBackend: xauth-radius asks the backend, which may assign
// the address.
func TestV1XAuthBackend(t *testing.T) {
	b := &fakeXAuthBackend{user: "bob", password: "bob's password", framed: netip.MustParseAddr("10.3.0.2")}
	tb := newXAuthBed(t, xauthOptions{user: "bob", password: "bob's password", gwAuth: ike.AuthXAuthRadius, backend: b})
	tb.establish()
	tb.settle(func() bool { return len(tb.a.sas()) == 1 && len(tb.a.sas()[0].Children) == 1 })
	a := tb.established(tb.a)
	if !slices.Equal(a.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.0.2")}) {
		t.Fatalf("client's virtual IP %v, want the backend's 10.3.0.2", a.LocalVIPs)
	}
	tb2 := newXAuthBed(t, xauthOptions{user: "bob", password: "wrong", gwAuth: ike.AuthXAuthRadius, backend: b})
	tb2.establish()
	tb2.settle(func() bool { return tb2.b.log.contains("XAuth authentication of 'bob' failed: rejected by fake") })
}

// settle delivers datagrams until done, giving an XAuth backend's
// goroutines time to answer; it fails after a few seconds of real time.
func (tb *testbed) settle(done func() bool) {
	tb.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			tb.t.Fatalf("not settled; a: %+v, b: %+v", tb.a.sas(), tb.b.sas())
		}
		tb.net.Flush()
		time.Sleep(time.Millisecond)
	}
	tb.net.Flush()
}

// TestV1XAuthNoRequest: a client whose gateway never starts XAuth (its
// request lost for good) gives up after the half-open timeout.
func TestV1XAuthNoRequest(t *testing.T) {
	tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// Phase 1 completes; the TRANSACTION request (exchange type 6) is
	// lost, and the gateway goes.
	for i := 0; i < 40; i++ {
		q := tb.net.Queued()
		if len(q) == 0 {
			break
		}
		if len(q[0].Data) > 18 && q[0].Data[18] == 6 {
			tb.net.DropAt(0)
			continue
		}
		tb.net.Deliver()
	}
	if !tb.a.log.contains("waiting for XAuth request of sun.example.org") {
		t.Fatal("the client did not complete phase 1")
	}
	tb.b.e.Close()
	tb.advance(2 * time.Minute)
	tb.net.Drop()
	if sas := tb.a.sas(); len(sas) != 0 {
		t.Fatalf("client SAs left: %+v", sas)
	}
	if !tb.a.log.contains("no XAuth round completed") {
		t.Errorf("client did not say why it gave up")
	}
}

// TestV1XAuthDetachImport: a restart keeps what XAuth and Mode Config
// gave each side: the gateway's lease of 10.3.0.1 to alice (taken back
// in its fresh pool, which gives the next user another address) and the
// client's virtual IP, installed again before its policies.
func TestV1XAuthDetachImport(t *testing.T) {
	for _, restarted := range []string{"client", "gateway"} {
		t.Run(restarted, func(t *testing.T) {
			tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
			tb.establish()
			old := tb.a
			if restarted == "gateway" {
				old = tb.b
			}
			st := old.e.Detach()
			b, err := json.Marshal(&st)
			if err != nil {
				t.Fatal(err)
			}
			st.Zero()
			var loaded ike.EngineState
			if err := json.Unmarshal(b, &loaded); err != nil {
				t.Fatal(err)
			}
			// A new engine with the same configuration, a fresh pool and
			// dataplane.
			nb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
			nu := nb.a
			if restarted == "gateway" {
				nu = nb.b
			}
			if errs := nu.e.Import(loaded); len(errs) != 0 {
				t.Fatalf("import: %v", errs)
			}
			sa := nb.established(nu)
			if sa.EAPIdentity != "alice" || len(sa.Children) != 1 {
				t.Fatalf("taken back: %+v", sa)
			}
			want := []netip.Addr{netip.MustParseAddr("10.3.0.1")}
			if restarted == "client" {
				if !slices.Equal(sa.LocalVIPs, want) || !slices.Equal(nu.dp.VirtualIPs(), want) {
					t.Errorf("client's virtual IP %v, installed %v", sa.LocalVIPs, nu.dp.VirtualIPs())
				}
				return
			}
			if !slices.Equal(sa.RemoteVIPs, want) {
				t.Fatalf("gateway's lease %v", sa.RemoteVIPs)
			}
			for _, p := range nu.e.Pools() {
				if a, _, err := p.Leases.Acquire("mallory", netip.Addr{}); err != nil || a.String() != "10.3.0.2" {
					t.Errorf("the next user gets %v %v, want 10.3.0.2", a, err)
				}
			}
		})
	}
}

// TestV1ModeCfgAgain: a client pulling again keeps its address (no second
// lease), and an XAuth request to an established client changes nothing.
func TestV1ModeCfgAgain(t *testing.T) {
	tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
	tb.establish()
	a, b := tb.established(tb.a), tb.established(tb.b)
	for _, c := range []struct {
		to   *peer
		sa   uint32
		body []byte
	}{
		{tb.b, b.ID, attrBody(isakmp.CfgRequest, isakmp.ModeCfgAttribute(isakmp.InternalIP4Address, nil))},
		{tb.a, a.ID, attrBody(isakmp.CfgSet, isakmp.BasicAttr(isakmp.XAuthStatus, 0))},
	} {
		d, err := c.to.e.V1TransactionAsPeer(c.sa, 0x4242, c.body)
		if err != nil {
			t.Fatal(err)
		}
		local, remote := addrA, addrB
		if c.to == tb.b {
			local, remote = addrB, addrA
		}
		c.to.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(local, 500), Remote: netip.AddrPortFrom(remote, 500), Data: d})
		tb.net.Flush()
	}
	b = tb.established(tb.b)
	if !slices.Equal(b.RemoteVIPs, []netip.Addr{netip.MustParseAddr("10.3.0.1")}) {
		t.Errorf("gateway's leases after a second pull: %v", b.RemoteVIPs)
	}
	if !tb.a.log.contains("ignoring XAuth CFG_SET of the established IKE_SA") {
		t.Errorf("client took a late XAuth status")
	}
	tb.established(tb.a)
}

// TestV1XAuthReauth: the client's reauthentication runs XAuth again and
// asks for the address it has, which the gateway gives it (the same
// user's lease); the virtual IP stays installed throughout.
func TestV1XAuthReauth(t *testing.T) {
	tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
	id := tb.establish()
	if err := tb.a.e.RekeyIKESA(id); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	tb.settleRekeys()
	a, b := tb.established(tb.a), tb.established(tb.b)
	if a.ID == id {
		t.Fatalf("not reauthenticated")
	}
	want := []netip.Addr{netip.MustParseAddr("10.3.0.1")}
	if !slices.Equal(a.LocalVIPs, want) || !slices.Equal(b.RemoteVIPs, want) || len(a.Children) != 1 {
		t.Fatalf("after the reauthentication: client %v, gateway %v, children %d", a.LocalVIPs, b.RemoteVIPs, len(a.Children))
	}
	if !tb.b.log.contains("peer requested virtual IP 10.3.0.1") {
		t.Errorf("the client did not ask for its address again")
	}
	if !slices.Equal(tb.a.dp.VirtualIPs(), want) || tb.a.log.contains("removing virtual IP") {
		t.Errorf("the virtual IP left the dataplane: %v", tb.a.dp.VirtualIPs())
	}
}

// TestV1ModeCfgBeforeXAuthDone: the client's Mode Config request reaches
// the gateway before the ACK that ends XAuth: it is ignored then, and its
// retransmit answered once the gateway is established.
func TestV1ModeCfgBeforeXAuthDone(t *testing.T) {
	tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password"})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// Deliver until the client sent its ACK and its Mode Config request,
	// then swap them.
	for i := 0; i < 40 && !tb.a.log.contains("XAuth authentication of 'alice' (myself) successful"); i++ {
		tb.net.Deliver()
	}
	if q := tb.net.Queued(); len(q) != 2 {
		t.Fatalf("%d datagrams queued, want the ACK and the Mode Config request", len(q))
	}
	tb.net.Reverse()
	tb.net.Flush()
	if !tb.b.log.contains("ignoring Mode Config CFG_REQUEST before IKE_SA gw[1] is established") {
		t.Fatalf("the request did not overtake the ACK")
	}
	tb.advance(5 * time.Second) // the client retransmits
	tb.net.Flush()
	a := tb.established(tb.a)
	if !slices.Equal(a.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.0.1")}) || len(a.Children) != 1 {
		t.Fatalf("client after the retransmit: %+v", a)
	}
}

// TestV1XAuthRSA: RSA certificates in phase 1 (XAUTH_INIT_RSA), then
// XAuth and Mode Config, our engine in both roles.
func TestV1XAuthRSA(t *testing.T) {
	tb := newXAuthBed(t, xauthOptions{user: "alice", password: "alice's password", rsa: true})
	tb.establish()
	a, b := tb.established(tb.a), tb.established(tb.b)
	if !strings.Contains(a.Proposal, "XAUTH_INIT_RSA") || b.EAPIdentity != "alice" ||
		!slices.Equal(a.LocalVIPs, []netip.Addr{netip.MustParseAddr("10.3.0.1")}) || len(a.Children) != 1 {
		t.Fatalf("client %+v, gateway %+v", a, b)
	}
	if !tb.b.log.contains("authentication of 'moon.example.org' with RSA_SIG successful") {
		t.Errorf("the gateway did not check the client's signature")
	}
}
