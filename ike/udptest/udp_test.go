package udptest

import (
	"crypto/x509"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// The exchanges of RFC 7296 between two engines, over UDP on loopback in
// a throwaway network namespace. Each test skips without root.

func TestUDPProposals(t *testing.T) {
	v := newNetEnv(t)
	for _, prop := range []string{
		"aes128gcm16-prfsha256-x25519",
		"aes256-sha256-modp2048",
		"chacha20poly1305-prfsha256-x25519",
		"aes256gcm16-prfsha384-ecp384",
	} {
		t.Run(prop, func(t *testing.T) {
			set := func(c *ike.Connection) { c.Proposals = transform.MustParseProposals(transform.ProtoIKE, prop) }
			a, b := v.pair(t, pairOptions{connA: set, connB: set})
			// HDR, SAi1, KEi, Ni -->  <-- HDR, SAr1, KEr, Nr
			// HDR, SK {IDi, AUTH, SAi2, TSi, TSr} -->
			// <-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr}
			a.initiate(t)
			ia, _ := waitSettled(t, a, b)
			want, err := transform.ParseProposals(transform.ProtoIKE, prop)
			if err != nil || ia.Proposal != want[0].String() {
				t.Errorf("negotiated %s, want %v (%v)", ia.Proposal, want, err)
			}
			a.wantLog(t, "IKE_SA gw[1] established between 127.0.0.1[moon.example.org]...127.0.0.2[sun.example.org]",
				"sending packet: from 127.0.0.1[500] to 127.0.0.2[500]")
		})
	}
}

func TestUDPAuth(t *testing.T) {
	v := newNetEnv(t)
	t.Run("psk", func(t *testing.T) {
		a, b := v.pair(t, pairOptions{})
		a.initiate(t)
		waitSettled(t, a, b)
		b.wantLog(t, "authentication of 'moon.example.org' with pre-shared key successful")
	})
	ca := iketest.NewCA(t, "xdpsec Root CA", nil)
	for _, tc := range []struct{ kind, scheme string }{
		{"rsa", "RSA_EMSA_PSS_SHA2_256"},
		{"ecdsa", "ECDSA_WITH_SHA256_DER"},
		{"ed25519", "ED25519"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			keyA, keyB := iketest.NewKey(t, tc.kind), iketest.NewKey(t, tc.kind)
			certA := ca.Issue(t, keyA, "moon.example.org", []string{"moon.example.org"}, nil, []net.IP{addrA.AsSlice()})
			certB := ca.Issue(t, keyB, "sun.example.org", []string{"sun.example.org"}, nil, []net.IP{addrB.AsSlice()})
			trust := func(c *ike.Config) { c.Credentials.CAs = []*x509.Certificate{ca.Cert} }
			a, b := v.pair(t, pairOptions{
				cfgA: trust, cfgB: trust,
				connA: func(c *ike.Connection) {
					c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("moon.example.org"), Certs: []*x509.Certificate{certA}, PrivateKey: keyA}}
					c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org")}}
				},
				connB: func(c *ike.Connection) {
					c.Local = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("sun.example.org"), Certs: []*x509.Certificate{certB}, PrivateKey: keyB}}
					c.Remote = []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: ike.MustParseIdentity("moon.example.org")}}
				},
			})
			// HDR, SK {IDi, CERT, CERTREQ, IDr, AUTH, SAi2, TSi, TSr} -->
			// <-- HDR, SK {IDr, CERT, AUTH, SAr2, TSi, TSr}
			a.initiate(t)
			waitSettled(t, a, b)
			b.wantLog(t, "authentication of 'moon.example.org' with "+tc.scheme+" successful")
			a.wantLog(t, "authentication of 'sun.example.org' with "+tc.scheme+" successful")
		})
	}
}

func TestUDPRekeyAndDelete(t *testing.T) {
	v := newNetEnv(t)
	gate := &Gate{}
	a, b := v.pair(t, pairOptions{wrapA: gate.Sender, wrapB: gate.Sender})
	a.initiate(t)
	ia, _ := waitSettled(t, a, b)
	child := func(n *node) ike.ChildSAInfo { return n.e.IKESAs()[0].Children[0] }
	for _, n := range []*node{a, b} {
		// HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} --> <-- HDR, SK {SA, Nr, TSi, TSr}
		// HDR, SK {D(ESP)} --> <-- HDR, SK {D(ESP)}
		old := child(n)
		if err := n.e.RekeyChildSA(old.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, n.name+"'s CHILD_SA rekey", func() bool { return settled(a, b) && child(n).ID != old.ID })
		checkKeys(t, a, b)
		// HDR, SK {SA, Ni, KEi} --> <-- HDR, SK {SA, Nr, KEr}
		// HDR, SK {D(IKE)} --> <-- HDR, SK {}
		oldIKE := n.e.IKESAs()[0]
		if err := n.e.RekeyIKESA(oldIKE.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, n.name+"'s IKE_SA rekey", func() bool { return settled(a, b) && n.e.IKESAs()[0].ID != oldIKE.ID })
		checkKeys(t, a, b)
		n.wantLog(t, "rekeying IKE_SA gw")
	}
	if sa := a.e.IKESAs()[0]; sa.SPIi == ia.SPIi {
		t.Fatal("IKE SPIs unchanged after rekeying")
	}

	// Both ends rekey the CHILD_SA at once: the gate holds both requests
	// until both are sent (RFC 7296 2.8.1).
	ca, cb := child(a), child(b)
	gate.Arm(message.CREATE_CHILD_SA, 2)
	if err := a.e.RekeyChildSA(ca.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.e.RekeyChildSA(cb.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "simultaneous CHILD_SA rekey", func() bool {
		return settled(a, b) && child(a).ID != ca.ID && child(b).ID != cb.ID
	})
	checkKeys(t, a, b)
	a.wantLog(t, "detected CHILD_SA rekey collision")
	b.wantLog(t, "detected CHILD_SA rekey collision")

	// And the IKE SA (RFC 7296 2.8.2).
	sa, sb := a.e.IKESAs()[0], b.e.IKESAs()[0]
	gate.Arm(message.CREATE_CHILD_SA, 2)
	if err := a.e.RekeyIKESA(sa.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.e.RekeyIKESA(sb.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "simultaneous IKE_SA rekey", func() bool {
		return settled(a, b) && a.e.IKESAs()[0].ID != sa.ID && b.e.IKESAs()[0].ID != sb.ID
	})
	checkKeys(t, a, b)

	// Delete from b: the CHILD_SA, then the IKE SA.
	if err := b.e.DeleteChildSA(child(b).ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CHILD_SA delete", func() bool {
		return len(a.dp.SAs())+len(b.dp.SAs()) == 0 && len(a.e.IKESAs()[0].Children) == 0
	})
	if err := b.e.DeleteIKESA(b.e.IKESAs()[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "IKE_SA delete", func() bool { return a.empty() && b.empty() })
	a.wantLog(t, "received DELETE for ESP CHILD_SA", "received DELETE for IKE_SA")
}

func TestUDPDeadPeer(t *testing.T) {
	v := newNetEnv(t)
	a, b := v.pair(t, pairOptions{
		connA: func(c *ike.Connection) { c.DPDDelay = 200 * time.Millisecond },
		cfgA: func(c *ike.Config) {
			c.RetransmitTimeout, c.RetransmitBase, c.RetransmitTries = 100*time.Millisecond, 1, 2
		},
	})
	a.initiate(t)
	waitSettled(t, a, b)
	// b vanishes: a's liveness check HDR, SK {} --> goes unanswered
	// (ICMP port unreachable at most) and a declares b dead.
	b.socks.Close()
	waitFor(t, "a to declare b dead", a.empty)
	a.wantLog(t, "generating INFORMATIONAL request 2 [ ]", "sending retransmit 2 of request message ID 2", "giving up after 2 retransmits")
}

func TestUDPCookies(t *testing.T) {
	v := newNetEnv(t)
	// b asks for cookies from one half-open IKE SA on. The first IKE_AUTH
	// request is lost, leaving the first IKE SA half-open while a starts a
	// second one.
	lost := make(chan struct{})
	// unique = never on b: both of a's IKE SAs send INITIAL_CONTACT (a has
	// none established when it authenticates either), which would have b
	// keep only the one whose IKE_AUTH came last.
	a, b := v.pair(t, pairOptions{
		connB: func(c *ike.Connection) { c.Unique = ike.UniqueNever },
		cfgB:  func(c *ike.Config) { c.CookieThreshold = 1 },
		cfgA:  func(c *ike.Config) { c.RetransmitTimeout = 500 * time.Millisecond },
		wrapA: func(next ike.Sender) ike.Sender {
			return senderFunc(func(d ike.Datagram) error {
				if isRequest(d.Data, message.IKE_AUTH) {
					select {
					case <-lost:
					default:
						close(lost)
						return nil
					}
				}
				return next.Send(d)
			})
		},
	})
	a.initiate(t)
	<-lost
	waitFor(t, "a half-open IKE_SA on b", func() bool { return len(b.e.IKESAs()) == 1 })
	// HDR(A,0), SAi1, KEi, Ni --> <-- HDR(A,0), N(COOKIE)
	// HDR(A,0), N(COOKIE), SAi1, KEi, Ni --> <-- HDR(A,B), SAr1, KEr, Nr
	a.initiate(t)
	waitFor(t, "both IKE_SAs", func() bool { return len(a.established()) == 2 && len(b.established()) == 2 })
	if s := b.e.Stats(); s.CookiesSent != 1 {
		t.Fatalf("cookies sent: %d", s.CookiesSent)
	}
	a.wantLog(t, "received COOKIE notify, retrying with it", "generating IKE_SA_INIT request 0 [ N(COOKIE) SA KE No")
}

type senderFunc func(d ike.Datagram) error

func (f senderFunc) Send(d ike.Datagram) error { return f(d) }

func TestUDPInvalidKE(t *testing.T) {
	v := newNetEnv(t)
	a, b := v.pair(t, pairOptions{
		connA: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519-ecp256")
		},
		connB: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-ecp256")
		},
	})
	// HDR, SAi1, KEi(x25519), Ni --> <-- HDR, N(INVALID_KE_PAYLOAD: ECP_256)
	// HDR, SAi1, KEi(ecp256), Ni --> <-- HDR, SAr1, KEr, Nr
	a.initiate(t)
	waitSettled(t, a, b)
	b.wantLog(t, "DH group CURVE_25519 unacceptable, requesting ECP_256", "generating IKE_SA_INIT response 0 [ N(INVAL_KE) ]")
	a.wantLog(t, "peer didn't accept DH group CURVE_25519, it requested ECP_256")
}

// retransmitOften: 11 tries in 3.2s (100ms * 1.2^n).
func retransmitOften(c *ike.Config) { c.RetransmitBase, c.RetransmitTries = 1.2, 10 }

// TestUDPLossy runs establishment, rekeys and deletes through a transport
// that loses and duplicates datagrams: retransmissions and the response
// cache carry them through.
func TestUDPLossy(t *testing.T) {
	v := newNetEnv(t)
	var la, lb *Lossy
	a, b := v.pair(t, pairOptions{
		wrapA: func(next ike.Sender) ike.Sender { la = NewLossy(next, 1, 0.2, 0.2); return la },
		wrapB: func(next ike.Sender) ike.Sender { lb = NewLossy(next, 2, 0.2, 0.2); return lb },
		cfgA:  retransmitOften,
		cfgB:  retransmitOften,
	})
	a.initiate(t)
	waitSettled(t, a, b)
	for range 3 {
		old := a.e.IKESAs()[0].Children[0]
		if err := a.e.RekeyChildSA(old.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "CHILD_SA rekey", func() bool { return settled(a, b) && a.e.IKESAs()[0].Children[0].ID != old.ID })
		checkKeys(t, a, b)
	}
	oldIKE := b.e.IKESAs()[0]
	if err := b.e.RekeyIKESA(oldIKE.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "IKE_SA rekey", func() bool { return settled(a, b) && b.e.IKESAs()[0].ID != oldIKE.ID })
	checkKeys(t, a, b)
	// HDR, SK {D(IKE)} --> <-- HDR, SK {}: b forgets the IKE SA once it
	// has answered; if its answer is lost, a's retransmits find nobody
	// and a gives up on its own after the last (RFC 7296 2.4).
	if err := a.e.DeleteIKESA(a.e.IKESAs()[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "IKE_SA delete", func() bool { return a.empty() && b.empty() })
	la.mu.Lock()
	lb.mu.Lock()
	lost, dup := la.Dropped+lb.Dropped, la.Duplicated+lb.Duplicated
	lb.mu.Unlock()
	la.mu.Unlock()
	if lost == 0 || dup == 0 {
		t.Fatalf("the transport lost %d and duplicated %d datagrams: nothing tested", lost, dup)
	}
	if s := a.e.Stats().Retransmits + b.e.Stats().Retransmits; s == 0 {
		t.Fatal("no retransmits despite losses")
	}
	t.Logf("lost %d, duplicated %d, retransmitted %d", lost, dup, a.e.Stats().Retransmits+b.e.Stats().Retransmits)
}

func TestUDPMismatch(t *testing.T) {
	v := newNetEnv(t)
	t.Run("proposal", func(t *testing.T) {
		a, b := v.pair(t, pairOptions{connB: func(c *ike.Connection) {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes256-sha256-modp2048")
		}})
		a.initiate(t)
		// HDR, SAi1, KEi, Ni --> <-- HDR, N(NO_PROPOSAL_CHOSEN)
		a.waitLog(t, "received NO_PROPOSAL_CHOSEN notify error")
		b.wantLog(t, "received proposals: IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519",
			"configured proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
			"no proposal found", "generating IKE_SA_INIT response 0 [ N(NO_PROP) ]")
		waitFor(t, "no SAs", func() bool { return a.empty() && b.empty() })
	})
	t.Run("psk", func(t *testing.T) {
		a, b := v.pair(t, pairOptions{pskA: "secret one", pskB: "secret two"})
		a.initiate(t)
		// HDR, SK {IDi, AUTH, ...} --> <-- HDR, SK {N(AUTHENTICATION_FAILED)}
		a.waitLog(t, "received AUTHENTICATION_FAILED notify error")
		b.wantLog(t, "tried 1 shared key for 'sun.example.org' - 'moon.example.org', but MAC mismatched",
			"generating IKE_AUTH response 1 [ N(AUTH_FAILED) ]")
		waitFor(t, "no SAs", func() bool { return a.empty() && b.empty() })
	})
	t.Run("traffic selectors", func(t *testing.T) {
		a, b := v.pair(t, pairOptions{connB: func(c *ike.Connection) { c.Children[0].RemoteTS = ike.MustParseTSSpecs("10.9.0.0/16") }})
		a.initiate(t)
		// <-- HDR, SK {IDr, AUTH, N(TS_UNACCEPTABLE)}: the IKE SA stands
		a.waitLog(t, "received TS_UNACCEPTABLE notify, no CHILD_SA built")
		b.wantLog(t, "generating IKE_AUTH response 1 [ IDr AUTH N(TS_UNACCEPT) N(MSG_ID_SYN_SUP) N(MOBIKE_SUP) N(NO_ADD_ADDR) ]",
			" config: 10.9.0.0/16, received: 10.1.0.0/16 => no match",
			"traffic selectors 10.2.0.0/16 === 10.1.0.0/16 unacceptable")
		a.wantLog(t, "proposing traffic selectors for us:", " 10.1.0.0/16")
		if len(a.established()) != 1 || len(a.dp.SAs())+len(b.dp.SAs()) != 0 {
			t.Fatal("want the IKE SA without CHILD_SA")
		}
	})
}

// TestUDPCustomPorts runs IKE on ports other than 500/4500.
func TestUDPCustomPorts(t *testing.T) {
	v := newNetEnv(t)
	t.Run("no NAT", func(t *testing.T) {
		a, b := v.pair(t, pairOptions{portsA: ports{10500, 14500}, portsB: ports{10600, 14600}})
		a.initiate(t)
		ia, ib := waitSettled(t, a, b)
		if ia.Local.Port() != 10500 || ia.Remote.Port() != 10600 || ib.Local.Port() != 10600 || ib.Remote.Port() != 10500 {
			t.Fatalf("ports: a %v-%v b %v-%v", ia.Local, ia.Remote, ib.Local, ib.Remote)
		}
		a.wantLog(t, "sending packet: from 127.0.0.1[10500] to 127.0.0.2[10600]")
	})
	t.Run("encapsulation", func(t *testing.T) {
		// a on 500/4500, b's IKE port 10500 with NAT-T on 4500; UDP
		// encapsulation forced: the ends float as charon's do (a's peer
		// port to 4500 because a used 500, b's own to its NAT-T port).
		encap := func(c *ike.Connection) { c.Encap = true }
		a, b := v.pair(t, pairOptions{portsB: ports{10500, 4500}, connA: encap, connB: encap})
		a.initiate(t)
		ia, ib := waitSettled(t, a, b)
		natt := func(addr netip.Addr) netip.AddrPort { return netip.AddrPortFrom(addr, 4500) }
		if ia.Local != natt(addrA) || ia.Remote != natt(addrB) || ib.Local != natt(addrB) || ib.Remote != natt(addrA) {
			t.Fatalf("ports: a %v-%v b %v-%v", ia.Local, ia.Remote, ib.Local, ib.Remote)
		}
		a.wantLog(t, "sending packet: from 127.0.0.1[500] to 127.0.0.2[10500]", "sending packet: from 127.0.0.1[4500] to 127.0.0.2[4500]")
		for _, sa := range a.dp.SAs() {
			if sa.Encap == nil || sa.Encap.SrcPort != 4500 || sa.Encap.DstPort != 4500 {
				t.Fatalf("SA %08x encap %+v", sa.SPI, sa.Encap)
			}
		}
		// Rekeys from both ends over the floated ports.
		if err := b.e.RekeyChildSA(ib.Children[0].ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "CHILD_SA rekey", func() bool { return settled(a, b) && b.e.IKESAs()[0].Children[0].ID != ib.Children[0].ID })
		if err := a.e.RekeyIKESA(ia.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "IKE_SA rekey", func() bool { return settled(a, b) && a.e.IKESAs()[0].ID != ia.ID })
		checkKeys(t, a, b)
	})
}
