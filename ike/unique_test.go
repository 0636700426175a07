package ike_test

import (
	"crypto/x509"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
)

// Uniqueness of IKE SAs: INITIAL_CONTACT (RFC 7296 section 2.4, RFC 2407
// section 4.6.3.3) and swanctl.conf's unique, as charon's
// check_uniqueness applies them. a is moon, b is sun; c is a second moon
// at another address (addrC), for the policies that look at the peer's
// address.

// uniqueVersions are the subtests' IKE versions: the connection change
// each needs on both sides.
var uniqueVersions = map[string]func(c *ike.Connection){
	"ikev2": func(c *ike.Connection) {},
	"ikev1": v1("aes128-sha256-modp2048", "aes128-sha256"),
}

// uniqueBed is a testbed whose b runs unique = policy and answers moon
// from any address.
func uniqueBed(t *testing.T, version func(c *ike.Connection), policy ike.UniquePolicy) *testbed {
	t.Helper()
	return newTestbed(t, bedOptions{connA: version, connB: func(c *ike.Connection) {
		version(c)
		c.Unique = policy
		c.RemoteAddrs = nil
	}})
}

// moonConn is a's connection, as a restarted a or a second moon loads it.
func moonConn(version func(c *ike.Connection), local netip.Addr) *ike.Connection {
	c := baseConn(local, addrB, "moon.example.org", "sun.example.org", "10.1.0.0/16", "10.1.0.0/16")
	c.Children[0].LocalTS, c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.1.0.0/16"), ike.MustParseTSSpecs("10.2.0.0/16")
	version(c)
	return c
}

// restartEmpty kills a (no DELETE leaves it) and starts it again with no
// state, as the daemon after SIGKILL with an empty state file.
func (tb *testbed) restartEmpty(version func(c *ike.Connection)) {
	tb.t.Helper()
	tb.a.e.Close()
	tb.a = tb.restartPeer(tb.a, ike.EngineState{}, moonConn(version, addrA), 0xc3000000)
}

// secondMoon adds c: moon again, at addrC. With unique = never it sends
// no INITIAL_CONTACT, which would have b destroy a's IKE SA whatever its
// policy but never.
func (tb *testbed) secondMoon(version func(c *ike.Connection)) *peer {
	tb.t.Helper()
	conn := moonConn(version, addrC)
	conn.Unique = ike.UniqueNever
	return tb.newPeer("c", addrC, conn, "this is a shared secret", 0xc5000000, nil)
}

// wantPairs checks that p has n established IKE SAs with one installed
// CHILD_SA each and, unless it restarted (its dataplane is new, the
// SAs it took back are not in it), 2n ESP SAs in its dataplane.
func (tb *testbed) wantPairs(p *peer, n int) {
	tb.t.Helper()
	var got int
	for _, sa := range p.sas() {
		if sa.State != ike.IKESAEstablished || len(sa.Children) != 1 {
			tb.t.Fatalf("%s: IKE_SA %+v", p.name, sa)
		}
		got++
	}
	if got != n || (p != tb.a && len(p.dp.SAs()) != 2*n) {
		tb.t.Fatalf("%s: %d IKE_SAs and %d ESP SAs, want %d and %d: %+v", p.name, got, len(p.dp.SAs()), n, 2*n, p.sas())
	}
}

// initialContactSent is what a's log says when its authentication
// carries INITIAL_CONTACT.
func initialContactSent(version string) string {
	if version == "ikev1" {
		return "generating ID_PROT request 0 [ ID HASH N(INITIAL_CONTACT) ]"
	}
	return "N(INIT_CONTACT)"
}

// TestInitialContactAfterRestart: a restarts with no state and
// initiates; its authentication carries INITIAL_CONTACT and b, whatever
// its unique policy but never, destroys the stale IKE SA quietly: one
// IKE SA and one CHILD_SA are left on each side.
func TestInitialContactAfterRestart(t *testing.T) {
	for vname, version := range uniqueVersions {
		for _, policy := range []ike.UniquePolicy{ike.UniqueNo, ike.UniqueKeep, ike.UniqueReplace, ike.UniqueNever} {
			t.Run(vname+"/"+policy.String(), func(t *testing.T) {
				tb := uniqueBed(t, version, policy)
				tb.establish()
				if !tb.a.log.contains(initialContactSent(vname)) {
					t.Errorf("a's first IKE SA sent no INITIAL_CONTACT")
				}
				tb.wantPairs(tb.b, 1)
				policies := len(tb.b.dp.Policies())
				tb.restartEmpty(version)
				tb.establish()
				if !tb.a.log.contains(initialContactSent(vname)) {
					t.Fatalf("a sent no INITIAL_CONTACT after a restart without state")
				}
				tb.advance(15 * time.Second)
				tb.wantPairs(tb.a, 1)
				if policy == ike.UniqueNever {
					tb.wantPairs(tb.b, 2)
					if tb.b.log.contains("destroying duplicate IKE_SA") {
						t.Errorf("unique = never destroyed a duplicate")
					}
					return
				}
				tb.wantPairs(tb.b, 1)
				if n := len(tb.b.dp.Policies()); n != policies || n == 0 {
					t.Errorf("b has %d policies, %d before", n, policies)
				}
				if !tb.b.log.contains("destroying duplicate IKE_SA for peer 'moon.example.org', received INITIAL_CONTACT") {
					t.Errorf("b did not log the INITIAL_CONTACT")
				}
				if tb.a.log.contains("received DELETE") {
					t.Errorf("b sent a DELETE for the stale IKE SA")
				}
				if vname == "ikev2" {
					tb.checkKeys()
				} else {
					tb.wantV1Established()
				}
			})
		}
	}
}

// TestInitialContactNotSentWithContact: a second IKE SA of a, and a
// restart that takes its state back, carry no INITIAL_CONTACT: b
// (unique = no) keeps both IKE SAs.
func TestInitialContactNotSentWithContact(t *testing.T) {
	for vname, version := range uniqueVersions {
		t.Run(vname, func(t *testing.T) {
			tb := uniqueBed(t, version, ike.UniqueNo)
			tb.establish()
			st := tb.a.e.Detach()
			tb.a = tb.restartPeer(tb.a, st, moonConn(version, addrA), 0xc3000000)
			tb.establish()
			if n := tb.a.log.count(initialContactSent(vname)); n != 0 {
				t.Errorf("a sent INITIAL_CONTACT with an IKE SA to the peer")
			}
			tb.advance(15 * time.Second)
			tb.wantPairs(tb.a, 2)
			tb.wantPairs(tb.b, 2)
		})
	}
}

// TestUniqueNeverSendsNoInitialContact: with unique = never, a sends no
// INITIAL_CONTACT (charon's ike_auth and main_mode).
func TestUniqueNeverSendsNoInitialContact(t *testing.T) {
	for vname, version := range uniqueVersions {
		t.Run(vname, func(t *testing.T) {
			tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { version(c); c.Unique = ike.UniqueNever }, connB: version})
			tb.establish()
			if tb.a.log.contains(initialContactSent(vname)) {
				t.Errorf("a sent INITIAL_CONTACT with unique = never")
			}
		})
	}
}

// TestUniqueSecondIKESA: a second IKE SA between the same identities
// (no INITIAL_CONTACT: the initiator has one already), from the same
// address (a again) and from another (c).
func TestUniqueSecondIKESA(t *testing.T) {
	for vname, version := range uniqueVersions {
		t.Run(vname+"/no", func(t *testing.T) {
			tb := uniqueBed(t, version, ike.UniqueNo)
			tb.establish()
			c := tb.secondMoon(version)
			if _, err := c.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.advance(15 * time.Second)
			tb.wantPairs(tb.b, 2)
			tb.wantPairs(tb.a, 1)
			tb.wantPairs(c, 1)
		})
		t.Run(vname+"/never", func(t *testing.T) {
			tb := uniqueBed(t, version, ike.UniqueNever)
			tb.establish()
			c := tb.secondMoon(version)
			if _, err := c.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.advance(15 * time.Second)
			tb.wantPairs(tb.b, 2)
		})
		t.Run(vname+"/replace", func(t *testing.T) {
			tb := uniqueBed(t, version, ike.UniqueReplace)
			tb.establish()
			policies := len(tb.b.dp.Policies())
			c := tb.secondMoon(version)
			if _, err := c.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			if !tb.b.log.contains("deleting duplicate IKE_SA for peer 'moon.example.org' due to uniqueness policy") {
				t.Errorf("b did not log the replacement")
			}
			tb.advance(15 * time.Second)
			tb.wantPairs(tb.b, 1)
			tb.wantPairs(c, 1)
			tb.wantNoSAs(tb.a) // told with a DELETE
			if n := len(tb.b.dp.Policies()); n != policies || n == 0 {
				t.Errorf("b has %d policies, %d before", n, policies)
			}
			if tb.established(tb.b).Remote.Addr() != addrC {
				t.Errorf("b kept the old IKE SA")
			}
		})
		t.Run(vname+"/replace-same-address", func(t *testing.T) {
			// From the address of the existing one, it looks like a
			// reauthentication: the old one goes 10s later, with a
			// DELETE.
			tb := uniqueBed(t, version, ike.UniqueReplace)
			first := tb.establish()
			tb.establish()
			if !tb.b.log.contains("schedule delete of duplicate IKE_SA for peer 'moon.example.org' due to uniqueness policy and suspected reauthentication") {
				t.Fatalf("b did not schedule the delete")
			}
			if n := len(tb.b.sas()); n != 2 {
				t.Fatalf("b has %d IKE SAs before the delay", n)
			}
			tb.advance(11 * time.Second)
			for _, p := range []*peer{tb.a, tb.b} {
				if sas := p.sas(); len(sas) != 1 || sas[0].State != ike.IKESAEstablished || (p == tb.a && sas[0].ID == first) {
					t.Fatalf("%s: %+v", p.name, sas)
				}
			}
			if vname == "ikev2" {
				tb.wantPairs(tb.a, 1)
				tb.wantPairs(tb.b, 1)
				tb.checkKeys()
			} else if !tb.b.log.contains("detected reauth of existing IKE_SA, adopting 1 children") {
				// IKEv1 takes the IPsec SAs over instead (charon's
				// adopt_children_and_vips).
				t.Errorf("b did not adopt the old ISAKMP SA's IPsec SA")
			}
		})
		t.Run(vname+"/keep", func(t *testing.T) {
			tb := uniqueBed(t, version, ike.UniqueKeep)
			tb.establish()
			c := tb.secondMoon(version)
			if _, err := c.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			tb.advance(15 * time.Second)
			if !tb.b.log.contains("due to uniqueness policy") || !tb.b.log.contains("canceling ") {
				t.Errorf("b did not log the refusal")
			}
			tb.wantPairs(tb.b, 1)
			tb.wantPairs(tb.a, 1)
			if tb.established(tb.b).Remote.Addr() != addrA {
				t.Errorf("b did not keep the first IKE SA")
			}
			if sas := c.sas(); len(sas) != 0 || len(c.dp.SAs()) != 0 {
				t.Errorf("c: %+v", sas)
			}
		})
		t.Run(vname+"/keep-same-address", func(t *testing.T) {
			// A possible reauthentication: charon lets it through.
			tb := uniqueBed(t, version, ike.UniqueKeep)
			tb.establish()
			tb.establish()
			tb.advance(15 * time.Second)
			if tb.b.log.contains("canceling") {
				t.Errorf("b refused an IKE SA from the same address")
			}
		})
	}
}

// TestConnectedPeersIndex: the IKE SAs uniqueness looks up are exactly
// the established ones, through rekeys, deletes and duplicates
// destroyed, in both versions.
func TestConnectedPeersIndex(t *testing.T) {
	for vname, version := range uniqueVersions {
		t.Run(vname, func(t *testing.T) {
			tb := uniqueBed(t, version, ike.UniqueNo)
			first := tb.establish()
			tb.establish()
			want := func(a, b int) {
				t.Helper()
				if n := tb.a.e.ConnectedPeers(); n != a {
					t.Fatalf("a: %d IKE SAs indexed, want %d: %+v", n, a, tb.a.sas())
				}
				if n := tb.b.e.ConnectedPeers(); n != b {
					t.Fatalf("b: %d IKE SAs indexed, want %d: %+v", n, b, tb.b.sas())
				}
			}
			want(2, 2)
			if err := tb.a.e.RekeyIKESA(first); err != nil {
				t.Fatal(err)
			}
			tb.advance(15 * time.Second)
			want(2, 2)
			for _, sa := range tb.a.sas() {
				if err := tb.a.e.DeleteIKESA(sa.ID); err != nil {
					t.Fatal(err)
				}
			}
			tb.advance(15 * time.Second)
			want(0, 0)
			tb.establish()
			tb.restartEmpty(version)
			tb.establish()
			tb.advance(15 * time.Second)
			want(1, 1)
		})
	}
}

// TestUniqueEAPIdentity: road warriors that share an IKE identity (often
// their private address) are told apart by the EAP identity they
// authenticated as (charon's get_other_eap_id): each one's
// INITIAL_CONTACT destroys only an older IKE SA of the same user.
func TestUniqueEAPIdentity(t *testing.T) {
	rb := newRABed(t, raOptions{})
	shared := func(name string, addr netip.Addr, user string, spiBase uint32) *peer {
		c := baseConn(addr, addrB, "rw.example.org", "sun.example.org", "10.1.0.0/16", "10.2.0.0/16")
		rb.clientConn(c, "rw.example.org", []eap.Type{eap.TypeMSCHAPv2})
		c.Local[0].EAPID = user
		return rb.newPeer(name, addr, c, "", spiBase, func(cfg *ike.Config) {
			cfg.Credentials = ike.Credentials{CAs: []*x509.Certificate{rb.ca.Cert},
				EAP: []ike.EAPSecret{{IDs: []string{user}, Secret: []byte(user + "'s password")}}}
		})
	}
	carol := shared("carol", addrC, "carol", 0xc3000000)
	dave := shared("dave", netip.MustParseAddr("192.0.2.4"), "dave", 0xc4000000)
	rb.connect(carol)
	rb.connect(dave)
	for _, p := range []*peer{carol, dave} {
		if !p.log.contains("N(INIT_CONTACT)") {
			t.Errorf("%s sent no INITIAL_CONTACT", p.name)
		}
	}
	if n := len(rb.b.sas()); n != 2 || rb.b.log.contains("destroying duplicate") {
		t.Fatalf("b: %d IKE SAs after two users with one IKE identity: %+v", n, rb.b.sas())
	}
	// carol again, from elsewhere, having forgotten her IKE SA.
	carol2 := shared("carol2", netip.MustParseAddr("192.0.2.5"), "carol", 0xc6000000)
	rb.connect(carol2)
	wantLog(t, rb.b, "destroying duplicate IKE_SA for peer 'carol', received INITIAL_CONTACT")
	var users []string
	for _, sa := range rb.b.sas() {
		if sa.State != ike.IKESAEstablished || len(sa.Children) != 1 {
			t.Fatalf("b: %+v", sa)
		}
		users = append(users, sa.EAPIdentity+"@"+sa.Remote.Addr().String())
	}
	slices.Sort(users)
	if want := []string{"carol@192.0.2.5", "dave@192.0.2.4"}; !slices.Equal(users, want) {
		t.Errorf("b's IKE SAs: %v, want %v", users, want)
	}
}
