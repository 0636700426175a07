package ike_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

// Redirect tests (RFC 5685): a is the client, b the gateway it is
// configured for, c (and d) further gateways of the same cluster that
// share b's identity and PSK.
var addrD = netip.MustParseAddr("192.0.2.4")

// gateway attaches another gateway like b at addr.
func (tb *testbed) gateway(name string, addr netip.Addr, spiBase uint32, connMod func(*ike.Connection), cfgMod func(*ike.Config)) *peer {
	tb.t.Helper()
	c := baseConn(addr, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	if connMod != nil {
		connMod(c)
	}
	p := tb.newPeer(name, addr, c, "this is a shared secret", spiBase, cfgMod)
	tb.t.Cleanup(func() {
		if tb.t.Failed() {
			for _, l := range p.log.all() {
				tb.t.Logf("%s: %s", p.name, l)
			}
		}
	})
	return p
}

func redirectTo(choose ike.RedirectChoice, addrs ...netip.Addr) func(*ike.Connection) {
	return func(c *ike.Connection) {
		r := &ike.RedirectRule{Choose: choose}
		for i, a := range addrs {
			r.Gateways = append(r.Gateways, ike.RedirectGateway{Name: fmt.Sprintf("gw%d", i+1), Address: a.String()})
		}
		c.Redirect = r
	}
}

func no() *bool { b := false; return &b }

func (p *peer) establishedRemotes() []netip.Addr {
	var out []netip.Addr
	for _, sa := range p.sas() {
		if sa.State == ike.IKESAEstablished {
			out = append(out, sa.Remote.Addr())
		}
	}
	return out
}

// TestRedirectInit: b redirects a in IKE_SA_INIT to c, echoing a's nonce;
// a's same IKE SA (same unique ID, as `xdpsec initiate` waits for it)
// starts again towards c with REDIRECTED_FROM and is established there
// with its CHILD_SA; b keeps nothing.
func TestRedirectInit(t *testing.T) {
	tb := newTestbed(t, bedOptions{connB: redirectTo(ike.RedirectByHash, addrC)})
	c := tb.gateway("c", addrC, 0xc3000000, nil, nil)
	id := tb.establish()
	sa := tb.established(tb.a)
	if sa.ID != id || sa.Remote.Addr() != addrC || len(sa.Children) != 1 {
		t.Fatalf("a: %+v, want IKE_SA %d with %s and one CHILD_SA", sa, id, addrC)
	}
	if got := tb.established(c); got.Remote.Addr() != addrA {
		t.Fatalf("c: %+v", got)
	}
	tb.wantNoSAs(tb.b)
	for _, w := range []struct {
		p    *peer
		line string
	}{
		{tb.b, "redirecting peer to 192.0.2.3"},
		{tb.a, "redirected to 192.0.2.3"},
		{tb.a, "initiating IKE_SA gw[1] to 192.0.2.3"},
		{c, "client got redirected from 192.0.2.2"},
		{c, "parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) N(HASH_ALG) N(REDIR_FROM) ]"},
		{tb.b, "parsed IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) N(HASH_ALG) N(REDIR_SUP) ]"},
		{tb.b, "generating IKE_SA_INIT response 0 [ N(REDIR) ]"},
	} {
		if !w.p.log.contains(w.line) {
			t.Errorf("%s did not log %q", w.p.name, w.line)
		}
	}
	if n := tb.b.e.Stats().RedirectsSent; n != 1 {
		t.Errorf("b RedirectsSent = %d", n)
	}
}

// TestRedirectNotSupported: a client that does not follow redirects
// (follow_redirects = no) announces no REDIRECT_SUPPORTED, and b serves
// it itself.
func TestRedirectNotSupported(t *testing.T) {
	tb := newTestbed(t, bedOptions{connB: redirectTo(ike.RedirectByHash, addrC),
		cfgA: func(c *ike.Config) { c.FollowRedirects = no() }})
	tb.gateway("c", addrC, 0xc3000000, nil, nil)
	tb.establish()
	if sa := tb.established(tb.a); sa.Remote.Addr() != addrB {
		t.Fatalf("a established with %s, want b", sa.Remote.Addr())
	}
	tb.established(tb.b)
	if tb.b.log.contains("redirecting peer") || tb.b.e.Stats().RedirectsSent != 0 {
		t.Fatal("b redirected a client without REDIRECT_SUPPORTED")
	}
	if _, err := tb.b.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// On command either: the client never said it supports redirects.
	id := tb.established(tb.b).ID
	if err := tb.b.e.RedirectIKESA(id, "192.0.2.3"); !errors.Is(err, ike.ErrRedirect) || !strings.Contains(err.Error(), "client does not support IKE redirection") {
		t.Fatalf("RedirectIKESA: %v", err)
	}
}

// TestRedirectWrongNonce: a REDIRECT whose nonce is not our Ni (RFC 5685
// section 4) is dropped, counted, and changes nothing; the retransmitted
// request gets a proper one, which a follows.
func TestRedirectWrongNonce(t *testing.T) {
	tb := newTestbed(t, bedOptions{connB: redirectTo(ike.RedirectByHash, addrC)})
	c := tb.gateway("c", addrC, 0xc3000000, nil, nil)
	forged := 0
	tb.net.Filter = func(d ike.Datagram) []ike.Datagram {
		if d.Local.Addr() == addrB && forged == 0 {
			forged++
			m, err := message.Unmarshal(d.Data)
			if err != nil {
				t.Fatal(err)
			}
			n := m.Payloads[0].(*message.Notify)
			r, _ := message.UnmarshalRedirect(n.Data)
			r.Gateway = message.Gateway{Addr: addrD} // and its nonce...
			r.Nonce = bytes.Repeat([]byte{7}, len(r.Nonce))
			n.Data, _ = r.Marshal()
			d.Data, _ = m.Marshal()
		}
		return []ike.Datagram{d}
	}
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if n := tb.a.e.Stats().InvalidRedirects; n != 1 {
		t.Fatalf("a InvalidRedirects = %d", n)
	}
	if !tb.a.log.contains("received invalid REDIRECT notify") || tb.a.log.contains("redirected to") {
		t.Fatal("a did not ignore the forged REDIRECT")
	}
	sas := tb.a.sas()
	if len(sas) != 1 || sas[0].State != ike.IKESAConnecting || sas[0].Remote.Addr() != addrB {
		t.Fatalf("a: %+v", sas)
	}
	tb.advance(5 * time.Second) // the retransmit
	if got := tb.established(tb.a).Remote.Addr(); got != addrC {
		t.Fatalf("a established with %s", got)
	}
	tb.established(c)
	if tb.a.log.contains("192.0.2.4") {
		t.Fatal("a went to the forged gateway")
	}
}

// TestRedirectLoop: b and c redirect to each other; a follows five
// redirects within 300 s, refuses the sixth as charon does, and gives up.
func TestRedirectLoop(t *testing.T) {
	tb := newTestbed(t, bedOptions{connB: redirectTo(ike.RedirectByHash, addrC)})
	tb.gateway("c", addrC, 0xc3000000, redirectTo(ike.RedirectByHash, addrB), nil)
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if n := tb.a.log.count("INFO redirected to"); n != 6 {
		t.Errorf("a saw %d redirects, want 6 (5 followed)", n)
	}
	if n := tb.a.log.count("initiating IKE_SA gw[1] to"); n != 6 {
		t.Errorf("a initiated %d times, want 6", n)
	}
	if !tb.a.log.contains("only 5 redirects are allowed within 300 seconds") {
		t.Error("a did not log the limit")
	}
	tb.wantNoSAs(tb.a)
	// Five minutes later the limit is lifted.
	tb.advance(301 * time.Second)
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if n := tb.a.log.count("INFO redirected to"); n != 12 {
		t.Errorf("a saw %d redirects in all, want 12", n)
	}
}

// TestRedirectEstablished: b redirects a's established IKE SA to c on
// command (INFORMATIONAL with REDIRECT, no nonce); a establishes a new
// IKE SA with c with its CHILD_SA and deletes the one with b.
func TestRedirectEstablished(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	c := tb.gateway("c", addrC, 0xc3000000, nil, nil)
	tb.establish()
	id := tb.established(tb.b).ID
	if err := tb.b.e.RedirectIKESA(id, "192.0.2.2"); !errors.Is(err, ike.ErrRedirect) {
		t.Fatalf("redirect to ourselves: %v", err)
	}
	if err := tb.a.e.RedirectIKESA(tb.established(tb.a).ID, "192.0.2.3"); !errors.Is(err, ike.ErrRedirect) || !strings.Contains(err.Error(), "as initiator") {
		t.Fatalf("redirect as initiator: %v", err)
	}
	if err := tb.b.e.RedirectIKESA(id, "not a name!"); !errors.Is(err, ike.ErrRedirect) {
		t.Fatalf("bad gateway: %v", err)
	}
	if err := tb.b.e.RedirectIKESA(id, "192.0.2.3"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if got := tb.established(tb.a); got.Remote.Addr() != addrC || len(got.Children) != 1 {
		t.Fatalf("a: %+v", got)
	}
	if len(tb.a.sas()) != 1 {
		t.Fatalf("a kept its old IKE SA: %+v", tb.a.sas())
	}
	tb.established(c)
	tb.wantNoSAs(tb.b)
	for _, w := range []struct {
		p    *peer
		line string
	}{
		{tb.b, "redirecting peer to 192.0.2.3"},
		{tb.b, "generating INFORMATIONAL request 0 [ N(REDIR) ]"},
		{tb.a, "redirected to 192.0.2.3"},
		{c, "client got redirected from 192.0.2.2"},
	} {
		if !w.p.log.contains(w.line) {
			t.Errorf("%s did not log %q", w.p.name, w.line)
		}
	}
}

// TestRedirectEstablishedTimeout: a client that cannot follow (the gateway
// is a name it cannot resolve) keeps its IKE SA; b deletes it after
// half_open_timeout.
func TestRedirectEstablishedTimeout(t *testing.T) {
	tb := newTestbed(t, bedOptions{cfgA: func(c *ike.Config) {
		c.ResolveGateway = func(name string, done func(netip.Addr, error)) { done(netip.Addr{}, errors.New("NXDOMAIN")) }
	}})
	tb.establish()
	id := tb.established(tb.b).ID
	if err := tb.b.e.RedirectIKESA(id, "gw3.example.net"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if !tb.a.log.contains("unable to resolve gateway ID 'gw3.example.net', redirect failed") {
		t.Fatal("a did not log the failed lookup")
	}
	tb.established(tb.b)
	tb.advance(29 * time.Second)
	tb.established(tb.b)
	tb.advance(2 * time.Second)
	tb.wantNoSAs(tb.b)
	tb.wantNoSAs(tb.a)
}

// TestRedirectFQDN: a REDIRECT naming a gateway by domain name is
// resolved through Config.ResolveGateway, answered later from another
// goroutine as the daemon does.
func TestRedirectFQDN(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connB: func(c *ike.Connection) {
			c.Redirect = &ike.RedirectRule{Gateways: []ike.RedirectGateway{{Name: "c", Address: "gw3.example.net"}}, Choose: ike.RedirectByHash}
		},
		cfgA: func(c *ike.Config) {
			c.ResolveGateway = func(name string, done func(netip.Addr, error)) {
				if name != "gw3.example.net" {
					t.Errorf("resolving %q", name)
				}
				go done(addrC, nil)
			}
		},
	})
	tb.gateway("c", addrC, 0xc3000000, nil, nil)
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tb.net.Flush()
		if got := tb.a.establishedRemotes(); len(got) == 1 && got[0] == addrC {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a: %+v", tb.a.sas())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRedirectChoice: which gateway a load or hash rule picks. The loads
// come from Config.GatewayLoad; gateways without a figure are skipped; a
// rule whose choice is ourselves serves the client here.
func TestRedirectChoice(t *testing.T) {
	gws := []netip.Addr{addrC, addrD, netip.MustParseAddr("192.0.2.5")}
	// chosen runs one IKE_SA_INIT against b and returns where b sent a
	// (or b itself).
	chosen := func(t *testing.T, choose ike.RedirectChoice, list []netip.Addr, loads map[netip.Addr]int) netip.Addr {
		tb := newTestbed(t, bedOptions{connB: redirectTo(choose, list...), cfgB: func(c *ike.Config) {
			c.GatewayLoad = func(conn string, gw ike.RedirectGateway) (int, bool) {
				if conn != "gw" {
					t.Errorf("load asked for connection %q", conn)
				}
				n, ok := loads[netip.MustParseAddr(gw.Address)]
				return n, ok
			}
		}})
		if _, err := tb.a.e.Initiate("gw"); err != nil {
			t.Fatal(err)
		}
		tb.net.Flush()
		for _, l := range tb.b.log.all() {
			if _, to, ok := strings.Cut(l, "redirecting peer to "); ok {
				return netip.MustParseAddr(strings.Fields(to)[0])
			}
		}
		if got := tb.established(tb.b).Remote.Addr(); got != addrA {
			t.Fatalf("b: %v", got)
		}
		return addrB
	}
	t.Run("least loaded", func(t *testing.T) {
		if got := chosen(t, ike.RedirectByLoad, gws, map[netip.Addr]int{addrC: 7, addrD: 3, gws[2]: 5}); got != addrD {
			t.Fatalf("chose %s, want %s", got, addrD)
		}
	})
	t.Run("unreachable skipped", func(t *testing.T) {
		if got := chosen(t, ike.RedirectByLoad, gws, map[netip.Addr]int{addrC: 7, gws[2]: 5}); got != gws[2] {
			t.Fatalf("chose %s, want %s", got, gws[2])
		}
	})
	hashed := chosen(t, ike.RedirectByHash, gws, nil)
	t.Run("none answers: hash", func(t *testing.T) {
		if got := chosen(t, ike.RedirectByLoad, gws, nil); got != hashed {
			t.Fatalf("chose %s, the hash %s", got, hashed)
		}
	})
	t.Run("hash is stable", func(t *testing.T) {
		for range 3 {
			if got := chosen(t, ike.RedirectByHash, gws, nil); got != hashed {
				t.Fatalf("chose %s, then %s", hashed, got)
			}
		}
	})
	t.Run("hash spreads clients", func(t *testing.T) {
		seen := map[netip.Addr]bool{}
		for i := 1; i <= 40; i++ {
			client := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
			tb := newTestbed(t, bedOptions{aAddr: client, connB: redirectTo(ike.RedirectByHash, gws...), quiet: true})
			if _, err := tb.a.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			for _, sa := range tb.a.sas() {
				seen[sa.Remote.Addr()] = true
			}
		}
		if len(seen) != len(gws) {
			t.Fatalf("40 clients went to %v", seen)
		}
	})
	t.Run("ourselves least loaded", func(t *testing.T) {
		// b's own load is its established IKE SAs: none.
		if got := chosen(t, ike.RedirectByLoad, []netip.Addr{addrC, addrB}, map[netip.Addr]int{addrC: 2}); got != addrB {
			t.Fatalf("chose %s, want b itself", got)
		}
	})
	t.Run("never ourselves", func(t *testing.T) {
		if got := chosen(t, ike.RedirectByLoad, []netip.Addr{addrB}, nil); got != addrB {
			t.Fatalf("b redirected to %s", got)
		}
	})
}

// TestRedirectFleet: a rule with Fleet takes its candidates from
// Config.RedirectGateways at each choice (the other members of a fleet),
// their loads from GatewayLoad; an empty fleet serves the client here,
// and a bad address from the fleet is skipped.
func TestRedirectFleet(t *testing.T) {
	var members []ike.RedirectGateway
	loads := map[string]int{}
	chosen := func(t *testing.T) netip.Addr {
		tb := newTestbed(t, bedOptions{connB: func(c *ike.Connection) {
			c.Redirect = &ike.RedirectRule{Choose: ike.RedirectByLoad, Fleet: true}
		}, cfgB: func(c *ike.Config) {
			c.RedirectGateways = func(conn string) []ike.RedirectGateway {
				if conn != "gw" {
					t.Errorf("gateways asked for connection %q", conn)
				}
				return members
			}
			c.GatewayLoad = func(conn string, gw ike.RedirectGateway) (int, bool) {
				n, ok := loads[gw.Name]
				return n, ok
			}
		}})
		if _, err := tb.a.e.Initiate("gw"); err != nil {
			t.Fatal(err)
		}
		tb.net.Flush()
		for _, l := range tb.b.log.all() {
			if _, to, ok := strings.Cut(l, "redirecting peer to "); ok {
				return netip.MustParseAddr(strings.Fields(to)[0])
			}
		}
		return addrB
	}
	if got := chosen(t); got != addrB {
		t.Fatalf("no member: redirected to %s", got)
	}
	members = []ike.RedirectGateway{{Name: "gw3", Address: addrC.String()}, {Name: "gw4", Address: addrD.String()}, {Name: "bad", Address: "not a host"}}
	loads = map[string]int{"gw3": 4, "gw4": 1, "bad": 0}
	if got := chosen(t); got != addrD {
		t.Fatalf("chose %s, want the least loaded member %s", got, addrD)
	}
	loads["gw3"] = 0
	if got := chosen(t); got != addrC {
		t.Fatalf("chose %s, want %s (its load fell)", got, addrC)
	}
}

// TestRedirectConfig: a rule without gateways, with a bad gateway or on
// IKEv1 is refused by AddConnection.
func TestRedirectConfig(t *testing.T) {
	e := newTestbed(t, bedOptions{}).b.e
	for _, tc := range []struct {
		mod  func(*ike.Connection)
		want string
	}{
		{func(c *ike.Connection) { c.Redirect = &ike.RedirectRule{} }, "redirect: gateways: none configured"},
		{func(c *ike.Connection) {
			c.Redirect = &ike.RedirectRule{Gateways: []ike.RedirectGateway{{Name: "x", Address: "bad name"}}}
		}, "redirect: gateways: x:"},
		{func(c *ike.Connection) {
			c.Version = 1
			redirectTo(ike.RedirectByHash, addrC)(c)
		}, "redirection needs IKEv2"},
		{func(c *ike.Connection) {
			redirectTo(ike.RedirectByHash, addrC)(c)
			c.Redirect.Choose = 9
		}, "choose: 9 is not load or hash"},
	} {
		c := baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
		c.Name = "bad"
		tc.mod(c)
		if err := e.AddConnection(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

// TestRedirectAuth: a rule with during = ike_auth lets b authenticate a
// and answer IKE_AUTH with IDr, AUTH and REDIRECT, no CHILD_SA (RFC 5685
// section 5); a verifies b, establishes with c with the CHILD_SA it asked
// for, and deletes the IKE SA with b.
func TestRedirectAuth(t *testing.T) {
	tb := newTestbed(t, bedOptions{connB: func(c *ike.Connection) {
		redirectTo(ike.RedirectByHash, addrC)(c)
		c.Redirect.During = ike.RedirectInAuth
	}})
	c := tb.gateway("c", addrC, 0xc3000000, nil, nil)
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	got := tb.established(tb.a)
	if got.Remote.Addr() != addrC || len(got.Children) != 1 || len(tb.a.sas()) != 1 {
		t.Fatalf("a: %+v", tb.a.sas())
	}
	tb.established(c)
	tb.wantNoSAs(tb.b)
	for _, w := range []struct {
		p    *peer
		line string
	}{
		{tb.b, "generating IKE_AUTH response 1 [ IDr AUTH N(REDIR) N(MSG_ID_SYN_SUP) ]"},
		{tb.b, "redirecting peer to 192.0.2.3"},
		{tb.a, "redirected to 192.0.2.3"},
		{c, "client got redirected from 192.0.2.2"},
	} {
		if !w.p.log.contains(w.line) {
			t.Errorf("%s did not log %q", w.p.name, w.line)
		}
	}
	if n := tb.b.e.Stats().RedirectsSent; n != 1 {
		t.Errorf("RedirectsSent %d", n)
	}
}

// TestRedirectAuthKept: a client that authenticates but does not follow
// the IKE_AUTH redirect (its resolver fails) keeps an IKE SA without
// CHILD_SA; b deletes it after half_open_timeout.
func TestRedirectAuthKept(t *testing.T) {
	tb := newTestbed(t, bedOptions{
		connB: func(c *ike.Connection) {
			c.Redirect = &ike.RedirectRule{Gateways: []ike.RedirectGateway{{Name: "c", Address: "gw3.example.net"}},
				Choose: ike.RedirectByHash, During: ike.RedirectInAuth}
		},
		cfgA: func(c *ike.Config) {
			c.ResolveGateway = func(string, func(netip.Addr, error)) {} // never answers
		},
	})
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if sa := tb.established(tb.b); len(sa.Children) != 0 {
		t.Fatalf("b: %+v", sa)
	}
	tb.advance(31 * time.Second)
	tb.wantNoSAs(tb.b)
	tb.wantNoSAs(tb.a)
	if !tb.b.log.contains("still there after its redirect, deleting it") {
		t.Error("b did not say why it deleted")
	}
}

// TestRedirectAfterRekeyAndRestart: what the client announced in
// IKE_SA_INIT outlives an IKE SA rekey and a restart of the gateway (its
// state taken back): the redirect on command still works.
func TestRedirectAfterRekeyAndRestart(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	c := tb.gateway("c", addrC, 0xc3000000, nil, nil)
	tb.establish()
	if err := tb.b.e.RekeyIKESA(tb.established(tb.b).ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	st := tb.b.e.Export()
	tb.b.e.Close()
	connB := baseConn(addrB, addrA, "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.1.0.0/16")
	tb.b = tb.restartPeer(tb.b, st, connB, 0xc4000000)
	if err := tb.b.e.RedirectIKESA(tb.established(tb.b).ID, addrC.String()); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	if got := tb.established(tb.a).Remote.Addr(); got != addrC {
		t.Fatalf("a with %s", got)
	}
	tb.established(c)
}

// TestRedirectAuthBeforeAuthentication: an IKE_AUTH response that carries
// REDIRECT but no IDr and AUTH (protected with the IKE_SA_INIT keys, so
// from whoever did the key exchange with us) is followed as charon's
// redirect_connecting does: that IKE SA goes and a new one starts its
// IKE_SA_INIT with the new gateway, with the CHILD_SA asked for.
func TestRedirectAuthBeforeAuthentication(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	c := tb.gateway("c", addrC, 0xc3000000, nil, nil)
	if _, err := tb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	tb.net.Deliver() // IKE_SA_INIT request
	tb.net.Deliver() // its response; a sends IKE_AUTH
	if q := tb.net.Queued(); len(q) != 1 {
		t.Fatalf("%d datagrams queued, want a's IKE_AUTH request", len(q))
	}
	tb.net.Drop()
	sa := tb.a.sas()[0]
	data, _ := message.Redirect{Gateway: message.Gateway{Addr: addrC}}.Marshal()
	n := append([]byte{0, 0, 0, 0, 0, 0, 0x40, 0x17}, data...)
	n[3] = byte(len(n))
	b, err := tb.a.e.SealAsPeer(sa.ID, message.Header{ExchangeType: message.IKE_AUTH, MessageID: 1, Flags: message.FlagResponse},
		message.PayloadN, n)
	if err != nil {
		t.Fatal(err)
	}
	tb.a.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrA, 500), Remote: netip.AddrPortFrom(addrB, 500), Data: b})
	tb.net.Flush()
	got := tb.established(tb.a)
	if got.Remote.Addr() != addrC || len(got.Children) != 1 || got.ID == sa.ID || len(tb.a.sas()) != 1 {
		t.Fatalf("a: %+v", tb.a.sas())
	}
	tb.established(c)
	if !tb.a.log.contains("parsed IKE_AUTH response 1 [ N(REDIR) ]") || !tb.a.log.contains("redirected to 192.0.2.3") {
		t.Error("a did not log the redirect")
	}
	if !c.log.contains("client got redirected from 192.0.2.2") {
		t.Error("c saw no REDIRECTED_FROM")
	}
}
