package interop

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/iketest"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// IKEv1 (version = 1 on both sides) against charon: Main Mode with PSK
// and RSA certificates, Aggressive Mode with PSK, Quick Mode with and
// without PFS, the IKE proposals, 3DES refused, NAT-T and DPD.

// v1Peers is the PSK tunnel of pskPeers as an IKEv1 connection on both
// sides, with more connection lines for both.
func v1Peers(ike, esp, extra string) (charonSide, oursSide peer) {
	charonSide, oursSide = pskPeers(ike, esp)
	charonSide.connExtra = "    version = 1\n" + extra
	oursSide.connExtra = charonSide.connExtra
	return charonSide, oursSide
}

// v1Check checks the IKE SA both sides agree on is an IKEv1 one between
// the expected identities, and that charon logged the establishment.
func (e *env) v1Check(role string) {
	e.t.Helper()
	sa := e.charonSA()
	if sa.get("version") != "1" || sa.get("remote-id") != "sun.example.org" || sa.get("local-id") != "moon.example.org" {
		e.t.Errorf("charon's IKE SA: %+v", sa.values)
	}
	o := e.oursSA()
	if o.Version != 1 || o.LocalID != "sun.example.org" || o.RemoteID != "moon.example.org" || o.Initiator != (role == oursInitiate) {
		e.t.Errorf("our IKE SA: %+v", o)
	}
	waitLog(e.t, "charon", e.charon.log, 5*time.Second,
		"IKE_SA c[1] established between "+e.charonLocal+"[moon.example.org]...", "CHILD_SA net{1} established with SPIs")
	waitLog(e.t, "xdpsec", e.ours.log, 5*time.Second,
		"IKE_SA c[1] established between "+e.oursLocal+"[sun.example.org]...", "CHILD_SA net{1} established with SPIs")
}

// TestV1MainModePSK establishes Main Mode PSK tunnels with each of the
// issue's IKE proposals from each side; the two sides must list the same
// cookies and SPIs and name the same algorithms.
func TestV1MainModePSK(t *testing.T) {
	for _, p := range []struct {
		proposal string
		charon   []string // encr-alg, encr-keysize, integ-alg, prf-alg, dh-group
	}{
		{"aes128-sha256-modp2048", []string{"AES_CBC", "128", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048"}},
		{"aes256-sha1-modp2048", []string{"AES_CBC", "256", "HMAC_SHA1_96", "PRF_HMAC_SHA1", "MODP_2048"}},
	} {
		forRoles(t, p.proposal, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := v1Peers(p.proposal, "aes128-sha256", "")
			e.load(cs, os, nil, nil)
			e.initiate(role)
			e.agree(1)
			e.v1Check(role)
			sa := e.charonSA()
			got := []string{sa.get("encr-alg"), sa.get("encr-keysize"), sa.get("integ-alg"), sa.get("prf-alg"), sa.get("dh-group")}
			if strings.Join(got, ",") != strings.Join(p.charon, ",") {
				t.Errorf("charon chose %v, want %v", got, p.charon)
			}
			prop := e.oursSA().Proposal
			for _, alg := range []string{p.charon[0], p.charon[3], p.charon[4]} {
				if !strings.Contains(prop, strings.TrimPrefix(alg, "PRF_")) {
					t.Errorf("our proposal %q lacks %s", prop, alg)
				}
			}
		})
	}
}

// TestV1MainModeRSA authenticates both sides with RSA certificates of a
// test CA.
func TestV1MainModeRSA(t *testing.T) {
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	ckey, ccert := endEntity(t, ca, "rsa", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, ca, "rsa", "sun.example.org", oursAddr)
	forRoles(t, "main-rsa", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := certPeers(idKinds[1])
		for _, p := range []*peer{&cs, &os} {
			p.proposals, p.esp, p.connExtra = "aes128-sha256-modp2048", "aes128-sha256", "    version = 1\n"
		}
		e.load(cs, os, certFiles(t, ca, ckey, ccert), certFiles(t, ca, okey, ocert))
		e.initiate(role)
		e.agree(1)
		e.v1Check(role)
		waitLog(t, "charon", e.charon.log, 5*time.Second, "authentication of 'sun.example.org' with RSA")
	})
}

// TestV1MainModeECDSA authenticates both sides with ECDSA certificates of
// each curve (auth methods 9, 10 and 11 of RFC 4754): charon signs HASH_I
// and HASH_R as they are, r and s concatenated.
func TestV1MainModeECDSA(t *testing.T) {
	ca := iketest.NewCA(t, "xdpsec interop CA", nil)
	// HASH_I and HASH_R use HMAC-SHA2 of the curve's size, whatever the
	// proposal's PRF: SHA-1 with P-256, SHA-256 with P-384 and P-521.
	for _, c := range []struct{ kind, proposal string }{
		{"ecdsa", "aes128-sha1-modp2048"},
		{"ecdsa384", "aes128-sha256-modp2048"},
		{"ecdsa521", "aes256-sha256-modp2048"},
	} {
		ckey, ccert := endEntity(t, ca, c.kind, "moon.example.org", charonAddr)
		okey, ocert := endEntity(t, ca, c.kind, "sun.example.org", oursAddr)
		forRoles(t, c.kind, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := certPeers(idKinds[1])
			for _, p := range []*peer{&cs, &os} {
				p.proposals, p.esp, p.connExtra = c.proposal, "aes128-sha256", "    version = 1\n"
			}
			e.load(cs, os, certFiles(t, ca, ckey, ccert), certFiles(t, ca, okey, ocert))
			e.initiate(role)
			e.agree(1)
			e.v1Check(role)
			waitLog(t, "charon", e.charon.log, 5*time.Second, "authentication of 'sun.example.org' with ECDSA_WITH_NULL successful")
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "authentication of 'moon.example.org' with ")
		})
	}
}

// TestV1AggressivePSK establishes Aggressive Mode with PSK, enabled on
// both sides (charon's responder needs its "I don't care about security"
// switch for it).
func TestV1AggressivePSK(t *testing.T) {
	forRoles(t, "aggressive-psk", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{charonSettings: "\ti_dont_care_about_security_and_use_aggressive_mode_psk = yes\n"})
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "    aggressive = yes\n")
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		e.v1Check(role)
		if role == charonInitiates {
			waitLog(t, "charon", e.charon.log, 5*time.Second, "initiating Aggressive Mode IKE_SA c[1]")
		} else {
			waitLog(t, "charon", e.charon.log, 5*time.Second, "10.99.0.2 is initiating a Aggressive Mode IKE_SA")
		}
	})
}

// TestV1QuickMode establishes the IPsec SA with and without PFS; with
// PFS, both sides say which group Quick Mode used.
func TestV1QuickMode(t *testing.T) {
	for _, p := range []struct {
		name, esp, dh string
	}{
		{"no-pfs", "aes128-sha256", ""},
		{"pfs", "aes128-sha256-modp2048", "MODP_2048"},
	} {
		forRoles(t, p.name, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := v1Peers("aes256-sha1-modp2048", p.esp, "")
			e.load(cs, os, nil, nil)
			e.initiate(role)
			e.agree(1)
			e.v1Check(role)
			ch := e.charonChild()
			if ch.get("encr-alg") != "AES_CBC" || ch.get("integ-alg") != "HMAC_SHA2_256_128" || ch.get("dh-group") != p.dh {
				t.Errorf("charon's CHILD_SA: %v, want dh %q", ch.values, p.dh)
			}
			var ours string
			for _, c := range e.oursSA().Children {
				ours = c.Proposal
			}
			if (p.dh != "") != strings.Contains(ours, "MODP_2048") {
				t.Errorf("our CHILD_SA's proposal %q, want dh %q", ours, p.dh)
			}
		})
	}
}

// TestV13DESRefused: our side refuses a configuration with 3des, and a
// peer that offers only 3DES gets NO_PROPOSAL_CHOSEN with our log line
// saying why.
func TestV13DESRefused(t *testing.T) {
	t.Run("config", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		_, os := v1Peers("3des-sha1-modp2048", "aes128-sha256", "")
		if err := writeConf(e.ours, os.conf()); err != nil {
			t.Fatal(err)
		}
		out, err := e.ours.cliRun("reload")
		const why = `invalid proposal "3des-sha1-modp2048": algorithm "3des" is not supported: 3DES is refused by default (64-bit blocks, Sweet32)`
		if err == nil || !strings.Contains(out, why) {
			t.Errorf("reload with 3des: %v\n%s", err, out)
		}
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "failed, keeping the loaded configuration", why)
		if conns := e.ours.cli("-o", "json", "list-conns"); strings.Contains(conns, `"c"`) {
			t.Errorf("connection with 3des loaded:\n%s", conns)
		}
	})
	t.Run("peer-offers-3des", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
		cs.proposals = "3des-sha1-modp2048"
		e.load(cs, os, nil, nil)
		if err := e.tryInitiate(charonInitiates); err == nil {
			t.Fatal("charon established with 3des")
		}
		waitLog(t, "xdpsec", e.ours.log, 10*time.Second, "3DES is refused by default (64-bit blocks, Sweet32)", "N(NO_PROP)")
		waitLog(t, "charon", e.charon.log, 10*time.Second, "received NO_PROPOSAL_CHOSEN error notify")
		e.waitNoSAs("no IKE SA left on either side")
	})
}

// writeConf writes our swanctl.conf without reloading.
func writeConf(o *ours, conf string) error {
	return osWriteFile(o.conf, []byte(conf))
}

// TestV1NATT puts the initiator behind the masquerading, port-remapping
// NAT: both sides detect it, float to 4500 and agree on the SAs.
func TestV1NATT(t *testing.T) {
	forRoles(t, "nat-t", func(t *testing.T, role string) {
		behind := "xdpsec"
		if role == charonInitiates {
			behind = "charon"
		}
		e := newEnv(t, envOptions{nat: behind})
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
		cs.local, os.local = e.charonLocal, e.oursLocal
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		e.v1Check(role)
		sa, o := e.charonSA(), e.oursSA()
		if behind == "xdpsec" {
			if !o.NATLocal || sa.get("nat-remote") != "yes" || sa.get("remote-port") == "4500" || o.RemotePort != 4500 {
				t.Errorf("NAT: ours %+v, charon %v", o, sa.values)
			}
		} else if !o.NATRemote || sa.get("nat-local") != "yes" || sa.get("remote-port") != "4500" || o.RemotePort == 4500 {
			t.Errorf("NAT: ours %+v, charon %v", o, sa.values)
		}
	})
}

// TestV1DPD kills charon: our side's R-U-THERE go unanswered and it
// declares charon dead after dpd_timeout.
func TestV1DPD(t *testing.T) {
	forRoles(t, "charon-killed", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{daemonArgs: oursFastRetransmit})
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
		os.connExtra += "    dpd_delay = 1s\n    dpd_timeout = 5s\n"
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		// charon answers R-U-THERE while alive.
		waitLog(t, "charon", e.charon.log, 10*time.Second, "[ HASH N(DPD) ]", "[ HASH N(DPD_ACK) ]")
		e.charon.kill()
		waitLog(t, "xdpsec", e.ours.log, 20*time.Second, "[ HASH N(DPD) ]", "DPD check timed out, enforcing DPD action")
		waitFor(t, 10*time.Second, "our IKE SA gone", func() error {
			if sas := e.ours.sas(); len(sas) != 0 {
				return fmt.Errorf("%d IKE SAs left", len(sas))
			}
			return nil
		})
	})
}

func osWriteFile(name string, b []byte) error { return os.WriteFile(name, b, 0o600) }

// TestV1Fragmentation runs Main Mode with 4096-bit RSA certificates under
// a chain of three intermediates, each side asking for the other's
// certificate with CERTREQ, over links that drop IP fragments: messages 5
// and 6 only pass as IKEv1 fragments (the FRAG payloads of the
// Cisco/strongSwan extension), cut at 576 octets by both sides (charon:
// fragmentation = force and fragment_size; ours: --fragment-size).
func TestV1Fragmentation(t *testing.T) {
	const fragmentSize = 576
	root := iketest.NewCA(t, "xdpsec interop root", nil)
	chain := []*iketest.CA{root}
	for i := 1; i <= 3; i++ {
		chain = append(chain, iketest.NewCA(t, fmt.Sprintf("xdpsec interop intermediate %d", i), chain[len(chain)-1]))
	}
	issuer := chain[len(chain)-1]
	ckey, ccert := endEntity(t, issuer, "rsa4096", "moon.example.org", charonAddr)
	okey, ocert := endEntity(t, issuer, "rsa4096", "sun.example.org", oursAddr)
	var intermediates []*x509.Certificate // leaf's issuer first
	for i := len(chain) - 1; i > 0; i-- {
		intermediates = append(intermediates, chain[i].Cert)
	}
	forRoles(t, "rsa4096-chain", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{mtu: 1280, charonSettings: fmt.Sprintf("\tfragment_size = %d\n", fragmentSize),
			daemonArgs: []string{"--fragment-size", fmt.Sprint(fragmentSize)}})
		for _, ns := range []*testenv.Netns{e.nsC, e.nsO} {
			nft(t, ns, "add table ip nofrag; add chain ip nofrag in { type filter hook prerouting priority -450; }; "+
				"add rule ip nofrag in ip frag-off & 0x3fff != 0 counter drop; "+
				fmt.Sprintf("add rule ip nofrag in udp dport { 500, 4500 } ip length > %d counter drop", fragmentSize))
		}
		cs, os := certPeers(idKinds[1])
		for _, p := range []*peer{&cs, &os} {
			p.proposals, p.esp, p.connExtra = "aes128-sha256-modp2048", "aes128-sha256", "    version = 1\n    fragmentation = force\n"
		}
		cf := map[string][]byte{"x509/peer.pem": pemCert(ccert), "private/peer.pem": pemKey(t, ckey)}
		for i, ca := range chain {
			cf[fmt.Sprintf("x509ca/ca%d.pem", i)] = pemCert(ca.Cert)
		}
		of := map[string][]byte{"x509/peer.pem": pemCert(append([]*x509.Certificate{ocert}, intermediates...)...),
			"private/peer.pem": pemKey(t, okey), "x509ca/ca.pem": pemCert(root.Cert)}
		e.load(cs, os, cf, of)
		e.initiate(role)
		e.agree(1)
		e.v1Check(role)
		waitLog(t, "charon", e.charon.log, 5*time.Second, "CERTREQ", "splitting IKE message", "reassembled fragmented IKE message")
		waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "CERTREQ", "splitting IKE message", "reassembled fragmented IKE message")
		waitLog(t, "charon", e.charon.log, 5*time.Second, "authentication of 'sun.example.org' with RSA")
	})
}

// TestV1DaemonRestart stops our daemon with an IKEv1 tunnel to charon up,
// by SIGTERM (the state saved on the way out) or SIGKILL (the last
// checkpoint), and starts it again: it takes back the ISAKMP SA and its
// IPsec SA with the same cookies and SPIs, and charon notices nothing.
// DPD then goes on both ways, and the IPsec SA is rekeyed in Quick Mode
// from our side, with the SKEYID_d and IV chain the restart kept.
func TestV1DaemonRestart(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "sigterm"
		if kill {
			name = "sigkill"
		}
		forRoles(t, name, func(t *testing.T, role string) {
			e := newEnv(t, envOptions{})
			cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "    dpd_delay = 2s\n")
			e.load(cs, os, nil, nil)
			e.initiate(role)
			e.agree(1)
			before := e.oursSA()
			if kill {
				// The daemon checkpoints its state twice a second.
				time.Sleep(1500 * time.Millisecond)
			}
			mark := len(e.ours.log())
			e.ours.restart(kill)
			since := func() string { return e.ours.log()[mark:] }
			waitLog(t, "xdpsec", since, 10*time.Second, "IKE_SA c[1] taken back, established between", "took back 1 of 1 IKE_SAs")
			after := e.oursSA()
			if after.Version != 1 || after.SPIi != before.SPIi || after.SPIr != before.SPIr || len(after.Children) != 1 ||
				after.Children[0].SPIIn != before.Children[0].SPIIn || after.Children[0].SPIOut != before.Children[0].SPIOut {
				t.Fatalf("taken back differently:\n%+v\n%+v", before, after)
			}
			e.agree(1)

			// DPD after the restart: ours asks and answers.
			waitLog(t, "xdpsec", since, 20*time.Second, "generating INFORMATIONAL_V1 request", "N(DPD)", "N(DPD_ACK)")
			cmark := len(e.charon.log())
			csince := func() string { return e.charon.log()[cmark:] }

			// A Quick Mode rekey from our side.
			e.ours.cli("rekey", "--child", "net")
			waitLog(t, "charon", csince, 15*time.Second, "detected rekeying of CHILD_SA net{1}", "CHILD_SA net{2} established with SPIs")
			views := e.agree(1)
			if len(views) != 1 || len(views[0].children) != 1 || views[0].children[0].spiIn == before.Children[0].SPIOut {
				t.Errorf("IPsec SA not rekeyed: %+v", views)
			}
			if strings.Contains(csince(), "could not decrypt") || strings.Contains(csince(), "HASH payload does not match") {
				t.Errorf("charon could not read our messages after the restart")
			}
		})
	}
}

// TestV1AggressiveHashILost drops the initiator's third Aggressive Mode
// message (HASH_I) once, at the responder: the initiator, established
// since it sent it, starts Quick Mode at once, and the responder gets
// HASH(1) before phase 1 completed, which it cannot even decrypt (its IV
// derives from HASH_I's last block). The responder ignores it, as charon
// does ("ignoring QUICK_MODE request while phase 1 is incomplete"), and
// retransmits message 2.
//
// We as initiator answer that retransmission with HASH_I again, and then
// retransmit Quick Mode: charon completes both. charon 5.9.8 as initiator
// answers it with its last request, the Quick Mode, never with HASH_I
// again ("received retransmit of response with ID 0, resending last
// request"): no responder, charon included, can complete that ISAKMP SA.
// Ours gives it up when its retransmissions of message 2 are exhausted,
// leaving nothing behind, and the next attempt succeeds.
func TestV1AggressiveHashILost(t *testing.T) {
	forRoles(t, "hash-i-lost", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{charonSettings: "\ti_dont_care_about_security_and_use_aggressive_mode_psk = yes\n" + charonFastRetransmit,
			daemonArgs: oursFastRetransmit})
		_, responder := e.sides(role)
		// The first Aggressive Mode message with a responder cookie is
		// HASH_I: drop it and remember its sender, whose datagrams then
		// pass. It goes to port 4500 (kernel-libipsec makes charon fake
		// a NAT): @th is the UDP header, then the non-ESP marker, then
		// ISAKMP, whose responder cookie starts at octet 8 and exchange
		// type is octet 18.
		nft(t, responder, "add table ip amdrop; add set ip amdrop seen { type ipv4_addr; flags dynamic; }; "+
			"add chain ip amdrop in { type filter hook prerouting priority -450; }; "+
			"add rule ip amdrop in ip saddr @seen accept; "+
			"add rule ip amdrop in udp dport 4500 @th,240,8 4 @th,160,64 != 0 add @seen { ip saddr } counter drop")
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "    aggressive = yes\n")
		e.load(cs, os, nil, nil)
		if role == charonInitiates {
			if err := e.tryInitiate(role); err == nil {
				t.Fatal("charon established without HASH_I reaching us")
			}
			waitLog(t, "xdpsec", e.ours.log, 10*time.Second, "ignoring QUICK_MODE request while phase 1 is incomplete",
				"retransmit 1 of request with message ID 0", "establishing IKE_SA c[1] failed, peer not responding")
			waitLog(t, "charon", e.charon.log, 10*time.Second, "received retransmit of response with ID 0, resending last request")
			e.charon.swanctlRun("--terminate", "--ike", "c", "--force")
			e.waitNoSAs("both sides clean before the next attempt")
		}
		e.initiate(role)
		e.agree(1)
		if role == oursInitiate {
			e.v1Check(role)
			waitLog(t, "charon", e.charon.log, 5*time.Second, "ignoring QUICK_MODE request while phase 1 is incomplete")
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "received retransmit of message with ID 0", "retransmit 1 of request with message ID")
		}
	})
}

// TestV1QuickModeCommitBit: charon never sets the commit bit and ignores
// it. The responder's namespace sets it (with the encryption bit) on every
// Quick Mode message of the initiator, ours or charon's, on the way in:
// the Quick Mode completes as usual on HASH(3), nobody sends a CONNECTED
// notify, and the responder's answers carry no commit bit.
func TestV1QuickModeCommitBit(t *testing.T) {
	forRoles(t, "commit-bit", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		_, responder := e.sides(role)
		// Port 4500 (kernel-libipsec makes charon fake a NAT): @th is the
		// UDP header, then the non-ESP marker, then ISAKMP, whose exchange
		// type is octet 18 and flags octet 19. The UDP checksum, stale
		// after the rewrite, is zeroed (none, for IPv4).
		nft(t, responder, "add table ip commit; add chain ip commit in { type filter hook prerouting priority -450; }; "+
			"add rule ip commit in udp dport 4500 @th,240,8 32 @th,248,8 set 3 udp checksum set 0 counter")
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
		e.load(cs, os, nil, nil)
		e.initiate(role)
		e.agree(1)
		e.v1Check(role)
		out := responder.MustRun(t, "nft", "list", "table", "ip", "commit")
		if strings.Contains(out, "packets 0 ") {
			t.Fatalf("no Quick Mode message rewritten:\n%s", out)
		}
		if role == charonInitiates {
			waitLog(t, "xdpsec", e.ours.log, 5*time.Second, "commit bit set, ignored")
		}
		for who, log := range map[string]string{"xdpsec": e.ours.log(), "charon": e.charon.log()} {
			if strings.Contains(log, "N(CONNECTED)") || strings.Contains(log, "commit bit set in HASH(2)") {
				t.Errorf("%s: a CONNECTED notify or a commit bit from the responder", who)
			}
		}
	})
}

// TestV1InitiateChild: `xdpsec initiate --child` over an established
// ISAKMP SA (ours or charon's as the initiator of phase 1) after
// `terminate --child` runs a Quick Mode on it, as swanctl --initiate
// --child does, and reports the new IPsec SA: the same cookies on both
// sides, new SPIs, and charon's list the same as ours. While the IPsec SA
// is installed it runs none and fails naming it.
func TestV1InitiateChild(t *testing.T) {
	forRoles(t, "after-terminate", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
		e.load(cs, os, nil, nil)
		e.initiate(role)
		first := e.agree(1)
		e.ours.cli("terminate", "--child", "net")
		waitFor(t, 10*time.Second, "the IPsec SA gone on both sides, the ISAKMP SA kept", func() error {
			c, o := e.charonView(), e.oursView()
			if len(c) != 1 || len(o) != 1 || len(c[0].children) != 0 || len(o[0].children) != 0 || c[0].spiI != o[0].spiI {
				return fmt.Errorf("charon %v, xdpsec %v", c, o)
			}
			return nil
		})
		cmark := len(e.charon.log())
		out, err := e.ours.cliRun("initiate", "--child", "net", "--timeout", "30s")
		if err != nil {
			t.Fatalf("initiate --child over the ISAKMP SA: %v\n%s", err, out)
		}
		views := e.agree(1)
		if len(views) != 1 || views[0].spiI != first[0].spiI || views[0].spiR != first[0].spiR {
			t.Fatalf("ISAKMP SA changed: before %v, after %v", first, views)
		}
		ch := views[0].children[0]
		if ch.spiIn == first[0].children[0].spiIn || ch.spiOut == first[0].children[0].spiOut {
			t.Errorf("IPsec SA kept its SPIs: before %v, after %v", first, views)
		}
		// Our answer names the IPsec SA both sides list (ours inbound is
		// charon's outbound).
		if want := fmt.Sprintf("CHILD_SA net{2} established with SPIs %s_i %s_o", ch.spiOut, ch.spiIn); !strings.Contains(out, want) {
			t.Errorf("initiate said %q, want %q", out, want)
		}
		csince := func() string { return e.charon.log()[cmark:] }
		waitLog(t, "charon", csince, 5*time.Second, "parsed QUICK_MODE request", "CHILD_SA net{2} established with SPIs")
		if strings.Contains(csince(), "IKE_SA c[2]") || strings.Contains(csince(), "ID_PROT") {
			t.Errorf("charon saw a new phase 1:\n%s", csince())
		}
		o := e.oursSA()
		if o.Version != 1 || o.UniqueID != 1 {
			t.Errorf("our ISAKMP SA: %+v", o)
		}
	})
	// While the IPsec SA is installed, no Quick Mode is started for
	// another one (charon would take it for a rekey of the installed one,
	// as its selectors are the same): initiate fails naming the installed
	// IPsec SA, as swanctl --initiate --child does, and both sides keep
	// what they had.
	forRoles(t, "while-installed", func(t *testing.T, role string) {
		e := newEnv(t, envOptions{})
		cs, os := v1Peers("aes128-sha256-modp2048", "aes128-sha256", "")
		e.load(cs, os, nil, nil)
		e.initiate(role)
		views := e.agree(1)
		before := e.oursSA()
		cmark := len(e.charon.log())
		out, err := e.ours.cliRun("initiate", "--child", "net", "--timeout", "30s")
		want := fmt.Sprintf("not establishing CHILD_SA net due to existing duplicate net{%d} with SPIs %s_i %s_o",
			before.Children[0].UniqueID, before.Children[0].SPIIn, before.Children[0].SPIOut)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("initiate --child while installed: %v\n%s\nwant %q", err, out, want)
		}
		time.Sleep(500 * time.Millisecond)
		if after := e.agree(1); len(after) != 1 || after[0].String() != views[0].String() {
			t.Fatalf("before %v\nafter %v", views, after)
		}
		if l := e.charon.log()[cmark:]; strings.Contains(l, "QUICK_MODE") {
			t.Errorf("charon saw a Quick Mode:\n%s", l)
		}
	})
}
